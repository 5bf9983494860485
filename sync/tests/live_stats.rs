//! Statistics mode against Debian's conntrackd 1.4.7: both watch the same throwaway
//! namespace; flows are made, then deleted; every line conntrackd writes to its
//! `Stats { LogFile }` is written by ours too, byte for byte (the time may differ by the
//! second the two writes straddle). Skipped, saying so, when conntrackd is not installed.

mod support;

use std::collections::BTreeMap;
use std::fs::File;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use conntrack_codec::fmt::Ctime;
use conntrack_sync::stats::{log_line, StatsConfig, StatsNode};
use nix::sched::{setns, CloneFlags};
use support::*;

const FLOWS: &[&str] = &[
    "-p tcp -s 10.1.1.1 -d 10.2.2.2 --sport 1000 --dport 80 --state ESTABLISHED -t 100 -u SEEN_REPLY,ASSURED -m 7",
    "-p tcp -s 10.1.1.9 -d 10.2.2.9 --sport 1001 --dport 443 --state SYN_SENT -t 100",
    "-p udp -s 10.1.1.3 -d 10.2.2.4 --sport 53 --dport 53 -t 100",
    "-p icmp -s 10.1.1.5 -d 10.2.2.6 --icmp-type 8 --icmp-code 0 --icmp-id 33 -t 100",
    "-p tcp -s 2001:db8::1 -d 2001:db8::2 --sport 1000 --dport 80 --state ESTABLISHED -t 100",
    "-p udp -s 2001:db8::3 -d 2001:db8::4 --sport 5000 --dport 5001 -t 100 -w 7",
    "-p tcp -s 10.1.1.7 -d 10.2.2.8 --sport 30002 --dport 80 --state ESTABLISHED -t 300 -u SEEN_REPLY,ASSURED --src-nat 203.0.113.7",
    "-p sctp -s 10.1.1.10 -d 10.2.2.10 --sport 2905 --dport 2905 --state ESTABLISHED --orig-vtag 1 --reply-vtag 2 -t 100",
    "-p 99 -s 10.1.1.11 -d 10.2.2.11 -t 60",
];

#[test]
fn destroyed_flows_are_logged_as_conntrackd_logs_them() {
    if !conntrackd_installed() {
        return;
    }
    let ns = Netns::new("stats");
    // Counters and timestamps, so that the lines carry packets=, bytes= and delta-time=.
    ns.sysctl("net.netfilter.nf_conntrack_acct", "1");
    ns.sysctl("net.netfilter.nf_conntrack_timestamp", "1");
    ns.nft(
        "table ip n {\n chain post { type nat hook postrouting priority 100; }\n \
         chain pre { type nat hook prerouting priority -100; }\n}\n",
    );
    let dir = std::env::temp_dir().join(format!("ctd-stats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let conf = dir.join("ctd.conf");
    std::fs::write(
        &conf,
        format!(
            "Stats {{\n LogFile {d}/stats.log\n Syslog off\n}}\nGeneral {{\n HashSize 8192\n \
             HashLimit 65536\n LogFile {d}/ctd.log\n Syslog off\n LockFile {d}/ctd.lock\n \
             UNIX {{ Path {d}/ctd.ctl }}\n NetlinkBufferSize 2097152\n \
             NetlinkBufferSizeMaxGrowth 8388608\n}}\n"
        ),
    )
    .unwrap();
    // conntrackd stamps its lines in local time: UTC here, so that ours compare.
    let mut ctd = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            "env",
            "TZ=UTC",
            "conntrackd",
            "-C",
        ])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(15);
    while !dir.join("ctd.ctl").exists() {
        assert!(Instant::now() < end, "conntrackd did not start");
        thread::sleep(Duration::from_millis(50));
    }

    // Ours, in the same namespace, writing (time, line) pairs.
    let path = ns.path();
    let (tx, rx) = mpsc::channel::<(u64, String)>();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let ours = thread::spawn(move || {
        setns(File::open(&path).unwrap(), CloneFlags::CLONE_NEWNET).unwrap();
        let mut node = StatsNode::start(StatsConfig::default()).unwrap();
        ready_tx.send(()).unwrap();
        while stop_rx.try_recv().is_err() {
            node.run_once(20, |e| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                tx.send((now, log_line(e, now, 0))).unwrap();
            })
            .unwrap();
        }
    });
    ready_rx.recv().unwrap();

    for f in FLOWS {
        let args: Vec<&str> = std::iter::once("-I").chain(f.split(' ')).collect();
        ns.run("conntrack", &args);
    }
    thread::sleep(Duration::from_millis(1200));
    ns.run("conntrack", &["-F"]);

    // Both have written a line per flow.
    let mut mine: Vec<(u64, String)> = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while mine.len() < FLOWS.len() && Instant::now() < end {
        if let Ok(x) = rx.recv_timeout(Duration::from_millis(200)) {
            mine.push(x);
        }
    }
    let theirs = loop {
        let t = std::fs::read_to_string(dir.join("stats.log")).unwrap_or_default();
        if t.lines().count() >= FLOWS.len() || Instant::now() > end {
            break t;
        }
        thread::sleep(Duration::from_millis(100));
    };
    stop_tx.send(()).unwrap();
    ours.join().unwrap();
    let _ = ctd.kill();
    let _ = ctd.wait();

    assert_eq!(mine.len(), FLOWS.len(), "ours: {mine:#?}");
    let theirs: Vec<String> = theirs.lines().map(|l| format!("{l}\n")).collect();
    assert_eq!(theirs.len(), FLOWS.len(), "conntrackd: {theirs:#?}");
    // Pair lines by their text after the time.
    let body = |l: &str| {
        l.split_once('\t')
            .map(|x| x.1.to_string())
            .unwrap_or_default()
    };
    let mut by_body: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for (t, l) in &mine {
        by_body.insert(body(l), (*t, l.clone()));
    }
    for l in &theirs {
        let (t, m) = by_body
            .get(&body(l))
            .unwrap_or_else(|| panic!("conntrackd wrote\n{l}ours wrote\n{mine:#?}"));
        let stamp = l.split_once('\t').unwrap().0;
        let close = (t.saturating_sub(1)..=t + 1).any(|s| Ctime(s, 0).to_string() == stamp);
        assert!(close, "time {stamp} vs ours {m}");
        if Ctime(*t, 0).to_string() == stamp {
            assert_eq!(l, m);
        }
    }
    println!(
        "{} destroyed flows: conntrackd 1.4.7 and ours wrote the same lines:\n{}",
        FLOWS.len(),
        theirs.concat()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
