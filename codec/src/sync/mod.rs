//! conntrackd's network protocol: the messages two `conntrackd` (or one of them and the
//! `conntrack-sync` engine) exchange to replicate their conntrack tables.
//!
//! A UDP datagram carries one or more messages back to back. Each starts with an 8-byte
//! header ([`Header`]): one byte holding the protocol version (high nibble, 1) and the message
//! type (low nibble), one byte of flags, the message length (be16, header included) and a
//! sequence number (be32). Control messages (`type` 10) that acknowledge, reject or ask
//! ([`ACK`](flags::ACK), [`NACK`](flags::NACK), [`RESYNC`](flags::RESYNC)) add two be32
//! sequence numbers `from` and `to` (16 bytes in all); [`ALIVE`](flags::ALIVE) is the bare
//! header. Data messages (types 0–5: conntrack or expectation new, update, delete) carry
//! `NTA_*` attributes ([`nta`], [`nta_exp`]): a be16 length (4-byte header included, padding
//! excluded), a be16 type, the payload, zero padding to 4 bytes.
//!
//! Everything here was read from conntrack-tools' sources for the facts (`include/network.h`,
//! `src/build.c`, `src/parse.c`, `src/network.c`, `src/sync-ftfw.c`) and checked against the
//! datagrams of a real conntrackd 1.4.7 kept in `codec/fixtures/sync/`. Where the real
//! daemon's bytes differ from what the sources suggest, the bytes win and the item says so
//! (the ICMP identifier travels byte-swapped on little-endian senders, for instance).
//!
//! Contract, as in the rest of the codec: no function here panics on any input. Views come
//! from checked constructors; iterators yield `Result` and stop for good after an error;
//! writers return [`Error::BufferTooSmall`](crate::Error::BufferTooSmall) instead of writing
//! past the end, and zero every padding byte.
//!
//! ```
//! use conntrack_codec::sync::{Control, Messages, Body, flags};
//!
//! let mut buf = [0u8; 64];
//! let n = Control { flags: flags::ACK, seq: 7, from: 1, to: 6 }.emit(&mut buf)?;
//! let msg = Messages::new(&buf[..n]).next().unwrap()?;
//! assert_eq!(msg.body()?, Body::Ack { from: 1, to: 6 });
//! # Ok::<(), conntrack_codec::Error>(())
//! ```

mod attr;
pub(crate) mod ct;
mod exp;
mod header;

pub use attr::{nta, nta_exp, NtaAttr, NtaAttrs, NtaWriter};
pub use ct::{ct_msg_len, emit_ct, emit_ct_attrs, SyncCt};
pub use exp::{emit_exp, emit_exp_attrs, SyncExp};
pub use header::{Body, Control, DataKind, Header, Message, Messages};

/// The protocol version conntrackd 1.4.7 speaks (`CONNTRACKD_PROTOCOL_VERSION`).
pub const VERSION: u8 = 1;

/// The UDP port conntrackd's example configurations use.
pub const DEFAULT_PORT: u16 = 3780;

/// Message types (the low nibble of the first byte).
pub mod msg_type {
    /// A new conntrack entry.
    pub const CT_NEW: u8 = 0;
    /// A changed conntrack entry.
    pub const CT_UPD: u8 = 1;
    /// A deleted conntrack entry.
    pub const CT_DEL: u8 = 2;
    /// A new expectation.
    pub const EXP_NEW: u8 = 3;
    /// A changed expectation.
    pub const EXP_UPD: u8 = 4;
    /// A deleted expectation.
    pub const EXP_DEL: u8 = 5;
    /// The highest data message type.
    pub const STATE_MAX: u8 = EXP_DEL;
    /// A control message (ACK, NACK, RESYNC, ALIVE).
    pub const CTL: u8 = 10;
}

/// Header flags (`NET_F_*`).
pub mod flags {
    /// Asks the peer to send its whole internal cache.
    pub const RESYNC: u8 = 1 << 1;
    /// The peer missed the messages `from..=to`: send them again.
    pub const NACK: u8 = 1 << 2;
    /// The messages `from..=to` arrived.
    pub const ACK: u8 = 1 << 3;
    /// A keepalive (the sender has nothing else to say).
    pub const ALIVE: u8 = 1 << 4;
    /// The sender (re)started: its sequence numbers begin here.
    pub const HELLO: u8 = 1 << 5;
    /// The answer to a HELLO.
    pub const HELLO_BACK: u8 = 1 << 6;
}

/// The bare header's length (`NETHDR_SIZ`).
pub const HEADER_LEN: usize = 8;
/// The length of ACK, NACK and RESYNC messages (`NETHDR_ACK_SIZ`).
pub const ACK_LEN: usize = 16;

/// Whether sequence number `a` comes before `b`, modulo 2^32 (as TCP compares them).
#[inline]
pub const fn seq_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// Whether sequence number `a` comes after `b`, modulo 2^32.
#[inline]
pub const fn seq_after(a: u32, b: u32) -> bool {
    seq_before(b, a)
}

/// Whether `from <= seq <= to`, modulo 2^32 (`from` is where the range starts).
#[inline]
pub const fn seq_between(seq: u32, from: u32, to: u32) -> bool {
    to.wrapping_sub(from) >= seq.wrapping_sub(from)
}

#[cfg(test)]
mod fixture_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_comparisons_wrap() {
        assert!(seq_before(1, 2));
        assert!(seq_before(u32::MAX, 0));
        assert!(seq_after(0, u32::MAX));
        assert!(!seq_before(5, 5));
        assert!(seq_between(u32::MAX, u32::MAX - 1, 1));
        assert!(seq_between(0, u32::MAX - 1, 1));
        assert!(!seq_between(2, u32::MAX - 1, 1));
        assert!(seq_between(7, 7, 7));
    }
}
