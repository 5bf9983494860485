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
//! compile longer is an error ([`Error::TooLong`]), never a truncated program. Conditional
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

use core::net::{Ipv4Addr, Ipv6Addr};

use heapless::Vec;

use crate::ct::attrs::{cta, ip, proto, protoinfo, sctp, tcp, tuple};
use crate::nfnl::{ct_msg, msg_type, Subsystem};
use crate::nl::flags;
use crate::{Error, Result};

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

use code::*;

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

/// How a set decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Logic {
    /// Let an event through only if its value is in the set (`NFCT_FILTER_LOGIC_POSITIVE`).
    #[default]
    Positive,
    /// Keep an event out if its value is in the set (`NFCT_FILTER_LOGIC_NEGATIVE`).
    Negative,
}

/// A set of byte values (L4 protocol numbers, TCP or SCTP states) with its logic.
///
/// It is a 256-bit map: any value fits, each at most once. An empty set filters nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ByteSet {
    /// Positive or negative.
    pub logic: Logic,
    bits: [u32; 8],
}

impl ByteSet {
    /// An empty set with `logic`.
    pub const fn new(logic: Logic) -> Self {
        ByteSet {
            logic,
            bits: [0; 8],
        }
    }

    fn slot(value: u8) -> (usize, u32) {
        (
            usize::from(value >> 5),
            1u32.wrapping_shl(u32::from(value & 31)),
        )
    }

    /// Adds `value` (a `u8`, a [`TcpState`](crate::ct::TcpState), an
    /// [`SctpState`](crate::ct::SctpState)); returns whether it was new.
    pub fn insert(&mut self, value: impl Into<u8>) -> bool {
        let (word, bit) = Self::slot(value.into());
        match self.bits.get_mut(word) {
            Some(w) => {
                let new = *w & bit == 0;
                *w |= bit;
                new
            }
            None => false,
        }
    }

    /// Removes `value`; returns whether it was there.
    pub fn remove(&mut self, value: impl Into<u8>) -> bool {
        let (word, bit) = Self::slot(value.into());
        match self.bits.get_mut(word) {
            Some(w) => {
                let was = *w & bit != 0;
                *w &= !bit;
                was
            }
            None => false,
        }
    }

    /// Whether `value` is in the set.
    pub fn contains(&self, value: impl Into<u8>) -> bool {
        let (word, bit) = Self::slot(value.into());
        self.bits.get(word).is_some_and(|w| w & bit != 0)
    }

    /// Whether the set is empty (and so filters nothing).
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }

    /// The number of values in the set.
    pub fn len(&self) -> usize {
        self.bits
            .iter()
            .map(|w| usize::try_from(w.count_ones()).unwrap_or(0))
            .fold(0, usize::saturating_add)
    }

    /// Empties the set, keeping its logic.
    pub fn clear(&mut self) {
        self.bits = [0; 8];
    }

    /// The values in the set, in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        (0..=u8::MAX).filter(move |&v| self.contains(v))
    }
}

/// A fixed-capacity set of up to `N` elements ([`Ipv4Match`], [`Ipv6Match`], [`MarkMatch`],
/// zones) with its logic. An empty set filters nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MatchSet<T, const N: usize> {
    /// Positive or negative.
    pub logic: Logic,
    /// The elements, in the order the program tests them.
    pub items: Vec<T, N>,
}

impl<T, const N: usize> MatchSet<T, N> {
    /// The most elements the set holds.
    pub const CAPACITY: usize = N;

    /// An empty set with `logic`.
    pub const fn new(logic: Logic) -> Self {
        MatchSet {
            logic,
            items: Vec::new(),
        }
    }

    /// Adds an element.
    ///
    /// # Errors
    /// [`Error::CapacityExceeded`] if the set already holds `N` elements.
    pub fn push(&mut self, item: T) -> Result<()> {
        self.items
            .push(item)
            .map_err(|_| Error::CapacityExceeded("event filter set"))
    }

    /// Whether the set is empty (and so filters nothing).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Empties the set, keeping its logic.
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

impl<T, const N: usize> Default for MatchSet<T, N> {
    fn default() -> Self {
        Self::new(Logic::Positive)
    }
}

/// An IPv4 network: an address matches if `address & mask == addr & mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Ipv4Match {
    /// The network's address.
    #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
    pub addr: Ipv4Addr,
    /// The mask; need not be contiguous.
    #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
    pub mask: Ipv4Addr,
}

impl Ipv4Match {
    /// One address (mask `255.255.255.255`).
    pub const fn host(addr: Ipv4Addr) -> Self {
        Ipv4Match {
            addr,
            mask: Ipv4Addr::BROADCAST,
        }
    }

    /// The network `addr/len`.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if `len > 32`.
    pub fn prefix(addr: Ipv4Addr, len: u8) -> Result<Self> {
        if len > 32 {
            return Err(Error::InvalidValue("IPv4 prefix length (0..=32)"));
        }
        let mask = u32::MAX
            .checked_shl(32u32.saturating_sub(u32::from(len)))
            .unwrap_or(0);
        Ok(Ipv4Match {
            addr,
            mask: Ipv4Addr::from(mask),
        })
    }

    /// Whether `address` is in the network.
    pub fn matches(&self, address: Ipv4Addr) -> bool {
        let mask = u32::from(self.mask);
        u32::from(address) & mask == u32::from(self.addr) & mask
    }
}

/// An IPv6 network: an address matches if `address & mask == addr & mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Ipv6Match {
    /// The network's address.
    #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
    pub addr: Ipv6Addr,
    /// The mask; need not be contiguous.
    #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
    pub mask: Ipv6Addr,
}

