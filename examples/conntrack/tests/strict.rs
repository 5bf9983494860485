//! Where conntrack-tools 1.4.7 takes a value silently (truncating it), crashes, or reads past
//! its tables, `conntrack` refuses the parameter: exit status 2 and a clear message, and
//! nothing is sent. (1.4.7's answers to these are not ours, so they are not golden.)

mod common;

use common::{case, ours};

#[test]
fn values_1_4_7_takes_silently_are_refused() {
    let cases: &[(&str, &str)] = &[
        (
            "-L -p tcp --sport 70000",
            "Invalid value `70000' for `--sport' (0 to 65535)",
        ),
        (
            "-I -s 1.1.1.1 -d 2.2.2.2 -p udp --sport 1 --dport abc -t 5",
            "Invalid value `abc' for `--dport' (0 to 65535)",
        ),
        (
            "-L -p icmp --icmp-type 256",
            "Invalid value `256' for `--icmp-type' (0 to 255)",
        ),
        (
            "-L -p gre --srckey 0x10000",
            "Invalid value `0x10000' for `--srckey' (0 to 65535)",
        ),
        (
            "-L -w 70000",
            "Invalid value `70000' for `--zone' (0 to 65535)",
        ),
        (
            "-L --orig-zone -1",
            "Invalid value `-1' for `--orig-zone' (0 to 65535)",
        ),
        (
            "-L -p sctp --state HEARTBEAT_SENT",
            "unknown SCTP state `HEARTBEAT_SENT'",
        ),
        (
            "-U -s 1.1.1.1 -p sctp --orig-vtag 4294967296",
            "Invalid value `4294967296' for `--orig-vtag' (0 to 4294967295)",
        ),
        ("-D --id", "option `--id' requires an argument"),
    ];
    let mut failures = Vec::new();
    for (line, msg) in cases {
        let got = ours(&case(line));
        let want = format!(
            "conntrack v1.4.7 (conntrack-tools): {msg}\nTry `conntrack -h' or 'conntrack --help' for more information.\n"
        );
        if got.exit != 2 || got.stderr != want.as_bytes() || !got.stdout.is_empty() {
            failures.push(format!("{line}: {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The strict checks come after the tool's own: its message wins where it has one.
#[test]
fn the_tools_own_checks_come_first() {
    let got = ours(&case("-L -p tcp --tuple-port-src 70000"));
    let stderr = String::from_utf8_lossy(&got.stderr);
    assert!(
        stderr.contains("Illegal option `--tuple-port-src' with this command"),
        "{stderr}"
    );
    assert_eq!(got.exit, 2);
}
