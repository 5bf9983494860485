//! `arbitrary` input types for the structured targets, each mapping onto a type of the
//! codec (the codec itself derives nothing for fuzzing).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::Arbitrary;
use conntrack_codec::ct::request::Key;
use conntrack_codec::ct::{
    ConntrackRepr, Counters, DccpInfo, Helper, Labels, NatRange, ProtoInfo, SctpInfo, SecCtx,
    SeqAdj, Status, Synproxy, TcpFlags, TcpInfo, Timestamp, Tuple, UnknownAttr, Unknowns,
};
use conntrack_codec::exp::request::ExpKey;
use conntrack_codec::exp::{ExpectFlags, ExpectNat, ExpectRepr};
use conntrack_codec::filter::{DumpFilter, FilterFlags};

/// An address of either family.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum AIp {
    /// IPv4.
    V4([u8; 4]),
    /// IPv6.
    V6([u8; 16]),
}

impl AIp {
    /// The address.
    pub fn get(self) -> IpAddr {
        match self {
            AIp::V4(b) => IpAddr::V4(Ipv4Addr::from(b)),
            AIp::V6(b) => IpAddr::V6(Ipv6Addr::from(b)),
        }
    }
}

/// A [`Tuple`].
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct ATuple {
    src: Option<AIp>,
    dst: Option<AIp>,
    proto: Option<u8>,
    ports: (Option<u16>, Option<u16>),
    icmp: (Option<u16>, Option<u8>, Option<u8>),
    icmpv6: (Option<u16>, Option<u8>, Option<u8>),
    zone: Option<u16>,
}

impl ATuple {
    /// The tuple.
    pub fn get(&self) -> Tuple {
        Tuple {
            src: self.src.map(AIp::get),
            dst: self.dst.map(AIp::get),
            proto: self.proto,
            src_port: self.ports.0,
            dst_port: self.ports.1,
            icmp_id: self.icmp.0,
            icmp_type: self.icmp.1,
            icmp_code: self.icmp.2,
            icmpv6_id: self.icmpv6.0,
            icmpv6_type: self.icmpv6.1,
            icmpv6_code: self.icmpv6.2,
            zone: self.zone,
        }
    }
}

/// A [`ProtoInfo`].
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum AProtoInfo {
    /// TCP: state, window scales, flags and masks.
    Tcp(
        Option<u8>,
        Option<u8>,
        Option<u8>,
        Option<(u8, u8)>,
        Option<(u8, u8)>,
    ),
    /// SCTP: state, verification tags.
    Sctp(Option<u8>, Option<u32>, Option<u32>),
    /// DCCP: state, role, handshake sequence.
    Dccp(Option<u8>, Option<u8>, Option<u64>),
}

impl AProtoInfo {
    /// The protocol state.
    pub fn get(self) -> ProtoInfo {
        let fl = |f: Option<(u8, u8)>| f.map(|(flags, mask)| TcpFlags { flags, mask });
        match self {
            AProtoInfo::Tcp(s, wo, wr, fo, fr) => ProtoInfo::Tcp(TcpInfo {
                state: s.map(Into::into),
                wscale_orig: wo,
                wscale_reply: wr,
                flags_orig: fl(fo),
                flags_reply: fl(fr),
            }),
            AProtoInfo::Sctp(s, o, r) => ProtoInfo::Sctp(SctpInfo {
                state: s.map(Into::into),
                vtag_orig: o,
                vtag_reply: r,
            }),
            AProtoInfo::Dccp(s, r, h) => ProtoInfo::Dccp(DccpInfo {
                state: s.map(Into::into),
                role: r.map(Into::into),
                handshake_seq: h,
            }),
        }
    }
}

/// A [`NatRange`].
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct ANat(Option<AIp>, Option<AIp>, Option<u16>, Option<u16>);

impl ANat {
    /// The range.
    pub fn get(self) -> NatRange {
        NatRange {
            min_addr: self.0.map(AIp::get),
            max_addr: self.1.map(AIp::get),
            min_port: self.2,
            max_port: self.3,
        }
    }
}