impl Ipv6Match {
    /// One address (mask of all ones).
    pub const fn host(addr: Ipv6Addr) -> Self {
        Ipv6Match {
            addr,
            mask: Ipv6Addr::from_bits(u128::MAX),
        }
    }

    /// The network `addr/len`.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if `len > 128`.
    pub fn prefix(addr: Ipv6Addr, len: u8) -> Result<Self> {
        if len > 128 {
            return Err(Error::InvalidValue("IPv6 prefix length (0..=128)"));
        }
        let mask = u128::MAX
            .checked_shl(128u32.saturating_sub(u32::from(len)))
            .unwrap_or(0);
        Ok(Ipv6Match {
            addr,
            mask: Ipv6Addr::from(mask),
        })
    }

    /// Whether `address` is in the network.
    pub fn matches(&self, address: Ipv6Addr) -> bool {
        let mask = u128::from(self.mask);
        u128::from(address) & mask == u128::from(self.addr) & mask
    }
}

/// A mark value under a mask: a mark matches if `mark & mask == value & mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MarkMatch {
    /// The value.
    pub value: u32,
    /// The bits of the mark compared.
    pub mask: u32,
}

impl MarkMatch {
    /// Exactly `value`.
    pub const fn exact(value: u32) -> Self {
        MarkMatch {
            value,
            mask: u32::MAX,
        }
    }

    /// `value` under `mask`.
    pub const fn masked(value: u32, mask: u32) -> Self {
        MarkMatch { value, mask }
    }

    /// Whether `mark` matches.
    pub const fn matches(&self, mark: u32) -> bool {
        mark & self.mask == self.value & self.mask
    }
}

/// Which conntrack events a socket receives: a description [`EventFilter::compile`] turns
/// into a classic-BPF program.
///
/// Every field is a set with its own [`Logic`]; an event passes when it passes every
/// non-empty set (see the [module documentation](self) for the attribute each set reads and
/// what happens when it is absent). Messages other than conntrack events always pass.
///
/// The address, mark and zone sets hold up to `N` elements each (64 unless chosen:
/// `EventFilter::<1024>::default()`); the protocol and state sets hold any byte value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EventFilter<const N: usize = 64> {
    /// L4 protocol numbers of the original tuple (see [`crate::ct::l4proto`]).
    pub l4proto: ByteSet,
    /// TCP states ([`TcpState`](crate::ct::TcpState)), tested on entries that carry one.
    pub tcp_state: ByteSet,
    /// SCTP states ([`SctpState`](crate::ct::SctpState)), tested on entries that carry one.
    pub sctp_state: ByteSet,
    /// IPv4 networks for the source of the original tuple.
    pub ipv4_src: MatchSet<Ipv4Match, N>,
    /// IPv4 networks for the destination of the original tuple.
    pub ipv4_dst: MatchSet<Ipv4Match, N>,
    /// IPv6 networks for the source of the original tuple.
    pub ipv6_src: MatchSet<Ipv6Match, N>,
    /// IPv6 networks for the destination of the original tuple.
    pub ipv6_dst: MatchSet<Ipv6Match, N>,
    /// Marks; an entry without `CTA_MARK` has mark 0.
    pub mark: MatchSet<MarkMatch, N>,
    /// Zones (`CTA_ZONE`); an entry without it is in zone 0.
    pub zone: MatchSet<u16, N>,
}

impl EventFilter {
    /// A filter that lets every event through, with the default capacity of 64 elements per
    /// set (use [`EventFilter::empty`] or `default()` for another capacity).
    pub const fn new() -> Self {
        Self::empty()
    }
}

impl<const N: usize> Default for EventFilter<N> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<const N: usize> EventFilter<N> {
    /// A filter that lets every event through.
    pub const fn empty() -> Self {
        EventFilter {
            l4proto: ByteSet::new(Logic::Positive),
            tcp_state: ByteSet::new(Logic::Positive),
            sctp_state: ByteSet::new(Logic::Positive),
            ipv4_src: MatchSet::new(Logic::Positive),
            ipv4_dst: MatchSet::new(Logic::Positive),
            ipv6_src: MatchSet::new(Logic::Positive),
            ipv6_dst: MatchSet::new(Logic::Positive),
            mark: MatchSet::new(Logic::Positive),
            zone: MatchSet::new(Logic::Positive),
        }
    }

    /// Whether every set is empty: the filter lets everything through.
    pub fn is_empty(&self) -> bool {
        self.l4proto.is_empty()
            && self.tcp_state.is_empty()
            && self.sctp_state.is_empty()
            && self.ipv4_src.is_empty()
            && self.ipv4_dst.is_empty()
            && self.ipv6_src.is_empty()
            && self.ipv6_dst.is_empty()
            && self.mark.is_empty()
            && self.zone.is_empty()
    }

    /// The number of instructions [`EventFilter::compile`] writes.
    ///
    /// # Errors
    /// [`Error::TooLong`] if the program would exceed [`MAX_INSNS`].
    pub fn program_len(&self) -> Result<usize> {
        let mut asm = Asm::new(&mut [], false);
        self.emit(&mut asm)?;
        Ok(asm.len)
    }

