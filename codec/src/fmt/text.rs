//! The pieces every format is written with: a line buffer in front of the formatter, the
//! integers and addresses as conntrack-tools writes them, and space-separated fields.

use core::fmt::{self, Display, Formatter, Write};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How many bytes of a line are gathered before they go to the formatter.
const CAP: usize = 512;

/// A line being written: its pieces are gathered in a stack buffer and handed to the
/// [`Formatter`] in few large writes (one per line, most of the time), because each
/// `Formatter::write_str` goes through a `dyn Write` and a line has dozens of pieces. It
/// also keeps the state of the library's field separator: [`Text::sep`] writes a space
/// before every field but the first.
///
/// Numbers and addresses are written digit by digit straight into the buffer. The buffer
/// holds whole strings and ASCII, never part of a string (a piece that does not fit what is
/// left is written after flushing, or directly if it is longer than the buffer), so it
/// always holds UTF-8, checked once per flush. [`Text::finish`] hands over what is left.
pub(crate) struct Text<'f, 'b> {
    f: &'f mut Formatter<'b>,
    buf: [u8; CAP],
    len: usize,
    first: bool,
}

impl<'f, 'b> Text<'f, 'b> {
    /// A line written into `f`.
    #[inline]
    pub(crate) fn new(f: &'f mut Formatter<'b>) -> Self {
        Text {
            f,
            buf: [0; CAP],
            len: 0,
            first: true,
        }
    }

    /// Hands what is buffered to the formatter.
    #[inline]
    fn flush(&mut self) -> fmt::Result {
        if self.len > 0 {
            let bytes = self.buf.get(..self.len).unwrap_or_default();
            let text = core::str::from_utf8(bytes).map_err(|_| fmt::Error)?;
            self.f.write_str(text)?;
            self.len = 0;
        }
        Ok(())
    }

    /// Hands what is left to the formatter.
    ///
    /// # Errors
    /// The formatter's.
    #[inline]
    pub(crate) fn finish(mut self) -> fmt::Result {
        self.flush()
    }

    /// The next `n` bytes of the buffer, taken (after a flush if they do not fit); an error
    /// if `n` is more than the buffer holds.
    #[inline]
    fn room(&mut self, n: usize) -> Result<&mut [u8], fmt::Error> {
        if self.len.saturating_add(n) > CAP {
            self.flush()?;
        }
        let start = self.len;
        let end = start.saturating_add(n);
        let dst = self.buf.get_mut(start..end).ok_or(fmt::Error)?;
        self.len = end;
        Ok(dst)
    }

    /// Appends `s`.
    #[inline]
    pub(crate) fn str(&mut self, s: &str) -> fmt::Result {
        if s.len() > CAP {
            self.flush()?;
            return self.f.write_str(s);
        }
        self.room(s.len())?.copy_from_slice(s.as_bytes());
        Ok(())
    }

