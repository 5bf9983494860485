//! The command line and the configuration file against golden files recorded from
//! conntrackd 1.4.7 (`golden/record`, run as root): for each case, what is printed on
//! stdout and stderr and the exit status. No root needed: the front end runs with the
//! recording's world (only `lo` exists, no daemon answers).

use std::io;
use std::path::{Path, PathBuf};

use conntrackd::front::{front, request, Console, Env, Next};
use conntrackd::log::Priority;

struct Captured {
    stdout: String,
    stderr: String,
}

impl Console for Captured {
    fn out(&mut self, s: &str) {
        self.stdout.push_str(s);
    }
    fn log(&mut self, p: Priority, msg: &str) {
        let line = format!("[TIME] (pid=PID) [{}] {msg}\n", p.word());
        if p.to_stderr() {
            self.stderr.push_str(&line);
        } else {
            self.stdout.push_str(&line);
        }
    }
}

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

fn run(args: &[&str]) -> (u8, Captured) {
    let dir = golden().join("conf");
    let read = move |p: &str| -> io::Result<Vec<u8>> { std::fs::read(dir.join(p)) };
    let iface = |n: &str| (n == "lo").then_some(1);
    let env = Env {
        read: &read,
        iface: &iface,
        protocol: &conntrackd::protocol_number,
    };
    let mut con = Captured {
        stdout: String::new(),
        stderr: String::new(),
    };
    let mut argv = vec!["conntrackd".to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let code = match front(&argv, &mut con, &env) {
        Next::Exit(c) => c,
        Next::Request(path, action) => {
            // Nothing listens where the golden configurations point.
            let mut send = |p: &Path, a| {
                let mut sink = Vec::new();
                conntrackd::local::request(p, a, &mut sink)
            };
            request(&path, action, &mut con, &mut send)
        }
        Next::Daemon(..) => panic!("{args:?}: the cases must not start a daemon"),
    };
    (code, con)
}

#[test]
fn every_recorded_case() {
    let cases = std::fs::read_to_string(golden().join("cli/cases")).expect("cases");
    let mut checked = 0;
    let mut failures = Vec::new();
    for line in cases.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, args) = line.split_once('\t').expect("name<TAB>args");
        let args: Vec<&str> = args.split(' ').filter(|a| !a.is_empty()).collect();
        let want = std::fs::read_to_string(golden().join(format!("cli/{name}.out")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (code, con) = run(&args);
        let got = format!(
            "exit {code}\n--- stdout\n{}--- stderr\n{}",
            con.stdout, con.stderr
        );
        if got != want {
            failures.push(format!("== {name} {args:?}\n-- want\n{want}-- got\n{got}"));
        }
        checked += 1;
    }
    assert!(checked > 60, "only {checked} cases");
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
