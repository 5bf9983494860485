//! Live tests of the socket itself: modes, options, multicast groups, socket filters, raw
//! datagrams. Each test runs in its own network namespace.

mod io_support;

use conntrack_codec::nfnl::groups;
use conntrack_codec::nl::Messages;
use conntrack_io::{Errno, Error, SockFilter, Socket};
use conntrack_tests::Netns;
use io_support::{create, create_entries, index_of};

/// `BPF_RET | BPF_K`: return the constant `k` (the number of bytes to keep; 0 drops).
fn ret(k: u32) -> SockFilter {
    SockFilter {
        code: 0x06,
        jt: 0,
        jf: 0,
        k,
    }
}

#[test]
fn port_id_is_automatic_and_distinct() {
    let ns = Netns::new("io-portid");
    let a = ns.socket();
    let b = ns.socket();
    assert_ne!(a.portid(), 0);
    assert_ne!(a.portid(), b.portid());
    use std::os::fd::{AsFd, AsRawFd};
    assert_eq!(a.as_fd().as_raw_fd(), a.as_raw_fd());
}

#[test]
fn opening_in_a_missing_namespace_fails_with_its_errno() {
    let r = Socket::open_in_netns("/var/run/netns/no-such-namespace-for-conntrack-io");
    assert!(
        matches!(
            r,
            Err(Error::Sys {
                call: "open",
                errno: Errno::ENOENT
            })
        ),
        "{r:?}"
    );
}

#[test]
fn non_blocking_receive_says_would_block() {
    let ns = Netns::new("io-nonblock");
    let mut sock = ns.socket();
    sock.set_nonblocking(true).expect("O_NONBLOCK");
    let mut buf = [0u8; 256];
    let r = sock.recv(&mut buf);
    assert_eq!(r, Err(Error::WouldBlock));
    let e = std::io::Error::from(r.unwrap_err());
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    // Request operations work in non-blocking mode too.
    sock.execute(|w, seq| create(w, seq, 1)).expect("create");
    // Back to blocking: a queued datagram is received, with its sender.
    sock.set_nonblocking(false).expect("blocking");
    let other = ns.socket();
    other
        .send_to(sock.portid(), b"0123456789abcdef")
        .expect("send");
    let d = sock.recv(&mut buf).expect("recv");
    assert_eq!((d.len, d.size, d.truncated), (16, 16, false));
    assert_eq!((d.sender, d.groups), (other.portid(), 0));
    // A datagram larger than the buffer is reported truncated, with its real size.
    other.send_to(sock.portid(), &[0u8; 100]).expect("send");
    let d = sock.recv(&mut buf[..40]).expect("recv");
    assert_eq!((d.len, d.size, d.truncated), (40, 100, true));
}

#[test]
fn receive_queue_size_reads_back() {
    let ns = Netns::new("io-rcvbuf");
    let sock = ns.socket();
    let before = sock.rcvbuf().expect("rcvbuf");
    assert!(before > 0);
    // The kernel doubles what it is given.
    assert_eq!(sock.set_rcvbuf(512 * 1024).expect("set"), 1024 * 1024);
    assert_eq!(sock.rcvbuf().expect("get"), 1024 * 1024);
    // Beyond net.core.rmem_max: only SO_RCVBUFFORCE (we run as root) gets there.
    let max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .expect("rmem_max")
        .trim()
        .parse()
        .expect("number");
    assert_eq!(sock.set_rcvbuf(max * 2).expect("set"), max * 4);
}

#[test]
fn netlink_options_read_back() {
    let ns = Netns::new("io-opts");
    let sock = ns.socket();
    // The defaults of the builder.
    assert!(sock.ext_ack().unwrap());
    assert!(!sock.cap_ack().unwrap());
    assert!(!sock.no_enobufs().unwrap());
    assert!(!sock.broadcast_error().unwrap());
    for on in [true, false] {
        sock.set_ext_ack(on).unwrap();
        sock.set_cap_ack(on).unwrap();
        sock.set_no_enobufs(on).unwrap();
        sock.set_broadcast_error(on).unwrap();
        assert_eq!(sock.ext_ack().unwrap(), on);
        assert_eq!(sock.cap_ack().unwrap(), on);
        assert_eq!(sock.no_enobufs().unwrap(), on);
        assert_eq!(sock.broadcast_error().unwrap(), on);
    }
    let other = Socket::builder()
        .ext_ack(false)
        .cap_ack(true)
        .open_in_netns(ns.path())
        .unwrap();
    assert!(!other.ext_ack().unwrap());
    assert!(other.cap_ack().unwrap());
}

#[test]
fn bulk_turns_cap_ack_on_only_while_it_runs() {
    use std::os::fd::AsRawFd;
    let ns = Netns::new("io-capack");
    let mut sock = ns.socket();
    let fd = sock.as_raw_fd();
    let mut during = Vec::new();
    sock.bulk(
        3,
        2,
        |i, w, seq| create(w, seq, i as u32),
        |_, r| {
            r.expect("create");
            during.push(cap_ack_of(fd));
        },
    )
    .expect("bulk");
    assert_eq!(during, [true; 3]);
    assert!(!sock.cap_ack().unwrap());
    assert!(!cap_ack_of(fd));

    let mut capped = Socket::builder()
        .cap_ack(true)
        .open_in_netns(ns.path())
        .unwrap();
    capped
        .bulk(
            1,
            1,
            |_, w, seq| create(w, seq, 9),
            |_, r| r.expect("create"),
        )
        .expect("bulk");
    assert!(capped.cap_ack().unwrap());
}

