//! Every typed conntrack operation of `conntrack-io` against the real kernel, each test in
//! its own throwaway network namespace, cross-checked with the `conntrack` tool where it
//! can see the same thing.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::ControlFlow;

use conntrack_codec::ct::request::Key;
use conntrack_codec::ct::{
    l4proto, ConntrackRepr, Labels, NatRange, ProtoInfo, SctpInfo, SctpState, Status, Tuple,
};
use conntrack_codec::filter::{filter_flags, DumpFilter};
use conntrack_codec::fmt::{CtLine, Origin};
use conntrack_io::{Errno, Error, Socket};
use conntrack_tests::{kernel_errno, Netns};

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last))
}

/// An entry with both tuples, a timeout, SEEN_REPLY|ASSURED and, for TCP, ESTABLISHED.
fn entry(orig: Tuple) -> ConntrackRepr {
    ConntrackRepr::replied(orig, 300)
}

fn list_all(sock: &mut Socket, filter: &DumpFilter) -> Vec<ConntrackRepr> {
    let mut out = Vec::new();
    let summary = sock
        .list(filter, |v| {
            out.push(ConntrackRepr::try_from(&v).unwrap());
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(summary.delivered as usize, out.len());
    out
}

/// The `conntrack -C` count of the namespace.
fn tool_count(ns: &Netns) -> usize {
    ns.run("conntrack", &["-C"]).trim().parse().unwrap()
}

#[test]
fn create_get_update_delete_with_every_error_path() {
    let ns = Netns::new("ops");
    let mut sock = ns.socket();
    let t = Tuple::tcp(v4(192, 0, 2, 1), v4(198, 51, 100, 1), 40000, 80);
    let e = ConntrackRepr {
        mark: Some(7),
        ..entry(t)
    };
    sock.create(&e).unwrap();
    assert_eq!(kernel_errno(sock.create(&e)), Errno::EEXIST);

    let got = sock.get(&Key::orig(t)).unwrap();
    assert_eq!(got.orig, Some(t));
    assert_eq!(got.mark, Some(7));
    assert!(got
        .status
        .unwrap()
        .contains(Status::CONFIRMED | Status::ASSURED));
    let id = got.id.unwrap();
    // The reply tuple finds it too.
    let by_reply = Key {
        reply: Some(t.inverted()),
        ..Key::default()
    };
    assert_eq!(sock.get(&by_reply).unwrap().id, Some(id));

    let mut upd = ConntrackRepr {
        orig: Some(t),
        mark: Some(9),
        timeout: Some(1000),
        ..ConntrackRepr::default()
    };
    sock.update(&upd).unwrap();
    let got = sock
        .get_with(&Key::orig(t), |v| (v.mark().unwrap(), v.timeout().unwrap()))
        .unwrap();
    assert_eq!(got.0, Some(9));
    assert!(got.1.unwrap() > 900);
    // Same as the tool sees it.
    let line = ns.run("conntrack", &["-L", "-p", "tcp", "--dport", "80"]);
    assert!(line.contains("mark=9"), "{line}");

    let missing = Tuple::tcp(v4(192, 0, 2, 9), v4(198, 51, 100, 1), 1, 80);
    upd.orig = Some(missing);
    assert_eq!(kernel_errno(sock.update(&upd)), Errno::ENOENT);
    assert_eq!(kernel_errno(sock.get(&Key::orig(missing))), Errno::ENOENT);
    assert_eq!(
        kernel_errno(sock.delete(&Key::orig(missing))),
        Errno::ENOENT
    );

    // create_or_update: creates, then updates.
    let t2 = Tuple::tcp(v4(192, 0, 2, 2), v4(198, 51, 100, 1), 40000, 80);
    sock.create_or_update(&entry(t2)).unwrap();
    sock.create_or_update(&ConntrackRepr {
        mark: Some(3),
        ..entry(t2)
    })
    .unwrap();
    assert_eq!(sock.get(&Key::orig(t2)).unwrap().mark, Some(3));

    // Delete by id: a wrong id is not found, the right one deletes.
    assert_eq!(
        kernel_errno(sock.delete(&Key::orig(t).with_id(id.wrapping_add(1)))),
        Errno::ENOENT
    );
    sock.delete(&Key::orig(t).with_id(id)).unwrap();
    assert_eq!(kernel_errno(sock.get(&Key::orig(t))), Errno::ENOENT);
    assert_eq!(sock.count().unwrap(), 1);
    assert_eq!(tool_count(&ns), 1);
    // A create without its timeout is refused before anything is sent.
    let mut no_timeout = entry(t);
    no_timeout.timeout = None;
    assert!(matches!(sock.create(&no_timeout), Err(Error::Build(_))));
}

#[test]
fn every_protocol_in_both_families() {
    let ns = Netns::new("protos");
    let mut sock = ns.socket();
    let mut made = Vec::new();
    for (src, dst) in [(v4(192, 0, 2, 1), v4(198, 51, 100, 1)), (v6(1), v6(2))] {
        made.push(entry(Tuple::tcp(src, dst, 1000, 443)));
        made.push(entry(Tuple::udp(src, dst, 1000, 53)));
        made.push(entry(Tuple::ports(l4proto::UDPLITE, src, dst, 1000, 5004)));
        made.push(ConntrackRepr {
            protoinfo: Some(ProtoInfo::Sctp(SctpInfo {
                state: Some(SctpState::Established),
                vtag_orig: Some(0x1122_3344),
                vtag_reply: Some(0x5566_7788),
            })),
            ..entry(Tuple::ports(l4proto::SCTP, src, dst, 5000, 36412))
        });
        made.push(entry(Tuple::gre(src, dst, 0x1000, 0x2000)));
        made.push(entry(Tuple::generic(99, src, dst)));
        made.push(match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => entry(Tuple::icmp(s, d, 8, 0, 77)),
            (IpAddr::V6(s), IpAddr::V6(d)) => entry(Tuple::icmpv6(s, d, 128, 0, 77)),
            _ => unreachable!(),
        });
    }
    for e in &made {
        sock.create(e)
            .unwrap_or_else(|err| panic!("create {:?}: {err}", e.orig));
    }
    for e in &made {
        let got = sock.get(&Key::orig(e.orig.unwrap())).unwrap();
        assert_eq!(got.orig, e.orig);
        assert_eq!(got.reply, e.reply);
        if let Some(ProtoInfo::Sctp(s)) = e.protoinfo {
            let Some(ProtoInfo::Sctp(g)) = got.protoinfo else {
                panic!("no SCTP state")
            };
            assert_eq!(
                (g.state, g.vtag_orig, g.vtag_reply),
                (s.state, s.vtag_orig, s.vtag_reply)
            );
        }
    }
    // DCCP: the codec knows it, but recent kernels no longer track it; they keep the
    // entry as a generic one, dropping ports and protocol state. Say which this kernel does.
    let dccp = ConntrackRepr {
        protoinfo: Some(ProtoInfo::Dccp(conntrack_codec::ct::DccpInfo {
            state: Some(conntrack_codec::ct::DccpState::Open),
            role: Some(conntrack_codec::ct::DccpRole::Client),
            handshake_seq: Some(1),
        })),
        ..entry(Tuple::ports(
            l4proto::DCCP,
            v4(192, 0, 2, 9),
            v4(198, 51, 100, 9),
            6000,
            5001,
        ))
    };
    sock.create(&dccp).unwrap();
    let filter = DumpFilter {
        family: 2,
        orig: Some((
            Tuple {
                proto: Some(l4proto::DCCP),
                ..Tuple::default()
            },
            filter_flags::PROTO_NUM,
        )),
        ..DumpFilter::default()
    };
    let got = list_all(&mut sock, &filter);
    assert_eq!(got.len(), 1);
    match got[0].protoinfo {
        Some(ProtoInfo::Dccp(d)) => {
            assert_eq!(d.state, Some(conntrack_codec::ct::DccpState::Open));
            assert_eq!(got[0].orig.unwrap().src_port, Some(6000));
            println!("DCCP: this kernel tracks it (ports and state kept)");
        }
        _ => {
            assert_eq!(got[0].orig.unwrap().src_port, None);
            println!("DCCP: this kernel has no DCCP tracker; the entry is kept as a generic one");
        }
    }
    sock.flush(&filter).unwrap();

    // Family dumps split the table; the tool agrees on every line.
    let v4s = list_all(&mut sock, &DumpFilter::family(2));
    let v6s = list_all(&mut sock, &DumpFilter::family(10));
    assert_eq!((v4s.len(), v6s.len()), (7, 7));
    assert!(v4s.iter().all(|e| e.family == 2) && v6s.iter().all(|e| e.family == 10));
    let out = conntrack_io::clock::output_now();
    let mut ours: Vec<String> = v4s
        .iter()
        .chain(&v6s)
        .map(|e| CtLine::new(e, Origin::Dump, &out, &()).to_string())
        .map(|l| strip_timeout(&l))
        .collect();
    let mut theirs: Vec<String> = ns
        .run("conntrack", &["-L"])
        .lines()
        .map(strip_timeout)
        .collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
}

/// Replaces the timeout (third field) with `N`, keeping the spacing.
fn strip_timeout(line: &str) -> String {
    let mut words: Vec<&str> = line.split(' ').collect();
    let idx: Vec<usize> = (0..words.len()).filter(|&i| !words[i].is_empty()).collect();
    words[idx[2]] = "N";
    words.join(" ")
}

#[test]
fn zones_marks_and_filtered_dumps_and_flushes() {
    let ns = Netns::new("filters");
    let mut sock = ns.socket();
    let mut all = Vec::new();
    for i in 0..30u16 {
        let mut e = entry(Tuple::tcp(
            v4(192, 0, 2, 1),
            v4(198, 51, 100, 1),
            1000 + i,
            80,
        ));
        e.mark = Some(u32::from(i % 3));
        if i % 5 == 0 {
            e.zone = Some(7);
        }
        if i % 2 == 0 {
            e.status = Some(Status::SEEN_REPLY);
        }
        all.push(e);
    }
    for i in 0..10u16 {
        all.push(entry(Tuple::udp(v6(1), v6(2), 2000 + i, 53)));
    }
    for e in &all {
        sock.create(e).unwrap();
    }
    let count = |sock: &mut Socket, f: &DumpFilter| list_all(sock, f).len();
    assert_eq!(count(&mut sock, &DumpFilter::default()), 40);
    // Marks: value and mask.
    let marked = DumpFilter {
        mark: Some((1, 0xff)),
        ..DumpFilter::default()
    };
    assert!(list_all(&mut sock, &marked)
        .iter()
        .all(|e| e.mark == Some(1)));
    assert_eq!(count(&mut sock, &marked), 10);
    // Status: the ASSURED ones.
    let assured = DumpFilter {
        status: Some((Status::ASSURED, Status::ASSURED)),
        ..DumpFilter::default()
    };
    assert_eq!(count(&mut sock, &assured), 15 + 10);
    // Zone.
    let zone7 = DumpFilter {
        zone: Some(7),
        ..DumpFilter::default()
    };
    assert_eq!(count(&mut sock, &zone7), 6);
    // A tuple filter: original source port.
    let t = Tuple {
        proto: Some(l4proto::TCP),
        src_port: Some(1004),
        ..Tuple::default()
    };
    let by_port = DumpFilter {
        family: 2,
        orig: Some((t, filter_flags::PROTO_NUM | filter_flags::PROTO_SRC_PORT)),
        ..DumpFilter::default()
    };
    let got = list_all(&mut sock, &by_port);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].orig.unwrap().src_port, Some(1004));

    // A zoned entry is not found without its zone.
    let zoned = Key::orig(all[0].orig.unwrap());
    assert_eq!(kernel_errno(sock.delete(&zoned)), Errno::ENOENT);
    sock.delete(&zoned.in_zone(7)).unwrap();

    // Flush by mark, then one family, then everything.
    sock.flush(&DumpFilter {
        mark: Some((2, 0xff)),
        ..DumpFilter::default()
    })
    .unwrap();
    assert_eq!(count(&mut sock, &DumpFilter::default()), 39 - 10);
    sock.flush(&DumpFilter::family(10)).unwrap();
    assert_eq!(count(&mut sock, &DumpFilter::family(10)), 0);
    assert_eq!(count(&mut sock, &DumpFilter::family(2)), 19);
    assert_eq!(tool_count(&ns), 19);
    sock.flush(&DumpFilter::default()).unwrap();
    assert_eq!(sock.count().unwrap(), 0);
}

