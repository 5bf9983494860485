//! An event stream read by a thread of its own: receiving never waits on what the reader
//! does with the events.
//!
//! The kernel queues each event on the socket and drops it when the socket's receive queue
//! is full; the default queue holds about 200 events. A reader that formats, writes or
//! looks things up between two receives leaves the socket unread meanwhile, and a burst of a
//! few thousand events then overflows it. A [`Receiver`] moves the receiving to a thread
//! that does nothing else: it reads each event from the socket ([`Events`], with its exact
//! loss reports and its growth on demand) and copies its message into a slot of a bounded
//! queue, and the reader takes the events from the queue at its own pace, lent one at a time
//! as [`Events::next`] lends them ([`Receiver::next`]).
//!
//! - **Bounded.** The queue holds at most `capacity` events ([`Receiver::with_capacity`],
//!   [`Receiver::DEFAULT_CAPACITY`] by default). By default ([`WhenFull::Drop`]) an event
//!   that finds it full is dropped and counted, and the loss is reported in the stream in its
//!   place, exactly as the kernel's: an [`Event::Lost`] with [`LossCause::Backlog`] and the
//!   exact count. The stream's own losses (the socket's queue, [`LossCause::QueueFull`]) are
//!   reported as they were, and [`Lost::total`] counts both. With [`WhenFull::Wait`] the
//!   thread stops reading until the reader makes room, and every loss is the kernel's.
//! - **No allocation per event.** A slot is allocated the first time the backlog is that
//!   deep and reused from then on; nothing is allocated per event in steady state, and memory
//!   stays bounded by the capacity (a slot holds one message, 200 to 400 bytes, in a buffer
//!   of [`Receiver::SLOT_BYTES`] that grows only for a larger message).
//! - **Batches.** The reader takes everything queued in one lock, and gives the slots back in
//!   batches; consecutive loss reports of one cause are merged into one while they wait.
//! - **Knowing when to flush.** The thread drains the socket, lets it fill for a fraction of
//!   a millisecond, and drains it again while a burst lasts (one wake-up per pause, not one
//!   per event); a pause that brings nothing ends the burst. [`Receiver::next_or_idle`] then
//!   calls the caller back, before it waits on the empty queue: a program writes its output
//!   in large blocks while a burst lasts and flushes it there, so an idle stream still shows
//!   each event at once (within a millisecond).
//! - **Overruns**, for `conntrack -E`'s one warning per overrun: the kernel's
//!   ([`EventStats::overruns`]) and the queue's ([`ReceiverStats::backlog_overruns`]: an
//!   overrun begins with the first event that does not fit and ends when the reader has
//!   taken everything queued, as the kernel's ends when its queue is read empty).
//!
//! ```no_run
//! use std::io::Write;
//! use conntrack_io::{Event, Events, Groups, Receiver};
//!
//! let mut rx = Receiver::spawn(Events::open(Groups::CONNTRACK)?)?;
//! let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
//! let mut failed = None;
//! // Large writes during a burst, a flush as soon as nothing is queued.
//! while let Some(event) = rx.next_or_idle(|_stats| failed = out.flush().err().or(failed.take()))? {
//!     match event {
//!         Event::Conntrack(ev) => writeln!(out, "{:?} {:?}", ev.kind, ev.entry.orig()?)?,
//!         Event::Expect(ev) => writeln!(out, "expectation {:?}", ev.kind)?,
//!         Event::Lost(lost) => eprintln!("{lost}"), // exact, whichever queue overflowed
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

use conntrack_codec::ct::{Conntrack, EventKind};
use conntrack_codec::exp::Expect;
use conntrack_codec::nl::NlMsg;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::error::{Error, Result};
use crate::events::{CtEvent, Event, EventStats, Events, ExpEvent, LossCause, Lost};

/// What a slot's message is.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Conntrack(EventKind),
    Expect(EventKind),
}

/// One item of the queue.
#[derive(Debug)]
enum Item {
    /// An event: its message, copied into a slot.
    Event { slot: Vec<u8>, kind: Kind },
    /// A loss report (the stream's, or the queue's own).
    Lost(Lost),
    /// An error of the stream; the last item if it ended the thread.
    Error(Error),
}

