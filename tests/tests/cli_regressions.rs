//! The defects of issue 14, each compared live with conntrack-tools 1.4.7 (the ones that
//! need no more of the kernel than an empty table are golden cases of `conntrack-cli`):
//!
//! - an explicit reply tuple broke create (ICMP and ICMPv6 reply fields, the reply protocol
//!   of protocols without a handler), and with it a save and restore with `-R`;
//! - one bad line of `connlabel.conf` lost every label name; an empty map printed a bare
//!   ` labels`;
//! - `-E` warned once per rise of the drop counter instead of once per overrun;
//! - `-D` interrupted by SIGTERM had printed nothing of what it had deleted.

mod cli_support;

use std::process::Command;
use std::time::Duration;

use cli_support::{all_passed, mask, need_reference, ours, replayed, run, spawn, Netns, REAL};
use conntrack_tests::cli_golden::run_with_labels;

/// Creates with an explicit reply tuple (and the lines around them that share the code).
const CREATES: &[&str] = &[
    // The cases: ICMP reply fields, ICMPv6, unknown protocols, IGMP.
    "-I -t 99 -p icmp -s 10.4.0.9 -d 10.4.0.4 -r 10.4.0.4 -q 10.4.0.9 --icmp-type 13 --icmp-code 0 --icmp-id 77",
    "-I -t 99 -s 2001::9 -d 2001::4 -r 2001::4 -q 2001::9 -p icmpv6 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 5",
    "-I -t 99 -s 1.1.1.1 -d 2.2.2.2 -r 2.2.2.2 -q 1.1.1.1 -p 200",
    "-I -t 10 -s 0.0.0.0 -d 224.0.0.22 -r 224.0.0.22 -q 0.0.0.0 -p 2",
    // The reply protocol is set after the options, whatever their order.
    "-I -t 99 -p 200 -s 1.1.1.1 -d 2.2.2.2 -r 2.2.2.2 -q 1.1.1.1",
    "-I -t 99 -r 2.2.2.2 -q 1.1.1.1 -p esp",
    // A partial reply tuple.
    "-I -t 99 -s 1.1.1.1 -d 2.2.2.2 -r 2.2.2.2 -p 200",
    "-I -t 99 -s 1.1.1.1 -d 2.2.2.2 -q 1.1.1.1 -p 200",
    "-I -t 99 -s 1.1.1.1 -d 2.2.2.2 -r 2.2.2.2 -p icmp --icmp-type 8 --icmp-code 0",
    // The reply's ICMP type is the inverse of the type when it is given, found with the
    // family known then: before any address, there is none (the kernel refuses it).
    "-I -t 99 -p icmp --icmp-type 8 -s 1.1.1.1 -d 2.2.2.2 --icmp-code 0",
    "-I -t 99 -r 2.2.2.2 -q 1.1.1.1 -p icmp --icmp-type 8 --icmp-code 0",
    "-I -t 99 -p icmp -s 1.1.1.1 -d 2.2.2.2 --icmp-type 3 --icmp-code 1",
    "-I -t 99 -p icmp -s 1.1.1.1 -d 2.2.2.2 --icmp-type 15 --icmp-code 0 --icmp-id 3",
    "-I -t 99 -p icmpv6 -s ::1 -d ::2 --icmpv6-type 139 --icmpv6-code 0",
    "-I -t 99 -p icmpv6 -s ::1 -d ::2 --icmpv6-type 1 --icmpv6-code 0",
];

#[test]
fn explicit_reply_tuples_create_as_conntrack_tools_does() {
    need_reference();
    let ns = Netns::new("clireply");
    let mut failures = Vec::new();
    for line in CREATES {
        let args: Vec<&str> = line.split_whitespace().collect();
        if let Err(e) = replayed(&ns, "", &args, None) {
            failures.push(e);
        }
    }
    all_passed(failures, CREATES.len());
}

