//! Netlink attributes (`struct nlattr`): a view, a fused iterator, typed readers.

use byteorder::{BigEndian, ByteOrder, NativeEndian};

use crate::nl::align;
use crate::{Error, Result};

/// Attribute header length (`NLA_HDRLEN`).
pub(crate) const HDRLEN: usize = 4;
/// `NLA_F_NESTED`: the payload is a sequence of attributes.
pub const NLA_F_NESTED: u16 = 1 << 15;
/// `NLA_F_NET_BYTEORDER`: the payload is in network byte order.
pub const NLA_F_NET_BYTEORDER: u16 = 1 << 14;
/// The bits of `nla_type` that carry the type (`NLA_TYPE_MASK`).
pub const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

mod field {
    use core::ops::Range;
    pub const LEN: Range<usize> = 0..2;
    pub const TYPE: Range<usize> = 2..4;
}

/// One attribute: its type (flags kept apart) and its payload, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Attr<'a> {
    raw_kind: u16,
    payload: &'a [u8],
}

impl<'a> Attr<'a> {
    /// Makes an attribute from a raw `nla_type` (flags included) and a payload.
    pub const fn new(raw_kind: u16, payload: &'a [u8]) -> Self {
        Attr { raw_kind, payload }
    }

    /// The attribute type with `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER` masked off.
    #[inline]
    pub const fn kind(&self) -> u16 {
        self.raw_kind & NLA_TYPE_MASK
    }

    /// The type field as received, flags included.
    #[inline]
    pub const fn raw_kind(&self) -> u16 {
        self.raw_kind
    }

    /// Whether the sender marked the attribute as nested.
    #[inline]
    pub const fn is_nested(&self) -> bool {
        self.raw_kind & NLA_F_NESTED != 0
    }

    /// Whether the sender marked the payload as network byte order.
    #[inline]
    pub const fn is_net_byteorder(&self) -> bool {
        self.raw_kind & NLA_F_NET_BYTEORDER != 0
    }

    /// The payload, without header and padding.
    #[inline]
    pub const fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The attributes nested in this one's payload (whether or not `NLA_F_NESTED` is set).
    #[inline]
    pub const fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.payload)
    }

    fn exact<const N: usize>(&self) -> Result<[u8; N]> {
        <[u8; N]>::try_from(self.payload).map_err(|_| Error::AttributeSize {
            kind: self.kind(),
            len: self.payload.len(),
        })
    }

    /// Reads the payload as exactly `N` raw bytes (addresses, bitmaps).
    ///
    /// # Errors
    /// [`Error::AttributeSize`] unless the payload is exactly `N` bytes long.
    #[inline]
    pub fn array<const N: usize>(&self) -> Result<[u8; N]> {
        self.exact::<N>()
    }

    /// Reads a one-byte payload.
    ///
    /// # Errors
    /// [`Error::AttributeSize`] unless the payload is exactly 1 byte long.
    #[inline]
    pub fn u8(&self) -> Result<u8> {
        let [b] = self.exact::<1>()?;
        Ok(b)
    }

    /// Reads a big-endian u16 payload.
    ///
    /// # Errors
    /// [`Error::AttributeSize`] unless the payload is exactly 2 bytes long.
    #[inline]
    pub fn u16_be(&self) -> Result<u16> {
        Ok(BigEndian::read_u16(&self.exact::<2>()?))
    }

    /// Reads a big-endian u32 payload.
    ///
    /// # Errors
    /// [`Error::AttributeSize`] unless the payload is exactly 4 bytes long.
    #[inline]
    pub fn u32_be(&self) -> Result<u32> {
        Ok(BigEndian::read_u32(&self.exact::<4>()?))
    }

    /// Reads a big-endian u64 payload.
    ///
    /// # Errors
    /// [`Error::AttributeSize`] unless the payload is exactly 8 bytes long.
    #[inline]
    pub fn u64_be(&self) -> Result<u64> {
        Ok(BigEndian::read_u64(&self.exact::<8>()?))
    }

    /// Reads a host-order u32 payload (`CTA_FILTER` flags, extended-ack offsets).
    ///
    /// # Errors
    /// [`Error::AttributeSize`] unless the payload is exactly 4 bytes long.
    #[inline]
    pub fn u32_ne(&self) -> Result<u32> {
        Ok(NativeEndian::read_u32(&self.exact::<4>()?))
    }

    /// Reads a host-order u16 payload.
    ///
    /// # Errors
    /// [`Error::AttributeSize`] unless the payload is exactly 2 bytes long.
    #[inline]
    pub fn u16_ne(&self) -> Result<u16> {
        Ok(NativeEndian::read_u16(&self.exact::<2>()?))
    }

    /// Reads a NUL-terminated string: the bytes before the first NUL, which must be UTF-8.
    ///
    /// # Errors
    /// [`Error::InvalidString`] if there is no NUL in the payload or the text is not UTF-8.
    #[inline]
    pub fn c_str(&self) -> Result<&'a str> {
        let end = self
            .payload
            .iter()
            .position(|&b| b == 0)
            .ok_or(Error::InvalidString("attribute without NUL terminator"))?;
        let text = self
            .payload
            .get(..end)
            .ok_or(Error::InvalidString("attribute"))?;
        core::str::from_utf8(text).map_err(|_| Error::InvalidString("attribute is not UTF-8"))
    }

    /// Reads a NUL-terminated string of at most `max` bytes before the NUL.
    ///
    /// # Errors
    /// As [`Attr::c_str`], and [`Error::InvalidString`] if the text is longer than `max`.
    pub fn c_str_bounded(&self, max: usize) -> Result<&'a str> {
        let s = self.c_str()?;
        if s.len() > max {
            return Err(Error::InvalidString("attribute longer than its bound"));
        }
        Ok(s)
    }
}

