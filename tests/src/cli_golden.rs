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
    let (mode, map) = if case.labels == "none" {
        ("none", Vec::new())
    } else {
        let path = dir.join("labels").join(format!("{}.conf", case.labels));
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("label map {}: {e}", path.display()));
        // The map goes to the shell as an argument: it cannot hold a NUL.
        assert!(!bytes.contains(&0), "{}: no NUL bytes", path.display());
        ("map", bytes)
    };
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        SCRIPT,
        "sh",
    ])
    .env("REAL", REAL)
    .arg(mode)
    .arg(OsStr::from_bytes(&map));
    cmd.arg(ns.name());
    cmd.args(case.args.iter().map(|a| OsStr::from_bytes(a)));
    let out = cmd
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
