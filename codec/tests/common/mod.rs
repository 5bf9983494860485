//! proptest strategies shared by the codec's property tests.
#![allow(dead_code)]

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use conntrack_codec::ct::{
    ConntrackRepr, Counters, DccpInfo, Helper, Labels, NatRange, ProtoInfo, SctpInfo, SecCtx,
    SeqAdj, Status, Synproxy, TcpFlags, TcpInfo, Timestamp, Tuple, UnknownAttr, Unknowns,
};
use conntrack_codec::exp::{ExpectFlags, ExpectNat, ExpectRepr};
use conntrack_codec::filter::FilterFlags;
use proptest::option::of;
use proptest::prelude::*;

pub fn ip() -> BoxedStrategy<IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
    .boxed()
}

pub fn tuple() -> BoxedStrategy<Tuple> {
    (
        (
            of(ip()),
            of(ip()),
            of(any::<u8>()),
            of(any::<u16>()),
            of(any::<u16>()),
        ),
        (of(any::<u16>()), of(any::<u8>()), of(any::<u8>())),
        (
            of(any::<u16>()),
            of(any::<u8>()),
            of(any::<u8>()),
            of(any::<u16>()),
        ),
    )
        .prop_map(
            |((src, dst, proto, sp, dp), (iid, ity, ico), (v6id, v6ty, v6co, zone))| Tuple {
                src,
                dst,
                proto,
                src_port: sp,
                dst_port: dp,
                icmp_id: iid,
                icmp_type: ity,
                icmp_code: ico,
                icmpv6_id: v6id,
                icmpv6_type: v6ty,
                icmpv6_code: v6co,
                zone,
            },
        )
        .boxed()
}

pub fn protoinfo() -> BoxedStrategy<ProtoInfo> {
    let flags = (any::<u8>(), any::<u8>()).prop_map(|(flags, mask)| TcpFlags { flags, mask });
    prop_oneof![
        (
            of(any::<u8>()),
            of(any::<u8>()),
            of(any::<u8>()),
            of(flags.clone()),
            of(flags)
        )
            .prop_map(|(s, wo, wr, fo, fr)| ProtoInfo::Tcp(TcpInfo {
                state: s.map(Into::into),
                wscale_orig: wo,
                wscale_reply: wr,
                flags_orig: fo,
                flags_reply: fr,
            })),
        (of(any::<u8>()), of(any::<u32>()), of(any::<u32>())).prop_map(|(s, o, r)| {
            ProtoInfo::Sctp(SctpInfo {
                state: s.map(Into::into),
                vtag_orig: o,
                vtag_reply: r,
            })
        }),
        (of(any::<u8>()), of(any::<u8>()), of(any::<u64>())).prop_map(|(s, r, h)| {
            ProtoInfo::Dccp(DccpInfo {
                state: s.map(Into::into),
                role: r.map(Into::into),
                handshake_seq: h,
            })
        }),
    ]
    .boxed()
}

pub fn nat() -> BoxedStrategy<NatRange> {
    (of(ip()), of(ip()), of(any::<u16>()), of(any::<u16>()))
        .prop_map(|(a, b, c, d)| NatRange {
            min_addr: a,
            max_addr: b,
            min_port: c,
            max_port: d,
        })
        .boxed()
}

pub fn three() -> BoxedStrategy<[Option<u32>; 3]> {
    [of(any::<u32>()), of(any::<u32>()), of(any::<u32>())].boxed()
}

pub fn helper() -> BoxedStrategy<Helper> {
    (
        "[a-z0-9_-]{1,15}",
        of(prop::collection::vec(any::<u8>(), 0..64)),
    )
        .prop_map(|(n, info)| Helper {
            name: n.as_str().try_into().unwrap(),
            info: info.map(|i| heapless::Vec::from_slice(&i).unwrap()),
        })
        .boxed()
}

pub fn unknowns() -> BoxedStrategy<Unknowns> {
    prop::collection::vec(
        (28u16..0x3fff, prop::collection::vec(any::<u8>(), 0..64)),
        0..4,
    )
    .prop_map(|v| {
        let mut u = Unknowns::default();
        for (kind, payload) in v {
            u.kept
                .push(UnknownAttr {
                    path: [0, 0],
                    raw_kind: kind,
                    payload: heapless::Vec::from_slice(&payload).unwrap(),
                })
                .unwrap();
        }
        u
    })
    .boxed()
}