    /// Appends one character.
    #[inline]
    pub(crate) fn char(&mut self, c: char) -> fmt::Result {
        let mut utf8 = [0u8; 4];
        let bytes = c.encode_utf8(&mut utf8).as_bytes();
        self.room(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// Starts a field: a space unless it is the first of the line.
    #[inline]
    pub(crate) fn sep(&mut self) -> fmt::Result {
        if self.first {
            self.first = false;
            Ok(())
        } else {
            self.char(' ')
        }
    }

    /// A field that is just `s`.
    #[inline]
    pub(crate) fn field(&mut self, s: &str) -> fmt::Result {
        self.sep()?;
        self.str(s)
    }

    /// A `name=value` field with a decimal value.
    #[inline]
    pub(crate) fn field_dec(&mut self, name: &str, v: impl Into<u64>) -> fmt::Result {
        self.sep()?;
        self.str(name)?;
        self.char('=')?;
        self.dec(v)
    }

    /// `v` in decimal (`{}`).
    #[inline]
    pub(crate) fn dec(&mut self, v: impl Into<u64>) -> fmt::Result {
        let v = v.into();
        decimal(v, self.room(decimal_len(v))?);
        Ok(())
    }

    /// `v` in lower-case hexadecimal, with `0x` if `prefix` (`{:x}`, `{:#x}`).
    #[inline]
    pub(crate) fn hex(&mut self, v: u32, prefix: bool) -> fmt::Result {
        if prefix {
            self.str("0x")?;
        }
        // One digit per 4 bits, at least one.
        let bits = u32::BITS.saturating_sub(v.leading_zeros()).max(1);
        let n = usize::try_from(bits.div_ceil(4)).unwrap_or(8);
        let mut rest = v;
        for slot in self.room(n)?.iter_mut().rev() {
            *slot = HEX_DIGITS
                .get(usize::try_from(rest & 0xf).unwrap_or(0))
                .copied()
                .unwrap_or(b'0');
            rest >>= 4;
        }
        Ok(())
    }

    /// `s` left-aligned in `width` columns (`{:<width}`).
    #[inline]
    pub(crate) fn left(&mut self, s: &str, width: usize) -> fmt::Result {
        self.str(s)?;
        for _ in s.len()..width {
            self.char(' ')?;
        }
        Ok(())
    }

    /// An address as glibc's `inet_ntop` writes it.
    #[inline]
    pub(crate) fn addr(&mut self, a: IpAddr) -> fmt::Result {
        match a {
            IpAddr::V4(a) => self.ipv4(a),
            IpAddr::V6(a) => self.ipv6(&a),
        }
    }

    /// Dotted decimal, written straight into the buffer.
    fn ipv4(&mut self, a: Ipv4Addr) -> fmt::Result {
        let octets = a.octets();
        let n = octets
            .iter()
            .fold(3usize, |n, &o| n.saturating_add(octet_len(o)));
        let mut dst = self.room(n)?.iter_mut();
        for (i, o) in octets.into_iter().enumerate() {
            if i != 0 {
                if let Some(dot) = dst.next() {
                    *dot = b'.';
                }
            }
            // Each digit is below 10: its ASCII code is `0x30 | digit`.
            let (hundreds, tens, ones) = (o / 100, o / 10 % 10, o % 10);
            if o >= 100 {
                if let Some(d) = dst.next() {
                    *d = b'0' | hundreds;
                }
            }
            if o >= 10 {
                if let Some(d) = dst.next() {
                    *d = b'0' | tens;
                }
            }
            if let Some(d) = dst.next() {
                *d = b'0' | ones;
            }
        }
        Ok(())
    }

    /// `inet_ntop`'s IPv6: the first of the longest runs of two or more zero groups becomes
    /// `::`, and an address that starts with 96 zero bits (or `::ffff:0:0/96`) ends in
    /// dotted IPv4 — where it differs from `Ipv6Addr`'s `Display`.
    fn ipv6(&mut self, a: &Ipv6Addr) -> fmt::Result {
        let g = a.segments();
        let (mut best_start, mut best_len) = (0usize, 0usize);
        let mut i = 0usize;
        while i < g.len() {
            if g.get(i) == Some(&0) {
                let start = i;
                while g.get(i) == Some(&0) {
                    i = i.saturating_add(1);
                }
                let len = i.saturating_sub(start);
                if len > best_len {
                    (best_start, best_len) = (start, len);
                }
            } else {
                i = i.saturating_add(1);
            }
        }
        if best_len < 2 {
            best_len = 0;
        }
        let embedded_v4 =
            best_start == 0 && (best_len == 6 || (best_len == 5 && g.get(5) == Some(&0xffff)));
        let groups = if embedded_v4 { 6 } else { 8 };
        let mut i = 0usize;
        while i < groups {
            if best_len > 0 && i == best_start {
                self.str("::")?;
                i = i.saturating_add(best_len);
                continue;
            }
            if i != 0 && !(best_len > 0 && i == best_start.saturating_add(best_len)) {
                self.char(':')?;
            }
            self.hex(u32::from(g.get(i).copied().unwrap_or(0)), false)?;
            i = i.saturating_add(1);
        }
        if embedded_v4 {
            if best_start.saturating_add(best_len) < 6 {
                self.char(':')?;
            }
            let [.., a, b, c, d] = a.octets();
            self.ipv4(Ipv4Addr::new(a, b, c, d))?;
        }
        Ok(())
    }
}

impl Write for Text<'_, '_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.str(s)
    }
}

/// Lower-case hexadecimal digits.
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// How many decimal digits `v` has.
#[inline]
fn decimal_len(v: u64) -> usize {
    v.checked_ilog10()
        .map_or(1, |l| usize::try_from(l).unwrap_or(19).saturating_add(1))
}

/// How many decimal digits a byte has.
#[inline]
fn octet_len(o: u8) -> usize {
    1usize
        .saturating_add(usize::from(o >= 10))
        .saturating_add(usize::from(o >= 100))
}

/// Writes the decimal digits of `v` into `dst` (the last ones, if `dst` is short of
/// [`decimal_len`]).
#[inline]
fn decimal(mut v: u64, dst: &mut [u8]) {
    for slot in dst.iter_mut().rev() {
        // `v % 10` is below 10: the digit's ASCII code is `0x30 | digit`.
        *slot = b'0' | u8::try_from(v % 10).unwrap_or(0);
        v /= 10;
    }
}

