//! Protocol state (`CTA_PROTOINFO`): TCP, SCTP and DCCP.

use crate::ct::attrs::{cta, dccp, protoinfo, sctp, tcp};
use crate::ct::enum_with_unknown;
use crate::ct::tuple::{opt, take, take_header};
use crate::ct::unknown::{attr_len, sum, UnknownSink};
use crate::nl::{Attr, Writer};
use crate::Result;

enum_with_unknown! {
    /// TCP conntrack states (`TCP_CONNTRACK_*`).
    pub enum TcpState(u8) {
        /// NONE.
        None = 0,
        /// SYN_SENT.
        SynSent = 1,
        /// SYN_RECV.
        SynRecv = 2,
        /// ESTABLISHED.
        Established = 3,
        /// FIN_WAIT.
        FinWait = 4,
        /// CLOSE_WAIT.
        CloseWait = 5,
        /// LAST_ACK.
        LastAck = 6,
        /// TIME_WAIT.
        TimeWait = 7,
        /// CLOSE.
        Close = 8,
        /// SYN_SENT2 (formerly LISTEN).
        SynSent2 = 9,
        /// MAX (never a real state).
        Max = 10,
        /// IGNORE.
        Ignore = 11,
        /// RETRANS (a timeout class, not a state).
        Retrans = 12,
        /// UNACK (a timeout class, not a state).
        Unack = 13,
    }
}

enum_with_unknown! {
    /// SCTP conntrack states (`SCTP_CONNTRACK_*`).
    pub enum SctpState(u8) {
        /// NONE.
        None = 0,
        /// CLOSED.
        Closed = 1,
        /// COOKIE_WAIT.
        CookieWait = 2,
        /// COOKIE_ECHOED.
        CookieEchoed = 3,
        /// ESTABLISHED.
        Established = 4,
        /// SHUTDOWN_SENT.
        ShutdownSent = 5,
        /// SHUTDOWN_RECD.
        ShutdownRecd = 6,
        /// SHUTDOWN_ACK_SENT.
        ShutdownAckSent = 7,
        /// HEARTBEAT_SENT.
        HeartbeatSent = 8,
        /// HEARTBEAT_ACKED (no longer used by the kernel).
        HeartbeatAcked = 9,
    }
}

enum_with_unknown! {
    /// DCCP conntrack states (`CT_DCCP_*`).
    pub enum DccpState(u8) {
        /// NONE.
        None = 0,
        /// REQUEST.
        Request = 1,
        /// RESPOND.
        Respond = 2,
        /// PARTOPEN.
        PartOpen = 3,
        /// OPEN.
        Open = 4,
        /// CLOSEREQ.
        CloseReq = 5,
        /// CLOSING.
        Closing = 6,
        /// TIMEWAIT.
        TimeWait = 7,
        /// IGNORE.
        Ignore = 8,
        /// INVALID.
        Invalid = 9,
    }
}

enum_with_unknown! {
    /// DCCP roles (`CT_DCCP_ROLE_*`).
    pub enum DccpRole(u8) {
        /// The client.
        Client = 0,
        /// The server.
        Server = 1,
    }
}

/// TCP flags of one direction with the mask of the ones to change (`struct nf_ct_tcp_flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TcpFlags {
    /// `IP_CT_TCP_FLAG_*` bits.
    pub flags: u8,
    /// Which bits of `flags` count.
    pub mask: u8,
}

impl TcpFlags {
    /// Window scaling advertised.
    pub const WINDOW_SCALE: u8 = 0x01;
    /// SACK permitted.
    pub const SACK_PERM: u8 = 0x02;
    /// This side sent FIN first.
    pub const CLOSE_INIT: u8 = 0x04;
    /// Liberal window checking.
    pub const BE_LIBERAL: u8 = 0x08;
    /// Unacknowledged data.
    pub const DATA_UNACKNOWLEDGED: u8 = 0x10;
    /// `td_maxack` set.
    pub const MAXACK_SET: u8 = 0x20;
}

/// TCP protocol state (`CTA_PROTOINFO_TCP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TcpInfo {
    /// The state.
    pub state: Option<TcpState>,
    /// Window scale, original direction.
    pub wscale_orig: Option<u8>,
    /// Window scale, reply direction.
    pub wscale_reply: Option<u8>,
    /// Flags, original direction.
    pub flags_orig: Option<TcpFlags>,
    /// Flags, reply direction.
    pub flags_reply: Option<TcpFlags>,
}

/// SCTP protocol state (`CTA_PROTOINFO_SCTP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SctpInfo {
    /// The state.
    pub state: Option<SctpState>,
    /// Verification tag, original direction.
    pub vtag_orig: Option<u32>,
    /// Verification tag, reply direction.
    pub vtag_reply: Option<u32>,
}

