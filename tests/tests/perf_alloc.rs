//! The allocation targets of the benchmark (`ctbench`, `docs/performance.md`): reading every
//! field of every entry allocates nothing per entry, whether the entries come from a capture
//! (`parse`), from a dump (`dump`) or from the event stream (`events`). A counting global
//! allocator proves it. No timing is asserted here. (Its own test binary, since it sets the
//! global allocator.)

use std::ops::ControlFlow;

use conntrack_codec::ct::{Conntrack, ConntrackRepr, ProtoInfo, Tuple};
use conntrack_codec::filter::DumpFilter;
use conntrack_codec::nfnl::NfMsg;
use conntrack_codec::nl::{msgtype, Messages};
use conntrack_io::{Event, Events, Groups, Socket};
use conntrack_tests::alloc::{allocations, Counting};
use conntrack_tests::{bulk_create, Netns};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Every field `nfct_nlmsg_parse` extracts, read through the view (what `ctbench` does).
fn every_field(v: &Conntrack<'_>) -> u64 {
    let tuple = |t: Option<Tuple>| t.map_or(0, |t| u64::from(t.src_port.unwrap_or(0)));
    let mut h = tuple(v.orig().unwrap()) + tuple(v.reply().unwrap()) + tuple(v.master().unwrap());
    for x in [
        v.status().unwrap().map(|s| s.0),
        v.timeout().unwrap(),
        v.mark().unwrap(),
        v.use_count().unwrap(),
        v.id().unwrap(),
        v.secmark().unwrap(),
        v.zone().unwrap().map(u32::from),
    ] {
        h += u64::from(x.unwrap_or(0));
    }
    if let Some(ProtoInfo::Tcp(t)) = v.protoinfo().unwrap() {
        h += u64::from(t.state.map_or(0, u8::from));
    }
    h += [v.counters_orig().unwrap(), v.counters_reply().unwrap()]
        .iter()
        .flatten()
        .map(|c| c.packets.unwrap_or(0))
        .sum::<u64>();
    h += v.timestamp().unwrap().and_then(|t| t.start).unwrap_or(0);
    h += v.labels().unwrap().map_or(0, |l| u64::from(l.0[0]));
    h += v.helper_name().unwrap().map_or(0, |n| n.len() as u64);
    h += v.secctx().unwrap().map_or(0, |n| n.len() as u64);
    h += v
        .seq_adj_orig()
        .unwrap()
        .map_or(0, |s| u64::from(s.offset_after.unwrap_or(0)));
    h += v
        .synproxy()
        .unwrap()
        .map_or(0, |s| u64::from(s.isn.unwrap_or(0)));
    h
}

#[test]
fn parsing_every_field_allocates_nothing() {
    let capture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../codec/fixtures/dump_ipv4_tcp_2000.bin"
    ))
    .expect("fixture");
    let parse = |bytes: &[u8]| {
        allocations(|| {
            let mut n = 0u64;
            for m in Messages::new(bytes) {
                let m = m.expect("message");
                if m.kind() >= msgtype::MIN_TYPE {
                    std::hint::black_box(every_field(&Conntrack::parse(m).expect("view")));
                    n += 1;
                }
            }
            n
        })
    };
    let (n, allocs) = parse(&capture);
    assert_eq!((n, allocs), (2000, 0));
    // The plain-data parse allocates nothing either.
    let ((), allocs) = allocations(|| {
        for m in Messages::new(&capture).flatten() {
            if m.kind() >= msgtype::MIN_TYPE {
                std::hint::black_box(ConntrackRepr::parse_msg(m).expect("repr"));
            }
        }
    });
    assert_eq!(allocs, 0);
    // Nor does reading every entry into one reused value.
    let mut e = ConntrackRepr::default();
    let ((), allocs) = allocations(|| {
        for m in Messages::new(&capture).flatten() {
            if m.kind() >= msgtype::MIN_TYPE {
                e.parse_into(&NfMsg::new_checked(m).expect("nfnetlink"))
                    .expect("repr");
                std::hint::black_box(&e);
            }
        }
    });
    assert_eq!(allocs, 0);
}

#[test]
fn dumping_every_field_allocates_nothing_per_entry() {
    let ns = Netns::new("perf-alloc-dump");
    let mut sock = ns.socket();
    let dump = |sock: &mut Socket| {
        allocations(|| {
            let mut n = 0u64;
            let mut h = 0u64;
            let summary = sock
                .list(&DumpFilter::default(), |v| {
                    h += every_field(&v);
                    n += 1;
                    ControlFlow::Continue(())
                })
                .expect("dump");
            assert!(!summary.interrupted);
            std::hint::black_box(h);
            n
        })
    };
    bulk_create(&mut sock, 0, 1000);
    let (small, small_allocs) = dump(&mut sock);
    bulk_create(&mut sock, 1000, 20_000);
    let (large, large_allocs) = dump(&mut sock);
    eprintln!("dump of {small}: {small_allocs} allocations; of {large}: {large_allocs}");
    assert_eq!((small, large), (1000, 20_000));
    assert_eq!((small_allocs, large_allocs), (0, 0));
}

#[test]
fn bulk_creates_with_per_datagram_acks_allocate_nothing_per_request() {
    let ns = Netns::new("perf-alloc-fill");
    let mut sock = ns.socket();
    let ((), small) = allocations(|| bulk_create(&mut sock, 0, 100));
    let ((), large) = allocations(|| bulk_create(&mut sock, 100, 10_100));
    assert_eq!((small, large), (0, 0));
}

#[test]
fn events_with_every_field_allocate_nothing_per_event() {
    const N: u32 = 5000;
    let ns = Netns::new("perf-alloc-events");
    let mut events = Events::open_in_netns(ns.path(), Groups::CONNTRACK_NEW).expect("events");
    events.set_rcvbuf(16 << 20).expect("rcvbuf");
    events.set_nonblocking(true).expect("nonblocking");
    let mut sock = ns.socket();
    // Warm up: the first read sizes nothing, but keep the measurement to steady state.
    bulk_create(&mut sock, 0, 10);
    while events.try_next().expect("event").is_some() {}
    bulk_create(&mut sock, 10, 10 + N);
    let ((received, lost, h), allocs) = allocations(|| {
        let (mut received, mut lost, mut h) = (0u64, 0u64, 0u64);
        while let Some(e) = events.try_next().expect("event") {
            match e {
                Event::Conntrack(e) => {
                    h += every_field(&e.entry);
                    received += 1;
                }
                Event::Lost(l) => lost += l.count,
                _ => {}
            }
        }
        (received, lost, h)
    });
    std::hint::black_box(h);
    eprintln!("{received} events, {lost} lost: {allocs} allocations");
    assert_eq!((received, lost), (u64::from(N), 0));
    assert_eq!(allocs, 0);
}
