//! Attribute numbers of ctnetlink (`linux/netfilter/nfnetlink_conntrack.h`), one module per
//! nest. Wire types are noted per attribute: `be` is big-endian, `host` host order.

/// Top-level conntrack attributes (`CTA_*`).
pub mod cta {
    /// Nest: the original-direction tuple.
    pub const TUPLE_ORIG: u16 = 1;
    /// Nest: the reply-direction tuple.
    pub const TUPLE_REPLY: u16 = 2;
    /// be32: `IPS_*` status bits.
    pub const STATUS: u16 = 3;
    /// Nest: protocol state (TCP, DCCP, SCTP).
    pub const PROTOINFO: u16 = 4;
    /// Nest: the helper.
    pub const HELP: u16 = 5;
    /// Nest: source NAT range.
    pub const NAT_SRC: u16 = 6;
    /// be32: seconds until the entry expires.
    pub const TIMEOUT: u16 = 7;
    /// be32: the mark.
    pub const MARK: u16 = 8;
    /// Nest: original-direction counters.
    pub const COUNTERS_ORIG: u16 = 9;
    /// Nest: reply-direction counters.
    pub const COUNTERS_REPLY: u16 = 10;
    /// be32: reference count.
    pub const USE: u16 = 11;
    /// be32: the entry's id.
    pub const ID: u16 = 12;
    /// Nest: destination NAT range.
    pub const NAT_DST: u16 = 13;
    /// Nest: the master's tuple (of an expected entry).
    pub const TUPLE_MASTER: u16 = 14;
    /// Nest: original-direction sequence adjustment.
    pub const SEQ_ADJ_ORIG: u16 = 15;
    /// Nest: reply-direction sequence adjustment.
    pub const SEQ_ADJ_REPLY: u16 = 16;
    /// be32: the security mark (obsolete, still sent).
    pub const SECMARK: u16 = 17;
    /// be16: the zone.
    pub const ZONE: u16 = 18;
    /// Nest: the security context.
    pub const SECCTX: u16 = 19;
    /// Nest: start and stop timestamps.
    pub const TIMESTAMP: u16 = 20;
    /// be32: the mask applied with `MARK` (requests).
    pub const MARK_MASK: u16 = 21;
    /// Bytes: the label bitmap (host-order 32-bit words).
    pub const LABELS: u16 = 22;
    /// Bytes: which labels `LABELS` changes (host-order 32-bit words).
    pub const LABELS_MASK: u16 = 23;
    /// Nest: synproxy state.
    pub const SYNPROXY: u16 = 24;
    /// Nest: which tuple fields a filtered dump compares.
    pub const FILTER: u16 = 25;
    /// be32: the mask applied with `STATUS` (filtered dumps and flushes).
    pub const STATUS_MASK: u16 = 26;
    /// be64: nanoseconds (wall clock) of the event (Linux 6.14 and later).
    pub const TIMESTAMP_EVENT: u16 = 27;
    /// The top-level pad attribute used to align `TIMESTAMP_EVENT` (zero length, type 3).
    pub const TIMESTAMP_EVENT_PAD: u16 = 3;
    /// The highest attribute this codec knows.
    pub const MAX: u16 = TIMESTAMP_EVENT;
}

/// Inside a tuple nest (`CTA_TUPLE_*`).
pub mod tuple {
    /// Nest: addresses.
    pub const IP: u16 = 1;
    /// Nest: L4 protocol and its fields.
    pub const PROTO: u16 = 2;
    /// be16: the zone of this direction.
    pub const ZONE: u16 = 3;
}

/// Inside `CTA_TUPLE_IP` (`CTA_IP_*`).
pub mod ip {
    /// 4 bytes: IPv4 source.
    pub const V4_SRC: u16 = 1;
    /// 4 bytes: IPv4 destination.
    pub const V4_DST: u16 = 2;
    /// 16 bytes: IPv6 source.
    pub const V6_SRC: u16 = 3;
    /// 16 bytes: IPv6 destination.
    pub const V6_DST: u16 = 4;
}

