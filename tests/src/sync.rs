//! What the live tests of state synchronization (the `conntrack-sync` engine and the
//! `conntrackd` program) make in their namespaces: established TCP entries and an FTP
//! master with an expectation.

use std::net::{IpAddr, Ipv4Addr};
use std::ops::ControlFlow;

use conntrack_codec::ct::{ConntrackRepr, Helper, Tuple};
use conntrack_codec::exp::{ExpectFlags, ExpectRepr};

use crate::Netns;

/// An established TCP entry of side `side` (1 or 2) of a pair, number `i` (below 65536),
/// with mark `mark`: 10.(200+side).(i>>8).(i&255) to 192.0.2.side:443, ten minutes of
/// timeout.
pub fn entry(side: u8, i: u32, mark: u32) -> ConntrackRepr {
    let src = IpAddr::V4(Ipv4Addr::new(10, 200 + side, (i >> 8) as u8, i as u8));
    let dst = IpAddr::V4(Ipv4Addr::new(192, 0, 2, side));
    let orig = Tuple::tcp(src, dst, 20000 + (i % 30000) as u16, 443);
    ConntrackRepr {
        mark: Some(mark),
        ..ConntrackRepr::replied(orig, 600)
    }
}

/// An FTP control connection number `i` (10.201.9.i to 192.0.2.21:21, mark 77000+i) with
/// the `ftp` helper, and an expectation of its: the data connection to port 50000+i, five
/// minutes of timeout.
pub fn ftp_master_and_expectation(i: u16) -> (ConntrackRepr, ExpectRepr) {
    let mut m = entry(1, 900 + u32::from(i), 77_000 + u32::from(i));
    let o = Tuple::tcp(
        IpAddr::V4(Ipv4Addr::new(10, 201, 9, i as u8)),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 21)),
        40000 + i,
        21,
    );
    m.orig = Some(o);
    m.reply = Some(o.inverted());
    m.helper = Helper::named("ftp").ok();
    let src = o.src.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let dst = o.dst.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let t = Tuple::tcp(src, dst, 0, 50_000 + i);
    let mask = Tuple::tcp(
        IpAddr::V4(Ipv4Addr::BROADCAST),
        IpAddr::V4(Ipv4Addr::BROADCAST),
        0,
        0xffff,
    );
    let e = ExpectRepr {
        family: 2,
        master: Some(o),
        tuple: Some(t),
        mask: Some(mask),
        timeout: Some(300),
        flags: Some(ExpectFlags(0)),
        ..ExpectRepr::default()
    };
    (m, e)
}

/// The destination ports of the namespace's IPv4 expectations, sorted.
///
/// # Panics
/// If the dump fails.
pub fn kernel_expectation_ports(ns: &Netns) -> Vec<u16> {
    let mut ports = Vec::new();
    let _ = ns
        .socket()
        .exp_list(2, |e| {
            if let Ok(x) = ExpectRepr::try_from(&e) {
                ports.extend(x.tuple.and_then(|t| t.dst_port));
            }
            ControlFlow::Continue(())
        })
        .expect("expectation dump");
    ports.sort_unstable();
    ports
}
