//! Property tests of the classic-BPF event filter compiler (slow under Miri: run natively).
//!
//! A classic-BPF interpreter with the kernel's semantics (including the netlink ancillary
//! loads of `net/core/filter.c`) runs every compiled program over generated conntrack event
//! messages; its verdict must equal a plain Rust predicate written from the filter's
//! documented semantics. Every program must also pass a re-implementation of the kernel's
//! classic-BPF checker (`bpf_check_classic`). The numbers below are taken from the uapi
//! headers, not from the compiler, so that a wrong constant there cannot hide.
#![cfg(not(miri))]

mod bpf_vm;
mod common;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use conntrack_codec::ct::{l4proto, ConntrackRepr, DccpInfo, ProtoInfo, SctpInfo, TcpInfo, Tuple};
use conntrack_codec::filter::bpf::{
    BpfInsn, ByteSet, EventFilter, Ipv4Match, Ipv6Match, Logic, MarkMatch, MatchSet, MAX_INSNS,
};
use conntrack_codec::nfnl::{msg_type, Subsystem};
use conntrack_codec::nl::Writer;
use conntrack_codec::Error;
use proptest::prelude::*;
use proptest::sample::select;

use bpf_vm::*;

/// Compiles, checks with the kernel's rules, and returns the program.
fn compiled<const N: usize>(f: &EventFilter<N>) -> Vec<BpfInsn> {
    let mut out = vec![BpfInsn::default(); MAX_INSNS];
    let n = f.compile(&mut out).expect("compile");
    assert_eq!(n, f.program_len().unwrap());
    out.truncate(n);
    if let Err(e) = kernel_check(&out) {
        panic!("the kernel would refuse the program: {e}");
    }
    out
}

/// Whether the kernel would queue the message: the program returns non-zero.
fn delivered(prog: &[BpfInsn], pkt: &[u8]) -> bool {
    match run(prog, pkt) {
        Ok(v) => v != 0,
        Err(Fault(at)) => panic!("load out of bounds at {at} on a well-formed message"),
    }
}

// ---------------------------------------------------------------------------------------
// Strategies: small pools, so that filters and entries meet.

const POOL4: [[u8; 4]; 6] = [
    [10, 0, 0, 1],
    [10, 0, 0, 2],
    [10, 1, 2, 3],
    [192, 168, 1, 1],
    [8, 8, 8, 8],
    [0, 0, 0, 0],
];
const POOL6: [&str; 5] = [
    "2001:db8::1",
    "2001:db8::2",
    "2001:db8:1::1",
    "fe80::1",
    "::",
];
const PROTOS: [u8; 7] = [
    l4proto::TCP,
    l4proto::UDP,
    l4proto::SCTP,
    l4proto::ICMP,
    l4proto::ICMPV6,
    l4proto::GRE,
    99,
];

fn addr4() -> BoxedStrategy<Ipv4Addr> {
    prop_oneof![
        3 => select(&POOL4[..]).prop_map(Ipv4Addr::from),
        1 => any::<[u8; 4]>().prop_map(Ipv4Addr::from),
    ]
    .boxed()
}

fn addr6() -> BoxedStrategy<Ipv6Addr> {
    prop_oneof![
        3 => select(&POOL6[..]).prop_map(|s| s.parse().unwrap()),
        1 => any::<[u8; 16]>().prop_map(Ipv6Addr::from),
    ]
    .boxed()
}

fn net4() -> BoxedStrategy<Ipv4Match> {
    let mask = prop_oneof![
        3 => select(&[0u8, 8, 16, 24, 31, 32][..])
            .prop_map(|l| u32::MAX.checked_shl(32 - u32::from(l)).unwrap_or(0)),
        1 => any::<u32>(),
    ];
    (addr4(), mask)
        .prop_map(|(addr, mask)| Ipv4Match {
            addr,
            mask: Ipv4Addr::from(mask),
        })
        .boxed()
}

