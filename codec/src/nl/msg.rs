//! Netlink messages (`struct nlmsghdr`): the header repr, a message view, a fused iterator.

use byteorder::{ByteOrder, NativeEndian};

use crate::nl::control::Control;
use crate::nl::{align, flags, NLMSG_MIN_TYPE};
use crate::{Error, Result};

mod field {
    use core::ops::Range;
    pub const LEN: Range<usize> = 0..4;
    pub const TYPE: Range<usize> = 4..6;
    pub const FLAGS: Range<usize> = 6..8;
    pub const SEQ: Range<usize> = 8..12;
    pub const PID: Range<usize> = 12..16;
}

/// The netlink message header, as plain data (`struct nlmsghdr`, host byte order on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NlMsgHeader {
    /// Length of the message, header included, padding excluded.
    pub len: u32,
    /// Message type: a control type or, for nfnetlink, `subsystem << 8 | message`.
    pub kind: u16,
    /// `NLM_F_*` flags.
    pub flags: u16,
    /// Sequence number.
    pub seq: u32,
    /// Port id of the sender (0 for the kernel).
    pub pid: u32,
}

impl NlMsgHeader {
    /// Size of the header on the wire.
    pub const LEN: usize = 16;

    /// Reads a header from the first 16 bytes of `buf` (no check of `len` against `buf`).
    ///
    /// # Errors
    /// [`Error::Truncated`] if `buf` is shorter than 16 bytes.
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let h = buf
            .get(..Self::LEN)
            .ok_or(Error::Truncated("netlink message header"))?;
        let read_u32 = |r| h.get(r).map(NativeEndian::read_u32).unwrap_or(0);
        let read_u16 = |r| h.get(r).map(NativeEndian::read_u16).unwrap_or(0);
        Ok(NlMsgHeader {
            len: read_u32(field::LEN),
            kind: read_u16(field::TYPE),
            flags: read_u16(field::FLAGS),
            seq: read_u32(field::SEQ),
            pid: read_u32(field::PID),
        })
    }

    /// Writes the header into the first 16 bytes of `buf`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `buf` is shorter than 16 bytes.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let h = buf.get_mut(..Self::LEN).ok_or(Error::BufferTooSmall)?;
        let mut put = |r: core::ops::Range<usize>, bytes: &[u8]| {
            if let Some(dst) = h.get_mut(r) {
                dst.copy_from_slice(bytes);
            }
        };
        let mut b4 = [0u8; 4];
        let mut b2 = [0u8; 2];
        NativeEndian::write_u32(&mut b4, self.len);
        put(field::LEN, &b4);
        NativeEndian::write_u16(&mut b2, self.kind);
        put(field::TYPE, &b2);
        NativeEndian::write_u16(&mut b2, self.flags);
        put(field::FLAGS, &b2);
        NativeEndian::write_u32(&mut b4, self.seq);
        put(field::SEQ, &b4);
        NativeEndian::write_u32(&mut b4, self.pid);
        put(field::PID, &b4);
        Ok(())
    }
}

/// A view of one netlink message: its header and its payload, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NlMsg<'a> {
    header: NlMsgHeader,
    bytes: &'a [u8],
}

impl<'a> NlMsg<'a> {
    /// Checks the header of the message at the start of `buf` and returns a view of it.
    ///
    /// Bytes after `nlmsg_len` are not part of the message and are ignored.
    ///
    /// # Errors
    /// [`Error::Truncated`] if `buf` is shorter than the header or than `nlmsg_len`;
    /// [`Error::InvalidLength`] if `nlmsg_len < 16`.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        let header = NlMsgHeader::parse(buf)?;
        let len = usize::try_from(header.len).map_err(|_| Error::Truncated("netlink message"))?;
        if len < NlMsgHeader::LEN {
            return Err(Error::InvalidLength("netlink message (nlmsg_len < 16)"));
        }
        let bytes = buf.get(..len).ok_or(Error::Truncated("netlink message"))?;
        Ok(NlMsg { header, bytes })
    }

    /// The header.
    #[inline]
    pub const fn header(&self) -> &NlMsgHeader {
        &self.header
    }

    /// The message type.
    #[inline]
    pub const fn kind(&self) -> u16 {
        self.header.kind
    }

    /// The `NLM_F_*` flags.
    #[inline]
    pub const fn flags(&self) -> u16 {
        self.header.flags
    }

    /// The sequence number.
    #[inline]
    pub const fn seq(&self) -> u32 {
        self.header.seq
    }

    /// The sender's port id.
    #[inline]
    pub const fn pid(&self) -> u32 {
        self.header.pid
    }

    /// Whether `NLM_F_MULTI` is set: a part of a dump.
    #[inline]
    pub const fn is_multi(&self) -> bool {
        self.header.flags & flags::MULTI != 0
    }

    /// Whether `NLM_F_DUMP_INTR` is set: the table changed during the dump.
    #[inline]
    pub const fn is_dump_intr(&self) -> bool {
        self.header.flags & flags::DUMP_INTR != 0
    }

    /// Whether this is a netlink control message (type below `NLMSG_MIN_TYPE`).
    #[inline]
    pub const fn is_control(&self) -> bool {
        self.header.kind < NLMSG_MIN_TYPE
    }

    /// The whole message, header included (`nlmsg_len` bytes).
    #[inline]
    pub const fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The payload after the 16-byte header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.bytes.get(NlMsgHeader::LEN..).unwrap_or(&[])
    }

    /// Reads this message as a control message, or `None` if its type is a protocol type.
    ///
    /// # Errors
    /// A malformed `NLMSG_ERROR` or `NLMSG_DONE` payload.
    pub fn control(&self) -> Result<Option<Control<'a>>> {
        Control::parse(self)
    }
}

