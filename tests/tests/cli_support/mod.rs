//! Support for the live tests of `conntrack` against conntrack-tools 1.4.7: running both
//! tools in a throwaway namespace under the same program name, masking what legitimately
//! differs between two runs (countdowns, ids, port ids, clocks), snapshotting the table,
//! and replaying a command on identical fresh tables.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

pub use conntrack_tests::Netns;

/// The reference binary.
pub const REAL: &str = "/usr/sbin/conntrack";

/// Our binary: `conntrack` of the `conntrack-cli` package, built next to this test
/// (`cargo test --workspace` builds it; alone, run `cargo build -p conntrack-cli` first).
pub fn ours() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test's own path");
        let dir = exe
            .parent()
            .and_then(std::path::Path::parent)
            .expect("the target directory");
        let path = dir.join("conntrack");
        assert!(
            path.exists(),
            "{} is missing: build it with `cargo build -p conntrack-cli` \
             (cargo test --workspace does)",
            path.display()
        );
        path.to_string_lossy().into_owned()
    })
}

/// What one run printed and returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The exit status (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

fn command(ns: &Netns, prog: &str, args: &[&str]) -> Command {
    let mut c = ns.command("bash");
    c.arg("-c")
        .arg("exec -a conntrack \"$0\" \"$@\"")
        .arg(prog)
        .args(args);
    c
}

