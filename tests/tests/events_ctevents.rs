//! `ctevents` against `conntrack -E`: both listen in the same namespace, started before the
//! same sequence of changes (requests from this process, real traffic on `lo`, a flush),
//! stopped with SIGTERM, and their outputs are compared line by line. Also expectation events
//! (`ctevents expect` against `conntrack -E expect`), and `ctevents` with a kernel filter,
//! which must print exactly the lines of the unfiltered output that the filter selects.
//!
//! Nothing is masked: both tools print from the same event messages, in the order the
//! kernel queued them; the ` [USERSPACE] portid=N progname=P` suffix names this test
//! process, which holds its request socket open all along, so both look-ups find it. (A
//! short-lived requester, such as a `conntrack -I` process, would make the `progname=` part
//! racy for both tools; this test has none.) Timestamps (`-o timestamp`) would differ and are
//! not asked for.
//!
//! Live: runs as root in a throwaway network namespace. `ctevents` is the binary built next
//! to this test (`cargo test --workspace` builds it; alone, run
//! `cargo build -p conntrack-examples --bin ctevents` first).

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conntrack_codec::ct::request::Key;
use conntrack_codec::ct::{
    l4proto, ConntrackRepr, Helper, Labels, ProtoInfo, SctpInfo, SctpState, Tuple,
};
use conntrack_codec::exp::request::ExpKey;
use conntrack_codec::exp::ExpectRepr;
use conntrack_codec::filter::DumpFilter;
use conntrack_io::Socket;
use conntrack_tests::Netns;