#[test]
fn labels_nat_counters_timestamps_and_statistics() {
    let ns = Netns::new("extras");
    ns.sysctl("net.netfilter.nf_conntrack_acct", "1");
    ns.sysctl("net.netfilter.nf_conntrack_timestamp", "1");
    // Labels need the label extension: a rule that uses `ct label`.
    ns.run("nft", &["add", "table", "inet", "t"]);
    ns.run(
        "nft",
        &[
            "add",
            "chain",
            "inet",
            "t",
            "c",
            "{ type filter hook output priority 0; }",
        ],
    );
    ns.run(
        "nft",
        &[
            "add", "rule", "inet", "t", "c", "ct", "mark", "0xdead", "ct", "label", "set", "1",
        ],
    );
    let mut sock = ns.socket();
    let t = Tuple::tcp(v4(192, 0, 2, 1), v4(198, 51, 100, 1), 3000, 80);
    let mut labels = Labels::default();
    labels.insert(3).unwrap();
    labels.insert(100).unwrap();
    sock.create(&ConntrackRepr {
        labels: Some(labels),
        ..entry(t)
    })
    .unwrap();
    let got = sock.get(&Key::orig(t)).unwrap();
    assert_eq!(got.labels, Some(labels));
    assert!(got.timestamp.unwrap().start.is_some());
    assert_eq!(got.counters_orig.unwrap().packets, Some(0));
    // Add a label, keep the others (mask).
    let mut add = Labels::default();
    add.insert(64).unwrap();
    sock.update(&ConntrackRepr {
        orig: Some(t),
        labels: Some(add),
        labels_mask: Some(add),
        ..ConntrackRepr::default()
    })
    .unwrap();
    let bits: Vec<u16> = sock
        .get(&Key::orig(t))
        .unwrap()
        .labels
        .unwrap()
        .iter()
        .collect();
    assert_eq!(bits, [3, 64, 100]);

    // NAT by request: the kernel rewrites the reply tuple.
    let n = Tuple::tcp(v4(192, 0, 2, 1), v4(198, 51, 100, 1), 3001, 80);
    sock.create(&ConntrackRepr {
        nat_src: Some(NatRange {
            min_addr: Some(v4(203, 0, 113, 1)),
            max_addr: Some(v4(203, 0, 113, 1)),
            min_port: Some(1000),
            max_port: Some(1000),
        }),
        ..entry(n)
    })
    .unwrap();
    let got = sock.get(&Key::orig(n)).unwrap();
    assert!(got
        .status
        .unwrap()
        .contains(Status::SRC_NAT | Status::SRC_NAT_DONE));
    assert_eq!(got.reply.unwrap().dst, Some(v4(203, 0, 113, 1)));
    assert_eq!(got.reply.unwrap().dst_port, Some(1000));

    // Counters from real traffic, then zeroed by the zeroing dump.
    ns.run(
        "nft",
        &[
            "add", "rule", "inet", "t", "c", "ct", "state", "new", "accept",
        ],
    );
    ns.run("ping", &["-c", "2", "-i", "0.2", "-W", "1", "127.0.0.1"]);
    let icmp = DumpFilter {
        family: 2,
        orig: Some((
            Tuple {
                proto: Some(l4proto::ICMP),
                ..Tuple::default()
            },
            filter_flags::PROTO_NUM,
        )),
        ..DumpFilter::default()
    };
    let mut before = Vec::new();
    let _ = sock
        .list_and_zero(&icmp, |v| {
            before.push(v.counters_orig().unwrap().unwrap());
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].packets, Some(2));
    let after = list_all(&mut sock, &icmp);
    assert_eq!(after[0].counters_orig.unwrap().packets, Some(0));

    // Statistics.
    let stats = sock.stats().unwrap();
    assert_eq!(stats.entries, Some(3));
    assert_eq!(stats.max_entries.map(|m| m > 0), Some(true));
    let cpus = sock.stats_per_cpu().unwrap();
    assert!(!cpus.is_empty());
    assert!(cpus
        .iter()
        .enumerate()
        .all(|(i, s)| usize::from(s.cpu) == i));
    let inserted: u32 = cpus.iter().map(|s| s.insert.unwrap_or(0)).sum();
    assert!(inserted >= 1, "{cpus:?}");
    // The special lists answer (empty while nothing is dying or unconfirmed).
    let _ = sock.list_dying(|_| ControlFlow::Continue(())).unwrap();
    let _ = sock
        .list_unconfirmed(|_| ControlFlow::Continue(()))
        .unwrap();
}

