//! The sans-IO session machines (`Exchange`, `Dump`, `AckTracker`) fed arbitrary messages
//! from arbitrary senders, as a forger on the same host would send them. Whatever arrives:
//! nothing from a sender other than the kernel is ever accepted, nothing with a sequence
//! number not awaited is accepted, an answer is reported at most once per request, and a
//! finished machine accepts nothing more.
#![no_main]

use std::collections::HashSet;

use arbitrary::Arbitrary;
use conntrack_codec::nl::{msgtype, Messages, NlMsgHeader};
use conntrack_codec::session::{AckStep, AckTracker, Dump, Exchange, Foreign, Step, KERNEL_PORTID};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Seq {
    /// The exchange's or dump's own number.
    Own,
    /// One of the bulk block (offset from its first).
    Bulk(u8),
    /// Anything.
    Any(u32),
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// A datagram of one message, from the kernel or from another port id.
    Deliver {
        sender: Option<u32>,
        seq: Seq,
        kind: u16,
        flags: u16,
        payload: Vec<u8>,
        /// Lie about nlmsg_len by this much.
        len_delta: i8,
    },
    /// Issue the next bulk request.
    Issue,
    /// Give up on the oldest bulk request.
    Expire,
    /// Settle a bulk request without an answer.
    Settle(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    seq: u32,
    first_seq: u32,
    count: u8,
    window: u8,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let mut exchange = Exchange::new(input.seq);
    let mut dump = Dump::new(input.seq);
    let mut bits = [0u64; 4];
    let window = u32::from(input.window);
    let count = u32::from(input.count);
    let mut tracker = match AckTracker::new(input.first_seq, count, window, &mut bits) {
        Ok(t) => Some(t),
        Err(_) => {
            assert!(
                window == 0
                    || window > 256
                    || input
                        .first_seq
                        .checked_add(count.saturating_sub(1))
                        .is_none()
            );
            None
        }
    };
    let mut answered = HashSet::new();
    let mut buf = Vec::new();
    for op in input.ops.iter().take(256) {
        let Some(t) = tracker.as_mut() else { break };
        match op {
            Op::Issue => {
                if let Some((index, seq)) = t.issue() {
                    assert_eq!(seq, input.first_seq.wrapping_add(index));
                    assert!(index < count);
                }
            }
            Op::Expire => {
                if let Some(index) = t.expire_oldest() {
                    assert!(answered.insert(index), "request {index} settled twice");
                }
            }
            Op::Settle(i) => {
                if t.settle(u32::from(*i)) {
                    assert!(answered.insert(u32::from(*i)), "request {i} settled twice");
                }
            }
            Op::Deliver {
                sender,
                seq,
                kind,
                flags,
                payload,
                len_delta,
            } => {
                let sender = sender.unwrap_or(KERNEL_PORTID);
                let seq = match seq {
                    Seq::Own => input.seq,
                    Seq::Bulk(i) => input.first_seq.wrapping_add(u32::from(*i)),
                    Seq::Any(s) => *s,
                };
                let len = (NlMsgHeader::LEN + payload.len()) as i64 + i64::from(*len_delta);
                buf.clear();
                buf.resize(NlMsgHeader::LEN, 0);
                NlMsgHeader {
                    len: len.clamp(0, i64::from(u32::MAX)) as u32,
                    kind: *kind,
                    flags: *flags,
                    seq,
                    pid: sender,
                }
                .emit(&mut buf)
                .expect("16 bytes");
                buf.extend_from_slice(payload);
                for msg in Messages::new(&buf) {
                    let Ok(msg) = msg else { break };
                    let was_finished = (exchange.is_finished(), dump.is_finished());
                    let foreign = (exchange.foreign(), dump.foreign(), t.foreign());
                    let e = exchange.on_message(sender, msg);
                    let d = dump.on_message(sender, msg);
                    let a = t.on_message(sender, msg);
                    if sender != KERNEL_PORTID {
                        assert_eq!(e, Ok(Step::Foreign(Foreign::Sender(sender))));
                        assert_eq!(d, Ok(Step::Foreign(Foreign::Sender(sender))));
                        assert_eq!(a, Ok(AckStep::Foreign(Foreign::Sender(sender))));
                        assert_eq!(
                            (exchange.foreign(), dump.foreign(), t.foreign()),
                            (foreign.0 + 1, foreign.1 + 1, foreign.2 + 1)
                        );
                        continue;
                    }
                    if seq != input.seq || was_finished.0 {
                        assert_eq!(e, Ok(Step::Foreign(Foreign::Seq(seq))));
                    }
                    if seq != input.seq || was_finished.1 {
                        assert_eq!(d, Ok(Step::Foreign(Foreign::Seq(seq))));
                    }
                    // Only an NLMSG_ERROR ends an exchange; an ERROR or a DONE ends a dump.
                    if exchange.is_finished() && !was_finished.0 {
                        assert_eq!(msg.kind(), msgtype::ERROR);
                        assert!(matches!(e, Ok(Step::Done | Step::Failed(_))));
                    }
                    if dump.is_finished() && !was_finished.1 {
                        assert!(msg.kind() == msgtype::ERROR || msg.kind() == msgtype::DONE);
                    }
                    if let Ok(AckStep::Acked { index } | AckStep::Failed { index, .. }) = a {
                        assert_eq!(msg.kind(), msgtype::ERROR);
                        assert_eq!(seq, input.first_seq.wrapping_add(index));
                        assert!(index < t.issued());
                        assert!(answered.insert(index), "request {index} answered twice");
                    }
                }
            }
        }
        assert!(t.outstanding() <= window);
        assert_eq!(
            t.outstanding() as usize,
            t.issued() as usize - answered.len()
        );
    }
});