/// An address as glibc's `inet_ntop` writes it (IPv6 differs from `Ipv6Addr`'s `Display`
/// in where it embeds IPv4 and which zero run it compresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr(pub IpAddr);

/// Logs the address as `inet_ntop` writes it (through `core::fmt`).
#[cfg(feature = "defmt")]
impl defmt::Format for Addr {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self));
    }
}

impl Display for Addr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut t = Text::new(f);
        t.addr(self.0)?;
        t.finish()
    }
}

/// The address, or the family's unspecified address when it is absent (as the library
/// prints a tuple without one).
#[inline]
pub(crate) fn addr_or_unspecified(a: Option<IpAddr>, family: u8) -> IpAddr {
    a.unwrap_or(if family == 10 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fixed-size `fmt::Write` sink for the tests (no allocation in the codec).
    pub(crate) struct Buf {
        b: [u8; 4096],
        n: usize,
    }

    impl Buf {
        pub(crate) fn new() -> Self {
            Buf { b: [0; 4096], n: 0 }
        }
        pub(crate) fn as_str(&self) -> &str {
            core::str::from_utf8(&self.b[..self.n]).unwrap()
        }
    }

    impl Write for Buf {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let end = self.n + s.len();
            self.b
                .get_mut(self.n..end)
                .ok_or(fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.n = end;
            Ok(())
        }
    }

    pub(crate) fn show(d: impl Display) -> Buf {
        let mut b = Buf::new();
        write!(b, "{d}").unwrap();
        b
    }

    #[test]
    fn ipv6_like_glibc() {
        let cases: [(&str, &str); 12] = [
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::102:304", "::1.2.3.4"),
            ("0:0:0:0:0:0:1:2", "::0.1.0.2"),
            ("::ffff:0:0", "::ffff:0.0.0.0"),
            ("::2", "::2"),
            ("::", "::"),
            ("::1:0:0", "::1:0:0"),
            ("1:0:0:0:1:0:0:0", "1::1:0:0:0"),
            ("2001:0:0:1:0:0:1:1", "2001::1:0:0:1:1"),
            ("1:2:3:4:5:6:7:0", "1:2:3:4:5:6:7:0"),
            ("fe80::abcd", "fe80::abcd"),
            ("1::", "1::"),
        ];
        for (input, want) in cases {
            let a: Ipv6Addr = input.parse().unwrap();
            assert_eq!(show(Addr(IpAddr::V6(a))).as_str(), want, "{input}");
        }
        let a: Ipv6Addr = "::ffff:0:102:304".parse().unwrap();
        assert_eq!(show(Addr(IpAddr::V6(a))).as_str(), "::ffff:0:102:304");
    }

    /// The hand-written integer and address writers against `core::fmt`.
    #[test]
    fn numbers_like_core_fmt() {
        struct Num(u64, u32);
        impl Display for Num {
            fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
                let mut t = Text::new(f);
                t.dec(self.0)?;
                t.char(' ')?;
                t.hex(self.1, false)?;
                t.char(' ')?;
                t.hex(self.1, true)?;
                t.finish()
            }
        }
        for (d, h) in [
            (0, 0),
            (9, 9),
            (10, 10),
            (255, 255),
            (65535, 0xabcd),
            (u64::from(u32::MAX), u32::MAX),
            (u64::MAX, 0x1000_0000),
        ] {
            let mut want = Buf::new();
            write!(want, "{d} {h:x} {h:#x}").unwrap();
            assert_eq!(show(Num(d, h)).as_str(), want.as_str());
        }
        for o in 0..=255u8 {
            let a = Ipv4Addr::new(o, 255 - o, o / 10, o % 10);
            let mut want = Buf::new();
            write!(want, "{a}").unwrap();
            assert_eq!(show(Addr(IpAddr::V4(a))).as_str(), want.as_str());
        }
    }

    /// Lines longer than the buffer, with pieces longer than it, come out whole.
    #[test]
    fn long_lines_and_pieces() {
        struct Long;
        impl Display for Long {
            fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
                let mut t = Text::new(f);
                for _ in 0..100 {
                    t.field("abcdefghij")?;
                }
                t.field(&"x".repeat_in_stack())?;
                t.char('é')?;
                t.finish()
            }
        }
        trait Repeat {
            fn repeat_in_stack(&self) -> heapless::String<1000>;
        }
        impl Repeat for str {
            fn repeat_in_stack(&self) -> heapless::String<1000> {
                let mut s = heapless::String::new();
                while s.push_str(self).is_ok() {}
                s
            }
        }
        let out = show(Long);
        assert_eq!(out.as_str().len(), 100 * 11 + 1000 + 2);
        assert!(out.as_str().starts_with("abcdefghij abcdefghij "));
        assert!(out.as_str().ends_with("xxé"));
    }
}
