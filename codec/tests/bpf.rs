//! Examples of the classic-BPF event filter compiler: each program passes the kernel's
//! checker and runs, in the one interpreter of the tests (`bpf_vm`, shared with
//! `prop_bpf.rs` and the fuzz crate), over event messages the codec writes.

mod bpf_vm;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bpf_vm::{kernel_check, run};
use conntrack_codec::ct::{
    l4proto, ConntrackRepr, ProtoInfo, SctpInfo, SctpState, TcpInfo, TcpState, Tuple,
};
use conntrack_codec::filter::bpf::code::{K, RET};
use conntrack_codec::filter::bpf::{
    BpfInsn, EventFilter, Ipv4Match, Ipv6Match, Logic, MarkMatch, ACCEPT, DROP, MAX_INSNS,
};
use conntrack_codec::nfnl::{ct_msg, exp_msg, msg_type, NfGenMsg, Subsystem};
use conntrack_codec::nl::{flags, msgtype, Writer};

/// Compiles `f`; the program must pass the kernel's checker.
fn compile<const N: usize>(f: &EventFilter<N>) -> Vec<BpfInsn> {
    let mut out = vec![BpfInsn::default(); MAX_INSNS];
    let n = f.compile(&mut out).unwrap();
    assert_eq!(n, f.program_len().unwrap());
    out.truncate(n);
    if let Err(e) = kernel_check(&out) {
        panic!("the kernel would refuse the program: {e}");
    }
    out
}

fn event(entry: &ConntrackRepr, msg: u8, fl: u16) -> Vec<u8> {
    let mut buf = [0u8; 1024];
    let mut w = Writer::new(&mut buf);
    let r = entry
        .emit(&mut w, msg_type(Subsystem::Ctnetlink, msg), fl, 0)
        .unwrap();
    buf[..r.end].to_vec()
}

fn new_event(entry: &ConntrackRepr) -> Vec<u8> {
    event(entry, ct_msg::NEW, flags::CREATE | flags::EXCL)
}

fn verdict(prog: &[BpfInsn], pkt: &[u8]) -> bool {
    match run(prog, pkt) {
        Ok(ACCEPT) => true,
        Ok(DROP) => false,
        other => panic!("program returned {other:?}"),
    }
}

