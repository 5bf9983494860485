//! Statistics mode against Debian's conntrackd 1.4.7: both watch the same throwaway
//! namespace; flows are made, then deleted; every line conntrackd writes to its
//! `Stats { LogFile }` is written by ours too, byte for byte (the time may differ by the
//! second the two writes straddle). Skipped, saying so, when conntrackd is not installed.

mod support;

use std::collections::BTreeMap;
use std::fs::File;
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
    need_conntrackd();
    let ns = Netns::new("stats");
    // Counters and timestamps, so that the lines carry packets=, bytes= and delta-time=.
    ns.sysctl("net.netfilter.nf_conntrack_acct", "1");
    ns.sysctl("net.netfilter.nf_conntrack_timestamp", "1");
    ns.nft(
        "table ip n {\n chain post { type nat hook postrouting priority 100; }\n \
         chain pre { type nat hook prerouting priority -100; }\n}\n",
    );
    // conntrackd stamps its lines in local time: UTC here, so that ours compare.
    let ctd = Conntrackd::with_conf(&ns, &["TZ=UTC"], |d| {
        format!(
            "Stats {{\n LogFile {d}/stats.log\n Syslog off\n}}\nGeneral {{\n HashSize 8192\n \
             HashLimit 65536\n LogFile {d}/ctd.log\n Syslog off\n LockFile {d}/ctd.lock\n \
             UNIX {{ Path {d}/ctd.ctl }}\n NetlinkBufferSize 2097152\n \
             NetlinkBufferSizeMaxGrowth 8388608\n}}\n"
        )
    });

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
        let t = std::fs::read_to_string(ctd.dir.join("stats.log")).unwrap_or_default();
        if t.lines().count() >= FLOWS.len() || Instant::now() > end {
            break t;
        }
        thread::sleep(Duration::from_millis(100));
    };
    stop_tx.send(()).unwrap();
    ours.join().unwrap();
    drop(ctd);

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
}

/// The filters under test: (conntrackd's text, ours).
fn filters() -> Vec<(&'static str, conntrack_sync::Filter)> {
    use conntrack_codec::ct::{l4proto, TcpState};
    use conntrack_codec::filter::bpf::Logic;
    use conntrack_sync::{Filter, Network};
    let net = |a: &str, p| Network {
        addr: a.parse().unwrap(),
        prefix: p,
    };
    vec![
        (
            "Protocol Accept { TCP UDP }\n Address Ignore { IPv4_address 10.1.1.0/24\n \
             IPv4_address 10.9.9.9 }\n State Accept { ESTABLISHED SYN_SENT for TCP }",
            Filter {
                protocols: Some((Logic::Positive, vec![l4proto::TCP, l4proto::UDP])),
                addresses: Some((
                    Logic::Negative,
                    vec![net("10.1.1.0", 24), net("10.9.9.9", 32)],
                )),
                tcp_states: Some((
                    Logic::Positive,
                    vec![TcpState::Established, TcpState::SynSent],
                )),
            },
        ),
        (
            "Address Accept { IPv4_address 10.9.9.9\n IPv4_address 10.3.0.0/16\n \
             IPv6_address 2001:db8::1 }",
            Filter {
                addresses: Some((
                    Logic::Positive,
                    vec![
                        net("10.9.9.9", 32),
                        net("10.3.0.0", 16),
                        net("2001:db8::1", 128),
                    ],
                )),
                ..Filter::default()
            },
        ),
    ]
}

