//! The event stream against the kernel: one socket subscribes, another makes changes, and
//! every expected event arrives, typed, in order, with the requester's port id; expectation
//! events; events of real traffic; forged datagrams; requests on the event socket; the
//! kernel-side filter; non-blocking reads; losses on a tiny queue, with and without
//! `NETLINK_NO_ENOBUFS`.
//!
//! Live: runs as root, each test in its own throwaway network namespace.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::ControlFlow;

use conntrack_codec::ct::request::{self, Key};
use conntrack_codec::ct::{
    l4proto, ConntrackRepr, EventKind, Helper, ProtoInfo, Status, TcpInfo, TcpState, Tuple,
};
use conntrack_codec::exp::request::ExpKey;
use conntrack_codec::exp::ExpectRepr;
use conntrack_codec::filter::bpf::{EventFilter, Logic};
use conntrack_codec::filter::DumpFilter;
use conntrack_codec::nl::Writer;
use conntrack_io::{Event, Events, Groups, LossCause, Lost, Socket};
use conntrack_tests::Netns;

/// One event, copied out of the stream.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Ct {
        kind: EventKind,
        orig: Tuple,
        mark: Option<u32>,
        timeout: Option<u32>,
        state: Option<TcpState>,
        portid: u32,
    },
    Exp {
        kind: EventKind,
        tuple: Tuple,
        portid: u32,
    },
    Lost(Lost),
}

fn copy(ev: Event<'_>) -> Seen {
    match ev {
        Event::Conntrack(c) => Seen::Ct {
            kind: c.kind,
            orig: c.entry.orig().unwrap().unwrap(),
            mark: c.entry.mark().unwrap(),
            timeout: c.entry.timeout().unwrap(),
            state: match c.entry.protoinfo().unwrap() {
                Some(ProtoInfo::Tcp(t)) => t.state,
                _ => None,
            },
            portid: c.portid,
        },
        Event::Expect(e) => Seen::Exp {
            kind: e.kind,
            tuple: e.exp.tuple().unwrap().unwrap(),
            portid: e.portid,
        },
        Event::Lost(l) => Seen::Lost(l),
    }
}

/// Everything queued now (the kernel queues the events of a request before the request
/// returns, and those of a packet before the packet is delivered).
fn drain(events: &mut Events) -> Vec<Seen> {
    let mut out = Vec::new();
    while let Some(ev) = events.try_next().expect("try_next") {
        out.push(copy(ev));
    }
    out
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
}

fn entry(orig: Tuple) -> ConntrackRepr {
    ConntrackRepr {
        orig: Some(orig),
        reply: Some(orig.inverted()),
        status: Some(Status::SEEN_REPLY),
        timeout: Some(100),
        protoinfo: (orig.proto == Some(l4proto::TCP)).then_some(ProtoInfo::Tcp(TcpInfo {
            state: Some(TcpState::Established),
            ..TcpInfo::default()
        })),
        ..ConntrackRepr::default()
    }
}

fn ct(kind: EventKind, orig: Tuple, portid: u32) -> (EventKind, Tuple, u32) {
    (kind, orig, portid)
}

fn ct_only(seen: &[Seen]) -> Vec<(EventKind, Tuple, u32)> {
    seen.iter()
        .map(|s| match s {
            Seen::Ct {
                kind, orig, portid, ..
            } => ct(*kind, *orig, *portid),
            other => panic!("not a conntrack event: {other:?}"),
        })
        .collect()
}