/// Entries whose saved form (`-o save`) has explicit reply tuples of every kind.
const SAVED: &str = "\
-I -t 99 -p icmp -s 10.4.0.9 -d 10.4.0.4 --icmp-type 13 --icmp-code 0 --icmp-id 77
-I -t 99 -p icmp -s 10.4.0.9 -d 10.4.0.5 --icmp-type 8 --icmp-code 0 --icmp-id 1
-I -t 99 -s 2001::9 -d 2001::4 -p icmpv6 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 5
-I -t 99 -s 1.1.1.1 -d 2.2.2.2 -p 200
-I -t 99 -s 0.0.0.0 -d 224.0.0.22 -p 2
-I -t 99 -s 1.1.1.1 -d 2.2.2.2 -p udp --sport 1 --dport 2
-I -t 99 -s 1.1.1.1 -d 2.2.2.2 -p tcp --sport 1 --dport 2 --state ESTABLISHED
-I -t 99 -s 1.1.1.1 -d 2.2.2.2 -p gre --srckey 1 --dstkey 2
";

/// `-L -o save` of a table, then `-R` of that into an emptied table: every line restores.
#[test]
fn a_saved_table_restores() {
    need_reference();
    let ns = Netns::new("clisave");
    cli_support::reset(&ns, SAVED);
    let saved = run(&ns, REAL, &["-L", "-o", "save"], None);
    assert_eq!(saved.code, 0, "{saved:?}");
    assert_eq!(
        saved.stdout.lines().count(),
        SAVED.lines().count(),
        "{saved:?}"
    );
    let file = format!("-F\n{}", saved.stdout);
    let mut failures = Vec::new();
    if let Err(e) = replayed(&ns, SAVED, &["-R", "-"], Some(file.as_bytes())) {
        failures.push(e);
    }
    // And what ours restores is what was saved.
    cli_support::reset(&ns, SAVED);
    let before = cli_support::table(&ns);
    let restored = run(&ns, ours(), &["-R", "-"], Some(file.as_bytes()));
    let after = cli_support::table(&ns);
    if restored.code != 0 || before != after {
        failures.push(format!(
            "ours -R: {restored:?}\nbefore:\n{before}\nafter:\n{after}"
        ));
    }
    all_passed(failures, 2);
}

/// Label maps, each with entries that carry labels: a bad line, an empty file, a Latin-1
/// name, and a messy file; both tools list the entries with `-o labels` and filter them
/// with `-l`.
#[test]
fn label_maps_read_as_conntrack_tools_reads_them() {
    need_reference();
    let ns = Netns::new("clilabelmap");
    ns.nft("table inet l {\n chain c {\n  type filter hook output priority 0;\n  ct label set 1\n }\n}\n");
    let map: &[u8] = b"0 zero\n5 five\n127 last\n";
    let setup = [
        "-I -s 1.2.3.4 -d 5.6.7.8 -p udp --sport 1 --dport 2 -t 999 --label-add zero",
        "-I -s 1.2.3.4 -d 5.6.7.8 -p udp --sport 3 --dport 2 -t 999 --label-add five,last",
        "-I -s 1.2.3.4 -d 5.6.7.8 -p udp --sport 4 --dport 2 -t 999",
    ];
    for line in setup {
        let args: Vec<Vec<u8>> = line
            .split_whitespace()
            .map(|w| w.as_bytes().to_vec())
            .collect();
        let r = run_with_labels(&ns, REAL, Some(map), &args);
        assert_eq!(r.exit, 0, "{line}: {r:?}");
    }
    let maps: &[(&str, Option<&[u8]>)] = &[
        (
            "a bad line",
            Some(b"0 zero\n5 five\n127 last\n128 big\nno number\n"),
        ),
        ("empty", Some(b"")),
        ("Latin-1", Some(b"0 z\xe9ro\n5 five\n127 last\n")),
        (
            "messy",
            Some(b" 0x0 zero \n5 five\n5 again\n127 last last\n0177 last\n"),
        ),
        ("none", None),
    ];
    let lines: &[&str] = &[
        "-L -o labels",
        "-L -l last",
        "-L -l zero -o labels,extended",
    ];
    let mut failures = Vec::new();
    for (what, map) in maps {
        for line in lines {
            let args: Vec<Vec<u8>> = line
                .split_whitespace()
                .map(|w| w.as_bytes().to_vec())
                .collect();
            let a = run_with_labels(&ns, REAL, *map, &args);
            let b = run_with_labels(&ns, ours(), *map, &args);
            let text = |v: &[u8]| mask(&String::from_utf8_lossy(v));
            if a.exit != b.exit || text(&a.stdout) != text(&b.stdout) || a.stderr != b.stderr {
                failures.push(format!(
                    "map {what}, conntrack {line}:\n--- 1.4.7 ({})\n{}{}--- ours ({})\n{}{}",
                    a.exit,
                    text(&a.stdout),
                    String::from_utf8_lossy(&a.stderr),
                    b.exit,
                    text(&b.stdout),
                    String::from_utf8_lossy(&b.stderr)
                ));
            }
        }
    }
    all_passed(failures, maps.len() * lines.len());
}

