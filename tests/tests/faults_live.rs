//! The fault paths, provoked live:
//!
//! - `NLM_F_DUMP_INTR`. The kernel sets it through `nl_dump_check_consistent()`, which flags a
//!   message when the dump's `cb->seq` changed since the previous part. ctnetlink's dumps
//!   (`ctnetlink_dump_table`, the expectation, dying, unconfirmed and statistics dumps in
//!   `net/netfilter/nf_conntrack_netlink.c`, Linux 6.18) never set `cb->seq`, so it stays 0
//!   and no conntrack dump is ever flagged, however much the table changes under it: the
//!   first test shows that on a churning table. nf_tables' dumps, on the same
//!   `NETLINK_NETFILTER` socket, set `cb->seq` to the ruleset's generation: a dump of a large
//!   ruleset while another process commits changes is flagged, and `Socket::dump` (which
//!   `Socket::list` runs) must report it. The second test repeats such dumps until the kernel
//!   flags one, and says after how many tries.
//! - The receive-buffer fallback: `SO_RCVBUFFORCE` needs `CAP_NET_ADMIN` in the initial user
//!   namespace. The root of a user namespace of its own holds `CAP_NET_ADMIN` over its
//!   network namespace (it may ask ctnetlink and join the event groups) and is still refused;
//!   an unprivileged user is refused too. `Socket::set_rcvbuf_report` must say so, and the
//!   size got must be `SO_RCVBUF`'s, capped at `net.core.rmem_max`; `conntrack -E -b` prints
//!   the same notice as conntrack-tools 1.4.7 there.
//!
//! Live: runs as root, in throwaway network namespaces (`ip netns add`, or `unshare --net`
//! for the user-namespace case). `conntrack`, `ctevents` and `rcvbuf-probe` are the binaries
//! built next to this test (`cargo test --workspace` builds them).

