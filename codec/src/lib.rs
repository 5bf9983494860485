//! `conntrack-codec`: parse and build Linux ctnetlink (conntrack) messages without allocating.
//!
//! The crate is `#![no_std]`, uses no `alloc` and no `unsafe`. It reads received bytes through
//! zero-copy views and writes requests into caller-provided buffers through a
//! [`Writer`](nl::Writer). No function panics on any input: malformed bytes give an
//! [`Error`]. It does no I/O: `conntrack-io` owns the socket (or bring your own).
//!
//! # Common tasks
//!
//! **Read an entry** from a dump, a GET reply or an event: a zero-copy view
//! ([`ct::Conntrack`], lazy getters) or plain data ([`ct::ConntrackRepr`]).
//!
//! **Write a request**: [`ct::request`] has a builder per request (create, update, get,
//! delete, flush, dump...), each writing one whole message; [`ct::request::Key`] names one
//! entry, and is made from a dumped entry with its zone and id.
//!
//! ```
//! use core::net::Ipv4Addr;
//! use conntrack_codec::ct::request::{self, Key};
//! use conntrack_codec::ct::{Conntrack, ConntrackRepr, Tuple};
//! use conntrack_codec::nl::{Messages, Writer};
//!
//! // An entry as the kernel would send it...
//! let orig = Tuple::tcp(Ipv4Addr::new(10, 0, 0, 1).into(), Ipv4Addr::new(10, 0, 0, 2).into(), 40000, 443);
//! let entry = ConntrackRepr {
//!     orig: Some(orig),
//!     reply: Some(orig.inverted()),
//!     zone: Some(3),
//!     ..ConntrackRepr::default()
//! };
//! let mut buf = [0u8; 512];
//! let mut w = Writer::new(&mut buf);
//! request::update(&mut w, 1, &entry)?;
//! let view = Conntrack::parse(Messages::new(w.written()).next().unwrap()?)?;
//! assert_eq!(view.orig()?, Some(orig));
//!
//! // ...and the request that deletes it, zone included.
//! let mut out = [0u8; 512];
//! let mut w = Writer::new(&mut out);
//! request::delete(&mut w, 2, &Key::from_view(&view)?)?;
//! # Ok::<(), conntrack_codec::Error>(())
//! ```
//!
//! **Select entries**: [`filter::DumpFilter`] builds the filter of dumps and flushes from
//! what is set, refuses impossible combinations, splits it into what the kernel compares
//! right and what must be checked in userspace ([`filter::dump`] has the table, kernel by
//! kernel), and matches an entry exactly. [`filter::EventFilter`] compiles an event filter
//! into a classic-BPF socket filter.
//!
//! **Print like conntrack-tools**: [`fmt`] writes `conntrack -L`/`-E`/`-S` lines byte for
//! byte through `core::fmt`.
//!
//! **Expectations**: [`exp`]. **Statistics**: [`ct::StatsCpu`], [`ct::StatsGlobal`].
//! **Sequence numbers, acknowledgements, dump state** without I/O: [`session`].
//!
//! # Layers
//!
//! - [`nl`]: netlink framing — message headers, attributes, control messages, the writer;
//! - [`nfnl`]: nfnetlink — the `nfgenmsg` header, subsystems, message types, groups;
//! - [`ct`], [`exp`], [`filter`], [`fmt`], [`labels`], [`session`], [`sync`] on top.
//!
//! ```
//! use conntrack_codec::nl::{Messages, Writer};
//! use conntrack_codec::nfnl::{msg_type, ct_msg, NfGenMsg, NfMsg, Subsystem};
//!
//! let mut buf = [0u8; 64];
//! let mut w = Writer::new(&mut buf);
//! w.message(msg_type(Subsystem::Ctnetlink, ct_msg::GET), 0x301, 1, 0, |w| {
//!     NfGenMsg { family: 2, version: 0, res_id: 0 }.emit(w)
//! })?;
//! let len = w.len();
//! for msg in Messages::new(&buf[..len]) {
//!     let nf = NfMsg::new_checked(msg?)?;
//!     assert_eq!(nf.msg_num(), ct_msg::GET);
//! }
//! # Ok::<(), conntrack_codec::Error>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::unreachable
)]
// The one crate-wide exception, for unit tests only (`cfg(test)`): a test indexes fixtures,
// unwraps and panics, since a failed assertion is how it reports. The library itself stays
// under the deny list above; the only other allow of these lints is on `fmt::time::civil`, whose
// comment shows that its i128 arithmetic cannot overflow.
#![cfg_attr(
    test,
    allow(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::cast_possible_truncation,
        clippy::panic,
        clippy::unwrap_used,
        clippy::expect_used
    )
)]

pub mod ct;
#[cfg(feature = "defmt")]
mod defmt_check;
mod error;
pub mod exp;
pub mod filter;
#[cfg(test)]
mod fixture_tests;
pub mod fmt;
pub mod labels;
pub mod nfnl;
pub mod nl;
pub mod session;
pub mod sync;
#[cfg(test)]
mod testutil;

pub use error::{Error, Result};

/// The crate's README (what crates.io shows), compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct CrateReadmeDoctests;
