//! Tokio support (feature `tokio`): the event stream as `async fn next`, and requests and
//! dumps as `async fn`s. No `unsafe` in user code; without the feature, none of this is
//! built and blocking users pay nothing for it.
//!
//! - [`AsyncEvents`] wraps [`Events`] in tokio's reactor: [`next`](AsyncEvents::next) waits
//!   for the next event without blocking the thread and lends it like [`Events::next`]
//!   (parsed in place, no allocation); [`next_owned`](AsyncEvents::next_owned) returns an
//!   [`OwnedEvent`] to send to another task; [`poll_next_owned`](AsyncEvents::poll_next_owned)
//!   is the same as a poll function, to make a `Stream` (`futures::stream::poll_fn`).
//!   Losses arrive as [`Event::Lost`], exactly as with the blocking stream.
//! - [`AsyncSocket`] runs requests, dumps and bulk changes on tokio's blocking pool: the
//!   kernel answers a request inside `sendmsg` and produces a dump inside `recvmsg`, so the
//!   operations never wait for I/O, but a dump of a large table keeps a CPU busy for a
//!   while, which must not be a reactor thread.
//!
//! ```no_run
//! use conntrack_codec::filter::DumpFilter;
//! use conntrack_io::tokio::{AsyncEvents, AsyncSocket};
//! use conntrack_io::{Event, Groups};
//!
//! # async fn run() -> Result<(), conntrack_io::Error> {
//! let mut events = AsyncEvents::open(Groups::CONNTRACK)?;
//! let requests = AsyncSocket::open()?;
//! loop {
//!     match events.next().await? {
//!         Event::Conntrack(ev) => println!("{:?} {:?}", ev.kind, ev.entry.orig()),
//!         Event::Expect(ev) => println!("expectation {:?}", ev.kind),
//!         Event::Lost(lost) => {
//!             eprintln!("{lost}: resynchronising");
//!             let (n, _) = requests
//!                 .list_fold(DumpFilter::all(), 0u64, |n, _entry| {
//!                     *n += 1;
//!                     std::ops::ControlFlow::Continue(())
//!                 })
//!                 .await?;
//!             eprintln!("{n} entries in the table");
//!         }
//!     }
//! }
//! # }
//! ```

use std::future::poll_fn;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use conntrack_codec::ct::request::Key;
use conntrack_codec::ct::{Conntrack, ConntrackRepr, StatsGlobal};
use conntrack_codec::filter::DumpFilter;
use nix::errno::Errno;
use tokio::io::unix::AsyncFd;

use crate::conntrack::Flushed;
use crate::error::{Error, Result};
use crate::events::{Event, Events, Groups, OwnedEvent};
use crate::matching::ChangeSummary;
use crate::ops::DumpSummary;
use crate::socket::Socket;

/// The errno of an I/O error from tokio.
fn io_error(call: &'static str, e: &std::io::Error) -> Error {
    Error::sys(call, e.raw_os_error().map_or(Errno::EIO, Errno::from_raw))
}

/// An event stream driven by tokio's reactor; see the [module documentation](self).
#[derive(Debug)]
pub struct AsyncEvents {
    fd: AsyncFd<Events>,
}

