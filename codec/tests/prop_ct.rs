//! Property tests of the conntrack model (slow under Miri: run natively).
#![cfg(not(miri))]

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use conntrack_codec::ct::{
    Conntrack, ConntrackRepr, Counters, DccpInfo, Helper, Labels, NatRange, ProtoInfo, SctpInfo,
    SecCtx, SeqAdj, Status, Synproxy, TcpFlags, TcpInfo, Timestamp, Tuple, UnknownAttr, Unknowns,
};
use conntrack_codec::filter::FilterFlags;
use conntrack_codec::nfnl::{ct_msg, msg_type, Subsystem};
use conntrack_codec::nl::{Messages, Writer};
use proptest::option::of;
use proptest::prelude::*;

fn ip() -> BoxedStrategy<IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
    .boxed()
}

fn tuple() -> BoxedStrategy<Tuple> {
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

fn protoinfo() -> BoxedStrategy<ProtoInfo> {
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

fn nat() -> BoxedStrategy<NatRange> {
    (of(ip()), of(ip()), of(any::<u16>()), of(any::<u16>()))
        .prop_map(|(a, b, c, d)| NatRange {
            min_addr: a,
            max_addr: b,
            min_port: c,
            max_port: d,
        })
        .boxed()
}

fn three() -> BoxedStrategy<[Option<u32>; 3]> {
    [of(any::<u32>()), of(any::<u32>()), of(any::<u32>())].boxed()
}

fn helper() -> BoxedStrategy<Helper> {
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

fn unknowns() -> BoxedStrategy<Unknowns> {
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

fn repr() -> BoxedStrategy<ConntrackRepr> {
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

/// Calls every getter of the view; none may panic.
fn every_getter(v: &Conntrack<'_>) {
    let _ = (v.orig(), v.reply(), v.master(), v.status(), v.status_mask());
    let _ = (v.timeout(), v.mark(), v.mark_mask(), v.use_count(), v.id());
    let _ = (v.secmark(), v.zone(), v.timestamp_event(), v.protoinfo());
    let _ = (v.counters_orig(), v.counters_reply(), v.timestamp());
    let _ = (
        v.nat_src(),
        v.nat_dst(),
        v.seq_adj_orig(),
        v.seq_adj_reply(),
    );
    let _ = (v.synproxy(), v.helper_name(), v.helper_info(), v.secctx());
    let _ = (v.labels(), v.labels_mask(), v.filter(), v.event_kind());
    let _ = v.unknown().count();
    let _ = ConntrackRepr::try_from(v);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn repr_emit_parse_round_trip(r in repr()) {
        let mut buf = vec![0xa5u8; 8192];
        let mut w = Writer::new(&mut buf);
        let kind = msg_type(Subsystem::Ctnetlink, ct_msg::NEW);
        let range = r.emit(&mut w, kind, 0, 1).unwrap();
        prop_assert_eq!(range.len(), r.buffer_len());
        let msg = Messages::new(w.written()).next().unwrap().unwrap();
        let back = ConntrackRepr::parse_msg(msg).unwrap();
        prop_assert_eq!(&back, &r);
        let view = Conntrack::parse(msg).unwrap();
        prop_assert_eq!(view.orig().unwrap(), r.orig);
        prop_assert_eq!(view.labels().unwrap(), r.labels);
        prop_assert_eq!(view.helper_name().unwrap(), r.helper.as_ref().map(|h| h.name.as_str()));
        every_getter(&view);
    }

    #[test]
    fn repr_into_every_short_buffer_is_an_error(r in repr()) {
        let need = r.buffer_len();
        let mut buf = vec![0u8; need];
        for size in (0..need).step_by(7) {
            let mut w = Writer::new(&mut buf[..size]);
            prop_assert!(r.emit(&mut w, 0x100, 0, 1).is_err());
            prop_assert!(w.is_empty());
        }
    }

    #[test]
    fn arbitrary_attribute_bytes_never_panic_the_view(
        family in any::<u8>(),
        flags in any::<u16>(),
        attrs in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut bytes = Vec::new();
        let len = (16 + 4 + attrs.len()) as u32;
        bytes.extend_from_slice(&len.to_ne_bytes());
        bytes.extend_from_slice(&0x0100u16.to_ne_bytes());
        bytes.extend_from_slice(&flags.to_ne_bytes());
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&[family, 0, 0, 0]);
        bytes.extend_from_slice(&attrs);
        let msg = Messages::new(&bytes).next().unwrap().unwrap();
        if let Ok(v) = Conntrack::parse(msg) {
            every_getter(&v);
        }
        let _ = ConntrackRepr::parse_msg(msg);
    }

    #[test]
    fn mutated_valid_messages_never_panic(r in repr(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut buf = vec![0u8; 8192];
        let mut w = Writer::new(&mut buf);
        let n = r.emit(&mut w, 0x100, 0, 1).unwrap().end;
        let bytes = &mut buf[..n];
        for (i, b) in flips {
            let i = 16 + i.index(n - 16);
            bytes[i] = b;
        }
        if let Some(Ok(msg)) = Messages::new(bytes).next() {
            if let Ok(v) = Conntrack::parse(msg) {
                every_getter(&v);
            }
        }
    }
}
