//! Conntrack and expectation events: subscribing to the multicast groups, reading the events
//! parsed in place, filtering them in the kernel, and never losing a loss silently.
//!
//! [`Events`] owns a [`Socket`] subscribed to any combination of the six ctnetlink groups
//! ([`Groups`]). [`Events::next`] hands out one [`Event`] at a time, parsed in place in the
//! socket's receive buffer (a lending iterator: the event borrows the stream until the next
//! call), so nothing is allocated per event:
//!
//! - [`Event::Conntrack`]: a conntrack entry was created, updated or destroyed, with the
//!   zero-copy [`Conntrack`] view and the `nlmsg_pid` of the request that caused it (0 for
//!   events caused by packets or timers);
//! - [`Event::Expect`]: an expectation was created or destroyed, with the [`Expect`] view;
//! - [`Event::Lost`]: the kernel could not queue some events for this socket; the item says
//!   how many (exactly, from the socket's drop counter) and the running total. The stream
//!   carries on after it; the caller resynchronises with a dump ([`Socket::list`]).
//!
//! Events are accepted only from the kernel (sender port id 0) and only from multicast
//! datagrams; anything else is dropped and counted ([`EventStats::foreign`]). A datagram may
//! hold several messages: each is handed out in turn.
//!
//! # Loss
//!
//! Each event the kernel cannot queue because the socket's receive queue is full increments
//! the socket's drop counter (`SO_MEMINFO`, the `Drops` column of `/proc/net/netlink`). The
//! stream reads that counter and reports every increase as an [`Event::Lost`]: the count is
//! exact for a socket used only for events, since ctnetlink sends each event in a datagram of
//! its own. When the counter is read is set by [`Events::set_drop_check`]: by default after
//! every datagram received (one `getsockopt` per datagram), and in any case whenever the
//! kernel reports an overrun (`recvmsg` fails with `ENOBUFS`) and before waiting on an empty
//! queue. So a loss is reported also when `NETLINK_NO_ENOBUFS` keeps the kernel from
//! signalling it.
//!
//! # Requests go on a second socket
//!
//! A request's answer arrives in the same queue as the events, behind the ones waiting. So
//! requests made on the event socket ([`Events::with_socket`]) read and drop every event that
//! arrives before their answers (counted, and reported as an [`Event::Lost`] with
//! [`LossCause::Request`]); under load that is most of them. Open a second [`Socket`] for
//! everything you ask the kernel: the events that arrive meanwhile then wait in the event
//! socket's queue, and only a queue too small for the burst loses any
//! ([`LossCause::QueueFull`], counted exactly):
//!
//! ```no_run
//! use std::ops::ControlFlow;
//! use conntrack_codec::filter::DumpFilter;
//! use conntrack_io::{Event, Events, Groups, Socket};
//!
//! let mut events = Events::open(Groups::CONNTRACK)?; // only events arrive here
//! let mut requests = Socket::open()?;                // only answers arrive here
//! // The first view of the table (events queue up on the other socket meanwhile):
//! requests
//!     .list(&DumpFilter::default(), |_entry| ControlFlow::Continue(()))?
//!     .consistent()?;
//! while let Some(event) = events.next()? {
//!     if let Event::Lost(lost) = event {
//!         eprintln!("{lost}"); // always LossCause::QueueFull here: resync
//!         requests
//!             .list(&DumpFilter::default(), |_entry| ControlFlow::Continue(()))?
//!             .consistent()?;
//!     }
//! }
//! # Ok::<(), conntrack_io::Error>(())
//! ```
//!
//! # Example
//!
//! Print every conntrack event, and resynchronise after a loss (needs `CAP_NET_ADMIN`):
//!
//! ```no_run
//! use std::ops::ControlFlow;
//! use conntrack_codec::filter::DumpFilter;
//! use conntrack_io::{Event, Events, Groups, Socket};
//!
//! let mut events = Events::open(Groups::CONNTRACK)?;
//! events.set_rcvbuf(8 << 20)?;
//! let mut requests = Socket::open()?;
//! while let Some(event) = events.next()? {
//!     match event {
//!         Event::Conntrack(ev) => println!("{:?} {:?}", ev.kind, ev.entry.orig()),
//!         Event::Expect(ev) => println!("expectation {:?}", ev.kind),
//!         Event::Lost(lost) => {
//!             eprintln!("{lost}: resynchronising");
//!             requests
//!                 .list(&DumpFilter::default(), |_entry| ControlFlow::Continue(()))?
//!                 .consistent()?;
//!         }
//!     }
//! }
//! # Ok::<(), conntrack_io::Error>(())
//! ```

use std::fmt;
use std::ops::{BitOr, BitOrAssign};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::Path;

use conntrack_codec::ct::{Conntrack, EventKind};
use conntrack_codec::exp::Expect;
use conntrack_codec::filter::bpf::{BpfInsn, EventFilter};
use conntrack_codec::nfnl::{ct_msg, exp_msg, groups, split_type, Subsystem};
use conntrack_codec::nl::{align, NlMsg};
use conntrack_codec::session::KERNEL_PORTID;
use nix::errno::Errno;
use nix::sys::socket::MsgFlags;