    /// Compiles the filter into `out` and returns the number of instructions written, ready
    /// for `SO_ATTACH_FILTER`. An empty filter compiles to one instruction that accepts
    /// everything.
    ///
    /// # Errors
    /// [`Error::TooLong`] if the program would exceed [`MAX_INSNS`] instructions;
    /// [`Error::BufferTooSmall`] if it does not fit `out` ([`EventFilter::program_len`]
    /// tells the size; [`MAX_INSNS`] always suffices). On error `out` is left unchanged.
    pub fn compile(&self, out: &mut [BpfInsn]) -> Result<usize> {
        if self.program_len()? > out.len() {
            return Err(Error::BufferTooSmall);
        }
        let mut asm = Asm::new(out, true);
        self.emit(&mut asm)?;
        Ok(asm.len)
    }

    fn emit(&self, asm: &mut Asm<'_>) -> Result<()> {
        if self.is_empty() {
            return asm.stmt(RET | K, ACCEPT);
        }
        prologue(asm)?;
        if !self.l4proto.is_empty() {
            byte_block(asm, &self.l4proto, PATH_L4PROTO)?;
        }
        ipv4_block(asm, &self.ipv4_src, ip::V4_SRC)?;
        ipv4_block(asm, &self.ipv4_dst, ip::V4_DST)?;
        ipv6_block(asm, &self.ipv6_src, ip::V6_SRC)?;
        ipv6_block(asm, &self.ipv6_dst, ip::V6_DST)?;
        if !self.tcp_state.is_empty() {
            byte_block(asm, &self.tcp_state, PATH_TCP_STATE)?;
        }
        if !self.sctp_state.is_empty() {
            byte_block(asm, &self.sctp_state, PATH_SCTP_STATE)?;
        }
        mark_block(asm, &self.mark)?;
        zone_block(asm, &self.zone)?;
        asm.stmt(RET | K, ACCEPT)?;
        asm.finish()
    }
}

/// Offsets in the message.
mod field {
    /// `nlmsg_type` (host order).
    pub const NLMSG_TYPE: u32 = 4;
    /// `nlmsg_flags` (host order).
    pub const NLMSG_FLAGS: u32 = 6;
    /// The first ctnetlink attribute: after the 16-byte `nlmsghdr` and the 4-byte `nfgenmsg`.
    pub const ATTRS: u32 = 20;
    /// The payload of an attribute, from its header (`NLA_HDRLEN`).
    pub const NLA_PAYLOAD: u32 = 4;
}

const PATH_L4PROTO: &[u16] = &[cta::TUPLE_ORIG, tuple::PROTO, proto::NUM];
const PATH_TCP_STATE: &[u16] = &[cta::PROTOINFO, protoinfo::TCP, tcp::STATE];
const PATH_SCTP_STATE: &[u16] = &[cta::PROTOINFO, protoinfo::SCTP, sctp::STATE];

/// What a 16-bit packet load returns for a host-order `value`: loads are big-endian, so on
/// a little-endian target the two bytes come back swapped.
const fn host_u16(value: u16) -> u32 {
    let bytes = if cfg!(target_endian = "big") {
        value.to_be_bytes()
    } else {
        value.to_le_bytes()
    };
    u16::from_be_bytes(bytes) as u32
}

/// The longest run of instructions in which every jump reaches the end of the run.
const CHUNK_MAX: usize = 255;

/// Passes everything that is not a conntrack event; falls through for events.
fn prologue(asm: &mut Asm<'_>) -> Result<()> {
    let new = msg_type(Subsystem::Ctnetlink, ct_msg::NEW);
    let delete = msg_type(Subsystem::Ctnetlink, ct_msg::DELETE);
    let pass = asm.label()?;
    let event = asm.label()?;
    asm.stmt(LD | H | ABS, field::NLMSG_FLAGS)?;
    asm.jump(
        JMP | JSET | K,
        host_u16(flags::MULTI),
        To::Label(pass),
        To::Next,
    )?;
    asm.stmt(LD | H | ABS, field::NLMSG_TYPE)?;
    asm.jump(JMP | JEQ | K, host_u16(new), To::Label(event), To::Next)?;
    asm.jump(JMP | JEQ | K, host_u16(delete), To::Label(event), To::Next)?;
    asm.bind(pass)?;
    asm.stmt(RET | K, ACCEPT)?;
    asm.bind(event)
}

/// Finds the attribute at `path` (top level, then nested), then X = its offset. If any step
/// is absent, jumps to `pass`.
fn find(asm: &mut Asm<'_>, path: &[u16], pass: Label) -> Result<()> {
    let absent = asm.label()?;
    asm.stmt(LD | IMM, field::ATTRS)?;
    let last = path.len().saturating_sub(1);
    for (i, &kind) in path.iter().enumerate() {
        asm.stmt(LDX | IMM, u32::from(kind))?;
        let search = if i == 0 { AD_NLATTR } else { AD_NLATTR_NEST };
        asm.stmt(LD | W | ABS, search)?;
        if i == last {
            asm.jump(JMP | JEQ | K, 0, To::Next, To::Skip(1))?;
        } else {
            asm.jump(JMP | JEQ | K, 0, To::Label(absent), To::Next)?;
        }
    }
    asm.bind(absent)?;
    asm.ja(pass)?;
    asm.stmt(MISC | TAX, 0)
}

/// Finds the top-level attribute `kind` and loads its payload (`size`) into A, or 0 if it is
/// absent; X = A afterwards when `keep` is set.
fn load_or_zero(asm: &mut Asm<'_>, kind: u16, size: u16, keep: bool) -> Result<()> {
    asm.stmt(LD | IMM, field::ATTRS)?;
    asm.stmt(LDX | IMM, u32::from(kind))?;
    asm.stmt(LD | W | ABS, AD_NLATTR)?;
    // Absent: skip the load with A = 0, landing on the TAX below or on the first compare.
    asm.jump(JMP | JEQ | K, 0, To::Skip(2), To::Next)?;
    asm.stmt(MISC | TAX, 0)?;
    asm.stmt(LD | size | IND, field::NLA_PAYLOAD)?;
    if keep {
        asm.stmt(MISC | TAX, 0)?;
    }
    Ok(())
}

