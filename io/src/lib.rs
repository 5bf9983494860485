//! `conntrack-io`: the netlink socket layer for Linux conntrack.
//!
//! This crate owns the `NETLINK_NETFILTER` socket and the system calls; every byte it sends
//! is built and every byte it receives is parsed by [`conntrack_codec`].
#![deny(missing_docs)]

mod socket;
mod sys;

pub use socket::{Datagram, Socket};
