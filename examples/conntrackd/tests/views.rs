//! What the program's caches show, against Debian's conntrackd 1.4.7 in the same setup: a
//! pair of ours and a pair of conntrackd, each in two namespaces joined by a veth pair.
//! - Expectations (`ExpectationSync { ftp }`): FTP control connections (with the `ftp`
//!   helper) and their expectations made on A reach B; `-i expect` on A and `-e expect` on
//!   B (and their `-x` forms) print the same lines for both pairs, and `-c` puts them into
//!   B's kernel, logged the same.
//! - `HashLimit`: more entries than the limit made on A; both caches refuse the rest and
//!   count it the same (`-s cache`).
//!
//! Skipped, saying so, when /usr/sbin/conntrackd is not 1.4.7.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use conntrack_tests::sync::{entry, ftp_master_and_expectation};
use conntrack_tests::Netns;

mod support;
use support::{need_real, ours, REAL};

/// A pair of daemons of one kind.
struct Pair {
    a: Netns,
    b: Netns,
    prog: &'static str,
    dir: PathBuf,
}

impl Pair {
    fn new(tag: &str, prog: &'static str, sync_extra: &str, hash_limit: u32) -> Pair {
        let a = Netns::new(&format!("{tag}a"));
        let b = Netns::new(&format!("{tag}b"));
        let dir = std::env::temp_dir().join(format!("{}-dir", a.name()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        support::veth(&a, &b, ("xpa0", "192.168.83.1"), ("xpb0", "192.168.83.2"));
        let p = Pair { a, b, prog, dir };
        for (name, ns, me, peer, dev) in [
            ("a", &p.a, "192.168.83.1", "192.168.83.2", "xpa0"),
            ("b", &p.b, "192.168.83.2", "192.168.83.1", "xpb0"),
        ] {
            let text =
                support::conf_text_with(&p.dir, name, (me, peer, dev, 3780), true, sync_extra)
                    .replace("HashLimit 131072", &format!("HashLimit {hash_limit}"));
            let conf = p.conf(name);
            std::fs::write(&conf, text).expect("conf");
            let c = conf.to_string_lossy().into_owned();
            let o = ns.exec(prog, &["-C", &c, "-d"]);
            assert!(
                o.status.success(),
                "{prog}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            support::wait_path(&p.dir.join(format!("{name}.sock")), true);
        }
        p
    }

    fn conf(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.conf"))
    }

    /// A client command to the daemon of side `name`; its output.
    fn client(&self, name: &str, args: &[&str]) -> String {
        let c = self.conf(name).to_string_lossy().into_owned();
        let ns = if name == "a" { &self.a } else { &self.b };
        let mut full = vec!["-C", c.as_str()];
        full.extend_from_slice(args);
        String::from_utf8_lossy(&ns.exec(self.prog, &full).stdout).into_owned()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        support::stop_daemons(&self.a, self.prog, &self.conf("a"));
        support::stop_daemons(&self.b, self.prog, &self.conf("b"));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The lines of a listing, the ages masked, sorted (1.4.7 lists in its hash table's order).
fn lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .lines()
        .map(|l| match l.split_once(" [active since ") {
            Some((head, _)) => format!("{head} [active since Ns]"),
            None => l.to_string(),
        })
        .collect();
    v.sort();
    v
}

const EXPECT_FTP: &str = "\tOptions {\n\t\tExpectationSync {\n\t\t\tftp\n\t\t}\n\t}\n";

#[test]
fn expectations_listed_and_committed_as_conntrackd() {
    need_real();
    let mut seen = Vec::new();
    for (tag, prog) in [("xr", REAL), ("xo", ours())] {
        let p = Pair::new(tag, prog, EXPECT_FTP, 131_072);
        // Our side sends after its HELLO is answered; 1.4.7's ALIVEs come once a second.
        std::thread::sleep(Duration::from_millis(1500));
        let mut s = p.a.socket();
        for i in 0..2u16 {
            let (m, e) = ftp_master_and_expectation(i);
            s.create(&m).expect("master");
            s.exp_create(&e).expect("expectation");
        }
        let t = Instant::now();
        while p.client("b", &["-e", "expect"]).lines().count() < 2 {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "{prog}: the expectations did not reach B\n{}",
                p.client("b", &["-s"])
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let views = [
            lines(&p.client("a", &["-i", "expect"])),
            lines(&p.client("a", &["-i", "expect", "-x"])),
            lines(&p.client("b", &["-e", "expect"])),
            lines(&p.client("b", &["-e", "expect", "-x"])),
            lines(&p.client("b", &["-e", "ct"])),
        ];
        // The commit: the masters, then the expectations, into B's kernel.
        let _ = p.client("b", &["-c"]);
        assert_eq!(
            conntrack_tests::sync::kernel_expectation_ports(&p.b),
            [50_000, 50_001],
            "{prog}"
        );
        // What the commit logged, times masked.
        let log = std::fs::read_to_string(p.dir.join("b.log")).expect("log");
        let commit: Vec<String> = log
            .lines()
            .filter(|l| l.contains("ommit"))
            .map(|l| {
                let msg = l.split_once(") ").map_or(l, |x| x.1);
                match msg.split_once("commit has taken ") {
                    Some((head, _)) => format!("{head}commit has taken S seconds"),
                    None => msg.to_string(),
                }
            })
            .collect();
        let mut views = views.to_vec();
        views.push(commit);
        seen.push(views);
    }
    let names = [
        "-i expect",
        "-i expect -x",
        "-e expect",
        "-e expect -x",
        "-e ct",
        "the log of -c",
    ];
    for (k, name) in names.iter().enumerate() {
        println!("{name} (conntrackd):\n  {}", seen[0][k].join("\n  "));
        assert_eq!(seen[1][k], seen[0][k], "{name}: ours, then conntrackd's");
        assert!(!seen[0][k].is_empty(), "{name}");
    }
}

#[test]
fn the_hash_limit_is_counted_as_conntrackd() {
    need_real();
    let mut seen = Vec::new();
    for (tag, prog) in [("hr", REAL), ("ho", ours())] {
        let p = Pair::new(tag, prog, "", 10);
        std::thread::sleep(Duration::from_millis(1500));
        let made: Vec<_> = (0..15).map(|i| entry(1, i, i)).collect();
        p.a.socket()
            .create_batch(&made, 64, |_, r| r.expect("create"))
            .expect("batch");
        let t = Instant::now();
        while p.client("b", &["-e"]).lines().count() < 10 {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "{prog}: B's external cache did not fill"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // The refused ones are not sent: nothing more comes.
        std::thread::sleep(Duration::from_millis(1500));
        seen.push([
            p.client("a", &["-s", "cache"]),
            p.client("b", &["-s", "cache"]),
            format!(
                "{} {}",
                p.client("a", &["-i"]).lines().count(),
                p.client("b", &["-e"]).lines().count()
            ),
        ]);
    }
    println!("A -s cache (conntrackd):\n{}", seen[0][0]);
    for (k, name) in ["A's -s cache", "B's -s cache", "-i and -e lines"]
        .iter()
        .enumerate()
    {
        assert_eq!(seen[1][k], seen[0][k], "{name}: ours, then conntrackd's");
    }
}
