//! The expectation view and repr over arbitrary bytes: every getter of `Expect`, then
//! `ExpectRepr::parse`; when both accept a message they must agree field by field.
//!
//! The input is read as received netlink bytes and as the attributes of a well-framed
//! `EXP_NEW` and `EXP_DELETE` message.
#![no_main]

use conntrack_codec::exp::{Expect, ExpectRepr};
use conntrack_codec::nfnl::{exp_msg, msg_type, Subsystem};
use conntrack_codec::nl::{flags, Messages, NlMsg};
use conntrack_fuzz::{exp_every_getter, synth};
use libfuzzer_sys::fuzz_target;

fn check(msg: NlMsg<'_>) {
    let repr = ExpectRepr::parse_msg(msg);
    match Expect::parse(msg) {
        Ok(view) => {
            exp_every_getter(&view, repr.as_ref().ok());
            assert_eq!(ExpectRepr::try_from(&view), repr);
        }
        Err(_) => assert!(repr.is_err()),
    }
}

fuzz_target!(|data: &[u8]| {
    for msg in Messages::new(data) {
        let Ok(msg) = msg else { break };
        check(msg);
    }
    let family = data.first().copied().unwrap_or(2);
    for (kind, fl) in [
        (exp_msg::NEW, flags::CREATE | flags::EXCL),
        (exp_msg::DELETE, 0),
    ] {
        let bytes = synth(msg_type(Subsystem::CtnetlinkExp, kind), fl, family, 0, data);
        check(NlMsg::new_checked(&bytes).expect("well framed"));
    }
});