impl AsyncEvents {
    /// Registers `events` with the current tokio runtime (switching its socket to
    /// non-blocking mode).
    ///
    /// # Errors
    /// [`Error::Sys`] from `fcntl`, or if registering the descriptor fails (with `ENXIO`
    /// outside a tokio runtime).
    ///
    /// # Panics
    /// Inside a tokio runtime built without I/O (`enable_io`), as tokio's registration does.
    pub fn new(events: Events) -> Result<AsyncEvents> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::sys(
                "AsyncFd::register (no tokio runtime)",
                Errno::ENXIO,
            ));
        }
        events.set_nonblocking(true)?;
        let fd =
            crate::sys::register_readable(events).map_err(|e| io_error("AsyncFd::register", &e))?;
        Ok(AsyncEvents { fd })
    }

    /// Opens a socket in the caller's network namespace, subscribes it to `groups`, and
    /// registers it.
    ///
    /// # Errors
    /// See [`Events::open`] and [`AsyncEvents::new`].
    pub fn open(groups: Groups) -> Result<AsyncEvents> {
        AsyncEvents::new(Events::open(groups)?)
    }

    /// The same in the network namespace at `path`.
    ///
    /// # Errors
    /// See [`Events::open_in_netns`] and [`AsyncEvents::new`].
    pub fn open_in_netns(path: impl AsRef<Path>, groups: Groups) -> Result<AsyncEvents> {
        AsyncEvents::new(Events::open_in_netns(path, groups)?)
    }

    /// Waits until an item is ready to be handed out, without lending it.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        loop {
            if self.fd.get_mut().prepare()? {
                return Poll::Ready(Ok(()));
            }
            // The queue was empty just now: wait for the reactor, then look again (the
            // readiness seen may predate what was just found empty).
            match self.fd.poll_read_ready_mut(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(io_error("epoll", &e))),
                Poll::Ready(Ok(mut guard)) => guard.clear_ready(),
            }
        }
    }

    /// The next event, lent like [`Events::next`] (parsed in place, no allocation; it
    /// borrows the stream until the next call). Waits without blocking the thread.
    ///
    /// Cancel-safe: dropping the future loses nothing (an item found but not handed out is
    /// kept for the next call).
    ///
    /// # Errors
    /// As [`Events::next`]; [`Error::Sys`] if the reactor fails.
    pub async fn next(&mut self) -> Result<Event<'_>> {
        poll_fn(|cx| self.poll_ready(cx)).await?;
        match self.fd.get_mut().try_next()? {
            Some(event) => Ok(event),
            // `poll_ready` keeps the item it found: there always is one.
            None => Err(Error::NoAnswer),
        }
    }

    /// The next event, as an [`OwnedEvent`] (one allocation of its message's size): what
    /// to send to another task or over a channel.
    ///
    /// # Errors
    /// As [`next`](AsyncEvents::next).
    pub async fn next_owned(&mut self) -> Result<OwnedEvent> {
        poll_fn(|cx| self.poll_next_owned(cx)).await
    }

    /// [`next_owned`](AsyncEvents::next_owned) as a poll function, for a `Stream`
    /// (`futures::stream::poll_fn(|cx| events.poll_next_owned(cx).map(Some))`).
    ///
    /// # Errors
    /// As [`next`](AsyncEvents::next).
    pub fn poll_next_owned(&mut self, cx: &mut Context<'_>) -> Poll<Result<OwnedEvent>> {
        match self.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => Poll::Ready(match self.fd.get_mut().try_next_owned() {
                Ok(Some(event)) => Ok(event),
                Ok(None) => Err(Error::NoAnswer),
                Err(e) => Err(e),
            }),
        }
    }

    /// The blocking stream, for its settings and counters ([`Events::stats`],
    /// [`Events::set_rcvbuf`], [`Events::attach_filter`]...).
    pub fn get_ref(&self) -> &Events {
        self.fd.get_ref()
    }

    /// The blocking stream, mutably ([`Events::check_drops`], [`Events::join`]...). Reading
    /// events through it directly is fine: it is non-blocking.
    pub fn get_mut(&mut self) -> &mut Events {
        self.fd.get_mut()
    }

    /// Deregisters the stream and returns it (still non-blocking).
    pub fn into_inner(self) -> Events {
        self.fd.into_inner()
    }
}

/// A [`Socket`] whose operations run on tokio's blocking pool; see the [module
/// documentation](self).
///
/// It is a shared handle: clones use the same socket, one operation at a time. An
/// operation whose future is dropped still runs to its end on the pool, and the socket
/// stays usable.
#[derive(Debug, Clone)]
pub struct AsyncSocket {
    sock: Arc<Mutex<Socket>>,
}

impl AsyncSocket {
    /// Wraps a socket.
    pub fn new(sock: Socket) -> AsyncSocket {
        AsyncSocket {
            sock: Arc::new(Mutex::new(sock)),
        }
    }

    /// Opens a socket in the caller's network namespace.
    ///
    /// # Errors
    /// See [`Socket::open`].
    pub fn open() -> Result<AsyncSocket> {
        Socket::open().map(AsyncSocket::new)
    }

    /// Opens a socket in the network namespace at `path`.
    ///
    /// # Errors
    /// See [`Socket::open_in_netns`].
    pub fn open_in_netns(path: impl AsRef<Path>) -> Result<AsyncSocket> {
        Socket::open_in_netns(path).map(AsyncSocket::new)
    }

