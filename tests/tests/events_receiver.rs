//! The receive thread (`conntrack_io::Receiver`) and growth on demand, live:
//!
//! - losses stay exact across both queues: the socket's (the kernel's drop counter) and the
//!   receiver's own (counted as it drops): received + lost = created, each cause exactly;
//! - with `WhenFull::Wait` every loss is the kernel's, and nothing is lost that fits;
//! - an idle stream hands each event out at once, and tells the reader it is idle (where a
//!   program flushes its output) before it waits for the next;
//! - growth on demand doubles the socket's queue once per overrun, reports it in the loss,
//!   and stops at its maximum.
//!
//! No timing is asserted: waits have generous limits and only bound a test that would
//! otherwise hang. Live: runs as root, each case in its own throwaway network namespace.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use conntrack_codec::ct::ConntrackRepr;
use conntrack_io::{Event, Events, Groups, LossCause, Receiver, WhenFull};
use conntrack_tests::{tcp_entry, Netns};

fn entries(from: u32, n: u32) -> Vec<ConntrackRepr> {
    (from..from + n).map(tcp_entry).collect()
}

fn create(ns: &Netns, list: &[ConntrackRepr]) {
    let mut creator = ns.socket();
    creator.set_rcvbuf(8 << 20).expect("rcvbuf");
    let s = creator
        .create_batch(list, 1024, |i, r| {
            r.unwrap_or_else(|e| panic!("create {i}: {e}"))
        })
        .expect("create");
    assert_eq!(s.succeeded, list.len());
}

/// What a reader saw: events, and losses by cause.
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    events: u64,
    kernel: u64,
    backlog: u64,
    last_total: u64,
}