fn ctevents_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("ctevents");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p conntrack-examples --bin ctevents` \
         (cargo test --workspace does)",
        path.display()
    );
    path
}

/// A listener process inside the namespace whose stdout lines are collected as they come.
struct Listener {
    name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Listener {
    fn start(ns: &Netns, name: &str, program: &str, args: &[&str]) -> Listener {
        let mut child = ns
            .command(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = BufReader::new(child.stdout.take().unwrap());
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for l in out.lines() {
                sink.lock().unwrap().push(l.unwrap());
            }
        });
        let err = BufReader::new(child.stderr.take().unwrap());
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for l in err.lines() {
                let mut s = sink.lock().unwrap();
                s.push_str(&l.unwrap());
                s.push('\n');
            }
        });
        Listener {
            name: name.to_string(),
            child,
            lines,
            stderr,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until the process has a netfilter netlink socket subscribed to `groups` (a
    /// bit mask), as `/proc/PID/net/netlink` shows it.
    fn wait_subscribed(&mut self, groups: u32) {
        let pid = self.child.id();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "{} exited early ({status}): {}",
                    self.name,
                    self.stderr.lock().unwrap()
                );
            }
            let subscribed = conntrack_tests::netfilter_sockets(pid)
                .iter()
                .any(|s| s.groups & groups == groups);
            if subscribed {
                return;
            }
            assert!(Instant::now() < deadline, "{} never subscribed", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until a destroy event line containing `needle` has been printed.
    fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .lines()
            .iter()
            .any(|l| l.starts_with("[DESTROY]") && l.contains(needle))
        {
            assert!(
                Instant::now() < deadline,
                "{} never printed {needle:?}; it printed:\n{}\nstderr: {}",
                self.name,
                self.lines().join("\n"),
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the process with SIGTERM; returns its lines, its stderr and its exit code.
    fn stop(mut self) -> (Vec<String>, String, Option<i32>) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let status = self.child.wait().unwrap();
        // The reader threads end at end of file; give them a moment to push the rest.
        std::thread::sleep(Duration::from_millis(100));
        let stderr = self.stderr.lock().unwrap().clone();
        (self.lines(), stderr, status.code())
    }
}

impl Drop for Listener {
    /// A test that fails before `stop` leaves no listener running behind it.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
}

fn entry(orig: Tuple) -> ConntrackRepr {
    ConntrackRepr::replied(orig, 120)
}

const RULES: &str = r#"
table inet t {
    chain out {
        type filter hook output priority 0; policy accept;
        ct mark 0xdeadbeef ct label set 1
        ct state new,established,related accept
    }
    chain in {
        type filter hook input priority 0; policy accept;
        ct state new,established,related accept
    }
}
"#;

const TCP: &str = r#"
import socket, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 8080)); srv.listen(1)
def serve():
    c, _ = srv.accept(); c.sendall(c.recv(100)); c.close()
t = threading.Thread(target=serve); t.start()
cl = socket.create_connection(("127.0.0.1", 8080)); cl.sendall(b"hello"); cl.recv(100); cl.close()
t.join()
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.sendto(b"y", ("::1", 5353))
"#;

/// The changes both listeners see: requests from `sock` (this process), traffic, a flush.
fn make_changes(ns: &Netns, sock: &mut Socket) {
    let tcp = Tuple::tcp(v4(192, 0, 2, 1), v4(198, 51, 100, 80), 30001, 80);
    let udp6 = Tuple::udp(v6("2001:db8::1"), v6("2001:db8::2:53"), 5353, 53);
    let icmp = Tuple::icmp(
        Ipv4Addr::new(10, 9, 0, 1),
        Ipv4Addr::new(10, 9, 0, 2),
        8,
        0,
        77,
    );
    let sctp = Tuple::ports(l4proto::SCTP, v4(10, 9, 1, 1), v4(10, 9, 1, 2), 2000, 36412);
    let zoned = Tuple::udp(v4(10, 9, 2, 1), v4(10, 9, 2, 2), 1000, 53);
    let helped = Tuple::tcp(v4(192, 0, 2, 1), v4(198, 51, 100, 21), 40021, 21);
    sock.create(&ConntrackRepr {
        mark: Some(0x42),
        ..entry(tcp)
    })
    .unwrap();
    sock.update(&ConntrackRepr {
        orig: Some(tcp),
        mark: Some(0x43),
        ..ConntrackRepr::default()
    })
    .unwrap();
    sock.create(&ConntrackRepr {
        status: None,
        ..entry(udp6)
    })
    .unwrap();
    sock.create(&entry(icmp)).unwrap();
    sock.create(&ConntrackRepr {
        protoinfo: Some(ProtoInfo::Sctp(SctpInfo {
            state: Some(SctpState::Established),
            vtag_orig: Some(1),
            vtag_reply: Some(2),
        })),
        ..entry(sctp)
    })
    .unwrap();
    sock.create(&ConntrackRepr {
        zone: Some(7),
        ..entry(zoned)
    })
    .unwrap();
    sock.create(&ConntrackRepr {
        helper: Some(Helper::named("ftp").unwrap()),
        ..entry(helped)
    })
    .unwrap();
    // Labels (the nft rule above loads the label extension).
    let mut labels = Labels::default();
    for bit in [0, 5, 9] {
        labels.insert(bit).unwrap();
    }
    sock.update(&ConntrackRepr {
        orig: Some(tcp),
        labels: Some(labels),
        labels_mask: Some(labels),
        ..ConntrackRepr::default()
    })
    .unwrap();
    sock.update(&ConntrackRepr {
        orig: Some(udp6),
        timeout: Some(1000),
        ..ConntrackRepr::default()
    })
    .unwrap();
    sock.delete(&Key::orig(tcp)).unwrap();
    sock.delete(&Key::orig(zoned).in_zone(7)).unwrap();
    // An expectation on the helper's master (only `-E expect` listeners see it).
    let ones = IpAddr::V4(Ipv4Addr::BROADCAST);
    let expected = Tuple::tcp(helped.src.unwrap(), helped.dst.unwrap(), 0, 50000);
    sock.exp_create(&ExpectRepr {
        family: 2,
        master: Some(helped),
        tuple: Some(expected),
        mask: Some(Tuple::tcp(ones, ones, 0, 0xffff)),
        timeout: Some(300),
        ..ExpectRepr::default()
    })
    .unwrap();
    sock.exp_delete(&ExpKey::tuple(expected)).unwrap();
    // Real traffic: kernel events, no port id.
    ns.run("ping", &["-c", "1", "-W", "1", "127.0.0.1"]);
    ns.run("ping", &["-c", "1", "-W", "1", "::1"]);
    ns.run("python3", &["-c", TCP]);
    sock.flush(&DumpFilter::default()).unwrap();
}

/// The last change: an entry whose destroy event tells that everything before has been
/// printed (it passes the filter of the filtered listener too).
fn sentinel(sock: &mut Socket) -> &'static str {
    let t = Tuple::tcp(v4(203, 0, 113, 9), v4(203, 0, 113, 10), 65000, 65001);
    sock.create(&entry(t)).unwrap();
    sock.delete(&Key::orig(t)).unwrap();
    "dport=65001"
}

/// What the filter `-p tcp ! -s 192.0.2.0/24` means, on a printed line.
fn selected(line: &str) -> bool {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let tcp = fields.windows(2).any(|w| w == ["tcp", "6"]);
    let src = fields
        .iter()
        .find_map(|f| f.strip_prefix("src="))
        .unwrap_or("");
    tcp && !src.starts_with("192.0.2.")
}

#[test]
fn ctevents_prints_what_conntrack_e_prints() {
    let ns = Netns::new("ctevents");
    ns.sysctl("net.netfilter.nf_conntrack_acct", "1");
    ns.sysctl("net.netfilter.nf_conntrack_timestamp", "1");
    // Both tools load the same label map: the tests' own (see conntrack_tests).
    let rules = std::env::temp_dir().join(format!("{}.nft", ns.name()));
    std::fs::write(&rules, RULES).unwrap();
    ns.run("nft", &["-f", rules.to_str().unwrap()]);
    let _ = std::fs::remove_file(&rules);

    let ours = ctevents_path();
    let ours = ours.to_str().unwrap();
    let mut listeners = [
        Listener::start(
            &ns,
            "conntrack -E",
            "conntrack",
            &["-E", "-o", "extended,id"],
        ),
        Listener::start(&ns, "ctevents", ours, &[]),
        Listener::start(
            &ns,
            "conntrack -E -o extended,id,labels",
            "conntrack",
            &["-E", "-o", "extended,id,labels"],
        ),
        Listener::start(&ns, "ctevents -o labels", ours, &["-o", "id,ext,lab"]),
        Listener::start(&ns, "conntrack -E expect", "conntrack", &["-E", "expect"]),
        Listener::start(&ns, "ctevents expect", ours, &["expect"]),
        Listener::start(
            &ns,
            "ctevents -p tcp ! -s 192.0.2.0/24",
            ours,
            &["-p", "tcp", "!", "-s", "192.0.2.0/24"],
        ),
    ];
    for (l, groups) in listeners
        .iter_mut()
        .zip([0x7, 0x7, 0x7, 0x7, 0x38, 0x38, 0x7])
    {
        l.wait_subscribed(groups);
    }

    let mut sock = Socket::open_in_netns(ns.path()).unwrap();
    make_changes(&ns, &mut sock);
    let last = sentinel(&mut sock);
    for l in &listeners[..4] {
        l.wait_for(last);
    }
    for l in &listeners[4..6] {
        l.wait_for("dport=50000");
    }
    listeners[6].wait_for(last);
    let [theirs, ctevents, theirs_labels, ctevents_labels, theirs_exp, ctevents_exp, filtered] =
        listeners.map(Listener::stop);
    // The request socket stays open until both have printed.
    drop(sock);

    for (name, (lines, stderr, code)) in [
        ("ctevents", &ctevents),
        ("ctevents -o labels", &ctevents_labels),
        ("ctevents expect", &ctevents_exp),
        ("ctevents (filtered)", &filtered),
    ] {
        assert_eq!(*code, Some(0), "{name} did not end cleanly: {stderr}");
        assert!(
            stderr.contains(&format!(" {} ", lines.len())) && stderr.contains("have been shown"),
            "{name}: {stderr}"
        );
        assert!(!stderr.contains("lost"), "{name}: {stderr}");
    }

    let (theirs, ours) = (&theirs.0, &ctevents.0);
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(a, b, "line {i}: ctevents vs conntrack -E");
    }
    assert_eq!(ours.len(), theirs.len(), "ctevents:\n{}", ours.join("\n"));
    // The run covers what it should.
    let has = |s: &str| ours.iter().any(|l| l.contains(s));
    for s in [
        "    [NEW] ipv4     2 tcp",
        " [UPDATE] ",
        "[DESTROY] ",
        "ipv6     10 udp",
        "icmp     1 ",
        "icmpv6   58 ",
        "sctp     132 ",
        "zone=7",
        "helper=ftp",
        "delta-time=",
        "packets=",
        "mark=67",
        "[USERSPACE] portid=",
        " progname=",
        "SYN_SENT",
        "TIME_WAIT",
    ] {
        assert!(has(s), "no line with {s:?}:\n{}", ours.join("\n"));
    }
    assert!(ours.iter().any(|l| !l.contains("[USERSPACE]")));
    println!(
        "conntrack -E -o extended,id: {} lines, equal to ctevents line by line",
        ours.len()
    );

    let (theirs_labels, ours_labels) = (&theirs_labels.0, &ctevents_labels.0);
    assert_eq!(
        ours_labels, theirs_labels,
        "ctevents vs conntrack -E, -o labels"
    );
    assert!(ours_labels.iter().any(|l| l.contains(" labels=")));
    assert!(!ours.iter().any(|l| l.contains(" labels")));
    println!("with -o labels: {} lines, equal", ours_labels.len());

    let (theirs_exp, ours_exp) = (&theirs_exp.0, &ctevents_exp.0);
    assert_eq!(
        ours_exp, theirs_exp,
        "ctevents expect vs conntrack -E expect"
    );
    assert_eq!(ours_exp.len(), 2, "{ours_exp:?}");
    println!("conntrack -E expect: {} lines, equal", ours_exp.len());

    let want: Vec<&String> = ours.iter().filter(|l| selected(l)).collect();
    let got: Vec<&String> = filtered.0.iter().collect();
    assert!(!want.is_empty() && want.len() < ours.len());
    assert_eq!(
        got, want,
        "filtered ctevents vs the unfiltered lines it selects"
    );
    println!(
        "ctevents -p tcp ! -s 192.0.2.0/24: {} of {} lines, as selected",
        got.len(),
        ours.len()
    );
}

#[test]
fn bad_parameters_give_one_line_and_status_2() {
    let ours = ctevents_path();
    for args in [
        &["-p", "nosuch"][..],
        &["-s", "10.0.0.0/33"],
        &["-m", "0x1/zz"],
        &["-w", "70000"],
        &["--state", "ESTABLISHED,NOPE"],
        &["-e", "NEW,BOGUS"],
        &["-o", "xml"],
        &["-p", "tcp", "!", "-p", "udp"],
        &["!", "-b", "100"],
        &["-s"],
        &["--frobnicate"],
        &["expect", "-p", "tcp"],
        &["stray"],
        // Sizes a socket option's int cannot hold (the kernel took them as a tiny queue).
        &["-b", "2147483648"],
        &["-b", "4294967295"],
        &["-b", "0"],
        // The growth's maximum and the receive thread's queue.
        &["-B", "2147483648"],
        &["-B", "-1"],
        &["-q", "0"],
        &["-q", "16777217"],
        &["-q", "many"],
    ] {
        let out = Command::new(&ours).args(args).output().unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("ctevents: "), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    let help = Command::new(&ours).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    for option in [
        "-p, --proto",
        "-s, --src",
        "-m, --mark",
        "--state",
        "-e, --event-mask",
        "-B, --max-buffer-size",
        "-q, --queue",
    ] {
        assert!(text.contains(option), "--help lacks {option}");
    }
}

/// Our `conntrack` (of `conntrack-cli`), built next to this test.
fn our_conntrack() -> String {
    let path = ctevents_path().with_file_name("conntrack");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p conntrack-cli` (cargo test \
         --workspace does)",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

