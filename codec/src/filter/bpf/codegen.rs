//! From an event filter to instructions: the prologue that lets everything but conntrack
//! events through, then one block per non-empty set, each finding its attribute with the
//! kernel's netlink ancillary loads and comparing in chunks short enough for 8-bit jumps.

use core::net::Ipv6Addr;

use super::asm::{Asm, Label, To};
use super::code::*;
use super::sets::{ByteSet, EventFilter, Ipv4Match, Ipv6Match, Logic, MarkMatch, MatchSet};
use super::{ACCEPT, DROP};
use crate::ct::attrs::{cta, ip, proto, protoinfo, sctp, tcp, tuple};
use crate::nfnl::{ct_msg, msg_type, Subsystem};
use crate::nl::flags;
use crate::Result;

/// Writes the program of filter `f`.
pub(super) fn program<const N: usize>(f: &EventFilter<N>, asm: &mut Asm<'_>) -> Result<()> {
    if f.is_empty() {
        return asm.stmt(RET | K, ACCEPT);
    }
    prologue(asm)?;
    if !f.l4proto.is_empty() {
        byte_block(asm, &f.l4proto, PATH_L4PROTO)?;
    }
    ipv4_block(asm, &f.ipv4_src, ip::V4_SRC)?;
    ipv4_block(asm, &f.ipv4_dst, ip::V4_DST)?;
    ipv6_block(asm, &f.ipv6_src, ip::V6_SRC)?;
    ipv6_block(asm, &f.ipv6_dst, ip::V6_DST)?;
    if !f.tcp_state.is_empty() {
        byte_block(asm, &f.tcp_state, PATH_TCP_STATE)?;
    }
    if !f.sctp_state.is_empty() {
        byte_block(asm, &f.sctp_state, PATH_SCTP_STATE)?;
    }
    mark_block(asm, &f.mark)?;
    zone_block(asm, &f.zone)?;
    asm.stmt(RET | K, ACCEPT)?;
    asm.finish()
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
pub(super) const CHUNK_MAX: usize = 255;

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
            start: asm.len(),
            hit: asm.label()?,
        })
    }

    /// Makes sure the next `n` instructions still reach this chunk's stub, starting a new
    /// chunk if not.
    fn reserve(&mut self, asm: &mut Asm<'_>, n: usize) -> Result<()> {
        let body = asm.len().saturating_sub(self.start);
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
        self.start = asm.len();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_constants_follow_the_target_byte_order() {
        // A 16-bit load of bytes written in host order gives back host_u16 of the value.
        let bytes = 0x0102u16.to_ne_bytes();
        assert_eq!(
            host_u16(0x0102),
            u32::from(bytes[0]) << 8 | u32::from(bytes[1])
        );
    }
}
