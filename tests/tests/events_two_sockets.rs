//! The two-socket pattern under load: a reader follows the events of a burst (20 000 entries
//! created, then deleted, by another thread) and dumps the table every 2 000 events.
//!
//! - With the dumps on a second socket, every event arrives: the ones that come during a
//!   dump wait in the event socket's queue (64 MiB, room for the whole burst).
//! - With the same dumps made on the event socket (`Events::with_socket`), the dumps read and
//!   drop the events queued before their answers: events are lost, and every one of them is
//!   reported (`LossCause::Request`): received + lost = the 40 000 events of the burst.
//!
//! Every dump must end complete (Linux 6.18 never flags a conntrack dump interrupted). The
//! figures are printed; there are no timing assertions. Live: runs as root, each case in its
//! own throwaway network namespace.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use conntrack_codec::ct::request::Key;
use conntrack_codec::ct::{ConntrackRepr, EventKind};
use conntrack_codec::filter::DumpFilter;
use conntrack_io::{DumpSummary, Event, Events, Groups, LossCause, Socket};
use conntrack_tests::{tcp_entry, Netns};

const N: u32 = 20_000;
const DUMP_EVERY: u64 = 2_000;

#[derive(Debug, Default)]
struct Outcome {
    received: u64,
    lost_queue: u64,
    lost_request: u64,
    dumps: u32,
    largest_dump: u64,
}

/// What one item of the stream was, once the borrow of the stream has ended.
enum Item {
    Event,
    Lost(LossCause, u64),
    Nothing,
}

fn run(two_sockets: bool) -> Outcome {
    let ns = Netns::new(if two_sockets { "twosock" } else { "onesock" });
    let mut events = Events::open_in_netns(ns.path(), Groups::CONNTRACK).expect("subscribe");
    events.set_rcvbuf(64 << 20).expect("rcvbuf");
    let mut requests = ns.socket();
    let burst = {
        let mut sock: Socket = ns.socket();
        std::thread::spawn(move || {
            let entries: Vec<ConntrackRepr> = (0..N).map(tcp_entry).collect();
            let made = sock.create_batch(&entries, 256, |_, _| {}).expect("create");
            let keys: Vec<Key> = entries
                .iter()
                .map(|e| Key::orig(e.orig.expect("tuple")))
                .collect();
            let gone = sock.delete_batch(&keys, 256, |_, _| {}).expect("delete");
            (made.succeeded, gone.succeeded)
        })
    };
    let expected = 2 * u64::from(N);
    let mut out = Outcome::default();
    let deadline = Instant::now() + Duration::from_secs(120);
    while out.received + out.lost_queue + out.lost_request < expected {
        assert!(Instant::now() < deadline, "stalled: {out:?}");
        let item = match events.try_next().expect("try_next") {
            Some(Event::Conntrack(ev)) => {
                assert!(matches!(ev.kind, EventKind::New | EventKind::Destroy));
                Item::Event
            }
            Some(Event::Expect(_)) => panic!("an expectation event"),
            Some(Event::Lost(lost)) => {
                assert!(lost.exact, "{lost}");
                Item::Lost(lost.cause, lost.count)
            }
            None => Item::Nothing,
        };
        match item {
            Item::Event => {
                out.received += 1;
                if out.received.is_multiple_of(DUMP_EVERY) {
                    let dump = |s: &mut Socket| -> DumpSummary {
                        s.list(&DumpFilter::default(), |_| ControlFlow::Continue(()))
                            .expect("dump")
                    };
                    let summary = if two_sockets {
                        dump(&mut requests)
                    } else {
                        events.with_socket(dump)
                    };
                    assert!(!summary.interrupted, "a conntrack dump flagged interrupted");
                    out.dumps += 1;
                    out.largest_dump = out.largest_dump.max(summary.delivered);
                }
            }
            Item::Lost(LossCause::QueueFull, n) => out.lost_queue += n,
            Item::Lost(LossCause::Request, n) => out.lost_request += n,
            Item::Lost(cause, _) => panic!("unknown cause {cause:?}"),
            Item::Nothing => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    let (made, gone) = burst.join().expect("burst");
    assert_eq!((made, gone), (N as usize, N as usize), "the burst");
    // Nothing more arrives, and nothing was counted twice.
    std::thread::sleep(Duration::from_millis(100));
    assert!(events.try_next().expect("try_next").is_none(), "{out:?}");
    assert_eq!(
        out.received + out.lost_queue + out.lost_request,
        expected,
        "{out:?}"
    );
    out
}

#[test]
fn requests_on_a_second_socket_lose_no_event() {
    let out = run(true);
    println!("two sockets: {out:?}");
    assert_eq!(out.received, 2 * u64::from(N), "{out:?}");
    assert!(out.dumps > 0);
}

#[test]
fn requests_on_the_event_socket_lose_events_and_say_how_many() {
    let out = run(false);
    println!("one socket: {out:?}");
    assert_eq!(out.lost_queue, 0, "the queue had room: {out:?}");
    assert!(out.lost_request > 0, "no event lost to a dump: {out:?}");
    assert!(out.dumps > 0);
}