const ENOBUFS: &str = "WARNING: We have hit ENOBUFS!";

/// Runs `prog -E -e NEW` in `ns` through a storm of creates, with strace counting the
/// receives that failed with ENOBUFS; returns the warnings it printed and that count.
fn warnings_and_overruns(ns: &Netns, prog: &str, storm: u32) -> (usize, usize) {
    let trace = std::env::temp_dir().join(format!(
        "cli-enobufs-{}-{}.trace",
        std::process::id(),
        prog.len()
    ));
    let listener = spawn(ns, prog, &["-E", "-e", "NEW"]);
    let pid = listener.id().to_string();
    let strace = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-e",
            "trace=recvmsg,recvfrom",
            "-e",
            "status=failed",
            "-o",
        ])
        .arg(&trace)
        .args(["-p", &pid])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("strace (Debian package strace)");
    std::thread::sleep(Duration::from_millis(700));
    let mut sock = ns.socket();
    let entries: Vec<conntrack_codec::ct::ConntrackRepr> = (0..storm).map(udp_entry).collect();
    sock.create_batch(&entries, 1024, |_, _| {}).expect("storm");
    // The tracer slows the listener down: give it time to read what is queued.
    std::thread::sleep(Duration::from_millis(3000));
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let out = listener.wait_with_output().expect("listener");
    let _ = strace.wait_with_output();
    let text = std::fs::read_to_string(&trace).unwrap_or_default();
    let _ = std::fs::remove_file(&trace);
    let warned = String::from_utf8_lossy(&out.stderr)
        .matches(ENOBUFS)
        .count();
    (warned, text.matches("ENOBUFS").count())
}

/// A storm of creates while the listener, slowed down by strace, reads: the kernel
/// reports an overrun (ENOBUFS) once per congestion, while the drop counter rises on every
/// event it drops. conntrack-tools warns once per ENOBUFS it gets; so must ours (it warned
/// once per rise of the drop counter, about ten times more).
#[test]
fn one_enobufs_warning_per_overrun() {
    need_reference();
    let storm = 100_000;
    let ns = Netns::new("clienobufs");
    let (theirs, their_overruns) = warnings_and_overruns(&ns, REAL, storm);
    let _ = run(&ns, REAL, &["-F"], None);
    let (ours_, our_overruns) = warnings_and_overruns(&ns, ours(), storm);
    println!(
        "{storm} creates: conntrack-tools warned {theirs} times for {their_overruns} ENOBUFS; \
         ours {ours_} times for {our_overruns}"
    );
    assert!(
        their_overruns > 0 && our_overruns > 0,
        "no overrun here: the storm was too small to show anything"
    );
    assert_eq!(
        theirs, their_overruns,
        "conntrack-tools: one warning per ENOBUFS"
    );
    assert_eq!(ours_, our_overruns, "ours: one warning per ENOBUFS");
}

/// A UDP entry with its own source address.
fn udp_entry(i: u32) -> conntrack_codec::ct::ConntrackRepr {
    let src = std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 | i));
    let dst = std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    let orig = conntrack_codec::ct::Tuple::udp(src, dst, 1000, 53);
    conntrack_codec::ct::ConntrackRepr {
        family: 2,
        orig: Some(orig),
        reply: Some(orig.inverted()),
        timeout: Some(3600),
        ..Default::default()
    }
}

