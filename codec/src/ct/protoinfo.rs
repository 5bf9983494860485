//! Protocol state (`CTA_PROTOINFO`): TCP, SCTP and DCCP.

use crate::ct::attrs::{cta, dccp, protoinfo, sctp, tcp};
use crate::ct::enum_with_unknown;
use crate::ct::table::{len_of, put, some, AttrValue};
use crate::ct::tuple::{take, take_header};
use crate::ct::unknown::UnknownSink;
use crate::nl::{attr_len, total_len, Attr, Writer};
use crate::Result;

enum_with_unknown! {
    /// TCP conntrack states (`TCP_CONNTRACK_*`).
    pub enum TcpState(u8) {
        /// NONE.
        None = 0 => "NONE",
        /// SYN_SENT.
        SynSent = 1 => "SYN_SENT",
        /// SYN_RECV.
        SynRecv = 2 => "SYN_RECV",
        /// ESTABLISHED.
        Established = 3 => "ESTABLISHED",
        /// FIN_WAIT.
        FinWait = 4 => "FIN_WAIT",
        /// CLOSE_WAIT.
        CloseWait = 5 => "CLOSE_WAIT",
        /// LAST_ACK.
        LastAck = 6 => "LAST_ACK",
        /// TIME_WAIT.
        TimeWait = 7 => "TIME_WAIT",
        /// CLOSE.
        Close = 8 => "CLOSE",
        /// SYN_SENT2 (formerly LISTEN).
        SynSent2 = 9 => "SYN_SENT2",
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
        None = 0 => "NONE",
        /// CLOSED.
        Closed = 1 => "CLOSED",
        /// COOKIE_WAIT.
        CookieWait = 2 => "COOKIE_WAIT",
        /// COOKIE_ECHOED.
        CookieEchoed = 3 => "COOKIE_ECHOED",
        /// ESTABLISHED.
        Established = 4 => "ESTABLISHED",
        /// SHUTDOWN_SENT.
        ShutdownSent = 5 => "SHUTDOWN_SENT",
        /// SHUTDOWN_RECD.
        ShutdownRecd = 6 => "SHUTDOWN_RECD",
        /// SHUTDOWN_ACK_SENT.
        ShutdownAckSent = 7 => "SHUTDOWN_ACK_SENT",
        /// HEARTBEAT_SENT.
        HeartbeatSent = 8 => "HEARTBEAT_SENT",
        /// HEARTBEAT_ACKED (no longer used by the kernel).
        HeartbeatAcked = 9 => "HEARTBEAT_ACKED",
    }
}

enum_with_unknown! {
    /// DCCP conntrack states (`CT_DCCP_*`).
    pub enum DccpState(u8) {
        /// NONE.
        None = 0 => "NONE",
        /// REQUEST.
        Request = 1 => "REQUEST",
        /// RESPOND.
        Respond = 2 => "RESPOND",
        /// PARTOPEN.
        PartOpen = 3 => "PARTOPEN",
        /// OPEN.
        Open = 4 => "OPEN",
        /// CLOSEREQ.
        CloseReq = 5 => "CLOSEREQ",
        /// CLOSING.
        Closing = 6 => "CLOSING",
        /// TIMEWAIT.
        TimeWait = 7 => "TIMEWAIT",
        /// IGNORE.
        Ignore = 8 => "IGNORE",
        /// INVALID.
        Invalid = 9 => "INVALID",
    }
}

enum_with_unknown! {
    /// DCCP roles (`CT_DCCP_ROLE_*`).
    pub enum DccpRole(u8) {
        /// The client.
        Client = 0 => "client",
        /// The server.
        Server = 1 => "server",
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
        self.emit_as(cta::PROTOINFO, w)
    }

    fn emit_as(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        w.nest(kind, |w| match self {
            ProtoInfo::Tcp(t) => w.nest(protoinfo::TCP, |w| {
                put(w, tcp::STATE, &t.state)?;
                put(w, tcp::WSCALE_ORIGINAL, &t.wscale_orig)?;
                put(w, tcp::WSCALE_REPLY, &t.wscale_reply)?;
                put(w, tcp::FLAGS_ORIGINAL, &t.flags_orig)?;
                put(w, tcp::FLAGS_REPLY, &t.flags_reply)
            }),
            ProtoInfo::Sctp(s) => w.nest(protoinfo::SCTP, |w| {
                put(w, sctp::STATE, &s.state)?;
                put(w, sctp::VTAG_ORIGINAL, &s.vtag_orig)?;
                put(w, sctp::VTAG_REPLY, &s.vtag_reply)
            }),
            ProtoInfo::Dccp(d) => w.nest(protoinfo::DCCP, |w| {
                put(w, dccp::STATE, &d.state)?;
                put(w, dccp::ROLE, &d.role)?;
                put(w, dccp::HANDSHAKE_SEQ, &d.handshake_seq)
            }),
        })
    }

    /// The bytes [`ProtoInfo::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let inner = match self {
            ProtoInfo::Tcp(t) => total_len(&[
                len_of(&t.state),
                len_of(&t.wscale_orig),
                len_of(&t.wscale_reply),
                len_of(&t.flags_orig),
                len_of(&t.flags_reply),
            ]),
            ProtoInfo::Sctp(s) => total_len(&[
                len_of(&s.state),
                len_of(&s.vtag_orig),
                len_of(&s.vtag_reply),
            ]),
            ProtoInfo::Dccp(d) => {
                total_len(&[len_of(&d.state), len_of(&d.role), len_of(&d.handshake_seq)])
            }
        };
        attr_len(attr_len(inner))
    }
}

/// `CTA_PROTOINFO`: absent (`None`) when it holds no protocol this codec knows.
impl AttrValue for ProtoInfo {
    type View<'a> = ProtoInfo;
    #[inline]
    fn parse(a: &Attr<'_>, unknown: &mut impl UnknownSink) -> Result<Option<Self>> {
        ProtoInfo::parse(a, unknown)
    }
    #[inline]
    fn view<'a>(a: &Attr<'a>) -> Result<Option<ProtoInfo>> {
        ProtoInfo::parse(a, &mut ())
    }
    fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        self.emit_as(kind, w)
    }
    fn attr_len(&self) -> usize {
        self.buffer_len()
    }
}

/// `{flags, mask}`: two bytes.
impl AttrValue for TcpFlags {
    type View<'a> = TcpFlags;
    fn parse(a: &Attr<'_>, _: &mut impl UnknownSink) -> Result<Option<Self>> {
        some(flags(a))
    }
    fn view<'a>(a: &Attr<'a>) -> Result<Option<TcpFlags>> {
        some(flags(a))
    }
    fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        w.attr(kind, &[self.flags, self.mask])
    }
    fn attr_len(&self) -> usize {
        attr_len(2)
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