#[test]
fn every_change_arrives_typed_and_in_order() {
    let ns = Netns::new("ev-order");
    let mut events = Events::open_in_netns(ns.path(), Groups::CONNTRACK).unwrap();
    let mut creator = ns.socket();
    let me = creator.portid();
    let tuples = [
        Tuple::tcp(v4(10, 0, 0, 1), v4(10, 0, 0, 2), 1000, 80),
        Tuple::udp(v6("2001:db8::1"), v6("2001:db8::2"), 5353, 53),
        Tuple::icmp(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 3),
            8,
            0,
            77,
        ),
    ];
    let mut want = Vec::new();
    // Interleaved: all creates, all mark updates, all timeout updates, deletes.
    for t in tuples {
        creator.create(&entry(t)).unwrap();
        want.push(ct(EventKind::New, t, me));
    }
    for (i, t) in tuples.iter().enumerate() {
        creator
            .update(&ConntrackRepr {
                orig: Some(*t),
                mark: Some(0x40 + i as u32),
                ..ConntrackRepr::default()
            })
            .unwrap();
        want.push(ct(EventKind::Update, *t, me));
    }
    for t in tuples.iter().rev() {
        creator
            .update(&ConntrackRepr {
                orig: Some(*t),
                timeout: Some(1000),
                ..ConntrackRepr::default()
            })
            .unwrap();
        want.push(ct(EventKind::Update, *t, me));
    }
    creator.delete(&Key::orig(tuples[1])).unwrap();
    want.push(ct(EventKind::Destroy, tuples[1], me));
    // The rest goes with a flush: one destroy event each, in the table's order.
    creator.flush(&DumpFilter::default()).unwrap();

    let seen = drain(&mut events);
    let got = ct_only(&seen);
    assert_eq!(got[..want.len()], want[..], "{seen:#?}");
    let mut flushed: Vec<_> = got[want.len()..].to_vec();
    flushed.sort_by_key(|(_, t, _)| t.dst_port);
    let mut rest = vec![
        ct(EventKind::Destroy, tuples[0], me),
        ct(EventKind::Destroy, tuples[2], me),
    ];
    rest.sort_by_key(|(_, t, _)| t.dst_port);
    assert_eq!(flushed, rest);
    // The content follows the changes: the mark, then the timeout, per entry.
    for (i, t) in tuples.iter().enumerate() {
        let per_entry: Vec<(EventKind, Option<u32>, Option<u32>)> = seen
            .iter()
            .filter_map(|s| match s {
                Seen::Ct {
                    kind,
                    orig,
                    mark,
                    timeout,
                    ..
                } if orig == t => Some((*kind, *mark, *timeout)),
                _ => None,
            })
            .collect();
        let mark = 0x40 + i as u32;
        assert_eq!(per_entry.len(), 4, "{per_entry:?}");
        assert_eq!(per_entry[0], (EventKind::New, Some(0), Some(100)));
        assert_eq!(per_entry[1], (EventKind::Update, Some(mark), Some(100)));
        assert_eq!(per_entry[2], (EventKind::Update, Some(mark), Some(1000)));
        assert_eq!(per_entry[3].0, EventKind::Destroy);
    }
    let stats = events.stats();
    assert_eq!((stats.received, stats.lost, stats.foreign), (12, 0, 0));
    println!("{} events in order: {stats:?}", seen.len());
}

#[test]
fn groups_select_the_kinds() {
    let ns = Netns::new("ev-groups");
    let mut only_destroy = Events::open_in_netns(ns.path(), Groups::CONNTRACK_DESTROY).unwrap();
    let mut new_and_update =
        Events::open_in_netns(ns.path(), Groups::CONNTRACK_NEW | Groups::CONNTRACK_UPDATE).unwrap();
    let mut creator = ns.socket();
    let t = Tuple::tcp(v4(10, 1, 0, 1), v4(10, 1, 0, 2), 1, 2);
    creator.create(&entry(t)).unwrap();
    creator
        .update(&ConntrackRepr {
            orig: Some(t),
            mark: Some(1),
            ..ConntrackRepr::default()
        })
        .unwrap();
    creator.delete(&Key::orig(t)).unwrap();
    let me = creator.portid();
    assert_eq!(
        ct_only(&drain(&mut only_destroy)),
        [ct(EventKind::Destroy, t, me)]
    );
    assert_eq!(
        ct_only(&drain(&mut new_and_update)),
        [ct(EventKind::New, t, me), ct(EventKind::Update, t, me)]
    );
    // Leaving a group stops its events; joining again brings them back.
    new_and_update.leave(Groups::CONNTRACK_NEW).unwrap();
    assert_eq!(new_and_update.groups(), Groups::CONNTRACK_UPDATE);
    creator.create(&entry(t)).unwrap();
    assert!(drain(&mut new_and_update).is_empty());
    new_and_update.join(Groups::CONNTRACK_DESTROY).unwrap();
    creator.delete(&Key::orig(t)).unwrap();
    assert_eq!(
        ct_only(&drain(&mut new_and_update)),
        [ct(EventKind::Destroy, t, me)]
    );
}

/// A master entry with the ftp helper, made by request.
fn ftp_master(sock: &mut Socket, sport: u16) -> Tuple {
    let t = Tuple::tcp(v4(192, 0, 2, 1), v4(198, 51, 100, 21), sport, 21);
    sock.create(&ConntrackRepr {
        helper: Some(Helper::named("ftp").unwrap()),
        timeout: Some(300),
        status: Some(Status::SEEN_REPLY | Status::ASSURED),
        ..entry(t)
    })
    .unwrap();
    t
}

