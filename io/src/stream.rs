//! Changing, in one streaming pass, the entries a dump finds: [`Socket::change_each`].
//!
//! The dump runs on one socket; for each entry it delivers, the caller writes a request (a
//! delete, an update) or passes; the requests go out in bulk on a second socket a window at
//! a time, while the dump waits; each outcome goes to the caller with a copy of its entry, in
//! dump order, as soon as its window is done. Memory is one window, allocated once per call,
//! whatever the size of the table.

use std::ops::{ControlFlow, Range};

use conntrack_codec::ct::{Conntrack, ConntrackRepr};
use conntrack_codec::filter::DumpFilter;
use conntrack_codec::nl::{NlMsgHeader, Writer};

use crate::error::{Error, Result};
use crate::ops::{Acks, DumpSummary};
use crate::socket::Socket;

/// Room for one request of a window, on average.
const REQUEST_ROOM: usize = 256;

/// The entries and requests of one window, waiting to be sent.
struct Window {
    /// Copies of the entries, one per request.
    entries: Vec<ConntrackRepr>,
    /// The requests, one after the other.
    requests: Vec<u8>,
    /// Where each request is in `requests`.
    spans: Vec<Range<usize>>,
    /// The outcome of each request of the window being sent.
    results: Vec<Option<Result<()>>>,
    size: usize,
}

impl Window {
    fn new(size: usize) -> Window {
        Window {
            entries: Vec::with_capacity(size),
            requests: vec![0; size.saturating_mul(REQUEST_ROOM).max(64 * 1024)],
            spans: Vec::with_capacity(size),
            results: Vec::with_capacity(size),
            size,
        }
    }

    fn is_full(&self) -> bool {
        self.spans.len() >= self.size
    }

    /// Has `build` write the request for `view` after the ones in the window; `Ok(false)` if
    /// it passed. `Err(BufferTooSmall)` (with nothing kept) if the request does not fit.
    fn push<B>(&mut self, view: &Conntrack<'_>, build: &mut B) -> conntrack_codec::Result<bool>
    where
        B: FnMut(&Conntrack<'_>, &mut Writer<'_>) -> conntrack_codec::Result<bool>,
    {
        let start = self.spans.last().map_or(0, |s| s.end);
        let room = self.requests.get_mut(start..).unwrap_or_default();
        let mut w = Writer::new(room);
        if !build(view, &mut w)? {
            return Ok(false);
        }
        let len = w.len();
        let entry = ConntrackRepr::try_from(view)?;
        self.entries.push(entry);
        self.spans.push(start..start.saturating_add(len));
        Ok(true)
    }

    /// Sends the window's requests in bulk on `helper`, then hands each outcome to
    /// `on_result`, in order.
    fn send<R>(&mut self, helper: &mut Socket, on_result: &mut R) -> Result<()>
    where
        R: FnMut(&ConntrackRepr, Result<()>),
    {
        let count = self.spans.len();
        if count == 0 {
            return Ok(());
        }
        self.results.clear();
        self.results.resize(count, None);
        let Window {
            requests,
            spans,
            results,
            ..
        } = self;
        let sent = helper.bulk_with_acks(
            count,
            count,
            Acks::PerDatagram,
            |i, w, seq| {
                let span = spans
                    .get(i)
                    .cloned()
                    .ok_or(conntrack_codec::Error::InvalidValue("window index"))?;
                let bytes = requests
                    .get_mut(span)
                    .ok_or(conntrack_codec::Error::InvalidValue("window index"))?;
                // The request was written with sequence number 0: it gets its own now.
                let mut header = NlMsgHeader::parse(bytes)?;
                header.seq = seq;
                header.emit(bytes)?;
                w.raw(bytes)
            },
            |i, r| {
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(r);
                }
            },
        );
        // Requests whose outcome the failure left unknown fail with it (it can come after
        // every outcome is in, when an option cannot be set back).
        let missing = match &sent {
            Err(e) => Err(e.clone()),
            Ok(_) => Err(Error::NoAnswer),
        };
        for (entry, r) in self.entries.iter().zip(self.results.drain(..)) {
            on_result(entry, r.unwrap_or_else(|| missing.clone()));
        }
        self.entries.clear();
        self.spans.clear();
        sent.map(drop)
    }
}

