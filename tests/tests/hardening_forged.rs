//! Hardening: nothing the socket did not ask for is trusted. While a get, a dump and a bulk
//! run, a second socket in the same namespace (which has CAP_NET_ADMIN, as a forger must:
//! see SECURITY.md) sends every kind of forgery to our port id: answers with a wrong
//! sequence number, answers with the right one from a user port id (even with `nlmsg_pid`
//! 0 in the header), an `nlmsg_len` past the datagram or below the header, garbage
//! attributes, a fake DONE, a fake error, a datagram larger than the receive buffer. Each
//! must be dropped and counted, and the kernel's real answers must still arrive. (An empty
//! datagram cannot be sent over netlink on Linux 6.18: a test says so.)
//!
//! And a process without CAP_NET_ADMIN cannot send to the socket at all, nor listen to
//! conntrack events, nor ask the kernel anything.

mod hardening_support;
mod io_support;

use std::ops::ControlFlow;

use conntrack_io::{Errno, Error};
use conntrack_tests::{Netns, NOBODY};
use hardening_support::{error, forge, one};
use io_support::{create, create_entries, delete, dump_ipv4, get, index_of};

#[test]
fn forged_answers_during_a_get_are_dropped_and_counted() {
    let ns = Netns::new("hard-get");
    let mut sock = ns.socket();
    let forger = ns.socket();
    // The forger runs in this thread, which is also the reader: a blocking send to a full
    // queue would never return. Non-blocking, a full queue fails the test at once instead.
    forger.set_nonblocking(true).expect("non-blocking forger");
    let target = sock.portid();
    for i in [1u32, 2, 3] {
        sock.execute(|w, seq| create(w, seq, i)).expect("create");
    }
    let mut expected = 0;
    for i in [1u32, 2, 3] {
        let got = sock
            .request(
                |w, seq| {
                    expected += forge(&forger, target, seq);
                    get(w, seq, i)
                },
                index_of,
            )
            .expect("the real reply and ACK");
        assert_eq!(got, i, "the kernel's entry, not the forged one");
        assert_eq!(sock.foreign_dropped(), expected);
    }
    // A real refusal is not turned into success by the forged ACKs, nor a success into a
    // refusal by the forged errors.
    let r = sock.execute(|w, seq| {
        expected += forge(&forger, target, seq);
        delete(w, seq, 77)
    });
    assert!(
        matches!(&r, Err(Error::Kernel(k)) if k.errno == Errno::ENOENT),
        "{r:?}"
    );
    sock.execute(|w, seq| {
        expected += forge(&forger, target, seq);
        delete(w, seq, 1)
    })
    .expect("the real ACK");
    assert_eq!(sock.foreign_dropped(), expected);
}

#[test]
fn forged_parts_during_a_dump_are_dropped_and_counted() {
    const N: u32 = 600;
    let ns = Netns::new("hard-dump");
    let mut sock = ns.socket();
    let forger = ns.socket();
    // The forger runs in this thread, which is also the reader: a blocking send to a full
    // queue would never return. Non-blocking, a full queue fails the test at once instead.
    forger.set_nonblocking(true).expect("non-blocking forger");
    let target = sock.portid();
    create_entries(&mut sock, N);
    let mut expected = 0;
    let mut seen = vec![0u32; N as usize];
    let mut dump_seq = 0;
    let summary = sock
        .dump(
            |w, seq| {
                dump_seq = seq;
                expected += forge(&forger, target, seq);
                dump_ipv4(w, seq)
            },
            |entry| {
                seen[index_of(entry) as usize] += 1;
                ControlFlow::Continue(())
            },
        )
        .expect("the real dump");
    assert_eq!(summary.delivered, u64::from(N));
    assert!(seen.iter().all(|&n| n == 1), "every entry exactly once");
    assert!(!summary.interrupted);
    assert_eq!(sock.foreign_dropped(), expected);
    // The summary counts them all too, the datagrams that do not parse included.
    assert_eq!(summary.foreign, expected);
    // Forgeries for the finished dump, queued before the next request, change nothing.
    expected += forge(&forger, target, dump_seq);
    let count = sock
        .dump(dump_ipv4, |_| ControlFlow::Continue(()))
        .expect("dump")
        .delivered;
    assert_eq!(count, u64::from(N));
    assert_eq!(sock.foreign_dropped(), expected);
}