fn byte_block(asm: &mut Asm<'_>, set: &ByteSet, path: &[u16]) -> Result<()> {
    let pass = asm.label()?;
    find(asm, path, pass)?;
    asm.stmt(LD | B | IND, field::NLA_PAYLOAD)?;
    let mut any = AnyOf::begin(asm, set.logic, pass)?;
    for value in set.iter() {
        any.jeq(asm, u32::from(value))?;
    }
    any.finish(asm)?;
    asm.bind(pass)
}

fn ipv4_block<const N: usize>(
    asm: &mut Asm<'_>,
    set: &MatchSet<Ipv4Match, N>,
    kind: u16,
) -> Result<()> {
    if set.is_empty() {
        return Ok(());
    }
    let pass = asm.label()?;
    find(asm, &[cta::TUPLE_ORIG, tuple::IP, kind], pass)?;
    asm.stmt(LD | W | IND, field::NLA_PAYLOAD)?;
    asm.stmt(MISC | TAX, 0)?;
    masked(asm, set.logic, pass, &set.items, |m| {
        (u32::from(m.mask), u32::from(m.addr))
    })?;
    asm.bind(pass)
}

fn mark_block<const N: usize>(asm: &mut Asm<'_>, set: &MatchSet<MarkMatch, N>) -> Result<()> {
    if set.is_empty() {
        return Ok(());
    }
    let pass = asm.label()?;
    load_or_zero(asm, cta::MARK, W, true)?;
    masked(asm, set.logic, pass, &set.items, |m| (m.mask, m.value))?;
    asm.bind(pass)
}

fn zone_block<const N: usize>(asm: &mut Asm<'_>, set: &MatchSet<u16, N>) -> Result<()> {
    if set.is_empty() {
        return Ok(());
    }
    let pass = asm.label()?;
    load_or_zero(asm, cta::ZONE, H, false)?;
    let mut any = AnyOf::begin(asm, set.logic, pass)?;
    for &zone in &set.items {
        any.jeq(asm, u32::from(zone))?;
    }
    any.finish(asm)?;
    asm.bind(pass)
}

/// With the value in A and in X: compares `value & mask` for every element, one group per
/// distinct mask (`TXA; AND mask; JEQ...`), so the value is loaded once.
fn masked<T>(
    asm: &mut Asm<'_>,
    logic: Logic,
    pass: Label,
    items: &[T],
    mask_value: impl Fn(&T) -> (u32, u32),
) -> Result<()> {
    let mut any = AnyOf::begin(asm, logic, pass)?;
    let mut first = true;
    for (i, item) in items.iter().enumerate() {
        let (mask, _) = mask_value(item);
        let seen = items
            .get(..i)
            .unwrap_or(&[])
            .iter()
            .any(|p| mask_value(p).0 == mask);
        if seen {
            continue;
        }
        let prefix = usize::from(!first).saturating_add(usize::from(mask != u32::MAX));
        any.reserve(asm, prefix.saturating_add(1))?;
        if !first {
            asm.stmt(MISC | TXA, 0)?;
        }
        if mask != u32::MAX {
            asm.stmt(ALU | AND | K, mask)?;
        }
        first = false;
        for other in items.get(i..).unwrap_or(&[]) {
            let (m, value) = mask_value(other);
            if m == mask {
                any.jeq(asm, value & mask)?;
            }
        }
    }
    any.finish(asm)
}

/// The four 32-bit words of an IPv6 address, as big-endian loads read them.
fn words(addr: Ipv6Addr) -> [u32; 4] {
    let b = addr.octets();
    let w = |i: usize| {
        let mut word = [0u8; 4];
        if let Some(src) = b.get(i..i.saturating_add(4)) {
            word.copy_from_slice(src);
        }
        u32::from_be_bytes(word)
    };
    [w(0), w(4), w(8), w(12)]
}

fn ipv6_block<const N: usize>(
    asm: &mut Asm<'_>,
    set: &MatchSet<Ipv6Match, N>,
    kind: u16,
) -> Result<()> {
    if set.is_empty() {
        return Ok(());
    }
    let pass = asm.label()?;
    find(asm, &[cta::TUPLE_ORIG, tuple::IP, kind], pass)?;
    // Scratch cell k = word k of the address, for the words some mask looks at.
    let mut used = [false; 4];
    for m in &set.items {
        for (u, w) in used.iter_mut().zip(words(m.mask)) {
            *u |= w != 0;
        }
    }
    let mut offset = field::NLA_PAYLOAD;
    for (cell, &u) in (0u32..).zip(used.iter()) {
        if u {
            asm.stmt(LD | W | IND, offset)?;
            asm.stmt(ST, cell)?;
        }
        offset = offset.saturating_add(4);
    }
    let mut any = AnyOf::begin(asm, set.logic, pass)?;
    for m in &set.items {
        let mask = words(m.mask);
        let addr = words(m.addr);
        let cost = mask
            .iter()
            .filter(|&&w| w != 0)
            .map(|&w| if w == u32::MAX { 2 } else { 3 })
            .fold(0usize, usize::saturating_add);
        if cost == 0 {
            // A zero mask matches every address.
            any.always(asm)?;
            continue;
        }
        any.reserve(asm, cost)?;
        let next = asm.label()?;
        let last = mask.iter().rposition(|&w| w != 0).unwrap_or(0);
        for (cell, (&mw, &aw)) in (0u32..).zip(mask.iter().zip(addr.iter())) {
            if mw == 0 {
                continue;
            }
            asm.stmt(LD | MEM, cell)?;
            if mw != u32::MAX {
                asm.stmt(ALU | AND | K, mw)?;
            }
            if usize::try_from(cell).ok() == Some(last) {
                asm.jump(JMP | JEQ | K, aw & mw, To::Label(any.hit), To::Next)?;
            } else {
                asm.jump(JMP | JEQ | K, aw & mw, To::Next, To::Label(next))?;
            }
        }
        asm.bind(next)?;
    }
    any.finish(asm)?;
    asm.bind(pass)
}