/// Runs `prog` (as `conntrack`) inside `ns`, feeding `stdin`.
pub fn run(ns: &Netns, prog: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = command(ns, prog, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the program");
    let input = stdin.unwrap_or_default().to_vec();
    let mut pipe = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = feeder.join();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Starts `prog` (as `conntrack`) inside `ns` in the background, its output to pipes.
pub fn spawn(ns: &Netns, prog: &str, args: &[&str]) -> std::process::Child {
    command(ns, prog, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the program")
}

/// Replaces the digits that follow `key` with `to`.
fn mask_after(s: &str, key: &str, to: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find(key) {
        let after = pos + key.len();
        out.push_str(&rest[..after]);
        let digits = rest[after..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - after);
        if digits > 0 {
            out.push_str(to);
        }
        rest = &rest[after + digits..];
    }
    out.push_str(rest);
    out
}

const L4: [&str; 9] = [
    "tcp", "udp", "udplite", "icmp", "icmpv6", "sctp", "gre", "dccp", "unknown",
];

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Masks one line: the timeout of a default line (the number after the first
/// `l4name number` pair) and of an expectation line (before `proto=`), and an event's
/// time prefix.
fn mask_line(line: &str) -> String {
    let (prefix, body) = match line.split_once("]\t") {
        Some((p, b))
            if p.starts_with('[')
                && p[1..]
                    .bytes()
                    .all(|c| c.is_ascii_digit() || c == b'.' || c == b' ') =>
        {
            ("[TS]\t", b)
        }
        _ => ("", line),
    };
    let mut tokens: Vec<String> = body.split(' ').map(str::to_string).collect();
    let words: Vec<usize> = (0..tokens.len())
        .filter(|&i| !tokens[i].is_empty())
        .collect();
    for k in 0..words.len() {
        let w = &tokens[words[k]];
        if w.starts_with("proto=") && k > 0 && all_digits(&tokens[words[k - 1]]) {
            tokens[words[k - 1]] = "T".into();
            break;
        }
        if L4.contains(&w.as_str()) && k + 2 < words.len() && all_digits(&tokens[words[k + 1]]) {
            if all_digits(&tokens[words[k + 2]]) {
                tokens[words[k + 2]] = "T".into();
            }
            break;
        }
    }
    format!("{prefix}{}", tokens.join(" "))
}

/// Masks what differs between two runs on identical tables.
pub fn mask(s: &str) -> String {
    let mut s = s.to_string();
    for (key, to) in [
        ("id=", "N"),
        ("<id>", "N"),
        ("portid=", "N"),
        ("<timeout>", "T"),
        ("-t ", "T"),
        ("delta-time=", "D"),
        ("<deltatime>", "D"),
        ("<hour>", "H"),
        ("<min>", "M"),
        ("<sec>", "S"),
        ("<wday>", "W"),
        ("<day>", "D"),
        ("<start>", "X"),
        ("<stop>", "X"),
        ("insert=", "N"),
        ("invalid=", "N"),
        ("found=", "N"),
        ("expect_new=", "N"),
        ("expect_create=", "N"),
        ("expect_delete=", "N"),
    ] {
        s = mask_after(&s, key, to);
    }
    // The requesting program is looked up in /proc while it may be exiting: either tool
    // may miss it.
    let s: String = s
        .lines()
        .map(|l| {
            let l = match l.find(" progname=") {
                Some(p) => &l[..p],
                None => l,
            };
            let l = match (l.find("[start="), l.rfind(']')) {
                (Some(_), _) => mask_brackets(l),
                _ => l.to_string(),
            };
            mask_line(&l)
        })
        .collect::<Vec<_>>()
        .join("\n");
    s
}

/// `[start=...]` and `[stop=...]` keep their form, not their text (the tools read the
/// clock at different moments only for `delta-time`, but a second may tick between runs
/// of a replayed table).
fn mask_brackets(l: &str) -> String {
    let mut out = String::new();
    let mut rest = l;
    while let Some(p) = rest.find("[st") {
        out.push_str(&rest[..p]);
        match rest[p..].find(']') {
            Some(e) => {
                let inner = &rest[p..p + e];
                let key = inner.split('=').next().unwrap_or("");
                out.push_str(key);
                out.push_str("=X]");
                rest = &rest[p + e + 1..];
            }
            None => {
                rest = &rest[p..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The table, as `conntrack -L -o save` of both families and `-L expect` list it, masked
/// and sorted.
pub fn table(ns: &Netns) -> String {
    let mut out = String::new();
    for args in [
        &["-L", "-o", "save", "-f", "ipv4"][..],
        &["-L", "-o", "save", "-f", "ipv6"],
        &["-L", "expect"],
        &["-L", "expect", "-f", "ipv6"],
    ] {
        out.push_str(&run(ns, REAL, args, None).stdout);
    }
    let mut lines: Vec<String> = mask(&out).lines().map(str::to_string).collect();
    lines.sort();
    lines.join("\n")
}

/// Runs `setup` (lines of `-I`/`-A`/`-U`/`-D` commands) with the reference tool: with
/// `-R`, unless a line uses labels (1.4.7 frees its label map after each command of a
/// file, and crashes on the next one that needs it).
pub fn apply(ns: &Netns, setup: &str) {
    if setup.contains("label") {
        for line in setup.lines().filter(|l| !l.trim().is_empty()) {
            let r = run(ns, REAL, &words(line), None);
            assert!(
                r.code == 0 || line.starts_with("-D"),
                "setup `{line}` failed: {r:?}"
            );
        }
    } else {
        let r = run(ns, REAL, &["-R", "-"], Some(setup.as_bytes()));
        assert_eq!(r.code, 0, "setup failed: {r:?}");
    }
}

/// Empties the tables and applies `setup`.
pub fn reset(ns: &Netns, setup: &str) {
    run(ns, REAL, &["-F"], None);
    run(ns, REAL, &["-F", "expect"], None);
    apply(ns, setup);
}

fn diff(what: &str, a: &str, b: &str, out: &mut String) {
    if a == b {
        return;
    }
    out.push_str(&format!("  {what} differs:\n"));
    let (al, bl): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    for i in 0..al.len().max(bl.len()) {
        let (x, y) = (al.get(i), bl.get(i));
        if x != y {
            out.push_str(&format!(
                "    line {}:\n      1.4.7: {}\n      ours:  {}\n",
                i + 1,
                x.unwrap_or(&"(none)"),
                y.unwrap_or(&"(none)")
            ));
        }
    }
}

/// Whether the lines of `part` appear, in order, among those of `whole`.
fn subsequence(part: &str, whole: &str) -> bool {
    let mut rest = whole.lines();
    part.lines().all(|l| rest.any(|w| w == l))
}

/// The number of entries `-U` says it updated.
fn updated(stderr: &str) -> Option<usize> {
    let line = stderr
        .lines()
        .find(|l| l.ends_with(" flow entries have been updated."))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// How stdout is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    /// Line for line.
    Same,
    /// `-U`: 1.4.7 prints only some of the entries it updates, and reports and counts
    /// the outcome of one request with the reply of another (its replies fall out of step);
    /// ours prints each entry it updates, reports each update that fails, and counts what
    /// it updated. 1.4.7's lines must appear in ours, in order; ours must have one line per
    /// entry its summary counts; its stderr only `Operation failed` lines and the summary.
    /// The resulting tables (compared apart) must be the same.
    Update,
}

/// Compares two runs (and two tables, if given); `Err` with a readable difference.
pub fn compare(
    args: &[&str],
    a: &Run,
    b: &Run,
    tables: Option<(&str, &str)>,
) -> Result<(), String> {
    compare_as(args, a, b, tables, Stdout::Same)
}

/// [`compare`], with stdout compared as `how` says.
pub fn compare_as(
    args: &[&str],
    a: &Run,
    b: &Run,
    tables: Option<(&str, &str)>,
    how: Stdout,
) -> Result<(), String> {
    let mut out = String::new();
    if a.code != b.code {
        out.push_str(&format!(
            "  exit status: 1.4.7 {}, ours {}\n",
            a.code, b.code
        ));
    }
    match how {
        Stdout::Same => diff("stdout", &mask(&a.stdout), &mask(&b.stdout), &mut out),
        Stdout::Update => {
            let (theirs, ours) = (mask(&a.stdout), mask(&b.stdout));
            // After a failed update 1.4.7 may print the entry it could not update (the
            // reply to its GET); ours prints only what it updated.
            let failed = a.stderr.contains("Operation failed: ");
            if !failed && !subsequence(&theirs, &ours) {
                diff(
                    "stdout (1.4.7's lines among ours)",
                    &theirs,
                    &ours,
                    &mut out,
                );
            }
            if let Some(n) = updated(&b.stderr) {
                if ours.lines().count() != n {
                    out.push_str(&format!(
                        "  stdout: {} lines for {n} entries updated\n{ours}\n",
                        ours.lines().count()
                    ));
                }
            }
        }
    }
    if how == Stdout::Same {
        diff("stderr", &mask(&a.stderr), &mask(&b.stderr), &mut out);
    }
    if how == Stdout::Update {
        let stray: Vec<&str> = b
            .stderr
            .lines()
            .filter(|l| {
                !l.starts_with("Operation failed: ")
                    && !l.ends_with(" flow entries have been updated.")
            })
            .collect();
        if !stray.is_empty() {
            diff("stderr", &mask(&a.stderr), &mask(&b.stderr), &mut out);
        }
    }
    if let Some((ta, tb)) = tables {
        diff("resulting table", ta, tb, &mut out);
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(format!("conntrack {}\n{out}", args.join(" ")))
    }
}

/// Runs a read-only command with both tools on the same table, one after the other.
pub fn same_table(ns: &Netns, args: &[&str]) -> Result<(), String> {
    let a = run(ns, REAL, args, None);
    let b = run(ns, ours(), args, None);
    compare(args, &a, &b, None)
}

/// Runs a command with both tools on identical fresh tables (`setup` replayed in the same
/// namespace before each, so the kernel lists the entries in the same order) and compares
/// what they print and the tables they leave.
pub fn replayed(
    ns: &Netns,
    setup: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Result<(), String> {
    let updates = args.contains(&"-U")
        || stdin.is_some_and(|s| String::from_utf8_lossy(s).contains("-U"))
        || args
            .iter()
            .any(|a| std::fs::read_to_string(a).is_ok_and(|text| text.contains("-U")));
    let how = if updates {
        Stdout::Update
    } else {
        Stdout::Same
    };
    reset(ns, setup);
    let a = run(ns, REAL, args, stdin);
    let ta = table(ns);
    reset(ns, setup);
    let b = run(ns, ours(), args, stdin);
    let tb = table(ns);
    compare_as(args, &a, &b, Some((&ta, &tb)), how)
}

/// Splits a command line of a test list (no quoting).
pub fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Asserts that every case passed, listing the failures.
pub fn all_passed(failures: Vec<String>, total: usize) {
    assert!(
        failures.is_empty(),
        "{} of {total} cases differ from conntrack-tools 1.4.7:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Panics with a clear message if the reference tool is missing.
pub fn need_reference() {
    assert!(
        std::path::Path::new(REAL).exists(),
        "{REAL} (Debian package conntrack 1.4.7) is needed for the differential tests"
    );
}
