//! The message header, the walk over the messages of a datagram, their classification, and
//! the control messages.

use crate::sync::{flags, msg_type, ACK_LEN, HEADER_LEN, VERSION};
use crate::{Error, Result};

/// Named offsets of the header.
mod field {
    use core::ops::Range;
    pub const VERSION_TYPE: usize = 0;
    pub const FLAGS: usize = 1;
    pub const LEN: Range<usize> = 2..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const FROM: Range<usize> = 8..12;
    pub const TO: Range<usize> = 12..16;
}

fn be16(b: &[u8], r: core::ops::Range<usize>) -> Result<u16> {
    let a: [u8; 2] = b
        .get(r)
        .and_then(|s| s.try_into().ok())
        .ok_or(Error::Truncated("sync header"))?;
    Ok(u16::from_be_bytes(a))
}

fn be32(b: &[u8], r: core::ops::Range<usize>) -> Result<u32> {
    let a: [u8; 4] = b
        .get(r)
        .and_then(|s| s.try_into().ok())
        .ok_or(Error::Truncated("sync header"))?;
    Ok(u32::from_be_bytes(a))
}

/// The fields of a message header, as plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    /// The protocol version (the high nibble of the first byte; 1 today).
    pub version: u8,
    /// The message type (the low nibble; see [`msg_type`]).
    pub kind: u8,
    /// The flags (see [`flags`]).
    pub flags: u8,
    /// The message length, header included.
    pub len: u16,
    /// The sequence number.
    pub seq: u32,
}

impl Header {
    /// Reads the 8-byte header at the start of `bytes`.
    ///
    /// # Errors
    /// [`Error::Truncated`] if there are fewer than 8 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let b0 = *bytes
            .get(field::VERSION_TYPE)
            .ok_or(Error::Truncated("sync header"))?;
        let fl = *bytes
            .get(field::FLAGS)
            .ok_or(Error::Truncated("sync header"))?;
        Ok(Header {
            version: b0 >> 4,
            kind: b0 & 0x0f,
            flags: fl,
            len: be16(bytes, field::LEN)?,
            seq: be32(bytes, field::SEQ)?,
        })
    }

    /// Writes the header into the first 8 bytes of `buf`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`]; [`Error::InvalidValue`] for a version or type over 15.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if self.version > 0x0f || self.kind > 0x0f {
            return Err(Error::InvalidValue("sync version or type nibble"));
        }
        let out = buf.get_mut(..HEADER_LEN).ok_or(Error::BufferTooSmall)?;
        let mut bytes = [0u8; HEADER_LEN];
        bytes[0] = (self.version << 4) | self.kind;
        bytes[1] = self.flags;
        bytes[2..4].copy_from_slice(&self.len.to_be_bytes());
        bytes[4..8].copy_from_slice(&self.seq.to_be_bytes());
        out.copy_from_slice(&bytes);
        Ok(())
    }

    /// Whether the type and flags make this an ACK, NACK or RESYNC (a 16-byte message), by
    /// the rule conntrackd applies before it reads `from` and `to`.
    pub const fn has_range(&self) -> bool {
        self.kind == msg_type::CTL && self.flags & (flags::ACK | flags::NACK | flags::RESYNC) != 0
    }
}

/// The walk over the messages of one datagram, as conntrackd's receiver does it: each message
/// starts where the previous one's length ends; a length under the header (or under 16 for
/// ACK, NACK, RESYNC) or past the datagram's end is an error, after which the walk stops.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Messages<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> Messages<'a> {
    /// Walks `datagram`.
    pub const fn new(datagram: &'a [u8]) -> Self {
        Messages {
            rest: datagram,
            done: false,
        }
    }

    fn step(&mut self) -> Result<Message<'a>> {
        let hdr = Header::parse(self.rest)?;
        let len = usize::from(hdr.len);
        let min = if hdr.has_range() { ACK_LEN } else { HEADER_LEN };
        if len < min {
            return Err(Error::InvalidLength("sync message"));
        }
        let (bytes, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or(Error::Truncated("sync message"))?;
        self.rest = rest;
        Ok(Message { hdr, bytes })
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let r = self.step();
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }
}

impl core::iter::FusedIterator for Messages<'_> {}

/// One message of a datagram: its header and its bytes (header included), length-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Message<'a> {
    hdr: Header,
    bytes: &'a [u8],
}

