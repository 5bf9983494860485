//! Sans-IO bookkeeping of requests, replies and dumps: sequence numbers, who may answer,
//! `NLMSG_ERROR`, `NLMSG_DONE` and `NLM_F_DUMP_INTR`.
//!
//! The socket layer moves bytes; what they mean for the requests in flight is decided here, by
//! plain state machines that do no IO, read no clock, never allocate and never panic. Each
//! machine is fed the messages of every received datagram, one at a time, together with the
//! datagram's *sender address*, and answers with a step saying what the message is:
//!
//! - [`Exchange`]: one request sent with `NLM_F_ACK`: zero or more data replies, then an ACK
//!   or an error;
//! - [`Dump`]: one dump request: data messages (`NLM_F_MULTI`), then `NLMSG_DONE` with the
//!   dump's error code, or an `NLMSG_ERROR` when the dump could not start; a
//!   `NLM_F_DUMP_INTR` seen on any of them is remembered and reported at the end;
//! - [`AckTracker`]: many requests in flight at once (bulk), each answered by an ACK or an
//!   error that is matched back to the request by its sequence number.
//!
//! # Who may answer
//!
//! Any local process can send a datagram to a netlink socket's port id. A message is accepted
//! only when **both** hold:
//!
//! 1. the sender address that `recvmsg` reports (`nl_pid` of the `sockaddr_nl`) is
//!    [`KERNEL_PORTID`]. The header's `nlmsg_pid` proves nothing: it is whatever the sender
//!    wrote, and the kernel's own answers carry *our* port id there;
//! 2. its sequence number is one the machine is still waiting for.
//!
//! Everything else is [`Foreign`]: counted by the machine and reported, never interpreted.
//! Multicast events (sequence number 0) that reach a subscribed socket during a request are
//! foreign too.
//!
//! # Sequence numbers
//!
//! [`SeqCounter`] hands them out and never hands out 0, the number of kernel events, so an
//! event can never pass for an answer.
//!
//! # Example
//!
//! ```
//! use conntrack_codec::nfnl::{ct_msg, msg_type, NfGenMsg, Subsystem};
//! use conntrack_codec::nl::{flags, msgtype, Messages, Writer};
//! use conntrack_codec::session::{seal_request, Dump, SeqCounter, Step, KERNEL_PORTID};
//!
//! let mut seqs = SeqCounter::new(1);
//! let seq = seqs.next();
//!
//! // The request: a conntrack dump.
//! let mut req = [0u8; 32];
//! let mut w = Writer::new(&mut req);
//! w.message(msg_type(Subsystem::Ctnetlink, ct_msg::GET), 0, seq, 0, |w| {
//!     NfGenMsg { family: 2, version: 0, res_id: 0 }.emit(w)
//! })?;
//! let len = w.len();
//! seal_request(&mut req[..len], seq, flags::REQUEST | flags::DUMP)?;
//!
//! // What the kernel answers: one entry, then DONE (here built with the writer).
//! let mut reply = [0u8; 64];
//! let mut w = Writer::new(&mut reply);
//! w.message(msg_type(Subsystem::Ctnetlink, ct_msg::NEW), flags::MULTI, seq, 4242, |w| {
//!     NfGenMsg { family: 2, version: 0, res_id: 0 }.emit(w)
//! })?;
//! w.message(msgtype::DONE, flags::MULTI, seq, 4242, |w| w.raw(&0i32.to_ne_bytes()))?;
//! let len = w.len();
//!
//! let mut dump = Dump::new(seq);
//! let mut entries = 0;
//! for msg in Messages::new(&reply[..len]) {
//!     match dump.on_message(KERNEL_PORTID, msg?)? {
//!         Step::Data(_) => entries += 1,
//!         Step::Done => {}
//!         other => panic!("unexpected {other:?}"),
//!     }
//! }
//! assert!(dump.is_finished());
//! assert!(!dump.interrupted());
//! assert_eq!(entries, 1);
//! # Ok::<(), conntrack_codec::Error>(())
//! ```

use crate::nl::{align, Control, ExtAck, NlMsg, NlMsgHeader, NLMSG_MIN_TYPE};
use crate::{Error, Result};

/// The port id of the kernel: the only sender whose messages are accepted.
pub const KERNEL_PORTID: u32 = 0;

/// Hands out request sequence numbers: consecutive, wrapping, never 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SeqCounter {
    next: u32,
}

impl SeqCounter {
    /// A counter whose first number is `first` (1 if `first` is 0).
    #[inline]
    pub const fn new(first: u32) -> Self {
        SeqCounter {
            next: non_zero(first),
        }
    }

    /// The number [`next`](SeqCounter::next) will return, without taking it.
    #[inline]
    pub const fn peek(&self) -> u32 {
        self.next
    }

    /// Takes the next sequence number.
    #[inline]
    #[allow(clippy::should_implement_trait)] // Not an iterator: it never ends.
    pub fn next(&mut self) -> u32 {
        let seq = self.next;
        self.next = non_zero(seq.wrapping_add(1));
        seq
    }

