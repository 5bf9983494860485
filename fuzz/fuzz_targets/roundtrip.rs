//! Parse → emit → parse for `ConntrackRepr` and `ExpectRepr`: what parses must be written
//! back into exactly `buffer_len()` bytes (never fail for want of room, never write more),
//! parse again to the same value (less the unknown attributes found inside nests, which
//! emit does not write back), and emit again to the same bytes.
//!
//! The input is read as received netlink bytes and as the attributes of well-framed
//! conntrack and expectation messages.
#![no_main]

use conntrack_codec::ct::ConntrackRepr;
use conntrack_codec::exp::ExpectRepr;
use conntrack_codec::nfnl::{ct_msg, exp_msg, msg_type, NfMsg, Subsystem};
use conntrack_codec::nl::{flags, Messages, NlMsg, Writer};
use conntrack_fuzz::{emitted_unknowns, synth};
use libfuzzer_sys::fuzz_target;

/// Emits into a buffer prefilled with 0xa5 of exactly `len` bytes, and checks that one byte
/// less is refused with the writer left empty.
fn emit_exact(
    len: usize,
    emit: impl Fn(&mut Writer<'_>) -> conntrack_codec::Result<core::ops::Range<usize>>,
) -> Vec<u8> {
    let mut buf = vec![0xa5u8; len];
    let mut w = Writer::new(&mut buf);
    let range = emit(&mut w).expect("emit into buffer_len() bytes");
    assert_eq!(range, 0..len, "buffer_len() is the emitted length");
    assert_eq!(w.len(), len);
    if let Some(short) = len.checked_sub(1) {
        let mut small = vec![0u8; short];
        let mut w = Writer::new(&mut small);
        assert!(emit(&mut w).is_err());
        assert!(w.is_empty(), "a failed emit leaves the writer as it was");
    }
    buf
}

fn only(bytes: &[u8]) -> NlMsg<'_> {
    let mut it = Messages::new(bytes);
    let m = it.next().expect("one message").expect("well formed");
    assert!(it.next().is_none());
    m
}

fn check(msg: NlMsg<'_>) {
    let Ok(nf) = NfMsg::new_checked(msg) else {
        return;
    };
    let (kind, fl, seq) = (msg.kind(), msg.flags(), msg.seq());
    if let Ok(first) = ConntrackRepr::parse(&nf) {
        let bytes = emit_exact(first.buffer_len(), |w| first.emit(w, kind, fl, seq));
        let second = ConntrackRepr::parse_msg(only(&bytes)).expect("emitted bytes parse");
        let expected = ConntrackRepr {
            unknown: emitted_unknowns(&first.unknown),
            ..first.clone()
        };
        assert_eq!(second, expected);
        let again = emit_exact(second.buffer_len(), |w| second.emit(w, kind, fl, seq));
        assert_eq!(again, bytes, "emit is canonical");
    }
    if let Ok(first) = ExpectRepr::parse(&nf) {
        let bytes = emit_exact(first.buffer_len(), |w| first.emit(w, kind, fl, seq));
        let second = ExpectRepr::parse_msg(only(&bytes)).expect("emitted bytes parse");
        let expected = ExpectRepr {
            unknown: emitted_unknowns(&first.unknown),
            ..first.clone()
        };
        assert_eq!(second, expected);
        let again = emit_exact(second.buffer_len(), |w| second.emit(w, kind, fl, seq));
        assert_eq!(again, bytes, "emit is canonical");
    }
}

fuzz_target!(|data: &[u8]| {
    for msg in Messages::new(data) {
        let Ok(msg) = msg else { break };
        check(msg);
    }
    let family = data.first().copied().unwrap_or(2);
    for kind in [
        msg_type(Subsystem::Ctnetlink, ct_msg::NEW),
        msg_type(Subsystem::CtnetlinkExp, exp_msg::NEW),
    ] {
        let bytes = synth(kind, flags::MULTI, family, 0, data);
        check(NlMsg::new_checked(&bytes).expect("well framed"));
    }
});
