//! The memory target of the benchmark (`docs/performance.md`): the peak resident set of a
//! process that dumps 250k entries, reading every field of each, is within 10% of one that
//! dumps 10k. Each dump runs in a fresh child process (this test binary run again, with
//! `CTRS_RSS_CHILD` naming the namespace), which reports its `VmHWM`. No timing is asserted.

use std::ops::ControlFlow;
use std::process::Command;

use conntrack_codec::filter::DumpFilter;
use conntrack_io::Socket;
use conntrack_tests::{bulk_create, Netns};

const CHILD: &str = "CTRS_RSS_CHILD";

/// Peak resident set size of this process, in KiB.
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// In the child: dumps the table of the namespace named by `CTRS_RSS_CHILD`, every field of
/// every entry read, and prints `entries VmHWM`. In the parent test run: does nothing.
#[test]
fn rss_child() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    let mut sock = Socket::open_in_netns(path).expect("socket");
    let mut n = 0u64;
    let mut h = 0u64;
    let summary = sock
        .list(&DumpFilter::default(), |v| {
            h = h
                .wrapping_add(u64::from(v.mark().unwrap().unwrap_or(0)))
                .wrapping_add(
                    v.orig()
                        .unwrap()
                        .map_or(0, |t| u64::from(t.src_port.unwrap_or(0))),
                )
                .wrapping_add(
                    v.reply()
                        .unwrap()
                        .map_or(0, |t| u64::from(t.dst_port.unwrap_or(0))),
                )
                .wrapping_add(u64::from(v.timeout().unwrap().unwrap_or(0)))
                .wrapping_add(u64::from(v.status().unwrap().map_or(0, |s| s.0)));
            std::hint::black_box(v.protoinfo().unwrap());
            std::hint::black_box(v.synproxy().unwrap());
            n += 1;
            ControlFlow::Continue(())
        })
        .expect("dump");
    assert!(!summary.interrupted);
    std::hint::black_box(h);
    println!("RSS {n} {}", vm_hwm_kib());
}

/// Runs [`rss_child`] in a new process against `ns`; returns (entries, peak KiB).
fn dump_in_child(ns: &Netns) -> (u64, u64) {
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["rss_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, ns.path())
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("RSS ").map(|(_, v)| v))
        .unwrap_or_else(|| panic!("no RSS line in: {stdout}"));
    let mut it = line
        .split_whitespace()
        .map(|v| v.parse::<u64>().expect("number"));
    (it.next().expect("entries"), it.next().expect("kib"))
}

#[test]
fn peak_rss_of_a_250k_dump_is_within_10_percent_of_a_10k_dump() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let ns = Netns::new("perf-rss");
    let mut sock = ns.socket();
    bulk_create(&mut sock, 0, 10_000);
    let (small, small_kib) = dump_in_child(&ns);
    bulk_create(&mut sock, 10_000, 250_000);
    let (large, large_kib) = dump_in_child(&ns);
    eprintln!("peak RSS: {small} entries {small_kib} KiB, {large} entries {large_kib} KiB");
    assert_eq!((small, large), (10_000, 250_000));
    assert!(
        large_kib * 10 <= small_kib * 11,
        "{large_kib} KiB for {large} entries vs {small_kib} KiB for {small}"
    );
    // Leave the namespace's table empty for its removal.
    sock.flush(&DumpFilter::default()).expect("flush");
}
