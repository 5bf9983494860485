//! Micro-benchmarks of the codec's hot paths, over a kernel capture of 2000 IPv4 TCP dump
//! entries (`codec/fixtures/dump_ipv4_tcp_2000.bin`): message iteration, attribute lookup
//! through the view, every field through the view, the full `ConntrackRepr` parse, emitting
//! requests and entries, and the `conntrack -L` text.
//!
//! `cargo bench -p conntrack-bench` (add `-- --quick` for a short run). Rates are per entry.

use std::fmt::Write as _;
use std::hint::black_box;

use conntrack_codec::ct::{request, Conntrack, ConntrackRepr};
use conntrack_codec::fmt::{CtLine, Origin, Output};
use conntrack_codec::nfnl::NfMsg;
use conntrack_codec::nl::{msgtype, Messages, NlMsg, Writer};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const CAPTURE: &[u8] = include_bytes!("../../codec/fixtures/dump_ipv4_tcp_2000.bin");

fn entries() -> impl Iterator<Item = NlMsg<'static>> {
    Messages::new(CAPTURE)
        .map(|m| m.expect("the fixture is well formed"))
        .filter(|m| m.kind() >= msgtype::MIN_TYPE)
}

/// Reads every field of an entry through the view's getters and adds a few up.
fn every_field(v: &Conntrack<'_>) -> conntrack_codec::Result<u64> {
    let mut h = 0u64;
    for t in [v.orig()?, v.reply()?, v.master()?].iter().flatten() {
        h = h.wrapping_add(u64::from(t.src_port.unwrap_or(0)));
    }
    h = h.wrapping_add(u64::from(v.status()?.map_or(0, |s| s.0)));
    h = h.wrapping_add(u64::from(v.timeout()?.unwrap_or(0)));
    h = h.wrapping_add(u64::from(v.mark()?.unwrap_or(0)));
    h = h.wrapping_add(u64::from(v.use_count()?.unwrap_or(0)));
    h = h.wrapping_add(u64::from(v.id()?.unwrap_or(0)));
    h = h.wrapping_add(u64::from(v.zone()?.unwrap_or(0)));
    h = h.wrapping_add(u64::from(v.secmark()?.unwrap_or(0)));
    black_box(v.counters_orig()?);
    black_box(v.counters_reply()?);
    black_box(v.protoinfo()?);
    black_box(v.timestamp()?);
    black_box(v.labels()?);
    black_box(v.helper_name()?);
    black_box(v.secctx()?);
    black_box(v.seq_adj_orig()?);
    black_box(v.seq_adj_reply()?);
    black_box(v.synproxy()?);
    Ok(h)
}

fn parsing(c: &mut Criterion) {
    let n = entries().count() as u64;
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(n));
    g.bench_function("messages", |b| {
        b.iter(|| {
            Messages::new(black_box(CAPTURE))
                .filter(|m| m.is_ok())
                .count()
        })
    });
    g.bench_function("view", |b| {
        b.iter(|| {
            entries()
                .map(|m| Conntrack::parse(black_box(m)).expect("view"))
                .fold(0u16, |n, v| n.wrapping_add(v.unknown_count()))
        })
    });
    g.bench_function("view_lookup_mark", |b| {
        b.iter(|| {
            entries()
                .map(|m| Conntrack::parse(black_box(m)).expect("view"))
                .map(|v| v.mark().expect("mark").unwrap_or(0))
                .fold(0u32, u32::wrapping_add)
        })
    });
    g.bench_function("view_every_field", |b| {
        b.iter(|| {
            entries()
                .map(|m| every_field(&Conntrack::parse(black_box(m)).expect("view")))
                .map(|h| h.expect("fields"))
                .fold(0u64, u64::wrapping_add)
        })
    });
    g.bench_function("repr", |b| {
        b.iter(|| {
            entries()
                .map(|m| ConntrackRepr::parse_msg(black_box(m)).expect("repr"))
                .map(|r| r.mark.unwrap_or(0))
                .fold(0u32, u32::wrapping_add)
        })
    });
    g.bench_function("repr_into", |b| {
        let mut r = ConntrackRepr::default();
        b.iter(|| {
            let mut marks = 0u32;
            for m in entries() {
                let nf = NfMsg::new_checked(black_box(m)).expect("nfnetlink");
                r.parse_into(&nf).expect("repr");
                marks = marks.wrapping_add(black_box(&r).mark.unwrap_or(0));
            }
            marks
        })
    });
    g.finish();
}

fn emitting(c: &mut Criterion) {
    let reprs: Vec<ConntrackRepr> = entries()
        .map(|m| ConntrackRepr::parse_msg(m).expect("repr"))
        .collect();
    let mut buf = vec![0u8; 4096];
    let mut g = c.benchmark_group("emit");
    g.throughput(Throughput::Elements(reprs.len() as u64));
    g.bench_function("create_request", |b| {
        b.iter(|| {
            let mut total = 0;
            for (seq, e) in (1u32..).zip(&reprs) {
                let mut w = Writer::new(&mut buf);
                total += request::create(&mut w, seq, black_box(e))
                    .expect("create")
                    .len();
            }
            total
        })
    });
    g.bench_function("entry", |b| {
        b.iter(|| {
            let mut total = 0;
            for (seq, e) in (1u32..).zip(&reprs) {
                let mut w = Writer::new(&mut buf);
                total += black_box(e)
                    .emit(&mut w, 0x100, 2, seq)
                    .expect("emit")
                    .len();
            }
            total
        })
    });
    g.finish();
}

/// A `fmt::Write` that only counts.
struct Sink(usize);

impl std::fmt::Write for Sink {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += black_box(s).len();
        Ok(())
    }
}

fn formatting(c: &mut Criterion) {
    let reprs: Vec<ConntrackRepr> = entries()
        .map(|m| ConntrackRepr::parse_msg(m).expect("repr"))
        .collect();
    let out = Output {
        now: 1_700_000_000,
        ..Output::default()
    };
    let extended = Output {
        extended: true,
        id: true,
        ..out
    };
    let mut g = c.benchmark_group("format");
    g.throughput(Throughput::Elements(reprs.len() as u64));
    g.bench_function("default", |b| {
        b.iter(|| {
            let mut s = Sink(0);
            for e in &reprs {
                writeln!(s, "{}", CtLine::new(black_box(e), Origin::Dump, &out, &()))
                    .expect("sink");
            }
            s.0
        })
    });
    g.bench_function("extended_id", |b| {
        b.iter(|| {
            let mut s = Sink(0);
            for e in &reprs {
                writeln!(
                    s,
                    "{}",
                    CtLine::new(black_box(e), Origin::Dump, &extended, &())
                )
                .expect("sink");
            }
            s.0
        })
    });
    g.bench_function("parse_and_format", |b| {
        b.iter(|| {
            let mut s = Sink(0);
            for m in entries() {
                let e = ConntrackRepr::parse_msg(black_box(m)).expect("repr");
                writeln!(s, "{}", CtLine::new(&e, Origin::Dump, &out, &())).expect("sink");
            }
            s.0
        })
    });
    g.bench_function("view", |b| {
        b.iter(|| {
            let mut s = Sink(0);
            for m in entries() {
                let v = Conntrack::parse(black_box(m)).expect("view");
                let line = CtLine::from_view(&v, Origin::Dump, &out, &()).expect("line");
                writeln!(s, "{line}").expect("sink");
            }
            s.0
        })
    });
    g.finish();
}

criterion_group!(benches, parsing, emitting, formatting);
criterion_main!(benches);