fn passes<const N: usize>(f: &EventFilter<N>, pkt: &[u8]) -> bool {
    verdict(&compile(f), pkt)
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn tcp_entry(src: IpAddr, dst: IpAddr) -> ConntrackRepr {
    let orig = Tuple::tcp(src, dst, 1000, 80);
    ConntrackRepr {
        family: 2,
        orig: Some(orig),
        reply: Some(orig.inverted()),
        protoinfo: Some(ProtoInfo::Tcp(TcpInfo {
            state: Some(TcpState::Established),
            ..TcpInfo::default()
        })),
        timeout: Some(100),
        ..ConntrackRepr::default()
    }
}

#[test]
fn empty_filter_accepts_everything() {
    let f = EventFilter::new();
    assert!(f.is_empty());
    assert_eq!(compile(&f), [BpfInsn::stmt(RET | K, ACCEPT)]);
}

#[test]
fn non_events_pass_untouched() {
    let mut f = EventFilter::new();
    f.l4proto.insert(200);
    let prog = compile(&f);
    assert_eq!(prog.len(), f.program_len().unwrap());
    let e = tcp_entry(v4([10, 0, 0, 1]), v4([10, 0, 0, 2]));
    assert!(!verdict(&prog, &new_event(&e)));
    assert!(!verdict(&prog, &event(&e, ct_msg::NEW, 0)));
    assert!(!verdict(&prog, &event(&e, ct_msg::DELETE, 0)));
    // A dump reply, a statistics reply, an expectation event, control messages.
    assert!(verdict(&prog, &event(&e, ct_msg::NEW, flags::MULTI)));
    assert!(verdict(&prog, &event(&e, ct_msg::GET_STATS, 0)));
    let mut buf = [0u8; 64];
    let mut w = Writer::new(&mut buf);
    let exp = msg_type(Subsystem::CtnetlinkExp, exp_msg::NEW);
    let n = w
        .message(exp, flags::CREATE | flags::EXCL, 0, 0, |w| {
            NfGenMsg::default().emit(w)
        })
        .unwrap()
        .end;
    assert!(verdict(&prog, &buf[..n]));
    for kind in [msgtype::ERROR, msgtype::DONE, msgtype::NOOP] {
        let mut w = Writer::new(&mut buf);
        let n = w.message(kind, 0, 1, 0, |w| w.raw(&[0; 4])).unwrap().end;
        assert!(verdict(&prog, &buf[..n]));
    }
}

#[test]
fn protocol_and_state() {
    let e = tcp_entry(v4([10, 0, 0, 1]), v4([10, 0, 0, 2]));
    let mut f = EventFilter::new();
    f.l4proto.insert(l4proto::TCP);
    assert!(passes(&f, &new_event(&e)));
    f.l4proto.logic = Logic::Negative;
    assert!(!passes(&f, &new_event(&e)));

    let mut f = EventFilter::new();
    f.tcp_state.insert(TcpState::SynSent);
    assert!(!passes(&f, &new_event(&e)));
    f.tcp_state.insert(TcpState::Established);
    assert!(passes(&f, &new_event(&e)));
    // Without protocol state (an update event), the state set does not apply.
    let bare = ConntrackRepr {
        protoinfo: None,
        ..e.clone()
    };
    f.tcp_state.remove(TcpState::Established);
    assert!(passes(&f, &event(&bare, ct_msg::NEW, 0)));

    // An SCTP set leaves TCP entries alone.
    let mut f = EventFilter::new();
    f.sctp_state.insert(SctpState::Established);
    assert!(passes(&f, &new_event(&e)));
    let s = ConntrackRepr {
        protoinfo: Some(ProtoInfo::Sctp(SctpInfo {
            state: Some(SctpState::CookieWait),
            ..SctpInfo::default()
        })),
        ..e
    };
    assert!(!passes(&f, &new_event(&s)));
}

#[test]
fn addresses() {
    let e = tcp_entry(v4([192, 168, 1, 7]), v4([8, 8, 8, 8]));
    let mut f = EventFilter::new();
    f.ipv4_src
        .push(Ipv4Match::prefix(Ipv4Addr::new(192, 168, 0, 0), 16).unwrap())
        .unwrap();
    assert!(passes(&f, &new_event(&e)));
    f.ipv4_src.logic = Logic::Negative;
    assert!(!passes(&f, &new_event(&e)));
    // An IPv6 entry has no IPv4 source: the IPv4 set does not apply.
    let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let b: Ipv6Addr = "2001:db8:1::2".parse().unwrap();
    let e6 = ConntrackRepr {
        family: 10,
        ..tcp_entry(IpAddr::V6(a), IpAddr::V6(b))
    };
    assert!(passes(&f, &new_event(&e6)));
    let mut f = EventFilter::new();
    f.ipv6_dst
        .push(Ipv6Match::prefix("2001:db8:1::".parse().unwrap(), 48).unwrap())
        .unwrap();
    assert!(passes(&f, &new_event(&e6)));
    f.ipv6_dst.items[0] = Ipv6Match::host(a);
    assert!(!passes(&f, &new_event(&e6)));
    f.ipv6_dst
        .push(Ipv6Match::prefix(Ipv6Addr::UNSPECIFIED, 0).unwrap())
        .unwrap();
    assert!(passes(&f, &new_event(&e6)));
}

#[test]
fn mark_and_zone_default_to_zero() {
    let e = tcp_entry(v4([10, 0, 0, 1]), v4([10, 0, 0, 2]));
    let mut f = EventFilter::new();
    f.mark.push(MarkMatch::exact(0)).unwrap();
    f.zone.push(0).unwrap();
    assert!(passes(&f, &new_event(&e)));
    let marked = ConntrackRepr {
        mark: Some(0x1234_5678),
        zone: Some(7),
        ..e
    };
    assert!(!passes(&f, &new_event(&marked)));
    f.mark
        .push(MarkMatch::masked(0x0000_5600, 0x0000_ff00))
        .unwrap();
    f.zone.push(7).unwrap();
    assert!(passes(&f, &new_event(&marked)));
    f.zone.logic = Logic::Negative;
    assert!(!passes(&f, &new_event(&marked)));
}

#[test]
fn long_sets_use_chunks() {
    let mut f = EventFilter::<260>::default();
    for z in 0..260u16 {
        f.zone.push(z * 3).unwrap();
    }
    for logic in [Logic::Positive, Logic::Negative] {
        f.zone.logic = logic;
        let prog = compile(&f);
        // More compares than one 8-bit jump reaches: two chunks.
        assert!(prog.len() > 260);
        for zone in [0u16, 3, 762, 765, 768, 777, 1, 778, 780] {
            let e = ConntrackRepr {
                zone: Some(zone),
                ..tcp_entry(v4([1, 2, 3, 4]), v4([5, 6, 7, 8]))
            };
            let member = zone % 3 == 0 && zone < 780;
            let passed = run(&prog, &new_event(&e)) == Ok(ACCEPT);
            assert_eq!(passed, member == (logic == Logic::Positive), "zone {zone}");
        }
    }
}