pub fn repr() -> BoxedStrategy<ConntrackRepr> {
    let counters = (of(any::<u64>()), of(any::<u64>()))
        .prop_map(|(packets, bytes)| Counters { packets, bytes });
    let labels = any::<[u32; 4]>().prop_map(Labels);
    (
        (
            any::<u8>(),
            of(tuple()),
            of(tuple()),
            of(tuple()),
            of(any::<u32>().prop_map(Status)),
            of(protoinfo()),
            of(helper()),
            of(nat()),
        ),
        (
            of(any::<u32>()),
            of(any::<u32>()),
            of(counters.clone()),
            of(counters),
            of(any::<u32>()),
            of(any::<u32>()),
            of(nat()),
            of(three()),
        ),
        (
            of(three()),
            of(any::<u32>()),
            of(any::<u16>()),
            of("[ -~&&[^\0]]{0,120}"),
            of((of(any::<u64>()), of(any::<u64>()))),
            of(any::<u32>()),
            of(labels.clone()),
            of(labels),
        ),
        (
            of(three()),
            of((of(any::<u32>()), of(any::<u32>()))),
            of(any::<u32>().prop_map(Status)),
            of(any::<u64>()),
            unknowns(),
        ),
    )
        .prop_map(|(a, b, c, d)| {
            let (family, orig, reply, master, status, protoinfo, helper, nat_src) = a;
            let (timeout, mark, counters_orig, counters_reply, use_count, id, nat_dst, sa_o) = b;
            let (sa_r, secmark, zone, secctx, ts, mark_mask, labels, labels_mask) = c;
            let (syn, filter, status_mask, timestamp_event, unknown) = d;
            let seqadj = |v: [Option<u32>; 3]| SeqAdj {
                correction_pos: v[0],
                offset_before: v[1],
                offset_after: v[2],
            };
            ConntrackRepr {
                family,
                orig,
                reply,
                master,
                status,
                protoinfo,
                helper,
                nat_src,
                timeout,
                mark,
                counters_orig,
                counters_reply,
                use_count,
                id,
                nat_dst,
                seq_adj_orig: sa_o.map(seqadj),
                seq_adj_reply: sa_r.map(seqadj),
                secmark,
                zone,
                secctx: secctx.map(|s| SecCtx {
                    name: s.as_str().try_into().unwrap(),
                }),
                timestamp: ts.map(|(start, stop)| Timestamp { start, stop }),
                mark_mask,
                labels,
                labels_mask,
                synproxy: syn.map(|v| Synproxy {
                    isn: v[0],
                    its: v[1],
                    tsoff: v[2],
                }),
                filter: filter.map(|(orig, reply)| FilterFlags { orig, reply }),
                status_mask,
                timestamp_event,
                unknown,
            }
        })
        .boxed()
}

pub fn expect() -> BoxedStrategy<ExpectRepr> {
    (
        (
            any::<u8>(),
            of(tuple()),
            of(tuple()),
            of(tuple()),
            of(any::<u32>()),
            of(any::<u32>()),
        ),
        (
            of("[a-z0-9_-]{1,15}"),
            of(any::<u16>()),
            of(any::<u32>()),
            of(any::<u32>()),
            of((of(any::<u32>()), of(tuple()))),
            of("[a-z0-9_-]{1,31}"),
            unknowns(),
        ),
    )
        .prop_map(|(a, b)| {
            let (family, master, tuple, mask, timeout, id) = a;
            let (helper, zone, flags, class, nat, func, unknown) = b;
            ExpectRepr {
                family,
                master,
                tuple,
                mask,
                timeout,
                id,
                helper: helper.map(|h| h.as_str().try_into().unwrap()),
                zone,
                flags: flags.map(ExpectFlags),
                class,
                nat: nat.map(|(dir, tuple)| ExpectNat { dir, tuple }),
                func: func.map(|f| f.as_str().try_into().unwrap()),
                unknown,
            }
        })
        .boxed()
}