/// A fused iterator over the netlink messages of one received datagram.
///
/// It advances by the aligned `nlmsg_len`; it reports `nlmsg_len < 16` or a length past the
/// end of the buffer as an error, once, and then yields `None` forever.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Messages<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Messages<'a> {
    /// Iterates over the messages in `buf`.
    #[inline]
    pub const fn new(buf: &'a [u8]) -> Self {
        Messages {
            buf,
            pos: 0,
            failed: false,
        }
    }

    /// Offset in the buffer of the next message (after an error: of the malformed one).
    #[inline]
    pub const fn offset(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<NlMsg<'a>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        if rest.is_empty() {
            return None;
        }
        match NlMsg::new_checked(rest) {
            Ok(msg) => {
                let step = align(msg.bytes.len()).unwrap_or(usize::MAX).min(rest.len());
                self.pos = self.pos.saturating_add(step);
                Some(Ok(msg))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for Messages<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(buf: &mut [u8], len: u32, kind: u16) {
        NlMsgHeader {
            len,
            kind,
            flags: flags::MULTI,
            seq: 7,
            pid: 0,
        }
        .emit(buf)
        .unwrap();
    }

    #[test]
    fn header_round_trip() {
        let h = NlMsgHeader {
            len: 20,
            kind: 0x0100,
            flags: 0x0305,
            seq: 0xdead_beef,
            pid: 42,
        };
        let mut buf = [0xa5u8; 16];
        h.emit(&mut buf).unwrap();
        assert_eq!(NlMsgHeader::parse(&buf).unwrap(), h);
        assert_eq!(h.emit(&mut [0u8; 15]), Err(Error::BufferTooSmall));
        assert!(NlMsgHeader::parse(&buf[..15]).is_err());
    }

    #[test]
    fn iterates_aligned() {
        let mut buf = [0u8; 40];
        msg(&mut buf[0..], 17, 0x100);
        msg(&mut buf[20..], 20, 3);
        let mut it = Messages::new(&buf);
        let first = it.next().unwrap().unwrap();
        assert_eq!(first.payload(), &[0]);
        assert!(first.is_multi());
        assert_eq!(it.offset(), 20);
        assert_eq!(it.next().unwrap().unwrap().kind(), 3);
        assert!(it.next().is_none());
    }

    #[test]
    fn last_message_may_be_unpadded() {
        let mut buf = [0u8; 17];
        msg(&mut buf, 17, 0x100);
        let mut it = Messages::new(&buf);
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().is_none());
    }

    #[test]
    fn rejects_short_and_long_and_fuses() {
        let mut buf = [0u8; 32];
        msg(&mut buf, 15, 0x100);
        let mut it = Messages::new(&buf);
        assert!(matches!(it.next(), Some(Err(Error::InvalidLength(_)))));
        assert_eq!(it.offset(), 0);
        assert!(it.next().is_none());

        msg(&mut buf, 16, 0x100);
        msg(&mut buf[16..], 33, 0x100);
        let mut it = Messages::new(&buf);
        assert!(it.next().unwrap().is_ok());
        assert!(matches!(it.next(), Some(Err(Error::Truncated(_)))));
        assert_eq!(it.offset(), 16);
        assert!(it.next().is_none());
    }

    #[test]
    fn trailing_partial_header_is_an_error() {
        let mut buf = [0u8; 20];
        msg(&mut buf, 16, 0x100);
        let mut it = Messages::new(&buf);
        assert!(it.next().unwrap().is_ok());
        assert!(matches!(it.next(), Some(Err(Error::Truncated(_)))));
    }
}
