//! Live tests of `Socket::dump`: completeness, early stop, forged parts, truncation, and a
//! dump the kernel refuses; the first four also with the dump reading ahead on a second
//! thread (`Socket::set_read_ahead`). Each test runs in its own network namespace.

mod io_support;

use std::ops::ControlFlow;

use conntrack_codec::nfnl::{ct_msg, msg_type, NfGenMsg, Subsystem};
use conntrack_codec::nl::{flags, msgtype, Writer};
use conntrack_io::{Errno, Error, Socket};
use conntrack_tests::Netns;
use io_support::{
    count_entries, create, create_entries, create_with, cta, dump_ipv4, index_of, AF_INET,
};

/// The entries `0..n` one dump delivered, in order.
fn dump_order(sock: &mut Socket, n: u32) -> Vec<u32> {
    let mut order = Vec::with_capacity(n as usize);
    let summary = sock
        .dump(dump_ipv4, |entry| {
            order.push(index_of(entry));
            ControlFlow::Continue(())
        })
        .expect("dump");
    assert_eq!(summary.delivered, u64::from(n));
    assert!(!summary.stopped);
    assert_eq!(summary.foreign, 0);
    assert_eq!(summary.consistent(), Ok(summary));
    order
}

#[test]
fn dump_delivers_every_entry_exactly_once() {
    const N: u32 = 3000;
    let ns = Netns::new("io-dump");
    let mut sock = ns.socket();
    assert_eq!(count_entries(&mut sock), 0);
    create_entries(&mut sock, N);
    let order = dump_order(&mut sock, N);
    let mut seen = vec![0u32; N as usize];
    for i in &order {
        seen[*i as usize] += 1;
    }
    assert!(seen.iter().all(|&n| n == 1));
    // Reading ahead on a second thread: the same entries in the same order, and the socket
    // stays usable.
    sock.set_read_ahead(true);
    assert_eq!(dump_order(&mut sock, N), order);
    assert_eq!(dump_order(&mut sock, N), order);
    sock.set_read_ahead(false);
    assert_eq!(count_entries(&mut sock), u64::from(N));
    // Cross-check with the conntrack tool.
    let out = ns.exec("conntrack", &["-C"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), N.to_string());
}

