//! Requests and their answers: [`Socket::execute`], [`Socket::request`], [`Socket::dump`] and
//! [`Socket::bulk`].
//!
//! Each operation writes its request(s) into the socket's send buffer, sends them, and feeds
//! every received message to a state machine of [`conntrack_codec::session`], which decides
//! what it is; the messages are parsed in place in the socket's receive buffer.

use std::ops::ControlFlow;
use std::os::fd::AsFd;

use conntrack_codec::nfnl::NfMsg;
use conntrack_codec::nl::{flags, Messages, NlMsg, NlMsgHeader, Writer};
use conntrack_codec::session::{
    seal_request, AckStep, AckTracker, Dump, Exchange, Step, KERNEL_PORTID,
};
use nix::sys::socket::MsgFlags;

use crate::error::{Error, KernelError, Result};
use crate::socket::{recv_datagram, Socket};

/// What [`Socket::dump`] reports when the dump ended well.
///
/// Check [`interrupted`](DumpSummary::interrupted), or call
/// [`consistent`](DumpSummary::consistent): an interrupted dump delivered every entry it
/// walked, but the table changed under the walk.
#[must_use = "an interrupted dump may have missed or repeated entries: check `interrupted`"]
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DumpSummary {
    /// Data messages handed to the callback.
    pub delivered: u64,
    /// Entries the kernel sent that the exact userspace match of the filter left out
    /// ([`Socket::list`]: the kernel's part of a filter selects more than the whole); 0 for
    /// raw dumps.
    pub skipped: u64,
    /// Whether the callback stopped the dump early (the rest was read and dropped).
    pub stopped: bool,
    /// Whether the kernel flagged the dump with `NLM_F_DUMP_INTR`: the table changed during
    /// the walk, so entries may be missing or repeated; run the dump again for a consistent
    /// view.
    pub interrupted: bool,
    /// Messages dropped during the dump because they were not part of it (forged, stray).
    pub foreign: u64,
}

impl DumpSummary {
    /// Turns an interrupted dump into an error.
    ///
    /// # Errors
    /// [`Error::DumpInterrupted`] if [`interrupted`](DumpSummary::interrupted) is set.
    pub fn consistent(self) -> Result<Self> {
        if self.interrupted {
            Err(Error::DumpInterrupted)
        } else {
            Ok(self)
        }
    }
}

/// What [`Socket::bulk`] did, in totals (each request's own result went to the callback).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BulkSummary {
    /// Requests the kernel acknowledged.
    pub succeeded: usize,
    /// Requests that failed: refused by the kernel, not built, not sent, or answer lost.
    pub failed: usize,
    /// Datagrams sent (each holds many requests).
    pub datagrams: usize,
    /// Messages dropped because they answered none of the requests in flight.
    pub foreign: u64,
}

/// How a bulk operation learns the outcome of its requests; see [`Socket::bulk_with_acks`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// `NLM_F_ACK` on every request: one answer per request, success or failure.
    #[default]
    EachRequest,
    /// `NLM_F_ACK` on the last request of each datagram only. The kernel answers a failure
    /// whatever the flags, and runs a datagram's requests in order, queueing their answers
    /// before `sendmsg` returns; so once the last request's answer is in and the socket's
    /// drop counter has not moved, every request of the datagram that got no answer
    /// succeeded. It saves the kernel an answer per request and the caller a `recvmsg`
    /// per answer (about a third of the kernel time of a bulk create, see
    /// `docs/performance.md`), and the receive queue then only needs room for failures.
    /// If the drop counter moved (answers were lost), the requests without an answer are
    /// reported as [`Error::Overrun`]: their outcome is unknown.
    PerDatagram,
}

