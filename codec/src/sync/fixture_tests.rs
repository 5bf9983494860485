//! The datagrams of a real conntrackd 1.4.7 (codec/fixtures/sync/, made by
//! scripts/capture-sync-fixtures): every one parses, every message re-emitted from the model
//! gives back conntrackd's exact bytes, and the values are the ones the capture made.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ct::{ConntrackRepr, ProtoInfo, Status, TcpState};
use crate::exp::ExpectRepr;
use crate::sync::*;

macro_rules! fixtures {
    ($($name:literal),+ $(,)?) => {
        &[$(($name, include_bytes!(concat!("../../fixtures/sync/", $name, ".bin")))),+]
    };
}

const ALL: &[(&str, &[u8])] = fixtures![
    "bulk_update",
    "ct_del_udp4",
    "ct_hello",
    "ct_helper_labels",
    "ct_new_dnat4",
    "ct_new_dnat4_port",
    "ct_new_generic4",
    "ct_new_gre4",
    "ct_new_icmp4",
    "ct_new_icmp6",
    "ct_new_sctp4",
    "ct_new_snat4",
    "ct_new_snat4_port",
    "ct_new_snat6",
    "ct_new_tcp4",
    "ct_new_tcp6",
    "ct_new_udp4",
    "ct_new_udp6",
    "ct_new_zone",
    "ct_related_master",
    "ct_resent_after_nack",
    "ct_upd_tcp4_mark",
    "ct_upd_tcp4_state",
    "ctl_ack",
    "ctl_ack_hello_back",
    "ctl_ack_nack",
    "ctl_alive_hello",
    "ctl_hello_and_back",
    "ctl_resync",
    "exp_del_ftp",
    "exp_new_ftp",
];

fn get(name: &str) -> &'static [u8] {
    ALL.iter().find(|(n, _)| *n == name).unwrap().1
}

fn first_ct(name: &str) -> ConntrackRepr {
    let m = Messages::new(get(name)).next().unwrap().unwrap();
    let Body::Data { attrs, kind } = m.body().unwrap() else {
        panic!("{name}: not data")
    };
    assert!(!kind.is_expect());
    let v = SyncCt::new_checked(attrs).unwrap();
    assert_eq!(v.unknown_count(), 0);
    v.to_repr().unwrap()
}

fn first_exp(name: &str) -> ExpectRepr {
    let m = Messages::new(get(name)).next().unwrap().unwrap();
    let Body::Data { attrs, kind } = m.body().unwrap() else {
        panic!("{name}: not data")
    };
    assert!(kind.is_expect());
    SyncExp::new_checked(attrs).unwrap().to_repr().unwrap()
}

#[test]
fn every_message_parses_and_re_emits_byte_for_byte() {
    let mut counts = [0usize; 6];
    for (name, datagram) in ALL {
        let mut walked = 0;
        for m in Messages::new(datagram) {
            let m = m.unwrap_or_else(|e| panic!("{name}: {e}"));
            walked += m.bytes().len();
            let mut out = [0xa5u8; 512];
            let h = m.header();
            let n = match m.body().unwrap_or_else(|e| panic!("{name}: {e}")) {
                Body::Data { kind, attrs } if kind.is_expect() => {
                    counts[0] += 1;
                    let e = SyncExp::new_checked(attrs).unwrap().to_repr().unwrap();
                    emit_exp(&mut out, kind, h.flags, h.seq, &e).unwrap()
                }
                Body::Data { kind, attrs } => {
                    counts[1] += 1;
                    let r = SyncCt::new_checked(attrs).unwrap().to_repr().unwrap();
                    assert_eq!(
                        ct::ct_msg_len(&r).unwrap(),
                        m.bytes().len(),
                        "{name}: length"
                    );
                    emit_ct(&mut out, kind, h.flags, h.seq, &r).unwrap()
                }
                Body::Ack { from, to } | Body::Nack { from, to } => {
                    counts[2] += 1;
                    Control {
                        flags: h.flags,
                        seq: h.seq,
                        from,
                        to,
                    }
                    .emit(&mut out)
                    .unwrap()
                }
                Body::Resync => {
                    counts[3] += 1;
                    Control {
                        flags: h.flags,
                        seq: h.seq,
                        from: 0,
                        to: 0,
                    }
                    .emit(&mut out)
                    .unwrap()
                }
                Body::Alive => {
                    counts[4] += 1;
                    Control {
                        flags: h.flags,
                        seq: h.seq,
                        ..Control::default()
                    }
                    .emit(&mut out)
                    .unwrap()
                }
            };
            assert_eq!(&out[..n], m.bytes(), "{name}: seq {}", h.seq);
            counts[5] += 1;
        }
        assert_eq!(walked, datagram.len(), "{name}: bytes left over");
    }
    // Expectations, conntrack entries, ACK/NACK, RESYNC, ALIVE: all seen.
    assert!(counts.iter().all(|&c| c > 0), "{counts:?}");
}