    /// Takes `count` consecutive sequence numbers and returns the first: the block is
    /// `first..first + count`, and it neither wraps nor contains 0 (if the counter is too
    /// close to `u32::MAX`, the block starts again at 1).
    ///
    /// Returns `None`, taking nothing, if `count` is 0.
    pub fn reserve(&mut self, count: u32) -> Option<u32> {
        let last_offset = count.checked_sub(1)?;
        let first = match self.next.checked_add(last_offset) {
            Some(_) => self.next,
            None => 1,
        };
        let last = first.checked_add(last_offset)?;
        self.next = non_zero(last.wrapping_add(1));
        Some(first)
    }
}

impl Default for SeqCounter {
    /// A counter starting at 1.
    fn default() -> Self {
        SeqCounter::new(1)
    }
}

#[inline]
const fn non_zero(seq: u32) -> u32 {
    if seq == 0 {
        1
    } else {
        seq
    }
}

/// Makes a caller-built request ready to send: checks that `bytes` hold exactly one netlink
/// message of a protocol type with sequence number `seq`, and sets `flags` in its header
/// (keeping the flags already there).
///
/// Callers set at least `NLM_F_REQUEST`: without it the kernel does not run the request at
/// all, yet still acknowledges it when `NLM_F_ACK` is set.
///
/// # Errors
/// Errors of [`NlMsg::new_checked`] if `bytes` does not start with a whole message;
/// [`Error::InvalidValue`] if anything follows the message, if it is a netlink control
/// message, or if its sequence number is not `seq`.
pub fn seal_request(bytes: &mut [u8], seq: u32, flags: u16) -> Result<()> {
    let header = *NlMsg::new_checked(bytes)?.header();
    let len = usize::try_from(header.len).map_err(|_| Error::InvalidLength("request"))?;
    if len != bytes.len() && align(len) != Some(bytes.len()) {
        return Err(Error::InvalidValue(
            "request: exactly one netlink message expected",
        ));
    }
    if header.kind < NLMSG_MIN_TYPE {
        return Err(Error::InvalidValue("request: netlink control message type"));
    }
    if header.seq != seq {
        return Err(Error::InvalidValue("request: sequence number"));
    }
    NlMsgHeader {
        flags: header.flags | flags,
        ..header
    }
    .emit(bytes)
}

/// Why a received message was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Foreign {
    /// It was sent by a process (this port id), not by the kernel.
    Sender(u32),
    /// It came from the kernel, but nothing is waiting for this sequence number (an event, a
    /// late or repeated answer).
    Seq(u32),
}

/// A refusal by the kernel: an `NLMSG_ERROR` with a non-zero code, or an `NLMSG_DONE` that
/// ends a failed dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Failure<'a> {
    /// The positive errno (`EEXIST`, `ENOENT`, ...).
    pub errno: i32,
    /// The extended-ack attributes: the kernel's message, the offending attribute's offset in
    /// the request, a missing attribute.
    pub ext_ack: ExtAck<'a>,
}

/// What a received message means for an [`Exchange`] or a [`Dump`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Step<'a> {
    /// A data message answering the request: hand it to the caller.
    Data(NlMsg<'a>),
    /// The request succeeded (ACK), or the dump ended well (`NLMSG_DONE` with code 0): nothing
    /// more will come.
    Done,
    /// The kernel refused the request, or the dump failed: nothing more will come.
    Failed(Failure<'a>),
    /// Not an answer to this request: dropped, and counted by the machine.
    Foreign(Foreign),
    /// From the kernel, for this request, but nothing for the caller (`NLMSG_NOOP`,
    /// `NLMSG_OVERRUN`, an unknown control type).
    Ignored,
}

/// Counts one more foreign message and builds the step that reports it.
fn foreign<'a>(count: &mut u64, why: Foreign) -> Step<'a> {
    *count = count.saturating_add(1);
    Step::Foreign(why)
}

/// The gate every machine applies first: the sender, then the sequence number.
fn gate(sender: u32, seq: u32, waiting_for_seq: bool) -> Option<Foreign> {
    if sender != KERNEL_PORTID {
        Some(Foreign::Sender(sender))
    } else if !waiting_for_seq {
        Some(Foreign::Seq(seq))
    } else {
        None
    }
}

/// One request sent with `NLM_F_ACK`: data replies (if any), then the ACK or the error.
///
/// It is finished after the ACK or the error; from then on every message is foreign.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Exchange {
    seq: u32,
    finished: bool,
    foreign: u64,
}

impl Exchange {
    /// Waits for the answers to the request sent with sequence number `seq`.
    #[inline]
    pub const fn new(seq: u32) -> Self {
        Exchange {
            seq,
            finished: false,
            foreign: 0,
        }
    }

    /// The sequence number of the request.
    #[inline]
    pub const fn seq(&self) -> u32 {
        self.seq
    }

    /// Whether the ACK or the error has arrived.
    #[inline]
    pub const fn is_finished(&self) -> bool {
        self.finished
    }