/// What the receive thread and the reader share, under one lock.
#[derive(Debug)]
struct State {
    queue: VecDeque<Item>,
    /// Slots given back by the reader.
    free: Vec<Vec<u8>>,
    /// The reader is waiting for the queue (on the condition variable, or a task's waker).
    waiting: bool,
    /// The socket has stayed empty since the last items were queued (or the thread ended):
    /// the reader, once it has taken them, has caught up with the stream.
    idle: bool,
    waker: Option<Waker>,
    /// The receive thread has ended: nothing more will be queued.
    finished: bool,
    /// The queue overflowed and the reader has not caught up since.
    congested: bool,
    stream: EventStats,
    /// The stream's loss total as of the last stream report queued.
    stream_lost: u64,
    backlog_lost: u64,
    backlog_overruns: u64,
    peak: usize,
    slots: usize,
    /// Error items dropped because the queue already held a full queue's worth of items.
    errors_dropped: u64,
    /// The receive thread runs under `SCHED_FIFO`.
    realtime: bool,
    /// The receive thread waits for room ([`WhenFull::Wait`]).
    waiting_for_room: bool,
    /// Events handed out, as of the reader's last visit.
    handed_out: u64,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// The reader waits here for items.
    ready: Condvar,
    /// The receive thread waits here for free slots ([`WhenFull::Wait`]).
    room: Condvar,
    stop: AtomicBool,
    capacity: usize,
    when_full: WhenFull,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the receive thread does with an event when the queue is full.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WhenFull {
    /// Drops it, counts it and reports it ([`LossCause::Backlog`]); the thread keeps the
    /// socket drained. The default.
    #[default]
    Drop,
    /// Waits until the reader makes room, leaving the socket unread meanwhile: the kernel's
    /// queue then overflows instead, and every loss is the kernel's ([`LossCause::QueueFull`],
    /// with its `ENOBUFS` overrun). For a program whose loss reports must be the kernel's,
    /// as `conntrack -E`'s warnings are.
    Wait,
}

/// What a [`Receiver`] has seen so far.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ReceiverStats {
    /// The stream's own counters, as of the items taken from the queue so far (`received`:
    /// the events read from the socket, queued or not; `lost`: the socket's losses).
    pub stream: EventStats,
    /// Events handed out to the reader.
    pub handed_out: u64,
    /// Events read from the socket and dropped because the queue was full (each reported
    /// as an [`Event::Lost`] with [`LossCause::Backlog`]).
    pub backlog_lost: u64,
    /// Times the queue overflowed: from the first event that did not fit until the reader
    /// had taken everything queued.
    pub backlog_overruns: u64,
    /// The deepest backlog so far, in events (queued, or lent to the reader).
    pub peak: usize,
    /// Slots allocated so far: at most [`capacity`](ReceiverStats::capacity), and no more
    /// once the backlog has been that deep.
    pub slots: usize,
    /// The queue's capacity, in events.
    pub capacity: usize,
    /// Error items dropped because the queue held a queue's worth of items already (a
    /// stream failing on every message).
    pub errors_dropped: u64,
    /// Whether the receive thread runs under real-time scheduling
    /// ([`ReceiverBuilder::realtime`]).
    pub realtime: bool,
}

impl ReceiverStats {
    /// Events lost, in the socket and in the queue.
    pub fn lost(&self) -> u64 {
        self.stream.lost.saturating_add(self.backlog_lost)
    }

    /// Overruns, of the socket's queue (`ENOBUFS`) and of the receiver's.
    pub fn overruns(&self) -> u64 {
        self.stream.overruns.saturating_add(self.backlog_overruns)
    }
}

/// How to start a [`Receiver`]: the capacity of its queue and the scheduling of its thread.
///
/// ```no_run
/// use conntrack_io::{Events, Groups, Receiver};
///
/// let rx = Receiver::builder()
///     .capacity(65_536)
///     .realtime(Some(1)) // SCHED_FIFO if allowed (CAP_SYS_NICE), else as it was
///     .spawn(Events::open(Groups::CONNTRACK)?)?;
/// # Ok::<(), conntrack_io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverBuilder {
    capacity: usize,
    realtime: Option<u8>,
    when_full: WhenFull,
}

impl ReceiverBuilder {
    /// The defaults: [`Receiver::DEFAULT_CAPACITY`], [`WhenFull::Drop`], normal
    /// scheduling.
    pub const fn new() -> Self {
        ReceiverBuilder {
            capacity: Receiver::DEFAULT_CAPACITY,
            realtime: None,
            when_full: WhenFull::Drop,
        }
    }

    /// Sets the capacity of the queue, in events (at least 1).
    pub const fn capacity(mut self, events: usize) -> Self {
        self.capacity = events;
        self
    }

    /// Sets what happens to an event that finds the queue full (see [`WhenFull`]).
    pub const fn when_full(mut self, what: WhenFull) -> Self {
        self.when_full = what;
        self
    }

    /// Runs the receive thread under `SCHED_FIFO` at this priority (1 to 99; the lowest, 1,
    /// is above every normal thread and is enough), or under normal scheduling (`None`, the
    /// default). What conntrackd's `Scheduler { Type FIFO }` does for its whole process.
    ///
    /// The kernel's receive queue holds only about 200 events at its default size: a
    /// receiver that is not running for a millisecond or two while a burst arrives loses
    /// events, and on a busy machine a normal thread can wait that long for a CPU. A
    /// real-time thread runs as soon as an event arrives. It only receives and copies (a
    /// microsecond or two per event) and sleeps while the socket is empty, so it takes a
    /// CPU only in proportion to the event rate (and the kernel keeps 5% of each CPU for
    /// normal threads whatever real-time threads do, by default).
    ///
    /// It needs `CAP_SYS_NICE` (or an `RLIMIT_RTPRIO` allowing it); when the kernel refuses,
    /// the thread keeps normal scheduling: see [`ReceiverStats::realtime`].
    pub const fn realtime(mut self, priority: Option<u8>) -> Self {
        self.realtime = priority;
        self
    }

    /// Starts the receive thread on `events`. Configure the stream first (receive queue
    /// size, growth on demand, filters): the thread owns it until
    /// [`stop`](Receiver::stop) gives it back.
    ///
    /// The thread blocks every signal, so that a program that waits for signals on a thread
    /// of its own (`sigwait`) still gets them whenever it starts the receiver.
    ///
    /// # Errors
    /// [`Error::Sys`] if the wake-up socket pair or the thread cannot be made.
    pub fn spawn(self, events: Events) -> Result<Receiver> {
        Receiver::start(events, self)
    }
}