/// What a data message announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DataKind {
    /// A new conntrack entry.
    CtNew,
    /// A changed conntrack entry.
    CtUpdate,
    /// A deleted conntrack entry.
    CtDelete,
    /// A new expectation.
    ExpNew,
    /// A changed expectation.
    ExpUpdate,
    /// A deleted expectation.
    ExpDelete,
}

impl DataKind {
    /// The message type number.
    pub const fn number(self) -> u8 {
        match self {
            DataKind::CtNew => msg_type::CT_NEW,
            DataKind::CtUpdate => msg_type::CT_UPD,
            DataKind::CtDelete => msg_type::CT_DEL,
            DataKind::ExpNew => msg_type::EXP_NEW,
            DataKind::ExpUpdate => msg_type::EXP_UPD,
            DataKind::ExpDelete => msg_type::EXP_DEL,
        }
    }

    /// The kind of message type `n`, if it is a data type.
    pub const fn from_number(n: u8) -> Option<Self> {
        Some(match n {
            msg_type::CT_NEW => DataKind::CtNew,
            msg_type::CT_UPD => DataKind::CtUpdate,
            msg_type::CT_DEL => DataKind::CtDelete,
            msg_type::EXP_NEW => DataKind::ExpNew,
            msg_type::EXP_UPD => DataKind::ExpUpdate,
            msg_type::EXP_DEL => DataKind::ExpDelete,
            _ => return None,
        })
    }

    /// Whether it is about an expectation.
    pub const fn is_expect(self) -> bool {
        matches!(
            self,
            DataKind::ExpNew | DataKind::ExpUpdate | DataKind::ExpDelete
        )
    }
}

/// The meaning of a message, classified as conntrackd's FTFW receiver classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Body<'a> {
    /// A conntrack or expectation message and its `NTA_*` attribute bytes.
    Data {
        /// What it announces.
        kind: DataKind,
        /// The attributes (everything after the header).
        attrs: &'a [u8],
    },
    /// The peer received `from..=to`.
    Ack {
        /// First sequence number acknowledged.
        from: u32,
        /// Last one.
        to: u32,
    },
    /// The peer missed `from..=to`.
    Nack {
        /// First sequence number missed.
        from: u32,
        /// Last one.
        to: u32,
    },
    /// The peer asks for the whole internal cache.
    Resync,
    /// A keepalive.
    Alive,
}

impl<'a> Message<'a> {
    /// The header.
    pub const fn header(&self) -> Header {
        self.hdr
    }

    /// The whole message, header included.
    pub const fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The sequence number.
    pub const fn seq(&self) -> u32 {
        self.hdr.seq
    }

    /// The flags.
    pub const fn flags(&self) -> u8 {
        self.hdr.flags
    }

    /// Whether the sender says HELLO (it started, its numbering begins here).
    pub const fn is_hello(&self) -> bool {
        self.hdr.flags & flags::HELLO != 0
    }

    /// Whether the sender answers a HELLO.
    pub const fn is_hello_back(&self) -> bool {
        self.hdr.flags & flags::HELLO_BACK != 0
    }

    /// What the message means.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for another protocol version, a type that is neither data nor
    /// control, data with flags other than HELLO/HELLO_BACK, a control message with no known
    /// flag, or an ACK/NACK whose range runs backwards (conntrackd's "bad header").
    pub fn body(&self) -> Result<Body<'a>> {
        let h = self.hdr;
        if h.version != VERSION {
            return Err(Error::InvalidValue("sync protocol version"));
        }
        if let Some(kind) = DataKind::from_number(h.kind) {
            if h.flags & !(flags::HELLO | flags::HELLO_BACK) != 0 {
                return Err(Error::InvalidValue("sync data message flags"));
            }
            let attrs = self
                .bytes
                .get(HEADER_LEN..)
                .ok_or(Error::Truncated("sync message"))?;
            return Ok(Body::Data { kind, attrs });
        }
        if h.kind != msg_type::CTL {
            return Err(Error::InvalidValue("sync message type"));
        }
        let range = || -> Result<(u32, u32)> {
            let from = be32(self.bytes, field::FROM)?;
            let to = be32(self.bytes, field::TO)?;
            if crate::sync::seq_before(to, from) {
                return Err(Error::InvalidValue("sync ack range"));
            }
            Ok((from, to))
        };
        if h.flags & flags::ACK != 0 {
            let (from, to) = range()?;
            Ok(Body::Ack { from, to })
        } else if h.flags & flags::NACK != 0 {
            let (from, to) = range()?;
            Ok(Body::Nack { from, to })
        } else if h.flags & flags::RESYNC != 0 {
            Ok(Body::Resync)
        } else if h.flags & flags::ALIVE != 0 {
            Ok(Body::Alive)
        } else {
            Err(Error::InvalidValue("sync control flags"))
        }
    }
}

