//! Messages made of bytes. conntrack-tools echoes its arguments as the bytes it was given
//! (`Invalid IP address `\xff'`), so arguments are kept as bytes from `argv` to stderr, and
//! the messages that quote them are byte strings: [`cat!`](crate::cat) joins pieces of text
//! and bytes.

/// A piece of a message: text or bytes.
pub trait Piece {
    /// The piece's bytes.
    fn piece(&self) -> &[u8];
}

impl Piece for str {
    fn piece(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Piece for [u8] {
    fn piece(&self) -> &[u8] {
        self
    }
}

impl<const N: usize> Piece for [u8; N] {
    fn piece(&self) -> &[u8] {
        self
    }
}

impl Piece for String {
    fn piece(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Piece for Vec<u8> {
    fn piece(&self) -> &[u8] {
        self
    }
}

impl<T: Piece + ?Sized> Piece for &T {
    fn piece(&self) -> &[u8] {
        (**self).piece()
    }
}

/// Joins pieces of text and bytes into one byte string:
/// `cat!("Invalid IP address `", arg, "'")`.
#[macro_export]
macro_rules! cat {
    ($($piece:expr),+ $(,)?) => {{
        let mut bytes: ::std::vec::Vec<u8> = ::std::vec::Vec::new();
        $( bytes.extend_from_slice($crate::text::Piece::piece(&$piece)); )+
        bytes
    }};
}

/// Whether `prefix` starts `whole` (bytes).
pub fn starts_with(whole: &[u8], prefix: &[u8]) -> bool {
    whole.get(..prefix.len()) == Some(prefix)
}

/// The position of the first `b` in `bytes`.
pub fn find(bytes: &[u8], b: u8) -> Option<usize> {
    bytes.iter().position(|&c| c == b)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pieces_join() {
        let arg: &[u8] = b"\xff1";
        assert_eq!(cat!("a `", arg, "' ", String::from("b")), b"a `\xff1' b");
        assert!(super::starts_with(b"expect", b"exp"));
        assert!(!super::starts_with(b"ex", b"exp"));
        assert_eq!(super::find(b"a,b", b','), Some(1));
    }
}