fn net6() -> BoxedStrategy<Ipv6Match> {
    let mask = prop_oneof![
        3 => select(&[0u8, 1, 16, 32, 48, 64, 96, 112, 127, 128][..])
            .prop_map(|l| u128::MAX.checked_shl(128 - u32::from(l)).unwrap_or(0)),
        1 => any::<u128>(),
        1 => any::<[u32; 4]>().prop_map(|w| {
            // Each word all zeros, all ones, or arbitrary.
            let b = |v: u32| -> u128 {
                match v % 3 {
                    0 => 0,
                    1 => u32::MAX.into(),
                    _ => v.into(),
                }
            };
            b(w[0]) << 96 | b(w[1]) << 64 | b(w[2]) << 32 | b(w[3])
        }),
    ];
    (addr6(), mask)
        .prop_map(|(addr, mask)| Ipv6Match {
            addr,
            mask: Ipv6Addr::from(mask),
        })
        .boxed()
}

fn mark() -> BoxedStrategy<u32> {
    prop_oneof![3 => select(&[0u32, 1, 0x10, 0xff00, 0x8000_0001][..]), 1 => any::<u32>()].boxed()
}

fn mark_match() -> BoxedStrategy<MarkMatch> {
    let mask = prop_oneof![3 => select(&[u32::MAX, 0xff, 0xff00, 0xf0, 0][..]), 1 => any::<u32>()];
    (mark(), mask)
        .prop_map(|(value, mask)| MarkMatch { value, mask })
        .boxed()
}

fn zone() -> BoxedStrategy<u16> {
    prop_oneof![3 => select(&[0u16, 1, 2, 7, 65535][..]), 1 => any::<u16>()].boxed()
}

fn logic() -> BoxedStrategy<Logic> {
    prop_oneof![Just(Logic::Positive), Just(Logic::Negative)].boxed()
}

fn byte_set(values: BoxedStrategy<u8>, max: usize) -> BoxedStrategy<ByteSet> {
    prop_oneof![
        2 => Just(ByteSet::default()),
        3 => (logic(), prop::collection::vec(values, 1..max)).prop_map(|(l, v)| {
            let mut s = ByteSet::new(l);
            for x in v {
                s.insert(x);
            }
            s
        }),
        // Dense: about half of every byte value, which needs more than one chunk in total.
        1 => (logic(), any::<[u8; 32]>()).prop_map(|(l, bits)| {
            let mut s = ByteSet::new(l);
            for v in 0..=255u8 {
                if bits[usize::from(v / 8)] & (1 << (v % 8)) != 0 {
                    s.insert(v);
                }
            }
            s
        }),
    ]
    .boxed()
}

fn match_set<T: Clone + core::fmt::Debug + 'static, const N: usize>(
    item: BoxedStrategy<T>,
    max: usize,
) -> BoxedStrategy<MatchSet<T, N>> {
    prop_oneof![
        Just(MatchSet::default()),
        (logic(), prop::collection::vec(item, 1..max)).prop_map(|(l, v)| {
            let mut s = MatchSet::new(l);
            for x in v {
                s.push(x).unwrap();
            }
            s
        }),
    ]
    .boxed()
}

const CAP: usize = 512;

fn filter(max: usize) -> BoxedStrategy<EventFilter<CAP>> {
    (
        (
            byte_set(prop_oneof![select(&PROTOS[..]), any::<u8>()].boxed(), 6),
            byte_set((0u8..14).boxed(), 6),
            byte_set((0u8..10).boxed(), 6),
        ),
        (
            match_set(net4(), max),
            match_set(net4(), max),
            match_set(net6(), max),
            match_set(net6(), max),
            match_set(mark_match(), max),
            match_set(zone(), max),
        ),
    )
        .prop_map(
            |((l4proto, tcp_state, sctp_state), (s4, d4, s6, d6, mark, zone))| EventFilter {
                l4proto,
                tcp_state,
                sctp_state,
                ipv4_src: s4,
                ipv4_dst: d4,
                ipv6_src: s6,
                ipv6_dst: d6,
                mark,
                zone,
            },
        )
        .boxed()
}

