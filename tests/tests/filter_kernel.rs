//! What the kernel itself does with `CTA_FILTER`, sent raw (the request exactly as built,
//! without the library's userspace matching): the facts the library's filters are built on.
//! Each case runs in its own throwaway network namespace.
//!
//! - IPv6 addresses are compared inverted (`!ipv6_addr_cmp` in `ctnetlink_filter_match_tuple`
//!   since `CTA_FILTER` appeared in 5.8, still so in 6.18): a dump or a flush filtered by an
//!   IPv6 address selects every entry *except* the ones with that address.
//! - IPv4 addresses and TCP/UDP ports are compared right.
//! - Ports of other protocols (SCTP here) are not compared at all.
//!
//! The test prints what the kernel selected, so a kernel that fixes the comparison shows up
//! as a failure of the first assertion with the selection in the output.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::ControlFlow;

use conntrack_codec::ct::request;
use conntrack_codec::ct::{l4proto, Conntrack, ConntrackRepr, NatRange, Tuple};
use conntrack_codec::filter::{filter_flags as ff, DumpFilter};
use conntrack_io::Socket;
use conntrack_tests::Netns;

fn v6(last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, last))
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 9, 0, last))
}

/// A UDP entry `src -> dst`, its destination NATed to `nat`.
fn dnat(src: IpAddr, dst: IpAddr, nat: IpAddr) -> ConntrackRepr {
    let orig = Tuple::udp(src, dst, 1000, 53);
    ConntrackRepr {
        orig: Some(orig),
        reply: Some(orig.inverted()),
        timeout: Some(300),
        nat_dst: Some(NatRange {
            min_addr: Some(nat),
            max_addr: Some(nat),
            ..NatRange::default()
        }),
        ..ConntrackRepr::default()
    }
}

/// The original source addresses of what a raw dump with `filter` returns, sorted.
fn raw_list(sock: &mut Socket, filter: &DumpFilter) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let _ = sock
        .dump(
            |w, seq| request::dump(w, seq, filter).map(drop),
            |nf| {
                let v = Conntrack::new_checked(nf).unwrap();
                out.push(v.orig().unwrap().unwrap().src.unwrap());
                ControlFlow::Continue(())
            },
        )
        .unwrap();
    out.sort();
    out
}

/// Three IPv6 and three IPv4 UDP entries, destination-NATed one by one.
fn table(sock: &mut Socket) {
    for i in 1..=3u8 {
        sock.create(&dnat(v6(i.into()), v6(0xa), v6(u16::from(i) + 4)))
            .unwrap();
        sock.create(&dnat(v4(i), v4(0xa), v4(i + 4))).unwrap();
    }
}

#[test]
fn the_kernel_compares_ipv6_addresses_inverted() {
    let ns = Netns::new("flt-kernel-v6");
    let mut sock = ns.socket();
    table(&mut sock);
    let reply_src = |addr| DumpFilter {
        family: if matches!(addr, IpAddr::V6(_)) { 10 } else { 2 },
        reply: Some((
            Tuple {
                src: Some(addr),
                proto: Some(l4proto::UDP),
                ..Tuple::default()
            },
            ff::IP_SRC | ff::PROTO_NUM,
        )),
        ..DumpFilter::default()
    };

    // IPv4: the entry whose reply comes from 10.9.0.5 is the one from 10.9.0.1.
    let got = raw_list(&mut sock, &reply_src(v4(5)));
    println!("raw IPv4 dump, reply source 10.9.0.5: {got:?}");
    assert_eq!(got, [v4(1)]);

    // IPv6: asked for the entry whose reply comes from fd00::5, the kernel returns the
    // other two.
    let got = raw_list(&mut sock, &reply_src(v6(5)));
    println!("raw IPv6 dump, reply source fd00::5: {got:?}");
    assert_eq!(got, [v6(2), v6(3)], "the kernel no longer inverts IPv6");

    // The same with the original source address.
    let orig_src = DumpFilter {
        family: 10,
        orig: Some((
            Tuple {
                src: Some(v6(2)),
                ..Tuple::default()
            },
            ff::IP_SRC,
        )),
        ..DumpFilter::default()
    };
    let got = raw_list(&mut sock, &orig_src);
    println!("raw IPv6 dump, original source fd00::2: {got:?}");
    assert_eq!(got, [v6(1), v6(3)]);

    // A raw filtered flush deletes the opposite entries too: the one it was asked to delete
    // is what is left.
    sock.execute(|w, seq| request::flush(w, seq, &reply_src(v6(5))).map(drop))
        .unwrap();
    let left = raw_list(&mut sock, &DumpFilter::family(10));
    println!("after a raw IPv6 flush of reply source fd00::5, left: {left:?}");
    assert_eq!(left, [v6(1)]);
    // IPv4 entries are untouched by the IPv6 flush.
    assert_eq!(raw_list(&mut sock, &DumpFilter::family(2)).len(), 3);
}

#[test]
fn the_kernel_ignores_ports_of_protocols_other_than_tcp_and_udp() {
    let ns = Netns::new("flt-kernel-sctp");
    let mut sock = ns.socket();
    for port in [1, 2] {
        let orig = Tuple::ports(l4proto::SCTP, v4(1), v4(2), port, 9);
        sock.create(&ConntrackRepr {
            orig: Some(orig),
            reply: Some(orig.inverted()),
            timeout: Some(300),
            ..ConntrackRepr::default()
        })
        .unwrap();
    }
    let by_port = DumpFilter {
        family: 2,
        orig: Some((
            Tuple {
                proto: Some(l4proto::SCTP),
                src_port: Some(1),
                ..Tuple::default()
            },
            ff::PROTO_NUM | ff::PROTO_SRC_PORT,
        )),
        ..DumpFilter::default()
    };
    let got = raw_list(&mut sock, &by_port);
    println!("raw dump of SCTP source port 1: {} entries", got.len());
    assert_eq!(got.len(), 2, "the kernel now compares SCTP ports");
}