use crate::error::{Error, Result};
use crate::socket::{recv_datagram, SockFilter, Socket};

/// A set of the six ctnetlink multicast groups.
///
/// ```
/// use conntrack_io::Groups;
/// let g = Groups::CONNTRACK_NEW | Groups::CONNTRACK_DESTROY;
/// assert!(g.contains(Groups::CONNTRACK_NEW));
/// assert!(!g.contains(Groups::CONNTRACK));
/// assert_eq!(g.numbers().collect::<Vec<_>>(), [1, 3]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Groups(u8);

impl Groups {
    /// No group.
    pub const NONE: Groups = Groups(0);
    /// New conntrack entries (`NFNLGRP_CONNTRACK_NEW`).
    pub const CONNTRACK_NEW: Groups = Groups::bit(groups::CONNTRACK_NEW);
    /// Updated conntrack entries (`NFNLGRP_CONNTRACK_UPDATE`).
    pub const CONNTRACK_UPDATE: Groups = Groups::bit(groups::CONNTRACK_UPDATE);
    /// Destroyed conntrack entries (`NFNLGRP_CONNTRACK_DESTROY`).
    pub const CONNTRACK_DESTROY: Groups = Groups::bit(groups::CONNTRACK_DESTROY);
    /// New expectations (`NFNLGRP_CONNTRACK_EXP_NEW`).
    pub const EXP_NEW: Groups = Groups::bit(groups::EXP_NEW);
    /// Updated expectations (`NFNLGRP_CONNTRACK_EXP_UPDATE`; Linux 6.18 never sends one).
    pub const EXP_UPDATE: Groups = Groups::bit(groups::EXP_UPDATE);
    /// Destroyed expectations (`NFNLGRP_CONNTRACK_EXP_DESTROY`).
    pub const EXP_DESTROY: Groups = Groups::bit(groups::EXP_DESTROY);
    /// The three conntrack groups: what `conntrack -E` subscribes to.
    pub const CONNTRACK: Groups = Groups(0b000_111);
    /// The three expectation groups: what `conntrack -E expect` subscribes to.
    pub const EXPECT: Groups = Groups(0b111_000);
    /// All six groups.
    pub const ALL: Groups = Groups(0b111_111);

    const fn bit(group: u32) -> Groups {
        Groups(1 << (group - 1))
    }

    /// Both sets.
    pub const fn union(self, other: Groups) -> Groups {
        Groups(self.0 | other.0)
    }

    /// Whether every group of `other` is in the set.
    pub const fn contains(self, other: Groups) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The group numbers in the set (1 to 6), in ascending order, as
    /// `NETLINK_ADD_MEMBERSHIP` takes them.
    pub fn numbers(self) -> impl Iterator<Item = u32> {
        (1..=6u32).filter(move |&g| self.0 & (1 << (g - 1)) != 0)
    }
}

impl BitOr for Groups {
    type Output = Groups;
    fn bitor(self, other: Groups) -> Groups {
        self.union(other)
    }
}

impl BitOrAssign for Groups {
    fn bitor_assign(&mut self, other: Groups) {
        *self = self.union(other);
    }
}

/// One item of the event stream, borrowed from the socket's receive buffer until the next
/// call to [`Events::next`] or [`Events::try_next`].
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A conntrack entry was created, updated or destroyed.
    Conntrack(CtEvent<'a>),
    /// An expectation was created or destroyed.
    Expect(ExpEvent<'a>),
    /// Events were lost: the view of the table is stale until it is dumped again.
    Lost(Lost),
}

/// A conntrack event: `CT_NEW` with `NLM_F_CREATE|NLM_F_EXCL` (new), other `CT_NEW` (update),
/// or `CT_DELETE` (destroy).
#[non_exhaustive]
#[derive(Debug, Clone, Copy)]
pub struct CtEvent<'a> {
    /// New, update or destroy.
    pub kind: EventKind,
    /// The entry, parsed in place; its attributes are what the kernel put in the event (see
    /// `codec/fixtures/README.md`: no `CTA_USE`, `CTA_MARK` only when non-zero or made by a
    /// request, counters only in destroy events).
    pub entry: Conntrack<'a>,
    /// The message's `nlmsg_pid`: the port id of the netlink socket whose request caused the
    /// event, or 0 for events caused by packets or timers. `conntrack -E` prints
    /// ` [USERSPACE] portid=N` when it is not 0.
    pub portid: u32,
}

/// An expectation event: `EXP_NEW` (new) or `EXP_DELETE` (destroy).
#[non_exhaustive]
#[derive(Debug, Clone, Copy)]
pub struct ExpEvent<'a> {
    /// New or destroy (update if a kernel ever sends an `EXP_NEW` without `NLM_F_CREATE`).
    pub kind: EventKind,
    /// The expectation, parsed in place.
    pub exp: Expect<'a>,
    /// The message's `nlmsg_pid` (see [`CtEvent::portid`]).
    pub portid: u32,
}