/// Inside `CTA_TUPLE_PROTO` (`CTA_PROTO_*`).
pub mod proto {
    /// u8: the L4 protocol number.
    pub const NUM: u16 = 1;
    /// be16: source port (GRE: source key).
    pub const SRC_PORT: u16 = 2;
    /// be16: destination port (GRE: destination key).
    pub const DST_PORT: u16 = 3;
    /// be16: ICMP identifier.
    pub const ICMP_ID: u16 = 4;
    /// u8: ICMP type.
    pub const ICMP_TYPE: u16 = 5;
    /// u8: ICMP code.
    pub const ICMP_CODE: u16 = 6;
    /// be16: ICMPv6 identifier.
    pub const ICMPV6_ID: u16 = 7;
    /// u8: ICMPv6 type.
    pub const ICMPV6_TYPE: u16 = 8;
    /// u8: ICMPv6 code.
    pub const ICMPV6_CODE: u16 = 9;
}

/// Inside `CTA_PROTOINFO` (`CTA_PROTOINFO_*`).
pub mod protoinfo {
    /// Nest: TCP.
    pub const TCP: u16 = 1;
    /// Nest: DCCP.
    pub const DCCP: u16 = 2;
    /// Nest: SCTP.
    pub const SCTP: u16 = 3;
}

/// Inside `CTA_PROTOINFO_TCP`.
pub mod tcp {
    /// u8: the TCP conntrack state.
    pub const STATE: u16 = 1;
    /// u8: window scale, original direction.
    pub const WSCALE_ORIGINAL: u16 = 2;
    /// u8: window scale, reply direction.
    pub const WSCALE_REPLY: u16 = 3;
    /// 2 bytes `{flags, mask}`: original direction.
    pub const FLAGS_ORIGINAL: u16 = 4;
    /// 2 bytes `{flags, mask}`: reply direction.
    pub const FLAGS_REPLY: u16 = 5;
}

/// Inside `CTA_PROTOINFO_DCCP`.
pub mod dccp {
    /// u8: the DCCP conntrack state.
    pub const STATE: u16 = 1;
    /// u8: the role (client 0, server 1).
    pub const ROLE: u16 = 2;
    /// be64: the handshake sequence number.
    pub const HANDSHAKE_SEQ: u16 = 3;
    /// Zero-length pad.
    pub const PAD: u16 = 4;
}

/// Inside `CTA_PROTOINFO_SCTP`.
pub mod sctp {
    /// u8: the SCTP conntrack state.
    pub const STATE: u16 = 1;
    /// be32: verification tag, original direction.
    pub const VTAG_ORIGINAL: u16 = 2;
    /// be32: verification tag, reply direction.
    pub const VTAG_REPLY: u16 = 3;
}

/// Inside `CTA_COUNTERS_ORIG`/`_REPLY`.
pub mod counters {
    /// be64: packets.
    pub const PACKETS: u16 = 1;
    /// be64: bytes.
    pub const BYTES: u16 = 2;
    /// be32: packets (old kernels).
    pub const PACKETS32: u16 = 3;
    /// be32: bytes (old kernels).
    pub const BYTES32: u16 = 4;
    /// Zero-length pad.
    pub const PAD: u16 = 5;
}

/// Inside `CTA_TIMESTAMP`.
pub mod timestamp {
    /// be64: nanoseconds since the epoch when the entry was confirmed.
    pub const START: u16 = 1;
    /// be64: nanoseconds since the epoch when the entry died.
    pub const STOP: u16 = 2;
    /// Zero-length pad.
    pub const PAD: u16 = 3;
}

/// Inside `CTA_NAT_SRC`/`_DST` (`CTA_NAT_*`).
pub mod nat {
    /// 4 bytes: lowest IPv4 address.
    pub const V4_MINIP: u16 = 1;
    /// 4 bytes: highest IPv4 address.
    pub const V4_MAXIP: u16 = 2;
    /// Nest: the port range.
    pub const PROTO: u16 = 3;
    /// 16 bytes: lowest IPv6 address.
    pub const V6_MINIP: u16 = 4;
    /// 16 bytes: highest IPv6 address.
    pub const V6_MAXIP: u16 = 5;
}

/// Inside `CTA_NAT_PROTO` (`CTA_PROTONAT_*`).
pub mod protonat {
    /// be16: lowest port.
    pub const PORT_MIN: u16 = 1;
    /// be16: highest port.
    pub const PORT_MAX: u16 = 2;
}

