//! Listing, updating and deleting a large table with conntrack-tools 1.4.7 and with
//! `conntrack`, side by side in a throwaway namespace, several runs interleaved; prints the
//! medians and the ratios; and the peak memory (RSS) of `-U` and `-D` of each on a table of
//! 250,000 entries. With `CLI_BENCH_RAWDUMP` naming the C yardstick (`bench/ctbench.c`,
//! which `scripts/cli-bench` builds), its `rawdump` (a bare receive loop over the same dump:
//! the kernel's limit) joins the listing runs, and our `-L` is given as a multiple of its
//! time. Ignored by default (it takes a while): run it with `scripts/cli-bench`,
//! or `cargo test --release -p conntrack-tests --test cli_bench -- --ignored --nocapture`.
//! `CLI_BENCH_ENTRIES` (default 100000) and `CLI_BENCH_RUNS` (default 5) change the size
//! and the number of runs of the timings, `CLI_BENCH_RSS_ENTRIES` (default 250000) the
//! size of the memory runs (`nf_conntrack_max` is 262144 here, for every namespace).

mod cli_support;

use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::time::Instant;

use cli_support::{need_reference, ours, Netns, REAL};
use conntrack_codec::ct::{ConntrackRepr, Tuple};

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
            ConntrackRepr::replied(orig, 3600)
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

/// The peak RSS, in KiB, of one run of `prog args` in the namespace (GNU time's `%M`),
/// and the program's last line on stderr.
fn peak_rss(ns: &Netns, prog: &str, args: &[&str]) -> (u64, String) {
    let out = ns
        .command("/usr/bin/time")
        .args(["-f", "RSS %M", prog])
        .args(args)
        .stdout(Stdio::null())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rss = stderr
        .lines()
        .find_map(|l| l.strip_prefix("RSS ")?.trim().parse().ok())
        .expect("GNU time's report");
    let last = stderr
        .lines()
        .rfind(|l| !l.starts_with("RSS ") && !l.starts_with("Command exited"))
        .unwrap_or_default()
        .to_string();
    (rss, last)
}

/// Seconds one run of the C yardstick's `rawdump` takes in the namespace, started as the
/// listings are; it must have received `n` entries (its one line: `rawdump N SECS RATE`).
fn time_rawdump(ns: &Netns, prog: &str, n: usize) -> f64 {
    let t0 = Instant::now();
    let out = ns
        .command(prog)
        .arg("rawdump")
        .stderr(Stdio::null())
        .output()
        .expect("run rawdump");
    let secs = t0.elapsed().as_secs_f64();
    assert!(out.status.success(), "{prog} rawdump failed");
    let line = String::from_utf8_lossy(&out.stdout);
    let count = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<usize>().ok());
    assert_eq!(count, Some(n), "rawdump: {line}");
    secs
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
#[ignore = "a benchmark: run with scripts/cli-bench"]
fn list_update_and_delete_side_by_side() {
    need_reference();
    let n = env("CLI_BENCH_ENTRIES", 100_000);
    let runs = env("CLI_BENCH_RUNS", 5);
    let ns = Netns::new("clibench");
    let rawdump = std::env::var("CLI_BENCH_RAWDUMP").ok();
    let (mut list_real, mut list_ours, mut list_raw, mut del_real, mut del_ours) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut upd_real, mut upd_ours) = (Vec::new(), Vec::new());
    let mut ratios = Vec::new();
    fill(&ns, n);
    for run in 0..runs {
        // Interleaved: the three listings in an order rotated every run, then the deletes in
        // an order swapped every run.
        let (mut ours_t, mut raw_t) = (None, None);
        for i in 0..3 {
            match (run + i) % 3 {
                0 => list_real.push(time(&ns, REAL, &["-L"])),
                1 => ours_t = Some(time(&ns, ours(), &["-L"])),
                _ => raw_t = rawdump.as_deref().map(|r| time_rawdump(&ns, r, n)),
            }
        }
        list_ours.extend(ours_t);
        list_raw.extend(raw_t);
        if let (Some(o), Some(r)) = (ours_t, raw_t) {
            ratios.push(o / r);
        }
        let order: [(&str, bool); 2] = if run % 2 == 0 {
            [(REAL, true), (ours(), false)]
        } else {
            [(ours(), false), (REAL, true)]
        };
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
    match rawdump {
        Some(_) => println!(
            "  raw dump (C yardstick's rawdump) {:.3} s: our conntrack -L takes {:.3}x its time \
             (median of the per-run ratios; target: at most 1.1x)",
            median(list_raw),
            median(ratios)
        ),
        None => println!(
            "  (CLI_BENCH_RAWDUMP not set: -L not compared with the raw dump; scripts/cli-bench \
             sets it)"
        ),
    }
    // 1.4.7's -U reads the replies of its updates out of step: one more datagram waits in
    // its queue after each entry, and past a few hundred entries it fails with ENOBUFS. It
    // is timed on a table it can update.
    let nu = env("CLI_BENCH_UPDATE_ENTRIES", 200);
    let ns = Netns::new("clibenchu");
    fill(&ns, nu);
    for run in 0..runs {
        let order: [(&str, bool); 2] = if run % 2 == 0 {
            [(REAL, true), (ours(), false)]
        } else {
            [(ours(), false), (REAL, true)]
        };
        for (i, (prog, real)) in order.into_iter().enumerate() {
            // A mark the entries do not have yet, so that every one is updated.
            let mark = (run * 2 + i + 1).to_string();
            let t = time(&ns, prog, &["-U", "-f", "ipv4", "-p", "tcp", "-m", &mark]);
            if real {
                upd_real.push(t)
            } else {
                upd_ours.push(t)
            }
        }
    }
    let (ur, uo) = (median(upd_real), median(upd_ours));
    println!(
        "  conntrack -U -f ipv4 -p tcp -m M ({nu} entries)   conntrack-tools 1.4.7 {ur:.3} s   ours {uo:.3} s   {:.2}x faster",
        ur / uo
    );
}

#[test]
#[ignore = "a benchmark: run with scripts/cli-bench"]
fn peak_memory_of_changes_side_by_side() {
    need_reference();
    let n = env("CLI_BENCH_RSS_ENTRIES", 250_000);
    let ns = Netns::new("clirss");
    println!("peak RSS on a table of {n} IPv4 TCP entries (GNU time, KiB):");
    for (what, args) in [
        (
            "-U -f ipv4 -p tcp -m 5",
            &["-U", "-f", "ipv4", "-p", "tcp", "-m", "5"][..],
        ),
        ("-D -p tcp", &["-D", "-p", "tcp"]),
    ] {
        let mut line = format!("  conntrack {what}:");
        for (name, prog) in [("conntrack-tools 1.4.7", REAL), ("ours", ours())] {
            let _ = ns.command(REAL).arg("-F").output();
            fill(&ns, n);
            let (kib, last) = peak_rss(&ns, prog, args);
            line.push_str(&format!("\n    {name}: {kib} KiB ({last})"));
        }
        println!("{line}");
    }
}
