//! A netlink writer over a caller's `&mut [u8]`.

use byteorder::{BigEndian, ByteOrder, NativeEndian};

use crate::nl::attr::{HDRLEN, NLA_F_NESTED};
use crate::nl::{align, NlMsgHeader};
use crate::{Error, Result};

/// Writes netlink messages and attributes into a caller-provided buffer.
///
/// Every write either fits completely or returns [`Error::BufferTooSmall`] (or
/// [`Error::TooLong`] when a length does not fit its field) and leaves nothing half-written:
/// a failed [`message`](Writer::message) or [`nest`](Writer::nest) rewinds to where it began.
/// Padding is always zeroed. Messages written one after the other form one datagram.
///
/// ```
/// use conntrack_codec::nl::{Attrs, Messages, Writer};
///
/// let mut buf = [0u8; 64];
/// let mut w = Writer::new(&mut buf);
/// w.message(0x0101, 0x0001, 1, 0, |w| {
///     w.raw(&[2, 0, 0, 0])?;            // nfgenmsg
///     w.nest(1, |w| w.attr_u32_be(3, 0xc0a8_0001))
/// })?;
/// let len = w.len();
///
/// let msg = Messages::new(&buf[..len]).next().unwrap()?;
/// let nest = Attrs::new(&msg.payload()[4..]).next().unwrap()?;
/// assert!(nest.is_nested());
/// assert_eq!(nest.nested().find(3)?.unwrap().u32_be()?, 0xc0a8_0001);
/// # Ok::<(), conntrack_codec::Error>(())
/// ```
#[derive(Debug)]
pub struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
}

/// Logs the bytes written so far and the buffer's capacity (not the unwritten rest).
#[cfg(feature = "defmt")]
impl defmt::Format for Writer<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "Writer {{ written: {=[u8]}, capacity: {=usize} }}",
            self.written(),
            self.buf.len()
        );
    }
}

impl<'b> Writer<'b> {
    /// A writer that starts at the beginning of `buf`.
    #[inline]
    pub fn new(buf: &'b mut [u8]) -> Self {
        Writer { buf, len: 0 }
    }

