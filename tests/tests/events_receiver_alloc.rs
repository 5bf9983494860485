//! The receive thread allocates nothing per event: once its slots exist (a first burst
//! deeper than the next one), a burst of 3000 events created on one thread, received and
//! queued on the receive thread and read field by field on a third (which waits whenever it
//! has caught up) costs no allocation on any thread. Its own test binary, with one
//! test, since it sets the global allocator and counts every thread of the process.
//!
//! Live: runs as root in a throwaway network namespace.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use conntrack_codec::ct::ConntrackRepr;
use conntrack_io::{Event, Events, Groups, Receiver};
use conntrack_tests::alloc::{allocations, allocations_everywhere, Counting};
use conntrack_tests::{tcp_entry, Netns};

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: u32 = 3000;

/// Waits until the receive thread has queued `n` more events than `before`.
fn wait_received(rx: &Receiver, before: u64, n: u64) {
    let watch = rx.watch();
    let t0 = Instant::now();
    while watch.stats().stream.received < before + n {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{:?}",
            watch.stats()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Reads `n` events, every field of each, through the idle call too; returns a checksum.
fn drain(rx: &mut Receiver, n: u64) -> u64 {
    let (mut seen, mut sum, mut idle) = (0u64, 0u64, 0u64);
    while seen < n {
        match rx.next_or_idle(|s| idle += s.handed_out).expect("next") {
            Some(Event::Conntrack(c)) => {
                seen += 1;
                let orig = c.entry.orig().expect("orig").expect("a tuple");
                sum = sum
                    .wrapping_add(u64::from(c.entry.id().expect("id").unwrap_or(0)))
                    .wrapping_add(u64::from(orig.src_port.unwrap_or(0)))
                    .wrapping_add(u64::from(c.portid));
            }
            Some(Event::Lost(l)) => panic!("nothing should be lost here: {l}"),
            other => panic!("{other:?}"),
        }
    }
    sum.wrapping_add(idle)
}

#[test]
fn the_receiver_allocates_nothing_per_event() {
    let ns = Netns::new("rx-alloc");
    let events = Events::open_in_netns(ns.path(), Groups::CONNTRACK_NEW).expect("events");
    events.set_rcvbuf(16 << 20).expect("rcvbuf");
    let mut rx = Receiver::with_capacity(events, 2 * N as usize).expect("receiver");
    let mut creator = ns.socket();
    creator.set_rcvbuf(8 << 20).expect("rcvbuf");
    // The warm-up is deeper than the measured burst by more than the slots the reader keeps
    // before giving them back (64).
    let warm = N + 128;
    let first: Vec<ConntrackRepr> = (0..warm).map(tcp_entry).collect();
    let second: Vec<ConntrackRepr> = (warm..warm + N).map(tcp_entry).collect();

    // Warm-up: the whole burst queued before it is read, so that every slot it needs exists.
    creator
        .create_batch(&first, 1024, |i, r| {
            r.unwrap_or_else(|e| panic!("{i}: {e}"))
        })
        .expect("create");
    wait_received(&rx, 0, u64::from(warm));
    drain(&mut rx, u64::from(warm));
    let slots = rx.stats().slots;

    // Measured: creating on another thread while the receive thread receives and queues and
    // this one reads, waiting whenever it has caught up.
    let (start, end) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let (go, done) = (Arc::clone(&start), Arc::clone(&end));
    let burst = std::thread::spawn(move || {
        go.wait();
        let ((), creating) = allocations(|| {
            creator
                .create_batch(&second, 1024, |i, r| {
                    r.unwrap_or_else(|e| panic!("{i}: {e}"))
                })
                .expect("create");
        });
        done.wait();
        creating
    });
    let (reading, everywhere) = allocations_everywhere(|| {
        start.wait();
        let (_, reading) = allocations(|| drain(&mut rx, u64::from(N)));
        end.wait();
        reading
    });
    let creating = burst.join().expect("the creating thread");
    println!(
        "{N} events: {everywhere} allocations on every thread ({creating} by the bulk \
         create, {reading} reading); {:?}",
        rx.stats()
    );
    assert_eq!(reading, 0, "reading allocates nothing");
    // What the creator allocated (a constant of the bulk request, if any) is all there was.
    assert_eq!(everywhere, creating, "the receive thread allocated nothing");
    assert_eq!(rx.stats().slots, slots, "no new slot");
    assert_eq!(rx.stats().handed_out, u64::from(warm + N));
}