impl Socket {
    /// Streams "change what the dump finds": dumps the table (filtered in the kernel by
    /// `filter`), has `build` write one request for each entry it wants changed, and sends
    /// the requests in bulk on `helper` (a second socket in the same network namespace),
    /// `window` at a time; `on_result` gets each request's outcome with a copy of its
    /// entry, in dump order.
    ///
    /// - `build(entry, writer)` writes one whole request message (a delete with
    ///   `request::delete`, an update with `request::update`...; write sequence number 0,
    ///   it is replaced when the request is sent) and returns `Ok(true)`, or returns
    ///   `Ok(false)` to leave the entry alone. An error of `build` ends the run.
    /// - While a window is sent the dump waits; the window's outcomes are handed out before
    ///   the dump goes on. Requests go with one acknowledgement per datagram
    ///   ([`Acks::PerDatagram`]).
    /// - A result of [`Error::Kernel`] with `ENOENT` means the entry was gone by then.
    ///
    /// Memory: one window of entries (a `ConntrackRepr` each) and of requests (256 bytes
    /// each on average, 64 KiB at least), allocated once per call; nothing per entry.
    ///
    /// ```no_run
    /// use conntrack_codec::ct::request::{self, Key};
    /// use conntrack_codec::filter::DumpFilter;
    /// use conntrack_io::Socket;
    ///
    /// // Delete every entry of family IPv4, printing each one as it goes.
    /// let (mut sock, mut helper) = (Socket::open()?, Socket::open()?);
    /// sock.change_each(
    ///     &mut helper,
    ///     &DumpFilter::family(2),
    ///     512,
    ///     |entry, w| {
    ///         let mut key = Key::orig(entry.orig()?.ok_or(conntrack_codec::Error::MissingAttribute("orig"))?);
    ///         key.zone = entry.zone()?;
    ///         request::delete(w, 0, &key).map(|_| true)
    ///     },
    ///     |entry, result| match result {
    ///         Ok(()) => println!("deleted {:?}", entry.orig),
    ///         Err(e) => eprintln!("{:?}: {e}", entry.orig),
    ///     },
    /// )?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Build`] if `window` is 0 (nothing is sent) or `build` fails; the errors of
    /// the dump; [`Error::Sys`] if `helper` fails as a whole (the requests of its window are
    /// then reported failed with that error). The outcomes of the windows sent before are
    /// reported all the same.
    pub fn change_each<B, R>(
        &mut self,
        helper: &mut Socket,
        filter: &DumpFilter,
        window: usize,
        mut build: B,
        mut on_result: R,
    ) -> Result<DumpSummary>
    where
        B: FnMut(&Conntrack<'_>, &mut Writer<'_>) -> conntrack_codec::Result<bool>,
        R: FnMut(&ConntrackRepr, Result<()>),
    {
        if window == 0 {
            return Err(Error::Build(conntrack_codec::Error::InvalidValue(
                "a window of 0",
            )));
        }
        let mut pending = Window::new(window);
        let mut fatal = None;
        let dumped = self.list(filter, |view| {
            let mut pushed = pending.push(&view, &mut build);
            if matches!(pushed, Err(conntrack_codec::Error::BufferTooSmall)) {
                // The window's buffer is full before its count: send it, and try again.
                if let Err(e) = pending.send(helper, &mut on_result) {
                    fatal = Some(e);
                    return ControlFlow::Break(());
                }
                pushed = pending.push(&view, &mut build);
            }
            if let Err(e) = pushed {
                fatal = Some(Error::Build(e));
                return ControlFlow::Break(());
            }
            if pending.is_full() {
                if let Err(e) = pending.send(helper, &mut on_result) {
                    fatal = Some(e);
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        });
        // What the dump gave before it ended is changed and reported whatever happened.
        let sent = pending.send(helper, &mut on_result);
        let summary = dumped?;
        if let Some(e) = fatal {
            return Err(e);
        }
        sent.map(|()| summary)
    }
}