    /// Bytes written so far.
    #[inline]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left in the buffer.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.len)
    }

    /// The bytes written so far.
    #[inline]
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Consumes the writer and returns the written bytes with the buffer's lifetime.
    pub fn into_written(self) -> &'b [u8] {
        let len = self.len;
        let buf: &'b [u8] = self.buf;
        buf.get(..len).unwrap_or(&[])
    }

    /// Forgets everything written (the buffer can be reused for the next datagram).
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Moves the end back to `len` if it is before the current end (rewinds a failed write).
    #[inline]
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
        }
    }

    /// Takes `n` bytes at the end, or fails without changing anything.
    #[inline]
    fn grow(&mut self, n: usize) -> Result<&mut [u8]> {
        let start = self.len;
        let end = start.checked_add(n).ok_or(Error::BufferTooSmall)?;
        let dst = self.buf.get_mut(start..end).ok_or(Error::BufferTooSmall)?;
        self.len = end;
        Ok(dst)
    }

    /// Writes `bytes` followed by zero padding to the next 4-byte boundary (a fixed header
    /// such as nfgenmsg, or an error code).
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn raw(&mut self, bytes: &[u8]) -> Result<()> {
        let padded = align(bytes.len()).ok_or(Error::BufferTooSmall)?;
        let dst = self.grow(padded)?;
        let (data, pad) = dst.split_at_mut(bytes.len().min(dst.len()));
        data.copy_from_slice(bytes);
        pad.fill(0);
        Ok(())
    }

    /// Writes one whole netlink message: its header, then whatever `body` writes, then the
    /// length is patched in. Returns the byte range of the message.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`], [`Error::TooLong`] if the message exceeds `u32`, or what
    /// `body` returns; in every case the writer is rewound to where the message began.
    pub fn message<F>(
        &mut self,
        kind: u16,
        flags: u16,
        seq: u32,
        pid: u32,
        body: F,
    ) -> Result<core::ops::Range<usize>>
    where
        F: FnOnce(&mut Self) -> Result<()>,
    {
        let start = self.len;
        let result = self.message_inner(start, kind, flags, seq, pid, body);
        if result.is_err() {
            self.len = start;
        }
        result.map(|()| start..self.len)
    }

    fn message_inner<F>(
        &mut self,
        start: usize,
        kind: u16,
        flags: u16,
        seq: u32,
        pid: u32,
        body: F,
    ) -> Result<()>
    where
        F: FnOnce(&mut Self) -> Result<()>,
    {
        self.grow(NlMsgHeader::LEN)?;
        body(self)?;
        let total = self.len.checked_sub(start).ok_or(Error::BufferTooSmall)?;
        let len = u32::try_from(total).map_err(|_| Error::TooLong("netlink message"))?;
        let header = NlMsgHeader {
            len,
            kind,
            flags,
            seq,
            pid,
        };
        let dst = self.buf.get_mut(start..).ok_or(Error::BufferTooSmall)?;
        header.emit(dst)
    }

    /// Writes one attribute of type `kind` with `payload`, padded with zeros.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`]; [`Error::TooLong`] if the payload exceeds what `nla_len`
    /// (u16) can describe.
    pub fn attr(&mut self, kind: u16, payload: &[u8]) -> Result<()> {
        let total = payload
            .len()
            .checked_add(HDRLEN)
            .ok_or(Error::TooLong("attribute"))?;
        let nla_len = u16::try_from(total).map_err(|_| Error::TooLong("attribute"))?;
        let padded = align(total).ok_or(Error::BufferTooSmall)?;
        let dst = self.grow(padded)?;
        let (hdr, rest) = dst.split_at_mut(HDRLEN.min(dst.len()));
        write_attr_header(hdr, nla_len, kind);
        let (data, pad) = rest.split_at_mut(payload.len().min(rest.len()));
        data.copy_from_slice(payload);
        pad.fill(0);
        Ok(())
    }

    /// Writes a zero-length attribute (a flag).
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    #[inline]
    pub fn attr_flag(&mut self, kind: u16) -> Result<()> {
        self.attr(kind, &[])
    }

    /// Writes a one-byte attribute.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    #[inline]
    pub fn attr_u8(&mut self, kind: u16, v: u8) -> Result<()> {
        self.attr(kind, &[v])
    }

    /// Writes a big-endian u16 attribute.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    #[inline]
    pub fn attr_u16_be(&mut self, kind: u16, v: u16) -> Result<()> {
        let mut b = [0u8; 2];
        BigEndian::write_u16(&mut b, v);
        self.attr(kind, &b)
    }

    /// Writes a big-endian u32 attribute.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    #[inline]
    pub fn attr_u32_be(&mut self, kind: u16, v: u32) -> Result<()> {
        let mut b = [0u8; 4];
        BigEndian::write_u32(&mut b, v);
        self.attr(kind, &b)
    }

    /// Writes a big-endian u64 attribute.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    #[inline]
    pub fn attr_u64_be(&mut self, kind: u16, v: u64) -> Result<()> {
        let mut b = [0u8; 8];
        BigEndian::write_u64(&mut b, v);
        self.attr(kind, &b)
    }

    /// Writes a host-order u32 attribute.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    #[inline]
    pub fn attr_u32_ne(&mut self, kind: u16, v: u32) -> Result<()> {
        let mut b = [0u8; 4];
        NativeEndian::write_u32(&mut b, v);
        self.attr(kind, &b)
    }

    /// Writes a string attribute with its NUL terminator.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`]; [`Error::TooLong`]; [`Error::InvalidString`] if `s`
    /// contains a NUL.
    pub fn attr_str(&mut self, kind: u16, s: &str) -> Result<()> {
        if s.as_bytes().contains(&0) {
            return Err(Error::InvalidString("string to write contains NUL"));
        }
        let total = s
            .len()
            .checked_add(HDRLEN + 1)
            .ok_or(Error::TooLong("attribute"))?;
        let nla_len = u16::try_from(total).map_err(|_| Error::TooLong("attribute"))?;
        let padded = align(total).ok_or(Error::BufferTooSmall)?;
        let dst = self.grow(padded)?;
        let (hdr, rest) = dst.split_at_mut(HDRLEN.min(dst.len()));
        write_attr_header(hdr, nla_len, kind);
        let (data, pad) = rest.split_at_mut(s.len().min(rest.len()));
        data.copy_from_slice(s.as_bytes());
        pad.fill(0);
        Ok(())
    }

    /// Writes a nested attribute: `body` writes its children, then the length is patched in
    /// and `NLA_F_NESTED` is set.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`], [`Error::TooLong`] if the nest exceeds 65535 bytes, or what
    /// `body` returns; in every case the writer is rewound to where the nest began.
    pub fn nest<F>(&mut self, kind: u16, body: F) -> Result<()>
    where
        F: FnOnce(&mut Self) -> Result<()>,
    {
        let start = self.len;
        let result = self.nest_inner(start, kind, body);
        if result.is_err() {
            self.len = start;
        }
        result
    }

    fn nest_inner<F>(&mut self, start: usize, kind: u16, body: F) -> Result<()>
    where
        F: FnOnce(&mut Self) -> Result<()>,
    {
        self.grow(HDRLEN)?;
        body(self)?;
        let total = self.len.checked_sub(start).ok_or(Error::BufferTooSmall)?;
        let nla_len = u16::try_from(total).map_err(|_| Error::TooLong("nested attribute"))?;
        let hdr = self.buf.get_mut(start..).ok_or(Error::BufferTooSmall)?;
        write_attr_header(hdr, nla_len, kind | NLA_F_NESTED);
        Ok(())
    }
}

