//! The sets an event filter is made of: L4 protocols and states (byte sets), IPv4 and IPv6
//! networks, marks and zones, each with its logic.

use core::net::{Ipv4Addr, Ipv6Addr};

use heapless::Vec;

use super::asm::Asm;
use super::{codegen, BpfInsn};
use crate::{Error, Result};

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
/// non-empty set (see the [module documentation](super) for the attribute each set reads and
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
    /// [`Error::TooLong`] if the program would exceed [`MAX_INSNS`](super::MAX_INSNS).
    pub fn program_len(&self) -> Result<usize> {
        let mut asm = Asm::new(&mut [], false);
        codegen::program(self, &mut asm)?;
        Ok(asm.len())
    }

    /// Compiles the filter into `out` and returns the number of instructions written, ready
    /// for `SO_ATTACH_FILTER`. An empty filter compiles to one instruction that accepts
    /// everything.
    ///
    /// # Errors
    /// [`Error::TooLong`] if the program would exceed [`MAX_INSNS`](super::MAX_INSNS) instructions;
    /// [`Error::BufferTooSmall`] if it does not fit `out` ([`EventFilter::program_len`]
    /// tells the size; [`MAX_INSNS`](super::MAX_INSNS) always suffices). On error `out` is left unchanged.
    pub fn compile(&self, out: &mut [BpfInsn]) -> Result<usize> {
        if self.program_len()? > out.len() {
            return Err(Error::BufferTooSmall);
        }
        let mut asm = Asm::new(out, true);
        codegen::program(self, &mut asm)?;
        Ok(asm.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::TcpState;

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
