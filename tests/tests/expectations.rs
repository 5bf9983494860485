//! Expectations against the real kernel: made by the kernel's FTP helper from a small
//! FTP-like exchange on `lo`, and by request with class, NAT and function; listed, compared
//! with `conntrack -L expect`, deleted, flushed; their events on a subscribed socket.
//!
//! Each test runs in its own throwaway network namespace; the traffic never leaves `lo`.

use std::net::{IpAddr, Ipv4Addr};
use std::ops::ControlFlow;

use conntrack_codec::ct::request::Key;
use conntrack_codec::ct::{ConntrackRepr, EventKind, Helper, Tuple};
use conntrack_codec::exp::request::ExpKey;
use conntrack_codec::exp::{Expect, ExpectFlags, ExpectNat, ExpectRepr};
use conntrack_codec::fmt::{ExpLine, Output};
use conntrack_codec::nfnl::groups;
use conntrack_codec::nl::Messages;
use conntrack_io::{Errno, Error, Socket};
use conntrack_tests::{kernel_errno, Netns};

const RULES: &str = r#"
table inet t {
    ct helper ftp-std {
        type "ftp" protocol tcp
    }
    chain out {
        type filter hook output priority 0; policy accept;
        tcp dport 21 ct helper set "ftp-std"
        ct state new accept
    }
}
"#;

/// A control connection to 127.0.0.1:21 whose server answers PASV with port 195*256+80.
const FTP: &str = r#"
import socket, threading
ftp = socket.socket(); ftp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ftp.bind(("127.0.0.1", 21)); ftp.listen(1)
def serve():
    c, _ = ftp.accept(); c.sendall(b"220 ready\r\n"); c.recv(100)
    c.sendall(b"227 Entering Passive Mode (127,0,0,1,195,80)\r\n"); c.recv(100); c.close()
t = threading.Thread(target=serve); t.start()
f = socket.create_connection(("127.0.0.1", 21)); f.recv(100); f.sendall(b"PASV\r\n")
f.recv(100); f.sendall(b"QUIT\r\n"); t.join(); f.close()
"#;

fn with_rules(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.nft(RULES);
    ns
}

fn expectations(sock: &mut Socket, family: u8) -> Vec<ExpectRepr> {
    let mut out = Vec::new();
    let _ = sock
        .exp_list(family, |v| {
            out.push(ExpectRepr::try_from(&v).unwrap());
            ControlFlow::Continue(())
        })
        .unwrap();
    out
}

#[test]
fn ftp_helper_expectation_listed_like_conntrack_then_deleted_and_flushed() {
    let ns = with_rules("expftp");
    ns.run("python3", &["-c", FTP]);
    let mut sock = ns.socket();
    let found = expectations(&mut sock, 0);
    assert_eq!(
        found.len(),
        1,
        "the ftp helper made no expectation: {found:?}"
    );
    let e = &found[0];
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let tuple = e.tuple.unwrap();
    assert_eq!(
        (tuple.dst, tuple.dst_port),
        (Some(lo), Some(195 * 256 + 80))
    );
    assert_eq!(e.master.unwrap().dst_port, Some(21));
    assert_eq!(e.helper.as_deref(), Some("ftp"));

    // The same line as conntrack -L expect (the countdown masked).
    let out = Output::default();
    let ours = ExpLine::new(e, None, &out).to_string();
    let theirs = ns.run("conntrack", &["-L", "expect"]);
    let mask = |l: &str| l.split_once(' ').map(|(_, rest)| rest.to_string()).unwrap();
    assert_eq!(theirs.lines().map(mask).collect::<Vec<_>>(), [mask(&ours)]);

    // Get it, delete it by tuple (a wrong id is refused first), and it is gone.
    let key = ExpKey::tuple(tuple);
    let got = sock.exp_get(&key).unwrap();
    assert_eq!(got.id, e.id);
    let id = e.id.unwrap();
    assert_eq!(
        kernel_errno(sock.exp_delete(&key.with_id(id.wrapping_add(1)))),
        Errno::ENOENT
    );
    sock.exp_delete(&key.with_id(id)).unwrap();
    assert_eq!(kernel_errno(sock.exp_get(&key)), Errno::ENOENT);
    assert_eq!(kernel_errno(sock.exp_delete(&key)), Errno::ENOENT);
    assert!(ns.run("conntrack", &["-L", "expect"]).is_empty());

    // Another exchange, then a flush of all expectations.
    ns.run("python3", &["-c", FTP]);
    assert_eq!(expectations(&mut sock, 2).len(), 1);
    sock.exp_flush(0).unwrap();
    assert!(expectations(&mut sock, 0).is_empty());
}

/// A master entry with the ftp helper, made by request.
fn master(sock: &mut Socket, sport: u16) -> Tuple {
    let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let b = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 21));
    let t = Tuple::tcp(a, b, sport, 21);
    sock.create(&ConntrackRepr {
        helper: Some(Helper::named("ftp").unwrap()),
        ..ConntrackRepr::replied(t, 300)
    })
    .unwrap();
    t
}

fn expected(master: Tuple, dport: u16) -> ExpectRepr {
    let ones = IpAddr::V4(Ipv4Addr::BROADCAST);
    ExpectRepr {
        family: 2,
        master: Some(master),
        tuple: Some(Tuple::tcp(
            master.src.unwrap(),
            master.dst.unwrap(),
            0,
            dport,
        )),
        mask: Some(Tuple::tcp(ones, ones, 0, 0xffff)),
        timeout: Some(300),
        ..ExpectRepr::default()
    }
}