extern "C" {
    fn getsockopt(
        fd: i32,
        level: i32,
        name: i32,
        value: *mut std::ffi::c_void,
        len: *mut u32,
    ) -> i32;
}

/// Reads `NETLINK_CAP_ACK` (`SOL_NETLINK` 270, option 10) of the socket `fd` directly, while
/// the `Socket` itself is borrowed by the running bulk.
fn cap_ack_of(fd: i32) -> bool {
    let mut value: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as u32;
    // SAFETY: the pointers are to a live local int and its length; `fd` is open (its socket
    // outlives every call).
    let rc = unsafe { getsockopt(fd, 270, 10, (&mut value as *mut i32).cast(), &mut len) };
    assert_eq!(rc, 0, "getsockopt(NETLINK_CAP_ACK)");
    value != 0
}

#[test]
fn multicast_groups_can_be_joined_and_left() {
    let ns = Netns::new("io-groups");
    let events = ns.socket();
    let mut sock = ns.socket();
    events.set_nonblocking(true).unwrap();
    events.join_group(groups::CONNTRACK_NEW).expect("join");
    sock.execute(|w, seq| create(w, seq, 1)).expect("create");
    // The kernel queues the event before the create's sendmsg returns.
    let mut buf = vec![0u8; 8192];
    let d = events.recv(&mut buf).expect("an event");
    assert_eq!(d.sender, 0);
    assert_eq!(d.groups, 1 << (groups::CONNTRACK_NEW - 1));
    let msg = Messages::new(&buf[..d.len]).next().unwrap().unwrap();
    let nf = conntrack_codec::nfnl::NfMsg::new_checked(msg).unwrap();
    assert_eq!(index_of(nf), 1);
    assert_eq!(events.recv(&mut buf), Err(Error::WouldBlock));

    events.leave_group(groups::CONNTRACK_NEW).expect("leave");
    sock.execute(|w, seq| create(w, seq, 2)).expect("create");
    assert_eq!(events.recv(&mut buf), Err(Error::WouldBlock));

    let r = events.join_group(99);
    assert!(matches!(r, Err(Error::Sys { .. })), "{r:?}");
}

#[test]
fn events_reaching_a_requesting_socket_are_dropped_and_counted() {
    let ns = Netns::new("io-stray");
    let mut sock = ns.socket();
    sock.join_group(groups::CONNTRACK_NEW).expect("join");
    // Our own create's NEW event (sequence number 0) arrives before its ACK.
    sock.execute(|w, seq| create(w, seq, 1)).expect("create");
    assert_eq!(sock.foreign_dropped(), 1);
}

#[test]
fn an_overrun_is_reported_by_the_raw_receive() {
    let ns = Netns::new("io-overrun");
    let events = ns.socket();
    events.set_rcvbuf(0).expect("smallest queue");
    events.set_nonblocking(true).unwrap();
    events.join_group(groups::CONNTRACK_NEW).expect("join");
    let mut sock = ns.socket();
    create_entries(&mut sock, 2000);
    let mut buf = vec![0u8; 8192];
    let mut received = 0u32;
    let mut overruns = 0;
    loop {
        match events.recv(&mut buf) {
            Ok(_) => received += 1,
            Err(Error::Overrun) => overruns += 1,
            Err(Error::WouldBlock) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(overruns > 0, "2000 events cannot fit the smallest queue");
    // The socket's drop counter knows exactly how many were lost.
    let drops = events.drops().expect("drops");
    assert_eq!(
        received + drops,
        2000,
        "{received} received, {drops} dropped"
    );
    assert_eq!(sock.drops(), Ok(0));
}

#[test]
fn socket_filters_attach_and_detach() {
    let ns = Netns::new("io-filter");
    let mut sock = ns.socket();
    sock.attach_filter(&[ret(u32::MAX)])
        .expect("accept-all filter");
    sock.execute(|w, seq| create(w, seq, 1)).expect("create");

    // A filter that drops everything drops the kernel's answers too: the request is not
    // waited for forever, it fails.
    sock.attach_filter(&[ret(0)]).expect("drop-all filter");
    let r = sock.execute(|w, seq| create(w, seq, 2));
    assert_eq!(r, Err(Error::NoAnswer));

    sock.detach_filter().expect("detach");
    let r = sock.execute(|w, seq| create(w, seq, 2));
    assert!(
        matches!(&r, Err(Error::Kernel(k)) if k.errno == Errno::EEXIST),
        "{r:?}"
    );

    let r = sock.detach_filter();
    assert!(
        matches!(
            r,
            Err(Error::Sys {
                errno: Errno::ENOENT,
                ..
            })
        ),
        "{r:?}"
    );
    let r = sock.attach_filter(&[]);
    assert!(
        matches!(
            r,
            Err(Error::Sys {
                errno: Errno::EINVAL,
                ..
            })
        ),
        "{r:?}"
    );
}
