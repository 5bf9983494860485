//! `ctevents_tokio` as a user runs it: the event stream under tokio (`AsyncEvents`), in a
//! throwaway namespace; it prints the events, keeps its count of entries, and ends cleanly
//! on SIGTERM. (The binary is built next to this test by `cargo test --workspace`; alone, run
//! `cargo build -p conntrack-examples --bin ctevents_tokio` first.)

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conntrack_codec::ct::request::Key;
use conntrack_codec::ct::{ConntrackRepr, Tuple};
use conntrack_tests::Netns;

fn subscribed(pid: u32) -> bool {
    conntrack_tests::netfilter_sockets(pid)
        .iter()
        .any(|s| s.groups == 0x7)
}

#[test]
fn ctevents_tokio_follows_the_table() {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("ctevents_tokio");
    assert!(bin.exists(), "{} is missing", bin.display());
    let ns = Netns::new("ev-tokio");
    let mut sock = ns.socket();
    let t = |i: u8| {
        Tuple::udp(
            IpAddr::V4(Ipv4Addr::new(10, 7, 0, i)),
            IpAddr::V4(Ipv4Addr::new(10, 7, 1, 1)),
            1,
            2,
        )
    };
    let entry = |i| ConntrackRepr {
        orig: Some(t(i)),
        reply: Some(t(i).inverted()),
        timeout: Some(100),
        ..ConntrackRepr::default()
    };
    sock.create(&entry(1)).unwrap();

    let mut child = ns
        .command(bin.to_str().expect("utf-8 path"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !subscribed(child.id()) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "ctevents_tokio ended early"
        );
        assert!(Instant::now() < deadline, "ctevents_tokio never subscribed");
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 2..=4 {
        sock.create(&entry(i)).unwrap();
    }
    // Delete an entry made after the subscription: with the namespace's default
    // `nf_conntrack_events = 2`, the kernel may attach no event cache to an entry created
    // while nobody listened, and then sends no DESTROY event for it.
    sock.delete(&Key::orig(t(2))).unwrap();
    // Wait until it has printed the four events, then stop it.
    let out = child.stdout.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = std::sync::Arc::clone(&lines);
    let reader = std::thread::spawn(move || {
        for l in std::io::BufRead::lines(std::io::BufReader::new(out)) {
            sink.lock().unwrap().push(l.unwrap());
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while lines.lock().unwrap().len() < 4 {
        assert!(Instant::now() < deadline, "{:?}", lines.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let stdout = lines.lock().unwrap().join("\n");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    println!("{stdout}{stderr}");
    assert!(status.success(), "{status}: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[..3]
        .iter()
        .all(|l| l.starts_with("    [NEW] ipv4     2 udp")));
    assert!(lines[3].starts_with("[DESTROY] ipv4     2 udp"));
    assert!(lines.iter().all(|l| l.contains(" [USERSPACE] portid=")));
    assert!(stderr.contains("1 entry in the table"), "{stderr}");
    assert!(
        stderr.contains("4 received, 0 lost; 3 entries known at the end"),
        "{stderr}"
    );
}
