//! `ctdecode` as a user runs it: over every kernel capture, and over broken input.

use std::io::Write;
use std::process::{Command, Stdio};

fn ctdecode(input: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ctdecode"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ctdecode");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../codec/fixtures");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_capture_decodes_one_line_per_message() {
    let all = fixtures();
    assert!(all.len() > 100);
    for (name, bytes) in &all {
        let (code, stdout, stderr) = ctdecode(bytes);
        assert_eq!(code, 0, "{name}: {stderr}");
        let messages = conntrack_codec::nl::Messages::new(bytes).count();
        assert_eq!(stdout.lines().count(), messages, "{name}");
    }
}

#[test]
fn known_lines() {
    let dump = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../codec/fixtures/dump_ipv4_udp.bin"
    ))
    .unwrap();
    let (_, out, _) = ctdecode(&dump);
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("ipv4     2 udp      17 300 src=192.0.2.1 dst=198.51.100.53 sport=5000"),
        "{first}"
    );
    assert!(first.contains(" [ASSURED] mark=0 use=1 id="), "{first}");
    assert_eq!(out.lines().last(), Some("DONE seq=105"));
    let err = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../codec/fixtures/error_extack.bin"
    ))
    .unwrap();
    let (_, out, _) = ctdecode(&err);
    assert_eq!(
        out.trim_end(),
        "ERROR seq=11 ERANGE (Math result not representable): Attribute failed policy validation (attribute at offset 148)"
    );
    let events = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../codec/fixtures/events_ct.bin"
    ))
    .unwrap();
    let (_, out, _) = ctdecode(&events);
    assert!(out
        .lines()
        .next()
        .unwrap()
        .starts_with("    [NEW] ipv4     2 tcp"));
    assert!(out.lines().any(|l| l.starts_with("[DESTROY] ")));
}

#[test]
fn malformed_input_names_the_offset_and_fails() {
    let dump = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../codec/fixtures/dump_ipv4_tcp.bin"
    ))
    .unwrap();
    let (code, out, err) = ctdecode(&dump[..300]);
    assert_eq!(code, 1);
    assert_eq!(out.lines().count(), 1);
    assert_eq!(
        err,
        "ctdecode: malformed message at offset 240: truncated netlink message\n"
    );
    let (code, _, err) = ctdecode(&[0xff; 3]);
    assert_eq!(code, 1);
    assert!(err.contains("offset 0"), "{err}");
    let (code, out, _) = ctdecode(&[]);
    assert_eq!((code, out.as_str()), (0, ""));
}