/// "Does the value match any element?", cut into chunks short enough for 8-bit jumps.
///
/// Each compare jumps, on a match, to the `hit` stub that ends its chunk; falling through
/// every compare is a miss. A stub continues at `pass` (positive logic) or drops the message
/// (negative logic); after the last chunk a miss drops the message (positive) or continues
/// (negative).
struct AnyOf {
    logic: Logic,
    pass: Label,
    start: usize,
    hit: Label,
}

impl AnyOf {
    fn begin(asm: &mut Asm<'_>, logic: Logic, pass: Label) -> Result<Self> {
        Ok(AnyOf {
            logic,
            pass,
            start: asm.len,
            hit: asm.label()?,
        })
    }

    /// Makes sure the next `n` instructions still reach this chunk's stub, starting a new
    /// chunk if not.
    fn reserve(&mut self, asm: &mut Asm<'_>, n: usize) -> Result<()> {
        let body = asm.len.saturating_sub(self.start);
        if body.saturating_add(n) <= CHUNK_MAX {
            return Ok(());
        }
        // No match in this chunk: jump over its stub into the next one.
        asm.stmt(JMP | JA, 1)?;
        asm.bind(self.hit)?;
        match self.logic {
            Logic::Positive => asm.ja(self.pass)?,
            Logic::Negative => asm.stmt(RET | K, DROP)?,
        }
        self.start = asm.len;
        self.hit = asm.label()?;
        Ok(())
    }

    /// Compares A with `k`.
    fn jeq(&mut self, asm: &mut Asm<'_>, k: u32) -> Result<()> {
        self.reserve(asm, 1)?;
        asm.jump(JMP | JEQ | K, k, To::Label(self.hit), To::Next)
    }

    /// A match whatever the value.
    fn always(&mut self, asm: &mut Asm<'_>) -> Result<()> {
        self.reserve(asm, 1)?;
        asm.ja(self.hit)
    }

    fn finish(self, asm: &mut Asm<'_>) -> Result<()> {
        match self.logic {
            Logic::Positive => {
                asm.stmt(RET | K, DROP)?;
                asm.bind(self.hit)
            }
            Logic::Negative => {
                asm.stmt(JMP | JA, 1)?;
                asm.bind(self.hit)?;
                asm.stmt(RET | K, DROP)
            }
        }
    }
}

/// A forward jump target, bound once with [`Asm::bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Label(u16);

/// Where a conditional jump goes.
#[derive(Debug, Clone, Copy)]
enum To {
    /// The next instruction.
    Next,
    /// Skip this many instructions.
    Skip(u8),
    /// A label.
    Label(Label),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Jt,
    Jf,
    K,
}

/// A jump waiting for its label to be bound.
#[derive(Debug, Clone, Copy)]
struct Fixup {
    at: u16,
    slot: Slot,
    label: u16,
}

/// More than the jumps that can wait at once: a chunk's compares and a few block jumps.
const FIXUPS: usize = CHUNK_MAX + 32;

/// Writes instructions, or only counts them (`write == false`), resolving forward jumps.
struct Asm<'o> {
    out: &'o mut [BpfInsn],
    write: bool,
    len: usize,
    labels: u16,
    fixups: Vec<Fixup, FIXUPS>,
}

impl<'o> Asm<'o> {
    fn new(out: &'o mut [BpfInsn], write: bool) -> Self {
        Asm {
            out,
            write,
            len: 0,
            labels: 0,
            fixups: Vec::new(),
        }
    }

    fn push(&mut self, insn: BpfInsn) -> Result<u16> {
        let at = self.len;
        if at >= MAX_INSNS {
            return Err(Error::TooLong("BPF program"));
        }
        if self.write {
            *self.out.get_mut(at).ok_or(Error::BufferTooSmall)? = insn;
        }
        self.len = at.saturating_add(1);
        u16::try_from(at).map_err(|_| Error::TooLong("BPF program"))
    }

    fn stmt(&mut self, code: u16, k: u32) -> Result<()> {
        self.push(BpfInsn::stmt(code, k)).map(drop)
    }

    fn label(&mut self) -> Result<Label> {
        let l = Label(self.labels);
        self.labels = self
            .labels
            .checked_add(1)
            .ok_or(Error::TooLong("BPF program"))?;
        Ok(l)
    }

    fn refer(&mut self, at: u16, slot: Slot, label: Label) -> Result<()> {
        self.fixups
            .push(Fixup {
                at,
                slot,
                label: label.0,
            })
            .map_err(|_| Error::CapacityExceeded("BPF compiler jump list"))
    }

    fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) -> Result<()> {
        let offset = |to: To| match to {
            To::Next | To::Label(_) => 0,
            To::Skip(n) => n,
        };
        let at = self.push(BpfInsn::jump(code, k, offset(jt), offset(jf)))?;
        if let To::Label(l) = jt {
            self.refer(at, Slot::Jt, l)?;
        }
        if let To::Label(l) = jf {
            self.refer(at, Slot::Jf, l)?;
        }
        Ok(())
    }

    /// An unconditional jump (32-bit offset) to `to`.
    fn ja(&mut self, to: Label) -> Result<()> {
        let at = self.push(BpfInsn::stmt(JMP | JA, 0))?;
        self.refer(at, Slot::K, to)
    }

    /// Binds `label` to the next instruction and patches the jumps waiting for it.
    fn bind(&mut self, label: Label) -> Result<()> {
        let mut i = 0;
        while let Some(&f) = self.fixups.get(i) {
            if f.label != label.0 {
                i = i.saturating_add(1);
                continue;
            }
            self.fixups.swap_remove(i);
            let at = usize::from(f.at);
            let distance = self
                .len
                .checked_sub(at)
                .and_then(|d| d.checked_sub(1))
                .ok_or(Error::TooLong("BPF jump"))?;
            let insn = if self.write {
                self.out.get_mut(at)
            } else {
                None
            };
            match f.slot {
                Slot::Jt | Slot::Jf => {
                    let d = u8::try_from(distance).map_err(|_| Error::TooLong("BPF jump"))?;
                    if let Some(insn) = insn {
                        if f.slot == Slot::Jt {
                            insn.jt = d;
                        } else {
                            insn.jf = d;
                        }
                    }
                }
                Slot::K => {
                    let d = u32::try_from(distance).map_err(|_| Error::TooLong("BPF jump"))?;
                    if let Some(insn) = insn {
                        insn.k = d;
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks that no jump was left without a target.
    fn finish(&self) -> Result<()> {
        if self.fixups.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidValue("BPF jump without a target"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::Tuple;
    use crate::ct::{l4proto, ConntrackRepr, ProtoInfo, SctpInfo, SctpState, TcpInfo, TcpState};
    use crate::nfnl::{exp_msg, NfGenMsg};
    use crate::nl::{msgtype, Writer};
    use core::net::IpAddr;

    /// A minimal classic-BPF interpreter for the instructions the compiler emits, with the
    /// kernel's netlink ancillary loads; `None` for a fault (the kernel drops the packet).
    fn run(prog: &[BpfInsn], pkt: &[u8]) -> Option<u32> {
        let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
        let load = |off: u32, size: usize| -> Option<u32> {
            let off = usize::try_from(off).ok()?;
            let b = pkt.get(off..off.checked_add(size)?)?;
            Some(b.iter().fold(0u32, |v, &b| (v << 8) | u32::from(b)))
        };
        let find = |start: usize, end: usize, kind: u32| -> u32 {
            let mut at = start;
            while at + 4 <= end {
                let len = usize::from(u16::from_ne_bytes([pkt[at], pkt[at + 1]]));
                let ty = u16::from_ne_bytes([pkt[at + 2], pkt[at + 3]]) & 0x3fff;
                if len < 4 || len > end - at {
                    return 0;
                }
                if u32::from(ty) == kind {
                    return at as u32;
                }
                at += (len + 3) & !3;
            }
            0
        };
        let mut pc = 0;
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                c if c == LD | W | ABS && i.k == AD_NLATTR => {
                    let s = a as usize;
                    a = if pkt.len() >= 4 && s <= pkt.len() - 4 {
                        find(s, pkt.len(), x)
                    } else {
                        0
                    };
                }
                c if c == LD | W | ABS && i.k == AD_NLATTR_NEST => {
                    let s = a as usize;
                    a = 0;
                    if pkt.len() >= 4 && s <= pkt.len() - 4 {
                        let len = usize::from(u16::from_ne_bytes([pkt[s], pkt[s + 1]]));
                        if len <= pkt.len() - s && len >= 4 {
                            a = find(s + 4, s + len, x);
                        }
                    }
                }
                c if c == LD | H | ABS => a = load(i.k, 2)?,
                c if c == LD | W | IND => a = load(x.wrapping_add(i.k), 4)?,
                c if c == LD | H | IND => a = load(x.wrapping_add(i.k), 2)?,
                c if c == LD | B | IND => a = load(x.wrapping_add(i.k), 1)?,
                c if c == LD | IMM => a = i.k,
                c if c == LDX | IMM => x = i.k,
                c if c == LD | MEM => a = mem[i.k as usize],
                c if c == ST => mem[i.k as usize] = a,
                c if c == MISC | TAX => x = a,
                c if c == MISC | TXA => a = x,
                c if c == ALU | AND | K => a &= i.k,
                c if c == JMP | JA => pc += i.k as usize,
                c if c == JMP | JEQ | K || c == JMP | JSET | K => {
                    let hit = if c == JMP | JEQ | K {
                        a == i.k
                    } else {
                        a & i.k != 0
                    };
                    pc += usize::from(if hit { i.jt } else { i.jf });
                }
                c if c == RET | K => return Some(i.k),
                c => panic!("unexpected code {c:#x}"),
            }
        }
    }

    /// The kernel's structural checks: length, forward jumps in range, ends with RET.
    fn check(prog: &[BpfInsn]) {
        assert!(!prog.is_empty() && prog.len() <= MAX_INSNS);
        for (pc, i) in prog.iter().enumerate() {
            let rest = prog.len() - pc - 1;
            if i.code == JMP | JA {
                assert!((i.k as usize) < rest, "JA out of range at {pc}");
            } else if i.code & 0x07 == JMP {
                assert!(
                    usize::from(i.jt) < rest && usize::from(i.jf) < rest,
                    "at {pc}"
                );
            }
        }
        assert_eq!(prog.last().unwrap().code & 0x07, RET);
    }

    fn compile<const N: usize>(f: &EventFilter<N>) -> heapless::Vec<BpfInsn, MAX_INSNS> {
        let mut out = [BpfInsn::default(); MAX_INSNS];
        let n = f.compile(&mut out).unwrap();
        let prog = heapless::Vec::from_slice(&out[..n]).unwrap();
        check(&prog);
        prog
    }

    fn event(entry: &ConntrackRepr, msg: u8, fl: u16) -> heapless::Vec<u8, 1024> {
        let mut buf = [0u8; 1024];
        let mut w = Writer::new(&mut buf);
        let r = entry
            .emit(&mut w, msg_type(Subsystem::Ctnetlink, msg), fl, 0)
            .unwrap();
        heapless::Vec::from_slice(&buf[..r.end]).unwrap()
    }

    fn new_event(entry: &ConntrackRepr) -> heapless::Vec<u8, 1024> {
        event(entry, ct_msg::NEW, flags::CREATE | flags::EXCL)
    }

    fn verdict(prog: &[BpfInsn], pkt: &[u8]) -> bool {
        match run(prog, pkt) {
            Some(ACCEPT) => true,
            Some(DROP) => false,
            other => panic!("program returned {other:?}"),
        }
    }

    fn passes<const N: usize>(f: &EventFilter<N>, pkt: &[u8]) -> bool {
        verdict(&compile(f), pkt)
    }

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    fn tcp_entry(src: IpAddr, dst: IpAddr) -> ConntrackRepr {
        let orig = Tuple::tcp(src, dst, 1000, 80);
        ConntrackRepr {
            family: 2,
            orig: Some(orig),
            reply: Some(orig.inverted()),
            protoinfo: Some(ProtoInfo::Tcp(TcpInfo {
                state: Some(TcpState::Established),
                ..TcpInfo::default()
            })),
            timeout: Some(100),
            ..ConntrackRepr::default()
        }
    }

    #[test]
    fn empty_filter_accepts_everything() {
        let f = EventFilter::new();
        assert!(f.is_empty());
        assert_eq!(compile(&f), [BpfInsn::stmt(RET | K, ACCEPT)]);
    }

    #[test]
    fn header_constants_follow_the_target_byte_order() {
        // A 16-bit load of bytes written in host order gives back host_u16 of the value.
        let bytes = 0x0102u16.to_ne_bytes();
        assert_eq!(
            host_u16(0x0102),
            u32::from(bytes[0]) << 8 | u32::from(bytes[1])
        );
    }

    #[test]
    fn non_events_pass_untouched() {
        let mut f = EventFilter::new();
        f.l4proto.insert(200);
        let prog = compile(&f);
        assert_eq!(prog.len(), f.program_len().unwrap());
        let e = tcp_entry(v4([10, 0, 0, 1]), v4([10, 0, 0, 2]));
        assert!(!verdict(&prog, &new_event(&e)));
        assert!(!verdict(&prog, &event(&e, ct_msg::NEW, 0)));
        assert!(!verdict(&prog, &event(&e, ct_msg::DELETE, 0)));
        // A dump reply, a statistics reply, an expectation event, control messages.
        assert!(verdict(&prog, &event(&e, ct_msg::NEW, flags::MULTI)));
        assert!(verdict(&prog, &event(&e, ct_msg::GET_STATS, 0)));
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        let exp = msg_type(Subsystem::CtnetlinkExp, exp_msg::NEW);
        let n = w
            .message(exp, flags::CREATE | flags::EXCL, 0, 0, |w| {
                NfGenMsg::default().emit(w)
            })
            .unwrap()
            .end;
        assert!(verdict(&prog, &buf[..n]));
        for kind in [msgtype::ERROR, msgtype::DONE, msgtype::NOOP] {
            let mut w = Writer::new(&mut buf);
            let n = w.message(kind, 0, 1, 0, |w| w.raw(&[0; 4])).unwrap().end;
            assert!(verdict(&prog, &buf[..n]));
        }
    }

    #[test]
    fn protocol_and_state() {
        let e = tcp_entry(v4([10, 0, 0, 1]), v4([10, 0, 0, 2]));
        let mut f = EventFilter::new();
        f.l4proto.insert(l4proto::TCP);
        assert!(passes(&f, &new_event(&e)));
        f.l4proto.logic = Logic::Negative;
        assert!(!passes(&f, &new_event(&e)));

        let mut f = EventFilter::new();
        f.tcp_state.insert(TcpState::SynSent);
        assert!(!passes(&f, &new_event(&e)));
        f.tcp_state.insert(TcpState::Established);
        assert!(passes(&f, &new_event(&e)));
        // Without protocol state (an update event), the state set does not apply.
        let bare = ConntrackRepr {
            protoinfo: None,
            ..e.clone()
        };
        f.tcp_state.remove(TcpState::Established);
        assert!(passes(&f, &event(&bare, ct_msg::NEW, 0)));

        // An SCTP set leaves TCP entries alone.
        let mut f = EventFilter::new();
        f.sctp_state.insert(SctpState::Established);
        assert!(passes(&f, &new_event(&e)));
        let s = ConntrackRepr {
            protoinfo: Some(ProtoInfo::Sctp(SctpInfo {
                state: Some(SctpState::CookieWait),
                ..SctpInfo::default()
            })),
            ..e
        };
        assert!(!passes(&f, &new_event(&s)));
    }

    #[test]
    fn addresses() {
        let e = tcp_entry(v4([192, 168, 1, 7]), v4([8, 8, 8, 8]));
        let mut f = EventFilter::new();
        f.ipv4_src
            .push(Ipv4Match::prefix(Ipv4Addr::new(192, 168, 0, 0), 16).unwrap())
            .unwrap();
        assert!(passes(&f, &new_event(&e)));
        f.ipv4_src.logic = Logic::Negative;
        assert!(!passes(&f, &new_event(&e)));
        // An IPv6 entry has no IPv4 source: the IPv4 set does not apply.
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1::2".parse().unwrap();
        let e6 = ConntrackRepr {
            family: 10,
            ..tcp_entry(IpAddr::V6(a), IpAddr::V6(b))
        };
        assert!(passes(&f, &new_event(&e6)));
        let mut f = EventFilter::new();
        f.ipv6_dst
            .push(Ipv6Match::prefix("2001:db8:1::".parse().unwrap(), 48).unwrap())
            .unwrap();
        assert!(passes(&f, &new_event(&e6)));
        f.ipv6_dst.items[0] = Ipv6Match::host(a);
        assert!(!passes(&f, &new_event(&e6)));
        f.ipv6_dst
            .push(Ipv6Match::prefix(Ipv6Addr::UNSPECIFIED, 0).unwrap())
            .unwrap();
        assert!(passes(&f, &new_event(&e6)));
    }

    #[test]
    fn mark_and_zone_default_to_zero() {
        let e = tcp_entry(v4([10, 0, 0, 1]), v4([10, 0, 0, 2]));
        let mut f = EventFilter::new();
        f.mark.push(MarkMatch::exact(0)).unwrap();
        f.zone.push(0).unwrap();
        assert!(passes(&f, &new_event(&e)));
        let marked = ConntrackRepr {
            mark: Some(0x1234_5678),
            zone: Some(7),
            ..e
        };
        assert!(!passes(&f, &new_event(&marked)));
        f.mark
            .push(MarkMatch::masked(0x0000_5600, 0x0000_ff00))
            .unwrap();
        f.zone.push(7).unwrap();
        assert!(passes(&f, &new_event(&marked)));
        f.zone.logic = Logic::Negative;
        assert!(!passes(&f, &new_event(&marked)));
    }

    #[test]
    fn long_sets_use_chunks() {
        let mut f = EventFilter::<260>::default();
        for z in 0..260u16 {
            f.zone.push(z * 3).unwrap();
        }
        for logic in [Logic::Positive, Logic::Negative] {
            f.zone.logic = logic;
            let prog = compile(&f);
            // More compares than one 8-bit jump reaches: two chunks.
            assert!(prog.len() > 260);
            for zone in [0u16, 3, 762, 765, 768, 777, 1, 778, 780] {
                let e = ConntrackRepr {
                    zone: Some(zone),
                    ..tcp_entry(v4([1, 2, 3, 4]), v4([5, 6, 7, 8]))
                };
                let member = zone % 3 == 0 && zone < 780;
                let passed = run(&prog, &new_event(&e)) == Some(ACCEPT);
                assert_eq!(passed, member == (logic == Logic::Positive), "zone {zone}");
            }
        }
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "emits 4096 instructions: slow under Miri, runs natively"
    )]
    fn too_long_is_an_error() {
        // 600 IPv6 hosts take 8 instructions each.
        let mut f = EventFilter::<600>::default();
        for i in 0..600u128 {
            f.ipv6_src.push(Ipv6Match::host(Ipv6Addr::from(i))).unwrap();
        }
        assert_eq!(f.program_len(), Err(Error::TooLong("BPF program")));
        let mut out = [BpfInsn::stmt(0xffff, 7); 4];
        assert_eq!(f.compile(&mut out), Err(Error::TooLong("BPF program")));
        f.ipv6_src.items.truncate(1);
        assert_eq!(f.compile(&mut out), Err(Error::BufferTooSmall));
        assert!(out.iter().all(|i| *i == BpfInsn::stmt(0xffff, 7)));
    }

    #[test]
    fn element_helpers() {
        assert!(Ipv4Match::prefix(Ipv4Addr::UNSPECIFIED, 33).is_err());
        assert!(Ipv6Match::prefix(Ipv6Addr::UNSPECIFIED, 129).is_err());
        let m = Ipv4Match::prefix(Ipv4Addr::new(10, 1, 2, 3), 8).unwrap();
        assert_eq!(m.mask, Ipv4Addr::new(255, 0, 0, 0));
        assert!(m.matches(Ipv4Addr::new(10, 9, 9, 9)));
        assert!(Ipv4Match::prefix(Ipv4Addr::new(1, 2, 3, 4), 0)
            .unwrap()
            .matches(Ipv4Addr::BROADCAST));
        assert!(MarkMatch::masked(0x10, 0xf0).matches(0x1f));
        let mut s = MatchSet::<u16, 1>::default();
        s.push(1).unwrap();
        assert_eq!(s.push(2), Err(Error::CapacityExceeded("event filter set")));
        let mut b = ByteSet::default();
        assert!(b.insert(TcpState::Established) && !b.insert(3u8));
        assert_eq!((b.len(), b.iter().next()), (1, Some(3)));
    }
}