impl Default for ReceiverBuilder {
    fn default() -> Self {
        ReceiverBuilder::new()
    }
}

/// An event stream read by a thread of its own into a bounded queue; see the [module
/// documentation](self).
#[derive(Debug)]
pub struct Receiver {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Events>>,
    /// One byte written here wakes the receive thread to stop.
    wake: UnixStream,
    /// Items taken from the queue, handed out in order.
    mine: VecDeque<Item>,
    /// The slot of the event lent out last.
    lent: Option<(Vec<u8>, Kind)>,
    /// Slots done with, to give back.
    done: Vec<Vec<u8>>,
    stats: ReceiverStats,
}

/// How long the reader may wait.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    No,
    Yes,
}

impl Receiver {
    /// The default capacity of the queue, in events: eighty times what the kernel's default
    /// receive queue holds (about 200), for at most 8 MiB of slots.
    pub const DEFAULT_CAPACITY: usize = 16_384;

    /// The size a slot is allocated with; it grows (once) for a larger message.
    pub const SLOT_BYTES: usize = 512;

    /// How many slots the reader keeps before giving them back.
    const GIVE_BACK: usize = 64;

    /// Starts the receive thread on `events` with the defaults (a queue of
    /// [`DEFAULT_CAPACITY`](Receiver::DEFAULT_CAPACITY) events, normal scheduling).
    ///
    /// # Errors
    /// As [`ReceiverBuilder::spawn`].
    pub fn spawn(events: Events) -> Result<Receiver> {
        Receiver::builder().spawn(events)
    }

    /// Starts the receive thread on `events` with a queue of `capacity` events (at least 1).
    ///
    /// # Errors
    /// As [`ReceiverBuilder::spawn`].
    pub fn with_capacity(events: Events, capacity: usize) -> Result<Receiver> {
        Receiver::builder().capacity(capacity).spawn(events)
    }

    /// A [`ReceiverBuilder`] with the defaults, to choose the capacity and the scheduling.
    pub const fn builder() -> ReceiverBuilder {
        ReceiverBuilder::new()
    }

    fn start(events: Events, options: ReceiverBuilder) -> Result<Receiver> {
        let (mut rx, woken) = Receiver::unstarted(options, events.stats())?;
        let theirs = Arc::clone(&rx.shared);
        let thread = std::thread::Builder::new()
            .name("conntrack-events".into())
            .spawn(move || Producer::new(theirs).run(events, &woken, options.realtime))
            .map_err(|e| sys_io("pthread_create", &e))?;
        rx.thread = Some(thread);
        Ok(rx)
    }