#[test]
fn expectations_created_by_request_with_class_nat_function_and_flags() {
    let ns = Netns::new("expreq");
    let mut sock = ns.socket();
    // A master without a helper cannot have expectations.
    let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let bare = Tuple::tcp(a, a, 1, 2);
    sock.create(&ConntrackRepr {
        orig: Some(bare),
        reply: Some(bare.inverted()),
        timeout: Some(100),
        ..ConntrackRepr::default()
    })
    .unwrap();
    assert_eq!(
        kernel_errno(sock.exp_create(&expected(bare, 5000))),
        Errno::EOPNOTSUPP
    );

    // The ftp helper keeps one expectation per master: each variant gets its own master.
    let plain = expected(master(&mut sock, 40001), 50001);
    let with_class = ExpectRepr {
        class: Some(0),
        helper: Some("ftp".try_into().unwrap()),
        ..expected(master(&mut sock, 40002), 50002)
    };
    let with_flags = ExpectRepr {
        flags: Some(ExpectFlags(
            ExpectFlags::PERMANENT.0 | ExpectFlags::INACTIVE.0,
        )),
        ..expected(master(&mut sock, 40003), 50003)
    };
    let with_fn = ExpectRepr {
        func: Some("nat-follow-master".try_into().unwrap()),
        ..expected(master(&mut sock, 40004), 50004)
    };
    let nat_src = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
    let with_nat = ExpectRepr {
        nat: Some(ExpectNat {
            dir: Some(1),
            tuple: Some(Tuple::tcp(nat_src, a, 0, 60000)),
        }),
        ..expected(master(&mut sock, 40005), 50005)
    };
    for e in [&plain, &with_class, &with_flags, &with_fn, &with_nat] {
        sock.exp_create(e)
            .unwrap_or_else(|err| panic!("{:?}: {err}", e.tuple));
    }
    assert_eq!(kernel_errno(sock.exp_create(&plain)), Errno::EEXIST);
    // Class 1 does not exist for ftp.
    let bad_class = ExpectRepr {
        class: Some(1),
        ..expected(master(&mut sock, 40006), 50006)
    };
    assert_eq!(kernel_errno(sock.exp_create(&bad_class)), Errno::EINVAL);

    let get =
        |sock: &mut Socket, e: &ExpectRepr| sock.exp_get(&ExpKey::tuple(e.tuple.unwrap())).unwrap();
    let g = get(&mut sock, &plain);
    assert_eq!(
        (g.master, g.mask, g.helper.as_deref()),
        (plain.master, plain.mask, Some("ftp"))
    );
    assert!(g.timeout.unwrap() > 290);
    assert_eq!(get(&mut sock, &with_class).class, Some(0));
    assert_eq!(get(&mut sock, &with_flags).flags, with_flags.flags);
    assert_eq!(
        get(&mut sock, &with_fn).func.as_deref(),
        Some("nat-follow-master")
    );
    let nat = get(&mut sock, &with_nat).nat.unwrap();
    assert_eq!(nat.dir, Some(1));
    // The kernel keeps only the NAT tuple's source address.
    assert_eq!(nat.tuple.unwrap().src, Some(nat_src));

    // Five listed, as the tool sees them too.
    assert_eq!(expectations(&mut sock, 2).len(), 5);
    assert_eq!(ns.run("conntrack", &["-C", "expect"]).trim(), "5");
    // Deleting every expectation of the helper.
    sock.exp_delete_helper("ftp").unwrap();
    assert!(expectations(&mut sock, 0).is_empty());
    // The expectation statistics answer with one line per CPU.
    let stats = sock.exp_stats_per_cpu().unwrap();
    assert!(!stats.is_empty());
    assert!(stats.iter().map(|s| s.create.unwrap_or(0)).sum::<u32>() >= 5);
    // Deleting the master takes nothing else with it.
    sock.delete(&Key::orig(bare)).unwrap();
}

#[test]
fn expectation_events_arrive_on_a_subscribed_socket() {
    let ns = Netns::new("expev");
    let listener = ns.socket();
    for g in [groups::EXP_NEW, groups::EXP_DESTROY] {
        listener.join_group(g).unwrap();
    }
    let mut sock = ns.socket();
    let e = expected(master(&mut sock, 41000), 51000);
    sock.exp_create(&e).unwrap();
    sock.exp_delete(&ExpKey::tuple(e.tuple.unwrap())).unwrap();

    let mut kinds = Vec::new();
    let mut buf = vec![0u8; 65536];
    listener.set_nonblocking(true).unwrap();
    while kinds.len() < 2 {
        let d = match listener.recv(&mut buf) {
            Ok(d) => d,
            Err(Error::WouldBlock) => break,
            Err(err) => panic!("{err}"),
        };
        assert_eq!(d.sender, 0);
        for m in Messages::new(&buf[..d.len]) {
            let v = Expect::parse(m.unwrap()).unwrap();
            assert_eq!(v.tuple().unwrap(), e.tuple);
            // Events of requests carry the requester's port id.
            assert_eq!(v.nf().msg().pid(), sock.portid());
            kinds.push(v.event_kind().unwrap());
        }
    }
    assert_eq!(kinds, [EventKind::New, EventKind::Destroy]);
}
