//! `conntrack-sync`: state synchronization between two firewalls with conntrackd's protocol
//! (FTFW over UDP), so that one side can be this crate and the other Debian's `conntrackd`
//! 1.4.7, or both this crate.
//!
//! - [`Engine`] is the sans-IO core: the internal cache (fed by ctnetlink events and dumps),
//!   the external cache (fed by the peer), and FTFW reliability — sequence tracking, ACK
//!   windows, NACKs for gaps, the resend queue, ALIVE keepalives, the HELLO handshake. It is
//!   driven by [`Engine::on_datagram`], [`Engine::on_tick`] and the cache events, and hands
//!   out datagrams through [`Engine::poll_transmit`]. It never touches a socket or a clock.
//! - [`Node`] is the IO shell: a UDP socket, a conntrack event socket, a request socket, and
//!   the loop that drives the engine; it commits the external cache to the kernel in bulk.
//!
//! The wire format is `conntrack_codec::sync`.
//!
//! ```no_run
//! use conntrack_sync::{Node, NodeConfig};
//!
//! let cfg = NodeConfig::new("10.0.0.1:3780".parse()?, "10.0.0.2:3780".parse()?);
//! let mut node = Node::start(cfg)?; // dumps the table, subscribes to events
//! for _ in 0..10 {
//!     node.run_once(100)?; // events -> peer, peer -> external cache
//! }
//! let (committed, failed) = node.commit()?; // on failover: the peer's entries into the kernel
//! println!("{committed} committed, {failed} failed");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Reliability beyond conntrackd's
//! conntrackd's FTFW resends only what the peer NACKs; it takes a message that says HELLO
//! as in sequence whatever was lost before it (no NACK, and the window it closes is
//! acknowledged whole), and it empties its resend queue whenever a HELLO arrives. With
//! heavy loss a conntrackd pair ends up missing entries for good (the issue measured 1,873
//! of 1,999 after 30 s with 30% loss). This engine speaks the same messages but:
//! 1. sends no data before its HELLO is answered (only HELLOs, as ALIVEs, five times a
//!    second while something waits), so that nothing it sends is acknowledged unseen, and
//!    answers a peer's HELLO at once;
//! 2. sends again any data message neither acknowledged nor NACKed within
//!    [`Config::resend_ms`] (a lost NACK, a lost end of a burst);
//! 3. asks the peer for its whole table (RESYNC) when it missed messages the peer can no
//!    longer send again: a gap in the peer's numbering before our HELLO was answered or in
//!    the second after (the peer forgot its resend queue on our HELLO), or a first message
//!    heard that was not the peer's first (counted in [`Stats::tx_resync_recover`]);
//! 4. on a HELLO out of sequence (the peer started again) sends again everything not
//!    acknowledged instead of forgetting it.
//!
//! Duplicates are harmless: an entry message carries the whole entry. `sync/src/
//! tests_conntrackd.rs` pairs the engine with a model of conntrackd's FTFW on a lossy link;
//! the program's interop test does the same with the real one.
//!
//! # Memory
//! A cache entry is the encoded `NTA_*` attributes of its message (60–200 bytes for usual
//! entries) plus a fixed-size key and bookkeeping; queues hold slot numbers. Updates reuse
//! the entry's buffer; only a new entry allocates.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cache;
mod channel;
mod engine;
pub mod filter;
mod node;
pub mod stats;

pub use channel::{ChannelConfig, LinkStats, Transport};
pub use engine::{
    CacheId, CacheStats, Config, Engine, ExpectSync, ExtEntry, Inject, IntEntry, Mode, Origin,
    QueueStats, RsEntry, Stats,
};
pub use filter::{Filter, Network};
pub use node::{
    resync_with, LinkInfo, Node, NodeConfig, NodeStats, Notice, ResyncOutcome, RESYNC_DUMP_TRIES,
};

/// Milliseconds since an arbitrary start, for the engine's timers.
pub fn now_ms() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_conntrackd;
#[cfg(test)]
mod tests_modes;
