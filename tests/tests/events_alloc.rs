//! The event stream allocates nothing per event: a counting global allocator watches the
//! reads of 100 and of 3000 events (new, update and destroy, each parsed and inspected), and
//! of a lossy stream whose loss reports come from the drop counter. (Its own test binary,
//! since it sets the global allocator.)
//!
//! Live: runs as root in a throwaway network namespace.

use std::net::{IpAddr, Ipv4Addr};

use conntrack_codec::ct::{ConntrackRepr, Status, Tuple};
use conntrack_codec::filter::DumpFilter;
use conntrack_io::{Event, Events, Groups, Socket};
use conntrack_tests::alloc::{allocations, Counting};
use conntrack_tests::Netns;

#[global_allocator]
static GLOBAL: Counting = Counting;

fn entries(from: u32, n: u32) -> Vec<ConntrackRepr> {
    (from..from + n)
        .map(|i| {
            let t = Tuple::udp(
                IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i)),
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                1000,
                53,
            );
            ConntrackRepr {
                orig: Some(t),
                reply: Some(t.inverted()),
                status: Some(Status::SEEN_REPLY),
                timeout: Some(300),
                mark: Some(i),
                ..ConntrackRepr::default()
            }
        })
        .collect()
}

fn create(sock: &mut Socket, list: &[ConntrackRepr]) {
    let s = sock
        .create_batch(list, 64, |i, r| r.unwrap_or_else(|e| panic!("{i}: {e}")))
        .unwrap();
    assert_eq!(s.succeeded, list.len());
}

/// Reads every queued item, looking into each event; returns (events, lost, a checksum).
fn drain(events: &mut Events) -> (u64, u64, u64) {
    let (mut n, mut lost, mut sum) = (0u64, 0u64, 0u64);
    while let Some(ev) = events.try_next().expect("try_next") {
        match ev {
            Event::Conntrack(c) => {
                n += 1;
                let orig = c.entry.orig().unwrap().unwrap();
                sum = sum
                    .wrapping_add(u64::from(c.entry.mark().unwrap().unwrap_or(0)))
                    .wrapping_add(u64::from(c.entry.id().unwrap().unwrap_or(0)))
                    .wrapping_add(u64::from(orig.src_port.unwrap_or(0)))
                    .wrapping_add(u64::from(c.portid))
                    .wrapping_add(c.kind as u64);
            }
            Event::Expect(_) => n += 1,
            Event::Lost(l) => lost += l.count,
        }
    }
    (n, lost, sum)
}

#[test]
fn events_allocate_nothing_per_event() {
    let ns = Netns::new("ev-alloc");
    let mut events = Events::open_in_netns(ns.path(), Groups::CONNTRACK).unwrap();
    events.set_rcvbuf(16 << 20).unwrap();
    let mut creator = ns.socket();

    let small = entries(0, 100);
    create(&mut creator, &small);
    let ((n_small, lost, _), small_allocs) = allocations(|| drain(&mut events));
    assert_eq!((n_small, lost), (100, 0));

    let large = entries(1000, 3000);
    create(&mut creator, &large);
    let updates: Vec<ConntrackRepr> = large
        .iter()
        .map(|e| ConntrackRepr {
            orig: e.orig,
            mark: Some(7),
            ..ConntrackRepr::default()
        })
        .collect();
    creator
        .update_batch(&updates, 64, |i, r| {
            r.unwrap_or_else(|e| panic!("{i}: {e}"))
        })
        .unwrap();
    creator.flush(&DumpFilter::default()).unwrap();
    let ((n_large, lost, _), large_allocs) = allocations(|| drain(&mut events));
    // 3000 new, 3000 updates, 3100 destroys.
    assert_eq!((n_large, lost), (9100, 0));
    println!(
        "{n_small} events: {small_allocs} allocations; {n_large} events: {large_allocs} \
         allocations; {:?}",
        events.stats()
    );
    assert_eq!((small_allocs, large_allocs), (0, 0));
}

#[test]
fn loss_reports_allocate_nothing() {
    let ns = Netns::new("ev-alloc-loss");
    let mut events = Events::open_in_netns(ns.path(), Groups::CONNTRACK).unwrap();
    events.set_rcvbuf(16 * 1024).unwrap();
    events.set_no_enobufs(true).unwrap();
    let mut creator = ns.socket();
    create(&mut creator, &entries(0, 1000));
    let ((n, lost, _), allocs) = allocations(|| drain(&mut events));
    println!("{n} received, {lost} lost: {allocs} allocations");
    assert!(lost > 0);
    assert_eq!(n + lost, 1000);
    assert_eq!(allocs, 0);
}
