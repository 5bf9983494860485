//! `Socket::change_each`: the entries a dump finds, changed in bulk on a second socket a
//! window at a time while the dump waits; every outcome reported once, with its entry, in
//! dump order; memory that does not grow with the table (a counting allocator: its own test
//! binary, since it sets the global allocator).
//!
//! Live: runs as root in throwaway network namespaces.

use std::net::{IpAddr, Ipv4Addr};
use std::ops::ControlFlow;

use conntrack_codec::ct::request::{self, Key};
use conntrack_codec::ct::{ConntrackRepr, Tuple};
use conntrack_codec::filter::DumpFilter;
use conntrack_io::{Errno, Error};
use conntrack_tests::alloc::{allocations, Counting};
use conntrack_tests::Netns;

#[global_allocator]
static GLOBAL: Counting = Counting;

fn entry(i: u32) -> ConntrackRepr {
    let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i));
    let orig = Tuple::udp(src, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 1000, 53);
    ConntrackRepr {
        family: 2,
        orig: Some(orig),
        reply: Some(orig.inverted()),
        timeout: Some(600),
        ..ConntrackRepr::default()
    }
}

fn index(t: &Tuple) -> u32 {
    match t.src {
        Some(IpAddr::V4(a)) => u32::from(a) & 0x00ff_ffff,
        _ => u32::MAX,
    }
}

fn fill(sock: &mut conntrack_io::Socket, from: u32, to: u32) {
    let entries: Vec<ConntrackRepr> = (from..to).map(entry).collect();
    let summary = sock
        .create_batch(&entries, 64, |i, r| assert!(r.is_ok(), "create {i}: {r:?}"))
        .expect("fill");
    assert_eq!(summary.succeeded, entries.len());
}

/// The indexes of the entries of the table, in dump order.
fn dump_order(sock: &mut conntrack_io::Socket) -> Vec<u32> {
    let mut order = Vec::new();
    let summary = sock
        .list(&DumpFilter::default(), |v| {
            if let Ok(Some(t)) = v.orig() {
                order.push(index(&t));
            }
            ControlFlow::Continue(())
        })
        .expect("dump");
    assert!(!summary.interrupted);
    order
}

/// Deletes the entries with an even index, `window` at a time.
fn delete_even(
    sock: &mut conntrack_io::Socket,
    helper: &mut conntrack_io::Socket,
    window: usize,
    seen: &mut Vec<(u32, Result<(), Error>)>,
) -> conntrack_io::DumpSummary {
    sock.change_each(
        helper,
        &DumpFilter::family(2),
        window,
        |view, w| {
            let orig = view
                .orig()?
                .ok_or(conntrack_codec::Error::MissingAttribute("orig"))?;
            if index(&orig) % 2 == 1 {
                return Ok(false);
            }
            request::delete(w, 0, &Key::orig(orig)).map(|_| true)
        },
        |e, r| seen.push((e.orig.as_ref().map_or(u32::MAX, index), r)),
    )
    .expect("change_each")
}

#[test]
fn every_matching_entry_is_changed_and_reported_in_dump_order() {
    let ns = Netns::new("io-stream");
    let mut sock = ns.socket();
    let mut helper = ns.socket();
    fill(&mut sock, 0, 3000);
    let order = dump_order(&mut sock);
    let mut seen = Vec::with_capacity(2000);
    let summary = delete_even(&mut sock, &mut helper, 64, &mut seen);
    assert_eq!(summary.delivered, 3000);
    let want: Vec<u32> = order.iter().copied().filter(|i| i % 2 == 0).collect();
    let got: Vec<u32> = seen.iter().map(|(i, _)| *i).collect();
    assert_eq!(got, want, "every even entry once, in dump order");
    assert!(seen.iter().all(|(_, r)| r.is_ok()), "all deleted");
    let left = dump_order(&mut sock);
    assert_eq!(left.len(), 1500);
    assert!(left.iter().all(|i| i % 2 == 1));
}

#[test]
fn a_vanished_entry_is_reported_gone() {
    let ns = Netns::new("io-stream-gone");
    let mut sock = ns.socket();
    let mut helper = ns.socket();
    fill(&mut sock, 0, 10);
    let mut other = ns.socket();
    let mut results = Vec::new();
    let summary = sock
        .change_each(
            &mut helper,
            &DumpFilter::default(),
            4,
            |view, w| {
                let orig = view
                    .orig()?
                    .ok_or(conntrack_codec::Error::MissingAttribute("orig"))?;
                // Someone else deletes entry 3 before our request for it goes out.
                if index(&orig) == 3 {
                    other.delete(&Key::orig(orig)).expect("delete first");
                }
                request::delete(w, 0, &Key::orig(orig)).map(|_| true)
            },
            |e, r| results.push((e.orig.as_ref().map_or(u32::MAX, index), r)),
        )
        .expect("change_each");
    assert_eq!(summary.delivered, 10);
    assert_eq!(results.len(), 10);
    for (i, r) in &results {
        match (i, r) {
            (3, Err(e)) => assert_eq!(e.errno(), Some(Errno::ENOENT), "{e}"),
            (3, Ok(())) => panic!("entry 3 was gone"),
            (_, r) => assert!(r.is_ok(), "{i}: {r:?}"),
        }
    }
    assert!(dump_order(&mut sock).is_empty());
}

#[test]
fn memory_does_not_grow_with_the_table() {
    let ns = Netns::new("io-stream-alloc");
    let mut sock = ns.socket();
    let mut helper = ns.socket();
    let mut seen = Vec::with_capacity(20_000);
    fill(&mut sock, 0, 2000);
    let (_, small) = allocations(|| delete_even(&mut sock, &mut helper, 128, &mut seen));
    seen.clear();
    fill(&mut sock, 2000, 20_000);
    let (_, large) = allocations(|| delete_even(&mut sock, &mut helper, 128, &mut seen));
    eprintln!(
        "change_each: {small} allocations for 1000 deletes, {large} for {}",
        seen.len()
    );
    assert_eq!(seen.len(), 9000);
    assert_eq!(small, large, "allocations grow with the number of entries");
}
