//! Regression tests for what the fuzz campaigns found (docs/fuzzing.md).
//!
//! Each finding has two tests: a small case built here with the codec's writer, which runs
//! on every target (big-endian s390x under Miri included), and a replay of the raw input
//! the fuzzer saved, committed under `tests/regressions/<target>/`. The raw inputs are
//! little-endian netlink bytes, as the fuzzer produced them on x86_64, so they are replayed
//! on little-endian targets only. `.ci/fuzz` also hands every committed input back to its
//! fuzz target (those of the structured targets, such as `requests`, can only be replayed
//! there).

use byteorder::{ByteOrder, NativeEndian};
use conntrack_codec::ct::{Conntrack, ConntrackRepr};
use conntrack_codec::exp::{Expect, ExpectRepr};
use conntrack_codec::nfnl::{ct_msg, exp_msg, msg_type, NfMsg, Subsystem};
use conntrack_codec::nl::{flags, Messages, NlMsg, NlMsgHeader, Writer};

const CT_NEW: u16 = msg_type(Subsystem::Ctnetlink, ct_msg::NEW);
const EXP_NEW: u16 = msg_type(Subsystem::CtnetlinkExp, exp_msg::NEW);

/// An attribute header and payload as raw bytes (host order), written without the writer's
/// help so that the input does not depend on the code under test.
fn raw_attr(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let mut h = [0u8; 4];
    NativeEndian::write_u16(&mut h[0..2], (4 + payload.len()) as u16);
    NativeEndian::write_u16(&mut h[2..4], kind);
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// A message of type `kind` (nfgenmsg family 2) around `attrs`.
fn message(kind: u16, attrs: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; NlMsgHeader::LEN];
    NlMsgHeader {
        len: (NlMsgHeader::LEN + 4 + attrs.len()) as u32,
        kind,
        flags: flags::MULTI,
        seq: 1,
        pid: 0,
    }
    .emit(&mut out)
    .unwrap();
    out.extend_from_slice(&[2, 0, 0, 0]);
    out.extend_from_slice(attrs);
    out
}

/// A message of type `kind` whose attributes are the whole of `data` (what the fuzz targets
/// do with their input besides reading it as messages), family `data[0]`.
fn synth(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut out = message(kind, data);
    out[16] = data.first().copied().unwrap_or(2);
    out
}

/// The fuzz target `roundtrip`'s property: parse → emit into `buffer_len()` bytes → parse
/// gives the same value, less the unknown attributes found inside nests.
fn round_trips(msg: NlMsg<'_>) {
    let Ok(nf) = NfMsg::new_checked(msg) else {
        return;
    };
    if let Ok(first) = ConntrackRepr::parse(&nf) {
        let mut buf = vec![0u8; first.buffer_len()];
        let mut w = Writer::new(&mut buf);
        first
            .emit(&mut w, msg.kind(), msg.flags(), msg.seq())
            .unwrap();
        let msg2 = Messages::new(&buf).next().unwrap().unwrap();
        let second = ConntrackRepr::parse_msg(msg2).unwrap();
        let mut want = first.clone();
        want.unknown.kept.retain(|u| u.path == [0, 0]);
        want.unknown.overflow = 0;
        assert_eq!(second, want);
    }
    if let Ok(first) = ExpectRepr::parse(&nf) {
        let mut buf = vec![0u8; first.buffer_len()];
        let mut w = Writer::new(&mut buf);
        first
            .emit(&mut w, msg.kind(), msg.flags(), msg.seq())
            .unwrap();
        let msg2 = Messages::new(&buf).next().unwrap().unwrap();
        let second = ExpectRepr::parse_msg(msg2).unwrap();
        let mut want = first.clone();
        want.unknown.kept.retain(|u| u.path == [0, 0]);
        want.unknown.overflow = 0;
        assert_eq!(second, want);
    }
}

