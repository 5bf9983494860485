//! What the live tests of the program share: the two binaries, veth links between
//! throwaway namespaces, waiting for a daemon.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use conntrack_tests::Netns;

/// Debian's conntrackd.
pub const REAL: &str = "/usr/sbin/conntrackd";

/// Our binary.
pub fn ours() -> &'static str {
    env!("CARGO_BIN_EXE_conntrackd")
}

/// Fails the test unless Debian's conntrackd 1.4.7 is there: the tests that compare with
/// it are not passed off as green without it.
pub fn need_real() {
    let version = Command::new(REAL).arg("-v").output();
    assert!(
        version.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("v1.4.7")),
        "{REAL} 1.4.7 (Debian package conntrackd) is needed for this test; .ci/run installs it"
    );
}

/// Joins `a` and `b` with a veth pair: interface `ia` with `addr_a`/24 in `a`, `ib` with
/// `addr_b`/24 in `b`, both up.
pub fn veth(a: &Netns, b: &Netns, (ia, addr_a): (&str, &str), (ib, addr_b): (&str, &str)) {
    veth_bare(a, ia, b, ib);
    a.run("ip", &["addr", "add", &format!("{addr_a}/24"), "dev", ia]);
    b.run("ip", &["addr", "add", &format!("{addr_b}/24"), "dev", ib]);
}

/// Joins `a` and `b` with a veth pair without addresses: `ia` in `a`, `ib` in `b`, both up.
pub fn veth_bare(a: &Netns, ia: &str, b: &Netns, ib: &str) {
    let ok = Command::new("ip")
        .args(["link", "add", ia, "netns", a.name(), "type", "veth"])
        .args(["peer", "name", ib, "netns", b.name()])
        .status()
        .expect("ip")
        .success();
    assert!(ok, "veth pair {ia}-{ib}");
    a.run("ip", &["link", "set", ia, "up"]);
    b.run("ip", &["link", "set", ib, "up"]);
}

/// Waits until `path` exists (`true`) or stops existing (`false`), 10 s at most.
pub fn wait_path(path: &Path, exists: bool) {
    let t = Instant::now();
    while path.exists() != exists {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{} {}",
            path.display(),
            if exists { "never appeared" } else { "stayed" }
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A daemon's configuration: FTFW over UDP from `me` to `peer` on `dev`, its files named
/// `name` in `dir`; `rcvbuf` sizes the link's receive buffer (conntrackd's default drops
/// datagrams of a fast burst, which its FTFW does not recover).
pub fn conf_text(dir: &Path, name: &str, link: (&str, &str, &str, u16), rcvbuf: bool) -> String {
    conf_text_with(dir, name, link, rcvbuf, "")
}

/// [`conf_text`] with `sync_extra` added to the `Sync` section (an `Options { }` block).
pub fn conf_text_with(
    dir: &Path,
    name: &str,
    (me, peer, dev, port): (&str, &str, &str, u16),
    rcvbuf: bool,
    sync_extra: &str,
) -> String {
    let d = dir.display();
    let rcv = if rcvbuf {
        "\t\tRcvSocketBuffer 8388608\n"
    } else {
        ""
    };
    format!(
        "Sync {{\n\tMode FTFW {{\n\t}}\n\tUDP {{\n\t\tIPv4_address {me}\n\t\tIPv4_Destination_Address {peer}\n\t\tPort {port}\n\t\tInterface {dev}\n{rcv}\t\tChecksum on\n\t}}\n{sync_extra}}}\nGeneral {{\n\tHashSize 32768\n\tHashLimit 131072\n\tLogFile {d}/{name}.log\n\tLockFile {d}/{name}.lock\n\tUNIX {{ Path {d}/{name}.sock }}\n\tNetlinkBufferSize 33554432\n\tNetlinkBufferSizeMaxGrowth 67108864\n}}\n"
    )
}

/// Stops every daemon started with the configuration file `conf`: `-k` first, then SIGTERM
/// to the processes whose command line names that file (found in /proc), so a failed test
/// leaves no daemon behind.
pub fn stop_daemons(ns: &Netns, prog: &str, conf: &Path) {
    let c = conf.to_string_lossy().into_owned();
    if conf.exists() {
        let _ = ns.exec(prog, &["-C", &c, "-k"]);
    }
    let t = Instant::now();
    loop {
        let pids = pids_with(&c);
        if pids.is_empty() {
            return;
        }
        if t.elapsed() > Duration::from_secs(2) {
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "daemons of {c} do not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The processes whose command line has the argument `arg`.
pub fn pids_with(arg: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if cmd.split(|b| *b == 0).any(|a| a == arg.as_bytes()) {
            out.push(pid);
        }
    }
    out
}