/// Text for a fixed-capacity string: cut to `cap` bytes at a character boundary, NULs
/// dropped (a NUL ends a string on the wire).
fn text<const N: usize>(s: &str) -> heapless::String<N> {
    let mut out = heapless::String::new();
    for c in s.chars().filter(|&c| c != '\0') {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

fn bytes<const N: usize>(b: &[u8]) -> heapless::Vec<u8, N> {
    heapless::Vec::from_slice(b.get(..N.min(b.len())).unwrap_or_default()).expect("cut to N")
}

/// A top-level unknown attribute: its type is outside `CTA_*` (0 or above 27, flags
/// allowed), so that it stays unknown when parsed back.
#[derive(Arbitrary, Debug, Clone)]
pub struct AUnknown {
    kind: u16,
    payload: Vec<u8>,
}

impl AUnknown {
    fn get(&self, known_max: u16) -> UnknownAttr {
        let flags = self.kind & 0xc000;
        let ty = self.kind & 0x3fff;
        let ty = if ty != 0 && ty <= known_max {
            ty + known_max
        } else {
            ty
        };
        UnknownAttr {
            path: [0, 0],
            raw_kind: flags | ty,
            payload: bytes(&self.payload),
        }
    }
}

fn unknowns(v: &[AUnknown], known_max: u16) -> Unknowns {
    let mut u = Unknowns::default();
    for a in v.iter().take(Unknowns::CAP) {
        let _ = u.kept.push(a.get(known_max));
    }
    u
}

/// A [`ConntrackRepr`]: every field.
#[derive(Arbitrary, Debug, Clone)]
pub struct AConntrack {
    family: u8,
    tuples: (Option<ATuple>, Option<ATuple>, Option<ATuple>),
    status: Option<u32>,
    protoinfo: Option<AProtoInfo>,
    helper: Option<(String, Option<Vec<u8>>)>,
    nat: (Option<ANat>, Option<ANat>),
    scalars: [Option<u32>; 6],
    counters: [Option<(Option<u64>, Option<u64>)>; 2],
    seq_adj: [Option<[Option<u32>; 3]>; 2],
    zone: Option<u16>,
    secctx: Option<String>,
    timestamp: Option<(Option<u64>, Option<u64>)>,
    labels: (Option<[u32; 4]>, Option<[u32; 4]>),
    synproxy: Option<[Option<u32>; 3]>,
    filter: Option<(Option<u32>, Option<u32>)>,
    status_mask: Option<u32>,
    timestamp_event: Option<u64>,
    unknown: Vec<AUnknown>,
}

impl AConntrack {
    /// The entry.
    pub fn get(&self) -> ConntrackRepr {
        let [timeout, mark, use_count, id, secmark, mark_mask] = self.scalars;
        let counters = |c: Option<(Option<u64>, Option<u64>)>| {
            c.map(|(packets, bytes)| Counters { packets, bytes })
        };
        let seq = |s: Option<[Option<u32>; 3]>| {
            s.map(|[correction_pos, offset_before, offset_after]| SeqAdj {
                correction_pos,
                offset_before,
                offset_after,
            })
        };
        ConntrackRepr {
            family: self.family,
            orig: self.tuples.0.as_ref().map(ATuple::get),
            reply: self.tuples.1.as_ref().map(ATuple::get),
            master: self.tuples.2.as_ref().map(ATuple::get),
            status: self.status.map(Status),
            protoinfo: self.protoinfo.map(AProtoInfo::get),
            helper: self.helper.as_ref().map(|(name, info)| Helper {
                name: text(name),
                info: info.as_deref().map(bytes),
            }),
            nat_src: self.nat.0.map(ANat::get),
            nat_dst: self.nat.1.map(ANat::get),
            timeout,
            mark,
            counters_orig: counters(self.counters[0]),
            counters_reply: counters(self.counters[1]),
            use_count,
            id,
            seq_adj_orig: seq(self.seq_adj[0]),
            seq_adj_reply: seq(self.seq_adj[1]),
            secmark,
            zone: self.zone,
            secctx: self.secctx.as_deref().map(|s| SecCtx { name: text(s) }),
            timestamp: self
                .timestamp
                .map(|(start, stop)| Timestamp { start, stop }),
            mark_mask,
            labels: self.labels.0.map(Labels),
            labels_mask: self.labels.1.map(Labels),
            synproxy: self
                .synproxy
                .map(|[isn, its, tsoff]| Synproxy { isn, its, tsoff }),
            filter: self.filter.map(|(orig, reply)| FilterFlags { orig, reply }),
            status_mask: self.status_mask.map(Status),
            timestamp_event: self.timestamp_event,
            unknown: unknowns(&self.unknown, 27),
        }
    }
}

/// An [`ExpectRepr`]: every field.
#[derive(Arbitrary, Debug, Clone)]
pub struct AExpect {
    family: u8,
    tuples: (Option<ATuple>, Option<ATuple>, Option<ATuple>),
    scalars: [Option<u32>; 4],
    helper: Option<String>,
    zone: Option<u16>,
    nat: Option<(Option<u32>, Option<ATuple>)>,
    func: Option<String>,
    unknown: Vec<AUnknown>,
}

impl AExpect {
    /// The expectation.
    pub fn get(&self) -> ExpectRepr {
        let [timeout, id, flags, class] = self.scalars;
        ExpectRepr {
            family: self.family,
            master: self.tuples.0.as_ref().map(ATuple::get),
            tuple: self.tuples.1.as_ref().map(ATuple::get),
            mask: self.tuples.2.as_ref().map(ATuple::get),
            timeout,
            id,
            helper: self.helper.as_deref().map(text),
            zone: self.zone,
            flags: flags.map(ExpectFlags),
            class,
            nat: self.nat.as_ref().map(|(dir, t)| ExpectNat {
                dir: *dir,
                tuple: t.as_ref().map(ATuple::get),
            }),
            func: self.func.as_deref().map(text),
            unknown: unknowns(&self.unknown, 11),
        }
    }
}

/// A conntrack request [`Key`].
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct AKey(Option<ATuple>, Option<ATuple>, Option<u16>, Option<u32>);

impl AKey {
    /// The key.
    pub fn get(&self) -> Key {
        Key {
            orig: self.0.as_ref().map(ATuple::get),
            reply: self.1.as_ref().map(ATuple::get),
            zone: self.2,
            id: self.3,
        }
    }
}

/// An expectation request [`ExpKey`].
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct AExpKey(Option<ATuple>, Option<u16>, Option<u32>);

impl AExpKey {
    /// The key.
    pub fn get(&self) -> ExpKey {
        ExpKey {
            tuple: self.0.as_ref().map(ATuple::get),
            zone: self.1,
            id: self.2,
        }
    }
}

/// A [`DumpFilter`].
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct ADumpFilter {
    family: u8,
    mark: Option<(u32, u32)>,
    status: Option<(u32, u32)>,
    zone: Option<u16>,
    orig: Option<(ATuple, u32)>,
    reply: Option<(ATuple, u32)>,
}

impl ADumpFilter {
    /// The filter.
    pub fn get(&self) -> DumpFilter {
        DumpFilter {
            family: self.family,
            mark: self.mark,
            status: self.status.map(|(v, m)| (Status(v), Status(m))),
            zone: self.zone,
            orig: self.orig.map(|(t, f)| (t.get(), f)),
            reply: self.reply.map(|(t, f)| (t.get(), f)),
        }
    }
}
