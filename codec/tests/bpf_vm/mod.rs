//! The one classic-BPF checker and interpreter of the tests, shared by the codec's
//! `tests/prop_bpf.rs` and `tests/bpf.rs` and the fuzz crate (`fuzz/src/lib.rs` includes
//! this file): `kernel_check` re-implements the
//! kernel's `bpf_check_classic`, `run` executes a program with the kernel's semantics
//! (netlink ancillary loads included), and `wants` says what a filter means, written from
//! its documentation. The numbers are taken from the uapi headers, not from the compiler, so
//! that a wrong constant there cannot hide.
#![allow(dead_code, clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use core::net::IpAddr;

use conntrack_codec::ct::{ConntrackRepr, ProtoInfo};
use conntrack_codec::filter::bpf::{
    BpfInsn, ByteSet, EventFilter, Ipv4Match, Ipv6Match, Logic, MatchSet,
};

// ---------------------------------------------------------------------------------------
// Classic BPF, from linux/bpf_common.h and linux/filter.h.

pub const BPF_LD: u16 = 0x00;
pub const BPF_LDX: u16 = 0x01;
pub const BPF_ST: u16 = 0x02;
pub const BPF_STX: u16 = 0x03;
pub const BPF_ALU: u16 = 0x04;
pub const BPF_JMP: u16 = 0x05;
pub const BPF_RET: u16 = 0x06;
pub const BPF_MISC: u16 = 0x07;
pub const BPF_W: u16 = 0x00;
pub const BPF_H: u16 = 0x08;
pub const BPF_B: u16 = 0x10;
pub const BPF_IMM: u16 = 0x00;
pub const BPF_ABS: u16 = 0x20;
pub const BPF_IND: u16 = 0x40;
pub const BPF_MEM: u16 = 0x60;
pub const BPF_LEN: u16 = 0x80;
pub const BPF_MSH: u16 = 0xa0;
pub const BPF_ADD: u16 = 0x00;
pub const BPF_SUB: u16 = 0x10;
pub const BPF_MUL: u16 = 0x20;
pub const BPF_DIV: u16 = 0x30;
pub const BPF_OR: u16 = 0x40;
pub const BPF_AND: u16 = 0x50;
pub const BPF_LSH: u16 = 0x60;
pub const BPF_RSH: u16 = 0x70;
pub const BPF_NEG: u16 = 0x80;
pub const BPF_MOD: u16 = 0x90;
pub const BPF_XOR: u16 = 0xa0;
pub const BPF_JA: u16 = 0x00;
pub const BPF_JEQ: u16 = 0x10;
pub const BPF_JGT: u16 = 0x20;
pub const BPF_JGE: u16 = 0x30;
pub const BPF_JSET: u16 = 0x40;
pub const BPF_K: u16 = 0x00;
pub const BPF_X: u16 = 0x08;
pub const BPF_A: u16 = 0x10;
pub const BPF_TAX: u16 = 0x00;
pub const BPF_TXA: u16 = 0x80;
pub const BPF_MAXINSNS: usize = 4096;
pub const BPF_MEMWORDS: u32 = 16;
pub const SKF_AD_OFF: i32 = -0x1000;
pub const SKF_AD_NLATTR: i32 = 12;
pub const SKF_AD_NLATTR_NEST: i32 = 16;
pub const SKF_AD_MAX: i32 = 64;

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
pub fn kernel_check(prog: &[BpfInsn]) -> Result<(), String> {
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
pub struct Fault(pub u32);

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
pub fn run(prog: &[BpfInsn], pkt: &[u8]) -> Result<u32, Fault> {
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

pub fn wants<const N: usize>(f: &EventFilter<N>, r: &ConntrackRepr) -> bool {
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
