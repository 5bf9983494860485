//! `conntrack -E` against conntrack-tools 1.4.7: both listen in the same namespace while
//! the same changes happen (requests by the reference tool, traffic on `lo` through NAT and
//! an FTP helper, a flush), then both get SIGINT; what they printed (events, the XML
//! footer, the summary) and their exit status are compared. The program name of a
//! requesting process is looked up in /proc as the process exits, so either tool may miss
//! it: it is masked, as are port ids, ids and clocks.

mod cli_support;

use std::process::Command;
use std::time::Duration;

use cli_support::{all_passed, mask, need_reference, ours, run, spawn, Netns, REAL};

const RULES: &str = r#"
table inet t {
    ct helper ftp-std {
        type "ftp" protocol tcp
    }
    chain out {
        type filter hook output priority 0; policy accept;
        tcp dport 21 ct helper set "ftp-std"
        ct state new accept
    }
}
table ip nat {
    chain post {
        type nat hook postrouting priority 100; policy accept;
        udp dport 7777 snat to 127.0.0.5:4000
    }
}
"#;

const TRAFFIC: &str = r#"
import socket, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 21)); srv.listen(1)
def serve():
    c, _ = srv.accept(); c.sendall(b"220 ready\r\n"); c.recv(100)
    c.sendall(b"227 Entering Passive Mode (127,0,0,1,195,80)\r\n"); c.recv(100); c.close()
t = threading.Thread(target=serve); t.start()
f = socket.create_connection(("127.0.0.1", 21)); f.recv(100); f.sendall(b"PASV\r\n")
f.recv(100); f.sendall(b"QUIT\r\n"); t.join(); f.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b"x", ("127.0.0.1", 7777))
"#;

const CHANGES: &[&str] = &[
    "-I -s 1.1.1.1 -d 2.2.2.2 -p udp --sport 1 --dport 2 -t 50 -m 7",
    "-I -s 2001::1 -d 2001::2 -p tcp --sport 1 --dport 2 -t 50 --state ESTABLISHED",
    "-U -s 1.1.1.1 -m 8",
    "-D -s 1.1.1.1",
];

const LISTENERS: &[&str] = &[
    "-E",
    "-E -o extended,id",
    "-E -o xml",
    "-E -o save",
    "-E -o timestamp",
    "-E -o xml,timestamp",
    "-E -o ktimestamp,extended",
    "-E -o labels",
    "-E -e NEW",
    "-E -e UPDATES,DESTROY",
    "-E -p udp",
    "-E -s 1.1.1.1",
    "-E -f ipv6",
    "-E -n",
    "-E -m 7",
    "-E -p tcp --dport 21",
    "-E -b 100000",
    "-E expect",
    "-E expect -o xml",
    "-E expect -o timestamp",
];

/// Waits (up to 10 s) until `n` netfilter netlink sockets of the namespace have joined a
/// multicast group (`/proc/net/netlink` is per namespace).
fn wait_for_listeners(ns: &Netns, n: usize) {
    for _ in 0..200 {
        let text = ns.run("cat", &["/proc/net/netlink"]);
        let listening = text
            .lines()
            .skip(1)
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(1) == Some(&"12")
                    && f.get(3)
                        .is_some_and(|g| !g.trim_start_matches('0').is_empty())
            })
            .count();
        if listening >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the listeners did not subscribe");
}

fn interrupt(child: &std::process::Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
}

fn one(listener: &str) -> Result<(), String> {
    let ns = Netns::new("clievents");
    ns.sysctl("net.netfilter.nf_conntrack_timestamp", "1");
    ns.nft(RULES);
    let args: Vec<&str> = listener.split_whitespace().collect();
    let real = spawn(&ns, REAL, &args);
    let ours = spawn(&ns, ours(), &args);
    // Both subscribe before the first change.
    wait_for_listeners(&ns, 2);
    for change in CHANGES {
        let words: Vec<&str> = change.split_whitespace().collect();
        run(&ns, REAL, &words, None);
    }
    ns.run("python3", &["-c", TRAFFIC]);
    run(&ns, REAL, &["-F"], None);
    run(&ns, REAL, &["-F", "expect"], None);
    // Both read and print what is queued.
    std::thread::sleep(Duration::from_millis(800));
    interrupt(&real);
    interrupt(&ours);
    let a = real.wait_with_output();
    let b = ours.wait_with_output();
    let (a, b) = (a.map_err(|e| e.to_string())?, b.map_err(|e| e.to_string())?);
    let text = |v: &[u8]| mask(&String::from_utf8_lossy(v));
    let mut out = String::new();
    if a.status.code() != b.status.code() {
        out.push_str(&format!(
            "  exit status: 1.4.7 {:?}, ours {:?}\n",
            a.status.code(),
            b.status.code()
        ));
    }
    for (what, x, y) in [
        ("stdout", text(&a.stdout), text(&b.stdout)),
        ("stderr", text(&a.stderr), text(&b.stderr)),
    ] {
        if x != y {
            out.push_str(&format!("  {what}:\n--- 1.4.7\n{x}\n--- ours\n{y}\n"));
        }
    }
    if a.stdout.is_empty() && !listener.contains("-m 7") {
        out.push_str("  no event at all: the test is broken\n");
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(format!("conntrack {listener}\n{out}"))
    }
}

#[test]
fn events_match_conntrack_tools() {
    need_reference();
    let mut failures = Vec::new();
    for listener in LISTENERS {
        if let Err(e) = one(listener) {
            failures.push(e);
        }
    }
    all_passed(failures, LISTENERS.len());
}