/// Reads until `want` events are accounted for (received or lost); a minute without any
/// item ends it (the test then fails on the counts).
fn read_all(rx: &mut Receiver, want: u64) -> Seen {
    let mut seen = Seen::default();
    let mut quiet_since = Instant::now();
    while seen.events + seen.kernel + seen.backlog < want {
        match rx.try_next().expect("next") {
            Some(Event::Conntrack(_)) => seen.events += 1,
            Some(Event::Expect(_)) => panic!("no expectation here"),
            Some(Event::Lost(l)) => {
                assert!(l.exact, "{l}");
                match l.cause {
                    LossCause::QueueFull => seen.kernel += l.count,
                    LossCause::Backlog => seen.backlog += l.count,
                    other => panic!("unexpected cause {other:?}"),
                }
                assert!(l.total > seen.last_total, "totals grow: {l}");
                seen.last_total = l.total;
            }
            None => {
                assert!(
                    quiet_since.elapsed() < Duration::from_secs(60),
                    "events missing: {seen:?} of {want}"
                );
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        }
        quiet_since = Instant::now();
    }
    seen
}

/// Waits until the receive thread has read (or dropped) `n` events from the socket.
fn wait_received(rx: &Receiver, n: u64) {
    let watch = rx.watch();
    let t0 = Instant::now();
    while watch.stats().stream.received + watch.stats().stream.lost < n {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{:?}",
            watch.stats()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn losses_stay_exact_across_the_socket_and_the_queue() {
    let ns = Netns::new("rx-exact");
    let events = Events::open_in_netns(ns.path(), Groups::CONNTRACK).expect("events");
    // A socket queue of a few events, which a burst overflows between two drains, and a
    // receiver queue of 16 that nobody reads during the burst: both overflow. (Real-time
    // scheduling, as root, so that a loaded machine still lets the thread drain the socket
    // often enough to fill its queue.)
    events.set_rcvbuf(4096).expect("rcvbuf");
    let drops_before = events.socket().drops().expect("drops");
    let mut rx = Receiver::builder()
        .capacity(16)
        .realtime(Some(1))
        .spawn(events)
        .expect("receiver");
    let n = 5000;
    create(&ns, &entries(0, n));
    wait_received(&rx, u64::from(n));
    let seen = read_all(&mut rx, u64::from(n));
    let stats = rx.stats();
    let events = rx.stop().expect("stop");
    let drops = u64::from(events.socket().drops().expect("drops") - drops_before);
    println!("{n} created: {seen:?}; kernel drops {drops}; {stats:?}");
    assert_eq!(seen.events + seen.kernel + seen.backlog, u64::from(n));
    assert_eq!(
        seen.kernel, drops,
        "the kernel's losses are its drop counter"
    );
    assert_eq!(seen.kernel, stats.stream.lost);
    assert_eq!(seen.events + seen.backlog, stats.stream.received);
    assert_eq!(seen.backlog, stats.backlog_lost);
    assert_eq!(seen.last_total, seen.kernel + seen.backlog);
    assert!(seen.kernel > 0, "the socket's queue overflowed: {seen:?}");
    assert_eq!(seen.events, 16, "the queue held 16 events: {seen:?}");
    assert!(seen.backlog > 0, "the queue overflowed: {seen:?}");
    assert_eq!(
        stats.backlog_overruns, 1,
        "one overrun: nobody read during the burst"
    );
    assert_eq!((stats.slots, stats.peak), (16, 16));
}

#[test]
fn waiting_for_room_leaves_every_loss_to_the_kernel() {
    let ns = Netns::new("rx-wait");
    let events = Events::open_in_netns(ns.path(), Groups::CONNTRACK).expect("events");
    events.set_rcvbuf(64 * 1024).expect("rcvbuf");
    let drops_before = events.socket().drops().expect("drops");
    let mut rx = Receiver::builder()
        .capacity(64)
        .when_full(WhenFull::Wait)
        .spawn(events)
        .expect("receiver");
    let n = 3000;
    create(&ns, &entries(0, n));
    let seen = read_all(&mut rx, u64::from(n));
    let stats = rx.stats();
    let events = rx.stop().expect("stop");
    let drops = u64::from(events.socket().drops().expect("drops") - drops_before);
    println!("{n} created: {seen:?}; kernel drops {drops}; {stats:?}");
    assert_eq!(seen.backlog, 0);
    assert_eq!(seen.events + seen.kernel, u64::from(n));
    assert_eq!(seen.kernel, drops);
    // The queue (64) and the socket's queue held what they could: more than the queue.
    assert!(seen.events > 64, "{seen:?}");
}

#[test]
fn a_quiet_stream_hands_out_each_event_and_says_it_is_idle() {
    let ns = Netns::new("rx-idle");
    let events = Events::open_in_netns(ns.path(), Groups::CONNTRACK_NEW).expect("events");
    let mut rx = Receiver::spawn(events).expect("receiver");
    let (idle_tx, idle_rx) = mpsc::channel::<()>();
    let path = ns.path();
    // Each entry is made only once the reader has said it is idle (or after 30 s, which
    // fails the test): an event that waited for the next one would never come.
    let creator = std::thread::spawn(move || {
        let mut sock = conntrack_io::Socket::open_in_netns(path).expect("socket");
        let mut told = 0;
        for i in 0..3 {
            if idle_rx.recv_timeout(Duration::from_secs(30)).is_ok() {
                told += 1;
            }
            sock.create(&tcp_entry(i)).expect("create");
        }
        told
    });
    let mut got = Vec::new();
    while got.len() < 3 {
        let tell = idle_tx.clone();
        match rx.next_or_idle(move |_| {
            let _ = tell.send(());
        }) {
            Ok(Some(Event::Conntrack(ev))) => got.push(ev.entry.orig().expect("orig")),
            other => panic!("{other:?}"),
        }
    }
    let told = creator.join().expect("creator");
    assert_eq!(
        told, 3,
        "the reader said it was idle before each entry was made"
    );
    let want: Vec<_> = (0..3).map(|i| tcp_entry(i).orig).collect();
    assert_eq!(got, want);
}

#[test]
fn growth_doubles_the_queue_once_per_overrun_up_to_its_maximum() {
    let ns = Netns::new("rx-grow");
    let mut events = Events::open_in_netns(ns.path(), Groups::CONNTRACK).expect("events");
    let start = events.set_rcvbuf(16 * 1024).expect("rcvbuf");
    // Asked sizes: 16 KiB now, then 32 KiB, then 64 KiB, the maximum.
    events.set_rcvbuf_growth(Some(64 * 1024));
    assert_eq!(events.rcvbuf_growth(), Some(64 * 1024));
    let mut sizes = vec![start];
    let mut received = 0u64;
    let mut lost = 0u64;
    for round in 0..4u32 {
        // Nobody reads during the burst: one overrun per round.
        create(&ns, &entries(round * 2000, 2000));
        while let Some(event) = events.try_next().expect("try_next") {
            match event {
                Event::Lost(l) => {
                    lost += l.count;
                    if let Some(size) = l.grown_to {
                        sizes.push(size);
                    }
                }
                _ => received += 1,
            }
        }
    }
    println!("queue sizes {sizes:?}; {received} received, {lost} lost");
    assert_eq!(received + lost, 8000);
    assert_eq!(
        sizes,
        [start, 2 * start, 4 * start],
        "twice, then at the maximum"
    );
    assert_eq!(events.stats().growths, 2);
    assert_eq!(events.socket().rcvbuf().expect("rcvbuf"), 4 * start);
    events.set_rcvbuf_growth(None);
    assert_eq!(events.rcvbuf_growth(), None);
}

/// The receiver under an async runtime (tokio here; `next_async` needs none in particular):
/// a task waits without blocking its thread, the receive thread wakes it, and a burst
/// arrives whole and in order while another task runs on the same thread.
#[test]
fn an_async_reader_is_woken_by_the_receive_thread() {
    let ns = Netns::new("rx-async");
    let events = Events::open_in_netns(ns.path(), Groups::CONNTRACK_NEW).expect("events");
    events.set_rcvbuf(8 << 20).expect("rcvbuf");
    let mut rx = Receiver::spawn(events).expect("receiver");
    let n = 2000u32;
    let list = entries(0, n);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let got = rt.block_on(async {
        // Ticks while the reader waits (the entries come after 100 ms): the thread is not
        // blocked.
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = std::sync::Arc::clone(&ticks);
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let path = ns.path();
        let creator = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let mut sock = conntrack_io::Socket::open_in_netns(path).expect("socket");
            sock.set_rcvbuf(8 << 20).expect("rcvbuf");
            sock.create_batch(&list, 1024, |i, r| r.unwrap_or_else(|e| panic!("{i}: {e}")))
                .expect("create");
        });
        let mut got = Vec::new();
        while got.len() < n as usize {
            let next = tokio::time::timeout(Duration::from_secs(60), rx.next_async()).await;
            match next.expect("events within a minute").expect("next") {
                Some(Event::Conntrack(ev)) => got.push(ev.entry.orig().expect("orig")),
                other => panic!("{other:?}"),
            }
            if got.len() == 1 {
                let t = ticks.load(std::sync::atomic::Ordering::SeqCst);
                assert!(
                    t > 0,
                    "the runtime's thread was blocked while the reader waited"
                );
            }
        }
        creator.join().expect("creator");
        ticker.abort();
        got
    });
    let want: Vec<_> = (0..n).map(|i| tcp_entry(i).orig).collect();
    assert_eq!(got, want);
}