#[test]
fn early_stop_drains_the_dump_and_the_socket_stays_usable() {
    const N: u32 = 2000;
    let ns = Netns::new("io-break");
    let mut sock = ns.socket();
    create_entries(&mut sock, N);
    for (made, ahead) in [(N, false), (N + 1, true)] {
        sock.set_read_ahead(ahead);
        let mut taken = 0;
        let summary = sock
            .dump(dump_ipv4, |_| {
                taken += 1;
                if taken == 10 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .expect("dump");
        assert_eq!((taken, summary.delivered, summary.stopped), (10, 10, true));
        // The rest of the dump was read: the next request gets its own answer.
        sock.execute(|w, seq| create(w, seq, made))
            .expect("create after a stopped dump");
        assert_eq!(count_entries(&mut sock), u64::from(made) + 1);
        assert_eq!(sock.foreign_dropped(), 0, "read ahead: {ahead}");
    }
}

#[test]
fn forged_dump_parts_are_ignored_and_counted() {
    const N: u32 = 300;
    let ns = Netns::new("io-forgedump");
    let mut sock = ns.socket();
    let forger = ns.socket();
    create_entries(&mut sock, N);
    let target = sock.portid();
    for ahead in [false, true] {
        sock.set_read_ahead(ahead);
        let mut seen = vec![0u32; N as usize + 1];
        let summary = sock
            .dump(
                |w, seq| {
                    // A fake entry and a fake end, queued before the real answer.
                    let mut buf = [0u8; 512];
                    let mut f = Writer::new(&mut buf);
                    let kind = msg_type(Subsystem::Ctnetlink, ct_msg::NEW);
                    f.message(kind, flags::MULTI, seq, target, |f| {
                        NfGenMsg {
                            family: AF_INET,
                            version: 0,
                            res_id: 0,
                        }
                        .emit(f)
                    })?;
                    f.message(msgtype::DONE, flags::MULTI, seq, target, |f| f.raw(&[0; 4]))?;
                    forger.send_to(target, f.written()).expect("forge");
                    dump_ipv4(w, seq)
                },
                |entry| {
                    seen[index_of(entry) as usize] += 1;
                    ControlFlow::Continue(())
                },
            )
            .expect("dump");
        assert_eq!(summary.delivered, u64::from(N));
        assert_eq!(summary.foreign, 2, "read ahead: {ahead}");
        assert_eq!(sock.foreign_dropped(), if ahead { 4 } else { 2 });
        assert!(seen[..N as usize].iter().all(|&n| n == 1));
    }
}

#[test]
fn truncated_datagrams_are_reported() {
    const N: u32 = 200;
    let ns = Netns::new("io-trunc");
    let mut sock = Socket::builder()
        .recv_buffer(1024)
        .open_in_netns(ns.path())
        .expect("open");
    assert_eq!(sock.recv_buffer_len(), 1024);
    create_entries(&mut sock, N);
    for (made, ahead) in [(N, false), (N + 1, true)] {
        sock.set_read_ahead(ahead);
        let mut delivered = 0;
        let r = sock.dump(dump_ipv4, |_| {
            delivered += 1;
            ControlFlow::Continue(())
        });
        match r {
            Err(Error::Truncated { size, capacity }) => {
                assert!(size > capacity, "{size} <= {capacity}");
                assert_eq!(capacity, 1024);
            }
            other => panic!("expected truncation, got {other:?}"),
        }
        assert!(
            delivered < N,
            "a truncated dump cannot have delivered everything"
        );
        // The rest of the dump was drained: small answers still work on this socket.
        sock.set_read_ahead(false);
        sock.execute(|w, seq| create(w, seq, made)).expect("create");
        let r = sock.execute(|w, seq| create(w, seq, made));
        assert!(matches!(r, Err(Error::Kernel(k)) if k.errno == Errno::EEXIST));
    }
}

#[test]
fn a_dump_the_kernel_refuses_is_a_kernel_error() {
    let ns = Netns::new("io-dumperr");
    let mut sock = ns.socket();
    create_entries(&mut sock, 5);
    let mut delivered = 0;
    // CTA_FILTER with every flag set, unknown ones included: the dump cannot start (6.18
    // says EINVAL; the filter code alone would say EOPNOTSUPP).
    let r = sock.dump(
        |w, seq| {
            let kind = msg_type(Subsystem::Ctnetlink, ct_msg::GET);
            w.message(kind, 0, seq, 0, |w| {
                NfGenMsg {
                    family: AF_INET,
                    version: 0,
                    res_id: 0,
                }
                .emit(w)?;
                w.nest(cta::FILTER, |w| {
                    w.attr_u32_ne(cta::FILTER_ORIG_FLAGS, u32::MAX)
                })
            })?;
            Ok(())
        },
        |_| {
            delivered += 1;
            ControlFlow::Continue(())
        },
    );
    assert!(
        matches!(&r, Err(Error::Kernel(k)) if matches!(k.errno, Errno::EINVAL | Errno::EOPNOTSUPP)),
        "{r:?}"
    );
    assert_eq!(delivered, 0);
    assert_eq!(count_entries(&mut sock), 5);
}

#[test]
fn dump_of_an_empty_table() {
    let ns = Netns::new("io-empty");
    let mut sock = ns.socket();
    let summary = sock
        .dump(dump_ipv4, |_| ControlFlow::Continue(()))
        .expect("dump");
    assert_eq!(summary.delivered, 0);
    assert!(!summary.interrupted);
    // A create with a bad attribute does not disturb later dumps.
    let r = sock.execute(|w, seq| create_with(w, seq, 1, |w| w.attr_u16_be(cta::TIMEOUT, 1)));
    assert!(r.is_err());
    assert_eq!(count_entries(&mut sock), 0);
}
