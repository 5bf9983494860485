//! Raw ctnetlink requests and small helpers shared by the `io_*` live tests.
//!
//! Requests are built with the codec's `Writer`, the way `capture-fixtures` builds them,
//! until the conntrack builders of the codec exist. Entry `i` is an IPv4 TCP flow from
//! `10.x.y.z` (the low 24 bits of `i`), port 40000, to 192.0.2.1 port 80.
#![allow(dead_code)]

use std::ops::ControlFlow;

use conntrack_codec::nfnl::{ct_msg, msg_type, NfGenMsg, NfMsg, Subsystem};
use conntrack_codec::nl::{flags, Writer};
use conntrack_codec::Result;
use conntrack_io::Socket;

pub const AF_INET: u8 = 2;
const IPPROTO_TCP: u8 = 6;
const DST: [u8; 4] = [192, 0, 2, 1];

/// Top-level attribute numbers (`enum ctattr_type`).
pub mod cta {
    pub const TUPLE_ORIG: u16 = 1;
    pub const TUPLE_REPLY: u16 = 2;
    pub const STATUS: u16 = 3;
    pub const PROTOINFO: u16 = 4;
    pub const TIMEOUT: u16 = 7;
    pub const MARK: u16 = 8;
    pub const FILTER: u16 = 25;
    /// New in Linux 6.14; its policy is `NLA_REJECT`.
    pub const TIMESTAMP_EVENT: u16 = 27;
    /// Inside a tuple.
    pub const TUPLE_IP: u16 = 1;
    pub const TUPLE_PROTO: u16 = 2;
    /// Inside `TUPLE_IP`.
    pub const IP_V4_SRC: u16 = 1;
    pub const IP_V4_DST: u16 = 2;
    /// Inside `TUPLE_PROTO`.
    pub const PROTO_NUM: u16 = 1;
    pub const PROTO_SRC_PORT: u16 = 2;
    pub const PROTO_DST_PORT: u16 = 3;
    /// Inside `FILTER`.
    pub const FILTER_ORIG_FLAGS: u16 = 1;
}

/// The source address of entry `i`.
pub fn src_of(i: u32) -> [u8; 4] {
    let [_, a, b, c] = i.to_be_bytes();
    [10, a, b, c]
}

fn nfgen(w: &mut Writer<'_>, family: u8) -> Result<()> {
    NfGenMsg {
        family,
        version: 0,
        res_id: 0,
    }
    .emit(w)
}

fn tuple(
    w: &mut Writer<'_>,
    kind: u16,
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
) -> Result<()> {
    w.nest(kind, |w| {
        w.nest(cta::TUPLE_IP, |w| {
            w.attr(cta::IP_V4_SRC, &src)?;
            w.attr(cta::IP_V4_DST, &dst)
        })?;
        w.nest(cta::TUPLE_PROTO, |w| {
            w.attr_u8(cta::PROTO_NUM, IPPROTO_TCP)?;
            w.attr_u16_be(cta::PROTO_SRC_PORT, sport)?;
            w.attr_u16_be(cta::PROTO_DST_PORT, dport)
        })
    })
}

/// Both tuples of entry `i`.
fn tuples(w: &mut Writer<'_>, i: u32) -> Result<()> {
    tuple(w, cta::TUPLE_ORIG, src_of(i), DST, 40000, 80)?;
    tuple(w, cta::TUPLE_REPLY, DST, src_of(i), 80, 40000)
}

/// A create (CT_NEW with CREATE|EXCL) of entry `i`; `extra` writes more attributes.
pub fn create_with(
    w: &mut Writer<'_>,
    seq: u32,
    i: u32,
    extra: impl FnOnce(&mut Writer<'_>) -> Result<()>,
) -> Result<()> {
    let kind = msg_type(Subsystem::Ctnetlink, ct_msg::NEW);
    w.message(kind, flags::CREATE | flags::EXCL, seq, 0, |w| {
        nfgen(w, AF_INET)?;
        tuples(w, i)?;
        // CTA_PROTOINFO / CTA_PROTOINFO_TCP / STATE = ESTABLISHED (3).
        w.nest(cta::PROTOINFO, |w| w.nest(1, |w| w.attr_u8(1, 3)))?;
        // SEEN_REPLY | ASSURED | CONFIRMED: a create without CONFIRMED gets EBUSY.
        w.attr_u32_be(cta::STATUS, 0xe)?;
        w.attr_u32_be(cta::MARK, i)?;
        extra(w)
    })?;
    Ok(())
}

/// A create of entry `i` with a 300 s timeout.
pub fn create(w: &mut Writer<'_>, seq: u32, i: u32) -> Result<()> {
    create_with(w, seq, i, |w| w.attr_u32_be(cta::TIMEOUT, 300))
}

/// A delete of entry `i`.
pub fn delete(w: &mut Writer<'_>, seq: u32, i: u32) -> Result<()> {
    let kind = msg_type(Subsystem::Ctnetlink, ct_msg::DELETE);
    w.message(kind, 0, seq, 0, |w| {
        nfgen(w, AF_INET)?;
        tuple(w, cta::TUPLE_ORIG, src_of(i), DST, 40000, 80)
    })?;
    Ok(())
}

/// A GET of entry `i`.
pub fn get(w: &mut Writer<'_>, seq: u32, i: u32) -> Result<()> {
    let kind = msg_type(Subsystem::Ctnetlink, ct_msg::GET);
    w.message(kind, 0, seq, 0, |w| {
        nfgen(w, AF_INET)?;
        tuple(w, cta::TUPLE_ORIG, src_of(i), DST, 40000, 80)
    })?;
    Ok(())
}

/// A dump of the IPv4 entries (the socket adds `NLM_F_DUMP`).
pub fn dump_ipv4(w: &mut Writer<'_>, seq: u32) -> Result<()> {
    let kind = msg_type(Subsystem::Ctnetlink, ct_msg::GET);
    w.message(kind, 0, seq, 0, |w| nfgen(w, AF_INET))?;
    Ok(())
}

/// The original source address of a dumped or fetched entry.
pub fn orig_src(entry: NfMsg<'_>) -> [u8; 4] {
    let orig = entry
        .attrs()
        .find(cta::TUPLE_ORIG)
        .unwrap()
        .expect("CTA_TUPLE_ORIG");
    let ip = orig
        .nested()
        .find(cta::TUPLE_IP)
        .unwrap()
        .expect("CTA_TUPLE_IP");
    let src = ip
        .nested()
        .find(cta::IP_V4_SRC)
        .unwrap()
        .expect("CTA_IP_V4_SRC");
    src.array().unwrap()
}

/// The index `i` of a test entry, from its original source address.
pub fn index_of(entry: NfMsg<'_>) -> u32 {
    let [_, a, b, c] = orig_src(entry);
    u32::from_be_bytes([0, a, b, c])
}

/// Creates entries `0..n` with a bulk request; every one must succeed.
pub fn create_entries(sock: &mut Socket, n: u32) {
    let mut failures = 0;
    let summary = sock
        .bulk(
            n as usize,
            64,
            |i, w, seq| create(w, seq, i as u32),
            |i, r| {
                if let Err(e) = r {
                    failures += 1;
                    eprintln!("create {i}: {e}");
                }
            },
        )
        .expect("bulk create");
    assert_eq!(failures, 0);
    assert_eq!(summary.succeeded, n as usize);
}

/// Counts the IPv4 entries with a dump.
pub fn count_entries(sock: &mut Socket) -> u64 {
    let summary = sock
        .dump(dump_ipv4, |_| ControlFlow::Continue(()))
        .expect("dump");
    summary.delivered
}
