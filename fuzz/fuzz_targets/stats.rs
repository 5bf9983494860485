//! The statistics replies over arbitrary bytes: `StatsCpu`, `StatsGlobal` and
//! `ExpStatsCpu`, each formatted as `conntrack -S` prints it when it parses.
//!
//! The input is read as received netlink bytes and as the attributes of a well-framed
//! message of each statistics type (the CPU number in `res_id` taken from the input).
#![no_main]

use core::fmt::Write;

use conntrack_codec::ct::{ExpStatsCpu, StatsCpu, StatsGlobal};
use conntrack_codec::fmt::{ExpStatsCpuLine, StatsCpuLine};
use conntrack_codec::nfnl::{ct_msg, exp_msg, msg_type, NfMsg, Subsystem};
use conntrack_codec::nl::{flags, Messages, NlMsg};
use conntrack_fuzz::{synth, Sink};
use libfuzzer_sys::fuzz_target;

fn check(msg: NlMsg<'_>) {
    let Ok(nf) = NfMsg::new_checked(msg) else {
        return;
    };
    let cpu = StatsCpu::parse(&nf);
    let global = StatsGlobal::parse(&nf);
    let exp = ExpStatsCpu::parse(&nf);
    // At most one reader takes a given message type.
    let taken = [cpu.is_ok(), global.is_ok(), exp.is_ok()];
    assert!(taken.iter().filter(|&&t| t).count() <= 1, "{taken:?}");
    let mut sink = Sink::new();
    if let Ok(s) = cpu {
        assert_eq!(s.cpu, nf.nfgen().res_id);
        write!(sink, "{}", StatsCpuLine(&s)).expect("a sink that never fails");
    }
    if let Ok(s) = exp {
        assert_eq!(s.cpu, nf.nfgen().res_id);
        write!(sink, "{}", ExpStatsCpuLine(&s)).expect("a sink that never fails");
    }
}

fuzz_target!(|data: &[u8]| {
    for msg in Messages::new(data) {
        let Ok(msg) = msg else { break };
        check(msg);
    }
    let cpu = match data {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    for kind in [
        msg_type(Subsystem::Ctnetlink, ct_msg::GET_STATS_CPU),
        msg_type(Subsystem::Ctnetlink, ct_msg::GET_STATS),
        msg_type(Subsystem::Ctnetlink, exp_msg::GET_STATS_CPU),
        msg_type(Subsystem::CtnetlinkExp, exp_msg::GET_STATS_CPU),
    ] {
        let bytes = synth(kind, flags::MULTI, 0, cpu, data);
        check(NlMsg::new_checked(&bytes).expect("well framed"));
    }
});