#[test]
fn a_table_of_100k_entries() {
    const N: usize = 100_000;
    let ns = Netns::new("big");
    let mut sock = conntrack_io::Builder::new()
        .open_in_netns(ns.path())
        .unwrap();
    sock.set_rcvbuf(8 << 20).unwrap();
    let entries: Vec<ConntrackRepr> = (0..N)
        .map(|i| {
            let i = u32::try_from(i).unwrap();
            let src = Ipv4Addr::from(0x0a00_0000 | (i >> 16));
            let dst = Ipv4Addr::from(0x0b00_0000 | (i & 0xffff));
            let mut e = entry(Tuple::tcp(
                src.into(),
                dst.into(),
                1024 + (i % 60000) as u16,
                80,
            ));
            e.mark = Some(i % 10);
            e
        })
        .collect();
    let mut failed = 0;
    let summary = sock
        .create_batch(&entries, 1024, |_, r| {
            if r.is_err() {
                failed += 1;
            }
        })
        .unwrap();
    assert_eq!((summary.succeeded, summary.failed, failed), (N, 0, 0));
    assert_eq!(tool_count(&ns), N);
    assert_eq!(sock.count().unwrap() as usize, N);

    // A full dump returns every entry exactly once.
    let mut seen = HashSet::with_capacity(N);
    let summary = sock
        .list(&DumpFilter::default(), |v| {
            let o = v.orig().unwrap().unwrap();
            assert!(seen.insert((o.src, o.dst, o.src_port)), "entry seen twice");
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(seen.len(), N);
    assert!(!summary.interrupted);

    // Filtered dumps return exactly the matching ones.
    let mut n = 0;
    let _ = sock
        .list(
            &DumpFilter {
                mark: Some((3, 0xff)),
                ..DumpFilter::default()
            },
            |v| {
                assert_eq!(v.mark().unwrap(), Some(3));
                n += 1;
                ControlFlow::Continue(())
            },
        )
        .unwrap();
    assert_eq!(n, N / 10);

    // Bulk delete of every entry: all accounted for.
    let keys: Vec<Key> = entries.iter().map(|e| Key::orig(e.orig.unwrap())).collect();
    let summary = sock.delete_batch(&keys, 1024, |_, r| r.unwrap()).unwrap();
    assert_eq!(summary.succeeded, N);
    assert_eq!(sock.count().unwrap(), 0);
    assert_eq!(tool_count(&ns), 0);
}