    /// How many foreign messages were dropped.
    #[inline]
    pub const fn foreign(&self) -> u64 {
        self.foreign
    }

    /// Classifies one received message; `sender` is the port id of the datagram's sender
    /// address (not the header's `nlmsg_pid`).
    ///
    /// # Errors
    /// A malformed `NLMSG_ERROR` or `NLMSG_DONE` for this request (it then stays unfinished).
    pub fn on_message<'a>(&mut self, sender: u32, msg: NlMsg<'a>) -> Result<Step<'a>> {
        if let Some(why) = gate(sender, msg.seq(), !self.finished && msg.seq() == self.seq) {
            return Ok(foreign(&mut self.foreign, why));
        }
        Ok(match msg.control()? {
            None => Step::Data(msg),
            Some(Control::Error(e)) => {
                self.finished = true;
                if e.is_ack() {
                    Step::Done
                } else {
                    Step::Failed(Failure {
                        errno: e.errno(),
                        ext_ack: *e.ext_ack(),
                    })
                }
            }
            Some(Control::Done(_) | Control::Noop | Control::Overrun | Control::Unknown(_)) => {
                Step::Ignored
            }
        })
    }
}

/// One dump: data messages, then `NLMSG_DONE` (or an `NLMSG_ERROR` if it could not start).
///
/// `NLM_F_DUMP_INTR` on any message of the dump (the table changed during the walk, so some
/// entries may be missing or repeated) is remembered: check [`interrupted`](Dump::interrupted)
/// at the end and tell the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Dump {
    seq: u32,
    finished: bool,
    interrupted: bool,
    foreign: u64,
}

impl Dump {
    /// Waits for the parts of the dump requested with sequence number `seq`.
    #[inline]
    pub const fn new(seq: u32) -> Self {
        Dump {
            seq,
            finished: false,
            interrupted: false,
            foreign: 0,
        }
    }

    /// The sequence number of the dump request.
    #[inline]
    pub const fn seq(&self) -> u32 {
        self.seq
    }

    /// Whether the dump has ended (`NLMSG_DONE`, or an error).
    #[inline]
    pub const fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether any message of the dump carried `NLM_F_DUMP_INTR`.
    #[inline]
    pub const fn interrupted(&self) -> bool {
        self.interrupted
    }

    /// How many foreign messages were dropped.
    #[inline]
    pub const fn foreign(&self) -> u64 {
        self.foreign
    }

    /// Classifies one received message; `sender` is the port id of the datagram's sender
    /// address (not the header's `nlmsg_pid`).
    ///
    /// An ACK for the dump's sequence number also ends it: the kernel acknowledged a request
    /// that it did not run as a dump, and nothing more will come.
    ///
    /// # Errors
    /// A malformed `NLMSG_ERROR` or `NLMSG_DONE` for this dump (it then stays unfinished).
    pub fn on_message<'a>(&mut self, sender: u32, msg: NlMsg<'a>) -> Result<Step<'a>> {
        if let Some(why) = gate(sender, msg.seq(), !self.finished && msg.seq() == self.seq) {
            return Ok(foreign(&mut self.foreign, why));
        }
        let (code, ext_ack) = match msg.control()? {
            None => {
                self.interrupted |= msg.is_dump_intr();
                return Ok(Step::Data(msg));
            }
            Some(Control::Done(d)) => (d.code(), *d.ext_ack()),
            Some(Control::Error(e)) => (e.code(), *e.ext_ack()),
            Some(Control::Noop | Control::Overrun | Control::Unknown(_)) => {
                return Ok(Step::Ignored)
            }
        };
        self.interrupted |= msg.is_dump_intr();
        self.finished = true;
        Ok(if code == 0 {
            Step::Done
        } else {
            Step::Failed(Failure {
                errno: code.saturating_neg(),
                ext_ack,
            })
        })
    }
}

/// What a received message means for an [`AckTracker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AckStep<'a> {
    /// Request `index` succeeded.
    Acked {
        /// The request's index (0 for the first request of the tracker).
        index: u32,
    },
    /// The kernel refused request `index`.
    Failed {
        /// The request's index.
        index: u32,
        /// The errno and extended ack.
        failure: Failure<'a>,
    },
    /// From the kernel, for a request in flight, but not its answer (a data message or a
    /// control message other than `NLMSG_ERROR`): the request stays in flight.
    Ignored,
    /// Not an answer to any request in flight: dropped, and counted.
    Foreign(Foreign),
}

