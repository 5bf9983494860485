//! A compiler from an event filter description to a classic-BPF socket filter.
//!
//! An [`EventFilter`] says which conntrack events a socket wants, in the terms of
//! libnetfilter_conntrack's `nfct_filter`: a set of L4 protocols, of TCP states, of SCTP
//! states, of IPv4 and IPv6 source and destination networks, of marks and of zones. Each set
//! has its own [`Logic`]: *positive* lets an event through only if its value is in the set,
//! *negative* keeps it out if its value is in the set. An empty set filters nothing; an event
//! must pass every non-empty set. [`EventFilter::compile`] turns the description into a
//! classic-BPF program ([`BpfInsn`]s) written into a caller's slice; the socket layer attaches
//! it with `SO_ATTACH_FILTER`, and the kernel then drops unwanted events before they are
//! queued, so they can neither be read nor overrun the receive buffer.
//!
//! # What the program looks at
//!
//! Only conntrack events are filtered: messages of subsystem `NFNL_SUBSYS_CTNETLINK` with
//! type `IPCTNL_MSG_CT_NEW` or `IPCTNL_MSG_CT_DELETE` and without `NLM_F_MULTI`. Everything
//! else passes whole: expectation events, control messages (`NLMSG_ERROR`, acknowledgements,
//! `NLMSG_DONE`), statistics replies, and dump replies (`NLM_F_MULTI`, which also keeps a
//! datagram of many dump entries from being judged by its first entry alone). A single-entry
//! `CT_GET` reply looks like an update event and is filtered like one.
//!
//! Each set reads one attribute, found with the kernel's netlink ancillary loads
//! (`SKF_AD_NLATTR` for a top-level attribute, `SKF_AD_NLATTR_NEST` inside a nest, so that a
//! search never leaves its nest):
//!
//! | set | attribute | when it is absent |
//! |---|---|---|
//! | [`l4proto`](EventFilter::l4proto) | `CTA_TUPLE_ORIG` / `CTA_TUPLE_PROTO` / `CTA_PROTO_NUM` | the event passes the set |
//! | [`tcp_state`](EventFilter::tcp_state) | `CTA_PROTOINFO` / `CTA_PROTOINFO_TCP` / `CTA_PROTOINFO_TCP_STATE` | passes (not TCP, or an update without protocol state) |
//! | [`sctp_state`](EventFilter::sctp_state) | `CTA_PROTOINFO` / `CTA_PROTOINFO_SCTP` / `CTA_PROTOINFO_SCTP_STATE` | passes |
//! | [`ipv4_src`](EventFilter::ipv4_src), [`ipv4_dst`](EventFilter::ipv4_dst) | `CTA_TUPLE_ORIG` / `CTA_TUPLE_IP` / `CTA_IP_V4_SRC`, `_DST` | passes (an IPv6 entry) |
//! | [`ipv6_src`](EventFilter::ipv6_src), [`ipv6_dst`](EventFilter::ipv6_dst) | `CTA_TUPLE_ORIG` / `CTA_TUPLE_IP` / `CTA_IP_V6_SRC`, `_DST` | passes (an IPv4 entry) |
//! | [`mark`](EventFilter::mark) | `CTA_MARK` | the mark is 0 (the kernel leaves out a zero mark) |
//! | [`zone`](EventFilter::zone) | `CTA_ZONE` | the zone is 0 (the kernel leaves out zone 0) |
//!
//! So a positive IPv4 set does not keep IPv6 events out: add an IPv6 set (a negative `::/0`
//! drops every IPv6 event) for that.
//!
//! # Byte order
//!
//! Classic-BPF loads read the packet big-endian. ctnetlink payloads are big-endian, so
//! addresses, marks, zones, protocol numbers and states are compared as they are. The netlink
//! header is in the host's order: the program compares `nlmsg_type` and `nlmsg_flags` with
//! constants converted for the target the codec is compiled for (`cfg(target_endian)`), so a
//! program is correct on the machine that compiled it; do not ship one to a machine of the
//! other byte order.
//!
//! # Length
//!
//! The kernel refuses programs over [`MAX_INSNS`] (4096) instructions; a filter that would
//! compile longer is an error ([`Error::TooLong`](crate::Error::TooLong)), never a truncated program. Conditional
//! jumps have 8-bit offsets: the compiler cuts long comparison lists into chunks of at most
//! 255 instructions, each ending in a stub whose unconditional jump (32-bit offset) reaches
//! the far target, so sets of any size compile correctly. Rough costs: 1 instruction per
//! protocol, state or zone; 1 per IPv4 network or mark, plus 2 per distinct mask; up to 12
//! per IPv6 network; about 15 per non-empty set.
//!
//! No function of this module panics.
//!
//! ```
//! use core::net::Ipv4Addr;
//! use conntrack_codec::ct::{l4proto, TcpState};
//! use conntrack_codec::filter::bpf::{code, BpfInsn, EventFilter, Ipv4Match, Logic};
//! use conntrack_codec::filter::bpf::{ACCEPT, MAX_INSNS};
//!
//! // TCP events in state ESTABLISHED, except those from 127.0.0.0/8.
//! let mut filter = EventFilter::new();
//! filter.l4proto.insert(l4proto::TCP);
//! filter.tcp_state.insert(TcpState::Established);
//! filter.ipv4_src.logic = Logic::Negative;
//! filter.ipv4_src.push(Ipv4Match::prefix(Ipv4Addr::new(127, 0, 0, 0), 8)?)?;
//!
//! let mut program = [BpfInsn::default(); MAX_INSNS];
//! let len = filter.compile(&mut program)?;
//! assert_eq!(len, filter.program_len()?);
//! // Ready for SO_ATTACH_FILTER: it ends with "accept the whole message".
//! assert_eq!(program[len - 1], BpfInsn::stmt(code::RET | code::K, ACCEPT));
//! # Ok::<(), conntrack_codec::Error>(())
//! ```