/// Inside `CTA_SEQ_ADJ_*` (`CTA_SEQADJ_*`).
pub mod seqadj {
    /// be32: the sequence number where the correction starts.
    pub const CORRECTION_POS: u16 = 1;
    /// be32: offset before that position.
    pub const OFFSET_BEFORE: u16 = 2;
    /// be32: offset after it.
    pub const OFFSET_AFTER: u16 = 3;
}

/// Inside `CTA_SYNPROXY`.
pub mod synproxy {
    /// be32: initial sequence number.
    pub const ISN: u16 = 1;
    /// be32: initial timestamp.
    pub const ITS: u16 = 2;
    /// be32: timestamp offset.
    pub const TSOFF: u16 = 3;
}

/// Inside `CTA_HELP`.
pub mod help {
    /// String: the helper's name.
    pub const NAME: u16 = 1;
    /// Bytes: helper-private data (userspace helpers).
    pub const INFO: u16 = 2;
}

/// Inside `CTA_SECCTX`.
pub mod secctx {
    /// String: the security context.
    pub const NAME: u16 = 1;
}

/// Inside `CTA_FILTER`.
pub mod filter {
    /// host u32: `CTA_FILTER_F_*` flags for the original tuple.
    pub const ORIG_FLAGS: u16 = 1;
    /// host u32: `CTA_FILTER_F_*` flags for the reply tuple.
    pub const REPLY_FLAGS: u16 = 2;
}

/// Per-CPU statistics attributes (`CTA_STATS_*`), all be32.
pub mod stats {
    /// Searched (no longer used).
    pub const SEARCHED: u16 = 1;
    /// Found.
    pub const FOUND: u16 = 2;
    /// New (no longer used).
    pub const NEW: u16 = 3;
    /// Invalid.
    pub const INVALID: u16 = 4;
    /// Ignore (no longer used).
    pub const IGNORE: u16 = 5;
    /// Delete (no longer used).
    pub const DELETE: u16 = 6;
    /// Delete list (no longer used).
    pub const DELETE_LIST: u16 = 7;
    /// Insert.
    pub const INSERT: u16 = 8;
    /// Insert failed.
    pub const INSERT_FAILED: u16 = 9;
    /// Drop.
    pub const DROP: u16 = 10;
    /// Early drop.
    pub const EARLY_DROP: u16 = 11;
    /// Error.
    pub const ERROR: u16 = 12;
    /// Search restart.
    pub const SEARCH_RESTART: u16 = 13;
    /// Clash resolve.
    pub const CLASH_RESOLVE: u16 = 14;
    /// Chain too long.
    pub const CHAIN_TOOLONG: u16 = 15;
}

/// Global statistics attributes (`CTA_STATS_GLOBAL_*`), be32.
pub mod stats_global {
    /// Entries in the table.
    pub const ENTRIES: u16 = 1;
    /// The table's maximum (`nf_conntrack_max`).
    pub const MAX_ENTRIES: u16 = 2;
}

/// Expectation per-CPU statistics attributes (`CTA_STATS_EXP_*`), be32.
pub mod stats_exp {
    /// New.
    pub const NEW: u16 = 1;
    /// Create.
    pub const CREATE: u16 = 2;
    /// Delete.
    pub const DELETE: u16 = 3;
}

/// Expectation attributes (`CTA_EXPECT_*`).
pub mod expect {
    /// Nest: the master's tuple.
    pub const MASTER: u16 = 1;
    /// Nest: the expected tuple.
    pub const TUPLE: u16 = 2;
    /// Nest: the mask of the expected tuple.
    pub const MASK: u16 = 3;
    /// be32: seconds until it expires.
    pub const TIMEOUT: u16 = 4;
    /// be32: its id.
    pub const ID: u16 = 5;
    /// String: the helper's name.
    pub const HELP_NAME: u16 = 6;
    /// be16: the zone.
    pub const ZONE: u16 = 7;
    /// be32: `NF_CT_EXPECT_*` flags.
    pub const FLAGS: u16 = 8;
    /// be32: the expectation class.
    pub const CLASS: u16 = 9;
    /// Nest: NAT of the expected connection.
    pub const NAT: u16 = 10;
    /// String: the expectation function's name.
    pub const FN: u16 = 11;
}

/// Inside `CTA_EXPECT_NAT`.
pub mod expect_nat {
    /// be32: the direction.
    pub const DIR: u16 = 1;
    /// Nest: the tuple.
    pub const TUPLE: u16 = 2;
}
