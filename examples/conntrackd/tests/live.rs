//! Live tests against Debian's conntrackd 1.4.7, each in throwaway network namespaces
//! joined by a veth pair (traffic only on that link): the control protocol both ways
//! (our client with their daemon, their client with ours), the internal cache listed
//! identically over the same kernel table, and the daemon's life (`-d`, lock file, log
//! file, `-k`). Skipped, saying so, when /usr/sbin/conntrackd is not 1.4.7.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use conntrack_tests::Netns;

mod support;
use support::{need_real, ours, wait_path, REAL};

/// Two namespaces joined by a veth pair, 192.168.77.1 and .2, and a scratch directory.
struct Pair {
    a: Netns,
    /// The link's other end (the daemons in `a` send their sync traffic there).
    _peer: Netns,
    dir: PathBuf,
}

impl Pair {
    fn new(tag: &str) -> Pair {
        let a = Netns::new(&format!("{tag}a"));
        let b = Netns::new(&format!("{tag}b"));
        let dir = std::env::temp_dir().join(format!("{}-dir", a.name()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        support::veth(&a, &b, ("cdv0", "192.168.77.1"), ("cdv1", "192.168.77.2"));
        Pair { a, _peer: b, dir }
    }

    /// A configuration for a daemon in `a` (name `n`), syncing to `b`.
    fn conf(&self, n: &str, port: u16) -> PathBuf {
        let text = support::conf_text(
            &self.dir,
            n,
            ("192.168.77.1", "192.168.77.2", "cdv0", port),
            false,
        );
        let p = self.dir.join(format!("{n}.conf"));
        std::fs::write(&p, text).expect("write conf");
        p
    }
}

impl Pair {
    /// Starts `prog -C conf -d` in `a` as daemon `name`; returns its pid once its control
    /// socket is there.
    fn start(&self, name: &str, prog: &str, conf: &std::path::Path) -> i32 {
        let c = conf.to_str().expect("path");
        assert!(
            exec(&self.a, prog, &["-C", c, "-d"]).status.success(),
            "{name}"
        );
        wait_path(&self.dir.join(format!("{name}.sock")), true);
        support::pids_with(c)
            .into_iter()
            .next()
            .expect("the daemon's pid")
    }

    /// Stops daemon `name` with `-k` and waits for its lock file to go.
    fn stop(&self, name: &str, prog: &str, conf: &std::path::Path) {
        let c = conf.to_str().expect("path");
        assert!(
            exec(&self.a, prog, &["-C", c, "-k"]).status.success(),
            "{name}"
        );
        wait_path(&self.dir.join(format!("{name}.lock")), false);
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        // Whatever a test left running (a failed assertion skips its `-k`).
        for name in ["real", "ours"] {
            let conf = self.dir.join(format!("{name}.conf"));
            let prog = if name == "real" { REAL } else { ours() };
            support::stop_daemons(&self.a, prog, &conf);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn exec(ns: &Netns, prog: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            "bash",
            "-c",
            "exec -a conntrackd \"$0\" \"$@\"",
            prog,
        ])
        .args(args)
        .output()
        .expect("run")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Masks the ages of cache lines and the uptime, which differ between two listings.
fn mask(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let line = match line.rfind(" [active since ") {
            Some(i) => format!("{} [active since N]", &line[..i]),
            None => line.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn sorted(s: &str) -> Vec<String> {
    let mut v: Vec<String> = mask(s).lines().map(str::to_string).collect();
    v.sort();
    v
}

/// Makes entries of several kinds in `ns`'s table.
fn fill(ns: &Netns, n: u16) {
    for i in 1..=n {
        let src = format!("10.{}.{}.1", i / 200, i % 200);
        let port = i.to_string();
        let _ = ns.exec(
            "conntrack",
            &[
                "-I", "-s", &src, "-d", "10.9.0.1", "-p", "udp", "--sport", &port, "--dport", "53",
                "-t", "100",
            ],
        );
    }
    let _ = ns.exec(
        "conntrack",
        &[
            "-I",
            "-s",
            "1.1.1.1",
            "-d",
            "2.2.2.2",
            "-p",
            "tcp",
            "--sport",
            "10",
            "--dport",
            "20",
            "--state",
            "ESTABLISHED",
            "-t",
            "100",
            "-m",
            "7",
            "-u",
            "ASSURED",
        ],
    );
    let _ = ns.exec(
        "conntrack",
        &[
            "-I",
            "-s",
            "::1",
            "-d",
            "::2",
            "-p",
            "icmpv6",
            "--icmpv6-type",
            "128",
            "--icmpv6-code",
            "0",
            "--icmpv6-id",
            "5",
            "-t",
            "30",
        ],
    );
    let _ = ns.exec(
        "conntrack",
        &[
            "-I",
            "-s",
            "10.0.0.1",
            "-d",
            "10.0.0.2",
            "-p",
            "sctp",
            "--sport",
            "5",
            "--dport",
            "6",
            "--state",
            "ESTABLISHED",
            "--orig-vtag",
            "1",
            "--reply-vtag",
            "2",
            "-t",
            "50",
        ],
    );
    let _ = ns.exec(
        "conntrack",
        &[
            "-I",
            "-s",
            "10.0.0.1",
            "-d",
            "10.0.0.2",
            "-p",
            "icmp",
            "--icmp-type",
            "8",
            "--icmp-code",
            "0",
            "--icmp-id",
            "9",
            "-t",
            "30",
            "--zone",
            "3",
        ],
    );
}

#[test]
fn internal_cache_and_clients_match_conntrackd() {
    need_real();
    let p = Pair::new("cdi");
    let real_conf = p.conf("real", 3780);
    let our_conf = p.conf("ours", 3781);
    let (rc, oc) = (
        real_conf.to_str().expect("path"),
        our_conf.to_str().expect("path"),
    );
    // Half the entries exist before the daemons start (a dump), half come after (events).
    fill(&p.a, 20);
    assert!(exec(&p.a, REAL, &["-C", rc, "-d"]).status.success());
    assert!(exec(&p.a, ours(), &["-C", oc, "-d"]).status.success());
    wait_path(&p.dir.join("real.sock"), true);
    wait_path(&p.dir.join("ours.sock"), true);
    for i in 100..130u16 {
        let port = i.to_string();
        let _ = p.a.exec(
            "conntrack",
            &[
                "-I", "-s", "10.7.0.1", "-d", "10.9.0.1", "-p", "tcp", "--sport", &port, "--dport",
                "80", "--state", "SYN_SENT", "-t", "100",
            ],
        );
    }
    let _ = p.a.exec("conntrack", &["-D", "-p", "udp", "--sport", "3"]);
    let _ = p.a.exec(
        "conntrack",
        &["-U", "-p", "tcp", "--sport", "10", "-m", "42"],
    );
    std::thread::sleep(Duration::from_millis(500));

    // The same kernel table, listed by both daemons: the same lines.
    let real_i = text(&exec(&p.a, REAL, &["-C", rc, "-i"]));
    let our_i = text(&exec(&p.a, ours(), &["-C", oc, "-i"]));
    assert!(real_i.lines().count() > 50, "{real_i}");
    assert_eq!(sorted(&our_i), sorted(&real_i));
    let real_x = text(&exec(&p.a, REAL, &["-C", rc, "-i", "-x"]));
    let our_x = text(&exec(&p.a, ours(), &["-C", oc, "-i", "-x"]));
    assert_eq!(sorted(&our_x), sorted(&real_x));
    let real_e = exec(&p.a, REAL, &["-C", rc, "-e"]);
    let our_e = exec(&p.a, ours(), &["-C", oc, "-e"]);
    assert_eq!(text(&our_e), text(&real_e));
    println!(
        "internal caches: {} entries listed identically (sorted)",
        real_i.lines().count()
    );

    // Our client against their daemon and their client against ours: byte for byte what
    // each daemon's own client prints, and the same exit status.
    for args in [
        &["-i"][..],
        &["-s", "cache"],
        &["-s", "queue"],
        &["-s", "network"],
        &["-e"],
        &["-f", "external"],
    ] {
        for conf in [rc, oc] {
            let mut full = vec!["-C", conf];
            full.extend_from_slice(args);
            // The daemon's counters move between two requests (keepalives to the peer):
            // a few tries to catch both clients on the same state.
            let mut last = None;
            for _ in 0..5 {
                let theirs = exec(&p.a, REAL, &full);
                let mine = exec(&p.a, ours(), &full);
                let same = mask(&text(&mine)) == mask(&text(&theirs))
                    && mine.status.code() == theirs.status.code();
                if same {
                    last = None;
                    break;
                }
                last = Some((text(&mine), text(&theirs)));
            }
            if let Some((mine, theirs)) = last {
                assert_eq!(mask(&mine), mask(&theirs), "{full:?}");
            }
        }
    }
    // Their -k stops ours, ours stops theirs.
    assert!(exec(&p.a, REAL, &["-C", oc, "-k"]).status.success());
    assert!(exec(&p.a, ours(), &["-C", rc, "-k"]).status.success());
    let t = Instant::now();
    while p.dir.join("ours.lock").exists() || p.dir.join("real.lock").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "a daemon did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!p.dir.join("ours.sock").exists());
}

#[test]
fn daemon_life_lock_and_log_as_conntrackd() {
    need_real();
    let p = Pair::new("cdl");
    let mut logs = Vec::new();
    for (name, prog, port) in [("real", REAL, 3790u16), ("ours", ours(), 3791)] {
        let conf = p.conf(name, port);
        let c = conf.to_str().expect("path");
        let first = exec(&p.a, prog, &["-C", c, "-d"]);
        assert_eq!(first.status.code(), Some(0), "{name}");
        wait_path(&p.dir.join(format!("{name}.sock")), true);
        // A second daemon on the same lock file refuses to start.
        let second = exec(&p.a, prog, &["-C", c, "-d"]);
        let err = String::from_utf8_lossy(&second.stderr).into_owned();
        let tail = err.split("] ").last().unwrap_or("").to_string();
        logs.push((second.status.code(), tail));
        assert!(exec(&p.a, prog, &["-C", c, "-k"]).status.success());
        let t = Instant::now();
        while p.dir.join(format!("{name}.lock")).exists() {
            assert!(t.elapsed() < Duration::from_secs(10), "{name} did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(p.dir.join(format!("{name}.log"))).expect("log file");
        // [Sat Dec  5 02:57:53 2026] (pid=5840) [notice] message
        // Two processes write this file (the daemon and the refused second start), so
        // their lines may interleave either way: compare each process's lines in order,
        // and the processes as a set.
        let mut by_pid: Vec<(String, Vec<String>)> = Vec::new();
        for l in log.lines() {
            assert!(
                l.starts_with('[') && l.as_bytes().get(25) == Some(&b']'),
                "{name}: {l}"
            );
            assert!(l[27..].starts_with("(pid="), "{name}: {l}");
            let (pid, words) = l[27..].split_once(") ").unwrap_or((&l[27..], ""));
            let words = words.replace(name, "X");
            match by_pid.iter_mut().find(|(p, _)| p == pid) {
                Some((_, lines)) => lines.push(words),
                None => by_pid.push((pid.to_string(), vec![words])),
            }
        }
        let mut groups: Vec<String> = by_pid.into_iter().map(|(_, l)| l.join("\n")).collect();
        groups.sort();
        logs.push((None, groups.join("\n--\n")));
    }
    // The refusals and the log files say the same, paths aside.
    let norm = |s: &str| s.replace("real", "X").replace("ours", "X");
    assert_eq!(logs[0].0, logs[2].0);
    assert_eq!(norm(&logs[0].1), norm(&logs[2].1));
    assert_eq!(norm(&logs[1].1), norm(&logs[3].1));
}

#[test]
fn sync_without_a_link_does_not_start_as_conntrackd() {
    need_real();
    let p = Pair::new("cdn");
    let mut seen = Vec::new();
    for (name, prog) in [("real", REAL), ("ours", ours())] {
        let d = p.dir.display();
        let conf = p.dir.join(format!("{name}.conf"));
        std::fs::write(
            &conf,
            format!("General {{\n LockFile {d}/{name}.lock\n UNIX {{ Path {d}/{name}.sock }}\n}}\nSync {{\n Mode FTFW {{ }}\n}}\n"),
        )
        .expect("conf");
        let o = exec(&p.a, prog, &["-C", conf.to_str().expect("path")]);
        let lines: Vec<String> = String::from_utf8_lossy(&o.stderr)
            .lines()
            .map(|l| l.split_once(") ").map_or(l, |x| x.1).to_string())
            .collect();
        assert!(
            !p.dir.join(format!("{name}.lock")).exists(),
            "{name} left its lock file"
        );
        seen.push((o.status.code(), lines));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0].0, Some(1));
}

/// Runs `prog` with `args` in `ns` and in a private mount namespace whose /dev is a fresh
/// tmpfs with `null` and with `log` bound to `sock` (so syslog lines come to the test, and
/// nothing reaches the host's syslog).
fn exec_with_syslog(ns: &Netns, sock: &std::path::Path, prog: &str, args: &[&str]) -> Output {
    let script = format!(
        "mount -t tmpfs none /dev && mknod -m 666 /dev/null c 1 3 && touch /dev/log && mount --bind {} /dev/log && exec ip netns exec {} \"$@\"",
        sock.display(),
        ns.name()
    );
    Command::new("unshare")
        .args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "sh",
            prog,
        ])
        .args(args)
        .output()
        .expect("unshare")
}

#[test]
fn syslog_lines_as_conntrackd() {
    need_real();
    let p = Pair::new("cds");
    let mut seen = Vec::new();
    for (name, prog) in [("real", REAL), ("ours", ours())] {
        let sock = p.dir.join(format!("{name}.syslog"));
        let rx = std::os::unix::net::UnixDatagram::bind(&sock).expect("syslog socket");
        rx.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        let d = p.dir.display();
        let conf = p.dir.join(format!("{name}.conf"));
        std::fs::write(
            &conf,
            format!("General {{\n Syslog local3\n LockFile {d}/{name}.lock\n UNIX {{ Path {d}/{name}.sock }}\n}}\n"),
        )
        .expect("conf");
        let c = conf.to_str().expect("path");
        let o = exec_with_syslog(&p.a, &sock, prog, &["-C", c, "-d"]);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        wait_path(&p.dir.join(format!("{name}.sock")), true);
        assert!(exec(&p.a, prog, &["-C", c, "-k"]).status.success());
        wait_path(&p.dir.join(format!("{name}.lock")), false);
        // <PRI>Mmm dd hh:mm:ss conntrackd[pid]: message
        let mut lines = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok(n) = rx.recv(&mut buf) {
            let l = String::from_utf8_lossy(&buf[..n]).into_owned();
            let pri = l.split('>').next().unwrap_or("").to_string();
            let msg = l.split_once("]: ").map_or("", |x| x.1).to_string();
            let ident = l
                .split_once(' ')
                .map(|x| x.1)
                .and_then(|r| r.split(' ').nth(3))
                .unwrap_or("")
                .split('[')
                .next()
                .unwrap_or("")
                .to_string();
            lines.push(format!("{pri}> {ident} {msg}"));
            if msg.contains("shutdown received") {
                break;
            }
        }
        seen.push(lines);
    }
    println!("syslog: {:?}", seen[0]);
    assert!(
        seen[0]
            .iter()
            .any(|l| l.starts_with("<157> conntrack-tools ")),
        "{:?}",
        seen[0]
    );
    assert_eq!(seen[1], seen[0]);
}

/// Statistics mode: both daemons watch the same table; every flow that goes away is written
/// to each one's `Stats { LogFile }`, the same line (the second of the two writes may
/// differ, so the times are compared to the second).
#[test]
fn stats_mode_logs_flows_as_conntrackd() {
    need_real();
    let ns = Netns::new("cdst");
    ns.sysctl("net.netfilter.nf_conntrack_acct", "1");
    ns.sysctl("net.netfilter.nf_conntrack_timestamp", "1");
    let dir = std::env::temp_dir().join(format!("{}-dir", ns.name()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let conf = |n: &str| {
        let d = dir.display();
        let path = dir.join(format!("{n}.conf"));
        std::fs::write(
            &path,
            format!(
                "Stats {{\n\tLogFile {d}/{n}-stats.log\n\tSyslog off\n}}\nGeneral {{\n\t\
                 LogFile {d}/{n}.log\n\tLockFile {d}/{n}.lock\n\tUNIX {{ Path {d}/{n}.sock }}\n}}\n"
            ),
        )
        .expect("write the configuration");
        path
    };
    let (rc, oc) = (conf("real"), conf("ours"));
    for (prog, c) in [(REAL, &rc), (ours(), &oc)] {
        let ok = Command::new("ip")
            .args(["netns", "exec", ns.name(), "env", "TZ=UTC", prog, "-C"])
            .arg(c)
            .arg("-d")
            .status()
            .expect("start")
            .success();
        assert!(ok);
    }
    wait_path(&dir.join("real.sock"), true);
    wait_path(&dir.join("ours.sock"), true);
    for f in [
        "-p tcp -s 10.1.1.1 -d 10.2.2.2 --sport 1000 --dport 80 --state ESTABLISHED -t 100 -u SEEN_REPLY,ASSURED -m 7",
        "-p udp -s 10.1.1.3 -d 10.2.2.4 --sport 53 --dport 53 -t 100",
        "-p icmp -s 10.1.1.5 -d 10.2.2.6 --icmp-type 8 --icmp-code 0 --icmp-id 33 -t 100",
        "-p tcp -s 2001:db8::1 -d 2001:db8::2 --sport 1000 --dport 80 --state ESTABLISHED -t 100",
    ] {
        let args: Vec<&str> = std::iter::once("-I").chain(f.split(' ')).collect();
        ns.run("conntrack", &args);
    }
    std::thread::sleep(Duration::from_millis(1100));
    ns.run("conntrack", &["-F"]);
    let read = |n: &str| {
        let t = Instant::now();
        loop {
            let s = std::fs::read_to_string(dir.join(format!("{n}-stats.log"))).unwrap_or_default();
            if s.lines().count() >= 4 || t.elapsed() > Duration::from_secs(10) {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let (real, mine) = (read("real"), read("ours"));
    for (prog, c) in [(REAL, &rc), (ours(), &oc)] {
        let _ = exec(&ns, prog, &["-C", c.to_str().expect("path"), "-k"]);
    }
    let body = |s: &str| -> Vec<String> {
        let mut v: Vec<String> = s
            .lines()
            .map(|l| l.split_once('\t').map(|x| x.1).unwrap_or(l).to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(real.lines().count(), 4, "{real}");
    assert_eq!(body(&mine), body(&real), "ours:\n{mine}conntrackd:\n{real}");
    let stamps = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.split_once('\t').map(|x| x.0).unwrap_or("").to_string())
            .collect()
    };
    // `Www Mmm dd hh:mm:ss yyyy`: the same day, and at most a second apart.
    let secs = |t: &str| -> i64 {
        let hms: Vec<i64> = t
            .split_whitespace()
            .nth(3)
            .unwrap_or("")
            .split(':')
            .filter_map(|x| x.parse().ok())
            .collect();
        hms.iter().fold(0, |acc, x| acc * 60 + x)
    };
    for (a, b) in stamps(&mine).iter().zip(stamps(&real).iter()) {
        assert_eq!(a.len(), 24, "{a}");
        assert_eq!(a[..10], b[..10], "{a} / {b}");
        assert!((secs(a) - secs(b)).abs() <= 1, "{a} / {b}");
    }
    println!("statistics mode, the same lines:\n{real}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The context switches of process `pid` so far (each time it went to sleep or was made
/// to wait).
fn switches(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .filter(|l| l.contains("ctxt_switches:"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

/// An idle sync daemon sleeps in poll until a timer is due (an ALIVE a second), as 1.4.7
/// does: the number of times it wakes in three idle seconds is counted (not a time: it
/// does not depend on the machine's speed), for both daemons in the same setup.
#[test]
fn an_idle_daemon_sleeps_as_conntrackd() {
    need_real();
    let p = Pair::new("cdi");
    let mut woke = Vec::new();
    for (name, prog, port) in [("real", REAL, 3792u16), ("ours", ours(), 3793)] {
        let conf = p.conf(name, port);
        let pid = p.start(name, prog, &conf);
        std::thread::sleep(Duration::from_millis(1500));
        let before = switches(pid);
        std::thread::sleep(Duration::from_secs(3));
        woke.push(switches(pid) - before);
        p.stop(name, prog, &conf);
    }
    println!(
        "context switches in 3 idle seconds: conntrackd {}, ours {}",
        woke[0], woke[1]
    );
    // A loop woken every 10 ms would switch 300 times.
    assert!(
        woke[1] <= woke[0].max(3) * 3,
        "ours woke {} times, conntrackd {}",
        woke[1],
        woke[0]
    );
}

/// The policy and priority of process `pid` (`/proc/PID/stat`'s fields 41 and 18: the
/// policy number, and the priority as the kernel keeps it, -1 - rt_priority for real-time).
fn sched_of(pid: i32) -> (u32, i64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .map(|x| x.1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    (
        f.get(38).and_then(|v| v.parse().ok()).unwrap_or(99),
        f.get(15).and_then(|v| v.parse().ok()).unwrap_or(0),
    )
}

/// `Scheduler` (and its absence) as 1.4.7 applies it: the daemon's policy and priority, and
/// the warning when the kernel refuses what was asked.
#[test]
fn scheduling_as_conntrackd() {
    need_real();
    let p = Pair::new("cdr");
    let d = p.dir.display();
    for sched in [
        "",
        "Scheduler {\n Type FIFO\n Priority 7\n }\n",
        "Scheduler {\n Priority 5\n }\n",
        "Scheduler {\n Type RR\n }\n",
    ] {
        let mut seen = Vec::new();
        for (name, prog) in [("real", REAL), ("ours", ours())] {
            let conf = p.dir.join(format!("{name}.conf"));
            let _ = std::fs::remove_file(p.dir.join(format!("{name}.log")));
            std::fs::write(
                &conf,
                format!("General {{\n {sched} LogFile {d}/{name}.log\n LockFile {d}/{name}.lock\n UNIX {{ Path {d}/{name}.sock }}\n}}\n"),
            )
            .expect("conf");
            let pid = p.start(name, prog, &conf);
            let policy = sched_of(pid);
            p.stop(name, prog, &conf);
            let log = std::fs::read_to_string(p.dir.join(format!("{name}.log"))).expect("log");
            let warnings: Vec<String> = log
                .lines()
                .filter(|l| l.contains("[warning]"))
                .map(|l| l.split_once("[warning] ").map_or("", |x| x.1).to_string())
                .collect();
            seen.push((policy, warnings));
        }
        println!("{sched:?}: conntrackd {:?}", seen[0]);
        assert_eq!(seen[1], seen[0], "{sched:?}: ours, then conntrackd's");
    }
}
