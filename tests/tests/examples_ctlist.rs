//! `ctlist` as a user runs it: its command line, and a reader that goes away. Like
//! `conntrack -L` (conntrack-tools 1.4.7), it dies of SIGPIPE when its reader closes the
//! pipe; it takes `--help`, and refuses any other argument with exit status 2.
//!
//! Live: runs as root in a throwaway network namespace. `ctlist` is the binary built next
//! to this test (`cargo test --workspace` builds it; alone, run
//! `cargo build -p conntrack-examples --bin ctlist` first).

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};

use conntrack_codec::ct::{ConntrackRepr, Tuple};
use conntrack_tests::Netns;

fn ctlist_path() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let path = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target directory")
        .join("ctlist");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p conntrack-examples --bin ctlist` \
         (cargo test --workspace does)",
        path.display()
    );
    path
}

/// Runs `program args` in `ns`, reads one line of its output, closes the pipe, and waits.
fn read_one_line_and_close(ns: &Netns, program: &str, args: &[&str]) -> (String, ExitStatus) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns.name(), program])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let mut line = String::new();
    {
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        out.read_line(&mut line).expect("read a line");
    }
    (line, child.wait().expect("wait"))
}

#[test]
fn dies_of_sigpipe_as_conntrack_does() {
    let ns = Netns::new("ctlist");
    // Enough entries that the listing does not fit the pipe.
    let mut sock = ns.socket();
    let entries: Vec<ConntrackRepr> = (0..3000u32)
        .map(|i| {
            let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i));
            let orig = Tuple::udp(src, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 1000, 53);
            ConntrackRepr {
                family: 2,
                orig: Some(orig),
                reply: Some(orig.inverted()),
                timeout: Some(300),
                ..ConntrackRepr::default()
            }
        })
        .collect();
    let summary = sock
        .create_batch(&entries, 256, |i, r| assert!(r.is_ok(), "entry {i}: {r:?}"))
        .expect("fill");
    assert_eq!(summary.succeeded, entries.len());

    let ctlist = ctlist_path();
    let (theirs_line, theirs) = read_one_line_and_close(&ns, "/usr/sbin/conntrack", &["-L"]);
    let (ours_line, ours) = read_one_line_and_close(&ns, ctlist.to_str().expect("path"), &[]);
    assert!(theirs_line.starts_with("udp "), "{theirs_line}");
    assert!(ours_line.starts_with("udp "), "{ours_line}");
    assert_eq!(theirs.signal(), Some(13), "conntrack -L: {theirs:?}");
    assert_eq!(ours.signal(), Some(13), "ctlist: {ours:?}");
    println!("conntrack -L and ctlist both died of SIGPIPE");
}

#[test]
fn help_and_bad_arguments() {
    let ctlist = ctlist_path();
    let help = Command::new(&ctlist).arg("--help").output().expect("run");
    assert!(help.status.success(), "{help:?}");
    assert!(String::from_utf8_lossy(&help.stdout).starts_with("usage: ctlist"));
    for args in [&["-L"][..], &["extra"], &["--help", "x"]] {
        let out = Command::new(&ctlist).args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty());
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("ctlist: unexpected argument"));
    }
}