/// An event that owns a copy of its message: what crosses threads, tasks and channels
/// ([`Events::next_owned`], [`From<Event>`](OwnedEvent#impl-From%3CEvent%3C'_%3E%3E-for-OwnedEvent)).
///
/// A conntrack or expectation event is one boxed copy of its netlink message (200 to 400
/// bytes) plus what was read from it; moving it moves two words. The view is made again from
/// the copy on demand ([`OwnedCtEvent::entry`]), in one pass over its attributes.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedEvent {
    /// A conntrack entry was created, updated or destroyed.
    Conntrack(OwnedCtEvent),
    /// An expectation was created or destroyed.
    Expect(OwnedExpEvent),
    /// Events were lost (no message to own).
    Lost(Lost),
}

/// A conntrack event that owns its message; see [`OwnedEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedCtEvent {
    kind: EventKind,
    portid: u32,
    msg: Box<[u8]>,
}

impl OwnedCtEvent {
    /// New, update or destroy.
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// The port id of the socket whose request caused the event, 0 for packets and timers
    /// (see [`CtEvent::portid`]).
    pub fn portid(&self) -> u32 {
        self.portid
    }

    /// The netlink message, as received.
    pub fn bytes(&self) -> &[u8] {
        &self.msg
    }

    /// The entry, as a view of the message.
    ///
    /// # Errors
    /// None in practice: the message was checked when the event was received.
    pub fn entry(&self) -> Result<Conntrack<'_>> {
        NlMsg::new_checked(&self.msg)
            .and_then(Conntrack::parse)
            .map_err(Error::from)
    }
}

/// An expectation event that owns its message; see [`OwnedEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedExpEvent {
    kind: EventKind,
    portid: u32,
    msg: Box<[u8]>,
}

impl OwnedExpEvent {
    /// New or destroy.
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// The port id of the socket whose request caused the event (see [`CtEvent::portid`]).
    pub fn portid(&self) -> u32 {
        self.portid
    }

    /// The netlink message, as received.
    pub fn bytes(&self) -> &[u8] {
        &self.msg
    }

    /// The expectation, as a view of the message.
    ///
    /// # Errors
    /// None in practice: the message was checked when the event was received.
    pub fn exp(&self) -> Result<Expect<'_>> {
        NlMsg::new_checked(&self.msg)
            .and_then(Expect::parse)
            .map_err(Error::from)
    }
}

impl From<Event<'_>> for OwnedEvent {
    /// Copies the event's message (one allocation of its size).
    fn from(event: Event<'_>) -> Self {
        match event {
            Event::Conntrack(ev) => OwnedEvent::Conntrack(OwnedCtEvent {
                kind: ev.kind,
                portid: ev.portid,
                msg: Box::from(ev.entry.nf().msg().bytes()),
            }),
            Event::Expect(ev) => OwnedEvent::Expect(OwnedExpEvent {
                kind: ev.kind,
                portid: ev.portid,
                msg: Box::from(ev.exp.nf().msg().bytes()),
            }),
            Event::Lost(lost) => OwnedEvent::Lost(lost),
        }
    }
}

/// Why events were lost.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LossCause {
    /// The socket's receive queue was full and the kernel could not queue them (the drop
    /// counter moved, and `recvmsg` failed with `ENOBUFS` unless `NETLINK_NO_ENOBUFS` is on).
    QueueFull,
    /// A request operation run on the event socket ([`Events::with_socket`]) read and
    /// dropped them while it waited for its answers.
    Request,
}

/// Events were lost: how many since the previous report, and in total.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lost {
    /// Events lost since the previous report.
    pub count: u64,
    /// Events lost since the stream was opened (this report included).
    pub total: u64,
    /// Whether `count` is exact. It is when it comes from the drop counter, except in reliable
    /// mode (see [`Events::set_reliable`]), where it counts failed deliveries, some of which
    /// the kernel retries. It is a lower bound (at least one event) when the kernel reported
    /// an overrun but the drop counter cannot be read (kernels before 4.x).
    pub exact: bool,
    /// Why.
    pub cause: LossCause,
}

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at_least = if self.exact { "" } else { "at least " };
        let why = match self.cause {
            LossCause::QueueFull => "receive queue full",
            LossCause::Request => "dropped by a request on the event socket",
        };
        let events = if self.count == 1 { "event" } else { "events" };
        write!(
            f,
            "{at_least}{} {events} lost ({} in total): {why}",
            self.count, self.total
        )
    }
}

/// What an event stream has seen so far.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EventStats {
    /// Events handed out.
    pub received: u64,
    /// Events lost (the sum of every [`Lost::count`]).
    pub lost: u64,
    /// Messages dropped because they were not events from the kernel: sent by a process,
    /// sent by the kernel to this socket alone (answers to raw requests), or of another type.
    pub foreign: u64,
    /// Times the drop counter was read.
    pub drop_checks: u64,
    /// Times the kernel reported an overrun of the receive queue (`recvmsg` failed with
    /// `ENOBUFS`; never with `NETLINK_NO_ENOBUFS` on). One overrun may lose many events;
    /// `conntrack -E` warns once per overrun.
    pub overruns: u64,
}