/// Flows made before the daemons start (judged on the dump) and after (on events):
/// protocols, states, hosts, networks, and a DNAT'ed flow whose reply comes from 10.1.1.80
/// (user space looks at the reply's source, the kernel at the original destination).
const FILTER_FLOWS: &[&str] = &[
    "-p tcp -s 10.1.1.1 -d 10.2.2.2 --sport 1000 --dport 80 --state ESTABLISHED -t 100",
    "-p tcp -s 10.9.9.9 -d 10.2.2.2 --sport 1001 --dport 80 --state ESTABLISHED -t 100",
    "-p tcp -s 10.3.3.3 -d 10.2.2.2 --sport 1002 --dport 80 --state ESTABLISHED -t 100",
    "-p tcp -s 10.3.3.4 -d 10.2.2.2 --sport 1003 --dport 80 --state TIME_WAIT -t 100",
    "-p tcp -s 10.3.3.5 -d 10.2.2.2 --sport 1004 --dport 80 --state SYN_SENT -t 100",
    "-p udp -s 10.3.3.6 -d 10.9.9.9 --sport 53 --dport 53 -t 100",
    "-p udp -s 10.4.4.4 -d 10.2.2.2 --sport 53 --dport 53 -t 100",
    "-p icmp -s 10.3.3.7 -d 10.2.2.6 --icmp-type 8 --icmp-code 0 --icmp-id 33 -t 100",
    "-p tcp -s 10.5.5.5 -d 192.0.2.80 --sport 1005 --dport 80 --state ESTABLISHED -t 100 --dst-nat 10.1.1.80",
    "-p tcp -s 2001:db8::1 -d 2001:db8::2 --sport 1000 --dport 80 --state ESTABLISHED -t 100",
    "-p tcp -s 2001:db8::5 -d 2001:db8::6 --sport 1000 --dport 80 --state ESTABLISHED -t 100",
];

fn src_of(line: &str) -> Option<String> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("src=").map(str::to_string))
}

#[test]
fn the_filter_keeps_out_what_conntrackds_keeps_out() {
    use conntrack_codec::sync::SyncCt;
    need_conntrackd();
    for (i, (text, filter)) in filters().into_iter().enumerate() {
        for kernelspace in [false, true] {
            let ns = Netns::new(&format!("filt{i}"));
            ns.nft(
                "table ip n {\n chain post { type nat hook postrouting priority 100; }\n \
                 chain pre { type nat hook prerouting priority -100; }\n}\n",
            );
            let (before, after) = FILTER_FLOWS.split_at(FILTER_FLOWS.len() / 2);
            for f in before {
                let args: Vec<&str> = std::iter::once("-I").chain(f.split(' ')).collect();
                ns.run("conntrack", &args);
            }
            let from = if kernelspace {
                "Kernelspace"
            } else {
                "Userspace"
            };
            let ctd = Conntrackd::with_conf(&ns, &[], |d| {
                format!(
                    "Stats {{\n LogFile off\n}}\nGeneral {{\n HashSize 8192\n HashLimit 65536\n \
                     LogFile {d}/ctd.log\n Syslog off\n LockFile {d}/ctd.lock\n \
                     UNIX {{ Path {d}/ctd.ctl }}\n Filter From {from} {{\n {text}\n }}\n}}\n"
                )
            });
            let path = ns.path();
            let cfg = StatsConfig {
                filter: filter.clone(),
                filter_kernelspace: kernelspace,
                ..StatsConfig::default()
            };
            let (stop_tx, stop_rx) = mpsc::channel::<()>();
            let (ready_tx, ready_rx) = mpsc::channel::<()>();
            let (out_tx, out_rx) = mpsc::channel::<Vec<String>>();
            let ours = thread::spawn(move || {
                setns(File::open(&path).unwrap(), CloneFlags::CLONE_NEWNET).unwrap();
                let mut node = StatsNode::start(cfg).unwrap();
                ready_tx.send(()).unwrap();
                while stop_rx.try_recv().is_err() {
                    node.run_once(20, |_| {}).unwrap();
                }
                let mut srcs: Vec<String> = node
                    .cache()
                    .flows()
                    .filter_map(|a| {
                        SyncCt::new_checked(a)
                            .ok()?
                            .orig()
                            .ok()?
                            .src
                            .map(|s| s.to_string())
                    })
                    .collect();
                srcs.sort();
                out_tx.send(srcs).unwrap();
            });
            ready_rx.recv().unwrap();
            for f in after {
                let args: Vec<&str> = std::iter::once("-I").chain(f.split(' ')).collect();
                ns.run("conntrack", &args);
            }
            thread::sleep(Duration::from_millis(800));
            let out = ctd.client(&["-i"]);
            let mut theirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(src_of)
                .collect();
            theirs.sort();
            stop_tx.send(()).unwrap();
            let mine = out_rx.recv().unwrap();
            ours.join().unwrap();
            drop(ctd);
            assert_eq!(
                mine, theirs,
                "Filter From {from} {{ {text} }}: ours vs conntrackd's cache"
            );
            println!(
                "Filter From {from} {{ {} }}: both keep {} of {} flows: {theirs:?}",
                text.replace('\n', ""),
                theirs.len(),
                FILTER_FLOWS.len()
            );
        }
    }
}