/// A burst read through the receive thread and printed in blocks: ctevents and our
/// `conntrack -E` print every event, the same lines, and every line conntrack-tools'
/// `conntrack -E` prints is one of theirs, in the same order. (conntrack-tools falls behind
/// and loses much of a burst even with the same `-b`: it prints about a thousand lines a
/// second here, reading `/proc/net/netlink` for every event.)
#[test]
fn a_burst_prints_the_lines_of_conntrack_e() {
    const N: u32 = 5000;
    let ns = Netns::new("ctev-burst");
    let ours = ctevents_path();
    let conntrack = our_conntrack();
    let big = ["-b", "16777216"];
    let mut listeners = [
        Listener::start(
            &ns,
            "conntrack -E",
            "conntrack",
            &[&["-E", "-o", "extended,id"][..], &big].concat(),
        ),
        Listener::start(&ns, "ctevents", ours.to_str().unwrap(), &big),
        Listener::start(
            &ns,
            "our conntrack -E",
            &conntrack,
            &[&["-E", "-o", "extended,id"][..], &big].concat(),
        ),
    ];
    for l in &mut listeners {
        l.wait_subscribed(0x7);
    }
    let mut sock = Socket::open_in_netns(ns.path()).unwrap();
    sock.set_rcvbuf(8 << 20).unwrap();
    let list: Vec<ConntrackRepr> = (0..N).map(conntrack_tests::tcp_entry).collect();
    let done = sock
        .create_batch(&list, 1024, |i, r| r.unwrap_or_else(|e| panic!("{i}: {e}")))
        .unwrap();
    assert_eq!(done.succeeded, N as usize);
    sock.flush(&DumpFilter::default()).unwrap();
    let last = sentinel(&mut sock);
    // conntrack-tools may lose the sentinel too: wait for ours, then give it a moment.
    for l in &listeners[1..] {
        l.wait_for(last);
    }
    std::thread::sleep(Duration::from_millis(500));
    let [theirs, ctevents, ours] = listeners.map(Listener::stop);
    drop(sock);
    for (name, (lines, stderr, code)) in [("ctevents", &ctevents), ("our conntrack -E", &ours)] {
        assert_eq!(*code, Some(0), "{name}: {stderr}");
        assert!(
            !stderr.contains("lost") && !stderr.contains("ENOBUFS"),
            "{name}: {stderr}"
        );
        assert!(
            stderr.contains(&format!(" {} ", lines.len())),
            "{name}: {stderr}"
        );
    }
    let theirs = &theirs.0;
    let (ctevents, ours) = (&ctevents.0, &ours.0);
    // N creates, N destroys by the flush, and the sentinel's two.
    assert_eq!(
        ours.len(),
        2 * N as usize + 2,
        "our conntrack -E lost events"
    );
    assert_eq!(ctevents, ours, "ctevents vs our conntrack -E");
    let mut next = theirs.iter().peekable();
    for line in ours {
        if next.peek() == Some(&line) {
            next.next();
        }
    }
    assert!(
        next.peek().is_none(),
        "a line of conntrack-tools that ours did not print (in order): {:?}",
        next.peek()
    );
    assert!(ours.iter().all(|l| l.contains(" [USERSPACE] portid=")));
    assert!(ours.iter().all(|l| l.contains(" progname=")));
    println!(
        "{} lines from ctevents and our conntrack -E, the same; conntrack-tools printed {} \
         of them",
        ours.len(),
        theirs.len()
    );
}

