//! Property tests of the conntrack model (slow under Miri: run natively).
#![cfg(not(miri))]

mod common;

use common::repr;
use conntrack_codec::ct::{Conntrack, ConntrackRepr};
use conntrack_codec::nfnl::{ct_msg, msg_type, Subsystem};
use conntrack_codec::nl::{Messages, Writer};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// Calls every getter of the view; none may panic.
fn every_getter(v: &Conntrack<'_>) {
    let _ = (v.orig(), v.reply(), v.master(), v.status(), v.status_mask());
    let _ = (v.timeout(), v.mark(), v.mark_mask(), v.use_count(), v.id());
    let _ = (v.secmark(), v.zone(), v.timestamp_event(), v.protoinfo());
    let _ = (v.counters_orig(), v.counters_reply(), v.timestamp());
    let _ = (
        v.nat_src(),
        v.nat_dst(),
        v.seq_adj_orig(),
        v.seq_adj_reply(),
    );
    let _ = (v.synproxy(), v.helper_name(), v.helper_info(), v.secctx());
    let _ = (v.labels(), v.labels_mask(), v.filter(), v.event_kind());
    let _ = v.unknown().count();
    let _ = ConntrackRepr::try_from(v);
}

/// The strategy is checked against the attribute table: every type of
/// `ConntrackRepr::ATTRIBUTES` is written by some of the values it makes, so a line added to
/// the table without a strategy for its field fails here (a field the strategy does not
/// name at all fails to compile: it builds the repr without `..Default::default()`).
#[test]
fn strategy_covers_every_attribute_of_the_table() {
    let mut runner = TestRunner::deterministic();
    let strategy = repr();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..64 {
        let r = strategy.new_tree(&mut runner).unwrap().current();
        let mut buf = vec![0u8; 8192];
        let mut w = Writer::new(&mut buf);
        r.emit(&mut w, msg_type(Subsystem::Ctnetlink, ct_msg::NEW), 0, 1)
            .unwrap();
        let msg = Messages::new(w.written()).next().unwrap().unwrap();
        let view = Conntrack::parse(msg).unwrap();
        seen.extend(view.attrs().map(|a| a.unwrap().kind()));
    }
    for kind in ConntrackRepr::ATTRIBUTES {
        assert!(
            seen.contains(kind),
            "the strategy never makes attribute {kind}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn repr_emit_parse_round_trip(r in repr()) {
        let mut buf = vec![0xa5u8; 8192];
        let mut w = Writer::new(&mut buf);
        let kind = msg_type(Subsystem::Ctnetlink, ct_msg::NEW);
        let range = r.emit(&mut w, kind, 0, 1).unwrap();
        prop_assert_eq!(range.len(), r.buffer_len());
        let msg = Messages::new(w.written()).next().unwrap().unwrap();
        let back = ConntrackRepr::parse_msg(msg).unwrap();
        prop_assert_eq!(&back, &r);
        let view = Conntrack::parse(msg).unwrap();
        prop_assert_eq!(view.orig().unwrap(), r.orig);
        prop_assert_eq!(view.labels().unwrap(), r.labels);
        prop_assert_eq!(view.helper_name().unwrap(), r.helper.as_ref().map(|h| h.name.as_str()));
        every_getter(&view);
    }

    #[test]
    fn repr_into_every_short_buffer_is_an_error(r in repr()) {
        let need = r.buffer_len();
        let mut buf = vec![0u8; need];
        for size in (0..need).step_by(7) {
            let mut w = Writer::new(&mut buf[..size]);
            prop_assert!(r.emit(&mut w, 0x100, 0, 1).is_err());
            prop_assert!(w.is_empty());
        }
    }

    #[test]
    fn arbitrary_attribute_bytes_never_panic_the_view(
        family in any::<u8>(),
        flags in any::<u16>(),
        attrs in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut bytes = Vec::new();
        let len = (16 + 4 + attrs.len()) as u32;
        bytes.extend_from_slice(&len.to_ne_bytes());
        bytes.extend_from_slice(&0x0100u16.to_ne_bytes());
        bytes.extend_from_slice(&flags.to_ne_bytes());
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&[family, 0, 0, 0]);
        bytes.extend_from_slice(&attrs);
        let msg = Messages::new(&bytes).next().unwrap().unwrap();
        if let Ok(v) = Conntrack::parse(msg) {
            every_getter(&v);
        }
        let _ = ConntrackRepr::parse_msg(msg);
    }

    #[test]
    fn mutated_valid_messages_never_panic(r in repr(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut buf = vec![0u8; 8192];
        let mut w = Writer::new(&mut buf);
        let n = r.emit(&mut w, 0x100, 0, 1).unwrap().end;
        let bytes = &mut buf[..n];
        for (i, b) in flips {
            let i = 16 + i.index(n - 16);
            bytes[i] = b;
        }
        if let Some(Ok(msg)) = Messages::new(bytes).next() {
            if let Ok(v) = Conntrack::parse(msg) {
                every_getter(&v);
            }
        }
    }
}
