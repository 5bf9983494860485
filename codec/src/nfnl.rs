//! nfnetlink: the `nfgenmsg` header, subsystems, message types and multicast groups.

use byteorder::{BigEndian, ByteOrder};

use crate::nl::{Attrs, NlMsg, Writer};
use crate::{Error, Result};

/// nfgenmsg version 0 (`NFNETLINK_V0`).
pub const NFNETLINK_V0: u8 = 0;
/// nfgenmsg version 1: a flush with it removes only the entries of the given family.
pub const NFNETLINK_V1: u8 = 1;

/// The nfnetlink subsystem in the high byte of `nlmsg_type` (`NFNL_SUBSYS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Subsystem {
    /// `NFNL_SUBSYS_CTNETLINK` (1): conntrack entries.
    Ctnetlink,
    /// `NFNL_SUBSYS_CTNETLINK_EXP` (2): expectations.
    CtnetlinkExp,
    /// Any other subsystem (queue, log, nftables, ...).
    Unknown(u8),
}

impl Subsystem {
    /// The subsystem number.
    pub const fn id(self) -> u8 {
        match self {
            Subsystem::Ctnetlink => 1,
            Subsystem::CtnetlinkExp => 2,
            Subsystem::Unknown(n) => n,
        }
    }

    /// The subsystem with number `id`.
    pub const fn from_id(id: u8) -> Self {
        match id {
            1 => Subsystem::Ctnetlink,
            2 => Subsystem::CtnetlinkExp,
            n => Subsystem::Unknown(n),
        }
    }
}

/// Builds `nlmsg_type` from a subsystem and a message number.
#[inline]
pub const fn msg_type(subsys: Subsystem, msg: u8) -> u16 {
    ((subsys.id() as u16) << 8) | msg as u16
}

/// Splits `nlmsg_type` into its subsystem and message number.
#[inline]
pub const fn split_type(kind: u16) -> (Subsystem, u8) {
    let [subsys, msg] = kind.to_be_bytes();
    (Subsystem::from_id(subsys), msg)
}

/// ctnetlink message numbers (`IPCTNL_MSG_CT_*`), subsystem [`Subsystem::Ctnetlink`].
pub mod ct_msg {
    /// Create or update an entry; also dump replies and NEW/UPDATE events.
    pub const NEW: u8 = 0;
    /// Get one entry, or dump.
    pub const GET: u8 = 1;
    /// Delete or flush; also DESTROY events.
    pub const DELETE: u8 = 2;
    /// Dump and zero the counters.
    pub const GET_CTRZERO: u8 = 3;
    /// Per-CPU statistics.
    pub const GET_STATS_CPU: u8 = 4;
    /// Global statistics.
    pub const GET_STATS: u8 = 5;
    /// Dump the dying list.
    pub const GET_DYING: u8 = 6;
    /// Dump the unconfirmed list.
    pub const GET_UNCONFIRMED: u8 = 7;
}

/// Expectation message numbers (`IPCTNL_MSG_EXP_*`), subsystem [`Subsystem::CtnetlinkExp`].
pub mod exp_msg {
    /// Create an expectation; also dump replies and NEW events.
    pub const NEW: u8 = 0;
    /// Get one expectation, or dump.
    pub const GET: u8 = 1;
    /// Delete or flush; also DESTROY events.
    pub const DELETE: u8 = 2;
    /// Per-CPU statistics.
    pub const GET_STATS_CPU: u8 = 3;
}

/// nfnetlink multicast groups of conntrack (`NFNLGRP_CONNTRACK_*`).
pub mod groups {
    /// New conntrack entries.
    pub const CONNTRACK_NEW: u32 = 1;
    /// Updated conntrack entries.
    pub const CONNTRACK_UPDATE: u32 = 2;
    /// Destroyed conntrack entries.
    pub const CONNTRACK_DESTROY: u32 = 3;
    /// New expectations.
    pub const EXP_NEW: u32 = 4;
    /// Updated expectations.
    pub const EXP_UPDATE: u32 = 5;
    /// Destroyed expectations.
    pub const EXP_DESTROY: u32 = 6;
}

/// The nfnetlink header that starts every payload (`struct nfgenmsg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NfGenMsg {
    /// Address family (`AF_INET`, `AF_INET6`, or 0 for all).
    pub family: u8,
    /// `NFNETLINK_V0` or `NFNETLINK_V1`.
    pub version: u8,
    /// Resource id, big-endian on the wire; the CPU number in per-CPU statistics.
    pub res_id: u16,
}

impl NfGenMsg {
    /// Size on the wire.
    pub const LEN: usize = 4;

    /// Reads the header from the start of `buf`.
    ///
    /// # Errors
    /// [`Error::Truncated`] if `buf` is shorter than 4 bytes.
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<Self> {
        match buf.get(..Self::LEN) {
            Some(&[family, version, r0, r1]) => Ok(NfGenMsg {
                family,
                version,
                res_id: BigEndian::read_u16(&[r0, r1]),
            }),
            _ => Err(Error::Truncated("nfgenmsg")),
        }
    }