/// DCCP protocol state (`CTA_PROTOINFO_DCCP`; DCCP tracking is gone from recent kernels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DccpInfo {
    /// The state.
    pub state: Option<DccpState>,
    /// The role.
    pub role: Option<DccpRole>,
    /// The handshake sequence number.
    pub handshake_seq: Option<u64>,
}

/// The protocol state of an entry (`CTA_PROTOINFO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProtoInfo {
    /// TCP.
    Tcp(TcpInfo),
    /// SCTP.
    Sctp(SctpInfo),
    /// DCCP.
    Dccp(DccpInfo),
}

impl ProtoInfo {
    /// Reads `CTA_PROTOINFO`; `None` if it holds no protocol this codec knows (those
    /// attributes go to `unknown`).
    ///
    /// # Errors
    /// A malformed attribute or one of the wrong size.
    #[inline]
    pub fn parse(nest: &Attr<'_>, unknown: &mut impl UnknownSink) -> Result<Option<Self>> {
        if let Some(t) = parse_tcp_layout(nest.payload()) {
            return Ok(Some(ProtoInfo::Tcp(t)));
        }
        let mut found = None;
        for a in nest.nested() {
            let a = a?;
            let path = [cta::PROTOINFO, a.kind()];
            match a.kind() {
                protoinfo::TCP => {
                    let mut t = TcpInfo::default();
                    for x in a.nested() {
                        let x = x?;
                        match x.kind() {
                            tcp::STATE => t.state = Some(x.u8()?.into()),
                            tcp::WSCALE_ORIGINAL => t.wscale_orig = Some(x.u8()?),
                            tcp::WSCALE_REPLY => t.wscale_reply = Some(x.u8()?),
                            tcp::FLAGS_ORIGINAL => t.flags_orig = Some(flags(&x)?),
                            tcp::FLAGS_REPLY => t.flags_reply = Some(flags(&x)?),
                            _ => unknown.record(path, &x),
                        }
                    }
                    found = Some(ProtoInfo::Tcp(t));
                }
                protoinfo::SCTP => {
                    let mut s = SctpInfo::default();
                    for x in a.nested() {
                        let x = x?;
                        match x.kind() {
                            sctp::STATE => s.state = Some(x.u8()?.into()),
                            sctp::VTAG_ORIGINAL => s.vtag_orig = Some(x.u32_be()?),
                            sctp::VTAG_REPLY => s.vtag_reply = Some(x.u32_be()?),
                            _ => unknown.record(path, &x),
                        }
                    }
                    found = Some(ProtoInfo::Sctp(s));
                }
                protoinfo::DCCP => {
                    let mut d = DccpInfo::default();
                    for x in a.nested() {
                        let x = x?;
                        match x.kind() {
                            dccp::STATE => d.state = Some(x.u8()?.into()),
                            dccp::ROLE => d.role = Some(x.u8()?.into()),
                            dccp::HANDSHAKE_SEQ => d.handshake_seq = Some(x.u64_be()?),
                            dccp::PAD if x.payload().is_empty() => {}
                            _ => unknown.record(path, &x),
                        }
                    }
                    found = Some(ProtoInfo::Dccp(d));
                }
                _ => unknown.record([cta::PROTOINFO, 0], &a),
            }
        }
        Ok(found)
    }

    /// Writes `CTA_PROTOINFO` with its one protocol nest.
    ///
    /// # Errors
    /// [`crate::Error::BufferTooSmall`].
    pub fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        w.nest(cta::PROTOINFO, |w| match self {
            ProtoInfo::Tcp(t) => w.nest(protoinfo::TCP, |w| {
                opt(w, t.state, |w, v| w.attr_u8(tcp::STATE, v.into()))?;
                opt(w, t.wscale_orig, |w, v| w.attr_u8(tcp::WSCALE_ORIGINAL, v))?;
                opt(w, t.wscale_reply, |w, v| w.attr_u8(tcp::WSCALE_REPLY, v))?;
                opt(w, t.flags_orig, |w, v| {
                    w.attr(tcp::FLAGS_ORIGINAL, &[v.flags, v.mask])
                })?;
                opt(w, t.flags_reply, |w, v| {
                    w.attr(tcp::FLAGS_REPLY, &[v.flags, v.mask])
                })
            }),
            ProtoInfo::Sctp(s) => w.nest(protoinfo::SCTP, |w| {
                opt(w, s.state, |w, v| w.attr_u8(sctp::STATE, v.into()))?;
                opt(w, s.vtag_orig, |w, v| w.attr_u32_be(sctp::VTAG_ORIGINAL, v))?;
                opt(w, s.vtag_reply, |w, v| w.attr_u32_be(sctp::VTAG_REPLY, v))
            }),
            ProtoInfo::Dccp(d) => w.nest(protoinfo::DCCP, |w| {
                opt(w, d.state, |w, v| w.attr_u8(dccp::STATE, v.into()))?;
                opt(w, d.role, |w, v| w.attr_u8(dccp::ROLE, v.into()))?;
                opt(w, d.handshake_seq, |w, v| {
                    w.attr_u64_be(dccp::HANDSHAKE_SEQ, v)
                })
            }),
        })
    }

    /// The bytes [`ProtoInfo::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let n = |present: bool, len: usize| if present { attr_len(len) } else { 0 };
        let inner = match self {
            ProtoInfo::Tcp(t) => sum(&[
                n(t.state.is_some(), 1),
                n(t.wscale_orig.is_some(), 1),
                n(t.wscale_reply.is_some(), 1),
                n(t.flags_orig.is_some(), 2),
                n(t.flags_reply.is_some(), 2),
            ]),
            ProtoInfo::Sctp(s) => sum(&[
                n(s.state.is_some(), 1),
                n(s.vtag_orig.is_some(), 4),
                n(s.vtag_reply.is_some(), 4),
            ]),
            ProtoInfo::Dccp(d) => sum(&[
                n(d.state.is_some(), 1),
                n(d.role.is_some(), 1),
                n(d.handshake_seq.is_some(), 8),
            ]),
        };
        attr_len(attr_len(inner))
    }
}