/// Output into a pipe is written in blocks while a burst lasts, but an idle stream shows
/// each event at once: each entry is made only once the line of the one before it has come
/// out of both programs.
#[test]
fn an_idle_stream_prints_each_event_at_once() {
    let ns = Netns::new("ctev-idle");
    let ours = ctevents_path();
    let conntrack = our_conntrack();
    let mut listeners = [
        Listener::start(&ns, "ctevents", ours.to_str().unwrap(), &["-e", "NEW"]),
        Listener::start(&ns, "our conntrack -E", &conntrack, &["-E", "-e", "NEW"]),
    ];
    for l in &mut listeners {
        l.wait_subscribed(0x1);
    }
    let mut sock = Socket::open_in_netns(ns.path()).unwrap();
    for i in 0..3u32 {
        let t = Tuple::tcp(
            v4(198, 51, 100, 1),
            v4(198, 51, 100, 2),
            30000 + i as u16,
            80,
        );
        sock.create(&entry(t)).unwrap();
        let needle = format!("sport={}", 30000 + i);
        for l in &listeners {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !l.lines().iter().any(|line| line.contains(&needle)) {
                assert!(
                    Instant::now() < deadline,
                    "{}: the line of entry {i} never came out; it printed:\n{}",
                    l.name,
                    l.lines().join("\n")
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(l.lines().len(), i as usize + 1, "{}", l.name);
        }
    }
    for l in listeners {
        let (lines, stderr, code) = l.stop();
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(lines.len(), 3);
    }
}

/// ctevents grows its receive queue after a loss and says so; the loss stays exact. The
/// program is stopped (SIGSTOP) while the entries are made, so that its queue overflows.
#[test]
fn ctevents_grows_its_queue_after_a_loss_and_says_so() {
    const N: usize = 2000;
    let ns = Netns::new("ctev-grow");
    let ours = ctevents_path();
    let mut l = Listener::start(
        &ns,
        "ctevents",
        ours.to_str().unwrap(),
        &["-e", "NEW", "-b", "16384", "-B", "65536"],
    );
    l.wait_subscribed(0x1);
    let pid = l.child.id().to_string();
    let signal = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    };
    let mut sock = Socket::open_in_netns(ns.path()).unwrap();
    sock.set_rcvbuf(8 << 20).unwrap();
    signal("-STOP");
    let list: Vec<ConntrackRepr> = (0..N as u32).map(conntrack_tests::tcp_entry).collect();
    sock.create_batch(&list, 1024, |i, r| r.unwrap_or_else(|e| panic!("{i}: {e}")))
        .unwrap();
    signal("-CONT");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !l.stderr.lock().unwrap().contains("receive queue grown to") {
        assert!(
            Instant::now() < deadline,
            "no growth reported: {}",
            l.stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (lines, stderr, code) = l.stop();
    assert_eq!(code, Some(0), "{stderr}");
    // "ctevents: N events lost (T in total); receive queue grown to B bytes; ..."
    let grown: Vec<&str> = stderr
        .lines()
        .filter(|s| s.contains("receive queue grown to 65536 bytes"))
        .collect();
    assert_eq!(grown.len(), 1, "{stderr}");
    let summary = stderr
        .lines()
        .find(|s| s.contains("have been shown"))
        .unwrap_or_else(|| panic!("{stderr}"));
    let lost: usize = summary
        .rsplit_once('(')
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    println!("{} received, {lost} lost: {}", lines.len(), grown[0]);
    assert_eq!(lines.len() + lost, N, "{stderr}");
}
