//! Live tests of `Socket::bulk`: many requests per datagram, answers matched back by
//! sequence number, every result accounted for. Each test runs in its own network namespace.

mod io_support;

use std::time::Instant;

use conntrack_codec::nl::{flags, msgtype, NlMsgHeader, Writer};
use conntrack_io::{Errno, Error, Socket};
use conntrack_tests::Netns;
use io_support::{count_entries, create, create_entries, delete};

/// Runs a bulk and returns each request's result (`None` if it never got one), asserting
/// that none got two.
fn run_bulk(
    sock: &mut Socket,
    count: usize,
    window: usize,
    mut build: impl FnMut(usize, &mut Writer<'_>, u32) -> conntrack_codec::Result<()>,
) -> (Vec<Option<Result<(), Error>>>, conntrack_io::BulkSummary) {
    let mut results: Vec<Option<Result<(), Error>>> = vec![None; count];
    let summary = sock
        .bulk(count, window, &mut build, |i, r| {
            assert!(results[i].is_none(), "request {i} got two results");
            results[i] = Some(r);
        })
        .expect("bulk");
    (results, summary)
}

fn all_ok(results: &[Option<Result<(), Error>>]) -> bool {
    results.iter().all(|r| matches!(r, Some(Ok(()))))
}

#[test]
fn bulk_create_with_a_small_window() {
    const N: usize = 10_000;
    let ns = Netns::new("io-bulk64");
    let mut sock = ns.socket();
    let (results, summary) = run_bulk(&mut sock, N, 64, |i, w, seq| create(w, seq, i as u32));
    assert!(all_ok(&results));
    assert_eq!((summary.succeeded, summary.failed), (N, 0));
    // At most 64 requests in flight: at least N / 64 datagrams.
    assert!(summary.datagrams >= N / 64, "{summary:?}");
    assert_eq!(count_entries(&mut sock), N as u64);
    let out = ns.exec("conntrack", &["-C"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), N.to_string());
}

#[test]
fn bulk_create_and_delete_with_a_big_window() {
    const N: usize = 10_000;
    let ns = Netns::new("io-bulkbig");
    let mut sock = ns.socket();
    // Room for 4096 answers in the queue.
    let rcvbuf = sock.set_rcvbuf(8 << 20).expect("rcvbuf");
    assert!(rcvbuf >= 8 << 20, "{rcvbuf}");
    let (results, summary) = run_bulk(&mut sock, N, 4096, |i, w, seq| create(w, seq, i as u32));
    assert!(all_ok(&results), "{summary:?}");
    // Many requests per datagram: the send buffer, not the window, limits a datagram.
    assert!(summary.datagrams < N / 64, "{summary:?}");
    assert_eq!(count_entries(&mut sock), N as u64);

    let (results, summary) = run_bulk(&mut sock, N, 4096, |i, w, seq| delete(w, seq, i as u32));
    assert!(all_ok(&results), "{summary:?}");
    assert_eq!(count_entries(&mut sock), 0);
}

#[test]
fn bulk_failures_get_their_errno_and_the_rest_succeed() {
    const N: usize = 1000;
    let ns = Netns::new("io-bulkdup");
    let mut sock = ns.socket();
    // Every tenth entry exists already.
    let (results, _) = run_bulk(&mut sock, N / 10, 16, |i, w, seq| {
        create(w, seq, (i * 10) as u32)
    });
    assert!(all_ok(&results));
    let (results, summary) = run_bulk(&mut sock, N, 64, |i, w, seq| create(w, seq, i as u32));
    for (i, r) in results.iter().enumerate() {
        match r {
            Some(Ok(())) => assert!(i % 10 != 0, "duplicate {i} succeeded"),
            Some(Err(Error::Kernel(k))) => {
                assert_eq!(k.errno, Errno::EEXIST);
                assert!(i % 10 == 0, "{i} failed");
            }
            other => panic!("request {i}: {other:?}"),
        }
    }
    assert_eq!((summary.succeeded, summary.failed), (N - N / 10, N / 10));
    assert_eq!(count_entries(&mut sock), N as u64);
}

#[test]
fn bulk_requests_that_cannot_be_built_fail_alone() {
    const N: usize = 500;
    let ns = Netns::new("io-bulkbuild");
    let mut sock = ns.socket();
    let (results, summary) = run_bulk(&mut sock, N, 32, |i, w, seq| {
        if i % 7 == 3 {
            Err(conntrack_codec::Error::InvalidValue("test"))
        } else {
            create(w, seq, i as u32)
        }
    });
    for (i, r) in results.iter().enumerate() {
        match r {
            Some(Ok(())) => assert!(i % 7 != 3),
            Some(Err(Error::Build(_))) => assert!(i % 7 == 3),
            other => panic!("request {i}: {other:?}"),
        }
    }
    assert_eq!(
        summary.failed,
        results.iter().filter(|r| matches!(r, Some(Err(_)))).count()
    );
    assert_eq!(count_entries(&mut sock), summary.succeeded as u64);

    // A send buffer too small for any request: each fails with BufferTooSmall.
    let mut tiny = Socket::builder()
        .send_buffer(64)
        .open_in_netns(ns.path())
        .expect("open");
    let (results, summary) = run_bulk(&mut tiny, 10, 4, |i, w, seq| {
        create(w, seq, 1000 + i as u32)
    });
    assert!(results.iter().all(|r| matches!(
        r,
        Some(Err(Error::Build(conntrack_codec::Error::BufferTooSmall)))
    )));
    assert_eq!((summary.failed, summary.datagrams), (10, 0));
}

#[test]
fn bulk_arguments_are_checked() {
    let ns = Netns::new("io-bulkargs");
    let mut sock = ns.socket();
    let r = sock.bulk(10, 0, |_, _, _| Ok(()), |_, _| panic!("no result expected"));
    assert!(matches!(r, Err(Error::Build(_))), "{r:?}");
    let r = sock.bulk(0, 8, |_, _, _| Ok(()), |_, _| panic!("no result expected"));
    assert_eq!(r.map(|s| s.datagrams), Ok(0));
}

#[test]
fn bulk_with_a_window_too_big_for_the_queue_reports_lost_answers() {
    const N: usize = 5000;
    let ns = Netns::new("io-bulklost");
    let mut sock = ns.socket();
    let rcvbuf = sock.rcvbuf().expect("rcvbuf");
    let (results, summary) = run_bulk(&mut sock, N, N, |i, w, seq| create(w, seq, i as u32));
    let lost = results
        .iter()
        .filter(|r| matches!(r, Some(Err(Error::Overrun))))
        .count();
    assert!(results
        .iter()
        .all(|r| matches!(r, Some(Ok(()) | Err(Error::Overrun)))));
    eprintln!(
        "window {N} on a {rcvbuf}-byte queue: {} answers arrived, {lost} lost, {} overruns",
        summary.succeeded,
        sock.overruns()
    );
    assert!(lost > 0, "{N} answers cannot fit {rcvbuf} bytes");
    assert!(sock.overruns() > 0);
    // Exactly the answers the kernel could not queue were reported lost.
    assert_eq!(sock.drops(), Ok(lost as u32));
    // A lost answer does not mean a failed request: the kernel made every entry.
    assert_eq!(count_entries(&mut sock), N as u64);
    // And the socket goes on working.
    let (results, _) = run_bulk(&mut sock, 100, 50, |i, w, seq| delete(w, seq, i as u32));
    assert!(all_ok(&results));
}

#[test]
fn forged_answers_during_a_bulk_are_ignored() {
    const N: usize = 640;
    let ns = Netns::new("io-bulkforge");
    let mut sock = ns.socket();
    let forger = ns.socket();
    let target = sock.portid();
    let (results, summary) = run_bulk(&mut sock, N, 64, |i, w, seq| {
        if i % 64 == 0 {
            // Forge a refusal for every request of the coming window.
            let mut buf = vec![0u8; 64 * 40];
            let mut f = Writer::new(&mut buf);
            for s in seq..seq + 64 {
                f.message(msgtype::ERROR, flags::CAPPED, s, target, |f| {
                    f.raw(&(-(Errno::EEXIST as i32)).to_ne_bytes())?;
                    let mut echoed = [0u8; NlMsgHeader::LEN];
                    NlMsgHeader {
                        len: 100,
                        kind: 0x100,
                        flags: 5,
                        seq: s,
                        pid: target,
                    }
                    .emit(&mut echoed)?;
                    f.raw(&echoed)
                })?;
            }
            forger.send_to(target, f.written()).expect("forge");
        }
        create(w, seq, i as u32)
    });
    assert!(all_ok(&results), "{summary:?}");
    assert_eq!(summary.foreign, N as u64);
    assert_eq!(sock.foreign_dropped(), N as u64);
    assert_eq!(count_entries(&mut sock), N as u64);
}

/// Not a check, a measurement: bulk creates against one round trip per create. Run with
/// `cargo test --release -p conntrack-tests --test io_bulk -- --nocapture rate`.
#[test]
fn rate_of_bulk_versus_one_round_trip_per_entry() {
    const N: u32 = 20_000;
    let ns = Netns::new("io-rate1");
    let mut sock = ns.socket();
    let start = Instant::now();
    for i in 0..N {
        sock.execute(|w, seq| create(w, seq, i)).expect("create");
    }
    let one_by_one = start.elapsed();
    drop(sock);
    drop(ns);

    let ns = Netns::new("io-rate2");
    let mut sock = ns.socket();
    let start = Instant::now();
    create_entries(&mut sock, N);
    let bulk64 = start.elapsed();
    drop(sock);
    drop(ns);

    let ns = Netns::new("io-rate3");
    let mut sock = ns.socket();
    sock.set_rcvbuf(8 << 20).expect("rcvbuf");
    let start = Instant::now();
    let (results, _) = run_bulk(&mut sock, N as usize, 4096, |i, w, seq| {
        create(w, seq, i as u32)
    });
    let bulk4096 = start.elapsed();
    assert!(all_ok(&results));

    let rate = |d: std::time::Duration| f64::from(N) / d.as_secs_f64();
    eprintln!(
        "create one-by-one {N} {:.3} {:.0}",
        one_by_one.as_secs_f64(),
        rate(one_by_one)
    );
    eprintln!(
        "create bulk-w64 {N} {:.3} {:.0}",
        bulk64.as_secs_f64(),
        rate(bulk64)
    );
    eprintln!(
        "create bulk-w4096 {N} {:.3} {:.0}",
        bulk4096.as_secs_f64(),
        rate(bulk4096)
    );
}