#[test]
fn expectation_events_are_typed() {
    let ns = Netns::new("ev-exp");
    let mut all = Events::open_in_netns(ns.path(), Groups::ALL).unwrap();
    let mut exp_only = Events::open_in_netns(ns.path(), Groups::EXPECT).unwrap();
    let mut sock = ns.socket();
    let me = sock.portid();
    let master = ftp_master(&mut sock, 41000);
    let ones = IpAddr::V4(Ipv4Addr::BROADCAST);
    let tuple = Tuple::tcp(master.src.unwrap(), master.dst.unwrap(), 0, 51000);
    sock.exp_create(&ExpectRepr {
        family: 2,
        master: Some(master),
        tuple: Some(tuple),
        mask: Some(Tuple::tcp(ones, ones, 0, 0xffff)),
        timeout: Some(300),
        ..ExpectRepr::default()
    })
    .unwrap();
    sock.exp_delete(&ExpKey::tuple(tuple)).unwrap();
    sock.delete(&Key::orig(master)).unwrap();

    let exp = |kind| Seen::Exp {
        kind,
        tuple,
        portid: me,
    };
    let got = drain(&mut all);
    let kinds: Vec<String> = got
        .iter()
        .map(|s| match s {
            Seen::Ct { kind, .. } => format!("ct {kind:?}"),
            Seen::Exp { kind, .. } => format!("exp {kind:?}"),
            Seen::Lost(l) => format!("{l}"),
        })
        .collect();
    assert_eq!(
        kinds,
        ["ct New", "exp New", "exp Destroy", "ct Destroy"],
        "{got:#?}"
    );
    assert_eq!(got[1], exp(EventKind::New));
    assert_eq!(got[2], exp(EventKind::Destroy));
    assert_eq!(
        drain(&mut exp_only),
        [exp(EventKind::New), exp(EventKind::Destroy)]
    );
}

const RULES: &str = "table inet t { chain out { type filter hook output priority 0; \
    ct state new,established,related accept; }; chain in { type filter hook input priority 0; \
    ct state established,related,new accept; }; }";

const TCP: &str = r#"
import socket, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 8080)); srv.listen(1)
def serve():
    c, _ = srv.accept(); c.sendall(c.recv(100)); c.close()
t = threading.Thread(target=serve); t.start()
cl = socket.create_connection(("127.0.0.1", 8080)); cl.sendall(b"hello"); cl.recv(100); cl.close()
t.join()
"#;

#[test]
fn real_traffic_makes_kernel_events() {
    let ns = Netns::new("ev-traffic");
    ns.run("nft", &[RULES]);
    // nf_conntrack_events is 2 in a new namespace: events exist while someone listens.
    let mut events = Events::open_in_netns(ns.path(), Groups::CONNTRACK).unwrap();
    ns.run("ping", &["-c", "1", "-W", "1", "127.0.0.1"]);
    ns.run("python3", &["-c", TCP]);
    let seen = drain(&mut events);
    let mut icmp = Vec::new();
    let mut tcp = Vec::new();
    for s in &seen {
        let Seen::Ct {
            kind,
            orig,
            state,
            portid,
            ..
        } = s
        else {
            panic!("unexpected {s:?}");
        };
        // Packets are no request: no port id.
        assert_eq!(*portid, 0, "{s:?}");
        match orig.proto {
            Some(l4proto::ICMP) => icmp.push(*kind),
            Some(l4proto::TCP) => {
                assert_eq!(orig.dst_port, Some(8080));
                tcp.push((*kind, *state));
            }
            other => panic!("unexpected protocol {other:?}"),
        }
    }
    assert_eq!(icmp.first(), Some(&EventKind::New), "{seen:#?}");
    assert!(icmp[1..].iter().all(|k| *k == EventKind::Update));
    // The handshake: NEW in SYN_SENT, then updates through SYN_RECV to ESTABLISHED and on
    // to the close.
    assert_eq!(tcp[0], (EventKind::New, Some(TcpState::SynSent)), "{tcp:?}");
    assert!(tcp[1..].iter().all(|(k, _)| *k == EventKind::Update));
    let states: Vec<_> = tcp.iter().filter_map(|(_, s)| *s).collect();
    let at = |s| states.iter().position(|x| *x == s);
    assert!(
        at(TcpState::SynRecv) < at(TcpState::Established),
        "{states:?}"
    );
    assert!(at(TcpState::Established).is_some(), "{states:?}");
    println!("ping: {icmp:?}; tcp: {tcp:?}");
}