/// A conntrack entry: random everything (the shared strategy), then the fields filters look
/// at drawn from the pools.
fn entry() -> BoxedStrategy<ConntrackRepr> {
    let ips = prop_oneof![
        (proptest::option::of(addr4()), proptest::option::of(addr4())).prop_map(|(s, d)| (
            2u8,
            s.map(IpAddr::V4),
            d.map(IpAddr::V4)
        )),
        (proptest::option::of(addr6()), proptest::option::of(addr6())).prop_map(|(s, d)| (
            10u8,
            s.map(IpAddr::V6),
            d.map(IpAddr::V6)
        )),
        (addr4(), addr6()).prop_map(|(s, d)| (2u8, Some(IpAddr::V4(s)), Some(IpAddr::V6(d)))),
    ];
    let protoinfo = prop_oneof![
        Just(None),
        proptest::option::of(0u8..14).prop_map(|s| Some(ProtoInfo::Tcp(TcpInfo {
            state: s.map(Into::into),
            wscale_orig: Some(7),
            ..TcpInfo::default()
        }))),
        proptest::option::of(0u8..10).prop_map(|s| Some(ProtoInfo::Sctp(SctpInfo {
            state: s.map(Into::into),
            vtag_orig: Some(1),
            vtag_reply: Some(2),
        }))),
        any::<u8>().prop_map(|s| Some(ProtoInfo::Dccp(DccpInfo {
            state: Some(s.into()),
            ..DccpInfo::default()
        }))),
    ];
    (
        common::repr(),
        ips,
        proptest::option::of(prop_oneof![select(&PROTOS[..]), any::<u8>()]),
        any::<bool>(),
        protoinfo,
        proptest::option::of(mark()),
        proptest::option::of(zone()),
    )
        .prop_map(
            |(mut r, (family, src, dst), proto, has_orig, pi, mark, zone)| {
                r.family = family;
                r.orig = has_orig.then(|| {
                    let mut t = r.orig.unwrap_or_default();
                    t.src = src;
                    t.dst = dst;
                    t.proto = proto;
                    t
                });
                r.protoinfo = pi;
                r.mark = mark;
                r.zone = zone;
                r
            },
        )
        .boxed()
}

/// How a conntrack message arrives.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// An event: `CT_NEW` (with or without `CREATE|EXCL`) or `CT_DELETE`, any flags but MULTI.
    Event { msg: u8, flags: u16 },
    /// Anything else carrying the same attributes: a dump reply (MULTI), another message
    /// number, another subsystem.
    Other { kind: u16, flags: u16 },
}

const MULTI: u16 = 0x02;

fn kind() -> BoxedStrategy<Kind> {
    prop_oneof![
        3 => (prop_oneof![Just(0u8), Just(2u8)], prop_oneof![Just(0x600u16), Just(0), any::<u16>()])
            .prop_map(|(msg, flags)| Kind::Event { msg, flags: flags & !MULTI }),
        1 => (prop_oneof![Just(0u8), Just(2u8)], any::<u16>())
            .prop_map(|(msg, flags)| Kind::Other {
                kind: 0x100 | u16::from(msg),
                flags: flags | MULTI,
            }),
        1 => (any::<u16>(), any::<u16>())
            .prop_filter("not a conntrack NEW/DELETE", |(k, _)| *k != 0x100 && *k != 0x102)
            .prop_map(|(kind, flags)| Kind::Other { kind, flags }),
    ]
    .boxed()
}

fn message(r: &ConntrackRepr, kind: Kind) -> Vec<u8> {
    let (t, fl) = match kind {
        Kind::Event { msg, flags } => (msg_type(Subsystem::Ctnetlink, msg), flags),
        Kind::Other { kind, flags } => (kind, flags),
    };
    let mut buf = vec![0u8; 16384];
    let mut w = Writer::new(&mut buf);
    let end = r.emit(&mut w, t, fl, 0).unwrap().end;
    buf.truncate(end);
    buf
}

