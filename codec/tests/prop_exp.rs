//! Property tests of the expectation model (slow under Miri: run natively).
#![cfg(not(miri))]

mod common;

use conntrack_codec::exp::{Expect, ExpectRepr};
use conntrack_codec::nfnl::{exp_msg, msg_type, Subsystem};
use conntrack_codec::nl::{Messages, Writer};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// The strategy is checked against the attribute table (see `prop_ct.rs`).
#[test]
fn strategy_covers_every_attribute_of_the_table() {
    let mut runner = TestRunner::deterministic();
    let strategy = common::expect();
    let mut seen = std::collections::BTreeSet::<u16>::new();
    for _ in 0..64 {
        let e = strategy.new_tree(&mut runner).unwrap().current();
        let mut buf = vec![0u8; 4096];
        let mut w = Writer::new(&mut buf);
        e.emit(
            &mut w,
            msg_type(Subsystem::CtnetlinkExp, exp_msg::NEW),
            0,
            1,
        )
        .unwrap();
        let msg = Messages::new(w.written()).next().unwrap().unwrap();
        let view = Expect::parse(msg).unwrap();
        seen.extend(
            ExpectRepr::ATTRIBUTES
                .iter()
                .copied()
                .filter(|k| view.attr(*k).is_some()),
        );
    }
    for kind in ExpectRepr::ATTRIBUTES {
        assert!(
            seen.contains(kind),
            "the strategy never makes attribute {kind}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn expect_emit_parse_round_trip(e in common::expect()) {
        let mut buf = vec![0xa5u8; 4096];
        let mut w = Writer::new(&mut buf);
        let kind = msg_type(Subsystem::CtnetlinkExp, exp_msg::NEW);
        let range = e.emit(&mut w, kind, 0, 1).unwrap();
        prop_assert_eq!(range.len(), e.buffer_len());
        let msg = Messages::new(w.written()).next().unwrap().unwrap();
        prop_assert_eq!(&ExpectRepr::parse_msg(msg).unwrap(), &e);
        let v = Expect::parse(msg).unwrap();
        prop_assert_eq!(v.tuple().unwrap(), e.tuple);
        prop_assert_eq!(v.master().unwrap(), e.master);
        prop_assert_eq!(v.helper().unwrap(), e.helper.as_deref());
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_expect_view(attrs in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&((20 + attrs.len()) as u32).to_ne_bytes());
        bytes.extend_from_slice(&0x0200u16.to_ne_bytes());
        bytes.extend_from_slice(&[0; 10]);
        bytes.extend_from_slice(&[2, 0, 0, 0]);
        bytes.extend_from_slice(&attrs);
        let msg = Messages::new(&bytes).next().unwrap().unwrap();
        if let Ok(v) = Expect::parse(msg) {
            let _ = (v.master(), v.tuple(), v.mask(), v.timeout(), v.id(), v.helper());
            let _ = (v.zone(), v.flags(), v.class(), v.nat(), v.func(), v.event_kind());
        }
        let _ = ExpectRepr::parse_msg(msg);
    }
}