use std::io::{BufRead, BufReader, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conntrack_codec::ct::request::Key;
use conntrack_codec::ct::ConntrackRepr;
use conntrack_codec::filter::DumpFilter;
use conntrack_codec::nfnl::{msg_type, NfGenMsg, Subsystem};
use conntrack_io::{Error, Socket};
use conntrack_tests::{tcp_entry, Netns, NOBODY};

/// `NFNL_SUBSYS_NFTABLES` (linux/netfilter/nfnetlink.h).
const NFNL_SUBSYS_NFTABLES: u8 = 10;
/// `NFT_MSG_GETRULE` (linux/netfilter/nf_tables.h, `enum nf_tables_msg_types`).
const NFT_MSG_GETRULE: u8 = 7;

/// A binary built next to this test.
fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("target directory")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test --workspace` builds it",
        path.display()
    );
    path
}

/// Dumps every nf_tables rule of the namespace with `Socket::dump`; returns the rules
/// delivered and whether the kernel flagged the dump.
fn dump_rules(sock: &mut Socket) -> (u64, bool) {
    let summary = sock
        .dump(
            |w, seq| {
                w.message(
                    msg_type(Subsystem::from_id(NFNL_SUBSYS_NFTABLES), NFT_MSG_GETRULE),
                    0,
                    seq,
                    0,
                    |w| {
                        NfGenMsg {
                            family: 0,
                            version: 0,
                            res_id: 0,
                        }
                        .emit(w)
                    },
                )?;
                Ok(())
            },
            |_| ControlFlow::Continue(()),
        )
        .expect("a rule dump ends, interrupted or not");
    let flagged = summary.interrupted;
    assert_eq!(
        summary.consistent().is_err(),
        flagged,
        "consistent() agrees with interrupted"
    );
    if flagged {
        assert!(matches!(summary.consistent(), Err(Error::DumpInterrupted)));
    }
    (summary.delivered, flagged)
}

#[test]
fn an_interrupted_dump_is_reported() {
    const RULES: u64 = 3000;
    const MAX_TRIES: u32 = 2000;
    let ns = Netns::new("dumpintr");
    let mut ruleset = String::from("table inet big {\n chain c {\n");
    for i in 0..RULES {
        ruleset.push_str(&format!(
            "  ip saddr 10.{}.{}.1 tcp dport {} counter accept\n",
            i / 256,
            i % 256,
            1000 + i
        ));
    }
    ruleset.push_str(" }\n}\n");
    ns.nft(&ruleset);
    let mut sock = ns.socket();
    // Nothing changes: the dump is whole and not flagged.
    assert_eq!(dump_rules(&mut sock), (RULES, false));

    // Another process commits ruleset changes without pause, one transaction per line.
    let mut churn = ns
        .command("nft")
        .arg("-i")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run nft -i");
    let mut input = churn.stdin.take().expect("stdin");
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let feeder = {
        let (stop, commits) = (Arc::clone(&stop), Arc::clone(&commits));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if input
                    .write_all(b"add table inet churn\ndelete table inet churn\n")
                    .is_err()
                {
                    break;
                }
                commits.fetch_add(2, Ordering::Relaxed);
            }
        })
    };
    let started = Instant::now();
    let mut tries = 0;
    let mut flagged_at = None;
    while tries < MAX_TRIES && started.elapsed() < Duration::from_secs(60) {
        tries += 1;
        let (delivered, flagged) = dump_rules(&mut sock);
        assert!(delivered > 0, "try {tries}: nothing delivered");
        if flagged {
            flagged_at = Some((tries, delivered));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    feeder.join().expect("feeder");
    let _ = churn.wait();
    let written = commits.load(Ordering::Relaxed);
    let (tries, delivered) = flagged_at.unwrap_or_else(|| {
        panic!("no dump of {RULES} rules flagged in {tries} tries ({written} commands written)")
    });
    println!(
        "NLM_F_DUMP_INTR on try {tries} (a dump of {RULES} nf_tables rules, {delivered} \
         delivered, while nft -i committed; {written} commands written in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    // Quiet again: whole and not flagged.
    assert_eq!(dump_rules(&mut sock), (RULES, false));
}

/// Creates (or deletes) entries `range` in bulk; returns how many succeeded.
fn bulk(sock: &mut Socket, range: std::ops::Range<u32>, delete: bool) -> usize {
    let entries: Vec<ConntrackRepr> = range.map(tcp_entry).collect();
    let summary = if delete {
        let keys: Vec<Key> = entries
            .iter()
            .map(|e| Key::orig(e.orig.expect("tuple")))
            .collect();
        sock.delete_batch(&keys, 200, |_, _| {})
    } else {
        sock.create_batch(&entries, 200, |_, _| {})
    };
    summary.expect("bulk").succeeded
}

#[test]
fn conntrack_dumps_are_never_flagged_interrupted() {
    const TABLE: u32 = 20_000;
    const TRIES: u32 = 10;
    let ns = Netns::new("ctintr");
    let mut sock = ns.socket();
    assert_eq!(bulk(&mut sock, 0..TABLE, false), TABLE as usize);
    let stop = Arc::new(AtomicBool::new(false));
    let churned = Arc::new(AtomicU64::new(0));
    let churner = {
        let (stop, churned) = (Arc::clone(&stop), Arc::clone(&churned));
        let mut sock = ns.socket();
        std::thread::spawn(move || {
            // Replace a slice of the table, again and again: new entries in, old ones out.
            let mut next = TABLE;
            while !stop.load(Ordering::Relaxed) {
                let made = bulk(&mut sock, next..next + 1000, false);
                let gone = bulk(&mut sock, next - TABLE..next - TABLE + 1000, true);
                churned.fetch_add((made + gone) as u64, Ordering::Relaxed);
                next += 1000;
            }
        })
    };
    let mut sizes = Vec::new();
    for _ in 0..TRIES {
        let before = churned.load(Ordering::Relaxed);
        let summary = sock
            .list(&DumpFilter::default(), |_| ControlFlow::Continue(()))
            .expect("the dump ends");
        let during = churned.load(Ordering::Relaxed) - before;
        assert!(
            !summary.interrupted,
            "a conntrack dump was flagged NLM_F_DUMP_INTR: this kernel sets cb->seq in \
             ctnetlink now; update docs/events.md and the test's note"
        );
        sizes.push((summary.delivered, during));
    }
    stop.store(true, Ordering::Relaxed);
    churner.join().expect("churner");
    assert!(
        sizes.iter().any(|&(_, during)| during > 0),
        "the table never changed during a dump: {sizes:?}"
    );
    println!(
        "{TRIES} dumps of a {TABLE}-entry table, none flagged; (entries delivered, changes \
         made during the dump): {sizes:?}"
    );
}

/// Runs `program args` as the root of a new user namespace with a new network namespace
/// (`unshare --user --map-root-user --net`) and returns its stdout.
fn in_user_namespace(program: &str, args: &[&str]) -> String {
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "--", program])
        .args(args)
        .output()
        .expect("run unshare");
    assert!(
        out.status.success(),
        "{program} in a user namespace: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The first stderr line of a long-running program (run as in [`in_user_namespace`]) that
/// contains `needle`; the program is killed then.
fn notice_in_user_namespace(program: &str, args: &[&str], needle: &str) -> String {
    let mut child = Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "--", program])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run unshare");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut found = None;
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.expect("stderr line");
        if line.contains(needle) {
            found = Some(line);
            break;
        }
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    found.unwrap_or_else(|| panic!("{program} {args:?} printed no {needle:?}: {seen:?}"))
}

/// `key=value` words of a probe line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
}

#[test]
fn the_receive_buffer_fallback_is_reported() {
    const ASK: usize = 16 << 20;
    let probe = sibling("rcvbuf-probe");
    let probe = probe.to_str().expect("utf-8 path");
    let ask = ASK.to_string();

    // Root in the initial user namespace: SO_RCVBUFFORCE, whatever net.core.rmem_max says.
    let ns = Netns::new("rcvbuf");
    let root = ns.run(probe, &[&ask]);
    assert_eq!(field(&root, "forced"), "true", "{root}");
    assert_eq!(field(&root, "effective"), (2 * ASK).to_string(), "{root}");

    // The root of a user namespace: CAP_NET_ADMIN over its own network namespace, refused
    // SO_RCVBUFFORCE all the same.
    let userns = in_user_namespace(probe, &[&ask]);
    let rmem_max: usize = field(&userns, "rmem_max").parse().expect("rmem_max");
    let capped = 2 * ASK.min(rmem_max);
    assert_eq!(field(&userns, "forced"), "false", "{userns}");
    assert_eq!(field(&userns, "effective"), capped.to_string(), "{userns}");
    assert_eq!(field(&userns, "subscribed"), "yes", "{userns}");
    assert_eq!(field(&userns, "entries"), "0", "{userns}");

    // An unprivileged user: refused too, and refused everything else.
    let nobody = ns.run("setpriv", &[&NOBODY[..], &[probe, &ask]].concat());
    assert_eq!(field(&nobody, "forced"), "false", "{nobody}");
    assert_eq!(field(&nobody, "effective"), capped.to_string(), "{nobody}");
    assert_eq!(field(&nobody, "subscribed"), "EPERM", "{nobody}");
    println!("root: {root}user namespace root: {userns}nobody: {nobody}");

    // The programs say what they got: conntrack -E -b prints 1.4.7's notice, ctevents says
    // the queue was capped.
    let real = notice_in_user_namespace("/usr/sbin/conntrack", &["-E", "-b", &ask], "NOTICE");
    let ours = sibling("conntrack");
    let ours = notice_in_user_namespace(
        ours.to_str().expect("utf-8 path"),
        &["-E", "-b", &ask],
        "NOTICE",
    );
    assert_eq!(ours, real, "conntrack -E -b in a user namespace");
    assert_eq!(
        real,
        format!("NOTICE: Netlink socket buffer size has been set to {capped} bytes.")
    );
    let ctevents = sibling("ctevents");
    let line = notice_in_user_namespace(
        ctevents.to_str().expect("utf-8 path"),
        &["-b", &ask],
        "receive queue",
    );
    assert_eq!(
        line,
        format!(
            "ctevents: receive queue of {capped} bytes (SO_RCVBUFFORCE refused: SO_RCVBUF, \
             capped at net.core.rmem_max)"
        )
    );
    println!("{real}\n{line}");
}
