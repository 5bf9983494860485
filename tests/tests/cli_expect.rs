//! `conntrack ... expect` against conntrack-tools 1.4.7: creating, getting, deleting,
//! listing, counting and flushing expectations on the masters of held FTP control
//! connections (over IPv4 and IPv6), each command replayed on the same fresh expectations
//! for both tools.

mod cli_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use cli_support::{all_passed, compare, need_reference, ours, run, table, words, Netns, REAL};

/// FTP control connections from fixed ports, held open while the test runs.
const HOLD: &str = r#"
import socket, threading, time
def hold(family, addr, port):
    srv = socket.socket(family); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, 21)); srv.listen(1)
    def serve():
        c, _ = srv.accept(); c.sendall(b"220 ready\r\n"); time.sleep(600)
    threading.Thread(target=serve, daemon=True).start()
    cl = socket.socket(family); cl.bind((addr, port)); cl.connect((addr, 21)); cl.recv(100)
    return cl
a = hold(socket.AF_INET, "127.0.0.1", 40021)
b = hold(socket.AF_INET6, "::1", 40022)
print("ready", flush=True)
time.sleep(600)
"#;

const RULES: &str = r#"
table inet t {
    ct helper ftp-std {
        type "ftp" protocol tcp
    }
    chain out {
        type filter hook output priority 0; policy accept;
        tcp dport 21 ct helper set "ftp-std"
    }
}
"#;

const M4: &str = "-s 127.0.0.1 -d 127.0.0.1 -p tcp --sport 40021 --dport 21";
const M6: &str = "-s ::1 -d ::1 -p tcp --sport 40022 --dport 21";

fn create(master: &str, tuple: &str, mask: &str, port: u16, timeout: u32) -> String {
    format!(
        "-I expect {master} --tuple-src {tuple} --tuple-dst {tuple} --tuple-port-src 0 --tuple-port-dst {port} --mask-src {mask} --mask-dst {mask} --mask-port-src 0 --mask-port-dst 65535 -t {timeout}"
    )
}

struct Held(Child);

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hold(ns: &Netns) -> Held {
    let mut child = ns
        .command("python3")
        .args(["-c", HOLD])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python3");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    let _ = BufReader::new(stdout).read_line(&mut line);
    assert_eq!(
        line.trim(),
        "ready",
        "the FTP connections could not be held"
    );
    Held(child)
}

/// Empties the expectation table and creates `setup`'s expectations with the reference.
fn reset(ns: &Netns, setup: &[String]) {
    run(ns, REAL, &["-F", "expect"], None);
    for line in setup {
        let r = run(ns, REAL, &words(line), None);
        assert_eq!(r.code, 0, "setup `{line}`: {r:?}");
    }
}

#[test]
fn expectations_match_conntrack_tools() {
    need_reference();
    let ns = Netns::new("cliexp");
    ns.nft(RULES);
    let _held = hold(&ns);
    let lo4 = "255.255.255.255";
    let lo6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let setup = vec![
        create(M4, "127.0.0.1", lo4, 50000, 300),
        create(M4, "127.0.0.1", lo4, 49000, 200),
        create(M6, "::1", lo6, 50002, 300),
    ];
    let udp_master = "-s 127.0.0.1 -d 127.0.0.1 -p udp --sport 40021 --dport 21";
    let commands: Vec<String> = vec![
        "-L expect".into(),
        "-L expect -f ipv6".into(),
        "-L expect -o xml".into(),
        "-L expect -o timestamp".into(),
        "-L expect -o xml,timestamp".into(),
        "-C expect".into(),
        "-C expect -f ipv6".into(),
        "-S expect".into(),
        "-F expect".into(),
        "-F expect -f ipv6".into(),
        create(M4, "127.0.0.1", lo4, 52000, 100),
        create(M4, "127.0.0.1", lo4, 50000, 100),
        create(M6, "::1", lo6, 52000, 100),
        create("-s 127.0.0.1 -d 127.0.0.1 -p tcp --sport 40029 --dport 21", "127.0.0.1", lo4, 52000, 100),
        create(udp_master, "127.0.0.1", lo4, 52000, 100),
        create(M4, "127.0.0.1", "255.255.255.0", 52000, 100),
        // The expected tuple's protocol is the port in network order, truncated to a byte
        // (50000 gives 195): get, delete by it.
        "-G expect -s 127.0.0.1 -d 127.0.0.1 -p 195".into(),
        "-G expect -s 127.0.0.1 -d 127.0.0.1 -p 191".into(),
        "-G expect -s 127.0.0.1 -d 127.0.0.1 -p 196".into(),
        "-G expect -s ::1 -d ::1 -p 195".into(),
        "-D expect -s 127.0.0.1 -d 127.0.0.1 -p 195".into(),
        "-D expect -s 127.0.0.1 -d 127.0.0.1 -p 196".into(),
        "-D expect -s ::1 -d ::1 -p 195".into(),
        "-D expect -s 127.0.0.1 -d 127.0.0.1 -p tcp --sport 0 --dport 50000 --reply-port-src 1 --reply-port-dst 2".into(),
    ];
    let mut failures = Vec::new();
    for line in &commands {
        let args = words(line);
        reset(&ns, &setup);
        let a = run(&ns, REAL, &args, None);
        let ta = table(&ns);
        reset(&ns, &setup);
        let b = run(&ns, ours(), &args, None);
        let tb = table(&ns);
        if let Err(e) = compare(&args, &a, &b, Some((&ta, &tb))) {
            failures.push(e);
        }
    }
    all_passed(failures, commands.len());
}
