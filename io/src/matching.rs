//! Changing what a filter selects, in one streaming pass: [`Socket::change_matching`] and
//! [`Socket::delete_matching`].
//!
//! The dump runs on the socket, filtered in the kernel by what the kernel compares right;
//! each entry it delivers is matched exactly in userspace ([`DumpFilter::matches`]); for
//! each matching entry the caller writes one request (a delete, an update...); the
//! requests go out in bulk on the socket's second socket (same network namespace), a window
//! at a time, while the dump waits; each outcome goes to the caller with the entry it was
//! about. Memory is one window — the entries and requests in flight, in buffers allocated
//! once per call — whatever the size of the table; nothing is allocated per entry.
//!
//! What `conntrack -D` does — delete while the dump goes on, printing each deleted entry —
//! and what `conntrack -U` does — update each matching entry, then print it as it is now:
//!
//! ```no_run
//! use conntrack_codec::ct::request::{self, Key};
//! use conntrack_codec::ct::{ConntrackRepr, Tuple};
//! use conntrack_codec::filter::DumpFilter;
//! use conntrack_codec::fmt::{CtLine, Origin, Output};
//! use conntrack_io::Socket;
//!
//! let mut sock = Socket::open()?;
//! let out = Output::default();
//! let from_host = DumpFilter::all().with_orig(Tuple {
//!     src: Some("10.0.0.1".parse()?),
//!     ..Tuple::default()
//! });
//!
//! // -D: each entry printed as it is deleted (the entry as dumped).
//! sock.change_matching(
//!     &from_host,
//!     1024,
//!     |entry, w| request::delete(w, 0, &Key::from_view(entry)?.without_id()).map(|_| true),
//!     |entry, result| {
//!         if result.is_ok() {
//!             if let Ok(e) = ConntrackRepr::try_from(&entry) {
//!                 println!("{}", CtLine::new(&e, Origin::Delete, &out, &()));
//!             }
//!         }
//!     },
//! )?;
//!
//! // -U: set mark 1 on each entry that does not have it, then print it as it is now (a
//! // third socket fetches it: the first runs the dump, the second the updates).
//! let mut getter = Socket::open()?;
//! sock.change_matching(
//!     &from_host,
//!     1024,
//!     |entry, w| {
//!         if entry.mark()? == Some(1) {
//!             return Ok(false); // nothing to change: left alone
//!         }
//!         let key = Key::from_view(entry)?;
//!         let update = ConntrackRepr {
//!             orig: key.orig,
//!             zone: key.zone,
//!             mark: Some(1),
//!             ..ConntrackRepr::default()
//!         };
//!         request::update(w, 0, &update).map(|_| true)
//!     },
//!     |entry, result| {
//!         let now = result.and_then(|()| getter.get(&Key::from_view(&entry)?.without_id()));
//!         match now {
//!             Ok(e) => println!("{}", CtLine::new(&e, Origin::Dump, &out, &())),
//!             Err(e) => eprintln!("{e}"),
//!         }
//!     },
//! )?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ops::ControlFlow;

use conntrack_codec::ct::request::{self, Key};
use conntrack_codec::ct::Conntrack;
use conntrack_codec::filter::DumpFilter;
use conntrack_codec::nl::{NlMsg, NlMsgHeader, Writer};
use nix::errno::Errno;

use crate::conntrack::DumpKind;
use crate::error::{Error, Result};
use crate::ops::Acks;
use crate::socket::Socket;

