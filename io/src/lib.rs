//! `conntrack-io`: the netlink socket layer for Linux conntrack — list, get, change,
//! delete and watch connection-tracking entries, on top of [`conntrack_codec`].
//!
//! Everything here needs `CAP_NET_ADMIN` (root) in the network namespace of the socket.
//!
//! # Common tasks
//!
//! **List the table**, or what a filter selects ([`Socket::list`]; filters are built with
//! [`DumpFilter`](conntrack_codec::filter::DumpFilter), and compared exactly on every
//! kernel: see [`filtering`]):
//!
//! ```no_run
//! use std::ops::ControlFlow;
//! use conntrack_codec::ct::{l4proto, Tuple};
//! use conntrack_codec::filter::DumpFilter;
//! use conntrack_io::Socket;
//!
//! let mut sock = Socket::open()?;
//! let https = DumpFilter::all().with_orig(Tuple {
//!     proto: Some(l4proto::TCP),
//!     dst_port: Some(443),
//!     ..Tuple::default()
//! });
//! sock.list(&https, |entry| {
//!     // A zero-copy view of the entry, parsed in place: nothing is allocated per entry.
//!     println!("{:?} -> {:?}", entry.orig(), entry.reply());
//!     ControlFlow::Continue(())
//! })?
//! .consistent()?; // the kernel did not flag the dump as interrupted
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Get, create, update, delete one entry** by its [`Key`](conntrack_codec::ct::request::Key)
//! ([`Socket::get`], [`Socket::create`], [`Socket::update`], [`Socket::delete`]):
//!
//! ```no_run
//! use conntrack_codec::ct::request::Key;
//! use conntrack_codec::ct::{ConntrackRepr, Tuple};
//!
//! let mut sock = conntrack_io::Socket::open()?;
//! let orig = Tuple::udp("10.0.0.1".parse()?, "10.0.0.2".parse()?, 5000, 53);
//! sock.create(&ConntrackRepr {
//!     orig: Some(orig),
//!     reply: Some(orig.inverted()),
//!     timeout: Some(60),
//!     ..ConntrackRepr::default()
//! })?;
//! let mut entry = sock.get(&Key::orig(orig))?;
//! entry.mark = Some(7);
//! sock.update(&entry)?;
//! sock.delete(&Key::from_repr(&entry)?)?; // its tuple, zone and id
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Delete what matches** — stale NAT entries, a whole zone — in one call, exactly, IPv6
//! included ([`Socket::delete_matching`], [`Socket::flush`]; [`Socket::change_matching`] to
//! write another request per entry, such as an update):
//!
//! ```no_run
//! use conntrack_codec::ct::Tuple;
//! use conntrack_codec::filter::DumpFilter;
//!
//! let mut sock = conntrack_io::Socket::open()?;
//! let to_old_backend = DumpFilter::all().with_reply(Tuple {
//!     src: Some("fd00::5".parse()?),
//!     proto: Some(17),
//!     ..Tuple::default()
//! });
//! let done = sock.delete_matching(&to_old_backend)?;
//! println!("{} deleted, {} already gone", done.succeeded, done.vanished);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Watch events**, and know exactly how many were lost ([`Events`], [`events`]):
//!
//! ```no_run
//! use conntrack_io::{Event, Events, Groups};
//!
//! let mut events = Events::open(Groups::CONNTRACK)?;
//! while let Some(event) = events.next()? {
//!     match event {
//!         Event::Conntrack(ev) => println!("{:?} {:?}", ev.kind, ev.entry.orig()?),
//!         Event::Expect(ev) => println!("expectation {:?}", ev.kind),
//!         Event::Lost(lost) => eprintln!("{lost}: dump the table again"),
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A reader that formats or writes each event hands the receiving to a thread of its own,
//! [`Receiver`], so that the socket stays drained during a burst (see [`receiver`]).
//!
//! **With tokio** (feature `tokio`): `conntrack_io::tokio::AsyncEvents` (`async fn next`, owned
//! events for channels) and `conntrack_io::tokio::AsyncSocket` (requests and dumps).
//!
//! **Statistics**: [`Socket::stats`], [`Socket::count`], [`Socket::stats_per_cpu`];
//! **counters**: [`Socket::list_and_zero`]; **expectations**: [`Socket::exp_list`] and the
//! other `exp_*` operations; **many changes at once**: [`Socket::create_batch`] and the
//! other batches.
//!
//! **Errors** are one type, [`Error`]: the kernel's refusals with their errno and message
//! ([`Error::Kernel`]), impossible requests refused before sending ([`Error::Build`]),
//! losses that are never silent ([`Error::Overrun`], [`Error::Truncated`],
//! [`Error::DumpInterrupted`]). Codec errors convert into it with `?`, and
//! [`Socket::try_list`] takes a callback that fails with the caller's own error type.
//!
//! The examples in `io/examples/` are whole programs to copy from: a NAT cleanup
//! (`nat_cleanup`), a tokio monitor that resynchronises after a loss (`monitor`), statistics,
//! get, update and counter zeroing (`entry_ops`), and error handling (`errors`).
//!
//! # The layer below
//!
//! A [`Socket`] is opened with an automatic port id, in the caller's network namespace or
//! in another one ([`Socket::open_in_netns`]), with a receive buffer and a send buffer
//! allocated once ([`Builder`]). Every typed operation above is built on four:
//!
//! - [`Socket::execute`] sends one request and waits for its acknowledgement;
//! - [`Socket::request`] sends one request answered by one data message (a GET);
//! - [`Socket::dump`] streams a dump to a callback, one message at a time, parsed in place;
//! - [`Socket::bulk`] sends many requests per datagram and matches their acknowledgements
//!   back by sequence number, with a window that keeps the socket's queue from overflowing.
//!
//! Each takes a closure that writes its request with a
//! [`Writer`](conntrack_codec::nl::Writer) and the sequence number it is given. Replies are
//! accepted only from the kernel (sender port id 0) and with an awaited sequence number;
//! anything else is dropped and counted ([`Socket::foreign_dropped`]). Kernel refusals come
//! back as [`Error::Kernel`], with the errno and, since `NETLINK_EXT_ACK` is on by default,
//! the kernel's message and the offending attribute's offset.
//!
//! # Blocking
//!
//! The request operations never block, whatever the socket's mode: the kernel handles a
//! request inside `sendmsg` and the next part of a dump inside the `recvmsg` that consumed
//! the previous one, so every awaited answer is already queued when it is read. An empty
//! queue while an answer is awaited means the answer was dropped (a receive queue overrun,
//! or a socket filter); that is reported as [`Error::Overrun`] or [`Error::NoAnswer`]
//! instead of hanging. [`Socket::set_nonblocking`] governs [`Socket::recv`], the raw
//! receive for event loops.
//!
//! A raw dump, for a request the typed operations do not cover:
//!
//! ```no_run
//! use std::ops::ControlFlow;
//!
//! use conntrack_codec::nfnl::{ct_msg, msg_type, NfGenMsg, Subsystem};
//! use conntrack_io::Socket;
//!
//! let mut sock = Socket::open()?;
//! let summary = sock.dump(
//!     |w, seq| {
//!         w.message(msg_type(Subsystem::Ctnetlink, ct_msg::GET), 0, seq, 0, |w| {
//!             NfGenMsg { family: 0, version: 0, res_id: 0 }.emit(w)
//!         })?;
//!         Ok(())
//!     },
//!     |entry| {
//!         println!("an entry with {} bytes of attributes", entry.attr_bytes().len());
//!         ControlFlow::Continue(())
//!     },
//! )?;
//! if summary.interrupted {
//!     eprintln!("the table changed during the dump: entries may be missing or repeated");
//! }
//! # Ok::<(), conntrack_io::Error>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod clock;
mod connlabels;
mod conntrack;
mod error;
pub mod events;
pub mod filtering;
mod labels;
pub mod matching;
pub mod net;
mod ops;
mod progname;
pub mod receiver;
pub mod sched;
mod socket;
mod strerror;
mod sys;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

pub use connlabels::Connlabels;
pub use conntrack::Flushed;
pub use error::{Error, KernelError, Result};
pub use events::{
    compile_filter, sock_filter, CtEvent, Event, EventStats, Events, ExpEvent, Groups, LossCause,
    Lost, OwnedCtEvent, OwnedEvent, OwnedExpEvent,
};
pub use filtering::KernelFilters;
pub use labels::{load_label_map, LabelFileError, DEFAULT_CONNLABEL_CONF};
pub use matching::ChangeSummary;
pub use nix::errno::Errno;
pub use ops::{Acks, BulkSummary, DumpSummary};
pub use progname::Prognames;
pub use receiver::{Receiver, ReceiverBuilder, ReceiverStats, ReceiverWatch, WhenFull};
pub use socket::{Builder, Datagram, RcvBuf, SockFilter, Socket};
pub use strerror::strerror;

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The crate's own README (what crates.io shows), compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct CrateReadmeDoctests;