#[test]
fn forged_datagrams_are_dropped_and_counted() {
    let ns = Netns::new("ev-forged");
    let mut events = Events::open_in_netns(ns.path(), Groups::CONNTRACK).unwrap();
    let mut creator = ns.socket();
    let forger = ns.socket();
    // A perfect copy of an event, but sent by a process.
    let t = Tuple::tcp(v4(10, 2, 0, 1), v4(10, 2, 0, 2), 1, 2);
    let mut buf = [0u8; 512];
    let mut w = Writer::new(&mut buf);
    let r = request::create(&mut w, 0, &entry(t)).unwrap();
    forger.send_to(events.socket().portid(), &buf[r]).unwrap();
    creator.create(&entry(t)).unwrap();
    assert_eq!(
        ct_only(&drain(&mut events)),
        [ct(EventKind::New, t, creator.portid())]
    );
    assert_eq!(events.stats().foreign, 1);
    assert_eq!(events.stats().received, 1);
}

#[test]
fn requests_on_the_event_socket_report_the_events_they_drop() {
    let ns = Netns::new("ev-request");
    let mut events = Events::open_in_netns(ns.path(), Groups::CONNTRACK).unwrap();
    let mut creator = ns.socket();
    for i in 0..3 {
        creator
            .create(&entry(Tuple::tcp(v4(10, 3, 0, i), v4(10, 3, 1, 1), 1, 2)))
            .unwrap();
    }
    // A dump on the event socket reads the three queued events and drops them.
    let mut listed = 0;
    let summary = events
        .with_socket(|s| {
            s.list(&DumpFilter::default(), |_| {
                listed += 1;
                ControlFlow::Continue(())
            })
        })
        .unwrap();
    assert_eq!((summary.delivered, listed), (3, 3));
    let seen = drain(&mut events);
    let [Seen::Lost(lost)] = seen[..] else {
        panic!("{seen:?}");
    };
    assert_eq!((lost.count, lost.total), (3, 3));
    assert_eq!(lost.cause, LossCause::Request);
    // The stream carries on.
    creator
        .create(&entry(Tuple::tcp(v4(10, 3, 0, 9), v4(10, 3, 1, 1), 1, 2)))
        .unwrap();
    assert_eq!(drain(&mut events).len(), 1);
}

#[test]
fn nothing_now_is_distinct_from_an_event() {
    let ns = Netns::new("ev-nonblock");
    let mut events = Events::open_in_netns(ns.path(), Groups::CONNTRACK).unwrap();
    // try_next never blocks, even on a blocking socket.
    assert!(events.try_next().unwrap().is_none());
    events.set_nonblocking(true).unwrap();
    assert!(events.next().unwrap().is_none());
    let mut creator = ns.socket();
    creator
        .create(&entry(Tuple::udp(v4(10, 4, 0, 1), v4(10, 4, 0, 2), 1, 2)))
        .unwrap();
    assert!(matches!(events.next().unwrap(), Some(Event::Conntrack(_))));
    assert!(events.next().unwrap().is_none());
    // Blocking again: next() waits for the event a thread makes later.
    events.set_nonblocking(false).unwrap();
    let path = ns.path();
    let maker = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut s = Socket::open_in_netns(path).unwrap();
        s.create(&entry(Tuple::udp(v4(10, 4, 0, 3), v4(10, 4, 0, 2), 1, 2)))
            .unwrap();
    });
    match events.next().unwrap() {
        Some(Event::Conntrack(c)) => assert_eq!(c.kind, EventKind::New),
        other => panic!("{other:?}"),
    }
    maker.join().unwrap();
}