/// What [`Socket::change_matching`] did, in totals; each request's own outcome went to the
/// callback.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeSummary {
    /// Entries the dump delivered (what the kernel's part of the filter selected).
    pub dumped: u64,
    /// Of those, the entries the whole filter selects (the exact userspace match).
    pub matched: u64,
    /// Requests sent (the matching entries the caller wrote a request for).
    pub requested: u64,
    /// Requests the kernel acknowledged.
    pub succeeded: u64,
    /// Entries that were gone when their request arrived (`ENOENT`: expired or deleted
    /// meanwhile). Not failures.
    pub vanished: u64,
    /// Requests that failed otherwise: refused, not built, not sent, or whose answer was
    /// lost (each reported to the callback).
    pub failed: u64,
    /// The first of those failures.
    pub first_error: Option<Error>,
    /// Whether the kernel flagged the dump `NLM_F_DUMP_INTR` (entries may have been missed
    /// or seen twice; run it again to be sure).
    pub interrupted: bool,
    /// Datagrams of requests sent.
    pub datagrams: u64,
    /// Messages dropped on either socket because they answered nothing awaited.
    pub foreign: u64,
}

impl ChangeSummary {
    /// Turns failed requests or an interrupted dump into an error.
    ///
    /// # Errors
    /// The first failure ([`first_error`](ChangeSummary::first_error)), else
    /// [`Error::DumpInterrupted`].
    pub fn complete(self) -> Result<Self> {
        if let Some(e) = self.first_error.clone() {
            return Err(e);
        }
        if self.interrupted {
            return Err(Error::DumpInterrupted);
        }
        Ok(self)
    }
}

/// The least room a window's entry and request buffers get, whatever the window.
const MIN_BUFFER: usize = 16 * 1024;
/// Room per request of a window, for the matching entries and for the requests.
const ENTRY_ROOM: usize = 640;
const REQUEST_ROOM: usize = 256;

/// One window: the matching entries and their requests, waiting to be sent.
struct Window {
    entries: Box<[u8]>,
    entries_used: usize,
    requests: Box<[u8]>,
    requests_used: usize,
    /// Per pending request: its entry's and its request's byte ranges.
    spans: Vec<(usize, usize, usize, usize)>,
    capacity: usize,
    /// The largest request: what must be free before a request is written.
    max_request: usize,
}

impl Window {
    fn new(capacity: usize, max_entry: usize, max_request: usize) -> Window {
        let entries = capacity
            .saturating_mul(ENTRY_ROOM)
            .max(max_entry)
            .max(MIN_BUFFER);
        // Room for `capacity` requests of the usual size, plus one of the largest.
        let requests = capacity
            .saturating_mul(REQUEST_ROOM)
            .max(MIN_BUFFER)
            .saturating_add(max_request);
        Window {
            entries: vec![0; entries].into_boxed_slice(),
            entries_used: 0,
            requests: vec![0; requests].into_boxed_slice(),
            requests_used: 0,
            spans: Vec::with_capacity(capacity),
            capacity,
            max_request,
        }
    }

    fn clear(&mut self) {
        self.entries_used = 0;
        self.requests_used = 0;
        self.spans.clear();
    }

    /// Whether an entry of `len` bytes fits, with room for a request of any size.
    fn has_room(&self, len: usize) -> bool {
        self.spans.len() < self.capacity
            && self.entries.len().saturating_sub(self.entries_used) >= len
            && self.requests.len().saturating_sub(self.requests_used) >= self.max_request
    }

    /// Stores `entry` and the request `build` writes for it (call when
    /// [`has_room`](Window::has_room)). `Ok(false)` if `build` chose to skip it; an error
    /// if `build` failed (nothing is kept).
    fn push<B>(
        &mut self,
        entry: &[u8],
        view: &Conntrack<'_>,
        build: &mut B,
    ) -> Result<bool, conntrack_codec::Error>
    where
        B: FnMut(&Conntrack<'_>, &mut Writer<'_>) -> conntrack_codec::Result<bool>,
    {
        let room = self
            .requests
            .get_mut(self.requests_used..)
            .unwrap_or_default();
        let mut w = Writer::new(room);
        if !build(view, &mut w)? {
            return Ok(false);
        }
        let req_len = w.len();
        if req_len == 0 {
            return Err(conntrack_codec::Error::InvalidValue(
                "request: nothing written",
            ));
        }
        let start = self.entries_used;
        let end = start.saturating_add(entry.len());
        let slot = self
            .entries
            .get_mut(start..end)
            .ok_or(conntrack_codec::Error::BufferTooSmall)?;
        slot.copy_from_slice(entry);
        self.entries_used = end;
        let req_start = self.requests_used;
        self.requests_used = req_start.saturating_add(req_len);
        self.spans.push((start, end, req_start, self.requests_used));
        Ok(true)
    }