/// Tracks many requests in flight at once, each sent with `NLM_F_ACK` and answered by an
/// ACK or an error, matched back by sequence number (bulk operations).
///
/// Requests are numbered by an *index* `0..count`; request `i` carries sequence number
/// `first_seq + i` (reserve the block with [`SeqCounter::reserve`]). The tracker hands out
/// indices in order with [`next_request`](AckTracker::next_request) and
/// [`issue`](AckTracker::issue), and reports each answer once, in whatever order answers
/// come.
///
/// **Window.** At most `window` requests are in flight, counted from the oldest unanswered
/// one to the newest issued one (answered requests in between still count until every older
/// one is answered too). The kernel answers in order, so this is the number of unanswered
/// requests, and it bounds how many answers can wait in the socket's receive queue at once.
///
/// The bookkeeping lives in a caller's bitmap of [`words_for(window)`](AckTracker::words_for)
/// `u64` words: one bit per request in the window, reused as the window moves.
#[derive(Debug)]
pub struct AckTracker<'s> {
    bits: &'s mut [u64],
    capacity: u32,
    window: u32,
    first_seq: u32,
    count: u32,
    /// The oldest request not yet answered (all before it are answered).
    base: u32,
    /// Requests below this index were issued.
    sent: u32,
    outstanding: u32,
    foreign: u64,
}

/// Prints the counters, not the bitmap.
#[cfg(feature = "defmt")]
impl defmt::Format for AckTracker<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "AckTracker {{ first_seq: {}, count: {}, window: {}, answered below: {}, issued: {}, outstanding: {}, foreign: {} }}",
            self.first_seq,
            self.count,
            self.window,
            self.base,
            self.sent,
            self.outstanding,
            self.foreign
        );
    }
}

impl<'s> AckTracker<'s> {
    /// The number of `u64` words of bitmap needed for a window of `window` requests.
    #[inline]
    pub const fn words_for(window: u32) -> usize {
        // Widening: u32 always fits usize on the targets netlink exists for.
        window.div_ceil(64) as usize
    }

    /// Tracks `count` requests with sequence numbers `first_seq..first_seq + count`, at most
    /// `window` in flight, using `bits` for the bookkeeping.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if `window` is 0 or larger than `bits` can track
    /// (64 per word), or if the sequence numbers would wrap.
    pub fn new(first_seq: u32, count: u32, window: u32, bits: &'s mut [u64]) -> Result<Self> {
        let capacity = u32::try_from(bits.len())
            .ok()
            .and_then(|words| words.checked_mul(64))
            .unwrap_or(!63);
        if window == 0 || window > capacity {
            return Err(Error::InvalidValue("ack tracker window"));
        }
        if count > 0 && first_seq.checked_add(count.saturating_sub(1)).is_none() {
            return Err(Error::InvalidValue("ack tracker sequence numbers wrap"));
        }
        bits.fill(0);
        Ok(AckTracker {
            bits,
            capacity,
            window,
            first_seq,
            count,
            base: 0,
            sent: 0,
            outstanding: 0,
            foreign: 0,
        })
    }

    /// The index and sequence number of the next request to issue, or `None` if all were
    /// issued or the window is full.
    pub fn next_request(&self) -> Option<(u32, u32)> {
        let in_window = self.sent.saturating_sub(self.base);
        if self.sent < self.count && in_window < self.window {
            Some((self.sent, self.first_seq.wrapping_add(self.sent)))
        } else {
            None
        }
    }

    /// Marks the [`next_request`](AckTracker::next_request) as issued (sent, or about to be)
    /// and returns it.
    pub fn issue(&mut self) -> Option<(u32, u32)> {
        let next = self.next_request()?;
        self.sent = self.sent.saturating_add(1);
        self.outstanding = self.outstanding.saturating_add(1);
        Some(next)
    }

    /// Settles issued request `index` without an answer from the kernel (it could not be
    /// sent, or its answer was lost). Returns `false` if it is not in flight.
    pub fn settle(&mut self, index: u32) -> bool {
        if index < self.base || index >= self.sent || self.is_answered(index) {
            return false;
        }
        self.set_answered(index, true);
        self.outstanding = self.outstanding.saturating_sub(1);
        while self.base < self.sent && self.is_answered(self.base) {
            self.set_answered(self.base, false);
            self.base = self.base.saturating_add(1);
        }
        true
    }

    /// Settles the oldest request in flight (its answer will not come) and returns its
    /// index, or `None` if none is in flight.
    pub fn expire_oldest(&mut self) -> Option<u32> {
        let oldest = self.base;
        self.settle(oldest).then_some(oldest)
    }

    /// How many issued requests wait for their answer.
    #[inline]
    pub const fn outstanding(&self) -> u32 {
        self.outstanding
    }

    /// How many requests were issued so far.
    #[inline]
    pub const fn issued(&self) -> u32 {
        self.sent
    }

    /// Whether every request was issued and answered (or settled).
    #[inline]
    pub const fn is_finished(&self) -> bool {
        self.base >= self.count
    }

    /// How many foreign messages were dropped.
    #[inline]
    pub const fn foreign(&self) -> u64 {
        self.foreign
    }