/// The fuzz targets `exp_view` and `ct_view`'s agreement property, for the getters the
/// findings were about.
fn views_agree(msg: NlMsg<'_>) {
    if let (Ok(v), Ok(r)) = (Expect::parse(msg), ExpectRepr::parse_msg(msg)) {
        assert_eq!(v.master(), Ok(r.master));
        assert_eq!(v.tuple(), Ok(r.tuple));
        assert_eq!(v.mask(), Ok(r.mask));
        assert_eq!(v.timeout(), Ok(r.timeout));
        assert_eq!(v.id(), Ok(r.id));
        assert_eq!(v.helper(), Ok(r.helper.as_deref()));
        assert_eq!(v.zone(), Ok(r.zone));
        assert_eq!(v.flags(), Ok(r.flags));
        assert_eq!(v.class(), Ok(r.class));
        assert_eq!(v.nat(), Ok(r.nat));
        assert_eq!(v.func(), Ok(r.func.as_deref()));
    }
    if let (Ok(v), Ok(r)) = (Conntrack::parse(msg), ConntrackRepr::parse_msg(msg)) {
        if let Some(h) = &r.helper {
            let name = v.helper_name().unwrap();
            assert!(name == Some(h.name.as_str()) || (h.name.is_empty() && name.is_none()));
            assert_eq!(v.helper_info(), Ok(h.info.as_deref()));
        }
        if let Some(s) = &r.secctx {
            let name = v.secctx().unwrap();
            assert!(name == Some(s.name.as_str()) || (s.name.is_empty() && name.is_none()));
        }
    }
}

