//! The conntrack view and repr over arbitrary bytes: every getter of `Conntrack`, then
//! `ConntrackRepr::parse`; when both accept a message they must agree field by field.
//!
//! The input is read twice: as received netlink bytes (the seeds are kernel captures), and
//! as the attributes of a well-framed `CT_NEW` and `CT_DELETE` message (so that mutations
//! need not keep `nlmsg_len` right).
#![no_main]

use conntrack_codec::ct::{Conntrack, ConntrackRepr, EventKind};
use conntrack_codec::nfnl::{ct_msg, msg_type, Subsystem};
use conntrack_codec::nl::{flags, Messages, NlMsg};
use conntrack_fuzz::{ct_every_getter, synth};
use libfuzzer_sys::fuzz_target;

fn check(msg: NlMsg<'_>) {
    let _ = EventKind::of(&msg);
    let repr = ConntrackRepr::parse_msg(msg);
    match Conntrack::parse(msg) {
        Ok(view) => {
            ct_every_getter(&view, repr.as_ref().ok());
            assert_eq!(ConntrackRepr::try_from(&view), repr);
        }
        // The view checks the framing of the top-level attributes only: whatever it
        // refuses, the repr refuses too.
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
        (ct_msg::NEW, flags::MULTI),
        (ct_msg::DELETE, flags::CREATE | flags::EXCL),
    ] {
        let bytes = synth(msg_type(Subsystem::Ctnetlink, kind), fl, family, 0, data);
        check(NlMsg::new_checked(&bytes).expect("well framed"));
    }
});