/// Writes an optional attribute: runs `write` with the value if there is one.
///
/// ```
/// use conntrack_codec::nl::{opt, Writer};
///
/// let mut buf = [0u8; 16];
/// let mut w = Writer::new(&mut buf);
/// opt(&mut w, Some(7u32), |w, v| w.attr_u32_be(1, v))?;
/// opt(&mut w, None::<u32>, |w, v| w.attr_u32_be(2, v))?;
/// assert_eq!(w.len(), 8);
/// # Ok::<(), conntrack_codec::Error>(())
/// ```
///
/// # Errors
/// What `write` returns.
#[inline]
pub fn opt<T>(
    w: &mut Writer<'_>,
    v: Option<T>,
    write: impl FnOnce(&mut Writer<'_>, T) -> Result<()>,
) -> Result<()> {
    match v {
        Some(v) => write(w, v),
        None => Ok(()),
    }
}

/// Writes `nla_len` and `nla_type` into the first four bytes of `hdr` (if it has them).
#[inline]
fn write_attr_header(hdr: &mut [u8], nla_len: u16, kind: u16) {
    if let Some(h) = hdr.get_mut(..HDRLEN) {
        let (l, t) = h.split_at_mut(2);
        NativeEndian::write_u16(l, nla_len);
        // The caller's type as given, flags included: an unknown attribute is written back
        // with the NLA_F_NESTED / NLA_F_NET_BYTEORDER it arrived with.
        NativeEndian::write_u16(t, kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nl::{Attrs, Messages};

    #[test]
    fn attr_padding_is_zeroed() {
        let mut buf = [0xa5u8; 16];
        let mut w = Writer::new(&mut buf);
        w.attr_u8(3, 9).unwrap();
        assert_eq!(w.len(), 8);
        let mut expect = [0u8; 8];
        NativeEndian::write_u16(&mut expect[0..2], 5);
        NativeEndian::write_u16(&mut expect[2..4], 3);
        expect[4] = 9;
        assert_eq!(w.written(), &expect);
        assert_eq!(buf[8..], [0xa5; 8]);
    }

    /// Regression (fuzz target `roundtrip`): the writer dropped `NLA_F_NET_BYTEORDER` from
    /// the type it was given, so an unknown attribute that arrived with it was written back
    /// without it and parsed back as a different attribute.
    #[test]
    fn flags_given_are_written() {
        use crate::nl::attr::NLA_F_NET_BYTEORDER;
        let mut buf = [0u8; 32];
        let mut w = Writer::new(&mut buf);
        for kind in [
            0x3466,
            0x3466 | NLA_F_NET_BYTEORDER,
            0x3fff | NLA_F_NESTED | NLA_F_NET_BYTEORDER,
        ] {
            w.clear();
            w.attr(kind, &[1, 2]).unwrap();
            let a = Attrs::new(w.written()).next().unwrap().unwrap();
            assert_eq!(a.raw_kind(), kind);
        }
        w.clear();
        w.nest(7 | NLA_F_NET_BYTEORDER, |_| Ok(())).unwrap();
        let a = Attrs::new(w.written()).next().unwrap().unwrap();
        assert_eq!(a.raw_kind(), 7 | NLA_F_NESTED | NLA_F_NET_BYTEORDER);
    }

    #[test]
    fn strings_get_nul() {
        let mut buf = [0xa5u8; 16];
        let mut w = Writer::new(&mut buf);
        w.attr_str(1, "ftp").unwrap();
        assert_eq!(w.len(), 8);
        let a = Attrs::new(w.written()).next().unwrap().unwrap();
        assert_eq!(a.payload(), b"ftp\0");
        assert_eq!(a.c_str().unwrap(), "ftp");
        assert!(w.attr_str(1, "a\0b").is_err());
    }

    #[test]
    fn nest_sets_flag_and_length() {
        let mut buf = [0xa5u8; 64];
        let mut w = Writer::new(&mut buf);
        w.nest(1, |w| {
            w.attr_u16_be(2, 0x1234)?;
            w.nest(3, |w| w.attr_u64_be(4, 1))
        })
        .unwrap();
        let out = w.written();
        assert_eq!(out.len(), 4 + 8 + 4 + 12);
        let outer = Attrs::new(out).next().unwrap().unwrap();
        assert!(outer.is_nested());
        assert_eq!(outer.kind(), 1);
        let mut inner = outer.nested();
        assert_eq!(inner.next().unwrap().unwrap().u16_be().unwrap(), 0x1234);
        let n = inner.next().unwrap().unwrap();
        assert!(n.is_nested());
        assert_eq!(n.nested().find(4).unwrap().unwrap().u64_be().unwrap(), 1);
    }

    #[test]
    fn failed_nest_and_message_rewind() {
        let mut buf = [0u8; 24];
        let mut w = Writer::new(&mut buf);
        w.attr_u32_be(1, 1).unwrap();
        assert_eq!(
            w.nest(2, |w| w.attr(3, &[0; 32])),
            Err(Error::BufferTooSmall)
        );
        assert_eq!(w.len(), 8);
        assert!(w.message(0x100, 0, 1, 0, |w| w.raw(&[0; 4])).is_err());
        assert_eq!(w.len(), 8);
    }

    #[test]
    fn every_too_small_buffer_fails_cleanly() {
        let mut full = [0u8; 128];
        let mut w = Writer::new(&mut full);
        let body = |w: &mut Writer<'_>| {
            w.raw(&[2, 0, 0, 0])?;
            w.nest(1, |w| {
                w.attr_u32_be(1, 7)?;
                w.attr_str(2, "hello")
            })?;
            w.attr_u64_be(3, 99)
        };
        let range = w.message(0x100, 1, 2, 3, body).unwrap();
        let need = range.end;
        for size in 0..need {
            let mut small = [0u8; 128];
            let mut w = Writer::new(&mut small[..size]);
            assert!(w.message(0x100, 1, 2, 3, body).is_err(), "size {size}");
            assert_eq!(w.len(), 0);
        }
        let m = Messages::new(&full[..need]).next().unwrap().unwrap();
        assert_eq!(m.header().len as usize, need);
    }

    #[test]
    fn oversized_attribute_is_too_long() {
        let big = [0u8; 70_000];
        let mut buf = [0u8; 80_000];
        let mut w = Writer::new(&mut buf);
        assert_eq!(w.attr(1, &big), Err(Error::TooLong("attribute")));
        assert_eq!(
            w.nest(1, |w| {
                w.attr(2, &big[..40_000])?;
                w.attr(2, &big[..30_000])
            }),
            Err(Error::TooLong("nested attribute"))
        );
        assert!(w.is_empty());
    }
}