/// Replays a raw fuzz input: its messages, then the input as the attributes of one
/// conntrack and one expectation message.
#[cfg(target_endian = "little")]
fn replay(data: &[u8], check: fn(NlMsg<'_>)) {
    for msg in Messages::new(data) {
        let Ok(msg) = msg else { break };
        check(msg);
    }
    for kind in [CT_NEW, EXP_NEW] {
        let bytes = synth(kind, data);
        check(NlMsg::new_checked(&bytes).unwrap());
    }
}

// --- Finding 1 (targets `roundtrip`, `requests`): the writer dropped NLA_F_NET_BYTEORDER,
// so an unknown attribute that carried it was written back as another attribute.

#[test]
fn unknown_attribute_with_net_byteorder_round_trips() {
    for kind in [0x3466 | 0x4000, 0x3fff | 0x8000 | 0x4000, 200 | 0x4000] {
        let mut attrs = Vec::new();
        raw_attr(&mut attrs, kind, b"p\0");
        for k in [CT_NEW, EXP_NEW] {
            let bytes = message(k, &attrs);
            let msg = NlMsg::new_checked(&bytes).unwrap();
            round_trips(msg);
        }
        let r = ConntrackRepr::parse_msg(NlMsg::new_checked(&message(CT_NEW, &attrs)).unwrap())
            .unwrap();
        assert_eq!(r.unknown.kept[0].raw_kind, kind);
    }
}

#[cfg(target_endian = "little")]
#[test]
fn replay_roundtrip_net_byteorder_unknown() {
    replay(
        include_bytes!("regressions/roundtrip/net-byteorder-unknown-ed44e895"),
        round_trips,
    );
}

// --- Finding 2 (target `exp_view`): of a duplicated attribute, the expectation view read
// the first and `ExpectRepr` (like the kernel) the last.

#[test]
fn expectation_view_reads_the_last_of_duplicates() {
    let mut attrs = Vec::new();
    raw_attr(&mut attrs, 4, &300u32.to_be_bytes()); // CTA_EXPECT_TIMEOUT
    raw_attr(&mut attrs, 6, b"ftp\0"); // CTA_EXPECT_HELP_NAME
    raw_attr(&mut attrs, 4, &0u32.to_be_bytes());
    raw_attr(&mut attrs, 6, b"sip\0");
    let bytes = message(EXP_NEW, &attrs);
    let msg = NlMsg::new_checked(&bytes).unwrap();
    let v = Expect::parse(msg).unwrap();
    assert_eq!(v.timeout(), Ok(Some(0)));
    assert_eq!(v.helper(), Ok(Some("sip")));
    views_agree(msg);
}

#[cfg(target_endian = "little")]
#[test]
fn replay_exp_view_duplicate_timeout() {
    replay(
        include_bytes!("regressions/exp_view/duplicate-timeout-54f76dd7"),
        views_agree,
    );
}

// --- Finding 3 (target `ct_view`): inside CTA_HELP and CTA_SECCTX, the conntrack view read
// the first of duplicated names and `ConntrackRepr` the last.

#[test]
fn conntrack_view_reads_the_last_of_duplicate_nested_names() {
    let mut help = Vec::new();
    raw_attr(&mut help, 1, b"ftp\0"); // CTA_HELP_NAME
    raw_attr(&mut help, 2, &[1, 2]); // CTA_HELP_INFO
    raw_attr(&mut help, 1, b"sip\0");
    raw_attr(&mut help, 2, &[3]);
    let mut ctx = Vec::new();
    raw_attr(&mut ctx, 1, b"one\0"); // CTA_SECCTX_NAME
    raw_attr(&mut ctx, 1, b"two\0");
    let mut attrs = Vec::new();
    raw_attr(&mut attrs, 5 | 0x8000, &help); // CTA_HELP
    raw_attr(&mut attrs, 19 | 0x8000, &ctx); // CTA_SECCTX
    let bytes = message(CT_NEW, &attrs);
    let msg = NlMsg::new_checked(&bytes).unwrap();
    let v = Conntrack::parse(msg).unwrap();
    assert_eq!(v.helper_name(), Ok(Some("sip")));
    assert_eq!(v.helper_info(), Ok(Some(&[3u8][..])));
    assert_eq!(v.secctx(), Ok(Some("two")));
    views_agree(msg);
}

/// The fuzz target `sync_msg`'s property: for every conntrack or expectation message the
/// codec accepts, view → model → emit → view → model gives the same model; returns how many
/// were checked.
fn sync_round_trips(datagram: &[u8]) -> usize {
    use conntrack_codec::sync::{emit_ct, emit_exp, Body, Messages as SyncMessages};
    use conntrack_codec::sync::{SyncCt, SyncExp};
    fn again(out: &[u8]) -> &[u8] {
        let m = SyncMessages::new(out).next().unwrap().unwrap();
        let Body::Data { attrs, .. } = m.body().unwrap() else {
            panic!("not data")
        };
        attrs
    }
    let mut checked = 0;
    for m in SyncMessages::new(datagram) {
        let Ok(m) = m else { break };
        let Ok(Body::Data { kind, attrs }) = m.body() else {
            continue;
        };
        let mut out = [0u8; 2048];
        if kind.is_expect() {
            let Ok(e) = SyncExp::new_checked(attrs).and_then(|v| v.to_repr()) else {
                continue;
            };
            let n = emit_exp(&mut out, kind, 0, 1, &e).unwrap();
            let back = SyncExp::new_checked(again(&out[..n])).unwrap().to_repr();
            assert_eq!(back.unwrap(), e);
        } else {
            let Ok(r) = SyncCt::new_checked(attrs).and_then(|v| v.to_repr()) else {
                continue;
            };
            let n = emit_ct(&mut out, kind, 0, 1, &r).unwrap();
            let back = SyncCt::new_checked(again(&out[..n])).unwrap().to_repr();
            assert_eq!(back.unwrap(), r);
        }
        checked += 1;
    }
    checked
}

/// Found by `sync_msg`: an ICMP entry with a code and an identifier but no type lost both
/// when written back (the emitter wrote the three ICMP fields only together).
#[test]
fn sync_icmp_entry_with_some_fields_round_trips() {
    use conntrack_codec::sync::{nta, NtaWriter};
    let mut attrs = [0u8; 64];
    let mut w = NtaWriter::new(&mut attrs);
    w.attr(nta::IPV4, &[192, 0, 2, 3, 198, 51, 100, 1]).unwrap();
    w.u8(nta::L4PROTO, 1).unwrap();
    w.u8(nta::ICMP_CODE, 0).unwrap();
    w.attr(nta::ICMP_ID, &[0x34, 0x12]).unwrap();
    let len = w.len();
    let mut msg = vec![0x10, 0, 0, 0, 0, 0, 0, 1];
    msg[3] = (8 + len) as u8;
    msg.extend_from_slice(&attrs[..len]);
    assert_eq!(sync_round_trips(&msg), 1);
}

/// The raw input of the finding above (sync messages are big-endian: replayed everywhere).
#[test]
fn replay_sync_msg_icmp_partial() {
    let n = sync_round_trips(include_bytes!("regressions/sync_msg/icmp-partial-828501bd"));
    assert!(n >= 1);
}

/// Found by `sync_msg`: an entry whose message carries source NAT (address and port) while
/// its status says no NAT was done lost the NAT when written back (the emitter derived NAT
/// from the status alone).
#[test]
fn sync_nat_without_nat_status_round_trips() {
    use conntrack_codec::sync::{nta, NtaWriter};
    let mut attrs = [0u8; 96];
    let mut w = NtaWriter::new(&mut attrs);
    w.attr(nta::IPV4, &[192, 0, 2, 11, 198, 51, 100, 80])
        .unwrap();
    w.u32_be(nta::STATUS, 0x601).unwrap();
    w.u8(nta::L4PROTO, 6).unwrap();
    w.attr(nta::PORT, &[0x75, 0x37, 0, 80]).unwrap();
    w.attr(nta::SNAT_IPV4, &[203, 0, 113, 7]).unwrap();
    w.attr(nta::SPAT_PORT, &[0x88, 0x13]).unwrap();
    let len = w.len();
    let mut msg = vec![0x10, 0, 0, 0, 0, 0, 0, 1];
    msg[3] = (8 + len) as u8;
    msg.extend_from_slice(&attrs[..len]);
    assert_eq!(sync_round_trips(&msg), 1);
}

/// The raw input of the finding above.
#[test]
fn replay_sync_msg_nat_without_status() {
    let n = sync_round_trips(include_bytes!(
        "regressions/sync_msg/nat-without-status-35494c9a"
    ));
    assert!(n >= 1);
}

/// Found by `sync_msg`: an expectation message without the expected tuple's protocol read
/// back with the master's (the emitter writes the master's protocol in every group, as
/// conntrackd does); the view now reads a missing group protocol as the master's.
#[test]
fn sync_expectation_group_without_protocol_round_trips() {
    use conntrack_codec::sync::{nta_exp, NtaWriter};
    let mut attrs = [0u8; 96];
    let mut w = NtaWriter::new(&mut attrs);
    w.attr(nta_exp::MASTER_IPV4, &[127, 0, 0, 1, 127, 0, 0, 1])
        .unwrap();
    w.u8(nta_exp::MASTER_L4PROTO, 6).unwrap();
    w.attr(nta_exp::MASTER_PORT, &[0xb1, 0xb6, 0, 21]).unwrap();
    w.attr(nta_exp::EXPECT_IPV4, &[127, 0, 0, 1, 127, 0, 0, 1])
        .unwrap();
    w.attr(nta_exp::EXPECT_PORT, &[0, 0, 0xc3, 0x50]).unwrap();
    let len = w.len();
    let mut msg = vec![0x13, 0, 0, 0, 0, 0, 0, 1];
    msg[3] = (8 + len) as u8;
    msg.extend_from_slice(&attrs[..len]);
    assert_eq!(sync_round_trips(&msg), 1);
}

/// The raw input of the finding above.
#[test]
fn replay_sync_msg_exp_group_without_proto() {
    let n = sync_round_trips(include_bytes!(
        "regressions/sync_msg/exp-group-without-proto-4f79923d"
    ));
    assert!(n >= 1);
}

/// `SyncCt::check` (what a receiver that keeps only the bytes runs) refuses exactly what
/// `SyncCt::read_into` refuses, case by case: each thing the view's making leaves to check.
#[test]
fn sync_check_agrees_with_the_full_read() {
    use conntrack_codec::sync::{nta, NtaWriter, SyncCt};
    type Build = fn(&mut NtaWriter<'_>);
    let cases: [(&str, Build, bool); 9] = [
        ("complete", |_| {}, true),
        ("no addresses", |_| {}, false),
        ("no protocol", |_| {}, false),
        (
            "master without protocol",
            |w| {
                w.attr(nta::MASTER_IPV4, &[10, 0, 0, 1, 10, 0, 0, 2])
                    .unwrap();
            },
            false,
        ),
        (
            "master with protocol",
            |w| {
                w.attr(nta::MASTER_IPV4, &[10, 0, 0, 1, 10, 0, 0, 2])
                    .unwrap();
                w.u8(nta::MASTER_L4PROTO, 6).unwrap();
            },
            true,
        ),
        (
            "helper without NUL",
            |w| w.attr(nta::HELPER_NAME, b"ftp").unwrap(),
            false,
        ),
        (
            "helper",
            |w| w.c_str(nta::HELPER_NAME, "ftp").unwrap(),
            true,
        ),
        (
            "labels of 5 bytes",
            |w| w.attr(nta::LABELS, &[0, 0, 0, 0, 1]).unwrap(),
            false,
        ),
        (
            "a label beyond 128",
            |w| {
                let mut l = [0u8; 20];
                l[19] = 1;
                w.attr(nta::LABELS, &l).unwrap();
            },
            false,
        ),
    ];
    for (name, extra, ok) in cases {
        let mut attrs = [0u8; 128];
        let mut w = NtaWriter::new(&mut attrs);
        if name != "no addresses" {
            w.attr(nta::IPV4, &[10, 0, 0, 1, 10, 0, 0, 2]).unwrap();
        }
        if name != "no protocol" {
            w.u8(nta::L4PROTO, 6).unwrap();
        }
        w.attr(nta::PORT, &[0x30, 0x39, 0, 80]).unwrap();
        extra(&mut w);
        let len = w.len();
        let v = SyncCt::new_checked(&attrs[..len]).unwrap();
        assert_eq!(v.check().is_ok(), ok, "{name}: check");
        assert_eq!(v.to_repr().is_ok(), ok, "{name}: read");
    }
}