    /// Classifies one received message; `sender` is the port id of the datagram's sender
    /// address (not the header's `nlmsg_pid`).
    ///
    /// # Errors
    /// A malformed `NLMSG_ERROR` for a request in flight (the request stays in flight).
    pub fn on_message<'a>(&mut self, sender: u32, msg: NlMsg<'a>) -> Result<AckStep<'a>> {
        let index = self.in_flight(msg.seq());
        if let Some(why) = gate(sender, msg.seq(), index.is_some()) {
            self.foreign = self.foreign.saturating_add(1);
            return Ok(AckStep::Foreign(why));
        }
        let (Some(index), Some(Control::Error(e))) = (index, msg.control()?) else {
            return Ok(AckStep::Ignored);
        };
        self.settle(index);
        Ok(if e.is_ack() {
            AckStep::Acked { index }
        } else {
            AckStep::Failed {
                index,
                failure: Failure {
                    errno: e.errno(),
                    ext_ack: *e.ext_ack(),
                },
            }
        })
    }

    /// The index of the request in flight with sequence number `seq`.
    fn in_flight(&self, seq: u32) -> Option<u32> {
        let index = seq.wrapping_sub(self.first_seq);
        (index >= self.base && index < self.sent && !self.is_answered(index)).then_some(index)
    }

    /// The bitmap word and mask of request `index`.
    fn slot(&self, index: u32) -> (usize, u64) {
        let slot = index.checked_rem(self.capacity).unwrap_or(0);
        let word = usize::try_from(slot >> 6).unwrap_or(usize::MAX);
        (word, 1u64.wrapping_shl(slot & 63))
    }

    fn is_answered(&self, index: u32) -> bool {
        let (word, mask) = self.slot(index);
        self.bits.get(word).is_some_and(|w| w & mask != 0)
    }

    fn set_answered(&mut self, index: u32, answered: bool) {
        let (word, mask) = self.slot(index);
        if let Some(w) = self.bits.get_mut(word) {
            if answered {
                *w |= mask;
            } else {
                *w &= !mask;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nl::{errattr, flags, msgtype, Messages, Writer};

    const CT_NEW: u16 = 0x0100;
    const OUR_PORT: u32 = 4242;

    /// A data message (an entry of a dump, or a GET reply).
    fn data(w: &mut Writer<'_>, seq: u32, fl: u16) {
        w.message(CT_NEW, fl, seq, OUR_PORT, |w| w.raw(&[2, 0, 0, 0]))
            .unwrap();
    }

    /// An `NLMSG_ERROR` (ACK when `errno` is 0), capped, with optional extended ack.
    fn error(w: &mut Writer<'_>, seq: u32, errno: i32, ext: Option<(&str, u32)>) {
        let fl = flags::CAPPED | if ext.is_some() { flags::ACK_TLVS } else { 0 };
        w.message(msgtype::ERROR, fl, seq, OUR_PORT, |w| {
            w.raw(&(-errno).to_ne_bytes())?;
            let mut echoed = [0u8; 16];
            NlMsgHeader {
                len: 40,
                kind: CT_NEW,
                flags: flags::REQUEST | flags::ACK,
                seq,
                pid: 0,
            }
            .emit(&mut echoed)?;
            w.raw(&echoed)?;
            if let Some((text, offset)) = ext {
                let mut s = [0u8; 64];
                s[..text.len()].copy_from_slice(text.as_bytes());
                w.attr(errattr::MSG, &s[..=text.len()])?;
                w.attr_u32_ne(errattr::OFFS, offset)?;
            }
            Ok(())
        })
        .unwrap();
    }

    fn done(w: &mut Writer<'_>, seq: u32, fl: u16, errno: i32) {
        w.message(msgtype::DONE, flags::MULTI | fl, seq, OUR_PORT, |w| {
            w.raw(&(-errno).to_ne_bytes())
        })
        .unwrap();
    }

    fn noop(w: &mut Writer<'_>, seq: u32) {
        w.message(msgtype::NOOP, 0, seq, OUR_PORT, |_| Ok(()))
            .unwrap();
    }

    /// Builds a datagram with `build` and returns its bytes.
    fn datagram(buf: &mut [u8], build: impl FnOnce(&mut Writer<'_>)) -> &[u8] {
        let mut w = Writer::new(buf);
        build(&mut w);
        w.into_written()
    }

    #[test]
    fn seq_counter_skips_zero_and_wraps() {
        let mut s = SeqCounter::new(0);
        assert_eq!(s.next(), 1);
        let mut s = SeqCounter::new(u32::MAX);
        assert_eq!(s.peek(), u32::MAX);
        assert_eq!(s.next(), u32::MAX);
        assert_eq!(s.next(), 1);
        assert_eq!(s.next(), 2);
        assert_eq!(SeqCounter::default().peek(), 1);
    }

    #[test]
    fn seq_counter_reserves_blocks_without_zero() {
        let mut s = SeqCounter::new(10);
        assert_eq!(s.reserve(0), None);
        assert_eq!(s.reserve(5), Some(10));
        assert_eq!(s.next(), 15);
        let mut s = SeqCounter::new(u32::MAX - 2);
        assert_eq!(s.reserve(3), Some(u32::MAX - 2));
        assert_eq!(s.peek(), 1);
        let mut s = SeqCounter::new(u32::MAX - 2);
        assert_eq!(s.reserve(4), Some(1));
        assert_eq!(s.next(), 5);
        let mut s = SeqCounter::new(7);
        assert_eq!(s.reserve(u32::MAX), Some(1));
        assert_eq!(s.peek(), 1);
    }

    #[test]
    fn seal_sets_flags_and_checks_the_request() {
        let mut buf = [0xa5u8; 64];
        let mut w = Writer::new(&mut buf);
        w.message(CT_NEW, flags::CREATE, 7, 0, |w| w.raw(&[2, 0, 0, 0]))
            .unwrap();
        let n = w.len();
        seal_request(&mut buf[..n], 7, flags::REQUEST | flags::ACK).unwrap();
        let m = NlMsg::new_checked(&buf[..n]).unwrap();
        assert_eq!(m.flags(), flags::CREATE | flags::REQUEST | flags::ACK);
        assert_eq!(m.seq(), 7);
        assert_eq!(m.payload(), &[2, 0, 0, 0]);

        assert_eq!(
            seal_request(&mut buf[..n], 8, flags::REQUEST),
            Err(Error::InvalidValue("request: sequence number"))
        );
        assert!(seal_request(&mut buf[..n + 4], 7, flags::REQUEST).is_err());
        assert!(seal_request(&mut [], 7, flags::REQUEST).is_err());

        let mut two = [0u8; 64];
        let mut w = Writer::new(&mut two);
        data(&mut w, 7, 0);
        data(&mut w, 7, 0);
        let n = w.len();
        assert!(seal_request(&mut two[..n], 7, flags::REQUEST).is_err());

        let mut ctl = [0u8; 64];
        let mut w = Writer::new(&mut ctl);
        noop(&mut w, 7);
        let n = w.len();
        assert!(seal_request(&mut ctl[..n], 7, flags::REQUEST).is_err());
    }

    #[test]
    fn exchange_reply_then_ack() {
        let mut buf = [0u8; 256];
        let bytes = datagram(&mut buf, |w| {
            data(w, 5, 0);
            error(w, 5, 0, None);
        });
        let mut ex = Exchange::new(5);
        let mut it = Messages::new(bytes);
        let step = ex.on_message(0, it.next().unwrap().unwrap()).unwrap();
        assert!(matches!(step, Step::Data(m) if m.kind() == CT_NEW));
        assert!(!ex.is_finished());
        let step = ex.on_message(0, it.next().unwrap().unwrap()).unwrap();
        assert_eq!(step, Step::Done);
        assert!(ex.is_finished());
        assert_eq!(ex.foreign(), 0);
        assert_eq!(ex.seq(), 5);
    }

    #[test]
    fn exchange_error_with_ext_ack() {
        let mut buf = [0u8; 256];
        let bytes = datagram(&mut buf, |w| {
            error(w, 9, 34, Some(("Attribute failed policy validation", 52)))
        });
        let mut ex = Exchange::new(9);
        let msg = Messages::new(bytes).next().unwrap().unwrap();
        let Step::Failed(f) = ex.on_message(0, msg).unwrap() else {
            panic!("not a failure")
        };
        assert_eq!(f.errno, 34);
        assert_eq!(f.ext_ack.msg, Some("Attribute failed policy validation"));
        assert_eq!(f.ext_ack.offset, Some(52));
        assert!(ex.is_finished());
    }

    #[test]
    fn exchange_drops_and_counts_foreign_messages() {
        let mut buf = [0u8; 512];
        let bytes = datagram(&mut buf, |w| {
            error(w, 3, 17, None); // forged: right seq, wrong sender
            error(w, 4, 0, None); // from the kernel but another seq
            noop(w, 3);
            error(w, 3, 0, None); // the real ACK
            error(w, 3, 0, None); // a repeat after the end
        });
        let senders = [1234, 0, 0, 0, 0];
        let mut ex = Exchange::new(3);
        let steps: [_; 5] = core::array::from_fn(|_| Step::Ignored);
        let mut steps = steps;
        for ((msg, sender), step) in Messages::new(bytes).zip(senders).zip(&mut steps) {
            *step = ex.on_message(sender, msg.unwrap()).unwrap();
        }
        assert_eq!(
            steps,
            [
                Step::Foreign(Foreign::Sender(1234)),
                Step::Foreign(Foreign::Seq(4)),
                Step::Ignored,
                Step::Done,
                Step::Foreign(Foreign::Seq(3)),
            ]
        );
        assert_eq!(ex.foreign(), 3);
    }

    #[test]
    fn exchange_reports_a_malformed_answer() {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        w.message(msgtype::ERROR, 0, 6, 0, |w| w.raw(&[0; 4]))
            .unwrap();
        let n = w.len();
        let msg = NlMsg::new_checked(&buf[..n]).unwrap();
        let mut ex = Exchange::new(6);
        assert!(matches!(ex.on_message(0, msg), Err(Error::Truncated(_))));
        assert!(!ex.is_finished());
        // The same bytes from someone else are foreign, not an error.
        assert!(matches!(ex.on_message(77, msg), Ok(Step::Foreign(_))));
    }

    #[test]
    fn dump_streams_until_done() {
        let mut buf = [0u8; 512];
        let bytes = datagram(&mut buf, |w| {
            data(w, 11, flags::MULTI);
            data(w, 11, flags::MULTI);
            data(w, 99, flags::MULTI); // another dump's
            noop(w, 11);
            data(w, 11, flags::MULTI);
            done(w, 11, 0, 0);
        });
        let mut d = Dump::new(11);
        let (mut entries, mut ends) = (0, 0);
        for msg in Messages::new(bytes) {
            match d.on_message(0, msg.unwrap()).unwrap() {
                Step::Data(_) => entries += 1,
                Step::Done => ends += 1,
                Step::Foreign(Foreign::Seq(99)) | Step::Ignored => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((entries, ends), (3, 1));
        assert!(d.is_finished());
        assert!(!d.interrupted());
        assert_eq!(d.foreign(), 1);
        assert_eq!(d.seq(), 11);
    }

    #[test]
    fn dump_remembers_dump_intr() {
        for (on_data, on_done) in [(flags::DUMP_INTR, 0), (0, flags::DUMP_INTR)] {
            let mut buf = [0u8; 256];
            let bytes = datagram(&mut buf, |w| {
                data(w, 2, flags::MULTI | on_data);
                data(w, 2, flags::MULTI);
                done(w, 2, on_done, 0);
            });
            let mut d = Dump::new(2);
            let mut last = Step::Ignored;
            for msg in Messages::new(bytes) {
                last = d.on_message(0, msg.unwrap()).unwrap();
            }
            assert_eq!(last, Step::Done);
            assert!(d.interrupted());
        }
    }

    #[test]
    fn dump_failures() {
        // A dump that could not start: NLMSG_ERROR with extended ack.
        let mut buf = [0u8; 256];
        let bytes = datagram(&mut buf, |w| {
            error(w, 4, 22, Some(("bad filter", 20)));
        });
        let mut d = Dump::new(4);
        let msg = Messages::new(bytes).next().unwrap().unwrap();
        let Step::Failed(f) = d.on_message(0, msg).unwrap() else {
            panic!("not a failure")
        };
        assert_eq!((f.errno, f.ext_ack.msg), (22, Some("bad filter")));
        assert!(d.is_finished());

        // A dump that failed midway: NLMSG_DONE with a negative code.
        let bytes = datagram(&mut buf, |w| {
            data(w, 4, flags::MULTI);
            done(w, 4, 0, 105);
        });
        let mut d = Dump::new(4);
        let steps: [_; 2] = core::array::from_fn(|_| Step::Ignored);
        let mut steps = steps;
        for (msg, step) in Messages::new(bytes).zip(&mut steps) {
            *step = d.on_message(0, msg.unwrap()).unwrap();
        }
        assert!(matches!(steps[0], Step::Data(_)));
        assert!(matches!(steps[1], Step::Failed(f) if f.errno == 105));
        assert!(d.is_finished());
    }

    #[test]
    fn dump_ignores_forged_parts_and_finishes_once() {
        let mut buf = [0u8; 256];
        let bytes = datagram(&mut buf, |w| {
            data(w, 8, flags::MULTI); // forged entry
            done(w, 8, 0, 0); // forged end
            data(w, 8, flags::MULTI);
            done(w, 8, 0, 0);
            done(w, 8, 0, 0);
        });
        let senders = [555, 555, 0, 0, 0];
        let mut d = Dump::new(8);
        let mut data_steps = 0;
        let mut done_steps = 0;
        for (msg, sender) in Messages::new(bytes).zip(senders) {
            match d.on_message(sender, msg.unwrap()).unwrap() {
                Step::Data(_) => data_steps += 1,
                Step::Done => done_steps += 1,
                Step::Foreign(_) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((data_steps, done_steps), (1, 1));
        assert_eq!(d.foreign(), 3);
    }

    #[test]
    fn dump_ended_by_an_ack() {
        let mut buf = [0u8; 128];
        let bytes = datagram(&mut buf, |w| error(w, 1, 0, None));
        let mut d = Dump::new(1);
        let msg = Messages::new(bytes).next().unwrap().unwrap();
        assert_eq!(d.on_message(0, msg).unwrap(), Step::Done);
        assert!(d.is_finished());
    }

    #[test]
    fn tracker_respects_the_window() {
        let mut bits = [0u64; 1];
        let mut t = AckTracker::new(100, 10, 3, &mut bits).unwrap();
        assert_eq!(t.issue(), Some((0, 100)));
        assert_eq!(t.issue(), Some((1, 101)));
        assert_eq!(t.issue(), Some((2, 102)));
        assert_eq!(t.next_request(), None);
        assert_eq!(t.issue(), None);
        assert_eq!(t.outstanding(), 3);
        assert_eq!(t.issued(), 3);

        // An answer to the middle one does not open the window: the oldest is unanswered.
        let mut buf = [0u8; 128];
        let bytes = datagram(&mut buf, |w| error(w, 101, 0, None));
        let msg = Messages::new(bytes).next().unwrap().unwrap();
        assert_eq!(t.on_message(0, msg).unwrap(), AckStep::Acked { index: 1 });
        assert_eq!(t.outstanding(), 2);
        assert_eq!(t.next_request(), None);

        let bytes = datagram(&mut buf, |w| error(w, 100, 17, None));
        let msg = Messages::new(bytes).next().unwrap().unwrap();
        assert!(matches!(
            t.on_message(0, msg).unwrap(),
            AckStep::Failed { index: 0, failure } if failure.errno == 17
        ));
        assert_eq!(t.next_request(), Some((3, 103)));
        assert_eq!(t.issue(), Some((3, 103)));
        assert_eq!(t.issue(), Some((4, 104)));
        assert_eq!(t.issue(), None);
    }

    #[test]
    fn tracker_answers_each_request_once_in_any_order() {
        const COUNT: u32 = 1000;
        let mut bits = [0u64; 2];
        let mut t = AckTracker::new(7, COUNT, 100, &mut bits).unwrap();
        let mut answered = [0u8; COUNT as usize];
        let mut buf = [0u8; 64];
        while !t.is_finished() {
            let mut batch = [0u32; 100];
            let mut n = 0;
            while let Some((index, seq)) = t.issue() {
                assert_eq!(seq, 7 + index);
                batch[n] = seq;
                n += 1;
            }
            // Answer backwards, each twice: the repeat is foreign.
            for &seq in batch[..n].iter().rev() {
                for _ in 0..2 {
                    let bytes = datagram(&mut buf, |w| error(w, seq, 0, None));
                    let msg = Messages::new(bytes).next().unwrap().unwrap();
                    match t.on_message(0, msg).unwrap() {
                        AckStep::Acked { index } => answered[index as usize] += 1,
                        AckStep::Foreign(Foreign::Seq(s)) => assert_eq!(s, seq),
                        other => panic!("{other:?}"),
                    }
                }
            }
            assert_eq!(t.outstanding(), 0);
        }
        assert!(answered.iter().all(|&n| n == 1));
        assert_eq!(t.foreign(), u64::from(COUNT));
    }

    #[test]
    fn tracker_gate_and_ignored_messages() {
        let mut bits = [0u64; 1];
        let mut t = AckTracker::new(1, 2, 2, &mut bits).unwrap();
        t.issue();
        let mut buf = [0u8; 256];
        let bytes = datagram(&mut buf, |w| {
            error(w, 1, 0, None); // forged
            data(w, 1, 0); // data for a request in flight
            error(w, 2, 0, None); // not issued yet
            error(w, 1, 0, None);
        });
        let senders = [9, 0, 0, 0];
        let mut steps = [AckStep::Ignored; 4];
        for ((msg, sender), step) in Messages::new(bytes).zip(senders).zip(&mut steps) {
            *step = t.on_message(sender, msg.unwrap()).unwrap();
        }
        assert_eq!(
            steps,
            [
                AckStep::Foreign(Foreign::Sender(9)),
                AckStep::Ignored,
                AckStep::Foreign(Foreign::Seq(2)),
                AckStep::Acked { index: 0 },
            ]
        );
        assert_eq!(t.foreign(), 2);
        assert!(!t.is_finished());
    }

    #[test]
    fn tracker_settles_and_expires() {
        let mut bits = [0u64; 1];
        let mut t = AckTracker::new(50, 4, 4, &mut bits).unwrap();
        for _ in 0..4 {
            t.issue();
        }
        assert!(t.settle(2));
        assert!(!t.settle(2));
        assert!(!t.settle(9));
        assert_eq!(t.expire_oldest(), Some(0));
        assert_eq!(t.expire_oldest(), Some(1));
        assert_eq!(t.expire_oldest(), Some(3));
        assert_eq!(t.expire_oldest(), None);
        assert!(t.is_finished());
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn tracker_rejects_bad_windows_and_wrapping_seqs() {
        let mut bits = [0u64; 1];
        assert!(AckTracker::new(1, 10, 0, &mut bits).is_err());
        assert!(AckTracker::new(1, 10, 65, &mut bits).is_err());
        assert!(AckTracker::new(1, 10, 64, &mut bits).is_ok());
        assert!(AckTracker::new(u32::MAX, 2, 1, &mut bits).is_err());
        assert!(AckTracker::new(u32::MAX, 1, 1, &mut bits).is_ok());
        assert!(AckTracker::new(1, 10, 1, &mut []).is_err());
        assert_eq!(AckTracker::words_for(64), 1);
        assert_eq!(AckTracker::words_for(65), 2);
        let t = AckTracker::new(1, 0, 1, &mut bits).unwrap();
        assert!(t.is_finished());
    }
}