/// Fills the table with `n` UDP entries, each with its own source address.
fn fill_udp(ns: &Netns, n: u32) {
    let mut sock = ns.socket();
    let _ = sock.set_rcvbuf(16 << 20);
    let entries: Vec<conntrack_codec::ct::ConntrackRepr> = (0..n).map(udp_entry).collect();
    let mut failed = 0;
    sock.create_batch(&entries, 1024, |_, r| failed += usize::from(r.is_err()))
        .expect("fill");
    assert_eq!(failed, 0, "entries not created");
}

/// The original source addresses of the entries in the table.
fn sources(ns: &Netns) -> std::collections::BTreeSet<String> {
    let mut sock = ns.socket();
    let mut out = std::collections::BTreeSet::new();
    let summary = sock
        .list(&conntrack_codec::filter::DumpFilter::default(), |v| {
            if let Ok(Some(t)) = v.orig() {
                if let Some(src) = t.src {
                    out.insert(src.to_string());
                }
            }
            std::ops::ControlFlow::Continue(())
        })
        .expect("dump");
    assert!(!summary.interrupted, "the table changed during the dump");
    out
}

/// Starts `prog -D` on a table of `n` entries, sends it SIGTERM once its first lines are
/// out, and returns the sources it printed, the sources it deleted, and how it ended.
fn interrupted_delete(
    ns: &Netns,
    prog: &str,
    n: u32,
) -> (
    std::collections::BTreeSet<String>,
    std::collections::BTreeSet<String>,
    std::process::ExitStatus,
) {
    use std::io::{BufRead, BufReader};
    let _ = run(ns, REAL, &["-F"], None);
    fill_udp(ns, n);
    let before = sources(ns);
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns.name(), prog, "-D"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start -D");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut printed = std::collections::BTreeSet::new();
    let mut line = String::new();
    let mut signalled = false;
    while out.read_line(&mut line).expect("read") > 0 {
        if !signalled {
            // `ip netns exec` execs the program: the child's pid is the program's.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            signalled = true;
        }
        if let Some(src) = line.split_whitespace().find_map(|w| w.strip_prefix("src=")) {
            printed.insert(src.to_string());
        }
        line.clear();
    }
    let status = child.wait().expect("wait");
    let after = sources(ns);
    let deleted: std::collections::BTreeSet<String> = before.difference(&after).cloned().collect();
    (printed, deleted, status)
}

/// SIGTERM half-way through `-D`: what was deleted is exactly what was printed (1.4.7,
/// whose output is buffered, loses the lines still in its buffer; ours finishes the deletes
/// in flight, prints them, and then dies of the signal as 1.4.7 does).
#[test]
fn sigterm_during_delete_prints_exactly_what_was_deleted() {
    use std::os::unix::process::ExitStatusExt;
    need_reference();
    let ns = Netns::new("clisigterm");
    let n = 150_000;
    let (printed, deleted, status) = interrupted_delete(&ns, ours(), n);
    println!(
        "ours: {} of {n} entries deleted, {} printed, ended by {:?}",
        deleted.len(),
        printed.len(),
        status.signal()
    );
    let (their_printed, their_deleted, their_status) = interrupted_delete(&ns, REAL, n);
    println!(
        "conntrack-tools 1.4.7: {} deleted, {} printed ({} deleted and not printed), ended by {:?}",
        their_deleted.len(),
        their_printed.len(),
        their_deleted.difference(&their_printed).count(),
        their_status.signal()
    );
    assert_eq!(
        status.signal(),
        Some(15),
        "ours did not die of SIGTERM: {status:?}"
    );
    assert!(
        !deleted.is_empty() && deleted.len() < n as usize,
        "the signal did not come half-way: {} of {n} deleted",
        deleted.len()
    );
    assert_eq!(
        printed.len(),
        deleted.len(),
        "printed and deleted differ: {} printed, {} deleted",
        printed.len(),
        deleted.len()
    );
    assert!(
        printed == deleted,
        "the printed entries are not the deleted ones"
    );
}