/// A socket subscribed to conntrack and expectation events; see the module documentation.
///
/// Make requests (dumps, gets, changes) on a second [`Socket`]: requests made on this one
/// with [`with_socket`](Events::with_socket) drop the events that arrive meanwhile.
#[derive(Debug)]
pub struct Events {
    sock: Socket,
    groups: Groups,
    /// Bytes `pos..len` of the receive buffer are the rest of the current datagram.
    pos: usize,
    len: usize,
    /// The current datagram was truncated: its last, partial message is not an error.
    truncated: bool,
    /// The drop counter when last read, or `None` if this kernel has none.
    drops_seen: Option<u32>,
    /// Check the drop counter after every `check_every`-th datagram (0: only when the queue
    /// runs dry or the kernel reports an overrun).
    check_every: u32,
    /// Datagrams received since the drop counter was last read.
    unchecked: u32,
    /// Events dropped by requests on this socket, not reported yet.
    pending_request_loss: u64,
    /// An item found by [`prepare`](Events::prepare), not handed out yet.
    pending: Option<Step>,
    stats: EventStats,
}

/// What [`Events::advance`] found.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A message to hand out: bytes `start..end` of the receive buffer.
    Msg {
        start: usize,
        end: usize,
        kind: Kind,
    },
    /// A loss to report.
    Lost(Lost),
    /// Nothing is queued (and the call must not block).
    Nothing,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Conntrack(EventKind),
    Expect,
}

/// Whether a message is an event, and of which kind.
fn classify(msg: &NlMsg<'_>) -> Option<Kind> {
    match split_type(msg.kind()) {
        (Subsystem::Ctnetlink, ct_msg::NEW | ct_msg::DELETE) => {
            EventKind::of(msg).map(Kind::Conntrack)
        }
        (Subsystem::CtnetlinkExp, exp_msg::NEW | exp_msg::DELETE) => Some(Kind::Expect),
        _ => None,
    }
}

/// Converts one classic-BPF instruction of the codec to the socket layer's form.
pub fn sock_filter(insn: &BpfInsn) -> SockFilter {
    SockFilter {
        code: insn.code,
        jt: insn.jt,
        jf: insn.jf,
        k: insn.k,
    }
}

/// Compiles an event filter into a program ready for [`Socket::attach_filter`].
///
/// # Errors
/// [`Error::Build`] with the compiler's error: [`conntrack_codec::Error::TooLong`] if the
/// program would exceed the kernel's 4096 instructions.
pub fn compile_filter<const N: usize>(filter: &EventFilter<N>) -> Result<Vec<SockFilter>> {
    let len = filter.program_len().map_err(Error::Build)?;
    let mut insns = vec![BpfInsn::default(); len];
    let written = filter.compile(&mut insns).map_err(Error::Build)?;
    Ok(insns
        .get(..written)
        .unwrap_or_default()
        .iter()
        .map(sock_filter)
        .collect())
}

impl Events {
    /// Opens a socket in the caller's network namespace and subscribes it to `groups`.
    ///
    /// # Errors
    /// See [`Socket::open`] and [`Events::subscribe`].
    pub fn open(groups: Groups) -> Result<Events> {
        Events::subscribe(Socket::open()?, groups)
    }

    /// Opens a socket in the network namespace at `path` and subscribes it to `groups`.
    ///
    /// # Errors
    /// See [`Socket::open_in_netns`] and [`Events::subscribe`].
    pub fn open_in_netns(path: impl AsRef<Path>, groups: Groups) -> Result<Events> {
        Events::subscribe(Socket::open_in_netns(path)?, groups)
    }

    /// Subscribes `sock` to `groups` and makes it an event stream. The drop counter's current
    /// value is the baseline: only later drops are reported.
    ///
    /// # Errors
    /// [`Error::Sys`] from `setsockopt(NETLINK_ADD_MEMBERSHIP)` (`EPERM` without
    /// `CAP_NET_ADMIN`) or from reading the drop counter (except `EOPNOTSUPP`/`ENOPROTOOPT`
    /// from a kernel without one).
    pub fn subscribe(sock: Socket, groups: Groups) -> Result<Events> {
        let drops_seen = match sock.drops() {
            Ok(d) => Some(d),
            Err(Error::Sys {
                errno: Errno::EOPNOTSUPP | Errno::ENOPROTOOPT,
                ..
            }) => None,
            Err(e) => return Err(e),
        };
        let mut events = Events::unsubscribed(sock, drops_seen);
        events.join(groups)?;
        Ok(events)
    }

    /// A stream over `sock`, subscribed to nothing yet, with the drop counter's baseline.
    fn unsubscribed(sock: Socket, drops_seen: Option<u32>) -> Events {
        Events {
            sock,
            groups: Groups::NONE,
            pos: 0,
            len: 0,
            truncated: false,
            drops_seen,
            check_every: 1,
            unchecked: 0,
            pending_request_loss: 0,
            pending: None,
            stats: EventStats::default(),
        }
    }