    /// Entry `i` as a view.
    fn entry(&self, i: usize) -> Option<Conntrack<'_>> {
        let &(start, end, _, _) = self.spans.get(i)?;
        let msg = NlMsg::new_checked(self.entries.get(start..end)?).ok()?;
        Conntrack::parse(msg).ok()
    }

    /// Request `i`, renumbered to `seq`.
    fn request(&mut self, i: usize, seq: u32) -> conntrack_codec::Result<&[u8]> {
        let &(_, _, start, end) = self
            .spans
            .get(i)
            .ok_or(conntrack_codec::Error::InvalidValue("window index"))?;
        let bytes = self
            .requests
            .get_mut(start..end)
            .ok_or(conntrack_codec::Error::InvalidValue("window index"))?;
        let mut header = NlMsgHeader::parse(bytes)?;
        header.seq = seq;
        header.emit(bytes)?;
        Ok(bytes)
    }
}

/// The state of one [`Socket::change_matching`] call, fed by the dump.
struct Run<'f, B, R> {
    filter: &'f DumpFilter,
    build: B,
    on_result: R,
    window: Window,
    summary: ChangeSummary,
    /// A failure of the second socket itself: the run stops.
    fatal: Option<Error>,
}

impl<B, R> Run<'_, B, R>
where
    B: FnMut(&Conntrack<'_>, &mut Writer<'_>) -> conntrack_codec::Result<bool>,
    R: FnMut(Conntrack<'_>, Result<()>),
{
    /// Tallies one outcome and hands it to the caller.
    fn settle(
        summary: &mut ChangeSummary,
        on_result: &mut R,
        entry: Option<Conntrack<'_>>,
        r: Result<()>,
    ) {
        match &r {
            Ok(()) => summary.succeeded += 1,
            Err(e) if e.errno() == Some(Errno::ENOENT) => summary.vanished += 1,
            Err(e) => {
                summary.failed += 1;
                summary.first_error.get_or_insert_with(|| e.clone());
            }
        }
        if let Some(entry) = entry {
            on_result(entry, r);
        }
    }

    /// One entry from the dump.
    fn on_entry(&mut self, helper: &mut Socket, view: Conntrack<'_>) -> ControlFlow<()> {
        self.summary.dumped += 1;
        match self.filter.matches(&view) {
            Ok(true) => {}
            Ok(false) => return ControlFlow::Continue(()),
            Err(e) => {
                self.fatal = Some(Error::Codec {
                    error: e,
                    offset: None,
                });
                return ControlFlow::Break(());
            }
        }
        self.summary.matched += 1;
        let bytes = view.nf().msg().bytes();
        if !self.window.has_room(bytes.len()) {
            self.send(helper);
        }
        match self.window.push(bytes, &view, &mut self.build) {
            Ok(true) => self.summary.requested += 1,
            Ok(false) => {}
            Err(e) => {
                self.summary.requested += 1;
                Self::settle(
                    &mut self.summary,
                    &mut self.on_result,
                    Some(view),
                    Err(Error::Build(e)),
                );
            }
        }
        if self.fatal.is_some() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    /// Sends the window's requests in bulk on `helper` and settles each.
    fn send(&mut self, helper: &mut Socket) {
        let count = self.window.spans.len();
        if count == 0 {
            return;
        }
        let Run {
            window,
            summary,
            on_result,
            fatal,
            ..
        } = self;
        // `bulk` writes each request through one closure and reports through another;
        // both need the window (one to renumber a request), never at the same time.
        let window = std::cell::RefCell::new(window);
        let mut settled = 0usize;
        let result = helper.bulk_with_acks(
            count,
            count,
            Acks::PerDatagram,
            |i, w, seq| {
                let mut win = window.borrow_mut();
                let bytes = win.request(i, seq)?;
                w.raw(bytes)
            },
            |i, r| {
                settled += 1;
                let win = window.borrow();
                Self::settle(summary, on_result, win.entry(i), r);
            },
        );
        let window = window.into_inner();
        match result {
            Ok(s) => {
                summary.datagrams += s.datagrams as u64;
                summary.foreign += s.foreign;
            }
            Err(e) => {
                // If nothing was settled, nothing was sent: every request of the window
                // fails with the error. (Else every outcome is in, and only restoring an
                // option failed.)
                if settled == 0 {
                    for i in 0..count {
                        Self::settle(summary, on_result, window.entry(i), Err(e.clone()));
                    }
                }
                *fatal = Some(e);
            }
        }
        window.clear();
    }
}

impl Socket {
    /// Streams "change what matches": dumps the table, matches each entry exactly against
    /// `filter`, has `build` write one request per matching entry, and sends the requests
    /// in bulk on a second socket while the dump goes on; `on_result` gets each request's
    /// outcome with the entry it was about.
    ///
    /// - The dump sends the kernel the part of `filter` it compares right
    ///   ([`crate::filtering`]); every entry is then checked with
    ///   [`DumpFilter::matches`], so an IPv6 address in the filter never selects the wrong
    ///   entries.
    /// - `build(entry, writer)` writes one whole request message for `entry` (a delete with
    ///   [`request::delete`], an update with [`request::update`]...; the sequence number is
    ///   replaced when it is sent, so write 0) and returns `Ok(true)`, or returns
    ///   `Ok(false)` to leave the entry alone. It is called exactly once per matching
    ///   entry, during the dump, and its request may be as large as the send buffer.
    /// - The requests go out `window` at a time on the socket's second socket (opened in
    ///   the same network namespace on first use, and kept), each datagram acknowledged as
    ///   with [`Acks::PerDatagram`]; the dump waits meanwhile, so at most `window` entries
    ///   are held.
    /// - `on_result(entry, result)` is called once per request, in no particular order,
    ///   with the entry as dumped (a view of a copy held until then): print it, count it.
    ///   A result of [`Error::Kernel`] with `ENOENT` means the entry was gone by then
    ///   (counted in [`ChangeSummary::vanished`], not as a failure).
    ///
    /// Memory: two buffers sized for `window` entries and requests (about 900 bytes per
    /// entry of the window, at least the socket's buffer sizes), allocated once per call;
    /// nothing per entry. The second socket's receive queue is enlarged to hold a window's
    /// answers (`SO_RCVBUFFORCE`, falling back to `SO_RCVBUF`); if it cannot be, the window
    /// is made smaller to fit.
    ///
    /// ```no_run
    /// use conntrack_codec::ct::request::{self, Key};
    /// use conntrack_codec::ct::Tuple;
    /// use conntrack_codec::filter::DumpFilter;
    /// use conntrack_io::Socket;
    ///
    /// // Delete the UDP entries DNATed to a backend that went away, printing each.
    /// let mut sock = Socket::open()?;
    /// let stale = DumpFilter::all().with_reply(Tuple {
    ///     src: Some("fd00::5".parse()?),
    ///     proto: Some(17),
    ///     ..Tuple::default()
    /// });
    /// let summary = sock.change_matching(
    ///     &stale,
    ///     256,
    ///     |entry, w| request::delete(w, 0, &Key::from_view(entry)?).map(|_| true),
    ///     |entry, result| match result {
    ///         Ok(()) => println!("deleted {:?}", entry.orig()),
    ///         Err(e) => eprintln!("{:?}: {e}", entry.orig()),
    ///     },
    /// )?;
    /// println!("{} deleted, {} gone already", summary.succeeded, summary.vanished);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Build`] if `filter` is impossible ([`DumpFilter::check`]) or `window` is
    /// 0: nothing was sent. The errors of [`Socket::dump`] for the dump (the requests sent
    /// before it failed have had their outcome reported). [`Error::Sys`] if the second
    /// socket cannot be opened, or fails as a whole; every request of its window is then
    /// reported failed with that error.
    pub fn change_matching<B, R>(
        &mut self,
        filter: &DumpFilter,
        window: usize,
        build: B,
        on_result: R,
    ) -> Result<ChangeSummary>
    where
        B: FnMut(&Conntrack<'_>, &mut Writer<'_>) -> conntrack_codec::Result<bool>,
        R: FnMut(Conntrack<'_>, Result<()>),
    {
        filter.check().map_err(Error::Build)?;
        if window == 0 {
            return Err(Error::Build(conntrack_codec::Error::InvalidValue(
                "bulk window of 0",
            )));
        }
        let max_entry = self.recv_buffer_len();
        let mut helper = self.take_helper()?;
        let wanted = window.saturating_mul(1024);
        let got = match helper.rcvbuf() {
            Ok(have) if have >= wanted => have,
            _ => helper.set_rcvbuf(wanted).unwrap_or(0),
        };
        let window = window.min((got / 1024).max(1));
        let mut run = Run {
            filter,
            build,
            on_result,
            window: Window::new(window, max_entry, helper.send_buffer_len()),
            summary: ChangeSummary::default(),
            fatal: None,
        };
        // The dump runs on this socket, the requests go out on the second one.
        let dumped = self.dump_entries(filter, DumpKind::List, |view| {
            run.on_entry(&mut helper, view)
        });
        run.send(&mut helper);
        self.put_helper(helper);
        let dump = dumped?;
        if let Some(e) = run.fatal {
            return Err(e);
        }
        let mut summary = run.summary;
        summary.interrupted = dump.interrupted;
        summary.foreign += dump.foreign;
        Ok(summary)
    }

    /// Deletes every entry `filter` selects — exactly, IPv6 addresses included — in one
    /// streaming pass ([`change_matching`](Socket::change_matching) with a delete per
    /// entry, by its tuple, zone and id), and returns the totals. Entries gone meanwhile
    /// are counted in [`ChangeSummary::vanished`], not as failures; other failures are
    /// counted, and the first one kept ([`ChangeSummary::complete`] turns it into an
    /// error).
    ///
    /// This is what a cleanup of stale NAT entries needs (the job of kube-proxy, Calico or
    /// Cilium): the kernel's own filtered flush compares IPv6 addresses inverted, and
    /// before 6.11 cannot flush by tuple at all.
    ///
    /// ```no_run
    /// use conntrack_codec::ct::Tuple;
    /// use conntrack_codec::filter::DumpFilter;
    ///
    /// let mut sock = conntrack_io::Socket::open()?;
    /// // Every UDP entry to port 53 of 10.96.0.10 (a Kubernetes DNS service).
    /// let dns = DumpFilter::all().with_orig(Tuple {
    ///     dst: Some("10.96.0.10".parse()?),
    ///     proto: Some(17),
    ///     dst_port: Some(53),
    ///     ..Tuple::default()
    /// });
    /// let done = sock.delete_matching(&dns)?.complete()?;
    /// println!("{} entries deleted", done.succeeded);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`change_matching`](Socket::change_matching).
    pub fn delete_matching(&mut self, filter: &DumpFilter) -> Result<ChangeSummary> {
        self.change_matching(
            filter,
            DELETE_WINDOW,
            |entry, w| request::delete(w, 0, &Key::from_view(entry)?).map(|_| true),
            |_, _| {},
        )
    }
}

/// The window of [`Socket::delete_matching`] and of the flushes done entry by entry.
pub(crate) const DELETE_WINDOW: usize = 512;
