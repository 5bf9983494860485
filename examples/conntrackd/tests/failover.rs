//! Failover as deployed: Debian's own `primary-backup.sh` (the script keepalived's
//! `notify_master`/`notify_backup`/`notify_fault` run) drives our conntrackd unchanged
//! through a keepalived-style sequence, between two firewalls in throwaway namespaces.
//!
//! A client (namespace C) and a server (S) talk TCP through a firewall pair: P (primary)
//! and B (backup), each with a leg in C's and in S's LAN (a bridge in C and in S), and a
//! dedicated sync link between them. Both firewalls forward only what their conntrack
//! table knows as established (or a new connection from the client's side), with strict
//! TCP tracking (`nf_conntrack_tcp_loose=0`): a firewall that does not know a connection
//! drops its packets. The script's `primary` and `backup` start the pair (P serves); a
//! connection is made and carries data both ways through P; P fails (`fault`) and B takes
//! over (`primary`: commit, flush, resync, bulk) while the virtual addresses move to it
//! (as keepalived moves them, with its gratuitous ARP); the connection's entry is then in
//! B's kernel table, and the connection goes on, both ways, through B.
//!
//! The script runs as shipped: each call runs in a private mount namespace where our
//! binary is bind-mounted on /usr/sbin/conntrackd and the firewall's configuration on
//! /etc/conntrackd/conntrackd.conf, the two paths the script names.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use conntrack_tests::Netns;
use nix::sched::{setns, CloneFlags};

mod support;
use support::{ours, stop_daemons, veth_bare as link, wait_path};

const SCRIPT: &str = "/usr/share/doc/conntrackd/examples/sync/primary-backup.sh";
const LAN_VIP: &str = "192.168.110.1";
const WAN_VIP: &str = "192.168.120.1";
const CLIENT: &str = "192.168.110.10";
const SERVER: &str = "192.168.120.10";
const PORT: u16 = 9000;

fn ip(ns: &Netns, args: &[&str]) {
    ns.run("ip", args);
}

/// A firewall's ruleset: forward what conntrack knows, and new connections from the LAN.
const RULES: &str = "table inet fw {\n chain passthru {\n  type filter hook forward priority 0; policy drop;\n  ct state established,related counter accept\n  iifname \"lan\" tcp dport 9000 ct state new accept\n }\n}\n";

fn firewall(fw: &Netns, sync_addr: &str, lan_addr: &str, wan_addr: &str) {
    ip(fw, &["link", "set", "lan", "up"]);
    ip(
        fw,
        &["addr", "add", &format!("{lan_addr}/24"), "dev", "lan"],
    );
    ip(
        fw,
        &["addr", "add", &format!("{wan_addr}/24"), "dev", "wan"],
    );
    ip(
        fw,
        &["addr", "add", &format!("{sync_addr}/24"), "dev", "sync"],
    );
    fw.sysctl("net.ipv4.ip_forward", "1");
    fw.sysctl("net.netfilter.nf_conntrack_tcp_loose", "0");
    fw.nft(RULES);
}

fn conf(dir: &Path, name: &str, me: &str, peer: &str) -> PathBuf {
    let d = dir.display();
    let text = format!(
        "Sync {{\n Mode FTFW {{\n  PurgeTimeout 5\n }}\n UDP {{\n  IPv4_address {me}\n  \
         IPv4_Destination_Address {peer}\n  Port 3780\n  Interface sync\n  Checksum on\n }}\n}}\n\
         General {{\n HashSize 8192\n HashLimit 65536\n LogFile {d}/{name}.log\n \
         LockFile {d}/{name}.lock\n UNIX {{ Path {d}/{name}.sock }}\n}}\n"
    );
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(&path, text).expect("write the configuration");
    path
}