/// A control message as plain data: ACK, NACK and RESYNC are written with `from` and `to`
/// (16 bytes), anything else (ALIVE) as the bare header (8 bytes), as conntrackd does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Control {
    /// The flags (ACK, NACK, RESYNC or ALIVE, with HELLO/HELLO_BACK if due).
    pub flags: u8,
    /// The sequence number.
    pub seq: u32,
    /// First sequence number of the range (ACK, NACK).
    pub from: u32,
    /// Last one.
    pub to: u32,
}

impl Control {
    /// The bytes [`Control::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        let h = Header {
            version: VERSION,
            kind: msg_type::CTL,
            flags: self.flags,
            len: 0,
            seq: 0,
        };
        if h.has_range() {
            ACK_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Writes the message at the start of `buf` and returns its length.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let len16 = u16::try_from(len).map_err(|_| Error::TooLong("sync message"))?;
        Header {
            version: VERSION,
            kind: msg_type::CTL,
            flags: self.flags,
            len: len16,
            seq: self.seq,
        }
        .emit(out)?;
        if let Some(range) = out.get_mut(field::FROM.start..field::TO.end) {
            let mut b = [0u8; 8];
            b[..4].copy_from_slice(&self.from.to_be_bytes());
            b[4..].copy_from_slice(&self.to.to_be_bytes());
            range.copy_from_slice(&b);
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_round_trip_and_sizes() {
        for (flags, len) in [
            (flags::ACK, 16),
            (flags::NACK, 16),
            (flags::RESYNC, 16),
            (flags::ALIVE, 8),
            (flags::ALIVE | flags::HELLO, 8),
        ] {
            let c = Control {
                flags,
                seq: 0xfffffffe,
                from: 3,
                to: 9,
            };
            let mut buf = [0xa5u8; 20];
            assert_eq!(c.emit(&mut buf).unwrap(), len);
            assert_eq!(buf[0], 0x1a);
            let m = Messages::new(&buf[..len]).next().unwrap().unwrap();
            assert_eq!(m.seq(), 0xfffffffe);
            match m.body().unwrap() {
                Body::Ack { from, to } | Body::Nack { from, to } => assert_eq!((from, to), (3, 9)),
                Body::Resync | Body::Alive => assert!(len == 16 || flags & flags::ALIVE != 0),
                Body::Data { .. } => panic!("control read as data"),
            }
        }
        assert_eq!(
            Control::default().emit(&mut [0u8; 4]),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn bad_framing_stops_the_walk() {
        // Length 4: under the header.
        let bad = [0x10, 0, 0, 4, 0, 0, 0, 1, 0x10, 0, 0, 8, 0, 0, 0, 2];
        let mut it = Messages::new(&bad);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
        // An ACK of 8 bytes.
        let short_ack = [0x1a, flags::ACK, 0, 8, 0, 0, 0, 1];
        assert!(Messages::new(&short_ack).next().unwrap().is_err());
        // Longer than the datagram.
        let long = [0x10, 0, 0, 12, 0, 0, 0, 1];
        assert_eq!(
            Messages::new(&long).next().unwrap(),
            Err(Error::Truncated("sync message"))
        );
        // A trailing fragment.
        let tail = [0x1a, flags::ALIVE, 0, 8, 0, 0, 0, 1, 0x1a];
        let mut it = Messages::new(&tail);
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().unwrap().is_err());
    }

    #[test]
    fn classification_refuses_what_conntrackd_refuses() {
        let msg = |b0: u8, fl: u8| {
            let mut buf = [0u8; 16];
            buf[0] = b0;
            buf[1] = fl;
            buf[3] = 16;
            buf[11] = 5;
            buf[15] = 4;
            let m = Messages::new(&buf).next().unwrap().unwrap();
            m.body().map(|b| matches!(b, Body::Data { .. }))
        };
        assert_eq!(msg(0x10, flags::HELLO), Ok(true));
        assert!(msg(0x20, 0).is_err()); // version 2
        assert!(msg(0x10, flags::ACK).is_err()); // data with ACK
        assert!(msg(0x17, 0).is_err()); // type 7
        assert!(msg(0x1a, 0).is_err()); // control without a flag
        assert!(msg(0x1a, flags::ACK).is_err()); // from 5 > to 4
        assert_eq!(msg(0x1a, flags::RESYNC), Ok(false));
    }
}
