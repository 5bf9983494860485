//! The label map as libnetfilter_conntrack reads `connlabel.conf` (what `conntrack -o labels`,
//! `conntrack -l NAME` and iptables' `connlabel` match see): a forgiving reading, where a
//! line that does not fit is skipped and the others are kept.
//!
//! [`load_label_map`](crate::load_label_map) reads the same file strictly (the first bad
//! line is an error, bits 0 to 127): use it to check a file; use [`Connlabels`] to read one
//! as the C tools do.
//!
//! The rules, line by line (at most 1023 bytes each; a longer line is read in pieces):
//! - a line that starts with `#` is a comment;
//! - the bit is a C number (`strtoul` base 0: decimal, `0x` hex, `0` octal, leading blanks
//!   and a sign allowed) below 1024, and a bit named already is not named again;
//! - the name is the rest of the line without its surrounding blanks; it must not be empty,
//!   must hold only ASCII letters, digits, `-` and spaces, and must not be taken already.
//!
//! ```
//! use conntrack_io::Connlabels;
//!
//! let map = Connlabels::parse(b"0 eth0-in\n# a comment\n128 big\nxx bad\n3 \xe9t\xe9\n").unwrap();
//! assert_eq!(map.bit(b"big"), Some(128));
//! assert_eq!(map.name(0), Some("eth0-in"));
//! assert_eq!(map.name(3), None); // not ASCII: skipped
//! assert!(Connlabels::parse(b"# nothing\n").is_none());
//! ```

use std::path::Path;

use conntrack_codec::labels::LabelNames;

/// The highest bit number a line may name, plus one.
const MAX_BITS: u32 = 1024;
/// The longest line `fgets` reads at once (its buffer of 1024 bytes holds the NUL too).
const LINE: usize = 1023;

/// Label names by bit, read as libnetfilter_conntrack reads them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Connlabels {
    /// `(bit, name)` in file order.
    names: Vec<(u32, String)>,
}

/// The blanks the library trims around a name (`\n` ends the line instead).
fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\x0c' | b'\r' | b'\t' | b'\x0b')
}

/// What the library accepts in a name.
fn is_sane(name: &[u8]) -> bool {
    name.iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-')
}

/// The lines as `fgets` with a buffer of 1024 bytes hands them out: a longer line comes in
/// pieces.
fn fgets_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split_inclusive(|&b| b == b'\n')
        .flat_map(|line| line.chunks(LINE))
}

/// `strtoul(s, &end, 0)` as far as a bit number needs it: the value (saturated) and the
/// bytes read, `None` if no digit was read.
fn c_number(s: &[u8]) -> Option<(u64, usize)> {
    let mut i = s
        .iter()
        .take_while(|&&b| b.is_ascii_whitespace() || b == b'\x0b')
        .count();
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let hex = s.get(i) == Some(&b'0')
        && matches!(s.get(i + 1), Some(b'x' | b'X'))
        && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
    let radix = if hex {
        i += 2;
        16
    } else if s.get(i) == Some(&b'0') {
        8
    } else {
        10
    };
    let start = i;
    let mut value: u64 = 0;
    while let Some(d) = s.get(i).and_then(|&b| char::from(b).to_digit(radix)) {
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
            .unwrap_or(u64::MAX);
        i += 1;
    }
    if i == start {
        return None;
    }
    Some((if neg { value.wrapping_neg() } else { value }, i))
}

impl Connlabels {
    /// Reads the text of a `connlabel.conf`; `None` if no line names a label (the library
    /// then has no map, and leaves errno 0).
    pub fn parse(text: &[u8]) -> Option<Connlabels> {
        let mut map = Connlabels::default();
        for line in fgets_lines(text) {
            if line.first() == Some(&b'#') {
                continue;
            }
            let Some((bit, used)) = c_number(line) else {
                continue;
            };
            let Some(bit) = u32::try_from(bit).ok().filter(|&b| b < MAX_BITS) else {
                continue;
            };
            if map.names.iter().any(|(b, _)| *b == bit) {
                continue;
            }
            let rest = line.get(used..).unwrap_or_default();
            let rest = rest
                .split(|&b| b == b'\n' || b == 0)
                .next()
                .unwrap_or_default();
            let start = rest.iter().take_while(|&&b| is_blank(b)).count();
            let end = rest.len() - rest.iter().rev().take_while(|&&b| is_blank(b)).count();
            let name = rest.get(start..end.max(start)).unwrap_or_default();
            if name.is_empty() || !is_sane(name) {
                continue;
            }
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            if map.names.iter().any(|(_, n)| n == name) {
                continue;
            }
            map.names.push((bit, name.to_string()));
        }
        (!map.names.is_empty()).then_some(map)
    }

    /// Reads the file at `path` (such as
    /// [`DEFAULT_CONNLABEL_CONF`](crate::DEFAULT_CONNLABEL_CONF)).
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn load(path: impl AsRef<Path>) -> std::io::Result<Option<Connlabels>> {
        Ok(Connlabels::parse(&std::fs::read(path)?))
    }

    /// The bit named `name`.
    pub fn bit(&self, name: &[u8]) -> Option<u32> {
        self.names
            .iter()
            .find(|(_, n)| n.as_bytes() == name)
            .map(|&(b, _)| b)
    }

    /// The name of `bit`, if a line names it.
    pub fn name(&self, bit: u32) -> Option<&str> {
        self.names
            .iter()
            .find(|(b, _)| *b == bit)
            .map(|(_, n)| n.as_str())
    }

    /// Every `(bit, name)` pair, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str)> {
        self.names.iter().map(|(b, n)| (*b, n.as_str()))
    }
}

impl LabelNames for Connlabels {
    fn name(&self, bit: u16) -> Option<&str> {
        Connlabels::name(self, u32::from(bit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_are_skipped_and_the_rest_kept() {
        let text = b"0 zero\n127 last\n128 big\n1024 toobig\n-1 neg\n5\n6   \n0 again\n7 zero\n\
                     #8 comment\n 9 spaced name \n0x0a hex\n011 octal\nx 12\n13 bad!\n";
        let map = Connlabels::parse(text).expect("a map");
        let pairs: Vec<(u32, &str)> = map.iter().collect();
        assert_eq!(
            pairs,
            [
                (0, "zero"),
                (127, "last"),
                (128, "big"),
                (9, "spaced name"),
                (10, "hex")
            ]
        );
        assert_eq!(map.bit(b"big"), Some(128));
        assert_eq!(LabelNames::name(&map, 9), Some("spaced name"));
        assert_eq!(map.name(5), None);
    }

    #[test]
    fn no_label_is_no_map() {
        assert_eq!(Connlabels::parse(b""), None);
        assert_eq!(
            Connlabels::parse(
                b"# only
\n\n1 \xe9\n"
            ),
            None
        );
    }

    #[test]
    fn long_lines_are_read_in_pieces() {
        let mut text = vec![b'x'; 1023];
        text.extend_from_slice(b"4 four\n");
        let map = Connlabels::parse(&text).expect("the second piece names a label");
        assert_eq!(map.bit(b"four"), Some(4));
    }
}