/// Runs the shipped script with `state` in `fw`, our binary and `conf` in place of the
/// paths it names; returns its exit status and what it printed.
fn script(fw: &Netns, conf: &Path, state: &str) -> (bool, String) {
    let inner = format!(
        "mount --bind {} /usr/sbin/conntrackd && mount --bind {} /etc/conntrackd/conntrackd.conf \
         && exec sh {SCRIPT} {state}",
        ours(),
        conf.display()
    );
    let out = fw.exec(
        "unshare",
        &["-m", "--propagation", "private", "sh", "-c", &inner],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Moves the virtual addresses to `to` (from `from`), as keepalived does, and points the
/// client's and the server's neighbour entries at it (what its gratuitous ARP does).
fn move_vips(from: &Netns, to: &Netns, c: &Netns, s: &Netns) {
    for (dev, vip) in [("lan", LAN_VIP), ("wan", WAN_VIP)] {
        let _ = from.exec("ip", &["addr", "del", &format!("{vip}/24"), "dev", dev]);
        ip(to, &["addr", "add", &format!("{vip}/24"), "dev", dev]);
    }
    for (ns, vip, dev) in [(c, LAN_VIP, "lan"), (s, WAN_VIP, "wan")] {
        let mac = mac_of(to, dev);
        ip(
            ns,
            &[
                "neigh",
                "replace",
                vip,
                "lladdr",
                &mac,
                "dev",
                "br0",
                "nud",
                "reachable",
            ],
        );
    }
}

/// An interface's MAC address, read inside its namespace.
fn mac_of(ns: &Netns, dev: &str) -> String {
    let out = ns.run("ip", &["-o", "link", "show", dev]);
    out.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .expect("a MAC address")
        .to_string()
}

/// The lines of `conntrack -L` in `ns` that name the client and the server.
fn table_lines(ns: &Netns) -> Vec<String> {
    let out = ns.exec("conntrack", &["-L", "-p", "tcp", "--dport", "9000"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(CLIENT) && l.contains(SERVER))
        .map(str::to_string)
        .collect()
}

#[test]
fn primary_backup_sh_moves_a_live_connection_to_the_backup() {
    assert!(
        Path::new(SCRIPT).exists() && Path::new("/etc/conntrackd/conntrackd.conf").exists(),
        "{SCRIPT} (Debian package conntrackd) is needed for this test; .ci/run installs it"
    );
    let (c, s) = (Netns::new("foc"), Netns::new("fos"));
    let (p, b) = (Netns::new("fop"), Netns::new("fob"));
    // The LANs: a bridge in the client's and in the server's namespace, a leg of each
    // firewall in each.
    for (ns, addr) in [(&c, CLIENT), (&s, SERVER)] {
        ip(ns, &["link", "add", "br0", "type", "bridge"]);
        ip(ns, &["link", "set", "br0", "up"]);
        ip(ns, &["addr", "add", &format!("{addr}/24"), "dev", "br0"]);
    }
    link(&c, "cp", &p, "lan");
    link(&c, "cb", &b, "lan");
    link(&s, "sp", &p, "wan");
    link(&s, "sb", &b, "wan");
    for (ns, ports) in [(&c, ["cp", "cb"]), (&s, ["sp", "sb"])] {
        for port in ports {
            ip(ns, &["link", "set", port, "master", "br0"]);
        }
    }
    ip(&c, &["route", "add", "default", "via", LAN_VIP]);
    ip(&s, &["route", "add", "192.168.110.0/24", "via", WAN_VIP]);
    link(&p, "sync", &b, "sync");
    firewall(&p, "10.251.0.1", "192.168.110.2", "192.168.120.2");
    firewall(&b, "10.251.0.2", "192.168.110.3", "192.168.120.3");

    let dir = std::env::temp_dir().join(format!("ctd-failover-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf_p = conf(&dir, "p", "10.251.0.1", "10.251.0.2");
    let conf_b = conf(&dir, "b", "10.251.0.2", "10.251.0.1");
    // Whatever happens, the daemons stop and their files go (before the namespaces).
    let _guard = Cleanup(
        vec![(&p, conf_p.clone()), (&b, conf_b.clone())],
        dir.clone(),
    );
    for (fw, cf, name) in [(&p, &conf_p, "p"), (&b, &conf_b, "b")] {
        let out = fw.exec(ours(), &["-C", cf.to_str().unwrap(), "-d"]);
        assert!(out.status.success(), "{:?}", out);
        wait_path(&dir.join(format!("{name}.sock")), true);
    }

    // keepalived starts the pair: P primary, B backup.
    let (ok, text) = script(&p, &conf_p, "primary");
    assert!(ok, "primary on P: {text}");
    let (ok, text) = script(&b, &conf_b, "backup");
    assert!(ok, "backup on B: {text}");
    ip(&p, &["addr", "add", &format!("{LAN_VIP}/24"), "dev", "lan"]);
    ip(&p, &["addr", "add", &format!("{WAN_VIP}/24"), "dev", "wan"]);

    // A connection through P, data both ways.
    let (s_path, c_path) = (s.path(), c.path());
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = thread::spawn(move || -> Vec<String> {
        setns(File::open(&s_path).unwrap(), CloneFlags::CLONE_NEWNET).unwrap();
        let l = TcpListener::bind((SERVER, PORT)).unwrap();
        ready_tx.send(()).unwrap();
        let (mut conn, _) = l.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut got = Vec::new();
        for _ in 0..2 {
            let mut buf = [0u8; 5];
            conn.read_exact(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf).into_owned());
            conn.write_all(b"pong.").unwrap();
        }
        got
    });
    ready_rx.recv().unwrap();
    let (step_tx, step_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<String>();
    let client = thread::spawn(move || {
        setns(File::open(&c_path).unwrap(), CloneFlags::CLONE_NEWNET).unwrap();
        let mut conn = TcpStream::connect_timeout(
            &format!("{SERVER}:{PORT}").parse().unwrap(),
            Duration::from_secs(10),
        )
        .unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        for msg in [b"ping1", b"ping2"] {
            conn.write_all(msg).unwrap();
            let mut buf = [0u8; 5];
            conn.read_exact(&mut buf).unwrap();
            done_tx
                .send(String::from_utf8_lossy(&buf).into_owned())
                .unwrap();
            // Wait for the failover before the second exchange.
            let _ = step_rx.recv();
        }
    });
    assert_eq!(
        done_rx.recv_timeout(Duration::from_secs(20)).unwrap(),
        "pong."
    );
    let on_p = table_lines(&p);
    assert_eq!(on_p.len(), 1, "P's table: {on_p:?}");
    assert!(on_p[0].contains("ESTABLISHED"), "{on_p:?}");
    // The connection reaches B's external cache.
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let out = b.exec(ours(), &["-C", conf_b.to_str().unwrap(), "-e"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains(CLIENT) && text.contains(SERVER) {
            break;
        }
        assert!(Instant::now() < end, "B's external cache: {text}");
        thread::sleep(Duration::from_millis(100));
    }
    assert!(table_lines(&b).is_empty(), "B forwards nothing yet");

    // P fails; B becomes primary; the addresses move to B.
    let (ok, text) = script(&p, &conf_p, "fault");
    assert!(ok, "fault on P: {text}");
    let (ok, text) = script(&b, &conf_b, "primary");
    assert!(ok, "primary on B: {text}");
    move_vips(&p, &b, &c, &s);
    let on_b = table_lines(&b);
    assert_eq!(on_b.len(), 1, "B's table after the commit: {on_b:?}");
    assert!(on_b[0].contains("ESTABLISHED"), "{on_b:?}");
    println!(
        "P's entry:\n{}\nB's entry after `primary-backup.sh primary`:\n{}",
        on_p[0], on_b[0]
    );

    // The connection goes on, both ways, through B.
    let before = b.run("nft", &["list", "chain", "inet", "fw", "passthru"]);
    step_tx.send(()).unwrap();
    assert_eq!(
        done_rx.recv_timeout(Duration::from_secs(20)).unwrap(),
        "pong.",
        "the reply through B"
    );
    step_tx.send(()).unwrap();
    client.join().unwrap();
    assert_eq!(server.join().unwrap(), ["ping1", "ping2"]);
    let after = b.run("nft", &["list", "chain", "inet", "fw", "passthru"]);
    let packets = |t: &str| -> u64 {
        t.split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert!(
        packets(&after) >= packets(&before) + 2,
        "B forwarded the exchange as established: {before} -> {after}"
    );
}

/// Stops the daemons and removes their directory on drop.
struct Cleanup<'a>(Vec<(&'a Netns, PathBuf)>, PathBuf);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for (ns, conf) in &self.0 {
            stop_daemons(ns, ours(), conf);
        }
        let _ = std::fs::remove_dir_all(&self.1);
    }
}
