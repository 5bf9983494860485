//! `conntrack` against conntrack-tools 1.4.7 on its command line, live. The parameter cases
//! themselves (usage, version, every kind of bad parameter, abbreviations, optional
//! arguments and their quirks) are golden files that `conntrack-cli`'s own tests check with
//! no root; here they are checked to be still what the real tool answers, and the cases
//! that need more of the kernel, or no privileges, are compared live.

mod cli_support;

use cli_support::{all_passed, need_reference, same_table, words, Netns};
use conntrack_cli::golden::{parse_cases, parse_records, record};

/// The golden answers `conntrack-cli`'s own tests check (`examples/conntrack/tests/golden`)
/// are still what conntrack-tools answers here: every case is run again with the real tool
/// and compared with its record.
#[test]
fn golden_answers_are_current() {
    need_reference();
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/conntrack/tests/golden");
    let mut failures = Vec::new();
    let mut total = 0;
    for entry in std::fs::read_dir(&dir).expect("golden directory") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|x| x != "cases") {
            continue;
        }
        let cases = parse_cases(&std::fs::read_to_string(&path).expect("cases")).expect("parse");
        let golden = path.with_extension("golden");
        let records =
            parse_records(&std::fs::read_to_string(&golden).expect("golden")).expect("parse");
        let now = conntrack_tests::cli_golden::capture(&dir, &cases);
        total += now.len();
        for ((case, answer), (_, recorded)) in now.iter().zip(&records) {
            if answer != recorded {
                failures.push(format!(
                    "recorded:\n{}now:\n{}",
                    record(case, recorded),
                    record(case, answer)
                ));
            }
        }
        assert_eq!(
            records.len(),
            now.len(),
            "{}: record it again",
            golden.display()
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {total} golden answers are no longer conntrack-tools' (record them again with \
         capture-cli-golden):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Command lines whose answers depend on more of the kernel than an empty table: compared
/// live, on the same table.
const KERNEL_CASES: &[&str] = &["--stats expect", "-S expect", "-C", "-C expect"];

#[test]
fn kernel_answers_match_conntrack_tools() {
    need_reference();
    let ns = Netns::new("cliparam");
    let mut failures = Vec::new();
    for line in KERNEL_CASES {
        if let Err(e) = same_table(&ns, &words(line)) {
            failures.push(e);
        }
    }
    all_passed(failures, KERNEL_CASES.len());
}

/// Without `CAP_NET_ADMIN` (user nobody): the same refusals, the same /proc fallbacks of
/// `-C` and `-S`, the same `perror` of `-E`.
#[test]
fn unprivileged_matches_conntrack_tools() {
    need_reference();
    let ns = Netns::new("clinobody");
    let cases = [
        "-L",
        "-D",
        "-I -s 1.1.1.1 -d 2.2.2.2 -p udp --sport 1 --dport 2 -t 5",
        "-U -f ipv4 -m 1",
        "-G -s 1.1.1.1 -d 2.2.2.2 -p udp --sport 1 --dport 2",
        "-F",
        "-C",
        "-S",
        "-L expect",
        "-C expect",
        "-S expect",
        "-F expect",
        "-E",
        "-E -b 1000",
        "-E expect",
        "-L dying",
    ];
    let as_nobody = |prog: &str, args: &[&str]| {
        let out = ns
            .command("setpriv")
            .args(["--reuid=65534", "--regid=65534"])
            .args(["--clear-groups", "--inh-caps=-all", "bash", "-c"])
            .arg("exec -a conntrack \"$0\" \"$@\"")
            .arg(prog)
            .args(args)
            .output()
            .expect("run setpriv");
        cli_support::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let mut failures = Vec::new();
    for line in cases {
        let args = words(line);
        let a = as_nobody(cli_support::REAL, &args);
        let b = as_nobody(cli_support::ours(), &args);
        if let Err(e) = cli_support::compare(&args, &a, &b, None) {
            failures.push(e);
        }
    }
    all_passed(failures, cases.len());
}