mod asm;
mod codegen;
mod sets;

pub use sets::{ByteSet, EventFilter, Ipv4Match, Ipv6Match, Logic, MarkMatch, MatchSet};

/// The most instructions the kernel accepts in a classic-BPF program (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// The return value that keeps the whole message.
pub const ACCEPT: u32 = u32::MAX;

/// The return value that drops the message.
pub const DROP: u32 = 0;

/// Classic-BPF instruction codes (`linux/bpf_common.h`, `linux/filter.h`): or them together
/// as in C (`LD | W | ABS`).
pub mod code {
    /// Class: load into A.
    pub const LD: u16 = 0x00;
    /// Class: load into X.
    pub const LDX: u16 = 0x01;
    /// Class: store A into scratch memory.
    pub const ST: u16 = 0x02;
    /// Class: store X into scratch memory.
    pub const STX: u16 = 0x03;
    /// Class: arithmetic on A.
    pub const ALU: u16 = 0x04;
    /// Class: jumps.
    pub const JMP: u16 = 0x05;
    /// Class: return.
    pub const RET: u16 = 0x06;
    /// Class: register transfers.
    pub const MISC: u16 = 0x07;

    /// Size: 32-bit word.
    pub const W: u16 = 0x00;
    /// Size: 16-bit half word.
    pub const H: u16 = 0x08;
    /// Size: byte.
    pub const B: u16 = 0x10;

    /// Mode: the constant `k`.
    pub const IMM: u16 = 0x00;
    /// Mode: packet at offset `k` (or an ancillary load, `k >= SKF_AD_OFF`).
    pub const ABS: u16 = 0x20;
    /// Mode: packet at offset `X + k`.
    pub const IND: u16 = 0x40;
    /// Mode: scratch memory cell `k`.
    pub const MEM: u16 = 0x60;

    /// ALU operation: A &= operand.
    pub const AND: u16 = 0x50;

    /// Jump: always, by `k`.
    pub const JA: u16 = 0x00;
    /// Jump: if A == operand.
    pub const JEQ: u16 = 0x10;
    /// Jump: if A > operand.
    pub const JGT: u16 = 0x20;
    /// Jump: if A >= operand.
    pub const JGE: u16 = 0x30;
    /// Jump: if A & operand != 0.
    pub const JSET: u16 = 0x40;

    /// Operand: the constant `k`.
    pub const K: u16 = 0x00;
    /// Operand: X.
    pub const X: u16 = 0x08;
    /// Return operand: A.
    pub const A: u16 = 0x10;

    /// MISC: X = A.
    pub const TAX: u16 = 0x00;
    /// MISC: A = X.
    pub const TXA: u16 = 0x80;

    /// Scratch memory cells (`BPF_MEMWORDS`).
    pub const MEMWORDS: u32 = 16;

    /// Base of the ancillary loads (`SKF_AD_OFF`, -0x1000 as an unsigned `k`).
    pub const SKF_AD_OFF: u32 = 0u32.wrapping_sub(0x1000);
    /// `k` of the load that finds a netlink attribute (`SKF_AD_OFF + SKF_AD_NLATTR`): A =
    /// offset of the first attribute of type X in the attributes that start at offset A and
    /// run to the end of the packet, or 0.
    pub const AD_NLATTR: u32 = SKF_AD_OFF.wrapping_add(12);
    /// `k` of the load that finds a nested netlink attribute (`SKF_AD_OFF +
    /// SKF_AD_NLATTR_NEST`): A = offset of the first attribute of type X inside the nest
    /// whose header is at offset A, or 0.
    pub const AD_NLATTR_NEST: u32 = SKF_AD_OFF.wrapping_add(16);
}

/// One classic-BPF instruction, field for field `struct sock_filter`.
///
/// This is plain data, not a `#[repr(C)]` image: the socket layer converts each one to
/// `libc::sock_filter` before `SO_ATTACH_FILTER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BpfInsn {
    /// The instruction code (see [`code`]).
    pub code: u16,
    /// Conditional jumps: instructions to skip when the condition holds.
    pub jt: u8,
    /// Conditional jumps: instructions to skip when it does not.
    pub jf: u8,
    /// The constant operand.
    pub k: u32,
}

impl BpfInsn {
    /// A non-jump instruction (`BPF_STMT`).
    #[inline]
    pub const fn stmt(code: u16, k: u32) -> Self {
        BpfInsn {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }

    /// A jump instruction (`BPF_JUMP`).
    #[inline]
    pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Self {
        BpfInsn { code, jt, jf, k }
    }
}
