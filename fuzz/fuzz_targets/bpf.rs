//! The classic-BPF event filter compiler, driven by structured input: every filter either
//! compiles to a program the kernel's checker accepts (of exactly `program_len()`
//! instructions, refused untouched by a slice one instruction short) or is refused as too
//! long. Each program then runs in an interpreter with the kernel's semantics over the
//! input's raw bytes (anything may happen but a panic) and over a well-formed message built
//! from an arbitrary entry, where its verdict must be what the filter means.
#![no_main]

use arbitrary::Arbitrary;
use conntrack_codec::ct::ConntrackRepr;
use conntrack_codec::filter::bpf::{
    BpfInsn, ByteSet, EventFilter, Ipv4Match, Ipv6Match, Logic, MarkMatch, MatchSet, MAX_INSNS,
};
use conntrack_codec::nfnl::{msg_type, Subsystem};
use conntrack_codec::nl::{flags, Writer};
use conntrack_codec::Error;
use conntrack_fuzz::arb::AConntrack;
use conntrack_fuzz::bpf::{kernel_check, run, wants, Fault};
use libfuzzer_sys::fuzz_target;

/// Enough room per set to reach the kernel's 4096-instruction limit.
const CAP: usize = 512;

#[derive(Arbitrary, Debug)]
struct ASet<T> {
    negative: bool,
    items: Vec<T>,
}

impl<T> ASet<T> {
    fn logic(&self) -> Logic {
        if self.negative {
            Logic::Negative
        } else {
            Logic::Positive
        }
    }
}

#[derive(Arbitrary, Debug)]
struct AFilter {
    l4proto: ASet<u8>,
    tcp_state: ASet<u8>,
    sctp_state: ASet<u8>,
    ipv4: [ASet<([u8; 4], [u8; 4])>; 2],
    ipv6: [ASet<([u8; 16], [u8; 16])>; 2],
    mark: ASet<(u32, u32)>,
    zone: ASet<u16>,
}

fn bytes(s: &ASet<u8>) -> ByteSet {
    let mut set = ByteSet::new(s.logic());
    for v in &s.items {
        set.insert(*v);
    }
    set
}

fn matches<A: Copy, T>(s: &ASet<A>, f: impl Fn(A) -> T) -> MatchSet<T, CAP> {
    let mut set = MatchSet::new(s.logic());
    for v in &s.items {
        if set.push(f(*v)).is_err() {
            assert_eq!(set.len(), CAP);
            break;
        }
    }
    set
}

impl AFilter {
    fn get(&self) -> EventFilter<CAP> {
        let v4 = |(a, m): ([u8; 4], [u8; 4])| Ipv4Match {
            addr: a.into(),
            mask: m.into(),
        };
        let v6 = |(a, m): ([u8; 16], [u8; 16])| Ipv6Match {
            addr: a.into(),
            mask: m.into(),
        };
        EventFilter {
            l4proto: bytes(&self.l4proto),
            tcp_state: bytes(&self.tcp_state),
            sctp_state: bytes(&self.sctp_state),
            ipv4_src: matches(&self.ipv4[0], v4),
            ipv4_dst: matches(&self.ipv4[1], v4),
            ipv6_src: matches(&self.ipv6[0], v6),
            ipv6_dst: matches(&self.ipv6[1], v6),
            mark: matches(&self.mark, |(value, mask)| MarkMatch { value, mask }),
            zone: matches(&self.zone, |z| z),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    filter: AFilter,
    entry: AConntrack,
    /// Message number (only 0 NEW and 2 DELETE are events), flags, or another type.
    event: (bool, u16),
    other_kind: u16,
    packet: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let f = input.filter.get();
    let mut out = vec![BpfInsn::default(); MAX_INSNS];
    let len = match (f.program_len(), f.compile(&mut out)) {
        (Ok(len), Ok(n)) => {
            assert_eq!(len, n);
            n
        }
        (Err(e), Err(e2)) => {
            assert_eq!(e, Error::TooLong("BPF program"));
            assert_eq!(e2, e);
            return;
        }
        other => panic!("program_len and compile disagree: {other:?}"),
    };
    let prog = &out[..len];
    if let Err(e) = kernel_check(prog) {
        panic!("the kernel would refuse the program: {e}\n{f:?}");
    }
    // One instruction short: refused, and nothing written.
    let mut short = vec![BpfInsn::stmt(0xdead, 0); len - 1];
    assert_eq!(f.compile(&mut short), Err(Error::BufferTooSmall));
    assert!(short.iter().all(|i| i.code == 0xdead));

    // Arbitrary bytes: any verdict, or a fault (the kernel drops the message).
    let _ = run(prog, &input.packet);

    // A well-formed message from an arbitrary entry.
    let r: ConntrackRepr = input.entry.get();
    let (is_event, kind, fl) = if input.event.0 {
        let msg = if input.event.1 & 0x8000 != 0 { 2 } else { 0 };
        (
            true,
            msg_type(Subsystem::Ctnetlink, msg),
            input.event.1 & !flags::MULTI,
        )
    } else if matches!(input.other_kind, 0x100 | 0x102) {
        (false, input.other_kind, input.event.1 | flags::MULTI)
    } else {
        (false, input.other_kind, input.event.1)
    };
    let mut buf = vec![0u8; r.buffer_len()];
    let mut w = Writer::new(&mut buf);
    r.emit(&mut w, kind, fl, 0).expect("buffer_len() bytes");
    let want = !is_event || wants(&f, &r);
    match run(prog, &buf) {
        Ok(v) => assert_eq!(
            v != 0,
            want,
            "filter {f:?}\nentry {r:?}\nkind {kind:#x} flags {fl:#x}"
        ),
        Err(Fault(at)) => panic!("load out of bounds at {at} on a well-formed message"),
    }
});
