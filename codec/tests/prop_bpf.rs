//! Property tests of the classic-BPF event filter compiler (slow under Miri: run natively).
//!
//! A classic-BPF interpreter with the kernel's semantics (including the netlink ancillary
//! loads of `net/core/filter.c`) runs every compiled program over generated conntrack event
//! messages; its verdict must equal a plain Rust predicate written from the filter's
//! documented semantics. Every program must also pass a re-implementation of the kernel's
//! classic-BPF checker (`bpf_check_classic`). The numbers below are taken from the uapi
//! headers, not from the compiler, so that a wrong constant there cannot hide.
#![cfg(not(miri))]

mod common;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use conntrack_codec::ct::{l4proto, ConntrackRepr, DccpInfo, ProtoInfo, SctpInfo, TcpInfo, Tuple};
use conntrack_codec::filter::bpf::{
    BpfInsn, ByteSet, EventFilter, Ipv4Match, Ipv6Match, Logic, MarkMatch, MatchSet, MAX_INSNS,
};
use conntrack_codec::nfnl::{msg_type, Subsystem};
use conntrack_codec::nl::Writer;
use conntrack_codec::Error;
use proptest::prelude::*;
use proptest::sample::select;

// ---------------------------------------------------------------------------------------
// Classic BPF, from linux/bpf_common.h and linux/filter.h.

const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_ST: u16 = 0x02;
const BPF_STX: u16 = 0x03;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_MISC: u16 = 0x07;
const BPF_W: u16 = 0x00;
const BPF_H: u16 = 0x08;
const BPF_B: u16 = 0x10;
const BPF_IMM: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_IND: u16 = 0x40;
const BPF_MEM: u16 = 0x60;
const BPF_LEN: u16 = 0x80;
const BPF_MSH: u16 = 0xa0;
const BPF_ADD: u16 = 0x00;
const BPF_SUB: u16 = 0x10;
const BPF_MUL: u16 = 0x20;
const BPF_DIV: u16 = 0x30;
const BPF_OR: u16 = 0x40;
const BPF_AND: u16 = 0x50;
const BPF_LSH: u16 = 0x60;
const BPF_RSH: u16 = 0x70;
const BPF_NEG: u16 = 0x80;
const BPF_MOD: u16 = 0x90;
const BPF_XOR: u16 = 0xa0;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;
const BPF_JSET: u16 = 0x40;
const BPF_K: u16 = 0x00;
const BPF_X: u16 = 0x08;
const BPF_A: u16 = 0x10;
const BPF_TAX: u16 = 0x00;
const BPF_TXA: u16 = 0x80;
const BPF_MAXINSNS: usize = 4096;
const BPF_MEMWORDS: u32 = 16;
const SKF_AD_OFF: i32 = -0x1000;
const SKF_AD_NLATTR: i32 = 12;
const SKF_AD_NLATTR_NEST: i32 = 16;
const SKF_AD_MAX: i32 = 64;

fn class(code: u16) -> u16 {
    code & 0x07
}

// ---------------------------------------------------------------------------------------
// The kernel's checker.

/// `chk_code_allowed`: the codes a classic program may contain.
fn code_allowed(code: u16) -> bool {
    const ALU_OPS: [u16; 10] = [
        BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_MOD, BPF_AND, BPF_OR, BPF_XOR, BPF_LSH, BPF_RSH,
    ];
    const JMP_OPS: [u16; 4] = [BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET];
    let alu = ALU_OPS
        .iter()
        .any(|&op| code == BPF_ALU | op | BPF_K || code == BPF_ALU | op | BPF_X)
        || code == BPF_ALU | BPF_NEG;
    let jmp = code == BPF_JMP | BPF_JA
        || JMP_OPS
            .iter()
            .any(|&op| code == BPF_JMP | op | BPF_K || code == BPF_JMP | op | BPF_X);
    let ld = [
        BPF_LD | BPF_W | BPF_ABS,
        BPF_LD | BPF_H | BPF_ABS,
        BPF_LD | BPF_B | BPF_ABS,
        BPF_LD | BPF_W | BPF_LEN,
        BPF_LD | BPF_W | BPF_IND,
        BPF_LD | BPF_H | BPF_IND,
        BPF_LD | BPF_B | BPF_IND,
        BPF_LD | BPF_IMM,
        BPF_LD | BPF_MEM,
        BPF_LDX | BPF_W | BPF_LEN,
        BPF_LDX | BPF_B | BPF_MSH,
        BPF_LDX | BPF_IMM,
        BPF_LDX | BPF_MEM,
        BPF_ST,
        BPF_STX,
        BPF_MISC | BPF_TAX,
        BPF_MISC | BPF_TXA,
        BPF_RET | BPF_K,
        BPF_RET | BPF_A,
    ]
    .contains(&code);
    alu || jmp || ld
}