    /// Subscribes to more groups.
    ///
    /// # Errors
    /// [`Error::Sys`] from `setsockopt(NETLINK_ADD_MEMBERSHIP)`; the groups joined before
    /// the failing one stay joined.
    pub fn join(&mut self, groups: Groups) -> Result<()> {
        for g in groups.numbers() {
            self.sock.join_group(g)?;
            self.groups |= Groups::bit(g);
        }
        Ok(())
    }

    /// Unsubscribes from groups. Events of those groups already queued are still handed out.
    ///
    /// # Errors
    /// [`Error::Sys`] from `setsockopt(NETLINK_DROP_MEMBERSHIP)`.
    pub fn leave(&mut self, groups: Groups) -> Result<()> {
        for g in groups.numbers() {
            self.sock.leave_group(g)?;
            self.groups = Groups(self.groups.0 & !Groups::bit(g).0);
        }
        Ok(())
    }

    /// The groups subscribed to.
    pub fn groups(&self) -> Groups {
        self.groups
    }

    /// The next event; blocks while nothing is queued, unless the socket is non-blocking
    /// ([`set_nonblocking`](Events::set_nonblocking)) or has a receive timeout.
    ///
    /// Returns `Ok(None)` only when nothing is queued and the socket does not block. On a
    /// blocking socket, `while let Some(event) = events.next()?` runs until an error.
    ///
    /// ```no_run
    /// use conntrack_codec::ct::EventKind;
    /// use conntrack_io::{Event, Events, Groups};
    ///
    /// // Count the connections that end, and say how many ends were missed.
    /// let mut events = Events::open(Groups::CONNTRACK_DESTROY)?;
    /// let (mut ended, mut missed) = (0u64, 0u64);
    /// while let Some(event) = events.next()? {
    ///     match event {
    ///         Event::Conntrack(ev) if ev.kind == EventKind::Destroy => ended += 1,
    ///         Event::Lost(lost) => missed += lost.count,
    ///         _ => {}
    ///     }
    ///     if ended % 1000 == 0 {
    ///         println!("{ended} ended, {missed} missed");
    ///     }
    /// }
    /// # Ok::<(), conntrack_io::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Codec`] for a malformed message from the kernel and [`Error::Truncated`] for
    /// a datagram larger than the receive buffer: in both cases the stream carries on with
    /// the next message at the next call. [`Error::Sys`] from `recvmsg` or from reading the
    /// drop counter.
    #[allow(clippy::should_implement_trait)] // A lending iterator: each event borrows the buffer.
    pub fn next(&mut self) -> Result<Option<Event<'_>>> {
        self.read(false)
    }

    /// The next event if one is queued, without blocking, whatever the socket's mode:
    /// `Ok(None)` means nothing now. For poll/epoll loops: call it until it returns
    /// `Ok(None)`, then wait for the descriptor ([`AsFd`]) to become readable.
    ///
    /// # Errors
    /// As [`next`](Events::next).
    pub fn try_next(&mut self) -> Result<Option<Event<'_>>> {
        self.read(true)
    }

    /// The next event as an [`OwnedEvent`] that holds a copy of its message (one allocation
    /// of its size), to send to another thread or task; blocks as [`next`](Events::next)
    /// does.
    ///
    /// # Errors
    /// As [`next`](Events::next).
    pub fn next_owned(&mut self) -> Result<Option<OwnedEvent>> {
        Ok(self.next()?.map(OwnedEvent::from))
    }

    /// The next event as an [`OwnedEvent`] if one is queued, without blocking; see
    /// [`try_next`](Events::try_next).
    ///
    /// # Errors
    /// As [`next`](Events::next).
    pub fn try_next_owned(&mut self) -> Result<Option<OwnedEvent>> {
        Ok(self.try_next()?.map(OwnedEvent::from))
    }

    /// Finds the next item without blocking and keeps it for the next
    /// [`next`](Events::next) or [`try_next`](Events::try_next); returns whether there is
    /// one. It lends nothing, so an event loop (such as the tokio one) can decide whether to
    /// wait before borrowing the event.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn prepare(&mut self) -> Result<bool> {
        if self.pending.is_some() {
            return Ok(true);
        }
        match self.advance(true)? {
            Step::Nothing => Ok(false),
            step => {
                self.pending = Some(step);
                Ok(true)
            }
        }
    }

    fn read(&mut self, never_block: bool) -> Result<Option<Event<'_>>> {
        let step = match self.pending.take() {
            Some(step) => step,
            None => self.advance(never_block)?,
        };
        let (start, end, kind) = match step {
            Step::Nothing => return Ok(None),
            Step::Lost(lost) => return Ok(Some(Event::Lost(lost))),
            Step::Msg { start, end, kind } => (start, end, kind),
        };
        let codec = |error| Error::Codec {
            error,
            offset: Some(start),
        };
        let msg =
            NlMsg::new_checked(self.sock.rx.get(start..end).unwrap_or_default()).map_err(codec)?;
        let portid = msg.pid();
        let event = match kind {
            Kind::Conntrack(kind) => Event::Conntrack(CtEvent {
                kind,
                entry: Conntrack::parse(msg).map_err(codec)?,
                portid,
            }),
            Kind::Expect => {
                let exp = Expect::parse(msg).map_err(codec)?;
                Event::Expect(ExpEvent {
                    kind: exp.event_kind().unwrap_or(EventKind::New),
                    exp,
                    portid,
                })
            }
        };
        self.stats.received = self.stats.received.saturating_add(1);
        Ok(Some(event))
    }

    /// Finds the next thing to hand out: a message of the current datagram, a loss, or a new
    /// datagram; borrows nothing, so that [`read`](Events::read) can lend the buffer.
    fn advance(&mut self, never_block: bool) -> Result<Step> {
        if self.pending_request_loss > 0 {
            let count = std::mem::take(&mut self.pending_request_loss);
            return Ok(Step::Lost(self.lost(count, true, LossCause::Request)));
        }
        loop {
            if let Some(step) = self.next_in_datagram()? {
                return Ok(step);
            }
            // The datagram is used up: receive the next one. With datagrams left unchecked,
            // look without waiting first, so that the drop counter is read before waiting on
            // an empty queue.
            let probe = !never_block && self.unchecked > 0;
            let flags = if never_block || probe {
                MsgFlags::MSG_DONTWAIT
            } else {
                MsgFlags::empty()
            };
            match recv_datagram(self.sock.fd.as_fd(), &mut self.sock.rx, flags) {
                Ok(d) => {
                    self.unchecked = self.unchecked.saturating_add(1);
                    let due = self.check_every != 0 && self.unchecked >= self.check_every;
                    let from_kernel = d.sender == KERNEL_PORTID && d.groups != 0;
                    if from_kernel {
                        self.pos = 0;
                        self.len = d.len;
                        self.truncated = d.truncated;
                    } else {
                        self.count_foreign(d.len);
                    }
                    // The whole messages of a truncated datagram are handed out after the
                    // error; the drop counter is then read at the next receive.
                    if from_kernel && d.truncated {
                        return Err(Error::Truncated {
                            size: d.size,
                            capacity: self.sock.rx.len(),
                        });
                    }
                    if due {
                        if let Some(lost) = self.check_drops()? {
                            return Ok(Step::Lost(lost));
                        }
                    }
                }
                Err(Error::WouldBlock) => {
                    if self.unchecked > 0 {
                        if let Some(lost) = self.check_drops()? {
                            return Ok(Step::Lost(lost));
                        }
                    }
                    if never_block || !probe {
                        return Ok(Step::Nothing);
                    }
                }
                Err(Error::Overrun) => {
                    self.stats.overruns = self.stats.overruns.saturating_add(1);
                    if self.drops_seen.is_none() {
                        return Ok(Step::Lost(self.lost(1, false, LossCause::QueueFull)));
                    }
                    // An overrun whose drops an earlier check already reported is no news.
                    if let Some(lost) = self.check_drops()? {
                        return Ok(Step::Lost(lost));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The next message of the current datagram, if any.
    fn next_in_datagram(&mut self) -> Result<Option<Step>> {
        while self.pos < self.len {
            let start = self.pos;
            let rest = self.sock.rx.get(start..self.len).unwrap_or_default();
            let msg = match NlMsg::new_checked(rest) {
                Ok(msg) => msg,
                Err(error) => {
                    // The framing is broken: the rest of the datagram cannot be read.
                    self.pos = self.len;
                    if self.truncated {
                        return Ok(None);
                    }
                    return Err(Error::Codec {
                        error,
                        offset: Some(start),
                    });
                }
            };
            let size = msg.bytes().len();
            let step = align(size).unwrap_or(usize::MAX).min(rest.len());
            self.pos = start.saturating_add(step);
            match classify(&msg) {
                Some(kind) => {
                    return Ok(Some(Step::Msg {
                        start,
                        end: start.saturating_add(size),
                        kind,
                    }))
                }
                None => self.stats.foreign = self.stats.foreign.saturating_add(1),
            }
        }
        Ok(None)
    }

    /// Counts the messages of a datagram that did not come from the kernel's multicast.
    fn count_foreign(&mut self, len: usize) {
        let bytes = self.sock.rx.get(..len).unwrap_or_default();
        let n = conntrack_codec::nl::Messages::new(bytes).count().max(1);
        self.stats.foreign = self
            .stats
            .foreign
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// Records a loss of `count` events and builds its report.
    fn lost(&mut self, count: u64, exact: bool, cause: LossCause) -> Lost {
        self.stats.lost = self.stats.lost.saturating_add(count);
        Lost {
            count,
            total: self.stats.lost,
            exact,
            cause,
        }
    }

    /// Reads the drop counter now and reports what it counted since it was last read.
    ///
    /// [`next`](Events::next) and [`try_next`](Events::try_next) do this on their own (see
    /// [`set_drop_check`](Events::set_drop_check)); call it from a timer to learn of a loss
    /// without reading the stream, or before a resynchronising dump. A loss it returns is not
    /// reported again by the stream.
    ///
    /// # Errors
    /// [`Error::Sys`] from `getsockopt(SO_MEMINFO)`.
    pub fn check_drops(&mut self) -> Result<Option<Lost>> {
        self.unchecked = 0;
        let Some(seen) = self.drops_seen else {
            return Ok(None);
        };
        let now = self.sock.drops()?;
        self.stats.drop_checks = self.stats.drop_checks.saturating_add(1);
        self.drops_seen = Some(now);
        // The counter is a wrapping u32.
        let count = u64::from(now.wrapping_sub(seen));
        Ok((count > 0).then(|| self.lost(count, true, LossCause::QueueFull)))
    }

    /// Sets when the stream reads the drop counter: after every `every`-th datagram received
    /// (the default is 1, every datagram), and in any case when the kernel reports an overrun
    /// and before waiting on an empty queue (or returning `Ok(None)`).
    ///
    /// Each read is one `getsockopt(SO_MEMINFO)` system call: with a read after every
    /// datagram, reading an event costs a quarter to a third more (0.7 to 1 µs more per event
    /// on a 2-core x86-64 machine). With `every` above 1, or 0 (never on a count), a loss is still
    /// reported, but later: at the latest when the reader has caught up with the queue.
    /// Under a sustained overload the reader may never catch up, so with
    /// `NETLINK_NO_ENOBUFS` on (no overrun report from the kernel) keep `every` small.
    pub fn set_drop_check(&mut self, every: u32) {
        self.check_every = every;
    }

    /// Counters of what the stream has seen.
    pub fn stats(&self) -> EventStats {
        self.stats
    }

    /// Switches the socket between blocking and non-blocking mode; see
    /// [`next`](Events::next).
    ///
    /// # Errors
    /// [`Error::Sys`] from `fcntl`.
    pub fn set_nonblocking(&self, on: bool) -> Result<()> {
        self.sock.set_nonblocking(on)
    }

    /// Sizes the kernel's receive queue for the socket and returns the effective size
    /// (`SO_RCVBUFFORCE`, falling back to `SO_RCVBUF` capped at `net.core.rmem_max` without
    /// `CAP_NET_ADMIN`; see [`Socket::set_rcvbuf`], and [`Socket::set_rcvbuf_report`] to
    /// learn which one it was).
    ///
    /// The queue is what absorbs bursts: each queued event costs about 1 KiB of it (the
    /// kernel counts a buffer's true size, not the message's 200 to 400 bytes), so the
    /// default of 208 KiB holds about 200 events, and 64 MiB about 64 000.
    ///
    /// # Errors
    /// [`Error::Sys`] from `setsockopt` or `getsockopt`.
    pub fn set_rcvbuf(&self, bytes: usize) -> Result<usize> {
        self.sock.set_rcvbuf(bytes)
    }

    /// Turns `NETLINK_NO_ENOBUFS` on or off. With it on, the kernel no longer makes `recvmsg`
    /// fail with `ENOBUFS` after dropping events; events are lost just the same. The stream
    /// still reports each loss from the drop counter (see
    /// [`set_drop_check`](Events::set_drop_check)).
    ///
    /// # Errors
    /// [`Error::Sys`] from `setsockopt`; with `EOPNOTSUPP` if the kernel has no drop counter
    /// to read, since losses would then go unreported.
    pub fn set_no_enobufs(&self, on: bool) -> Result<()> {
        if on && self.drops_seen.is_none() {
            return Err(Error::Sys {
                call: "getsockopt(SO_MEMINFO)",
                errno: Errno::EOPNOTSUPP,
            });
        }
        self.sock.set_no_enobufs(on)
    }

    /// Turns the reliable mode of conntrackd on or off: `NETLINK_BROADCAST_ERROR` and
    /// `NETLINK_NO_ENOBUFS` together.
    ///
    /// With `NETLINK_BROADCAST_ERROR`, a delivery that fails for this socket fails for the
    /// kernel's sender too, and conntrack then keeps what it could not deliver: a destroy
    /// event is kept (the entry waits on a list) and retried until it is delivered, and the
    /// new/update events an entry missed are merged into its next event. Destroy events are
    /// therefore never lost; the drop counter, and so [`Lost::count`], counts failed delivery
    /// attempts, retried ones included, so it is an upper bound of what was really lost
    /// (and [`Lost::exact`] is still set: it is the kernel's exact count of failures).
    ///
    /// # Errors
    /// As [`set_no_enobufs`](Events::set_no_enobufs), and [`Error::Sys`] from
    /// `setsockopt(NETLINK_BROADCAST_ERROR)`.
    pub fn set_reliable(&self, on: bool) -> Result<()> {
        self.set_no_enobufs(on)?;
        self.sock.set_broadcast_error(on)
    }

    /// Compiles `filter` and attaches it to the socket (`SO_ATTACH_FILTER`), replacing any
    /// filter attached before; returns the program's length in instructions. The kernel then
    /// drops the conntrack events the filter rejects before queueing them: they are neither
    /// received nor counted as drops. Expectation events and every other message pass.
    ///
    /// # Errors
    /// [`Error::Build`] if the program would exceed the kernel's 4096 instructions;
    /// [`Error::Sys`] from `setsockopt`.
    pub fn attach_filter<const N: usize>(&self, filter: &EventFilter<N>) -> Result<usize> {
        let program = compile_filter(filter)?;
        self.sock.attach_filter(&program)?;
        Ok(program.len())
    }

    /// Detaches the socket filter (`SO_DETACH_FILTER`).
    ///
    /// # Errors
    /// [`Error::Sys`] from `setsockopt`: `ENOENT` if no filter is attached.
    pub fn detach_filter(&self) -> Result<()> {
        self.sock.detach_filter()
    }

    /// The socket, for its options and counters ([`Socket::drops`], [`Socket::rcvbuf`],
    /// [`Socket::portid`]).
    pub fn socket(&self) -> &Socket {
        &self.sock
    }

    /// Runs `f` with the socket, to make requests on the event socket (such as a
    /// resynchronising [`Socket::list`]).
    ///
    /// The request operations read the socket's queue until their answers arrive and drop
    /// the events they meet (they are counted in [`Socket::foreign_dropped`]); the stream
    /// reports them as an [`Event::Lost`] with [`LossCause::Request`] (any message forged by
    /// another process and dropped meanwhile is counted with them). The rest of a datagram
    /// not yet handed out is counted the same way, since the requests reuse the receive
    /// buffer. Prefer a second [`Socket`] for requests: it loses nothing (see the module
    /// documentation, "Requests go on a second socket").
    pub fn with_socket<R>(&mut self, f: impl FnOnce(&mut Socket) -> R) -> R {
        let mut unread = 0u64;
        match self.pending.take() {
            Some(Step::Msg { .. }) => unread = 1,
            // A loss found but not reported yet is reported later, not lost.
            Some(step @ Step::Lost(_)) => self.pending = Some(step),
            _ => {}
        }
        while let Ok(Some(Step::Msg { .. })) = self.next_in_datagram() {
            unread = unread.saturating_add(1);
        }
        self.pos = 0;
        self.len = 0;
        let before = self.sock.foreign_dropped();
        let out = f(&mut self.sock);
        let dropped = self.sock.foreign_dropped().saturating_sub(before);
        self.pending_request_loss = self
            .pending_request_loss
            .saturating_add(unread)
            .saturating_add(dropped);
        // The request may have met an overrun: have the counter read before the next wait.
        self.unchecked = self.unchecked.max(1);
        out
    }

    /// Ends the stream and returns the socket, still subscribed to its groups.
    pub fn into_socket(self) -> Socket {
        self.sock
    }
}

impl AsFd for Events {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl AsRawFd for Events {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty datagram (Linux 6.18 refuses to send one over netlink, others may) counts as
    /// one foreign message, like any datagram that is not the kernel's multicast.
    #[test]
    fn empty_datagrams_are_counted() {
        let (forger, to, sock) = crate::ops::tests::forger_and_socket("events");
        let mut events = Events::unsubscribed(sock, None);
        for bytes in [&[][..], &[1, 2, 3], &[]] {
            crate::ops::tests::forge(&forger, &to, bytes);
        }
        assert!(events.try_next().expect("try_next").is_none());
        let stats = events.stats();
        assert_eq!((stats.received, stats.foreign), (0, 3));
    }

    #[test]
    fn groups_map_to_the_kernel_numbers() {
        assert_eq!(Groups::CONNTRACK.numbers().collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(Groups::EXPECT.numbers().collect::<Vec<_>>(), [4, 5, 6]);
        assert_eq!(Groups::ALL, Groups::CONNTRACK | Groups::EXPECT);
        let mut g = Groups::NONE;
        assert!(g.is_empty());
        g |= Groups::EXP_DESTROY;
        assert_eq!(g.numbers().collect::<Vec<_>>(), [groups::EXP_DESTROY]);
        assert!(Groups::ALL.contains(Groups::EXP_UPDATE));
    }

    #[test]
    fn lost_reads_well() {
        let lost = Lost {
            count: 12,
            total: 40,
            exact: true,
            cause: LossCause::QueueFull,
        };
        assert_eq!(
            lost.to_string(),
            "12 events lost (40 in total): receive queue full"
        );
        let inexact = Lost {
            exact: false,
            cause: LossCause::Request,
            ..lost
        };
        assert!(inexact.to_string().starts_with("at least 12 events lost"));
        let one = Lost {
            count: 1,
            total: 1,
            ..lost
        };
        assert_eq!(
            one.to_string(),
            "1 event lost (1 in total): receive queue full"
        );
    }

    #[test]
    fn filters_convert_field_by_field() {
        let insn = BpfInsn::jump(0x15, 0xdead_beef, 3, 7);
        let s = sock_filter(&insn);
        assert_eq!((s.code, s.jt, s.jf, s.k), (0x15, 3, 7, 0xdead_beef));
        let program = compile_filter(&EventFilter::<4>::empty()).unwrap();
        assert!(!program.is_empty());
    }
}
