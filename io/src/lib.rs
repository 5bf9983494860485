//! `conntrack-io`: the netlink socket layer for Linux conntrack.
//!
//! This crate owns the `NETLINK_NETFILTER` socket and the system calls; every byte it sends
//! is built, and every byte it receives is parsed and classified, by [`conntrack_codec`].
//!
//! A [`Socket`] is opened with an automatic port id, in the caller's network namespace or
//! in another one ([`Socket::open_in_netns`]), with a receive buffer and a send buffer
//! allocated once ([`Builder`]). On it:
//!
//! - [`Socket::execute`] sends one request and waits for its acknowledgement;
//! - [`Socket::request`] sends one request answered by one data message (a GET);
//! - [`Socket::dump`] streams a dump to a callback, one message at a time, parsed in place;
//! - [`Socket::bulk`] sends many requests per datagram and matches their acknowledgements
//!   back by sequence number, with a window that keeps the socket's queue from overflowing.
//!
//! Each operation takes a closure that writes its request with a
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
//! # Example
//!
//! List the conntrack table (needs `CAP_NET_ADMIN`):
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
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod conntrack;
mod error;
mod events;
mod labels;
pub mod net;
mod ops;
mod socket;
mod sys;

pub use error::{Error, KernelError, Result};
pub use events::{
    compile_filter, sock_filter, CtEvent, Event, EventStats, Events, ExpEvent, Groups, LossCause,
    Lost,
};
pub use labels::{load_label_map, LabelFileError, DEFAULT_CONNLABEL_CONF};
pub use nix::errno::Errno;
pub use ops::{Acks, BulkSummary, DumpSummary};
pub use socket::{Builder, Datagram, SockFilter, Socket};

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
