//! The tokio side of `conntrack-io` (feature `tokio`), in throwaway namespaces:
//!
//! - under a burst that overflows the default receive queue, the async stream reports
//!   exactly the loss the blocking one reports: two sockets subscribed to the same burst,
//!   neither reading while it runs, one read with `Events`, the other with `AsyncEvents`;
//!   each must say received + lost = the events the kernel generated, lost = its socket's
//!   drop counter, and the two must agree;
//! - `next` is cancel-safe, `next_owned` and the poll function give owned events;
//! - `AsyncSocket` runs requests, dumps and bulk changes on the blocking pool.

use std::net::{IpAddr, Ipv4Addr};
use std::ops::ControlFlow;
use std::time::Duration;

use conntrack_codec::ct::request::Key;
use conntrack_codec::ct::{ConntrackRepr, EventKind, Tuple};
use conntrack_codec::filter::DumpFilter;
use conntrack_io::tokio::{AsyncEvents, AsyncSocket};
use conntrack_io::{Event, Events, Groups, LossCause, OwnedEvent};
use conntrack_tests::Netns;

/// Entries in the burst: enough to overflow a default queue (about 200 events) many times,
/// few enough to keep the test short.
const N: usize = 20_000;

fn entry(i: u32) -> ConntrackRepr {
    let t = Tuple::udp(
        IpAddr::V4(Ipv4Addr::from(0x0a40_0000 | i)),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)),
        1000,
        53,
    );
    ConntrackRepr {
        orig: Some(t),
        reply: Some(t.inverted()),
        timeout: Some(600),
        ..ConntrackRepr::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .unwrap()
}

/// What a reader saw: new events and the losses reported.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    new: u64,
    lost: u64,
    reports: u64,
}

