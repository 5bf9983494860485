//! Live tests of single requests: `Socket::execute` and `Socket::request`, success and
//! error paths, and forged answers. Each test runs in its own network namespace.

mod io_support;

use conntrack_codec::nl::{flags, msgtype, NlMsgHeader, Writer};
use conntrack_io::{Errno, Error, KernelError, Socket};
use conntrack_tests::Netns;
use io_support::{create, create_with, cta, delete, get, index_of, orig_src, src_of};

/// The kernel error of a failed request, or a panic.
fn kernel_error(r: Result<(), Error>) -> KernelError {
    match r {
        Err(Error::Kernel(k)) => k,
        other => panic!("expected a kernel error, got {other:?}"),
    }
}

#[test]
fn create_is_acknowledged_and_a_second_create_is_eexist() {
    let ns = Netns::new("io-eexist");
    let mut sock = ns.socket();
    sock.execute(|w, seq| create(w, seq, 1)).expect("create");
    let k = kernel_error(sock.execute(|w, seq| create(w, seq, 1)));
    assert_eq!(k.errno, Errno::EEXIST);
    assert_eq!(
        Error::Kernel(k)
            .to_string()
            .split(':')
            .take(2)
            .collect::<Vec<_>>(),
        ["kernel", " File exists (EEXIST)"]
    );
    // The socket goes on working after an error.
    sock.execute(|w, seq| create(w, seq, 2)).expect("create");
    assert_eq!(sock.foreign_dropped(), 0);
    let out = ns.run("conntrack", &["-L"]);
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[test]
fn delete_of_a_missing_entry_is_enoent() {
    let ns = Netns::new("io-enoent");
    let mut sock = ns.socket();
    let k = kernel_error(sock.execute(|w, seq| delete(w, seq, 7)));
    assert_eq!(k.errno, Errno::ENOENT);
    sock.execute(|w, seq| create(w, seq, 7)).expect("create");
    sock.execute(|w, seq| delete(w, seq, 7)).expect("delete");
    let k = kernel_error(sock.execute(|w, seq| delete(w, seq, 7)));
    assert_eq!(k.errno, Errno::ENOENT);
}

#[test]
fn policy_violation_comes_with_extended_ack() {
    let ns = Netns::new("io-erange");
    let mut sock = ns.socket();
    let mut timeout_offset = 0;
    let k = kernel_error(sock.execute(|w, seq| {
        create_with(w, seq, 1, |w| {
            timeout_offset = w.len();
            // CTA_TIMEOUT is a u32: two bytes fail the policy.
            w.attr_u16_be(cta::TIMEOUT, 120)
        })
    }));
    assert_eq!(k.errno, Errno::ERANGE);
    assert_eq!(
        k.message.as_deref(),
        Some("Attribute failed policy validation")
    );
    assert_eq!(k.offset, Some(timeout_offset as u32));
    let text = Error::Kernel(k).to_string();
    let expected = format!(
        "kernel: {} (ERANGE): Attribute failed policy validation",
        Errno::ERANGE.desc()
    );
    assert!(text.starts_with(&expected), "{text}");
    assert!(text.contains(&format!("offset {timeout_offset}")), "{text}");
}

#[test]
fn rejected_attribute_is_einval_with_extended_ack() {
    let ns = Netns::new("io-einval");
    let mut sock = ns.socket();
    let mut offset = 0;
    let r = sock.execute(|w, seq| {
        create_with(w, seq, 1, |w| {
            w.attr_u32_be(cta::TIMEOUT, 300)?;
            offset = w.len();
            // CTA_TIMESTAMP_EVENT is for events only: its policy rejects it in requests.
            w.attr_u64_be(cta::TIMESTAMP_EVENT, 1)
        })
    });
    if r.is_ok() {
        eprintln!("skipped: this kernel predates CTA_TIMESTAMP_EVENT (Linux 6.14) and ignores it");
        return;
    }
    let k = kernel_error(r);
    assert_eq!(k.errno, Errno::EINVAL);
    assert_eq!(
        k.message.as_deref(),
        Some("Attribute failed policy validation")
    );
    assert_eq!(k.offset, Some(offset as u32));
}

#[test]
fn extended_ack_can_be_switched_off() {
    let ns = Netns::new("io-noextack");
    let mut sock = Socket::builder()
        .ext_ack(false)
        .open_in_netns(ns.path())
        .expect("open");
    assert!(!sock.ext_ack().unwrap());
    let k = kernel_error(
        sock.execute(|w, seq| create_with(w, seq, 1, |w| w.attr_u16_be(cta::TIMEOUT, 1))),
    );
    assert_eq!(k.errno, Errno::ERANGE);
    assert_eq!((k.message, k.offset), (None, None));
}

#[test]
fn get_hands_over_the_reply() {
    let ns = Netns::new("io-get");
    let mut sock = ns.socket();
    for i in [3, 4] {
        sock.execute(|w, seq| create(w, seq, i)).expect("create");
    }
    let (src, index, seq_matches) = sock
        .request(
            |w, seq| get(w, seq, 4),
            |reply| (orig_src(reply), index_of(reply), reply.msg().seq() != 0),
        )
        .expect("get");
    assert_eq!((src, index, seq_matches), (src_of(4), 4, true));

    let r = sock.request(|w, seq| get(w, seq, 5), |_| ());
    assert!(
        matches!(&r, Err(Error::Kernel(k)) if k.errno == Errno::ENOENT),
        "{r:?}"
    );
    // A request the kernel only acknowledges has no reply to hand over.
    let r = sock.request(|w, seq| create(w, seq, 5), |_| ());
    assert!(matches!(r, Err(Error::Codec { .. })), "{r:?}");
}

#[test]
fn badly_built_requests_are_refused_before_sending() {
    let ns = Netns::new("io-build");
    let mut sock = ns.socket();
    let two = sock.execute(|w, seq| {
        create(w, seq, 1)?;
        create(w, seq, 2)
    });
    assert!(matches!(two, Err(Error::Build(_))), "{two:?}");
    let wrong_seq = sock.execute(|w, seq| create(w, seq.wrapping_add(1), 1));
    assert!(matches!(wrong_seq, Err(Error::Build(_))), "{wrong_seq:?}");
    let nothing = sock.execute(|_, _| Ok(()));
    assert!(matches!(nothing, Err(Error::Build(_))), "{nothing:?}");
    let big = vec![0u8; 40_000];
    let too_big = sock.execute(|w, seq| {
        create_with(w, seq, 1, |w| {
            w.attr(40, &big)?;
            w.attr(40, &big)
        })
    });
    assert_eq!(
        too_big,
        Err(Error::Build(conntrack_codec::Error::BufferTooSmall))
    );
    // Nothing was sent: the entry does not exist, and the socket works.
    sock.execute(|w, seq| create(w, seq, 1)).expect("create");
}

/// An `NLMSG_ERROR` as the kernel would send it to `portid` for request `seq`.
fn forged_error(buf: &mut [u8], seq: u32, portid: u32, errno: i32) -> usize {
    let mut w = Writer::new(buf);
    w.message(msgtype::ERROR, flags::CAPPED, seq, portid, |w| {
        w.raw(&(-errno).to_ne_bytes())?;
        let mut echoed = [0u8; NlMsgHeader::LEN];
        NlMsgHeader {
            len: 100,
            kind: 0x0100,
            flags: flags::REQUEST | flags::ACK,
            seq,
            pid: portid,
        }
        .emit(&mut echoed)?;
        w.raw(&echoed)
    })
    .unwrap();
    w.len()
}

#[test]
fn forged_answers_are_ignored_and_counted() {
    let ns = Netns::new("io-forged");
    let mut sock = ns.socket();
    let forger = ns.socket();
    let target = sock.portid();
    let mut buf = [0u8; 128];

    // While the request is being built, another socket queues a perfect-looking refusal
    // and a perfect-looking ACK for it: right sequence number, our port id in nlmsg_pid.
    sock.execute(|w, seq| {
        let n = forged_error(&mut buf, seq, target, libc_eexist());
        forger.send_to(target, &buf[..n]).expect("forge error");
        create(w, seq, 1)
    })
    .expect("the real ACK, not the forged EEXIST");
    assert_eq!(sock.foreign_dropped(), 1);

    // A forged ACK must not turn a real refusal into a success.
    let r = sock.execute(|w, seq| {
        let n = forged_error(&mut buf, seq, target, 0);
        forger.send_to(target, &buf[..n]).expect("forge ack");
        create(w, seq, 1)
    });
    assert!(
        matches!(&r, Err(Error::Kernel(k)) if k.errno == Errno::EEXIST),
        "{r:?}"
    );
    assert_eq!(sock.foreign_dropped(), 2);

    // Stale answers for sequence numbers nobody waits for are dropped too.
    let n = forged_error(&mut buf, 12345, target, 0);
    forger.send_to(target, &buf[..n]).expect("forge");
    forger.send_to(target, &[1, 2, 3]).expect("forge garbage");
    sock.execute(|w, seq| create(w, seq, 2)).expect("create");
    assert_eq!(sock.foreign_dropped(), 4);
}

fn libc_eexist() -> i32 {
    Errno::EEXIST as i32
}
