//! `conntrack-codec`: parse and build Linux ctnetlink (conntrack) messages without allocating.
//!
//! The crate is `#![no_std]`, uses no `alloc` and no `unsafe`. It reads received bytes through
//! zero-copy views and writes requests into caller-provided buffers through a
//! [`Writer`](nl::Writer). No function panics on any input: malformed bytes give an
//! [`Error`].
//!
//! Layers:
//! - [`nl`]: netlink framing — message headers, attributes, control messages, the writer;
//! - [`nfnl`]: nfnetlink — the `nfgenmsg` header, subsystems, message types, groups.
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