    /// Runs `f` with the socket on tokio's blocking pool and returns what it returns: any
    /// blocking operation of [`Socket`], or several in a row.
    ///
    /// # Errors
    /// What `f` returns; [`Error::Sys`] with `ENXIO` outside a tokio runtime.
    ///
    /// # Panics
    /// If `f` panics, the panic is resumed here.
    pub async fn run<R, F>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&mut Socket) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::sys("spawn_blocking (no tokio runtime)", Errno::ENXIO))?;
        let sock = Arc::clone(&self.sock);
        let task = handle.spawn_blocking(move || {
            let mut sock = sock.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut sock)
        });
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Error::sys("spawn_blocking (cancelled)", Errno::ECANCELED)),
        }
    }

    /// [`Socket::create`].
    ///
    /// # Errors
    /// See [`Socket::create`].
    pub async fn create(&self, entry: ConntrackRepr) -> Result<()> {
        self.run(move |s| s.create(&entry)).await
    }

    /// [`Socket::update`].
    ///
    /// # Errors
    /// See [`Socket::update`].
    pub async fn update(&self, entry: ConntrackRepr) -> Result<()> {
        self.run(move |s| s.update(&entry)).await
    }

    /// [`Socket::get`].
    ///
    /// # Errors
    /// See [`Socket::get`].
    pub async fn get(&self, key: Key) -> Result<ConntrackRepr> {
        self.run(move |s| s.get(&key)).await
    }

    /// [`Socket::delete`].
    ///
    /// # Errors
    /// See [`Socket::delete`].
    pub async fn delete(&self, key: Key) -> Result<()> {
        self.run(move |s| s.delete(&key)).await
    }

    /// [`Socket::flush`].
    ///
    /// # Errors
    /// See [`Socket::flush`].
    pub async fn flush(&self, filter: DumpFilter) -> Result<Flushed> {
        self.run(move |s| s.flush(&filter)).await
    }

    /// [`Socket::delete_matching`].
    ///
    /// # Errors
    /// See [`Socket::delete_matching`].
    pub async fn delete_matching(&self, filter: DumpFilter) -> Result<ChangeSummary> {
        self.run(move |s| s.delete_matching(&filter)).await
    }

    /// [`Socket::stats`].
    ///
    /// # Errors
    /// See [`Socket::stats`].
    pub async fn stats(&self) -> Result<StatsGlobal> {
        self.run(|s| s.stats()).await
    }

    /// [`Socket::count`].
    ///
    /// # Errors
    /// See [`Socket::count`].
    pub async fn count(&self) -> Result<u32> {
        self.run(|s| s.count()).await
    }

    /// [`Socket::list`] folded into a value: `f(&mut acc, entry)` sees each selected entry
    /// (a view parsed in place, on the blocking pool) and returns whether to go on; the
    /// accumulator comes back with the summary.
    ///
    /// # Errors
    /// See [`Socket::list`].
    pub async fn list_fold<T, F>(
        &self,
        filter: DumpFilter,
        init: T,
        mut f: F,
    ) -> Result<(T, DumpSummary)>
    where
        T: Send + 'static,
        F: FnMut(&mut T, Conntrack<'_>) -> ControlFlow<()> + Send + 'static,
    {
        self.run(move |s| {
            let mut acc = init;
            let summary = s.list(&filter, |entry| f(&mut acc, entry))?;
            Ok((acc, summary))
        })
        .await
    }

    /// Every entry `filter` selects, as plain data (one [`ConntrackRepr`] per entry:
    /// convenient, but it allocates per entry; [`list_fold`](AsyncSocket::list_fold)
    /// does not).
    ///
    /// # Errors
    /// See [`Socket::list`]; [`Error::Codec`] for an entry that does not convert;
    /// [`Error::DumpInterrupted`] if the kernel flagged the dump.
    pub async fn list_all(&self, filter: DumpFilter) -> Result<Vec<ConntrackRepr>> {
        self.run(move |s| {
            let mut out = Vec::new();
            let mut error = None;
            let _ = s
                .list(&filter, |entry| match ConntrackRepr::try_from(&entry) {
                    Ok(e) => {
                        out.push(e);
                        ControlFlow::Continue(())
                    }
                    Err(e) => {
                        error = Some(Error::from(e));
                        ControlFlow::Break(())
                    }
                })?
                .consistent()?;
            error.map_or(Ok(out), Err)
        })
        .await
    }
}