    /// The four bytes on the wire.
    pub const fn to_bytes(&self) -> [u8; 4] {
        let [r0, r1] = self.res_id.to_be_bytes();
        [self.family, self.version, r0, r1]
    }

    /// Writes the header through `w`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        w.raw(&self.to_bytes())
    }
}

/// Writes one whole nfnetlink message: the header (port id 0), `nfgen`, then the attributes
/// `body` writes. Returns the message's byte range.
///
/// # Errors
/// [`Error::BufferTooSmall`] or what `body` returns; the writer is then left as it was.
pub fn write_message(
    w: &mut Writer<'_>,
    subsys: Subsystem,
    msg: u8,
    flags: u16,
    seq: u32,
    nfgen: NfGenMsg,
    body: impl FnOnce(&mut Writer<'_>) -> Result<()>,
) -> Result<core::ops::Range<usize>> {
    write_typed(w, msg_type(subsys, msg), flags, seq, nfgen, body)
}

/// Writes one whole nfnetlink message of type `kind` (a full `nlmsg_type`): the header (port
/// id 0), `nfgen`, then the attributes `body` writes. Returns the message's byte range.
///
/// # Errors
/// [`Error::BufferTooSmall`] or what `body` returns; the writer is then left as it was.
pub fn write_typed(
    w: &mut Writer<'_>,
    kind: u16,
    flags: u16,
    seq: u32,
    nfgen: NfGenMsg,
    body: impl FnOnce(&mut Writer<'_>) -> Result<()>,
) -> Result<core::ops::Range<usize>> {
    w.message(kind, flags, seq, 0, |w| {
        nfgen.emit(w)?;
        body(w)
    })
}

/// A view of one nfnetlink message: the netlink message, its nfgenmsg, its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NfMsg<'a> {
    msg: NlMsg<'a>,
    nfgen: NfGenMsg,
}

impl<'a> NfMsg<'a> {
    /// Reads the nfgenmsg of a protocol message.
    ///
    /// # Errors
    /// [`Error::UnexpectedMessage`] for a netlink control message; [`Error::Truncated`] if the
    /// payload is shorter than nfgenmsg.
    #[inline]
    pub fn new_checked(msg: NlMsg<'a>) -> Result<Self> {
        if msg.is_control() {
            return Err(Error::UnexpectedMessage("control message, not nfnetlink"));
        }
        let nfgen = NfGenMsg::parse(msg.payload())?;
        Ok(NfMsg { msg, nfgen })
    }

    /// The netlink message.
    #[inline]
    pub const fn msg(&self) -> &NlMsg<'a> {
        &self.msg
    }

    /// The nfgenmsg header.
    #[inline]
    pub const fn nfgen(&self) -> &NfGenMsg {
        &self.nfgen
    }

    /// The subsystem.
    #[inline]
    pub const fn subsystem(&self) -> Subsystem {
        split_type(self.msg.kind()).0
    }

    /// The message number within the subsystem.
    #[inline]
    pub const fn msg_num(&self) -> u8 {
        split_type(self.msg.kind()).1
    }

    /// The attribute bytes after nfgenmsg.
    #[inline]
    pub fn attr_bytes(&self) -> &'a [u8] {
        self.msg.payload().get(NfGenMsg::LEN..).unwrap_or(&[])
    }

    /// The attributes after nfgenmsg.
    #[inline]
    pub fn attrs(&self) -> Attrs<'a> {
        Attrs::new(self.attr_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nl::Messages;

    #[test]
    fn type_split() {
        assert_eq!(msg_type(Subsystem::Ctnetlink, ct_msg::DELETE), 0x0102);
        assert_eq!(split_type(0x0203), (Subsystem::CtnetlinkExp, 3));
        assert_eq!(split_type(0x0a00), (Subsystem::Unknown(10), 0));
        assert_eq!(Subsystem::from_id(7).id(), 7);
    }

    #[test]
    fn nfgenmsg_res_id_is_big_endian() {
        let g = NfGenMsg {
            family: 10,
            version: 1,
            res_id: 0x0102,
        };
        assert_eq!(g.to_bytes(), [10, 1, 1, 2]);
        assert_eq!(NfGenMsg::parse(&[10, 1, 1, 2, 9]).unwrap(), g);
        assert!(NfGenMsg::parse(&[1, 2, 3]).is_err());
    }

    #[test]
    fn nfmsg_view() {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        w.message(msg_type(Subsystem::Ctnetlink, ct_msg::GET), 1, 5, 0, |w| {
            NfGenMsg {
                family: 2,
                version: 0,
                res_id: 0,
            }
            .emit(w)?;
            w.attr_u32_be(8, 42)
        })
        .unwrap();
        let n = w.len();
        let m = Messages::new(&buf[..n]).next().unwrap().unwrap();
        let nf = NfMsg::new_checked(m).unwrap();
        assert_eq!(nf.subsystem(), Subsystem::Ctnetlink);
        assert_eq!(nf.msg_num(), ct_msg::GET);
        assert_eq!(nf.nfgen().family, 2);
        assert_eq!(nf.attrs().find(8).unwrap().unwrap().u32_be().unwrap(), 42);
    }
}