#[test]
fn the_kernel_filter_keeps_unwanted_events_out() {
    let ns = Netns::new("ev-filter");
    let mut events = Events::open_in_netns(ns.path(), Groups::ALL).unwrap();
    let mut filter = EventFilter::<8>::empty();
    filter.l4proto.insert(l4proto::TCP);
    filter.mark.logic = Logic::Negative;
    filter
        .mark
        .push(conntrack_codec::filter::bpf::MarkMatch::exact(7))
        .unwrap();
    let len = events.attach_filter(&filter).unwrap();
    assert!(len > 0);
    let mut creator = ns.socket();
    let tcp = Tuple::tcp(v4(10, 5, 0, 1), v4(10, 5, 0, 2), 1, 2);
    let tcp7 = Tuple::tcp(v4(10, 5, 0, 7), v4(10, 5, 0, 2), 1, 2);
    let udp = Tuple::udp(v4(10, 5, 0, 1), v4(10, 5, 0, 2), 1, 2);
    creator.create(&entry(tcp)).unwrap();
    creator
        .create(&ConntrackRepr {
            mark: Some(7),
            ..entry(tcp7)
        })
        .unwrap();
    creator.create(&entry(udp)).unwrap();
    let me = creator.portid();
    assert_eq!(ct_only(&drain(&mut events)), [ct(EventKind::New, tcp, me)]);
    // Filtered events are not drops.
    assert_eq!(events.socket().drops().unwrap(), 0);
    assert_eq!(events.stats().lost, 0);
    // Expectation events pass the filter.
    let master = ftp_master(&mut creator, 41001);
    let seen = drain(&mut events);
    assert_eq!(ct_only(&seen), [ct(EventKind::New, master, me)]);
    events.detach_filter().unwrap();
    creator.flush(&DumpFilter::default()).unwrap();
    assert_eq!(drain(&mut events).len(), 4);
}

/// Creates `n` entries from `creator` while nobody reads `events`.
fn create_unread(creator: &mut Socket, n: u32, base: u8) -> usize {
    let entries: Vec<ConntrackRepr> = (0..n)
        .map(|i| {
            let [_, _, a, b] = i.to_be_bytes();
            entry(Tuple::udp(v4(10, base, a, b), v4(10, 200, 0, 1), 1, 2))
        })
        .collect();
    let summary = creator
        .create_batch(&entries, 64, |i, r| {
            r.unwrap_or_else(|e| panic!("create {i}: {e}"))
        })
        .unwrap();
    summary.succeeded
}

/// Reads until the queue is empty: (events, reports of loss).
fn count(events: &mut Events) -> (u64, Vec<Lost>) {
    let mut n = 0;
    let mut lost = Vec::new();
    while let Some(ev) = events.try_next().unwrap() {
        match ev {
            Event::Lost(l) => lost.push(l),
            _ => n += 1,
        }
    }
    (n, lost)
}

#[test]
fn a_tiny_queue_reports_its_loss_exactly() {
    const N: u32 = 500;
    let ns = Netns::new("ev-tiny");
    let mut creator = ns.socket();
    let mut plain = Events::open_in_netns(ns.path(), Groups::CONNTRACK).unwrap();
    let mut no_enobufs = Events::open_in_netns(ns.path(), Groups::CONNTRACK).unwrap();
    no_enobufs.set_no_enobufs(true).unwrap();
    // Only read the counter when the queue runs dry: the loss is reported all the same.
    let mut lazy = Events::open_in_netns(ns.path(), Groups::CONNTRACK).unwrap();
    lazy.set_no_enobufs(true).unwrap();
    lazy.set_drop_check(0);
    let mut reliable = Events::open_in_netns(ns.path(), Groups::CONNTRACK).unwrap();
    reliable.set_reliable(true).unwrap();
    for e in [&plain, &no_enobufs, &lazy, &reliable] {
        e.set_rcvbuf(16 * 1024).unwrap();
    }
    assert_eq!(create_unread(&mut creator, N, 6), N as usize);
    for (name, events) in [
        ("default", &mut plain),
        ("no-enobufs", &mut no_enobufs),
        ("no-enobufs, lazy check", &mut lazy),
        ("reliable", &mut reliable),
    ] {
        let drops = events.socket().drops().unwrap();
        let (received, lost) = count(events);
        let total: u64 = lost.iter().map(|l| l.count).sum();
        println!(
            "{name}: rcvbuf {} B, {received} received, {total} lost in {} reports, drops {drops}",
            events.socket().rcvbuf().unwrap(),
            lost.len()
        );
        assert!(total > 0, "{name}: a loss went unreported");
        assert_eq!(total, u64::from(drops), "{name}");
        assert_eq!(lost.last().unwrap().total, total, "{name}");
        assert!(lost
            .iter()
            .all(|l| l.exact && l.cause == LossCause::QueueFull));
        assert_eq!(received + total, u64::from(N), "{name}");
        assert_eq!(events.stats().received, received);
        assert_eq!(events.stats().lost, total);
    }
}