/// A fused iterator over the attributes in a buffer.
///
/// It yields `Err` once, on the first malformed attribute (`nla_len < 4`, or a length that
/// runs past the end), and `None` forever after. Zero-length payloads are accepted; the last
/// attribute may lack its padding.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Attrs<'a> {
    buf: &'a [u8],
    failed: bool,
}

impl<'a> Attrs<'a> {
    /// Iterates over the attributes in `buf`.
    #[inline]
    pub const fn new(buf: &'a [u8]) -> Self {
        Attrs { buf, failed: false }
    }

    /// The bytes not yet visited.
    #[inline]
    pub const fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    /// Finds the first attribute of type `kind` (flags masked).
    ///
    /// # Errors
    /// The first malformation met before the attribute is found.
    #[inline]
    pub fn find(self, kind: u16) -> Result<Option<Attr<'a>>> {
        for attr in self {
            let attr = attr?;
            if attr.kind() == kind {
                return Ok(Some(attr));
            }
        }
        Ok(None)
    }

    /// Finds the last attribute of type `kind` (flags masked): of repeated attributes, the
    /// kernel and this codec's reprs keep the last.
    ///
    /// # Errors
    /// The first malformation met, anywhere in the attributes.
    #[inline]
    pub fn find_last(self, kind: u16) -> Result<Option<Attr<'a>>> {
        let mut found = None;
        for attr in self {
            let attr = attr?;
            if attr.kind() == kind {
                found = Some(attr);
            }
        }
        Ok(found)
    }

    #[inline]
    fn next_attr(&mut self) -> Result<Attr<'a>> {
        let len = self
            .buf
            .get(field::LEN)
            .map(NativeEndian::read_u16)
            .ok_or(Error::Truncated("attribute header"))?;
        let raw_kind = self
            .buf
            .get(field::TYPE)
            .map(NativeEndian::read_u16)
            .ok_or(Error::Truncated("attribute header"))?;
        let len = usize::from(len);
        if len < HDRLEN {
            return Err(Error::InvalidLength("attribute (nla_len < 4)"));
        }
        let payload = self
            .buf
            .get(HDRLEN..len)
            .ok_or(Error::Truncated("attribute payload"))?;
        // The next attribute starts at the aligned length; the last one may be unpadded.
        let next = align(len).unwrap_or(usize::MAX).min(self.buf.len());
        self.buf = self.buf.get(next..).unwrap_or(&[]);
        Ok(Attr { raw_kind, payload })
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        let item = self.next_attr();
        if item.is_err() {
            self.failed = true;
            self.buf = &[];
        }
        Some(item)
    }
}