#[test]
fn values_are_the_ones_the_capture_made() {
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let r = first_ct("ct_new_tcp4");
    let o = r.orig.unwrap();
    assert_eq!(
        (o.src, o.dst, o.src_port, o.dst_port),
        (
            Some(v4(192, 0, 2, 1)),
            Some(v4(198, 51, 100, 80)),
            Some(30001),
            Some(80)
        )
    );
    assert_eq!(r.reply, Some(o.inverted()));
    assert_eq!(r.timeout, Some(300));
    assert_eq!(r.status, Some(Status(0xe)));
    let Some(ProtoInfo::Tcp(t)) = r.protoinfo else {
        panic!()
    };
    assert_eq!(t.state, Some(TcpState::Established));
    assert_eq!(first_ct("ct_upd_tcp4_mark").mark, Some(0x42));
    let Some(ProtoInfo::Tcp(t)) = first_ct("ct_upd_tcp4_state").protoinfo else {
        panic!()
    };
    assert_eq!(t.state, Some(TcpState::FinWait));

    let icmp = first_ct("ct_new_icmp4").orig.unwrap();
    assert_eq!(
        (icmp.icmp_type, icmp.icmp_code, icmp.icmp_id),
        (Some(8), Some(0), Some(4660))
    );
    let icmp6 = first_ct("ct_new_icmp6").orig.unwrap();
    assert_eq!((icmp6.icmpv6_type, icmp6.icmpv6_id), (Some(128), Some(77)));

    let s = first_ct("ct_new_snat4_port");
    let reply = s.reply.unwrap();
    assert_eq!(
        (reply.dst, reply.dst_port),
        (Some(v4(203, 0, 113, 7)), Some(5000))
    );
    let d = first_ct("ct_new_dnat4_port");
    let reply = d.reply.unwrap();
    assert_eq!(
        (reply.src, reply.src_port),
        (Some(v4(198, 51, 100, 81)), Some(8080))
    );
    let s6 = first_ct("ct_new_snat6");
    assert_eq!(
        s6.reply.unwrap().dst,
        Some(IpAddr::V6(Ipv6Addr::new(
            0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99
        )))
    );
    assert_eq!(s6.family, 10);

    assert_eq!(first_ct("ct_new_zone").zone, Some(7));
    let h = first_ct("ct_helper_labels");
    assert_eq!(h.helper.unwrap().name.as_str(), "ftp");
    assert!(h.labels.unwrap().contains(127));
    assert_eq!(h.labels.unwrap().iter().count(), 1);

    // The related entry of the FTP data connection, after an expectation delete.
    let msgs: heapless::Vec<_, 4> = Messages::new(get("ct_related_master"))
        .map(|m| m.unwrap())
        .collect();
    let Body::Data { attrs, .. } = msgs[1].body().unwrap() else {
        panic!()
    };
    let rel = SyncCt::new_checked(attrs).unwrap().to_repr().unwrap();
    let m = rel.master.unwrap();
    assert_eq!((m.dst_port, m.proto), (Some(21), Some(6)));
    assert!(rel.status.unwrap().contains(Status::EXPECTED));

    let e = first_exp("exp_new_ftp");
    assert_eq!(e.helper.as_deref(), Some("ftp"));
    assert_eq!(e.tuple.unwrap().dst_port, Some(50000));
    assert_eq!(e.master.unwrap().dst_port, Some(21));
    assert_eq!(e.mask.unwrap().dst_port, Some(0xffff));
    assert_eq!(e.timeout, Some(300));
}

#[test]
fn control_messages_are_classified() {
    let body = |name| {
        Messages::new(get(name))
            .map(|m| {
                let m = m.unwrap();
                (m.body().unwrap(), m.is_hello(), m.is_hello_back())
            })
            .collect::<heapless::Vec<_, 4>>()
    };
    assert_eq!(body("ctl_alive_hello")[0], (Body::Alive, true, false));
    assert!(matches!(
        body("ctl_hello_and_back")[0],
        (Body::Ack { .. }, true, true)
    ));
    assert!(matches!(
        body("ctl_ack_hello_back")[0],
        (Body::Ack { .. }, false, true)
    ));
    assert_eq!(body("ctl_resync")[0].0, Body::Resync);
    let nack = body("ctl_ack_nack");
    assert!(matches!(nack[0].0, Body::Ack { .. }));
    assert!(matches!(nack[1].0, Body::Nack { from, to } if to >= from));
    // A data message that says HELLO is still data.
    assert!(matches!(
        body("ct_hello")[0],
        (Body::Data { .. }, true, false)
    ));
}

#[test]
fn truncations_of_every_fixture_fail_cleanly() {
    // Every cut natively; under Miri (two orders of magnitude slower) every 37th, which
    // still lands in headers, attribute headers and payloads of every fixture.
    let step = if cfg!(miri) { 37 } else { 1 };
    for (_, datagram) in ALL {
        for cut in (0..datagram.len()).step_by(step) {
            for m in Messages::new(&datagram[..cut]) {
                let Ok(m) = m else { continue };
                if let Ok(Body::Data { attrs, kind }) = m.body() {
                    if kind.is_expect() {
                        let _ = SyncExp::new_checked(attrs).and_then(|v| v.to_repr());
                    } else {
                        let _ = SyncCt::new_checked(attrs).and_then(|v| v.to_repr());
                    }
                }
            }
        }
    }
}
