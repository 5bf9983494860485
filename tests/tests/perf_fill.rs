//! The fast bulk path of the fill benchmark, [`Acks::PerDatagram`]: only the last request of
//! each datagram is acknowledged, the others are known to have succeeded when no failure and
//! no loss came back. These tests check that every request still gets exactly its own
//! outcome. No timing is asserted.

use conntrack_codec::ct::{request, ConntrackRepr};
use conntrack_codec::filter::DumpFilter;
use conntrack_io::{Acks, BulkSummary, Errno, Error, Socket};
use conntrack_tests::{bench_entry, Netns};

/// Entry `i` of the benchmark table, without a mark.
fn entry(i: u32) -> ConntrackRepr {
    ConntrackRepr {
        mark: None,
        ..bench_entry(i)
    }
}

/// Creates entry `id(i)` for each `i < n`; returns each request's result and the summary.
fn create(
    sock: &mut Socket,
    n: usize,
    window: usize,
    id: impl Fn(usize) -> u32,
) -> (Vec<Option<Result<(), Error>>>, BulkSummary) {
    let mut results = vec![None; n];
    let summary = sock
        .bulk_with_acks(
            n,
            window,
            Acks::PerDatagram,
            |i, w, seq| request::create(w, seq, &entry(id(i))).map(drop),
            |i, r| {
                assert!(results[i].is_none(), "request {i} got two results");
                results[i] = Some(r);
            },
        )
        .expect("bulk");
    (results, summary)
}

fn count(sock: &mut Socket) -> usize {
    let mut n = 0;
    let _ = sock
        .list(&DumpFilter::default(), |_| {
            n += 1;
            std::ops::ControlFlow::Continue(())
        })
        .expect("dump");
    n
}

#[test]
fn every_request_gets_its_own_outcome() {
    const N: usize = 10_000;
    let ns = Netns::new("perf-fill");
    let mut sock = ns.socket();
    let (results, summary) = create(&mut sock, N, 1024, |i| i as u32);
    assert!(results.iter().all(|r| matches!(r, Some(Ok(())))));
    assert_eq!((summary.succeeded, summary.failed), (N, 0));
    assert!(summary.datagrams > 1, "{summary:?}");
    assert_eq!(count(&mut sock), N);
    // Now every third request creates an entry that exists: those fail with EEXIST, wherever
    // they fall in their datagram (the last one of a datagram included), and only those.
    let (results, summary) = create(&mut sock, 3 * N, 2048, |i| {
        if i % 3 == 0 {
            (i / 3) as u32
        } else {
            (N + i) as u32
        }
    });
    for (i, r) in results.iter().enumerate() {
        match r {
            Some(Ok(())) => assert!(i % 3 != 0, "duplicate {i} succeeded"),
            Some(Err(Error::Kernel(k))) => {
                assert_eq!(k.errno, Errno::EEXIST);
                assert!(i % 3 == 0, "{i} failed");
            }
            other => panic!("request {i}: {other:?}"),
        }
    }
    assert_eq!((summary.succeeded, summary.failed), (2 * N, N));
    assert_eq!(count(&mut sock), 3 * N);
}

#[test]
fn lost_failures_make_the_unanswered_requests_unknown() {
    const N: usize = 4000;
    let ns = Netns::new("perf-fill-lost");
    let mut sock = ns.socket();
    let (results, _) = create(&mut sock, N, N, |i| i as u32);
    assert!(results.iter().all(|r| matches!(r, Some(Ok(())))));
    // Again: every request fails, and a small queue cannot hold all the failures.
    sock.set_rcvbuf(16 * 1024).expect("rcvbuf");
    let (results, summary) = create(&mut sock, N, N, |i| i as u32);
    let lost = results
        .iter()
        .filter(|r| matches!(r, Some(Err(Error::Overrun | Error::NoAnswer))))
        .count();
    eprintln!("{summary:?}, {lost} unknown");
    assert!(lost > 0, "{N} failures cannot fit a 16 KiB queue");
    // None is reported as a success: those with no answer are unknown, not created.
    assert!(results.iter().all(|r| matches!(r, Some(Err(_)))));
    assert_eq!(summary.succeeded, 0);
    assert_eq!(count(&mut sock), N);
}