impl core::iter::FusedIterator for Attrs<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(len: u16, kind: u16) -> [u8; 4] {
        let mut h = [0u8; 4];
        NativeEndian::write_u16(&mut h[0..2], len);
        NativeEndian::write_u16(&mut h[2..4], kind);
        h
    }

    #[test]
    fn parses_padded_and_unpadded() {
        let mut buf = [0u8; 16];
        buf[0..4].copy_from_slice(&hdr(5, 1 | NLA_F_NESTED));
        buf[4] = 7;
        buf[8..12].copy_from_slice(&hdr(6, 2));
        buf[12..14].copy_from_slice(&[0x12, 0x34]);
        let mut it = Attrs::new(&buf[..14]);
        let a = it.next().unwrap().unwrap();
        assert_eq!(a.kind(), 1);
        assert!(a.is_nested());
        assert_eq!(a.u8().unwrap(), 7);
        let b = it.next().unwrap().unwrap();
        assert_eq!(b.kind(), 2);
        assert_eq!(b.u16_be().unwrap(), 0x1234);
        assert!(it.next().is_none());
    }

    #[test]
    fn zero_length_payload_is_accepted() {
        let buf = hdr(4, 5);
        let a = Attrs::new(&buf).next().unwrap().unwrap();
        assert_eq!(a.payload(), &[] as &[u8]);
        assert_eq!(a.u8(), Err(Error::AttributeSize { kind: 5, len: 0 }));
    }

    #[test]
    fn rejects_short_len_and_fuses() {
        let mut buf = [0u8; 12];
        buf[0..4].copy_from_slice(&hdr(3, 1));
        let mut it = Attrs::new(&buf);
        assert!(matches!(it.next(), Some(Err(Error::InvalidLength(_)))));
        assert!(it.next().is_none());
        assert!(it.next().is_none());
    }

    #[test]
    fn rejects_len_past_end() {
        let buf = hdr(8, 1);
        let mut it = Attrs::new(&buf);
        assert!(matches!(it.next(), Some(Err(Error::Truncated(_)))));
        assert!(it.next().is_none());
    }

    #[test]
    fn rejects_partial_header() {
        let mut it = Attrs::new(&[4, 0]);
        assert!(matches!(it.next(), Some(Err(Error::Truncated(_)))));
    }

    #[test]
    fn masks_both_flags() {
        let buf = hdr(4, 3 | NLA_F_NESTED | NLA_F_NET_BYTEORDER);
        let a = Attrs::new(&buf).next().unwrap().unwrap();
        assert_eq!(a.kind(), 3);
        assert!(a.is_net_byteorder());
        assert!(a.is_nested());
    }

    #[test]
    fn typed_readers_check_exact_length() {
        let a = Attr::new(1, &[0, 0, 0, 1]);
        assert_eq!(a.u32_be().unwrap(), 1);
        assert!(a.u16_be().is_err());
        assert!(a.u64_be().is_err());
        let b = Attr::new(1, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(b.u64_be().unwrap(), 0x0102_0304_0506_0708);
        assert_eq!(a.u32_ne().unwrap(), NativeEndian::read_u32(&[0, 0, 0, 1]));
    }

    #[test]
    fn strings() {
        assert_eq!(Attr::new(1, b"ftp\0").c_str().unwrap(), "ftp");
        assert_eq!(Attr::new(1, b"ftp\0\0\0\0").c_str().unwrap(), "ftp");
        assert!(Attr::new(1, b"ftp").c_str().is_err());
        assert!(Attr::new(1, b"\xff\0").c_str().is_err());
        assert!(Attr::new(1, b"abcdef\0").c_str_bounded(3).is_err());
        assert_eq!(Attr::new(1, b"\0").c_str().unwrap(), "");
    }

    #[test]
    fn find_and_nested() {
        let mut buf = [0u8; 16];
        buf[0..4].copy_from_slice(&hdr(12, 1 | NLA_F_NESTED));
        buf[4..8].copy_from_slice(&hdr(8, 9));
        buf[8..12].copy_from_slice(&[0, 0, 1, 0]);
        buf[12..16].copy_from_slice(&hdr(4, 2));
        let outer = Attrs::new(&buf).find(1).unwrap().unwrap();
        let inner = outer.nested().find(9).unwrap().unwrap();
        assert_eq!(inner.u32_be().unwrap(), 256);
        assert!(Attrs::new(&buf).find(7).unwrap().is_none());
    }
}
