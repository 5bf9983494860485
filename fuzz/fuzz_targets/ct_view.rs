//! The conntrack view and repr over arbitrary bytes: every getter of `Conntrack`, then
//! `ConntrackRepr::parse`; when both accept a message they must agree field by field.
//! `ConntrackRepr::parse_into` into one value reused across inputs (so it starts from
//! whatever the last input left) must give what `parse` gives.
//!
//! The input is read twice: as received netlink bytes (the seeds are kernel captures), and
//! as the attributes of a well-framed `CT_NEW` and `CT_DELETE` message (so that mutations
//! need not keep `nlmsg_len` right).
#![no_main]

use std::cell::RefCell;

use conntrack_codec::ct::{Conntrack, ConntrackRepr, EventKind, Tuple};
use conntrack_codec::filter::DumpFilter;
use conntrack_codec::nfnl::NfMsg;
use conntrack_codec::nfnl::{ct_msg, msg_type, Subsystem};
use conntrack_codec::nl::{flags, Messages, NlMsg};
use conntrack_fuzz::{ct_every_getter, synth};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static REUSED: RefCell<ConntrackRepr> = RefCell::new(ConntrackRepr::default());
}

fn check(msg: NlMsg<'_>) {
    let _ = EventKind::of(&msg);
    let repr = ConntrackRepr::parse_msg(msg);
    if let Ok(nf) = NfMsg::new_checked(msg) {
        REUSED.with_borrow_mut(|reused| match (reused.parse_into(&nf), &repr) {
            (Ok(()), Ok(r)) => assert_eq!(&*reused, r, "parse_into and parse differ"),
            (Err(e), Err(e2)) => assert_eq!(&e, e2),
            (a, b) => panic!("parse_into {a:?}, parse {b:?}"),
        });
    }
    match Conntrack::parse(msg) {
        Ok(view) => {
            ct_every_getter(&view, repr.as_ref().ok());
            assert_eq!(ConntrackRepr::try_from(&view), repr);
            if let Ok(r) = &repr {
                own_filter_matches(&view, r);
            }
        }
        // The view checks the framing of the top-level attributes only: whatever it
        // refuses, the repr refuses too.
        Err(_) => assert!(repr.is_err()),
    }
}

/// The exact filter made of an entry's own family, tuples, zone, mark and status selects
/// it (whenever that filter is possible at all), and nothing about it panics.
fn own_filter_matches(view: &Conntrack<'_>, r: &ConntrackRepr) {
    let (Some(orig), Some(reply)) = (r.orig, r.reply) else {
        return;
    };
    let zone = r.zone.or(orig.zone).or(reply.zone).unwrap_or(0);
    let mut f = DumpFilter::family(view.family())
        .with_orig(Tuple { zone: None, ..orig })
        .with_reply(Tuple {
            zone: None,
            ..reply
        })
        .with_zone(zone)
        .with_mark(r.mark.unwrap_or(0), u32::MAX);
    if let Some(s) = r.status.filter(|s| s.0 != 0) {
        f = f.with_status(s, s);
    }
    let _ = f.kernel_filter();
    let _ = f.kernel_flush_since();
    if f.check().is_ok() {
        assert_eq!(f.matches(view), Ok(true), "{f:?}");
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