/// A request builder: writes one whole message with the given sequence number.
trait Build: FnOnce(&mut Writer<'_>, u32) -> conntrack_codec::Result<()> {}
impl<B: FnOnce(&mut Writer<'_>, u32) -> conntrack_codec::Result<()>> Build for B {}

/// The receiving side of one operation, driven by [`Socket::receive`].
trait Handler {
    /// One message of a datagram from `sender`, at `offset` in the datagram.
    fn on_message(&mut self, sender: u32, msg: NlMsg<'_>, offset: usize);
    /// A failure: stop handing messages to the caller and remember the first one.
    fn fail(&mut self, error: Error);
    /// Whether everything awaited has arrived.
    fn is_finished(&self) -> bool;
}

/// How [`Socket::receive`] stopped.
enum Drained {
    /// The handler has everything it waited for.
    Finished,
    /// The receive queue is empty; `overrun` if the kernel reported `ENOBUFS` meanwhile.
    Empty { overrun: bool },
}

/// The error for an answer that will not come.
fn lost(overrun: bool) -> Error {
    if overrun {
        Error::Overrun
    } else {
        Error::NoAnswer
    }
}

/// Sets or clears `NLM_F_ACK` in the header of the message at the start of `bytes`.
fn set_ack(bytes: &mut [u8], on: bool) -> conntrack_codec::Result<()> {
    let mut header = NlMsgHeader::parse(bytes)?;
    if on {
        header.flags |= flags::ACK;
    } else {
        header.flags &= !flags::ACK;
    }
    header.emit(bytes)
}

fn to_usize(index: u32) -> usize {
    usize::try_from(index).unwrap_or(usize::MAX)
}

impl Socket {
    /// Sends one request and waits for its acknowledgement.
    ///
    /// `build` writes one whole netlink message into the send buffer with the sequence number
    /// it is given; `NLM_F_REQUEST` and `NLM_F_ACK` are set on it whatever it wrote. Data
    /// messages answering the request, if any, are dropped.
    ///
    /// # Errors
    /// [`Error::Build`] if `build` fails or does not write exactly one message with the
    /// given sequence number; [`Error::Kernel`] if the kernel refuses the request (errno,
    /// and with `NETLINK_EXT_ACK` the message and attribute offset); [`Error::Codec`],
    /// [`Error::Truncated`], [`Error::Overrun`], [`Error::NoAnswer`] and [`Error::Sys`] as
    /// described on [`Error`].
    pub fn execute<B>(&mut self, build: B) -> Result<()>
    where
        B: FnOnce(&mut Writer<'_>, u32) -> conntrack_codec::Result<()>,
    {
        self.exchange(build, None::<fn(NfMsg<'_>)>).map(drop)
    }

    /// Sends one request answered by one data message (such as the GET of one entry) and
    /// hands that reply, parsed in place in the receive buffer, to `on_reply`; returns what
    /// `on_reply` returns.
    ///
    /// `NLM_F_REQUEST` and `NLM_F_ACK` are set on the request, and the call returns after
    /// the acknowledgement; should the kernel send more than one data message, only the
    /// first is handed over.
    ///
    /// # Errors
    /// As [`execute`](Socket::execute); [`Error::Codec`] if the kernel acknowledged without
    /// a reply, or if the reply is not an nfnetlink message.
    pub fn request<B, F, R>(&mut self, build: B, on_reply: F) -> Result<R>
    where
        B: FnOnce(&mut Writer<'_>, u32) -> conntrack_codec::Result<()>,
        F: FnOnce(NfMsg<'_>) -> R,
    {
        self.exchange(build, Some(on_reply))?.ok_or(Error::Codec {
            error: conntrack_codec::Error::UnexpectedMessage("acknowledgement without a reply"),
            offset: None,
        })
    }

    fn exchange<B: Build, F, R>(&mut self, build: B, on_reply: Option<F>) -> Result<Option<R>>
    where
        F: FnOnce(NfMsg<'_>) -> R,
    {
        let (seq, len) = self.write_request(build, flags::REQUEST | flags::ACK)?;
        self.send(self.tx.get(..len).unwrap_or_default())?;
        let mut h = ExchangeHandler {
            exchange: Exchange::new(seq),
            on_reply,
            reply: None,
            error: None,
        };
        let drained = self.receive(&mut h);
        self.foreign = self.foreign.saturating_add(h.exchange.foreign());
        if let Drained::Empty { overrun } = drained? {
            h.fail(lost(overrun));
        }
        match h.error {
            Some(e) => Err(e),
            None => Ok(h.reply),
        }
    }

    /// Sends a dump request and streams its answer: `on_msg` gets each data message, parsed
    /// in place in the receive buffer (nothing is allocated per message), and returns
    /// whether to go on.
    ///
    /// `build` writes the request (such as a conntrack GET) with the sequence number it is
    /// given; `NLM_F_REQUEST` and `NLM_F_DUMP` are set on it whatever it wrote. When
    /// `on_msg` returns [`ControlFlow::Break`], the rest of the dump is read and dropped, so
    /// the socket is ready for the next request when this returns.
    ///
    /// Check [`DumpSummary::interrupted`]: the kernel flags a dump during which the table
    /// changed (`NLM_F_DUMP_INTR`).
    ///
    /// # Errors
    /// [`Error::Build`]; [`Error::Kernel`] if the dump could not start or failed midway;
    /// [`Error::Truncated`] if a datagram did not fit the receive buffer (entries were
    /// lost; the rest of the dump is read and dropped); [`Error::Codec`] for a malformed
    /// message; [`Error::Overrun`], [`Error::NoAnswer`], [`Error::Sys`]. After an error,
    /// no more messages are handed to `on_msg`.
    pub fn dump<B, F>(&mut self, build: B, on_msg: F) -> Result<DumpSummary>
    where
        B: FnOnce(&mut Writer<'_>, u32) -> conntrack_codec::Result<()>,
        F: FnMut(NfMsg<'_>) -> ControlFlow<()>,
    {
        let (seq, len) = self.write_request(build, flags::REQUEST | flags::DUMP)?;
        self.send(self.tx.get(..len).unwrap_or_default())?;
        let mut h = DumpHandler {
            dump: Dump::new(seq),
            on_msg,
            summary: DumpSummary::default(),
            error: None,
        };
        // Forged datagrams that do not even parse are counted by `receive`, the others by
        // the dump's gate: the summary reports both.
        let foreign_before = self.foreign;
        let drained = self.receive(&mut h);
        self.foreign = self.foreign.saturating_add(h.dump.foreign());
        if let Drained::Empty { overrun } = drained? {
            h.fail(lost(overrun));
        }
        match h.error {
            Some(e) => Err(e),
            None => Ok(DumpSummary {
                interrupted: h.dump.interrupted(),
                foreign: self.foreign.saturating_sub(foreign_before),
                ..h.summary
            }),
        }
    }

    /// Runs `count` requests with many of them in flight at once, each acknowledged, and
    /// calls `on_result` exactly once per request, in the order the answers come.
    ///
    /// `build(index, writer, seq)` writes request `index` (`0..count`) with sequence number
    /// `seq`; `NLM_F_REQUEST` and `NLM_F_ACK` are set on it whatever it wrote. As many
    /// requests as fit in the send buffer go out in one datagram (one `sendmsg`). `build`
    /// may be called more than once for an index: when a request does not fit in what is
    /// left of a datagram, it is written again at the start of the next one.
    ///
    /// **Window.** At most `window` requests are in flight — sent, and not yet answered
    /// (counted from the oldest unanswered one). The kernel runs the requests of a datagram
    /// while `sendmsg` is in progress and queues one answer per request on the socket, each
    /// costing about 830 bytes of the receive queue (measured on Linux 6.18; `SO_RCVBUF`,
    /// see [`set_rcvbuf`](Socket::set_rcvbuf)) however small the answer; answers that do
    /// not fit are dropped. So keep `window` below `rcvbuf / 1024`: about 200 for the
    /// default queue of 208 KiB, thousands after enlarging it. For the same reason the call
    /// turns `NETLINK_CAP_ACK` on while it runs (and back off if it was off), so that errors
    /// are as small as ACKs instead of echoing the whole request. Answers lost anyway are
    /// reported to
    /// `on_result` as [`Error::Overrun`] (or [`Error::NoAnswer`]), never waited for; a lost
    /// answer means the outcome is unknown, not that the request failed.
    ///
    /// Nothing is allocated per request: the requests are written into the socket's send
    /// buffer and the answers read in its receive buffer. The window's bookkeeping is a
    /// bitmap of `window / 8` bytes, on the stack for windows up to 4096 and allocated once
    /// per call above that.
    ///
    /// # Errors
    /// [`Error::Build`] if `window` is 0 or `count` exceeds `u32::MAX`, and [`Error::Sys`]
    /// if `NETLINK_CAP_ACK` cannot be read or set: then nothing was sent and `on_result` was
    /// not called. [`Error::Sys`] if `NETLINK_CAP_ACK` cannot be turned off again at the
    /// end: every result went to `on_result` all the same. Otherwise the call returns `Ok`
    /// with totals, and each request's outcome (including [`Error::Build`] for a request
    /// that could not be written, [`Error::Kernel`] for a refusal, [`Error::Sys`] if its
    /// datagram could not be sent) went to `on_result`.
    pub fn bulk<B, R>(
        &mut self,
        count: usize,
        window: usize,
        build: B,
        on_result: R,
    ) -> Result<BulkSummary>
    where
        B: FnMut(usize, &mut Writer<'_>, u32) -> conntrack_codec::Result<()>,
        R: FnMut(usize, Result<()>),
    {
        self.bulk_with_acks(count, window, Acks::EachRequest, build, on_result)
    }

    /// [`bulk`](Socket::bulk), choosing how the outcomes are learnt: with
    /// [`Acks::PerDatagram`], only the last request of each datagram carries `NLM_F_ACK`,
    /// and the others are known to have succeeded when that one is answered and no answer
    /// was lost. Each request's result still goes to `on_result` exactly once.
    ///
    /// With [`Acks::PerDatagram`] the kernel queues only failures and one answer per
    /// datagram, so `window` is no longer bounded by the receive queue's room for answers
    /// (only failures need room); and if the socket's drop counter cannot be read
    /// (`SO_MEMINFO`), every request is acknowledged as with [`Acks::EachRequest`].
    ///
    /// # Errors
    /// As [`bulk`](Socket::bulk).
    pub fn bulk_with_acks<B, R>(
        &mut self,
        count: usize,
        window: usize,
        acks: Acks,
        build: B,
        on_result: R,
    ) -> Result<BulkSummary>
    where
        B: FnMut(usize, &mut Writer<'_>, u32) -> conntrack_codec::Result<()>,
        R: FnMut(usize, Result<()>),
    {
        let count = u32::try_from(count)
            .map_err(|_| Error::Build(conntrack_codec::Error::TooLong("bulk request count")))?;
        if window == 0 {
            return Err(Error::Build(conntrack_codec::Error::InvalidValue(
                "bulk window of 0",
            )));
        }
        if count == 0 {
            return Ok(BulkSummary::default());
        }
        let restore_cap_ack = !self.cap_ack()?;
        if restore_cap_ack {
            self.set_cap_ack(true)?;
        }
        let summary = self.bulk_with_cap_ack(count, window, acks, build, on_result);
        if restore_cap_ack {
            self.set_cap_ack(false)?;
        }
        summary
    }

    /// [`bulk`](Socket::bulk) once its arguments are checked (`count` > 0, `window` > 0) and
    /// `NETLINK_CAP_ACK` is on.
    fn bulk_with_cap_ack<B, R>(
        &mut self,
        count: u32,
        window: usize,
        acks: Acks,
        mut build: B,
        on_result: R,
    ) -> Result<BulkSummary>
    where
        B: FnMut(usize, &mut Writer<'_>, u32) -> conntrack_codec::Result<()>,
        R: FnMut(usize, Result<()>),
    {
        // As in `dump`: the summary counts the unparsable forgeries `receive` drops too.
        let foreign_before = self.foreign;
        let first_seq =
            self.seqs
                .reserve(count)
                .ok_or(Error::Build(conntrack_codec::Error::InvalidValue(
                    "bulk request count of 0",
                )))?;
        let window = u32::try_from(window).unwrap_or(u32::MAX).min(count);
        // The window's bitmap: on the stack up to a window of 4096, else allocated.
        let words = AckTracker::words_for(window);
        let mut on_stack = [0u64; 64];
        let mut on_heap = Vec::new();
        let bits = match on_stack.get_mut(..words) {
            Some(bits) => bits,
            None => {
                on_heap.resize(words, 0);
                &mut on_heap[..]
            }
        };
        let tracker = AckTracker::new(first_seq, count, window, bits).map_err(Error::Build)?;
        let mut h = BulkHandler {
            tracker,
            on_result,
            summary: BulkSummary::default(),
            error: None,
            overrun: false,
            barrier: None,
            barrier_answered: false,
        };
        // Per-datagram acknowledgements need the drop counter, to know no failure was lost.
        let mut drops = match acks {
            Acks::PerDatagram => self.drops().ok(),
            Acks::EachRequest => None,
        };
        let request_flags = if drops.is_some() {
            flags::REQUEST
        } else {
            flags::REQUEST | flags::ACK
        };
        while !h.tracker.is_finished() {
            let round_start = h.tracker.issued();
            let mut used = 0;
            // The last request written into this datagram: offset, length, index, seq.
            let mut last = None;
            while let Some((index, seq)) = h.tracker.next_request() {
                let room = self.tx.get_mut(used..).unwrap_or_default();
                let mut w = Writer::new(room);
                let built = build(to_usize(index), &mut w, seq);
                let len = w.len();
                let sealed = built.and_then(|()| {
                    let bytes = room.get_mut(..len).unwrap_or_default();
                    seal_request(bytes, seq, request_flags)?;
                    if drops.is_some() {
                        // Only the datagram's last request is acknowledged (set below).
                        set_ack(bytes, false)?;
                    }
                    Ok(())
                });
                match sealed {
                    Ok(()) => {
                        last = Some((used, len, index, seq));
                        used += len;
                        h.tracker.issue();
                    }
                    // Full: send what is there, and write this one again into the next datagram.
                    Err(conntrack_codec::Error::BufferTooSmall) if used > 0 => break,
                    Err(e) => {
                        h.tracker.issue();
                        h.settle(index, Err(Error::Build(e)));
                    }
                }
            }
            if let (Some(_), Some((offset, len, index, seq))) = (drops, last) {
                // The datagram's last request is acknowledged, success or not.
                let bytes = self.tx.get_mut(offset..offset + len).unwrap_or_default();
                if seal_request(bytes, seq, flags::REQUEST | flags::ACK).is_ok() {
                    h.barrier = Some((round_start, index));
                    h.barrier_answered = false;
                }
            }
            if used > 0 {
                h.summary.datagrams += 1;
                if let Err(e) = self.send(self.tx.get(..used).unwrap_or_default()) {
                    for index in round_start..h.tracker.issued() {
                        h.settle(index, Err(e.clone()));
                    }
                }
            }
            let drained = self.receive(&mut h);
            if let Some((start, barrier)) = h.barrier.take() {
                // Everything the kernel queued for this datagram has been read: the requests
                // before its acknowledged last one that got no answer succeeded, unless
                // answers were dropped on the way.
                let now = self.drops().ok();
                let lost = now.is_none()
                    || now != drops
                    || matches!(drained, Ok(Drained::Empty { overrun: true }));
                drops = now.or(drops);
                if h.barrier_answered {
                    for index in start..barrier {
                        h.settle(index, if lost { Err(Error::Overrun) } else { Ok(()) });
                    }
                }
            }
            match drained {
                Ok(Drained::Finished) => {}
                Ok(Drained::Empty { overrun }) => {
                    h.overrun |= overrun;
                    // The kernel answers a datagram before `sendmsg` returns: with the queue
                    // empty and no room to send more, the answers still missing are lost.
                    if h.tracker.next_request().is_none() {
                        let e = h.error.take().unwrap_or_else(|| lost(h.overrun));
                        h.overrun = false;
                        h.expire_all(&e);
                    }
                }
                Err(e) => {
                    // The socket itself failed: whatever is left fails with it.
                    h.expire_all(&e);
                    while let Some((index, _)) = h.tracker.issue() {
                        h.settle(index, Err(e.clone()));
                    }
                }
            }
        }
        self.foreign = self.foreign.saturating_add(h.tracker.foreign());
        h.summary.foreign = self.foreign.saturating_sub(foreign_before);
        Ok(h.summary)
    }

    /// Writes one request with the next sequence number into the send buffer and seals it
    /// with `flags`; returns the sequence number and the request's length.
    fn write_request<B: Build>(&mut self, build: B, flags: u16) -> Result<(u32, usize)> {
        let seq = self.seqs.next();
        let mut w = Writer::new(&mut self.tx);
        build(&mut w, seq).map_err(Error::Build)?;
        let len = w.len();
        let bytes = self.tx.get_mut(..len).unwrap_or_default();
        seal_request(bytes, seq, flags).map_err(Error::Build)?;
        Ok((seq, len))
    }

    /// Reads datagrams into the receive buffer, without blocking, and feeds their messages
    /// to `h` until it is finished or the receive queue is empty.
    ///
    /// It never blocks, whatever the socket's mode: the kernel queues the answers to a
    /// request before `sendmsg` returns, and queues the next part of a dump before the
    /// `recvmsg` that consumed the previous one returns. An empty queue while answers are
    /// awaited therefore means they were dropped, which a blocking read would wait for
    /// forever.
    ///
    /// # Errors
    /// [`Error::Sys`] from `recvmsg`. Everything else goes to `h.fail`.
    fn receive<H: Handler>(&mut self, h: &mut H) -> Result<Drained> {
        let mut overrun = false;
        while !h.is_finished() {
            let d = match recv_datagram(self.fd.as_fd(), &mut self.rx, MsgFlags::MSG_DONTWAIT) {
                Ok(d) => d,
                Err(Error::WouldBlock) => return Ok(Drained::Empty { overrun }),
                Err(Error::Overrun) => {
                    overrun = true;
                    self.overruns = self.overruns.saturating_add(1);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let from_kernel = d.sender == KERNEL_PORTID;
            if d.truncated && from_kernel {
                h.fail(Error::Truncated {
                    size: d.size,
                    capacity: self.rx.len(),
                });
            }
            // A datagram without a single byte (only a process can send one) holds no message
            // for the handler to count: it is counted here.
            if d.len == 0 {
                self.foreign = self.foreign.saturating_add(1);
                continue;
            }
            // The whole messages of a truncated datagram are still read: they may end the
            // operation.
            let mut msgs = Messages::new(self.rx.get(..d.len).unwrap_or_default());
            loop {
                let offset = msgs.offset();
                match msgs.next() {
                    None => break,
                    Some(Ok(msg)) => h.on_message(d.sender, msg, offset),
                    Some(Err(error)) => {
                        if !from_kernel {
                            self.foreign = self.foreign.saturating_add(1);
                        } else if !d.truncated {
                            h.fail(Error::Codec {
                                error,
                                offset: Some(offset),
                            });
                        }
                        break;
                    }
                }
            }
        }
        Ok(Drained::Finished)
    }
}

/// Waits for the ACK of one request, handing its first data reply to `on_reply`.
struct ExchangeHandler<F, R> {
    exchange: Exchange,
    on_reply: Option<F>,
    reply: Option<R>,
    error: Option<Error>,
}

impl<F: FnOnce(NfMsg<'_>) -> R, R> Handler for ExchangeHandler<F, R> {
    fn on_message(&mut self, sender: u32, msg: NlMsg<'_>, offset: usize) {
        match self.exchange.on_message(sender, msg) {
            Ok(Step::Data(msg)) if self.error.is_none() => {
                if let Some(on_reply) = self.on_reply.take() {
                    match NfMsg::new_checked(msg) {
                        Ok(nf) => self.reply = Some(on_reply(nf)),
                        Err(error) => self.fail(Error::Codec {
                            error,
                            offset: Some(offset),
                        }),
                    }
                }
            }
            Ok(Step::Failed(f)) => self.fail(Error::Kernel(KernelError::from_failure(&f))),
            Ok(_) => {}
            Err(error) => self.fail(Error::Codec {
                error,
                offset: Some(offset),
            }),
        }
    }

    fn fail(&mut self, error: Error) {
        self.error.get_or_insert(error);
    }

    fn is_finished(&self) -> bool {
        self.exchange.is_finished()
    }
}

/// Streams the data messages of one dump to the caller until it stops or an error occurs.
struct DumpHandler<F> {
    dump: Dump,
    on_msg: F,
    summary: DumpSummary,
    error: Option<Error>,
}

impl<F: FnMut(NfMsg<'_>) -> ControlFlow<()>> Handler for DumpHandler<F> {
    fn on_message(&mut self, sender: u32, msg: NlMsg<'_>, offset: usize) {
        match self.dump.on_message(sender, msg) {
            Ok(Step::Data(msg)) if !self.summary.stopped && self.error.is_none() => {
                match NfMsg::new_checked(msg) {
                    Ok(nf) => {
                        self.summary.delivered += 1;
                        self.summary.stopped = (self.on_msg)(nf).is_break();
                    }
                    Err(error) => self.fail(Error::Codec {
                        error,
                        offset: Some(offset),
                    }),
                }
            }
            Ok(Step::Failed(f)) => self.fail(Error::Kernel(KernelError::from_failure(&f))),
            Ok(_) => {}
            Err(error) => self.fail(Error::Codec {
                error,
                offset: Some(offset),
            }),
        }
    }

    fn fail(&mut self, error: Error) {
        self.error.get_or_insert(error);
    }

    fn is_finished(&self) -> bool {
        self.dump.is_finished()
    }
}

/// Matches the answers of a bulk operation back to its requests.
struct BulkHandler<'t, R> {
    tracker: AckTracker<'t>,
    on_result: R,
    summary: BulkSummary,
    /// A failure that may have swallowed answers (truncation, malformed message): the
    /// error given to the requests whose answers are found missing.
    error: Option<Error>,
    /// Whether the kernel reported an overrun since answers were last found missing.
    overrun: bool,
    /// With [`Acks::PerDatagram`]: the first request index of the datagram in flight and
    /// the index of its acknowledged last request.
    barrier: Option<(u32, u32)>,
    /// Whether that last request was answered.
    barrier_answered: bool,
}

impl<R: FnMut(usize, Result<()>)> BulkHandler<'_, R> {
    /// Settles request `index` (if still in flight) with `result`.
    fn settle(&mut self, index: u32, result: Result<()>) {
        if self.tracker.settle(index) {
            self.report(index, result);
        }
    }

    /// Fails every request in flight with `error`.
    fn expire_all(&mut self, error: &Error) {
        while let Some(index) = self.tracker.expire_oldest() {
            self.report(index, Err(error.clone()));
        }
    }

    fn report(&mut self, index: u32, result: Result<()>) {
        if result.is_ok() {
            self.summary.succeeded += 1;
        } else {
            self.summary.failed += 1;
        }
        (self.on_result)(to_usize(index), result);
    }
}

impl<R: FnMut(usize, Result<()>)> Handler for BulkHandler<'_, R> {
    fn on_message(&mut self, sender: u32, msg: NlMsg<'_>, offset: usize) {
        let step = self.tracker.on_message(sender, msg);
        if let (Ok(AckStep::Acked { index } | AckStep::Failed { index, .. }), Some((_, b))) =
            (&step, self.barrier)
        {
            self.barrier_answered |= *index == b;
        }
        match step {
            Ok(AckStep::Acked { index }) => self.report(index, Ok(())),
            Ok(AckStep::Failed { index, failure }) => {
                self.report(
                    index,
                    Err(Error::Kernel(KernelError::from_failure(&failure))),
                );
            }
            Ok(AckStep::Ignored | AckStep::Foreign(_)) => {}
            // The request stays in flight; it fails with this error once found unanswered.
            Err(error) => self.fail(Error::Codec {
                error,
                offset: Some(offset),
            }),
        }
    }

    fn fail(&mut self, error: Error) {
        self.error.get_or_insert(error);
    }

    fn is_finished(&self) -> bool {
        self.tracker.is_finished()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::os::fd::{AsRawFd, OwnedFd};

    use nix::sys::socket::{
        bind, sendto, socket, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr,
    };

    use super::*;

    /// Two bound Unix datagram sockets standing in for netlink, to feed a [`Socket`]
    /// datagrams a netlink forger cannot send on Linux 6.18 (an empty one: `ENODATA`). The
    /// forger's abstract name is long enough for the whole sender address to be read, and
    /// its bytes give a sender port id that is not the kernel's.
    pub(crate) fn forger_and_socket(tag: &str) -> (OwnedFd, UnixAddr, Socket) {
        let open = |name: &str| {
            let fd = socket(
                AddressFamily::Unix,
                SockType::Datagram,
                SockFlag::SOCK_CLOEXEC,
                None,
            )
            .expect("socket");
            let addr = UnixAddr::new_abstract(name.as_bytes()).expect("address");
            bind(fd.as_raw_fd(), &addr).expect("bind");
            (fd, addr)
        };
        let pid = std::process::id();
        let (ours, to) = open(&format!("conntrack-io-test-{tag}-ours-{pid}"));
        let (forger, _) = open(&format!("conntrack-io-test-{tag}-forger-{pid}"));
        (forger, to, Socket::over(ours))
    }

    pub(crate) fn forge(forger: &OwnedFd, to: &UnixAddr, bytes: &[u8]) {
        sendto(forger.as_raw_fd(), bytes, to, MsgFlags::empty()).expect("send");
    }

    #[test]
    fn request_operations_count_empty_and_malformed_datagrams() {
        let (forger, to, mut sock) = forger_and_socket("ops");
        for bytes in [&[][..], &[1, 2, 3], &[]] {
            forge(&forger, &to, bytes);
        }
        let mut h = ExchangeHandler {
            exchange: Exchange::new(7),
            on_reply: None::<fn(NfMsg<'_>)>,
            reply: None,
            error: None,
        };
        let drained = sock.receive(&mut h).expect("receive");
        assert!(matches!(drained, Drained::Empty { overrun: false }));
        assert_eq!(sock.foreign_dropped(), 3);
        assert!(h.error.is_none(), "{:?}", h.error);
    }
}
