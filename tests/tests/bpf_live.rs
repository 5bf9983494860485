//! The classic-BPF event filter against the kernel: every compiled program is accepted by
//! `SO_ATTACH_FILTER` (up to the 4096-instruction limit), and, on sockets subscribed to the
//! conntrack event groups, exactly the events a filter selects arrive.
//!
//! Live: runs as root, each test in its own throwaway network namespace. Entries are made
//! with CT_NEW requests from a second socket; a socket without a filter receives every
//! event, and what each filtered socket receives must be, byte for byte, the events of that
//! list the filter's meaning (a plain Rust predicate over the parsed event) selects.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use conntrack_codec::ct::request::{self, Key};
use conntrack_codec::ct::{
    l4proto, ConntrackRepr, EventKind, ProtoInfo, SctpInfo, SctpState, Status, TcpInfo, TcpState,
    Tuple,
};
use conntrack_codec::filter::bpf::{
    BpfInsn, ByteSet, EventFilter, Ipv4Match, Ipv6Match, Logic, MarkMatch, MatchSet, MAX_INSNS,
};
use conntrack_codec::nfnl::groups;
use conntrack_codec::nl::{msgtype, Messages, Writer};
use conntrack_io::{Errno, Error, SockFilter, Socket};
use conntrack_tests::Netns;

