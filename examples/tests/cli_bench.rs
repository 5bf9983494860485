//! Listing and deleting a large table with conntrack-tools 1.4.7 and with `conntrack`, side
//! by side in a throwaway namespace, several runs interleaved; prints the medians and the
//! ratios. Ignored by default (it takes a while): run it with `scripts/cli-bench`, or
//! `cargo test --release -p conntrack-examples --test cli_bench -- --ignored --nocapture`.
//! `CLI_BENCH_ENTRIES` (default 100000) and `CLI_BENCH_RUNS` (default 5) change the size
//! and the number of runs.

mod cli_support;

use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::time::Instant;

use cli_support::{need_reference, ours, Netns, REAL};
use conntrack_codec::ct::{ConntrackRepr, ProtoInfo, Status, TcpInfo, TcpState, Tuple};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Fills the table with `n` established TCP entries, many per datagram.
fn fill(ns: &Netns, n: usize) {
    let mut sock = ns.socket();
    let _ = sock.set_rcvbuf(16 << 20);
    let entries: Vec<ConntrackRepr> = (0..n)
        .map(|i| {
            let i = u32::try_from(i).expect("count");
            let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i >> 10)));
            let dst = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
            let orig = Tuple::tcp(src, dst, 10_000 + (i & 1023) as u16, 443);
            ConntrackRepr {
                family: 2,
                orig: Some(orig),
                reply: Some(orig.inverted()),
                status: Some(Status::SEEN_REPLY | Status::ASSURED),
                protoinfo: Some(ProtoInfo::Tcp(TcpInfo {
                    state: Some(TcpState::Established),
                    ..TcpInfo::default()
                })),
                timeout: Some(3600),
                ..ConntrackRepr::default()
            }
        })
        .collect();
    let mut failed = 0;
    let mut first = None;
    sock.create_batch(&entries, 512, |_, r| {
        if let Err(e) = r {
            failed += 1;
            first.get_or_insert(e);
        }
    })
    .expect("bulk create");
    assert_eq!(failed, 0, "entries not created: {first:?}");
}

/// Seconds one run of `prog args` takes in the namespace, output to /dev/null.
fn time(ns: &Netns, prog: &str, args: &[&str]) -> f64 {
    let t0 = Instant::now();
    let status = ns
        .command(prog)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run");
    let secs = t0.elapsed().as_secs_f64();
    assert!(status.success(), "{prog} {args:?} failed");
    secs
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
#[ignore = "a benchmark: run with scripts/cli-bench"]
fn list_and_delete_side_by_side() {
    need_reference();
    let n = env("CLI_BENCH_ENTRIES", 100_000);
    let runs = env("CLI_BENCH_RUNS", 5);
    let ns = Netns::new("clibench");
    let (mut list_real, mut list_ours, mut del_real, mut del_ours) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    fill(&ns, n);
    for run in 0..runs {
        // Interleaved, the order swapped every run.
        let order: [(&str, bool); 2] = if run % 2 == 0 {
            [(REAL, true), (ours(), false)]
        } else {
            [(ours(), false), (REAL, true)]
        };
        for (prog, real) in order {
            let t = time(&ns, prog, &["-L"]);
            if real {
                list_real.push(t)
            } else {
                list_ours.push(t)
            }
        }
        for (prog, real) in order {
            let t = time(&ns, prog, &["-D"]);
            if real {
                del_real.push(t)
            } else {
                del_ours.push(t)
            }
            fill(&ns, n);
        }
    }
    let (lr, lo, dr, d_o) = (
        median(list_real),
        median(list_ours),
        median(del_real),
        median(del_ours),
    );
    println!(
        "table of {n} IPv4 TCP entries, {runs} runs interleaved, medians (output to /dev/null):"
    );
    println!(
        "  conntrack -L   conntrack-tools 1.4.7 {lr:.3} s   ours {lo:.3} s   {:.2}x faster",
        lr / lo
    );
    println!(
        "  conntrack -D   conntrack-tools 1.4.7 {dr:.3} s   ours {d_o:.3} s   {:.2}x faster",
        dr / d_o
    );
}