fn is_cond_jump(code: u16) -> bool {
    class(code) == BPF_JMP && code != BPF_JMP | BPF_JA
}

/// `bpf_check_basics_ok` + `bpf_check_classic` + `check_load_and_stores`.
fn kernel_check(prog: &[BpfInsn]) -> Result<(), String> {
    let flen = prog.len();
    if flen == 0 || flen > BPF_MAXINSNS {
        return Err(format!("length {flen}"));
    }
    for (pc, i) in prog.iter().enumerate() {
        if !code_allowed(i.code) {
            return Err(format!("code {:#x} at {pc}", i.code));
        }
        let (code, k, rest) = (i.code, i.k, flen - pc - 1);
        let div = code == BPF_ALU | BPF_DIV | BPF_K || code == BPF_ALU | BPF_MOD | BPF_K;
        let shift = code == BPF_ALU | BPF_LSH | BPF_K || code == BPF_ALU | BPF_RSH | BPF_K;
        let mem = [BPF_LD | BPF_MEM, BPF_LDX | BPF_MEM, BPF_ST, BPF_STX].contains(&code);
        let ld_abs = class(code) == BPF_LD && code & 0xe0 == BPF_ABS;
        let ancillary = (SKF_AD_OFF..SKF_AD_OFF + SKF_AD_MAX).contains(&(k as i32));
        let problem = if div && k == 0 {
            Some("division by zero")
        } else if shift && k >= 32 {
            Some("shift by 32 or more")
        } else if mem && k >= BPF_MEMWORDS {
            Some("no such scratch cell")
        } else if code == BPF_JMP | BPF_JA && k as usize >= rest {
            Some("JA out of range")
        } else if is_cond_jump(code) && (usize::from(i.jt) >= rest || usize::from(i.jf) >= rest) {
            Some("conditional jump out of range")
        } else if ld_abs && k >= SKF_AD_OFF as u32 && !(ancillary && k % 4 == 0) {
            Some("unknown ancillary load")
        } else {
            None
        };
        if let Some(p) = problem {
            return Err(format!("{p} at {pc}"));
        }
    }
    if class(prog[flen - 1].code) != BPF_RET {
        return Err("does not end with RET".into());
    }
    // check_load_and_stores: no scratch cell is read before it is written on every path.
    let mut masks = vec![u16::MAX; flen];
    let mut valid = 0u16;
    for (pc, i) in prog.iter().enumerate() {
        valid &= masks[pc];
        match i.code {
            c if c == BPF_ST || c == BPF_STX => valid |= 1 << i.k,
            c if (c == BPF_LD | BPF_MEM || c == BPF_LDX | BPF_MEM) && valid & (1 << i.k) == 0 => {
                return Err(format!("scratch cell {} read before written at {pc}", i.k));
            }
            c if c == BPF_JMP | BPF_JA => {
                masks[pc + 1 + i.k as usize] &= valid;
                valid = u16::MAX;
            }
            c if is_cond_jump(c) => {
                masks[pc + 1 + usize::from(i.jt)] &= valid;
                masks[pc + 1 + usize::from(i.jf)] &= valid;
                valid = u16::MAX;
            }
            _ => {}
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The interpreter.

/// A load outside the packet: the kernel ends the program with 0 (drop).
#[derive(Debug, PartialEq, Eq)]
struct Fault(u32);

fn nla_len(pkt: &[u8], at: usize) -> usize {
    usize::from(u16::from_ne_bytes([pkt[at], pkt[at + 1]]))
}

/// `nla_find`: the first attribute of type `kind` in `len` bytes from `start`, by `nla_ok`
/// and `nla_next`; its offset in the packet or 0.
fn nla_find(pkt: &[u8], start: usize, len: i64, kind: u32) -> u32 {
    let (mut at, mut rem) = (start, len);
    // nla_ok: remaining >= 4 && nla_len >= 4 && nla_len <= remaining.
    while rem >= 4 {
        let l = nla_len(pkt, at);
        if l < 4 || l as i64 > rem {
            break;
        }
        let ty = u16::from_ne_bytes([pkt[at + 2], pkt[at + 3]]) & 0x3fff;
        if u32::from(ty) == kind {
            return at as u32;
        }
        let total = (l + 3) & !3;
        rem -= total as i64;
        at += total;
    }
    0
}

/// `bpf_skb_get_nlattr`: search from offset A to the end of the packet.
fn skf_nlattr(pkt: &[u8], a: u32, x: u32) -> u32 {
    let len = pkt.len();
    if len < 4 || a as usize > len - 4 {
        return 0;
    }
    nla_find(pkt, a as usize, (len - a as usize) as i64, x)
}

/// `bpf_skb_get_nlattr_nest`: search inside the nest whose header is at offset A.
fn skf_nlattr_nest(pkt: &[u8], a: u32, x: u32) -> u32 {
    let len = pkt.len();
    if len < 4 || a as usize > len - 4 {
        return 0;
    }
    let a = a as usize;
    let l = nla_len(pkt, a);
    if l > len - a {
        return 0;
    }
    // nla_find_nested: the payload, nla_len - NLA_HDRLEN bytes (negative: nothing).
    nla_find(pkt, a + 4, l as i64 - 4, x)
}

fn load(pkt: &[u8], offset: i64, size: usize) -> Result<u32, Fault> {
    if offset < 0 {
        return Err(Fault(offset as u32));
    }
    let off = offset as usize;
    let bytes = pkt.get(off..off + size).ok_or(Fault(off as u32))?;
    Ok(bytes.iter().fold(0u32, |v, &b| (v << 8) | u32::from(b)))
}

fn size_of(code: u16) -> usize {
    match code & 0x18 {
        BPF_W => 4,
        BPF_H => 2,
        BPF_B => 1,
        s => panic!("size {s:#x}"),
    }
}

/// Runs `prog` over `pkt` as the kernel does: the return value, or the faulting offset.
fn run(prog: &[BpfInsn], pkt: &[u8]) -> Result<u32, Fault> {
    let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        pc += 1;
        let operand = if i.code & BPF_X != 0 { x } else { i.k };
        match class(i.code) {
            BPF_LD => match i.code & 0xe0 {
                BPF_IMM => a = i.k,
                BPF_LEN => a = pkt.len() as u32,
                BPF_MEM => a = mem[i.k as usize],
                BPF_ABS if i.k as i32 == SKF_AD_OFF + SKF_AD_NLATTR => a = skf_nlattr(pkt, a, x),
                BPF_ABS if i.k as i32 == SKF_AD_OFF + SKF_AD_NLATTR_NEST => {
                    a = skf_nlattr_nest(pkt, a, x)
                }
                BPF_ABS if (i.k as i32) < 0 => panic!("unsupported negative load {:#x}", i.k),
                BPF_ABS => a = load(pkt, i64::from(i.k), size_of(i.code))?,
                // The kernel adds X and k in 64 bits and passes an int offset.
                BPF_IND => a = load(pkt, i64::from(x.wrapping_add(i.k) as i32), size_of(i.code))?,
                m => panic!("LD mode {m:#x}"),
            },
            BPF_LDX => match i.code & 0xe0 {
                BPF_IMM => x = i.k,
                BPF_LEN => x = pkt.len() as u32,
                BPF_MEM => x = mem[i.k as usize],
                BPF_MSH => x = (load(pkt, i64::from(i.k), 1)? & 0xf) << 2,
                m => panic!("LDX mode {m:#x}"),
            },
            BPF_ST => mem[i.k as usize] = a,
            BPF_STX => mem[i.k as usize] = x,
            BPF_ALU => {
                a = match i.code & 0xf0 {
                    BPF_ADD => a.wrapping_add(operand),
                    BPF_SUB => a.wrapping_sub(operand),
                    BPF_MUL => a.wrapping_mul(operand),
                    BPF_DIV | BPF_MOD if operand == 0 => return Ok(0),
                    BPF_DIV => a / operand,
                    BPF_MOD => a % operand,
                    BPF_AND => a & operand,
                    BPF_OR => a | operand,
                    BPF_XOR => a ^ operand,
                    BPF_LSH => a.wrapping_shl(operand),
                    BPF_RSH => a.wrapping_shr(operand),
                    BPF_NEG => a.wrapping_neg(),
                    op => panic!("ALU op {op:#x}"),
                }
            }
            BPF_JMP => {
                if i.code & 0xf0 == BPF_JA {
                    pc += i.k as usize;
                } else {
                    let taken = match i.code & 0xf0 {
                        BPF_JEQ => a == operand,
                        BPF_JGT => a > operand,
                        BPF_JGE => a >= operand,
                        BPF_JSET => a & operand != 0,
                        op => panic!("JMP op {op:#x}"),
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
            }
            BPF_RET => return Ok(if i.code & 0x18 == BPF_A { a } else { i.k }),
            BPF_MISC => {
                if i.code & 0xf8 == BPF_TXA {
                    a = x;
                } else {
                    debug_assert_eq!(i.code & 0xf8, BPF_TAX);
                    x = a;
                }
            }
            _ => unreachable!(),
        }
    }
}

/// Compiles, checks with the kernel's rules, and returns the program.
fn compiled<const N: usize>(f: &EventFilter<N>) -> Vec<BpfInsn> {
    let mut out = vec![BpfInsn::default(); MAX_INSNS];
    let n = f.compile(&mut out).expect("compile");
    assert_eq!(n, f.program_len().unwrap());
    out.truncate(n);
    if let Err(e) = kernel_check(&out) {
        panic!("the kernel would refuse the program: {e}");
    }
    out
}

/// Whether the kernel would queue the message: the program returns non-zero.
fn delivered(prog: &[BpfInsn], pkt: &[u8]) -> bool {
    match run(prog, pkt) {
        Ok(v) => v != 0,
        Err(Fault(at)) => panic!("load out of bounds at {at} on a well-formed message"),
    }
}

// ---------------------------------------------------------------------------------------
// The predicate: what the filter means, written from its documentation.

fn byte_ok(set: &ByteSet, value: Option<u8>) -> bool {
    match value {
        _ if set.is_empty() => true,
        None => true,
        Some(v) => set.contains(v) == (set.logic == Logic::Positive),
    }
}

fn match_ok<T, V: Copy, const N: usize>(
    set: &MatchSet<T, N>,
    value: Option<V>,
    hit: impl Fn(&T, V) -> bool,
) -> bool {
    match value {
        _ if set.is_empty() => true,
        None => true,
        Some(v) => set.items.iter().any(|m| hit(m, v)) == (set.logic == Logic::Positive),
    }
}

fn v4(a: Option<IpAddr>) -> Option<u32> {
    match a {
        Some(IpAddr::V4(a)) => Some(u32::from(a)),
        _ => None,
    }
}

fn v6(a: Option<IpAddr>) -> Option<u128> {
    match a {
        Some(IpAddr::V6(a)) => Some(u128::from(a)),
        _ => None,
    }
}

fn wants<const N: usize>(f: &EventFilter<N>, r: &ConntrackRepr) -> bool {
    let orig = r.orig.unwrap_or_default();
    let (tcp_state, sctp_state) = match r.protoinfo {
        Some(ProtoInfo::Tcp(t)) => (t.state.map(u8::from), None),
        Some(ProtoInfo::Sctp(s)) => (None, s.state.map(u8::from)),
        _ => (None, None),
    };
    let a4 = |m: &Ipv4Match, a: u32| a & u32::from(m.mask) == u32::from(m.addr) & u32::from(m.mask);
    let a6 =
        |m: &Ipv6Match, a: u128| a & u128::from(m.mask) == u128::from(m.addr) & u128::from(m.mask);
    byte_ok(&f.l4proto, orig.proto)
        && byte_ok(&f.tcp_state, tcp_state)
        && byte_ok(&f.sctp_state, sctp_state)
        && match_ok(&f.ipv4_src, v4(orig.src), a4)
        && match_ok(&f.ipv4_dst, v4(orig.dst), a4)
        && match_ok(&f.ipv6_src, v6(orig.src), a6)
        && match_ok(&f.ipv6_dst, v6(orig.dst), a6)
        && match_ok(&f.mark, Some(r.mark.unwrap_or(0)), |m, v: u32| {
            v & m.mask == m.value & m.mask
        })
        && match_ok(&f.zone, Some(r.zone.unwrap_or(0)), |z, v: u16| *z == v)
}

// ---------------------------------------------------------------------------------------
// Strategies: small pools, so that filters and entries meet.

const POOL4: [[u8; 4]; 6] = [
    [10, 0, 0, 1],
    [10, 0, 0, 2],
    [10, 1, 2, 3],
    [192, 168, 1, 1],
    [8, 8, 8, 8],
    [0, 0, 0, 0],
];
const POOL6: [&str; 5] = [
    "2001:db8::1",
    "2001:db8::2",
    "2001:db8:1::1",
    "fe80::1",
    "::",
];
const PROTOS: [u8; 7] = [
    l4proto::TCP,
    l4proto::UDP,
    l4proto::SCTP,
    l4proto::ICMP,
    l4proto::ICMPV6,
    l4proto::GRE,
    99,
];

fn addr4() -> BoxedStrategy<Ipv4Addr> {
    prop_oneof![
        3 => select(&POOL4[..]).prop_map(Ipv4Addr::from),
        1 => any::<[u8; 4]>().prop_map(Ipv4Addr::from),
    ]
    .boxed()
}

fn addr6() -> BoxedStrategy<Ipv6Addr> {
    prop_oneof![
        3 => select(&POOL6[..]).prop_map(|s| s.parse().unwrap()),
        1 => any::<[u8; 16]>().prop_map(Ipv6Addr::from),
    ]
    .boxed()
}

fn net4() -> BoxedStrategy<Ipv4Match> {
    let mask = prop_oneof![
        3 => select(&[0u8, 8, 16, 24, 31, 32][..])
            .prop_map(|l| u32::MAX.checked_shl(32 - u32::from(l)).unwrap_or(0)),
        1 => any::<u32>(),
    ];
    (addr4(), mask)
        .prop_map(|(addr, mask)| Ipv4Match {
            addr,
            mask: Ipv4Addr::from(mask),
        })
        .boxed()
}

fn net6() -> BoxedStrategy<Ipv6Match> {
    let mask = prop_oneof![
        3 => select(&[0u8, 1, 16, 32, 48, 64, 96, 112, 127, 128][..])
            .prop_map(|l| u128::MAX.checked_shl(128 - u32::from(l)).unwrap_or(0)),
        1 => any::<u128>(),
        1 => any::<[u32; 4]>().prop_map(|w| {
            // Each word all zeros, all ones, or arbitrary.
            let b = |v: u32| -> u128 {
                match v % 3 {
                    0 => 0,
                    1 => u32::MAX.into(),
                    _ => v.into(),
                }
            };
            b(w[0]) << 96 | b(w[1]) << 64 | b(w[2]) << 32 | b(w[3])
        }),
    ];
    (addr6(), mask)
        .prop_map(|(addr, mask)| Ipv6Match {
            addr,
            mask: Ipv6Addr::from(mask),
        })
        .boxed()
}

fn mark() -> BoxedStrategy<u32> {
    prop_oneof![3 => select(&[0u32, 1, 0x10, 0xff00, 0x8000_0001][..]), 1 => any::<u32>()].boxed()
}

fn mark_match() -> BoxedStrategy<MarkMatch> {
    let mask = prop_oneof![3 => select(&[u32::MAX, 0xff, 0xff00, 0xf0, 0][..]), 1 => any::<u32>()];
    (mark(), mask)
        .prop_map(|(value, mask)| MarkMatch { value, mask })
        .boxed()
}

fn zone() -> BoxedStrategy<u16> {
    prop_oneof![3 => select(&[0u16, 1, 2, 7, 65535][..]), 1 => any::<u16>()].boxed()
}

fn logic() -> BoxedStrategy<Logic> {
    prop_oneof![Just(Logic::Positive), Just(Logic::Negative)].boxed()
}

fn byte_set(values: BoxedStrategy<u8>, max: usize) -> BoxedStrategy<ByteSet> {
    prop_oneof![
        2 => Just(ByteSet::default()),
        3 => (logic(), prop::collection::vec(values, 1..max)).prop_map(|(l, v)| {
            let mut s = ByteSet::new(l);
            for x in v {
                s.insert(x);
            }
            s
        }),
        // Dense: about half of every byte value, which needs more than one chunk in total.
        1 => (logic(), any::<[u8; 32]>()).prop_map(|(l, bits)| {
            let mut s = ByteSet::new(l);
            for v in 0..=255u8 {
                if bits[usize::from(v / 8)] & (1 << (v % 8)) != 0 {
                    s.insert(v);
                }
            }
            s
        }),
    ]
    .boxed()
}

fn match_set<T: Clone + core::fmt::Debug + 'static, const N: usize>(
    item: BoxedStrategy<T>,
    max: usize,
) -> BoxedStrategy<MatchSet<T, N>> {
    prop_oneof![
        Just(MatchSet::default()),
        (logic(), prop::collection::vec(item, 1..max)).prop_map(|(l, v)| {
            let mut s = MatchSet::new(l);
            for x in v {
                s.push(x).unwrap();
            }
            s
        }),
    ]
    .boxed()
}

const CAP: usize = 512;

fn filter(max: usize) -> BoxedStrategy<EventFilter<CAP>> {
    (
        (
            byte_set(prop_oneof![select(&PROTOS[..]), any::<u8>()].boxed(), 6),
            byte_set((0u8..14).boxed(), 6),
            byte_set((0u8..10).boxed(), 6),
        ),
        (
            match_set(net4(), max),
            match_set(net4(), max),
            match_set(net6(), max),
            match_set(net6(), max),
            match_set(mark_match(), max),
            match_set(zone(), max),
        ),
    )
        .prop_map(
            |((l4proto, tcp_state, sctp_state), (s4, d4, s6, d6, mark, zone))| EventFilter {
                l4proto,
                tcp_state,
                sctp_state,
                ipv4_src: s4,
                ipv4_dst: d4,
                ipv6_src: s6,
                ipv6_dst: d6,
                mark,
                zone,
            },
        )
        .boxed()
}

/// A conntrack entry: random everything (the shared strategy), then the fields filters look
/// at drawn from the pools.
fn entry() -> BoxedStrategy<ConntrackRepr> {
    let ips = prop_oneof![
        (proptest::option::of(addr4()), proptest::option::of(addr4())).prop_map(|(s, d)| (
            2u8,
            s.map(IpAddr::V4),
            d.map(IpAddr::V4)
        )),
        (proptest::option::of(addr6()), proptest::option::of(addr6())).prop_map(|(s, d)| (
            10u8,
            s.map(IpAddr::V6),
            d.map(IpAddr::V6)
        )),
        (addr4(), addr6()).prop_map(|(s, d)| (2u8, Some(IpAddr::V4(s)), Some(IpAddr::V6(d)))),
    ];
    let protoinfo = prop_oneof![
        Just(None),
        proptest::option::of(0u8..14).prop_map(|s| Some(ProtoInfo::Tcp(TcpInfo {
            state: s.map(Into::into),
            wscale_orig: Some(7),
            ..TcpInfo::default()
        }))),
        proptest::option::of(0u8..10).prop_map(|s| Some(ProtoInfo::Sctp(SctpInfo {
            state: s.map(Into::into),
            vtag_orig: Some(1),
            vtag_reply: Some(2),
        }))),
        any::<u8>().prop_map(|s| Some(ProtoInfo::Dccp(DccpInfo {
            state: Some(s.into()),
            ..DccpInfo::default()
        }))),
    ];
    (
        common::repr(),
        ips,
        proptest::option::of(prop_oneof![select(&PROTOS[..]), any::<u8>()]),
        any::<bool>(),
        protoinfo,
        proptest::option::of(mark()),
        proptest::option::of(zone()),
    )
        .prop_map(
            |(mut r, (family, src, dst), proto, has_orig, pi, mark, zone)| {
                r.family = family;
                r.orig = has_orig.then(|| {
                    let mut t = r.orig.unwrap_or_default();
                    t.src = src;
                    t.dst = dst;
                    t.proto = proto;
                    t
                });
                r.protoinfo = pi;
                r.mark = mark;
                r.zone = zone;
                r
            },
        )
        .boxed()
}

/// How a conntrack message arrives.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// An event: `CT_NEW` (with or without `CREATE|EXCL`) or `CT_DELETE`, any flags but MULTI.
    Event { msg: u8, flags: u16 },
    /// Anything else carrying the same attributes: a dump reply (MULTI), another message
    /// number, another subsystem.
    Other { kind: u16, flags: u16 },
}

const MULTI: u16 = 0x02;

fn kind() -> BoxedStrategy<Kind> {
    prop_oneof![
        3 => (prop_oneof![Just(0u8), Just(2u8)], prop_oneof![Just(0x600u16), Just(0), any::<u16>()])
            .prop_map(|(msg, flags)| Kind::Event { msg, flags: flags & !MULTI }),
        1 => (prop_oneof![Just(0u8), Just(2u8)], any::<u16>())
            .prop_map(|(msg, flags)| Kind::Other {
                kind: 0x100 | u16::from(msg),
                flags: flags | MULTI,
            }),
        1 => (any::<u16>(), any::<u16>())
            .prop_filter("not a conntrack NEW/DELETE", |(k, _)| *k != 0x100 && *k != 0x102)
            .prop_map(|(kind, flags)| Kind::Other { kind, flags }),
    ]
    .boxed()
}

fn message(r: &ConntrackRepr, kind: Kind) -> Vec<u8> {
    let (t, fl) = match kind {
        Kind::Event { msg, flags } => (msg_type(Subsystem::Ctnetlink, msg), flags),
        Kind::Other { kind, flags } => (kind, flags),
    };
    let mut buf = vec![0u8; 16384];
    let mut w = Writer::new(&mut buf);
    let end = r.emit(&mut w, t, fl, 0).unwrap().end;
    buf.truncate(end);
    buf
}

fn check_agrees<const M: usize>(f: &EventFilter<M>, entries: &[(ConntrackRepr, Kind)]) {
    let prog = compiled(f);
    for (r, k) in entries {
        let pkt = message(r, *k);
        let want = match k {
            Kind::Event { .. } => wants(f, r),
            Kind::Other { .. } => true,
        };
        assert_eq!(
            delivered(&prog, &pkt),
            want,
            "filter {f:?}\nentry {r:?}\nkind {k:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    /// Small random filters over random entries and message kinds.
    #[test]
    fn program_agrees_with_predicate(
        f in filter(6),
        entries in prop::collection::vec((entry(), kind()), 1..12),
    ) {
        check_agrees(&f, &entries);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Large sets: comparison lists cut into several chunks, all targets still right.
    #[test]
    fn long_programs_agree_with_predicate(
        f in filter(200),
        entries in prop::collection::vec((entry(), kind()), 1..24),
    ) {
        match f.program_len() {
            Ok(_) => check_agrees(&f, &entries),
            Err(e) => prop_assert_eq!(e, Error::TooLong("BPF program")),
        }
    }

    /// Whatever is not a conntrack event passes, whatever the filter.
    #[test]
    fn control_messages_pass(
        f in filter(6),
        kind in 1u16..0x10,
        payload in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let prog = compiled(&f);
        let mut buf = vec![0u8; 128];
        let mut w = Writer::new(&mut buf);
        let end = w.message(kind, 0, 1, 0, |w| w.raw(&payload)).unwrap().end;
        prop_assert!(delivered(&prog, &buf[..end]));
    }
}

/// A dump datagram (several MULTI messages) passes whole, even if its entries do not match.
#[test]
fn dump_datagrams_pass() {
    let mut f = EventFilter::new();
    f.l4proto.insert(l4proto::UDP);
    let prog = compiled(&f);
    let t = Tuple::tcp(
        Ipv4Addr::new(1, 1, 1, 1).into(),
        Ipv4Addr::new(2, 2, 2, 2).into(),
        1,
        2,
    );
    let r = ConntrackRepr {
        family: 2,
        orig: Some(t),
        reply: Some(t.inverted()),
        ..ConntrackRepr::default()
    };
    let mut buf = vec![0u8; 4096];
    let mut w = Writer::new(&mut buf);
    for seq in 0..3 {
        r.emit(&mut w, msg_type(Subsystem::Ctnetlink, 0), MULTI, seq)
            .unwrap();
    }
    let n = w.len();
    assert!(delivered(&prog, &buf[..n]));
    assert!(!delivered(
        &prog,
        &message(&r, Kind::Event { msg: 0, flags: 0 })
    ));
}

/// Filling a set up to the kernel's limit: the longest program that fits is accepted by the
/// checker and still right; one element more is an error, never a truncated program.
#[test]
fn programs_up_to_the_limit() {
    for logic in [Logic::Positive, Logic::Negative] {
        let mut f = EventFilter::<4096>::default();
        f.zone.logic = logic;
        f.l4proto.insert(l4proto::TCP);
        let mut last_ok = 0;
        for z in 0..4096u16 {
            f.zone.push(z * 2).unwrap();
            match f.program_len() {
                Ok(n) => last_ok = n,
                Err(e) => {
                    assert_eq!(e, Error::TooLong("BPF program"));
                    let mut out = vec![BpfInsn::default(); 2 * MAX_INSNS];
                    assert_eq!(f.compile(&mut out), Err(Error::TooLong("BPF program")));
                    f.zone.items.pop();
                    break;
                }
            }
        }
        assert!(last_ok >= MAX_INSNS - 3, "last program {last_ok}");
        let count = f.zone.len() as u16;
        let base = ConntrackRepr {
            family: 2,
            orig: Some(Tuple::tcp(
                Ipv4Addr::new(1, 1, 1, 1).into(),
                Ipv4Addr::new(2, 2, 2, 2).into(),
                1,
                2,
            )),
            ..ConntrackRepr::default()
        };
        let entries: Vec<_> = [
            0,
            1,
            2,
            500,
            510,
            511,
            512,
            1020,
            2 * (count - 1),
            2 * count,
        ]
        .into_iter()
        .map(|z| {
            let r = ConntrackRepr {
                zone: Some(z),
                ..base.clone()
            };
            (
                r,
                Kind::Event {
                    msg: 0,
                    flags: 0x600,
                },
            )
        })
        .collect();
        check_agrees(&f, &entries);
        assert_eq!(compiled(&f).len(), last_ok);
    }
}

/// The compiler never writes past what it reports, and a short slice is refused untouched.
#[test]
fn short_output_is_refused() {
    let mut f = EventFilter::new();
    f.ipv6_src
        .push(Ipv6Match::prefix("2001:db8::".parse().unwrap(), 32).unwrap())
        .unwrap();
    let n = f.program_len().unwrap();
    let mut out = vec![BpfInsn::stmt(0xdead, 0xdead_beef); n + 3];
    assert_eq!(f.compile(&mut out[..n - 1]), Err(Error::BufferTooSmall));
    assert!(out.iter().all(|i| i.code == 0xdead));
    assert_eq!(f.compile(&mut out), Ok(n));
    assert!(out[n..].iter().all(|i| i.code == 0xdead));
}