impl Tally {
    fn add(&mut self, event: &Event<'_>) {
        match event {
            Event::Conntrack(c) if c.kind == EventKind::New => self.new += 1,
            Event::Lost(l) => {
                assert_eq!(l.cause, LossCause::QueueFull);
                assert!(l.exact);
                self.lost += l.count;
                self.reports += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn the_async_stream_reports_the_same_exact_loss_as_the_blocking_one() {
    let ns = Netns::new("ev-async-burst");
    let mut blocking = Events::open_in_netns(ns.path(), Groups::CONNTRACK).unwrap();
    let rt = runtime();
    let mut asynchronous = rt.block_on(async {
        AsyncEvents::new(Events::open_in_netns(ns.path(), Groups::CONNTRACK).unwrap()).unwrap()
    });
    let rcvbuf = blocking.socket().rcvbuf().unwrap();
    assert_eq!(asynchronous.get_ref().socket().rcvbuf().unwrap(), rcvbuf);

    // The burst, with both readers idle.
    let list: Vec<ConntrackRepr> = (0..N as u32).map(entry).collect();
    let mut creator = ns.socket();
    creator.set_rcvbuf(8 << 20).unwrap();
    let s = creator
        .create_batch(&list, 2048, |i, r| {
            r.unwrap_or_else(|e| panic!("create {i}: {e}"))
        })
        .unwrap();
    assert_eq!(s.succeeded, N);

    let mut b = Tally::default();
    while let Some(event) = blocking.try_next().unwrap() {
        b.add(&event);
    }
    let mut a = Tally::default();
    rt.block_on(async {
        while a.new + a.lost < N as u64 {
            let event = tokio::time::timeout(Duration::from_secs(30), asynchronous.next())
                .await
                .expect("an event within 30 s")
                .unwrap();
            a.add(&event);
        }
        // Nothing more: the next wait times out.
        let more = tokio::time::timeout(Duration::from_millis(200), asynchronous.next()).await;
        assert!(more.is_err(), "an event after the burst: {more:?}");
    });
    let b_drops = u64::from(blocking.socket().drops().unwrap());
    let a_drops = u64::from(asynchronous.get_ref().socket().drops().unwrap());
    println!(
        "default queue ({rcvbuf} B), {N} events: blocking {} received, {} lost in {} \
         reports (drop counter {b_drops}); async {} received, {} lost in {} reports (drop \
         counter {a_drops})",
        b.new, b.lost, b.reports, a.new, a.lost, a.reports
    );
    assert!(
        b.lost > 0,
        "{N} events into a default queue and no loss reported"
    );
    assert_eq!(b.new + b.lost, N as u64);
    assert_eq!(b.lost, b_drops);
    assert_eq!(a.new + a.lost, N as u64);
    assert_eq!(a.lost, a_drops);
    assert_eq!((a.new, a.lost), (b.new, b.lost));
    assert_eq!(asynchronous.get_ref().stats().lost, blocking.stats().lost);
}

#[test]
fn owned_events_and_cancelled_waits_lose_nothing() {
    let ns = Netns::new("ev-async-owned");
    let rt = runtime();
    rt.block_on(async {
        let mut events = AsyncEvents::open_in_netns(ns.path(), Groups::CONNTRACK).unwrap();
        let requests = AsyncSocket::open_in_netns(ns.path()).unwrap();
        // A wait cancelled with nothing queued.
        let nothing = tokio::time::timeout(Duration::from_millis(50), events.next()).await;
        assert!(nothing.is_err());
        for i in 0..3 {
            requests.create(entry(i)).await.unwrap();
        }
        requests
            .delete(Key::orig(entry(1).orig.unwrap()))
            .await
            .unwrap();
        // Owned events cross a channel to another task.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<OwnedEvent>(8);
        let consumer = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(ev) = rx.recv().await {
                if let OwnedEvent::Conntrack(c) = ev {
                    let src = c.entry().unwrap().orig().unwrap().unwrap().src.unwrap();
                    seen.push((c.kind(), src, c.portid() != 0));
                }
            }
            seen
        });
        for _ in 0..4 {
            let ev = events.next_owned().await.unwrap();
            tx.send(ev).await.unwrap();
        }
        drop(tx);
        let seen = consumer.await.unwrap();
        let src = |i| entry(i).orig.unwrap().src.unwrap();
        assert_eq!(
            seen,
            [
                (EventKind::New, src(0), true),
                (EventKind::New, src(1), true),
                (EventKind::New, src(2), true),
                (EventKind::Destroy, src(1), true),
            ]
        );
        // The poll function, as a `Stream` would use it.
        requests.create(entry(7)).await.unwrap();
        let ev = std::future::poll_fn(|cx| events.poll_next_owned(cx))
            .await
            .unwrap();
        assert!(matches!(ev, OwnedEvent::Conntrack(ref c) if c.kind() == EventKind::New));
    });
}

#[test]
fn async_requests_dumps_and_changes() {
    let ns = Netns::new("ev-async-requests");
    let rt = runtime();
    rt.block_on(async {
        let sock = AsyncSocket::open_in_netns(ns.path()).unwrap();
        for i in 0..10 {
            sock.create(entry(i)).await.unwrap();
        }
        assert_eq!(sock.count().await.unwrap(), 10);
        let got = sock.get(Key::orig(entry(3).orig.unwrap())).await.unwrap();
        assert_eq!(got.orig, entry(3).orig);
        let (n, summary) = sock
            .list_fold(DumpFilter::ipv4(), 0u32, |n, _| {
                *n += 1;
                ControlFlow::Continue(())
            })
            .await
            .unwrap();
        assert_eq!((n, summary.delivered), (10, 10));
        // Delete the even ones by their original source address.
        let even: Vec<_> = (0..10).step_by(2).collect();
        for i in &even {
            let f = DumpFilter::all().with_orig(Tuple {
                src: entry(*i).orig.unwrap().src,
                ..Tuple::default()
            });
            let done = sock.delete_matching(f).await.unwrap();
            assert_eq!(done.succeeded, 1);
        }
        let left = sock.list_all(DumpFilter::all()).await.unwrap();
        assert_eq!(left.len(), 5);
        // Clones share the socket, one operation at a time.
        let other = sock.clone();
        let task = tokio::spawn(async move { other.count().await });
        let mine = sock.count().await.unwrap();
        assert_eq!((mine, task.await.unwrap().unwrap()), (5, 5));
        sock.flush(DumpFilter::all()).await.unwrap();
        assert_eq!(sock.count().await.unwrap(), 0);
    });
}
