//! Hardening: memory stays flat whatever arrives. A counting global allocator (as in
//! `io_alloc.rs`; its own test binary, since it sets the global allocator) shows that a get,
//! a dump and a bulk allocate nothing while forged datagrams of every kind — including one
//! larger than the receive buffer — are dropped around them, and that the buffers keep
//! their size.

mod hardening_support;
mod io_support;

use std::ops::ControlFlow;

use conntrack_io::Socket;
use conntrack_tests::alloc::{allocations, Counting};
use conntrack_tests::Netns;
use hardening_support::forgeries;
use io_support::{create, create_entries, dump_ipv4, get, index_of};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Every forgery for each of the next `rounds` sequence numbers of `sock`, built now (so
/// that sending them allocates nothing), keyed by sequence number.
fn prepared(sock: &Socket, first_seq: u32, rounds: u32) -> Vec<(u32, Vec<Vec<u8>>, u64)> {
    (first_seq..first_seq + rounds)
        .map(|seq| {
            let f = forgeries(sock.portid(), seq);
            let counted = f.iter().map(|f| f.counted).sum();
            (seq, f.into_iter().map(|f| f.bytes).collect(), counted)
        })
        .collect()
}

/// Sends the forgeries prepared for `seq`; returns how many the socket must count.
fn send(forger: &Socket, target: u32, plan: &[(u32, Vec<Vec<u8>>, u64)], seq: u32) -> u64 {
    let Some((_, datagrams, counted)) = plan.iter().find(|(s, _, _)| *s == seq) else {
        panic!("no forgeries prepared for seq {seq}");
    };
    for d in datagrams {
        forger.send_to(target, d).expect("forge");
    }
    *counted
}

#[test]
fn forged_traffic_allocates_nothing() {
    const N: u32 = 2000;
    let ns = Netns::new("hard-alloc");
    let mut sock = ns.socket();
    let forger = ns.socket();
    let target = sock.portid();
    sock.set_rcvbuf(4 << 20).expect("rcvbuf");
    create_entries(&mut sock, N);
    let (rx, tx) = (sock.recv_buffer_len(), sock.send_buffer_len());

    // The sequence numbers the next operations will use: find the next one with a request
    // that fails before sending (a builder error takes a number too).
    let first = {
        let mut seq = 0;
        let _ = sock.execute(|_, s| {
            seq = s;
            Err(conntrack_codec::Error::BufferTooSmall)
        });
        seq + 1
    };
    let plan = prepared(&sock, first, 40);
    let before = sock.foreign_dropped();

    let (expected, gets) = allocations(|| {
        let mut expected = 0;
        for i in 0..20u32 {
            let got = sock
                .request(
                    |w, seq| {
                        expected += send(&forger, target, &plan, seq);
                        get(w, seq, i)
                    },
                    index_of,
                )
                .expect("get");
            assert_eq!(got, i);
        }
        expected
    });
    assert_eq!(gets, 0, "20 gets among forgeries allocated {gets} times");

    let ((summary, more), dumps) = allocations(|| {
        let mut more = 0;
        let mut sum = 0u64;
        let summary = sock
            .dump(
                |w, seq| {
                    more += send(&forger, target, &plan, seq);
                    dump_ipv4(w, seq)
                },
                |entry| {
                    sum += u64::from(index_of(entry));
                    ControlFlow::Continue(())
                },
            )
            .expect("dump");
        assert_eq!(sum, u64::from(N) * u64::from(N - 1) / 2);
        (summary, more)
    });
    assert_eq!(summary.delivered, u64::from(N));
    assert_eq!(dumps, 0, "a dump among forgeries allocated {dumps} times");

    let ((bulk, most), bulks) = allocations(|| {
        let mut most = 0;
        let summary = sock
            .bulk(
                10,
                10,
                |i, w, seq| {
                    if i == 0 {
                        most += send(&forger, target, &plan, seq);
                    }
                    create(w, seq, N + i as u32)
                },
                |i, r| assert!(r.is_ok(), "{i}: {r:?}"),
            )
            .expect("bulk");
        (summary, most)
    });
    assert_eq!(bulk.succeeded, 10);
    assert_eq!(bulks, 0, "a bulk among forgeries allocated {bulks} times");

    assert_eq!(
        sock.foreign_dropped() - before,
        expected + more + most,
        "every forged message dropped and counted"
    );
    assert_eq!((sock.recv_buffer_len(), sock.send_buffer_len()), (rx, tx));
}