#[test]
fn forged_answers_during_a_bulk_are_dropped_and_counted() {
    const N: usize = 400;
    const WINDOW: usize = 50;
    let ns = Netns::new("hard-bulk");
    let mut sock = ns.socket();
    let forger = ns.socket();
    // The forger runs in this thread, which is also the reader: a blocking send to a full
    // queue would never return. Non-blocking, a full queue fails the test at once instead.
    forger.set_nonblocking(true).expect("non-blocking forger");
    let target = sock.portid();
    // Room for a window of forgeries and answers: the forger writes while our thread is
    // inside `build`, so a full queue would block it (and the kernel's ACKs would be lost).
    sock.set_rcvbuf(4 << 20).expect("rcvbuf");
    let mut expected = 0;
    let mut results = vec![None; N];
    let summary = sock
        .bulk(
            N,
            WINDOW,
            |i, w, seq| {
                if i % WINDOW == 0 {
                    // Every forgery for the first request of the coming window; for the
                    // others, an ACK and a refusal with their sequence number (the kernel
                    // refuses some of them and accepts the rest).
                    expected += forge(&forger, target, seq);
                    for s in seq + 1..seq + WINDOW as u32 {
                        for errno in [0, Errno::EEXIST as i32] {
                            forger
                                .send_to(target, &one(|w| error(w, s, target, errno)))
                                .expect("forge");
                            expected += 1;
                        }
                    }
                }
                // Every tenth entry is a duplicate of the one before: EEXIST.
                let entry = if i % 10 == 9 { i - 1 } else { i };
                create(w, seq, entry as u32)
            },
            |i, r| results[i] = Some(r),
        )
        .expect("bulk");
    for (i, r) in results.iter().enumerate() {
        let r = r.as_ref().expect("every request has a result");
        if i % 10 == 9 {
            assert!(
                matches!(r, Err(Error::Kernel(k)) if k.errno == Errno::EEXIST),
                "{i}: {r:?}"
            );
        } else {
            assert!(r.is_ok(), "{i}: {r:?}");
        }
    }
    assert_eq!(summary.succeeded, N - N / 10);
    assert_eq!(summary.failed, N / 10);
    assert_eq!(sock.foreign_dropped(), expected);
    assert_eq!(summary.foreign, expected);
}

/// An empty datagram: Linux 6.18 refuses to send one over netlink (`ENODATA`), so it cannot
/// be forged there; on a kernel that sends it, it must be dropped and counted like the others
/// (the io unit tests feed one through a Unix socket either way).
#[test]
fn an_empty_datagram_is_refused_by_the_kernel_or_counted() {
    let ns = Netns::new("hard-empty");
    let mut sock = ns.socket();
    let forger = ns.socket();
    match forger.send_to(sock.portid(), &[]) {
        Err(Error::Sys {
            errno: Errno::ENODATA,
            ..
        }) => println!("this kernel refuses to send an empty netlink datagram (ENODATA)"),
        Ok(()) => {
            sock.execute(|w, seq| create(w, seq, 1)).expect("create");
            assert_eq!(sock.foreign_dropped(), 1, "the empty datagram is counted");
            println!("this kernel sends empty netlink datagrams: counted");
        }
        other => panic!("sending an empty datagram: {other:?}"),
    }
}

/// Runs a Python snippet in the namespace as user `nobody`, without any capability.
fn unprivileged_python(ns: &Netns, code: &str) -> String {
    // Debian's python3, which user nobody can run (one found on root's PATH may not).
    let out = ns.exec(
        "setpriv",
        &[&NOBODY[..], &["/usr/bin/python3", "-c", code]].concat(),
    );
    assert!(
        out.status.success(),
        "python as nobody: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn an_unprivileged_process_can_neither_send_to_the_socket_nor_listen_nor_ask() {
    let ns = Netns::new("hard-unpriv");
    let mut sock = ns.socket();
    let target = sock.portid();
    let ack = one(|w| error(w, 1, target, 0));
    let hex: String = ack.iter().map(|b| format!("{b:02x}")).collect();
    let code = format!(
        r#"
import socket
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
s.bind((0, 0))
def attempt(f):
    try:
        f()
        return "ok"
    except PermissionError:
        return "EPERM"
    except OSError as e:
        return "errno%d" % e.errno
send = attempt(lambda: s.sendto(bytes.fromhex("{hex}"), ({target}, 0)))
join = attempt(lambda: s.setsockopt(270, 1, 1))
# A conntrack dump request to the kernel (CT_GET | DUMP, AF_INET): it answers EPERM.
req = bytes.fromhex("14000000" "0101" "0103" "01000000" "00000000" "02000000")
s.sendto(req, (0, 0))
reply = s.recv(65536)
code = int.from_bytes(reply[16:20], "little", signed=True)
print(send, join, code)
"#
    );
    let out = unprivileged_python(&ns, &code);
    let eperm = Errno::EPERM as i32;
    assert_eq!(out, format!("EPERM EPERM -{eperm}"));
    // Nothing reached our socket: the next request sees no foreign message.
    sock.execute(|w, seq| create(w, seq, 1)).expect("create");
    assert_eq!(sock.foreign_dropped(), 0);
}
