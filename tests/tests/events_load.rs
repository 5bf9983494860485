//! Load: 100 000 entries created in bulk while a socket listens.
//!
//! - With the default receive queue the listener cannot keep up: the loss must be reported
//!   (lost > 0 is the expected result; silence would be the bug), exactly: received + lost =
//!   the 100 000 events the kernel generated, and lost = the socket's drop counter.
//! - With a 64 MiB queue (`SO_RCVBUFFORCE`) every event arrives.
//! - In reliable mode (`NETLINK_BROADCAST_ERROR` + `NETLINK_NO_ENOBUFS`) with the default
//!   queue, new events are still lost (and reported), but the kernel keeps the destroy
//!   events it could not deliver and retries them: a flush delivers all 100 000.
//!
//! The figures (received, lost, queue sizes) are printed; there are no timing assertions.
//! Live: runs as root, each case in its own throwaway network namespace, one at a time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conntrack_codec::ct::{ConntrackRepr, EventKind};
use conntrack_codec::filter::DumpFilter;
use conntrack_io::{Event, Events, Groups, LossCause};
use conntrack_tests::Netns;

const N: usize = 100_000;

/// One case at a time: each makes 100 000 entries.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn entries() -> Vec<ConntrackRepr> {
    (0..N as u32).map(conntrack_tests::tcp_entry).collect()
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    new: u64,
    destroy: u64,
    other: u64,
    lost: u64,
    reports: u64,
}

/// Reads `events` on a thread of its own, as fast as it can: until `done` is set and the
/// queue is empty, or, if `until` is given, until it holds.
fn reader(
    mut events: Events,
    done: Arc<AtomicBool>,
    until: Option<fn(&Tally) -> bool>,
) -> std::thread::JoinHandle<(Events, Tally)> {
    std::thread::spawn(move || {
        let mut t = Tally::default();
        let mut idle_since = Instant::now();
        loop {
            match events.try_next().expect("try_next") {
                Some(Event::Conntrack(c)) => match c.kind {
                    EventKind::New => t.new += 1,
                    EventKind::Destroy => t.destroy += 1,
                    EventKind::Update => t.other += 1,
                },
                Some(Event::Expect(_)) => t.other += 1,
                Some(Event::Lost(l)) => {
                    assert_eq!(l.cause, LossCause::QueueFull);
                    assert!(l.exact);
                    t.lost += l.count;
                    t.reports += 1;
                    assert_eq!(l.total, events.stats().lost);
                }
                None => {
                    let finished = match until {
                        Some(cond) => cond(&t),
                        None => done.load(Ordering::SeqCst),
                    };
                    // The idle limit is a stop condition, not a timing assertion: the test
                    // fails below if the events it waits for never come.
                    if finished || idle_since.elapsed() > Duration::from_secs(60) {
                        return (events, t);
                    }
                    std::thread::yield_now();
                    continue;
                }
            }
            idle_since = Instant::now();
        }
    })
}

fn create_all(ns: &Netns, list: &[ConntrackRepr]) {
    let mut creator = ns.socket();
    creator.set_rcvbuf(8 << 20).unwrap();
    let s = creator
        .create_batch(list, 2048, |i, r| {
            r.unwrap_or_else(|e| panic!("create {i}: {e}"))
        })
        .unwrap();
    assert_eq!(s.succeeded, N);
}

#[test]
fn default_queue_reports_its_loss_exactly() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let list = entries();
    let ns = Netns::new("ev-load-default");
    let events = Events::open_in_netns(ns.path(), Groups::CONNTRACK).unwrap();
    let rcvbuf = events.socket().rcvbuf().unwrap();
    // The reader starts once the burst is over, so the queue must overflow whatever the
    // machine's speed: a reader racing the burst on an idle machine may keep up, and a test
    // of loss reporting must not depend on that.
    create_all(&ns, &list);
    let done = Arc::new(AtomicBool::new(true));
    let (events, t) = reader(events, done, None).join().unwrap();
    let drops = u64::from(events.socket().drops().unwrap());
    println!(
        "default queue ({rcvbuf} B), read after the burst: {N} created, {} received, {} lost \
         in {} reports, drop counter {drops}",
        t.new, t.lost, t.reports
    );
    assert!(
        t.lost > 0,
        "100 000 events into a default queue and no loss reported"
    );
    assert_eq!(t.new + t.lost, N as u64);
    assert_eq!(t.lost, drops);
    assert_eq!(events.stats().lost, drops);
}

#[test]
fn a_64_mib_queue_receives_every_event() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let list = entries();
    let ns = Netns::new("ev-load-big");
    let events = Events::open_in_netns(ns.path(), Groups::CONNTRACK).unwrap();
    let rcvbuf = events.set_rcvbuf(64 << 20).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let r = reader(events, Arc::clone(&done), None);
    create_all(&ns, &list);
    done.store(true, Ordering::SeqCst);
    let (events, t) = r.join().unwrap();
    let drops = events.socket().drops().unwrap();
    println!(
        "64 MiB asked, {rcvbuf} B queue: {N} created, {} received, {} lost, drop counter {drops}",
        t.new, t.lost
    );
    assert_eq!((t.new, t.lost, drops), (N as u64, 0, 0));
}

#[test]
fn reliable_mode_delivers_every_destroy_event() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let list = entries();
    let ns = Netns::new("ev-load-reliable");
    let events = Events::open_in_netns(ns.path(), Groups::CONNTRACK).unwrap();
    events.set_reliable(true).unwrap();
    let rcvbuf = events.socket().rcvbuf().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let r = reader(events, Arc::clone(&done), None);
    create_all(&ns, &list);
    done.store(true, Ordering::SeqCst);
    let (events, created) = r.join().unwrap();
    let drops_after_create = events.socket().drops().unwrap();
    println!(
        "reliable, default queue ({rcvbuf} B), bulk create: {} new events received, {} lost \
         (drop counter {drops_after_create})",
        created.new, created.lost
    );
    // New events are not retried: what was lost is reported, exactly.
    assert_eq!(created.new + created.lost, N as u64);
    assert_eq!(created.lost, u64::from(drops_after_create));

    // The flush: every destroy event arrives, retried by the kernel until delivered.
    let done = Arc::new(AtomicBool::new(false));
    let r = reader(events, Arc::clone(&done), Some(|t| t.destroy >= N as u64));
    let start = Instant::now();
    ns.socket().flush(&DumpFilter::default()).unwrap();
    done.store(true, Ordering::SeqCst);
    let (events, t) = r.join().unwrap();
    let drops = events.socket().drops().unwrap();
    println!(
        "reliable, flush: {} destroy events received of {N} (in {:.1} s), {} delivery \
         failures reported (drop counter {} since the create)",
        t.destroy,
        start.elapsed().as_secs_f64(),
        t.lost,
        drops - drops_after_create
    );
    assert_eq!(t.destroy, N as u64);
}
