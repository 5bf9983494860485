//! Tests over replies captured from this machine's kernel (`codec/fixtures/`, made by
//! `tests/src/bin/capture-fixtures.rs`; its README says what each file holds).
//!
//! Every file is converted to the target's byte order first, so these tests also run on
//! big-endian targets (under Miri on s390x in CI).

use core::fmt::{self, Write};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ct::{
    Conntrack, ConntrackRepr, EventKind, ExpStatsCpu, ProtoInfo, SctpState, StatsCpu, StatsGlobal,
    Status, TcpFlags, TcpState,
};
use crate::exp::{Expect, ExpectFlags, ExpectRepr};
use crate::fmt::{CtLine, ExpLine, Origin, Output, Style};
use crate::nfnl::{ct_msg, exp_msg, NfMsg, Subsystem};
use crate::nl::{flags, Attrs, Control, Messages, NlMsg, Writer};
use crate::testutil::fixture;
use crate::Error;

/// A `fmt::Write` that only counts (the codec has no allocator).
struct Sink(usize);

impl Write for Sink {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

fn walk(attrs: Attrs<'_>, depth: usize, count: &mut usize) -> Result<(), Error> {
    for a in attrs {
        let a = a?;
        *count += 1;
        if a.is_nested() && depth < 8 {
            walk(a.nested(), depth + 1, count)?;
        }
    }
    Ok(())
}

fn only_message(bytes: &[u8]) -> NlMsg<'_> {
    let mut it = Messages::new(bytes);
    let m = it.next().unwrap().unwrap();
    assert!(it.next().is_none());
    m
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// What one fixture holds, by message kind.
#[derive(Default, Debug)]
struct Census {
    entries: usize,
    events: usize,
    expectations: usize,
    acks: usize,
    errors: usize,
    dones: usize,
    stats: usize,
}

/// Reads every message of a fixture with every reader that applies, checks that the view
/// and the repr agree, that the repr survives emit → parse, and that every formatter runs.
fn check_all(name: &str, bytes: &[u8]) -> Census {
    let mut c = Census::default();
    for m in Messages::new(bytes) {
        let m = m.unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(ctl) = m.control().unwrap_or_else(|e| panic!("{name}: {e}")) {
            match ctl {
                Control::Error(e) if e.is_ack() => c.acks += 1,
                Control::Error(_) => c.errors += 1,
                Control::Done(d) => {
                    assert_eq!(d.errno(), 0, "{name}");
                    c.dones += 1;
                }
                other => panic!("{name}: unexpected {other:?}"),
            }
            continue;
        }
        let nf = NfMsg::new_checked(m).unwrap();
        match (nf.subsystem(), nf.msg_num()) {
            (Subsystem::Ctnetlink, ct_msg::NEW | ct_msg::DELETE) => {
                let r = ConntrackRepr::parse(&nf).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(r.unknown.is_empty(), "{name}: unknown {:?}", r.unknown);
                let v = Conntrack::new_checked(nf).unwrap();
                assert_eq!(v.orig().unwrap(), r.orig, "{name}");
                assert_eq!(v.reply().unwrap(), r.reply, "{name}");
                assert_eq!(v.status().unwrap(), r.status, "{name}");
                assert_eq!(v.protoinfo().unwrap(), r.protoinfo, "{name}");
                assert_eq!(v.counters_orig().unwrap(), r.counters_orig, "{name}");
                assert_eq!(v.timestamp().unwrap(), r.timestamp, "{name}");
                assert_eq!(v.labels().unwrap(), r.labels, "{name}");
                assert_eq!(v.zone().unwrap(), r.zone, "{name}");
                assert_eq!(
                    v.helper_name().unwrap(),
                    r.helper.as_ref().map(|h| h.name.as_str()),
                    "{name}"
                );
                assert_eq!(v.unknown_count(), 0, "{name}");
                let mut buf = [0u8; 2048];
                let mut w = Writer::new(&mut buf);
                r.emit(&mut w, m.kind(), m.flags(), m.seq()).unwrap();
                let again = ConntrackRepr::parse_msg(only_message(w.written())).unwrap();
                assert_eq!(again, r, "{name}: emit then parse");
                let event = if m.is_multi() { None } else { v.event_kind() };
                let origin = event.map_or(Origin::Dump, Origin::Event);
                for style in [Style::Default, Style::Save, Style::Xml] {
                    let out = Output {
                        style,
                        extended: true,
                        id: true,
                        ktimestamp: true,
                        ..Output::default()
                    };
                    let mut sink = Sink(0);
                    write!(sink, "{}", CtLine::new(&r, origin, &out, &())).unwrap();
                    assert!(sink.0 > 20, "{name}");
                }
                if event.is_some() {
                    c.events += 1;
                } else {
                    c.entries += 1;
                }
            }
            (Subsystem::CtnetlinkExp, exp_msg::NEW | exp_msg::DELETE) => {
                let r = ExpectRepr::parse(&nf).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(r.unknown.is_empty(), "{name}: unknown {:?}", r.unknown);
                let v = Expect::new_checked(nf).unwrap();
                assert_eq!(v.tuple().unwrap(), r.tuple, "{name}");
                assert_eq!(v.master().unwrap(), r.master, "{name}");
                assert_eq!(v.nat().unwrap(), r.nat, "{name}");
                let mut buf = [0u8; 1024];
                let mut w = Writer::new(&mut buf);
                r.emit(&mut w, m.kind(), m.flags(), m.seq()).unwrap();
                let again = ExpectRepr::parse_msg(only_message(w.written())).unwrap();
                assert_eq!(again, r, "{name}: emit then parse");
                let mut sink = Sink(0);
                write!(sink, "{}", ExpLine::new(&r, None, &Output::default())).unwrap();
                if m.is_multi() {
                    c.expectations += 1;
                } else {
                    c.events += 1;
                }
            }
            (Subsystem::Ctnetlink, ct_msg::GET_STATS_CPU) => {
                StatsCpu::parse(&nf).unwrap();
                c.stats += 1;
            }
            (Subsystem::Ctnetlink, ct_msg::GET_STATS) => {
                StatsGlobal::parse(&nf).unwrap();
                c.stats += 1;
            }
            // The kernel types expectation statistics as CTNETLINK message 3.
            (Subsystem::Ctnetlink, exp_msg::GET_STATS_CPU) => {
                ExpStatsCpu::parse(&nf).unwrap();
                c.stats += 1;
            }
            other => panic!("{name}: unexpected message {other:?}"),
        }
    }
    c
}

macro_rules! each_fixture {
    ($check:ident; $($name:literal),* $(,)?) => {
        $( $check($name, &fixture!($name)); )*
    };
}

#[test]
fn every_capture_parses_agrees_round_trips_and_formats() {
    fn check(name: &str, bytes: &[u8]) {
        let c = check_all(name, bytes);
        let total = c.entries + c.events + c.expectations + c.acks + c.errors + c.dones + c.stats;
        assert!(total > 0, "{name}: empty");
    }
    each_fixture!(check;
        "ack_create", "ack_create_labels", "ack_create_seqadj", "ack_create_synproxy",
        "ack_delete", "ack_delete_id_only", "ack_exp_create", "ack_exp_delete",
        "ack_exp_flush", "ack_flush", "ack_flush_ipv4_v1", "ack_update", "batch_two_creates",
        "dump_acct_tstamp", "dump_after_ctrzero", "dump_ctrzero", "dump_dying",
        "dump_exp_ftp", "dump_exp_request", "dump_filter_mark", "dump_filter_status",
        "dump_filter_tuple", "dump_ftp_masters", "dump_helper", "dump_ipv4_dccp",
        "dump_ipv4_generic99", "dump_ipv4_gre", "dump_ipv4_icmp", "dump_ipv4_sctp",
        "dump_ipv4_tcp", "dump_ipv4_tcp_wscale", "dump_ipv4_udp", "dump_ipv4_udplite",
        "dump_ipv6_dccp", "dump_ipv6_generic99", "dump_ipv6_gre", "dump_ipv6_icmpv6",
        "dump_ipv6_sctp", "dump_ipv6_tcp_wscale", "dump_ipv6_udp", "dump_ipv6_udplite",
        "dump_labels", "dump_nat_request", "dump_nat_traffic", "dump_seqadj",
        "dump_synproxy", "dump_traffic", "dump_unconfirmed", "dump_zone",
        "dump_zone_filter7", "echo_create", "echo_create_nolistener",
        "error_create_no_reply_tuple", "error_create_unconfirmed_status",
        "error_delete_enoent", "error_delete_zone_missing", "error_dump_filter_flags",
        "error_dump_filter_icmp_flag", "error_eexist", "error_eexist_cap_ack",
        "error_exp_class", "error_exp_delete_enoent", "error_exp_eexist",
        "error_exp_fn_unknown", "error_exp_helper_name_no_nul",
        "error_exp_helper_name_too_long", "error_exp_master_enoent",
        "error_exp_master_nohelper", "error_extack", "error_extack_cap_ack",
        "error_family_mismatch", "error_get_enoent", "error_get_no_tuple",
        "error_helper_change", "error_helper_name_too_long", "error_helper_unknown",
        "error_helper_wrong_proto", "error_ip_short", "error_labels_too_long",
        "error_no_ext_ack", "error_proto_no_num", "error_tcp_state_invalid",
        "error_tuple_mixed_families", "error_tuple_no_ip", "error_tuple_no_proto",
        "error_tuple_orig_short", "error_unknown_msg_type", "error_update_enoent",
        "error_update_status", "events_ct", "events_exp", "events_ftp", "events_traffic",
        "exp_stats_cpu", "get_exp", "get_ipv4_tcp", "get_ipv4_tcp_ack", "get_ipv6_tcp",
        "reply_create_ipv4_dccp", "reply_create_ipv6_dccp", "reply_create_labels_norule",
        "reply_create_nat_dst", "reply_create_nat_ipv6", "reply_create_nat_src",
        "reply_create_nat_src_nohooks", "reply_create_trailing_bytes",
        "reply_create_unflagged_nests", "reply_create_unknown_attr",
        "reply_create_zone_u32", "reply_exp_create_helper_unknown", "reply_exp_update",
        "reply_get_no_nfgenmsg", "reply_update_labels_norule", "stats", "stats_ack",
        "stats_cpu",
    );
}

/// The entries of a dump fixture.
fn entries<const N: usize>(bytes: &[u8]) -> heapless::Vec<ConntrackRepr, N> {
    let mut v = heapless::Vec::new();
    for m in Messages::new(bytes) {
        let m = m.unwrap();
        if m.is_control() {
            continue;
        }
        v.push(ConntrackRepr::parse_msg(m).unwrap()).unwrap();
    }
    v
}

#[test]
fn ack_of_a_create() {
    let f = fixture!("ack_create");
    let m = only_message(&f);
    let Some(Control::Error(e)) = m.control().unwrap() else {
        panic!("expected NLMSG_ERROR")
    };
    assert!(e.is_ack());
    assert_eq!(m.flags() & flags::CAPPED, flags::CAPPED);
    assert_eq!(e.request().seq, 1);
    assert_eq!(e.request().kind, 0x0100);
    assert!(e.request_payload().is_empty());
}

#[test]
fn eexist_echoes_the_whole_request() {
    let f = fixture!("error_eexist");
    let m = only_message(&f);
    let Some(Control::Error(e)) = m.control().unwrap() else {
        panic!("expected NLMSG_ERROR")
    };
    assert_eq!(e.errno(), 17);
    assert_eq!(e.request().seq, 10);
    assert_eq!(e.request().len as usize, 16 + e.request_payload().len());
    let mut n = 0;
    walk(Attrs::new(&e.request_payload()[4..]), 0, &mut n).unwrap();
    assert_eq!(n, 22);
    assert!(e.ext_ack().is_empty());
    // The echoed request is our create: it parses as an entry.
    let r = ConntrackRepr::parse_attrs(2, &e.request_payload()[4..]).unwrap();
    assert_eq!(r.mark, Some(0x42));
}

#[test]
fn erange_carries_extended_ack() {
    let f = fixture!("error_extack");
    let m = only_message(&f);
    assert_ne!(m.flags() & flags::ACK_TLVS, 0);
    let Some(Control::Error(e)) = m.control().unwrap() else {
        panic!("expected NLMSG_ERROR")
    };
    // A wrong-sized NLA_U32 fails policy validation with ERANGE.
    assert_eq!(e.errno(), 34);
    let ext = e.ext_ack();
    assert_eq!(ext.msg, Some("Attribute failed policy validation"));
    // The offset points into the echoed request, at the CTA_TIMEOUT (7) we sent too short.
    let off = ext.offset.unwrap() as usize;
    let request = &f[20..20 + e.request().len as usize];
    let bad = Attrs::new(&request[off..]).next().unwrap().unwrap();
    assert_eq!(bad.kind(), 7);
    assert_eq!(bad.payload().len(), 2);
}

#[test]
fn einval_with_message_and_capped_errors() {
    let f = fixture!("error_exp_helper_name_no_nul");
    let Some(Control::Error(e)) = only_message(&f).control().unwrap() else {
        panic!("expected NLMSG_ERROR")
    };
    assert_eq!(e.errno(), 22);
    assert_eq!(e.ext_ack().msg, Some("Attribute failed policy validation"));
    assert_eq!(e.ext_ack().offset, Some(184));

    let f = fixture!("error_extack_cap_ack");
    let m = only_message(&f);
    assert_eq!(m.flags() & (flags::CAPPED | flags::ACK_TLVS), 0x300);
    let Some(Control::Error(e)) = m.control().unwrap() else {
        panic!("expected NLMSG_ERROR")
    };
    assert!(e.request_payload().is_empty());
    assert_eq!(e.ext_ack().offset, Some(188));

    let f = fixture!("reply_create_trailing_bytes");
    let Some(Control::Error(e)) = only_message(&f).control().unwrap() else {
        panic!("expected NLMSG_ERROR")
    };
    assert!(e.is_ack());
    assert_eq!(
        e.ext_ack().msg,
        Some("bytes leftover after parsing attributes")
    );
}

#[test]
fn errnos_of_refused_requests() {
    fn errno(bytes: &[u8]) -> i32 {
        match Messages::new(bytes)
            .next()
            .unwrap()
            .unwrap()
            .control()
            .unwrap()
        {
            Some(Control::Error(e)) => e.errno(),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(errno(&fixture!("error_create_unconfirmed_status")), 16);
    assert_eq!(errno(&fixture!("error_delete_zone_missing")), 2);
    assert_eq!(errno(&fixture!("error_helper_unknown")), 95);
    assert_eq!(errno(&fixture!("reply_update_labels_norule")), 28);
    assert_eq!(errno(&fixture!("error_exp_master_nohelper")), 95);
    assert_eq!(errno(&fixture!("error_get_no_tuple")), 22);
}

#[test]
fn dump_of_four_tcp_entries() {
    let f = fixture!("dump_ipv4_tcp");
    let c = check_all("dump_ipv4_tcp", &f);
    assert_eq!((c.entries, c.dones), (4, 1));
    let mut sources = [0u8; 4];
    for (i, e) in entries::<4>(&f).iter().enumerate() {
        let o = e.orig.unwrap();
        let IpAddr::V4(src) = o.src.unwrap() else {
            panic!()
        };
        assert_eq!(src.octets()[..3], [10, 0, 0]);
        sources[i] = src.octets()[3];
        assert_eq!(o.dst, Some(v4(10, 0, 1, 1)));
        assert_eq!((o.src_port, o.dst_port), (Some(40000), Some(80)));
        assert_eq!(e.mark, Some(0x42));
        assert!(e
            .status
            .unwrap()
            .contains(Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED));
    }
    sources.sort_unstable();
    assert_eq!(sources, [2, 3, 4, 5]);
}

#[test]
fn every_truncation_of_a_dump_fails_cleanly() {
    let f = fixture!("dump_ipv4_tcp");
    let step = if cfg!(miri) { 37 } else { 1 };
    for cut in (0..f.len()).step_by(step) {
        for m in Messages::new(&f[..cut]) {
            let Ok(m) = m else { break };
            if let Ok(v) = Conntrack::parse(m) {
                let _ = (v.orig(), v.protoinfo(), v.labels());
            }
            let _ = ConntrackRepr::parse_msg(m);
            let _ = m.control();
        }
    }
}

#[test]
fn tcp_protoinfo_with_window_scale_and_flags() {
    for e in entries::<2>(&fixture!("dump_ipv4_tcp_wscale"))
        .iter()
        .chain(entries::<2>(&fixture!("dump_ipv6_tcp_wscale")).iter())
    {
        let Some(ProtoInfo::Tcp(t)) = e.protoinfo else {
            panic!("no TCP protoinfo")
        };
        assert_eq!(t.state, Some(TcpState::Established));
        assert_eq!((t.wscale_orig, t.wscale_reply), (Some(7), Some(9)));
        // The kernel dumps the flags with a zero mask.
        assert_eq!(
            t.flags_orig,
            Some(TcpFlags {
                flags: 0x0b,
                mask: 0
            })
        );
        assert_eq!(
            t.flags_reply,
            Some(TcpFlags {
                flags: 0x03,
                mask: 0
            })
        );
        assert_eq!(e.orig.unwrap().dst_port, Some(443));
    }
}

#[test]
fn udp_udplite_icmp_icmpv6() {
    for (bytes, proto, dport) in [
        (&fixture!("dump_ipv4_udp")[..], 17, 53),
        (&fixture!("dump_ipv6_udp")[..], 17, 53),
        (&fixture!("dump_ipv4_udplite")[..], 136, 5004),
        (&fixture!("dump_ipv6_udplite")[..], 136, 5004),
    ] {
        let es = entries::<2>(bytes);
        assert_eq!(es.len(), 2);
        for e in &es {
            let o = e.orig.unwrap();
            assert_eq!((o.proto, o.dst_port), (Some(proto), Some(dport)));
            assert_eq!(e.reply.unwrap().src_port, Some(dport));
        }
    }
    for e in &entries::<2>(&fixture!("dump_ipv4_icmp")) {
        let (o, r) = (e.orig.unwrap(), e.reply.unwrap());
        assert_eq!((o.icmp_type, o.icmp_code), (Some(8), Some(0)));
        assert_eq!(r.icmp_type, Some(0));
        assert!(matches!(o.icmp_id, Some(0x1200 | 0x1201)));
        // Created without a status: CONFIRMED only, so [UNREPLIED].
        assert!(e.is_unreplied());
    }
    for e in &entries::<2>(&fixture!("dump_ipv6_icmpv6")) {
        let (o, r) = (e.orig.unwrap(), e.reply.unwrap());
        assert_eq!(o.icmpv6_type, Some(128));
        assert_eq!(r.icmpv6_type, Some(129));
        assert!(matches!(o.src, Some(IpAddr::V6(_))));
    }
}

#[test]
fn sctp_gre_generic_and_dccp() {
    for e in entries::<2>(&fixture!("dump_ipv4_sctp"))
        .iter()
        .chain(entries::<2>(&fixture!("dump_ipv6_sctp")).iter())
    {
        let Some(ProtoInfo::Sctp(s)) = e.protoinfo else {
            panic!("no SCTP protoinfo")
        };
        assert_eq!(s.state, Some(SctpState::Established));
        assert_eq!(s.vtag_orig, Some(0x1122_3344));
        assert_eq!(s.vtag_reply, Some(0x5566_7788));
    }
    for e in &entries::<2>(&fixture!("dump_ipv4_gre")) {
        let o = e.orig.unwrap();
        assert_eq!(o.proto, Some(47));
        assert!(matches!(o.src_port, Some(0x1000 | 0x1001)));
        assert_eq!(o.dst_port, Some(0x2000));
    }
    for e in &entries::<2>(&fixture!("dump_ipv6_generic99")) {
        let o = e.orig.unwrap();
        assert_eq!((o.proto, o.src_port), (Some(99), None));
    }
    // No DCCP tracker in the kernel: a generic entry, ports and protoinfo dropped.
    let e = &entries::<1>(&fixture!("dump_ipv4_dccp"))[0];
    assert_eq!(e.orig.unwrap().proto, Some(33));
    assert_eq!(e.orig.unwrap().src_port, None);
    assert_eq!(e.protoinfo, None);
}

#[test]
fn zones_labels_helpers() {
    let es = entries::<4>(&fixture!("dump_zone"));
    assert_eq!(es.iter().filter(|e| e.zone == Some(7)).count(), 2);
    assert!(es
        .iter()
        .any(|e| e.orig.unwrap().zone == Some(5) && e.zone.is_none()));
    assert!(es
        .iter()
        .any(|e| e.reply.unwrap().zone == Some(6) && e.zone.is_none()));
    assert!(entries::<2>(&fixture!("dump_zone_filter7"))
        .iter()
        .all(|e| e.zone == Some(7)));

    let es = entries::<3>(&fixture!("dump_labels"));
    let bits = |e: &ConntrackRepr| {
        let mut v = heapless::Vec::<u16, 8>::new();
        for b in e.labels.unwrap().iter() {
            v.push(b).unwrap();
        }
        v
    };
    assert!(es.iter().any(|e| bits(e)[..] == [33, 64, 127]));
    assert!(es.iter().any(|e| bits(e)[..] == [0, 72]));
    assert!(es.iter().any(|e| bits(e)[..] == [0]));

    let es = entries::<4>(&fixture!("dump_helper"));
    let mut names = [""; 4];
    for (n, e) in names.iter_mut().zip(&es) {
        *n = e.helper.as_ref().unwrap().name.as_str();
        assert!(e.status.unwrap().contains(Status::HELPER));
    }
    names.sort_unstable();
    assert_eq!(names, ["ftp", "ftp", "sip", "tftp"]);
}

#[test]
fn nat_rewrites_the_reply_tuple() {
    let es = entries::<4>(&fixture!("dump_nat_request"));
    let v4_port = |port| {
        es.iter()
            .find(|e| e.family == 2 && e.orig.unwrap().src_port == Some(port))
            .unwrap()
    };
    let snat = v4_port(30001);
    assert!(snat
        .status
        .unwrap()
        .contains(Status::SRC_NAT | Status::SRC_NAT_DONE));
    let r = snat.reply.unwrap();
    assert_eq!((r.dst, r.dst_port), (Some(v4(203, 0, 113, 1)), Some(1000)));
    let dnat = v4_port(30002);
    assert!(dnat.status.unwrap().contains(Status::DST_NAT));
    let r = dnat.reply.unwrap();
    assert_eq!((r.src, r.src_port), (Some(v4(203, 0, 113, 2)), Some(8080)));
    // The kernel never dumps the NAT ranges themselves.
    assert!(es
        .iter()
        .all(|e| e.nat_src.is_none() && e.nat_dst.is_none()));
    let v6 = es
        .iter()
        .find(|e| matches!(e.orig.unwrap().src, Some(IpAddr::V6(_))))
        .unwrap();
    let nat6: Ipv6Addr = "2001:db8::99:1".parse().unwrap();
    assert_eq!(v6.reply.unwrap().dst, Some(IpAddr::V6(nat6)));
}

#[test]
fn seqadj_synproxy_counters_timestamps() {
    let e = &entries::<1>(&fixture!("dump_seqadj"))[0];
    let o = e.seq_adj_orig.unwrap();
    let r = e.seq_adj_reply.unwrap();
    assert_eq!(
        (o.correction_pos, o.offset_before, o.offset_after),
        (Some(1000), Some(0), Some(10))
    );
    assert_eq!(
        (r.correction_pos, r.offset_after),
        (Some(2000), Some(0xffff_fff6))
    );
    assert!(e.status.unwrap().contains(Status::SEQ_ADJUST));

    let e = &entries::<1>(&fixture!("dump_synproxy"))[0];
    let s = e.synproxy.unwrap();
    assert_eq!(
        (s.isn, s.its, s.tsoff),
        (Some(0x1000_0000), Some(0x2000_0000), Some(0x30))
    );

    let es = entries::<8>(&fixture!("dump_acct_tstamp"));
    assert!(!es.is_empty());
    for e in &es {
        let c = e.counters_orig.unwrap();
        assert!(c.packets.unwrap() > 0 && c.bytes.unwrap() > 0);
        let ts = e.timestamp.unwrap();
        assert!(ts.start.unwrap() > 1_700_000_000_000_000_000);
        assert_eq!(ts.stop, None);
    }
    for e in &entries::<8>(&fixture!("dump_after_ctrzero")) {
        assert_eq!(e.counters_orig.unwrap().packets, Some(0));
    }
}

#[test]
fn conntrack_events_in_order() {
    let f = fixture!("events_ct");
    let mut kinds = heapless::Vec::<(EventKind, Option<u32>), 16>::new();
    for m in Messages::new(&f) {
        let m = m.unwrap();
        assert!(!m.is_multi());
        assert_eq!(m.seq(), 0);
        let v = Conntrack::parse(m).unwrap();
        kinds
            .push((v.event_kind().unwrap(), v.mark().unwrap()))
            .unwrap();
    }
    assert_eq!(
        kinds[..5],
        [
            (EventKind::New, Some(0x42)),
            (EventKind::Update, Some(0x43)),
            (EventKind::Update, Some(0x143)),
            (EventKind::Update, Some(0x143)),
            (EventKind::Destroy, Some(0x143)),
        ]
    );
    assert_eq!(kinds.last().unwrap().0, EventKind::Destroy);
}

#[test]
fn expectations() {
    let f = fixture!("dump_exp_ftp");
    let c = check_all("dump_exp_ftp", &f);
    assert_eq!((c.expectations, c.dones), (2, 1));
    for m in Messages::new(&f) {
        let m = m.unwrap();
        if m.is_control() {
            continue;
        }
        let e = ExpectRepr::parse_msg(m).unwrap();
        assert_eq!(e.helper.as_deref(), Some("ftp"));
        assert_eq!(e.master.unwrap().dst_port, Some(21));
        assert_eq!(e.mask.unwrap().dst_port, Some(0xffff));
        assert!(matches!(e.tuple.unwrap().dst_port, Some(50000..=50010)));
        assert_eq!(e.class, Some(0));
    }

    let f = fixture!("dump_exp_request");
    let mut seen_flags = false;
    let mut seen_fn = false;
    let mut seen_nat = false;
    for m in Messages::new(&f) {
        let m = m.unwrap();
        if m.is_control() {
            continue;
        }
        let e = ExpectRepr::parse_msg(m).unwrap();
        match e.tuple.unwrap().dst_port.unwrap() {
            50004 => {
                assert_eq!(e.flags, Some(ExpectFlags(3)));
                seen_flags = true;
            }
            50006 => {
                assert_eq!(e.func.as_deref(), Some("nat-follow-master"));
                seen_fn = true;
            }
            50008 => {
                let nat = e.nat.unwrap();
                assert_eq!(nat.dir, Some(1));
                assert_eq!(nat.tuple.unwrap().src, Some(v4(203, 0, 113, 9)));
                seen_nat = true;
            }
            _ => {}
        }
    }
    assert!(seen_flags && seen_fn && seen_nat);

    let f = fixture!("events_exp");
    let mut news = 0;
    let mut destroys = 0;
    for m in Messages::new(&f) {
        match Expect::parse(m.unwrap()).unwrap().event_kind() {
            Some(EventKind::New) => news += 1,
            Some(EventKind::Destroy) => destroys += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((news, destroys), (10, 10));
}

#[test]
fn statistics() {
    let f = fixture!("stats_cpu");
    let mut cpus = 0;
    for m in Messages::new(&f) {
        let m = m.unwrap();
        if m.is_control() {
            continue;
        }
        let s = StatsCpu::parse(&NfMsg::new_checked(m).unwrap()).unwrap();
        assert_eq!(s.cpu, cpus);
        assert!(s.found.is_some() && s.chain_toolong.is_some() && s.searched.is_none());
        cpus += 1;
    }
    assert!(cpus >= 1);

    let f = fixture!("stats");
    let s = StatsGlobal::parse(&NfMsg::new_checked(only_message(&f)).unwrap()).unwrap();
    assert_eq!((s.entries, s.max_entries), (Some(4), Some(262_144)));

    let f = fixture!("exp_stats_cpu");
    let first = Messages::new(&f).next().unwrap().unwrap();
    assert_eq!(first.kind(), 0x0103);
    let s = ExpStatsCpu::parse(&NfMsg::new_checked(first).unwrap()).unwrap();
    assert_eq!((s.cpu, s.new), (0, Some(0)));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "480 KB of messages: minutes under Miri; the other fixtures cover it"
)]
fn large_dump_of_2000_entries_in_many_datagrams() {
    let f = fixture!("dump_ipv4_tcp_2000");
    let mut n = 0;
    let mut done = false;
    for m in Messages::new(&f) {
        let m = m.unwrap();
        if let Some(Control::Done(_)) = m.control().unwrap() {
            done = true;
            continue;
        }
        let v = Conntrack::parse(m).unwrap();
        assert_eq!(v.orig().unwrap().unwrap().dst_port, Some(443));
        n += 1;
    }
    assert_eq!(n, 2000);
    assert!(done);
}