fn check_agrees<const M: usize>(f: &EventFilter<M>, entries: &[(ConntrackRepr, Kind)]) {
    let prog = compiled(f);
    for (r, k) in entries {
        let pkt = message(r, *k);
        let want = match k {
            Kind::Event { .. } => wants(f, r),
            Kind::Other { .. } => true,
        };
        assert_eq!(
            delivered(&prog, &pkt),
            want,
            "filter {f:?}\nentry {r:?}\nkind {k:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    /// Small random filters over random entries and message kinds.
    #[test]
    fn program_agrees_with_predicate(
        f in filter(6),
        entries in prop::collection::vec((entry(), kind()), 1..12),
    ) {
        check_agrees(&f, &entries);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Large sets: comparison lists cut into several chunks, all targets still right.
    #[test]
    fn long_programs_agree_with_predicate(
        f in filter(200),
        entries in prop::collection::vec((entry(), kind()), 1..24),
    ) {
        match f.program_len() {
            Ok(_) => check_agrees(&f, &entries),
            Err(e) => prop_assert_eq!(e, Error::TooLong("BPF program")),
        }
    }

    /// Whatever is not a conntrack event passes, whatever the filter.
    #[test]
    fn control_messages_pass(
        f in filter(6),
        kind in 1u16..0x10,
        payload in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let prog = compiled(&f);
        let mut buf = vec![0u8; 128];
        let mut w = Writer::new(&mut buf);
        let end = w.message(kind, 0, 1, 0, |w| w.raw(&payload)).unwrap().end;
        prop_assert!(delivered(&prog, &buf[..end]));
    }
}

/// A dump datagram (several MULTI messages) passes whole, even if its entries do not match.
#[test]
fn dump_datagrams_pass() {
    let mut f = EventFilter::new();
    f.l4proto.insert(l4proto::UDP);
    let prog = compiled(&f);
    let t = Tuple::tcp(
        Ipv4Addr::new(1, 1, 1, 1).into(),
        Ipv4Addr::new(2, 2, 2, 2).into(),
        1,
        2,
    );
    let r = ConntrackRepr {
        family: 2,
        orig: Some(t),
        reply: Some(t.inverted()),
        ..ConntrackRepr::default()
    };
    let mut buf = vec![0u8; 4096];
    let mut w = Writer::new(&mut buf);
    for seq in 0..3 {
        r.emit(&mut w, msg_type(Subsystem::Ctnetlink, 0), MULTI, seq)
            .unwrap();
    }
    let n = w.len();
    assert!(delivered(&prog, &buf[..n]));
    assert!(!delivered(
        &prog,
        &message(&r, Kind::Event { msg: 0, flags: 0 })
    ));
}

/// Filling a set up to the kernel's limit: the longest program that fits is accepted by the
/// checker and still right; one element more is an error, never a truncated program.
#[test]
fn programs_up_to_the_limit() {
    for logic in [Logic::Positive, Logic::Negative] {
        let mut f = EventFilter::<4096>::default();
        f.zone.logic = logic;
        f.l4proto.insert(l4proto::TCP);
        let mut last_ok = 0;
        for z in 0..4096u16 {
            f.zone.push(z * 2).unwrap();
            match f.program_len() {
                Ok(n) => last_ok = n,
                Err(e) => {
                    assert_eq!(e, Error::TooLong("BPF program"));
                    let mut out = vec![BpfInsn::default(); 2 * MAX_INSNS];
                    assert_eq!(f.compile(&mut out), Err(Error::TooLong("BPF program")));
                    f.zone.items.pop();
                    break;
                }
            }
        }
        assert!(last_ok >= MAX_INSNS - 3, "last program {last_ok}");
        let count = f.zone.len() as u16;
        let base = ConntrackRepr {
            family: 2,
            orig: Some(Tuple::tcp(
                Ipv4Addr::new(1, 1, 1, 1).into(),
                Ipv4Addr::new(2, 2, 2, 2).into(),
                1,
                2,
            )),
            ..ConntrackRepr::default()
        };
        let entries: Vec<_> = [
            0,
            1,
            2,
            500,
            510,
            511,
            512,
            1020,
            2 * (count - 1),
            2 * count,
        ]
        .into_iter()
        .map(|z| {
            let r = ConntrackRepr {
                zone: Some(z),
                ..base.clone()
            };
            (
                r,
                Kind::Event {
                    msg: 0,
                    flags: 0x600,
                },
            )
        })
        .collect();
        check_agrees(&f, &entries);
        assert_eq!(compiled(&f).len(), last_ok);
    }
}

/// The compiler never writes past what it reports, and a short slice is refused untouched.
#[test]
fn short_output_is_refused() {
    let mut f = EventFilter::new();
    f.ipv6_src
        .push(Ipv6Match::prefix("2001:db8::".parse().unwrap(), 32).unwrap())
        .unwrap();
    let n = f.program_len().unwrap();
    let mut out = vec![BpfInsn::stmt(0xdead, 0xdead_beef); n + 3];
    assert_eq!(f.compile(&mut out[..n - 1]), Err(Error::BufferTooSmall));
    assert!(out.iter().all(|i| i.code == 0xdead));
    assert_eq!(f.compile(&mut out), Ok(n));
    assert!(out[n..].iter().all(|i| i.code == 0xdead));
}
