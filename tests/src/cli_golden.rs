//! Recording conntrack-tools 1.4.7's answers to the command lines of a case file, as the
//! golden files of `conntrack-cli` hold them (`conntrack_cli::golden`).
//!
//! Each case runs `/usr/sbin/conntrack` under the name `conntrack` in a throwaway network
//! namespace (its table emptied before each case), inside a private mount namespace whose
//! `/etc` is an overlay: there `/etc/xtables/connlabel.conf` is the case's label map (or
//! absent), whatever the host has. Nothing on the host is changed.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use conntrack_cli::golden::{Answer, Case};

use crate::Netns;

/// The tool whose answers are recorded.
pub const REAL: &str = "/usr/sbin/conntrack";

/// Sets up the private `/etc` and runs the tool: `$1` is `map` (with the map's text in
/// `$2`) or `none`, `$3` the network namespace, the rest the arguments.
const SCRIPT: &str = r#"set -e
mount -t tmpfs -o size=1m,mode=0755 ctrs-golden /mnt
mkdir -p /mnt/upper/xtables /mnt/work
if [ "$1" = map ]; then printf '%s' "$2" > /mnt/upper/xtables/connlabel.conf; fi
mount -t overlay -o lowerdir=/etc,upperdir=/mnt/upper,workdir=/mnt/work ctrs-golden /etc
if [ "$1" = none ]; then mount -t tmpfs -o size=1m,mode=0755 ctrs-golden /etc/xtables; fi
ns=$3
shift 3
exec ip netns exec "$ns" bash -c 'exec -a conntrack "$0" "$@"' "$REAL" "$@"
"#;

/// Runs one case with the real tool in `ns`, with the label maps of `dir/labels`.
///
/// # Panics
/// If the label map of the case cannot be read, or the tool cannot be started.
pub fn answer(ns: &Netns, dir: &Path, case: &Case) -> Answer {
    let map = (case.labels != "none").then(|| {
        let path = dir.join("labels").join(format!("{}.conf", case.labels));
        std::fs::read(&path).unwrap_or_else(|e| panic!("label map {}: {e}", path.display()))
    });
    run_with_labels(ns, REAL, map.as_deref(), &case.args)
}

/// Runs `program` (under the name `conntrack`) with `args` in `ns`, where it finds `map`
/// at `/etc/xtables/connlabel.conf` (no file for `None`).
///
/// # Panics
/// If the map holds a NUL byte (it goes through the shell as an argument), or the program
/// cannot be started.
pub fn run_with_labels(ns: &Netns, program: &str, map: Option<&[u8]>, args: &[Vec<u8>]) -> Answer {
    let mode = if map.is_some() { "map" } else { "none" };
    let map = map.unwrap_or_default();
    assert!(!map.contains(&0), "a label map without NUL bytes");
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .args(["sh", "-c", SCRIPT, "sh", mode])
        .arg(OsStr::from_bytes(map))
        .arg(ns.name())
        .args(args.iter().map(|a| OsStr::from_bytes(a)))
        .env("REAL", program)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run unshare");
    Answer {
        exit: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

/// Runs every case of `cases` in one namespace, emptying its tables before each.
///
/// # Panics
/// If the namespace cannot be made, or a case cannot be run.
pub fn capture(dir: &Path, cases: &[Case]) -> Vec<(Case, Answer)> {
    let ns = Netns::new("golden");
    cases
        .iter()
        .map(|case| {
            for table in [&["-F"][..], &["-F", "expect"]] {
                let _ = ns.exec(REAL, table);
            }
            (case.clone(), answer(&ns, dir, case))
        })
        .collect()
}

/// The header of a golden file: what recorded it, with what, where.
pub fn header() -> String {
    let version = Command::new(REAL)
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let package = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package} ${Version}", "conntrack"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    format!(
        "# Recorded by capture-cli-golden (tests/src/bin/capture-cli-golden.rs) from {REAL}:\n\
         # {version} (Debian package {package}), Linux {kernel}.\n\
         # Do not edit: record again.\n\n"
    )
}