    /// The reader's side without its thread, and the other end of the wake-up socket pair.
    fn unstarted(options: ReceiverBuilder, stream: EventStats) -> Result<(Receiver, UnixStream)> {
        let capacity = options.capacity.max(1);
        let (wake, woken) = UnixStream::pair().map_err(|e| sys_io("socketpair", &e))?;
        wake.set_nonblocking(true)
            .map_err(|e| sys_io("fcntl(F_SETFL)", &e))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(256),
                free: Vec::with_capacity(256),
                waiting: false,
                idle: true,
                waker: None,
                finished: false,
                congested: false,
                stream,
                stream_lost: stream.lost,
                backlog_lost: 0,
                backlog_overruns: 0,
                peak: 0,
                slots: 0,
                errors_dropped: 0,
                realtime: false,
                waiting_for_room: false,
                handed_out: 0,
            }),
            ready: Condvar::new(),
            room: Condvar::new(),
            stop: AtomicBool::new(false),
            capacity,
            when_full: options.when_full,
        });
        let rx = Receiver {
            stats: ReceiverStats {
                capacity,
                ..ReceiverStats::default()
            },
            shared,
            thread: None,
            wake,
            mine: VecDeque::with_capacity(256),
            lent: None,
            done: Vec::with_capacity(Receiver::GIVE_BACK),
        };
        Ok((rx, woken))
    }

    /// The next item; waits while the queue is empty. `Ok(None)` once the receive thread
    /// has ended (after the error that ended it) and everything queued was handed out.
    ///
    /// # Errors
    /// What the stream returned ([`Events::next`]), in its place in the stream:
    /// [`Error::Codec`] and [`Error::Truncated`] and the stream goes on; any other error
    /// ended the receive thread.
    #[allow(clippy::should_implement_trait)] // A lending iterator, as `Events::next`.
    pub fn next(&mut self) -> Result<Option<Event<'_>>> {
        self.take(Wait::Yes, None::<fn(&ReceiverStats)>)
    }

    /// The next item if one is queued, without waiting: `Ok(None)` means nothing now.
    ///
    /// # Errors
    /// As [`next`](Receiver::next).
    pub fn try_next(&mut self) -> Result<Option<Event<'_>>> {
        self.take(Wait::No, None::<fn(&ReceiverStats)>)
    }

    /// The next item, as [`next`](Receiver::next); but when the reader has caught up with
    /// the stream (the queue is empty and the socket has stayed empty for a moment), calls
    /// `idle` first, once, with the counters as of now (without holding anything), then
    /// waits. Flush buffered output in `idle`, and report what the counters say that no item
    /// told (an overrun whose losses were reported already).
    ///
    /// # Errors
    /// As [`next`](Receiver::next).
    pub fn next_or_idle(&mut self, idle: impl FnOnce(&ReceiverStats)) -> Result<Option<Event<'_>>> {
        self.take(Wait::Yes, Some(idle))
    }

    /// The next item, waiting without blocking the thread: for async code on any runtime
    /// (the receive thread wakes the task). Cancel-safe: nothing is taken until it is ready.
    ///
    /// # Errors
    /// As [`next`](Receiver::next).
    pub async fn next_async(&mut self) -> Result<Option<Event<'_>>> {
        poll_fn(|cx| self.poll_ready(cx)).await;
        self.try_next()
    }

    /// Whether an item can be taken now (or the stream has ended); registers the task's
    /// waker otherwise.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.mine.is_empty() {
            return Poll::Ready(());
        }
        let mut st = self.shared.lock();
        // The slots done with go back first: the receive thread may be waiting for them.
        give_back(&self.shared, &mut st, &mut self.done);
        if !st.queue.is_empty() || st.finished {
            return Poll::Ready(());
        }
        match &st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.waker = Some(cx.waker().clone()),
        }
        st.waiting = true;
        Poll::Pending
    }

    /// Events queued and not handed out yet (an estimate while the thread runs).
    pub fn queued(&self) -> usize {
        let queued = self.shared.lock().queue.len();
        queued.saturating_add(self.mine.len())
    }

    /// Counters, as of the items taken from the queue so far.
    pub fn stats(&self) -> ReceiverStats {
        self.stats
    }

    /// A handle that reads the counters as they are now, from any thread (a signal
    /// handler's thread that prints a summary, a metrics exporter).
    pub fn watch(&self) -> ReceiverWatch {
        ReceiverWatch {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Stops the receive thread and gives the stream back, still subscribed. Events queued
    /// but not handed out are dropped (they were read from the socket: the stream does not
    /// see them again).
    ///
    /// # Errors
    /// [`Error::Sys`] (`ESRCH`) if the receive thread is gone.
    ///
    /// # Panics
    /// If the receive thread panicked (a bug), the panic is resumed here.
    pub fn stop(mut self) -> Result<Events> {
        match self.halt() {
            Some(Ok(events)) => Ok(events),
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Err(Error::sys("pthread_join", Errno::ESRCH)),
        }
    }

    /// Asks the receive thread to stop and joins it.
    fn halt(&mut self) -> Option<std::thread::Result<Events>> {
        let thread = self.thread.take()?;
        self.shared.stop.store(true, Ordering::Release);
        // The socket pair holds one byte easily; a failure means the thread is gone.
        let _ = (&self.wake).write(&[1]);
        {
            let _st = self.shared.lock();
            self.shared.room.notify_all();
        }
        Some(thread.join())
    }

    /// Takes the next item, waiting as `wait` says.
    fn take(
        &mut self,
        wait: Wait,
        idle: Option<impl FnOnce(&ReceiverStats)>,
    ) -> Result<Option<Event<'_>>> {
        if let Some((slot, _)) = self.lent.take() {
            self.done.push(slot);
            if self.done.len() >= Receiver::GIVE_BACK {
                let mut st = self.shared.lock();
                give_back(&self.shared, &mut st, &mut self.done);
            }
        }
        if self.mine.is_empty() && !self.refill(wait, idle) {
            return Ok(None);
        }
        match self.mine.pop_front() {
            None => Ok(None),
            Some(Item::Lost(lost)) => Ok(Some(Event::Lost(lost))),
            Some(Item::Error(e)) => Err(e),
            Some(Item::Event { slot, kind }) => {
                self.stats.handed_out = self.stats.handed_out.saturating_add(1);
                let (slot, kind) = self.lent.insert((slot, kind));
                lend(slot, *kind).map(Some)
            }
        }
    }

    /// Moves everything queued to `mine`; returns whether anything was.
    fn refill(&mut self, wait: Wait, mut idle: Option<impl FnOnce(&ReceiverStats)>) -> bool {
        let mut st = self.shared.lock();
        give_back(&self.shared, &mut st, &mut self.done);
        st.handed_out = self.stats.handed_out;
        loop {
            if !st.queue.is_empty() {
                // Moved, not swapped: each list keeps the room it was given.
                let room = st.queue.capacity();
                if self.mine.capacity() < room {
                    self.mine.reserve(room.saturating_sub(self.mine.len()));
                }
                self.mine.extend(st.queue.drain(..));
                snapshot(&mut self.stats, &st);
                return true;
            }
            // The reader has caught up: an overflow of the queue is over.
            st.congested = false;
            snapshot(&mut self.stats, &st);
            if wait == Wait::No {
                return false;
            }
            if st.idle {
                if let Some(f) = idle.take() {
                    drop(st);
                    f(&self.stats);
                    st = self.shared.lock();
                    continue;
                }
            }
            if st.finished {
                return false;
            }
            st.waiting = true;
            st = self
                .shared
                .ready
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Makes room for `n` elements in `v`.
fn reserve<T>(v: &mut Vec<T>, n: usize) {
    if v.capacity() < n {
        v.reserve(n.saturating_sub(v.len()));
    }
}

/// Gives slots back to the receive thread, and wakes it if it waits for room.
fn give_back(shared: &Shared, st: &mut State, done: &mut Vec<Vec<u8>>) {
    if done.is_empty() {
        return;
    }
    st.free.append(done);
    if st.waiting_for_room {
        st.waiting_for_room = false;
        shared.room.notify_one();
    }
}

/// Reads a [`Receiver`]'s counters as they are now, from any thread
/// ([`Receiver::watch`]).
#[derive(Debug, Clone)]
pub struct ReceiverWatch {
    shared: Arc<Shared>,
}

impl ReceiverWatch {
    /// The counters now: what the receive thread has counted so far, ahead of the items
    /// the reader has taken ([`handed_out`](ReceiverStats::handed_out) as of the reader's
    /// last visit to the queue).
    pub fn stats(&self) -> ReceiverStats {
        let st = self.shared.lock();
        let mut stats = ReceiverStats {
            capacity: self.shared.capacity,
            handed_out: st.handed_out,
            ..ReceiverStats::default()
        };
        snapshot(&mut stats, &st);
        stats
    }
}

/// Copies the shared counters into the reader's.
fn snapshot(stats: &mut ReceiverStats, st: &State) {
    stats.stream = st.stream;
    stats.backlog_lost = st.backlog_lost;
    stats.backlog_overruns = st.backlog_overruns;
    stats.peak = st.peak;
    stats.slots = st.slots;
    stats.errors_dropped = st.errors_dropped;
    stats.realtime = st.realtime;
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// The event of a slot, lent from it.
fn lend(slot: &[u8], kind: Kind) -> Result<Event<'_>> {
    let codec = |error| Error::Codec {
        error,
        offset: Some(0),
    };
    let msg = NlMsg::new_checked(slot).map_err(codec)?;
    let portid = msg.pid();
    Ok(match kind {
        Kind::Conntrack(kind) => Event::Conntrack(CtEvent {
            kind,
            entry: Conntrack::parse(msg).map_err(codec)?,
            portid,
        }),
        Kind::Expect(kind) => Event::Expect(ExpEvent {
            kind,
            exp: Expect::parse(msg).map_err(codec)?,
            portid,
        }),
    })
}

/// An `io::Error` from the standard library as a system call failure.
fn sys_io(call: &'static str, e: &std::io::Error) -> Error {
    Error::sys(call, e.raw_os_error().map_or(Errno::EIO, Errno::from_raw))
}

/// What the receive thread found in one step.
enum Found {
    /// An event, copied into a slot.
    Event(Vec<u8>, Kind),
    /// An event with no slot left for it.
    Overflow,
    Lost(Lost),
    Error(Error),
    /// Nothing queued in the socket.
    Nothing,
}

/// The receive thread's side.
struct Producer {
    shared: Arc<Shared>,
    /// Slots ready to fill.
    spare: Vec<Vec<u8>>,
    allocated: usize,
    /// Items not published yet.
    batch: VecDeque<Item>,
}

impl Producer {
    /// Items published at once while the socket has more: one lock per batch. The reader
    /// is woken when this many wait for it, or when the socket stays empty.
    const BATCH: usize = 32;

    /// How long the socket is left to fill between two drains while a burst lasts. The
    /// kernel's default receive queue (about 200 events) holds a pause of a burst of up to
    /// a million events a second, with room for the pause to last twice as long; a pause
    /// that brings nothing ends the burst.
    const PAUSE: Duration = Duration::from_micros(100);

    fn new(shared: Arc<Shared>) -> Producer {
        Producer {
            shared,
            spare: Vec::with_capacity(256),
            allocated: 0,
            batch: VecDeque::with_capacity(2 * Producer::BATCH),
        }
    }

    /// Receives until told to stop or the stream fails; gives the stream back.
    fn run(mut self, mut events: Events, woken: &UnixStream, realtime: Option<u8>) -> Events {
        block_signals();
        if let Some(priority) = realtime {
            let ok = crate::sys::set_fifo(i32::from(priority.clamp(1, 99))).is_ok();
            self.shared.lock().realtime = ok;
        }
        // Idle: a wait on the socket and on the wake-up socket (so that `stop` is heard at
        // once). Busy: the socket is drained, then left to fill for `PAUSE`, and drained
        // again, until a pause brings nothing: one wake-up per pause instead of one per event
        // (the kernel queue's default size holds what even a fast burst brings in a pause).
        let mut busy = false;
        let mut got = false;
        while !self.shared.stop.load(Ordering::Acquire) {
            if !busy {
                if let Err(e) = wait(&events, woken) {
                    self.batch.push_back(Item::Error(e));
                    self.publish(events.stats(), true);
                    break;
                }
                busy = true;
                continue;
            }
            let before = events.stats();
            let found = match events.try_next() {
                Ok(Some(Event::Conntrack(ev))) => self.copy(
                    ev.entry.nf().msg().bytes(),
                    Kind::Conntrack(ev.kind),
                    before,
                ),
                Ok(Some(Event::Expect(ev))) => {
                    self.copy(ev.exp.nf().msg().bytes(), Kind::Expect(ev.kind), before)
                }
                Ok(Some(Event::Lost(lost))) => Found::Lost(lost),
                Ok(None) => Found::Nothing,
                Err(e) => Found::Error(e),
            };
            let fatal = matches!(
                &found,
                Found::Error(e) if !matches!(e, Error::Codec { .. } | Error::Truncated { .. })
            );
            match found {
                Found::Nothing => {
                    self.publish(events.stats(), false);
                    if std::mem::take(&mut got) {
                        std::thread::sleep(Producer::PAUSE);
                    } else {
                        // A pause brought nothing: the burst is over. Tell the reader, which
                        // flushes its output. (Waking it for every event of a burst would
                        // take the CPU the receiving needs.)
                        self.tell_idle();
                        busy = false;
                    }
                    continue;
                }
                Found::Event(slot, kind) => self.batch.push_back(Item::Event { slot, kind }),
                Found::Overflow => {
                    push_lost(&mut self.batch, Lost::new(1, 0, true, LossCause::Backlog));
                }
                Found::Lost(lost) => self.batch.push_back(Item::Lost(lost)),
                Found::Error(e) => self.batch.push_back(Item::Error(e)),
            }
            got = true;
            if fatal {
                self.publish(events.stats(), true);
                break;
            }
            if self.batch.len() >= Producer::BATCH {
                self.publish(events.stats(), false);
            }
        }
        let waker = {
            let mut st = self.shared.lock();
            st.finished = true;
            st.idle = true;
            st.waker.take()
        };
        self.shared.ready.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
        events
    }

    /// Tells the reader that the socket has stayed empty: it gets everything queued, and
    /// flushes its output.
    fn tell_idle(&mut self) {
        let waker = {
            let mut st = self.shared.lock();
            st.idle = true;
            wake_reader(&self.shared, &mut st)
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Copies a message into a free slot.
    fn copy(&mut self, msg: &[u8], kind: Kind, stream: EventStats) -> Found {
        match self.slot(stream) {
            Some(mut slot) => {
                slot.clear();
                slot.extend_from_slice(msg);
                Found::Event(slot, kind)
            }
            None => Found::Overflow,
        }
    }

    /// A free slot: one kept, one given back, or a new one while the capacity allows; with
    /// [`WhenFull::Wait`], waits for one (`None` only when told to stop).
    fn slot(&mut self, stream: EventStats) -> Option<Vec<u8>> {
        loop {
            if let Some(s) = self.spare.pop() {
                return Some(s);
            }
            {
                let mut st = self.shared.lock();
                std::mem::swap(&mut self.spare, &mut st.free);
            }
            if let Some(s) = self.spare.pop() {
                return Some(s);
            }
            if self.allocated < self.shared.capacity {
                self.allocated += 1;
                // Room for every slot in the lists that hold them, so that moving them
                // around never allocates: lists grow with the slots, and only then.
                let slots = self.allocated;
                reserve(&mut self.spare, slots);
                let mut st = self.shared.lock();
                reserve(&mut st.free, slots);
                let items = slots.saturating_mul(2).saturating_add(Producer::BATCH);
                let queued = st.queue.len();
                if st.queue.capacity() < items {
                    st.queue.reserve(items.saturating_sub(queued));
                }
                return Some(Vec::with_capacity(Receiver::SLOT_BYTES));
            }
            if self.shared.when_full == WhenFull::Drop {
                return None;
            }
            // Everything read must reach the reader, or it would never make room.
            self.publish(stream, true);
            let mut st = self.shared.lock();
            while st.free.is_empty() && !self.shared.stop.load(Ordering::Acquire) {
                st.waiting_for_room = true;
                st = self
                    .shared
                    .room
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if st.free.is_empty() {
                return None;
            }
        }
    }

    /// Publishes the batch with the stream's counters, and wakes the reader if a batch's
    /// worth waits for it, or in any case if `urgent` (the thread ends, or waits for room).
    fn publish(&mut self, stream: EventStats, urgent: bool) {
        let waker = {
            let mut st = self.shared.lock();
            st.stream = stream;
            st.slots = self.allocated;
            let in_use = self
                .allocated
                .saturating_sub(self.spare.len())
                .saturating_sub(st.free.len());
            st.peak = st.peak.max(in_use);
            let before = st.queue.len();
            let limit = self.shared.capacity.saturating_mul(2);
            while let Some(item) = self.batch.pop_front() {
                match item {
                    Item::Lost(mut lost) => {
                        if lost.cause == LossCause::Backlog {
                            st.backlog_lost = st.backlog_lost.saturating_add(lost.count);
                            if !st.congested {
                                st.congested = true;
                                st.backlog_overruns = st.backlog_overruns.saturating_add(1);
                            }
                        } else {
                            // The stream's running total, in its place among the items.
                            st.stream_lost = lost.total;
                        }
                        lost.total = st.stream_lost.saturating_add(st.backlog_lost);
                        push_lost(&mut st.queue, lost);
                    }
                    // Bounded like the events: a stream failing on every message cannot
                    // grow the queue without end.
                    Item::Error(_) if !urgent && st.queue.len() >= limit => {
                        st.errors_dropped = st.errors_dropped.saturating_add(1);
                    }
                    item => st.queue.push_back(item),
                }
            }
            if st.queue.len() > before {
                st.idle = false;
            }
            // Woken for a batch; the rest when the socket stays empty (`tell_idle`).
            if urgent || st.queue.len() >= Producer::BATCH {
                wake_reader(&self.shared, &mut st)
            } else {
                None
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Wakes the reader if it waits; returns its task's waker, to wake once the lock is released.
fn wake_reader(shared: &Shared, st: &mut State) -> Option<Waker> {
    if !st.waiting {
        return None;
    }
    st.waiting = false;
    shared.ready.notify_one();
    st.waker.take()
}

/// Queues a loss report, merged into the last item if that is a report of the same cause
/// not handed out yet.
fn push_lost(queue: &mut VecDeque<Item>, lost: Lost) {
    if let Some(Item::Lost(last)) = queue.back_mut() {
        if last.cause == lost.cause && last.grown_to.is_none() {
            last.count = last.count.saturating_add(lost.count);
            last.total = lost.total;
            last.exact &= lost.exact;
            last.grown_to = lost.grown_to;
            return;
        }
    }
    queue.push_back(Item::Lost(lost));
}

/// Waits until the socket is readable or the thread is told to stop.
fn wait(events: &Events, woken: &UnixStream) -> Result<()> {
    let mut fds = [
        PollFd::new(events.as_fd(), PollFlags::POLLIN),
        PollFd::new(woken.as_fd(), PollFlags::POLLIN),
    ];
    match nix::poll::poll(&mut fds, PollTimeout::NONE) {
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(e) => Err(Error::sys("poll", e)),
    }
}

/// Blocks every signal in the calling thread.
fn block_signals() {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), None);
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_codec::nl::Messages;

    /// The conntrack events a real kernel sent (`codec/fixtures/events_ct.bin`).
    fn messages() -> Vec<Vec<u8>> {
        let bytes = include_bytes!("../../codec/fixtures/events_ct.bin");
        Messages::new(bytes)
            .map(|m| m.expect("a kernel message").bytes().to_vec())
            .collect()
    }

    fn parts(capacity: usize, when_full: WhenFull) -> (Receiver, Producer) {
        let options = ReceiverBuilder::new()
            .capacity(capacity)
            .when_full(when_full);
        let (rx, _woken) = Receiver::unstarted(options, EventStats::default()).expect("parts");
        let producer = Producer::new(Arc::clone(&rx.shared));
        (rx, producer)
    }

    /// What the receive thread does with one event read from the socket.
    fn receive(p: &mut Producer, msg: &[u8]) {
        match p.copy(msg, Kind::Conntrack(EventKind::New), EventStats::default()) {
            Found::Event(slot, kind) => p.batch.push_back(Item::Event { slot, kind }),
            Found::Overflow => push_lost(&mut p.batch, Lost::new(1, 0, true, LossCause::Backlog)),
            _ => unreachable!("copy finds an event or an overflow"),
        }
    }

    /// The items handed out until the queue is empty: ids of events, or losses.
    fn drain(rx: &mut Receiver) -> Vec<std::result::Result<u32, Lost>> {
        let mut out = Vec::new();
        loop {
            match rx.try_next() {
                Ok(Some(Event::Conntrack(ev))) => {
                    out.push(Ok(ev.entry.id().expect("id").expect("an id")));
                }
                Ok(Some(Event::Lost(l))) => out.push(Err(l)),
                Ok(Some(Event::Expect(_))) => panic!("no expectation here"),
                Ok(None) => return out,
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn id(msg: &[u8]) -> u32 {
        let m = NlMsg::new_checked(msg).expect("message");
        Conntrack::parse(m)
            .expect("entry")
            .id()
            .expect("id")
            .expect("an id")
    }

    #[test]
    fn a_full_queue_drops_counts_and_reports_in_place() {
        let msgs = messages();
        let (mut rx, mut p) = parts(2, WhenFull::Drop);
        for m in msgs.iter().take(4) {
            receive(&mut p, m);
        }
        p.publish(EventStats::default(), false);
        let got = drain(&mut rx);
        let lost = Lost::new(2, 2, true, LossCause::Backlog);
        assert_eq!(got, [Ok(id(&msgs[0])), Ok(id(&msgs[1])), Err(lost)]);
        let s = rx.stats();
        assert_eq!((s.backlog_lost, s.backlog_overruns, s.lost()), (2, 1, 2));
        assert_eq!((s.handed_out, s.peak, s.slots, s.capacity), (2, 2, 2, 2));
    }

    #[test]
    fn an_overrun_ends_when_the_reader_catches_up() {
        let msgs = messages();
        let (mut rx, mut p) = parts(1, WhenFull::Drop);
        for round in 1..=3u64 {
            receive(&mut p, &msgs[0]);
            receive(&mut p, &msgs[1]);
            receive(&mut p, &msgs[2]);
            p.publish(EventStats::default(), false);
            let got = drain(&mut rx);
            // The slot of the event handed out comes back: no new allocation.
            assert_eq!(got.len(), 2, "{got:?}");
            assert_eq!(
                got[1],
                Err(Lost::new(2, 2 * round, true, LossCause::Backlog))
            );
            let s = rx.stats();
            assert_eq!((s.backlog_overruns, s.slots), (round, 1));
        }
    }

    #[test]
    fn stream_losses_and_the_backlog_share_one_total() {
        let msgs = messages();
        let (mut rx, mut p) = parts(1, WhenFull::Drop);
        receive(&mut p, &msgs[0]);
        receive(&mut p, &msgs[1]);
        p.batch
            .push_back(Item::Lost(Lost::new(3, 3, true, LossCause::QueueFull)));
        let stream = EventStats {
            lost: 3,
            ..EventStats::default()
        };
        p.publish(stream, false);
        let got = drain(&mut rx);
        assert_eq!(
            got,
            [
                Ok(id(&msgs[0])),
                Err(Lost::new(1, 1, true, LossCause::Backlog)),
                Err(Lost::new(3, 4, true, LossCause::QueueFull)),
            ]
        );
        assert_eq!(rx.stats().lost(), 4);
    }

    #[test]
    fn losses_of_one_cause_merge_while_they_wait() {
        let mut q = VecDeque::new();
        push_lost(&mut q, Lost::new(1, 1, true, LossCause::QueueFull));
        push_lost(&mut q, Lost::new(2, 3, false, LossCause::QueueFull));
        push_lost(&mut q, Lost::new(1, 4, true, LossCause::Backlog));
        let grown = Lost {
            grown_to: Some(1 << 20),
            ..Lost::new(1, 5, true, LossCause::Backlog)
        };
        push_lost(&mut q, grown);
        // A report that tells of a growth is not merged into.
        push_lost(&mut q, Lost::new(1, 6, true, LossCause::Backlog));
        let lost: Vec<Lost> = q
            .into_iter()
            .map(|i| match i {
                Item::Lost(l) => l,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            lost,
            [
                Lost::new(3, 3, false, LossCause::QueueFull),
                Lost {
                    grown_to: Some(1 << 20),
                    ..Lost::new(2, 5, true, LossCause::Backlog)
                },
                Lost::new(1, 6, true, LossCause::Backlog),
            ]
        );
    }

    #[test]
    fn errors_keep_their_place_and_bad_slots_are_errors() {
        let msgs = messages();
        let (mut rx, mut p) = parts(8, WhenFull::Drop);
        receive(&mut p, &msgs[0]);
        p.batch.push_back(Item::Error(Error::Truncated {
            size: 70_000,
            capacity: 65_536,
        }));
        receive(&mut p, &msgs[0][..10]);
        receive(&mut p, &msgs[1]);
        p.publish(EventStats::default(), false);
        assert!(matches!(rx.try_next(), Ok(Some(Event::Conntrack(_)))));
        assert!(matches!(rx.try_next(), Err(Error::Truncated { .. })));
        assert!(matches!(rx.try_next(), Err(Error::Codec { .. })));
        assert!(matches!(rx.try_next(), Ok(Some(Event::Conntrack(_)))));
        assert!(matches!(rx.try_next(), Ok(None)));
    }

    #[test]
    fn the_idle_call_comes_with_the_counters_once_the_stream_is_quiet() {
        let msgs = messages();
        let (mut rx, mut p) = parts(4, WhenFull::Drop);
        receive(&mut p, &msgs[0]);
        let stream = EventStats {
            overruns: 2,
            ..EventStats::default()
        };
        p.publish(stream, false);
        p.tell_idle();
        let mut calls = Vec::new();
        // An item is queued: no call.
        assert!(matches!(
            rx.next_or_idle(|s| calls.push(s.overruns())),
            Ok(Some(Event::Conntrack(_)))
        ));
        // The stream ended (the thread is gone): one call, then the end.
        rx.shared.lock().finished = true;
        assert!(matches!(
            rx.next_or_idle(|s| calls.push(s.overruns())),
            Ok(None)
        ));
        assert_eq!(calls, [2]);
    }

    #[test]
    fn waiting_for_room_loses_nothing() {
        let msgs = messages();
        let (mut rx, mut p) = parts(1, WhenFull::Wait);
        let theirs: Vec<Vec<u8>> = msgs.iter().take(5).cloned().collect();
        let thread = std::thread::spawn(move || {
            for m in &theirs {
                receive(&mut p, m);
            }
            p.publish(EventStats::default(), true);
            let mut st = p.shared.lock();
            st.finished = true;
            st.idle = true;
            p.shared.ready.notify_all();
        });
        let mut got = Vec::new();
        while let Some(event) = rx.next().expect("next") {
            if let Event::Conntrack(ev) = event {
                got.push(ev.entry.id().expect("id").expect("an id"));
            }
        }
        thread.join().expect("the receiving side");
        let want: Vec<u32> = msgs.iter().take(5).map(|m| id(m)).collect();
        assert_eq!(got, want);
        let s = rx.stats();
        assert_eq!((s.backlog_lost, s.slots, s.handed_out), (0, 1, 5));
    }

    #[test]
    fn a_watch_sees_the_counters_ahead_of_the_reader() {
        let msgs = messages();
        let (rx, mut p) = parts(1, WhenFull::Drop);
        receive(&mut p, &msgs[0]);
        receive(&mut p, &msgs[1]);
        p.publish(EventStats::default(), false);
        let watch = rx.watch();
        assert_eq!(watch.stats().backlog_lost, 1);
        assert_eq!(rx.stats().backlog_lost, 0);
    }
}