/// Reads TCP protocol info laid out exactly as the kernel writes it — `TCP { STATE,
/// WSCALE_ORIGINAL, WSCALE_REPLY, FLAGS_ORIGINAL, FLAGS_REPLY }`, nothing else — without the
/// general attribute walk. `None` for any other layout, which [`ProtoInfo::parse`] then
/// walks: the result is the same either way.
#[inline]
fn parse_tcp_layout(payload: &[u8]) -> Option<TcpInfo> {
    let mut b = payload;
    if payload.len() != 44 {
        return None;
    }
    take_header(&mut b, 44, protoinfo::TCP)?;
    take_header(&mut b, 5, tcp::STATE)?;
    let [state, ..] = take::<4>(&mut b)?;
    take_header(&mut b, 5, tcp::WSCALE_ORIGINAL)?;
    let [wscale_orig, ..] = take::<4>(&mut b)?;
    take_header(&mut b, 5, tcp::WSCALE_REPLY)?;
    let [wscale_reply, ..] = take::<4>(&mut b)?;
    take_header(&mut b, 6, tcp::FLAGS_ORIGINAL)?;
    let [f0, m0, ..] = take::<4>(&mut b)?;
    take_header(&mut b, 6, tcp::FLAGS_REPLY)?;
    let [f1, m1, ..] = take::<4>(&mut b)?;
    Some(TcpInfo {
        state: Some(state.into()),
        wscale_orig: Some(wscale_orig),
        wscale_reply: Some(wscale_reply),
        flags_orig: Some(TcpFlags {
            flags: f0,
            mask: m0,
        }),
        flags_reply: Some(TcpFlags {
            flags: f1,
            mask: m1,
        }),
    })
}

fn flags(a: &Attr<'_>) -> Result<TcpFlags> {
    let [flags, mask] = a.array::<2>()?;
    Ok(TcpFlags { flags, mask })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::Unknowns;
    use crate::nl::Attrs;

    fn parsed(p: &ProtoInfo) -> (Option<ProtoInfo>, bool) {
        let mut buf = [0u8; 128];
        let mut w = Writer::new(&mut buf);
        p.emit(&mut w).unwrap();
        let a = Attrs::new(w.written()).next().unwrap().unwrap();
        let mut u = Unknowns::default();
        let fast = parse_tcp_layout(a.payload()).is_some();
        (ProtoInfo::parse(&a, &mut u).unwrap(), fast)
    }

    /// The kernel-layout fast path gives what the walk gives, and only for the full layout.
    #[test]
    fn tcp_layout_matches_the_walk() {
        let flags = |f| Some(TcpFlags { flags: f, mask: f });
        let full = ProtoInfo::Tcp(TcpInfo {
            state: Some(TcpState::Established),
            wscale_orig: Some(7),
            wscale_reply: Some(0),
            flags_orig: flags(TcpFlags::SACK_PERM),
            flags_reply: flags(0),
        });
        assert_eq!(parsed(&full), (Some(full), true));
        let partial = ProtoInfo::Tcp(TcpInfo {
            state: Some(TcpState::Unknown(42)),
            ..TcpInfo::default()
        });
        assert_eq!(parsed(&partial), (Some(partial), false));
        let sctp = ProtoInfo::Sctp(SctpInfo {
            state: Some(SctpState::from(3)),
            vtag_orig: Some(1),
            vtag_reply: Some(2),
        });
        assert_eq!(parsed(&sctp), (Some(sctp), false));
    }
}