/// A compiled program in the socket layer's form.
fn program<const N: usize>(f: &EventFilter<N>) -> Vec<SockFilter> {
    let mut out = vec![BpfInsn::default(); MAX_INSNS];
    let n = f.compile(&mut out).expect("compile");
    out[..n]
        .iter()
        .map(|i| SockFilter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect()
}

fn ip4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn net4(s: &str, len: u8) -> Ipv4Match {
    Ipv4Match::prefix(ip4(s), len).unwrap()
}

fn net6(s: &str, len: u8) -> Ipv6Match {
    Ipv6Match::prefix(ip6(s), len).unwrap()
}

fn bytes(logic: Logic, values: &[u8]) -> ByteSet {
    let mut s = ByteSet::new(logic);
    for &v in values {
        s.insert(v);
    }
    s
}

fn set<T, const N: usize>(logic: Logic, items: impl IntoIterator<Item = T>) -> MatchSet<T, N> {
    let mut s = MatchSet::new(logic);
    for i in items {
        s.push(i).unwrap();
    }
    s
}

/// `base` with the set `pick` selects filled with `make(0)`, `make(1)`, ... as far as the
/// program stays within the kernel's limit: the longest program of that kind.
fn fill_to_limit<T, const N: usize>(
    base: &EventFilter<N>,
    pick: impl Fn(&mut EventFilter<N>) -> &mut MatchSet<T, N>,
    make: impl Fn(u32) -> T,
) -> Box<EventFilter<N>> {
    let build = |n: u32| -> Option<Box<EventFilter<N>>> {
        let mut f = Box::new(base.clone());
        for i in 0..n {
            pick(&mut f).push(make(i)).ok()?;
        }
        f.program_len().is_ok().then_some(f)
    };
    // The program grows with the set: search for the largest count that fits.
    let (mut fits, mut too_many) = (0, N as u32 + 1);
    while too_many - fits > 1 {
        let mid = (fits + too_many) / 2;
        if build(mid).is_some() {
            fits = mid;
        } else {
            too_many = mid;
        }
    }
    build(fits).unwrap()
}

/// The filters of the live event test: each set alone, both logics, combinations, chunked
/// sets and programs near the limit. Each selects some of the test's events, not all.
fn filters() -> Vec<(&'static str, Box<EventFilter<1024>>)> {
    use Logic::{Negative, Positive};
    let mut v: Vec<(&'static str, Box<EventFilter<1024>>)> = Vec::new();
    let mut add = |name, build: &dyn Fn(&mut EventFilter<1024>)| {
        let mut f = Box::<EventFilter<1024>>::default();
        build(&mut f);
        v.push((name, f));
    };
    add("tcp only", &|f| {
        f.l4proto = bytes(Positive, &[l4proto::TCP])
    });
    add("no tcp, no udp", &|f| {
        f.l4proto = bytes(Negative, &[l4proto::TCP, l4proto::UDP])
    });
    add("tcp established", &|f| {
        f.tcp_state = bytes(Positive, &[TcpState::Established.into()])
    });
    add("sctp not cookie-wait", &|f| {
        f.sctp_state = bytes(Negative, &[SctpState::CookieWait.into()])
    });
    add("ipv4 src in 10.1/16 or 192.168.7.7", &|f| {
        f.ipv4_src = set(Positive, [net4("10.1.0.0", 16), net4("192.168.7.7", 32)])
    });
    add("ipv4 dst not in 10.2/16", &|f| {
        f.ipv4_dst = set(Negative, [net4("10.2.0.0", 16)])
    });
    add("ipv6 src in 2001:db8:1::/48", &|f| {
        f.ipv6_src = set(Positive, [net6("2001:db8:1::", 48)])
    });
    add("ipv6 dst not 2001:db8:2::5 nor fe80::/10", &|f| {
        f.ipv6_dst = set(Negative, [net6("2001:db8:2::5", 128), net6("fe80::", 10)])
    });
    add("mark 0 or 0x10..0x1f", &|f| {
        f.mark = set(
            Positive,
            [MarkMatch::exact(0), MarkMatch::masked(0x10, 0xf0)],
        )
    });
    add("mark not 0x2a", &|f| {
        f.mark = set(Negative, [MarkMatch::exact(0x2a)])
    });
    add("zone 7", &|f| f.zone = set(Positive, [7]));
    add("not zone 0", &|f| f.zone = set(Negative, [0]));
    add("tcp from 10/8 with a mark", &|f| {
        f.l4proto = bytes(Positive, &[l4proto::TCP]);
        f.ipv4_src = set(Positive, [net4("10.0.0.0", 8)]);
        f.mark = set(Negative, [MarkMatch::exact(0)]);
    });
    add("every set at once", &|f| {
        f.l4proto = bytes(Negative, &[l4proto::ICMP]);
        f.tcp_state = bytes(Negative, &[TcpState::SynSent.into()]);
        f.sctp_state = bytes(Positive, &[SctpState::Established.into()]);
        f.ipv4_src = set(Negative, [net4("192.168.0.0", 16)]);
        f.ipv4_dst = set(Positive, [net4("10.0.0.0", 8)]);
        f.ipv6_src = set(Negative, [net6("fe80::", 10)]);
        f.ipv6_dst = set(Positive, [net6("2001:db8::", 32)]);
        f.mark = set(Negative, [MarkMatch::exact(0x2a)]);
        f.zone = set(Negative, [9]);
    });
    add("300 zones, 7 among them (chunked)", &|f| {
        f.zone = set(Positive, (100..399).chain([7]));
    });
    add("600 ipv4 sources (chunked), 10.1.0.1 last", &|f| {
        let hosts = (0..599).map(|i| Ipv4Match::host(Ipv4Addr::from(0x0a63_0000 + i)));
        f.ipv4_src = set(Negative, hosts.chain([net4("10.1.0.1", 32)]));
    });
    // Hosts none of the entries has, so that they only make the program long.
    let unused6 =
        |i: u32| Ipv6Match::host(Ipv6Addr::from(0x2001_0db8_00ff_u128 << 80 | u128::from(i)));
    v.push((
        "ipv6 sources up to the limit, 2001:db8:1::1 first",
        fill_to_limit(
            &EventFilter::default(),
            |f| &mut f.ipv6_src,
            |i| {
                if i == 0 {
                    Ipv6Match::host(ip6("2001:db8:1::1"))
                } else {
                    unused6(i)
                }
            },
        ),
    ));
    let mut base = Box::<EventFilter<1024>>::default();
    base.ipv6_src = set(Negative, (0..380).map(unused6));
    base.zone = MatchSet::new(Negative);
    let mut f = fill_to_limit(&base, |f| &mut f.zone, |i| 1000 + i as u16);
    *f.zone.items.last_mut().unwrap() = 7;
    v.push(("380 unused ipv6 sources, zones up to the limit, not 7", f));
    v
}

// ---------------------------------------------------------------------------------------
// What the filters mean, written from the documentation (absent attribute: the set does not
// apply; absent mark or zone: 0).

fn byte_ok(s: &ByteSet, v: Option<u8>) -> bool {
    s.is_empty() || v.is_none_or(|v| s.contains(v) == (s.logic == Logic::Positive))
}

fn any_ok<T, V: Copy, const N: usize>(
    s: &MatchSet<T, N>,
    v: Option<V>,
    hit: impl Fn(&T, V) -> bool,
) -> bool {
    s.is_empty()
        || v.is_none_or(|v| s.items.iter().any(|m| hit(m, v)) == (s.logic == Logic::Positive))
}

fn wants<const N: usize>(f: &EventFilter<N>, r: &ConntrackRepr) -> bool {
    let t = r.orig.unwrap_or_default();
    let (tcp, sctp) = match r.protoinfo {
        Some(ProtoInfo::Tcp(i)) => (i.state.map(u8::from), None),
        Some(ProtoInfo::Sctp(i)) => (None, i.state.map(u8::from)),
        _ => (None, None),
    };
    let v4 = |a: Option<IpAddr>| match a {
        Some(IpAddr::V4(a)) => Some(a),
        _ => None,
    };
    let v6 = |a: Option<IpAddr>| match a {
        Some(IpAddr::V6(a)) => Some(a),
        _ => None,
    };
    byte_ok(&f.l4proto, t.proto)
        && byte_ok(&f.tcp_state, tcp)
        && byte_ok(&f.sctp_state, sctp)
        && any_ok(&f.ipv4_src, v4(t.src), |m, a| m.matches(a))
        && any_ok(&f.ipv4_dst, v4(t.dst), |m, a| m.matches(a))
        && any_ok(&f.ipv6_src, v6(t.src), |m, a| m.matches(a))
        && any_ok(&f.ipv6_dst, v6(t.dst), |m, a| m.matches(a))
        && any_ok(&f.mark, Some(r.mark.unwrap_or(0)), |m, v| m.matches(v))
        && any_ok(&f.zone, Some(r.zone.unwrap_or(0)), |z, v| *z == v)
}

// ---------------------------------------------------------------------------------------
// The entries.

struct Spec {
    orig: Tuple,
    protoinfo: Option<ProtoInfo>,
    mark: Option<u32>,
    zone: Option<u16>,
}

fn tcp_state(s: TcpState) -> Option<ProtoInfo> {
    Some(ProtoInfo::Tcp(TcpInfo {
        state: Some(s),
        ..TcpInfo::default()
    }))
}

fn sctp_state(s: SctpState) -> Option<ProtoInfo> {
    Some(ProtoInfo::Sctp(SctpInfo {
        state: Some(s),
        vtag_orig: Some(0x1234),
        vtag_reply: Some(0x5678),
    }))
}

fn specs() -> Vec<Spec> {
    let a4 = |s: &str| IpAddr::V4(ip4(s));
    let a6 = |s: &str| IpAddr::V6(ip6(s));
    let spec = |orig, protoinfo, mark, zone| Spec {
        orig,
        protoinfo,
        mark,
        zone,
    };
    use SctpState as S;
    use TcpState as T;
    vec![
        spec(
            Tuple::tcp(a4("10.1.0.1"), a4("10.2.0.1"), 1000, 80),
            tcp_state(T::Established),
            None,
            None,
        ),
        spec(
            Tuple::tcp(a4("10.1.0.2"), a4("10.3.0.1"), 1001, 80),
            tcp_state(T::SynSent),
            Some(0x2a),
            None,
        ),
        spec(
            Tuple::tcp(a4("192.168.7.7"), a4("10.2.9.9"), 1002, 443),
            tcp_state(T::Established),
            Some(0x13),
            Some(7),
        ),
        spec(
            Tuple::tcp(a4("172.16.0.1"), a4("8.8.8.8"), 1003, 443),
            tcp_state(T::TimeWait),
            Some(0x2a),
            None,
        ),
        spec(
            Tuple::udp(a4("10.1.5.5"), a4("10.2.0.53"), 5353, 53),
            None,
            Some(0x1f),
            None,
        ),
        spec(
            Tuple::udp(a4("192.168.1.1"), a4("10.4.0.53"), 5354, 53),
            None,
            None,
            Some(7),
        ),
        spec(
            Tuple::icmp(ip4("10.9.9.9"), ip4("10.2.2.2"), 8, 0, 77),
            None,
            Some(0x2a),
            None,
        ),
        spec(
            Tuple::ports(l4proto::SCTP, a4("10.1.7.7"), a4("10.5.0.1"), 2000, 36412),
            sctp_state(S::Established),
            None,
            None,
        ),
        spec(
            Tuple::ports(
                l4proto::SCTP,
                a4("192.168.2.2"),
                a4("10.2.0.2"),
                2001,
                36412,
            ),
            sctp_state(S::CookieWait),
            Some(0x10),
            Some(7),
        ),
        spec(
            Tuple::tcp(a6("2001:db8:1::1"), a6("2001:db8:2::5"), 3000, 80),
            tcp_state(T::Established),
            None,
            None,
        ),
        spec(
            Tuple::tcp(a6("2001:db8:9::1"), a6("2001:db8:2::6"), 3001, 80),
            tcp_state(T::SynSent),
            Some(0x11),
            Some(7),
        ),
        spec(
            Tuple::udp(a6("2001:db8:1:ffff::2"), a6("fe80::1"), 3002, 53),
            None,
            Some(0x2a),
            None,
        ),
        spec(
            Tuple::udp(a6("fe80::9"), a6("2001:db8::7"), 3003, 53),
            None,
            None,
            None,
        ),
        spec(
            Tuple::ports(
                l4proto::SCTP,
                a6("2001:db8:1::3"),
                a6("2001:db8:3::1"),
                3004,
                36412,
            ),
            sctp_state(S::CookieWait),
            None,
            Some(7),
        ),
    ]
}

fn entry(s: &Spec) -> ConntrackRepr {
    ConntrackRepr {
        orig: Some(s.orig),
        reply: Some(s.orig.inverted()),
        status: Some(Status::SEEN_REPLY),
        protoinfo: s.protoinfo,
        timeout: Some(300),
        mark: s.mark,
        zone: s.zone,
        ..ConntrackRepr::default()
    }
}

fn key(s: &Spec) -> Key {
    let k = Key::orig(s.orig);
    match s.zone {
        Some(z) => k.in_zone(z),
        None => k,
    }
}

/// Opens a socket subscribed to the three conntrack event groups.
fn listener(ns: &Netns) -> Socket {
    let s = ns.socket();
    for g in [
        groups::CONNTRACK_NEW,
        groups::CONNTRACK_UPDATE,
        groups::CONNTRACK_DESTROY,
    ] {
        s.join_group(g).expect("join group");
    }
    s
}

/// Asks the kernel for an entry that does not exist; its error answer is queued after every
/// event made before, and, not being a conntrack event, must pass every filter.
fn send_sentinel(s: &Socket, seq: u32) {
    let mut buf = [0u8; 256];
    let mut w = Writer::new(&mut buf);
    let t = Tuple::udp(
        IpAddr::V4(ip4("203.0.113.1")),
        IpAddr::V4(ip4("203.0.113.2")),
        9,
        9,
    );
    let r = request::get(&mut w, seq, &Key::orig(t)).unwrap();
    s.send(&buf[r]).expect("send sentinel");
}

/// Every datagram queued on `s` before the sentinel's error answer.
fn drain(s: &mut Socket, seq: u32) -> Vec<Vec<u8>> {
    s.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut got = Vec::new();
    loop {
        let d = match s.recv(&mut buf) {
            Ok(d) => d,
            Err(Error::WouldBlock) => panic!("the sentinel answer never arrived"),
            Err(e) => panic!("recv: {e}"),
        };
        assert!(!d.truncated);
        let bytes = &buf[..d.len];
        let first = Messages::new(bytes).next().unwrap().unwrap();
        if first.kind() == msgtype::ERROR && first.seq() == seq {
            return got;
        }
        got.push(bytes.to_vec());
    }
}

#[test]
fn kernel_accepts_every_compiled_program() {
    let ns = Netns::new("bpf-attach");
    let sock = listener(&ns);
    let mut longest = 0;
    let mut all = filters();
    all.push(("empty", Box::default()));
    for (name, f) in &all {
        let p = program(f);
        longest = longest.max(p.len());
        if let Err(e) = sock.attach_filter(&p) {
            panic!("the kernel refused {name} ({} instructions): {e}", p.len());
        }
    }
    assert!(longest > MAX_INSNS - 8, "longest program {longest}");
    // Other kinds of sets filled to the limit, each on its own socket: IPv4 networks with
    // distinct masks (a TXA and an AND each), marks, IPv6 networks with partial masks.
    let distinct = |i: u32| Ipv4Match {
        addr: Ipv4Addr::from(i),
        mask: Ipv4Addr::from(!i),
    };
    let full_src = fill_to_limit(
        &EventFilter::<1024>::default(),
        |f| &mut f.ipv4_src,
        distinct,
    );
    let limits = [
        fill_to_limit(&full_src, |f| &mut f.ipv4_dst, distinct),
        fill_to_limit(&full_src, |f| &mut f.mark, |i| MarkMatch::masked(i, !i)),
        fill_to_limit(
            &EventFilter {
                ipv6_dst: MatchSet::new(Logic::Negative),
                ..EventFilter::default()
            },
            |f| &mut f.ipv6_dst,
            |i| Ipv6Match {
                addr: Ipv6Addr::from(u128::from(i) << 64),
                mask: Ipv6Addr::from(0xffff_0000_ffff_0000_0000_ffff_0000_ffff_u128),
            },
        ),
    ];
    for f in &limits {
        let p = program(f);
        assert!(p.len() > MAX_INSNS - 8, "{}", p.len());
        listener(&ns)
            .attach_filter(&p)
            .expect("attach a program near the limit");
    }
    // The check is real: a program that does not end with RET is refused.
    let mut bad = program(&all[0].1);
    bad.pop();
    let r = sock.attach_filter(&bad);
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
    sock.detach_filter().expect("detach");
}

#[test]
fn only_matching_events_arrive() {
    let ns = Netns::new("bpf-events");
    let mut creator = ns.socket();
    let mut everything = listener(&ns);
    let filters = filters();
    let mut filtered: Vec<Socket> = filters
        .iter()
        .map(|(name, f)| {
            let s = listener(&ns);
            s.attach_filter(&program(f))
                .unwrap_or_else(|e| panic!("attach {name}: {e}"));
            s
        })
        .collect();

    // New events for every entry; update events (a new mark, no protocol state) for some;
    // destroy events for others.
    let specs = specs();
    for s in &specs {
        creator
            .execute(|w, seq| request::create(w, seq, &entry(s)).map(drop))
            .unwrap_or_else(|e| panic!("create {:?}: {e}", s.orig));
    }
    for s in specs.iter().step_by(3) {
        let update = ConntrackRepr {
            orig: Some(s.orig),
            mark: Some(0x2a),
            zone: s.zone,
            ..ConntrackRepr::default()
        };
        creator
            .execute(|w, seq| request::update(w, seq, &update).map(drop))
            .expect("update");
    }
    for s in specs.iter().step_by(4) {
        creator
            .execute(|w, seq| request::delete(w, seq, &key(s)).map(drop))
            .expect("delete");
    }

    const SEQ: u32 = 0x5e9;
    send_sentinel(&everything, SEQ);
    let events = drain(&mut everything, SEQ);
    let kinds: Vec<_> = events
        .iter()
        .map(|e| EventKind::of(&Messages::new(e).next().unwrap().unwrap()).expect("an event"))
        .collect();
    let count = |k| kinds.iter().filter(|&&x| x == k).count();
    assert_eq!(count(EventKind::New), specs.len());
    assert_eq!(count(EventKind::Destroy), specs.len().div_ceil(4));
    assert!(count(EventKind::Update) > 0);
    let parsed: Vec<ConntrackRepr> = events
        .iter()
        .map(|e| ConntrackRepr::parse_msg(Messages::new(e).next().unwrap().unwrap()).unwrap())
        .collect();

    for ((name, f), sock) in filters.iter().zip(&mut filtered) {
        send_sentinel(sock, SEQ);
        let got = drain(sock, SEQ);
        let want: Vec<&Vec<u8>> = events
            .iter()
            .zip(&parsed)
            .filter(|(_, r)| wants(f, r))
            .map(|(e, _)| e)
            .collect();
        assert!(
            !want.is_empty() && want.len() < events.len(),
            "filter {name:?} selects {} of {} events: not a discriminating test",
            want.len(),
            events.len()
        );
        let got: Vec<&Vec<u8>> = got.iter().collect();
        if got != want {
            let show = |v: &[&Vec<u8>]| {
                v.iter()
                    .map(|e| {
                        let r = ConntrackRepr::parse_msg(Messages::new(e).next().unwrap().unwrap())
                            .unwrap();
                        format!(
                            "{:?} mark {:?} zone {:?}",
                            r.orig.unwrap().src,
                            r.mark,
                            r.zone
                        )
                    })
                    .collect::<Vec<_>>()
            };
            panic!(
                "filter {name:?}: got {} events, want {}\n got {:#?}\nwant {:#?}",
                got.len(),
                want.len(),
                show(&got),
                show(&want)
            );
        }
    }
}
