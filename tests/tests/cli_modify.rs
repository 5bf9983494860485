//! `conntrack` against conntrack-tools 1.4.7 on commands that change the table: create,
//! add, update, delete, flush, label changes and `-R` files. Each command runs on a fresh
//! table built identically for both tools in the same namespace (so the kernel lists the
//! entries in the same order for both); exit status, stdout, stderr and the resulting
//! table are compared.

mod cli_support;

use cli_support::{all_passed, need_reference, ours, replayed, run, words, Netns, REAL};

/// Entries made by request.
const SETUP: &str = "\
-I -s 1.2.3.4 -d 5.6.7.8 -p tcp --sport 1000 --dport 80 --state ESTABLISHED -t 999 -u SEEN_REPLY,ASSURED -m 42
-I -s 1.2.3.4 -d 5.6.7.8 -p tcp --sport 1001 --dport 80 --state SYN_SENT -t 998
-I -s 1.2.3.4 -d 5.6.7.8 -p udp --sport 1000 --dport 53 -t 999
-I -s 1.1.1.1 -d 2.2.2.2 -p udp --sport 1 --dport 2 -t 999 -w 5
-I -s 1.1.1.1 -d 2.2.2.2 -p udp --sport 1 --dport 3 -t 999 --orig-zone 6
-I -s 1.1.1.1 -d 2.2.2.2 -p udp --sport 1 --dport 4 -t 999 --reply-zone 7
-I -s 1.1.1.1 -d 2.2.2.2 -p icmp --icmp-type 8 --icmp-code 0 --icmp-id 1234 -t 999
-I -s 2001:db8::1 -d 2001:db8::2 -p icmpv6 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 4321 -t 999
-I -s 3.3.3.3 -d 4.4.4.4 -p sctp --sport 31971 --dport 9 --state ESTABLISHED --orig-vtag 305419896 --reply-vtag 7 -t 999 -u SEEN_REPLY
-I -s 1.1.1.1 -d 2.2.2.2 -p gre --srckey 4660 --dstkey 43981 -t 999 -u SEEN_REPLY,ASSURED,FIXED_TIMEOUT
-I -s 1.1.1.1 -d 2.2.2.2 -p udplite --sport 5 --dport 6 -t 999
-I -s 1.1.1.1 -d 2.2.2.2 -p 200 -t 999
-I -s ::ffff:1.2.3.4 -d ::1.2.3.4 -p tcp --sport 1 --dport 2 --state ESTABLISHED -t 999
-I -s fe80::abcd -d ::2 -p udp --sport 9 --dport 10 -t 999 -m 4294967295
-I -s 10.0.0.1 -d 10.0.1.1 -p tcp --sport 5 --dport 6 -t 999 --state TIME_WAIT -m 7
-I -s 10.0.0.2 -d 10.0.1.1 -p tcp --sport 5 --dport 6 -t 999 --state CLOSE -m 0x100
-I -s 10.0.0.3 -d 10.0.2.1 -p udp --sport 5 --dport 6 -t 999 -m 0x101
-I -s 10.0.0.4 -d 10.0.2.1 -p udp --sport 5 --dport 7 -t 999 -u ASSURED
";

const COMMANDS: &[&str] = &[
    "-D -s 1.2.3.4",
    "-D -p udp",
    "-D -f ipv6",
    "-D",
    "-D -s 10.0.0.0/24 -o xml",
    "-D -m 0x100/0xf00 -o save",
    "-D -p tcp --state TIME_WAIT -o extended,id",
    "-D -u ASSURED",
    "-D -u UNREPLIED -p tcp",
    "-D -w 5",
    "-D --orig-zone 6",
    "-D -s 9.9.9.9",
    "-D -t 999 -p tcp",
    "-D -r 5.6.7.8 -p tcp --reply-port-src 80",
    "-D -s 2001:db8::/32",
    "-D -d ::2 -p udp --dport 10",
    "-D -p icmp --icmp-id 1234",
    "-D -m 1 -u ASSURED",
    "-I -s 9.9.9.9 -d 8.8.8.8 -p tcp --sport 1 --dport 2 -t 50 --state ESTABLISHED",
    "-I -s 1.2.3.4 -d 5.6.7.8 -p tcp --sport 1000 --dport 80 -t 50 --state ESTABLISHED",
    "-A -s 1.2.3.4 -d 5.6.7.8 -p tcp --sport 1000 --dport 80 -t 50 --state ESTABLISHED",
    "-A -s 9.9.9.9 -d 8.8.8.8 -p udp --sport 1 --dport 2 -t 50",
    "-I -s 9.9.9.9 -d 8.8.8.8 -p udp --sport 1 --dport 2 -t 50 -m 5 -u ASSURED",
    "-I -s 9.9.9.9 -d 8.8.8.8 -p udp --sport 1 --dport 2 -t 50 -u ASSURED -m 5/0xff",
    "-I -r 9.9.9.9 -q 8.8.8.8 -p udp --reply-port-src 1 --reply-port-dst 2 -t 50",
    "-I -s 9.9.9.9 -d 8.8.8.8 -r 7.7.7.7 -q 9.9.9.9 -p udp --sport 1 --dport 2 -t 50",
    "-I -s 9.9.9.9 -d 8.8.8.8 -r 7.7.7.7 -q 9.9.9.9 -p udp --sport 1 --dport 2 --reply-port-src 3 --reply-port-dst 4 -t 50",
    "-I -s 9.9.9.9 -d 8.8.8.8 -p icmp --icmp-type 8 --icmp-code 0 --icmp-id 5 -t 50",
    "-I -s 9.9.9.9 -d 8.8.8.8 -p icmp --icmp-type 3 --icmp-code 0 --icmp-id 5 -t 50",
    "-I -s 2001::1 -d 2001::2 -p icmpv6 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 5 -t 50",
    "-I -s 9.9.9.9 -d 8.8.8.8 -p sctp --sport 1 --dport 2 -t 50 --state ESTABLISHED --orig-vtag 1 --reply-vtag 2",
    "-I -s 9.9.9.9 -d 8.8.8.8 -p gre --srckey 0x10 --dstkey 20 -t 50",
    "-I -s 9.9.9.9 -d 8.8.8.8 -p 99 -t 50",
    "-I -s 9.9.9.9 -d 8.8.8.8 -p esp -t 50",
    "-I -s 9.9.9.9 -d 8.8.8.8 -p udp --sport 1 --dport 2 -t 50 -w 9",
    "-I -s 9.9.9.9 -d 8.8.8.8 -p udp --sport 1 --dport 2 -t 50 --orig-zone 9",
    "-I -s 9.9.9.9 -d 8.8.8.8 -p udp --sport 1 --dport 2 -t 50 --orig-zone 9 --reply-zone 8",
    "-I -s 9.9.9.9 -d 8.8.8.8 -p udp --sport 1 --dport 2 -t 50 -u EXPECTED",
    "-I -s 9.9.9.9 -d 8.8.8.8 -p udp --sport 1 --dport 2 -t 50 -u FIXED_TIMEOUT,SEEN_REPLY",
    "-I -s 9.9.9.9 -d 8.8.8.8 -p tcp --sport 1 --dport 2 -t 50 --state LISTEN",
    "-I -s 9.9.9.9 -d 8.8.8.8 -p tcp --sport 1 --dport 2 -t 50 --state TIME_WAIT",
    "-I -s 9.9.9.9 -d 8.8.8.8 -p tcp --sport 1 --dport 2 -t 50 --state ESTABLISHED -n 5.5.5.5:99",
    "-I -s 9.9.9.9 -d 8.8.8.8 -p udp --sport 1 --dport 2 -t 50 -g 6.6.6.6",
    "-I -s 2001::1 -d 2001::2 -p udp --sport 1 --dport 2 -t 50 -g [2001::9]:53",
    "-U -s 1.2.3.4 -m 9",
    "-U -s 1.2.3.4 -m 42",
    "-U -p udp -m 9",
    "-U -f ipv4 -m 0x1/0x1",
    "-U -f ipv4 -m 8",
    "-U -f ipv4 -m 8 -o xml",
    "-U -f ipv4 -m 8 -o save",
    "-U -f ipv4 -m 8 -o extended,id",
    "-U -f ipv6 -u ASSURED",
    "-U -s 10.0.0.0/24 -t 500",
    "-U -s 10.0.0.1 -p tcp --state ESTABLISHED",
    "-U -s 1.1.1.1 -m 3",
    "-U -f ipv4 -u EXPECTED",
    "-U -s 1.2.3.4 -m 1 -u ASSURED",
    "-U -s 1.2.3.4 -p tcp --sport 1001 -t 77",
    "-U -s 9.9.9.9 -m 1",
    "-U -f ipv4 -n 1.2.3.4",
    "-F",
    "-F -f ipv6",
    "-F conntrack",
];

#[test]
fn changes_match_conntrack_tools() {
    need_reference();
    let ns = Netns::new("climodify");
    let mut failures = Vec::new();
    for line in COMMANDS {
        if let Err(e) = replayed(&ns, SETUP, &words(line), None) {
            failures.push(e);
        }
    }
    all_passed(failures, COMMANDS.len());
}

/// Entries with labels (the `ct label` rule gives every entry the label extension).
const LABELLED: &str = "\
-I -s 1.2.3.4 -d 5.6.7.8 -p tcp --sport 1000 --dport 80 --state ESTABLISHED -t 999 --label-add zero
-I -s 1.2.3.4 -d 5.6.7.8 -p tcp --sport 1001 --dport 80 --state ESTABLISHED -t 999 --label-add zero,five
-I -s 1.2.3.4 -d 5.6.7.8 -p tcp --sport 1002 --dport 80 --state ESTABLISHED -t 999 --label-add big
-I -s 1.2.3.4 -d 5.6.7.8 -p udp --sport 1003 --dport 80 -t 999
-I -s 2001::1 -d 2001::2 -p udp --sport 1003 --dport 80 -t 999 --label-add five
";

const LABEL_COMMANDS: &[&str] = &[
    "-L",
    "-L -o labels",
    "-D -l zero",
    "-D -l five -o labels",
    "-U -s 1.2.3.4 --label-add five",
    "-U -p tcp --label-add big",
    "-U -s 1.2.3.4 --label-del zero",
    "-U -s 1.2.3.4 --label-del",
    "-U -f ipv6 --label-del five",
    "-U -f ipv4 --label-add zero -l five",
    "-U -f ipv4 --label-add zero,big -o save",
    "-U -f ipv4 --label-del big,zero",
    "-U -f ipv4 --label-add zero --label-del five",
    "-I -s 9.9.9.9 -d 8.8.8.8 -p udp --sport 1 --dport 2 -t 50 --label-add zero,big",
    "-A -s 9.9.9.9 -d 8.8.8.8 -p udp --sport 1 --dport 2 -t 50 --label-add five",
];

#[test]
fn label_changes_match_conntrack_tools() {
    need_reference();
    let ns = Netns::new("clilabels");
    ns.nft("table inet l {\n chain c {\n  type filter hook output priority 0;\n  ct label set 1\n }\n}\n");
    let mut failures = Vec::new();
    for line in LABEL_COMMANDS {
        if let Err(e) = replayed(&ns, LABELLED, &words(line), None) {
            failures.push(e);
        }
    }
    all_passed(failures, LABEL_COMMANDS.len());
}

/// `-R FILE` and `-R -`: every line parsed before any runs, only -I/-A/-U/-D/-F allowed,
/// no summaries, output flags shared by the lines.
#[test]
fn load_file_matches_conntrack_tools() {
    need_reference();
    let ns = Netns::new("cliload");
    let dir = std::env::temp_dir().join(format!("cli-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let files: &[(&str, &str)] = &[
        (
            "ok",
            "# comment\n   -I -s 9.9.9.9 -d 8.8.8.8 -p tcp --sport 1 --dport 2 -t 50 --state ESTABLISHED\n\t-A -s 9.9.9.9 -d 8.8.8.8 -p tcp --sport 1 --dport 2 -t 50 --state ESTABLISHED\n\n-U -s 1.2.3.4 -m 77\n-D -p udp --dport 53\n-D -s 10.0.0.0/24 -o save\n-I -s \"9.9.9.8\" -d 8.8.8.8 -p udp --sport 1 --dport 2 -t 50\n",
        ),
        ("flush", "-F\n-I -s 9.9.9.9 -d 8.8.8.8 -p tcp --sport 1 --dport 2 -t 50 --state ESTABLISHED\n"),
        ("badcmd", "-I -s 9.9.9.9 -d 8.8.8.8 -p udp --sport 1 --dport 2 -t 50\n-L\n"),
        ("badexp", "-I expect -s 1.1.1.1\n"),
        ("badline", "-I -s 9.9.9.9 -d 8.8.8.8 -p udp --sport 1 --dport 2 -t 50\n-I -s 9.9.9.999 -d 8.8.8.8 -p udp --sport 1 --dport 2 -t 50\n"),
        ("exists", "-I -s 1.2.3.4 -d 5.6.7.8 -p tcp --sport 1000 --dport 80 -t 50 --state ESTABLISHED\n-I -s 9.9.9.9 -d 8.8.8.8 -p udp --sport 1 --dport 2 -t 50\n"),
        ("twice", "-D -s 1.2.3.4\n-D -s 1.2.3.4\n"),
        ("nonl", "-I -s 9.9.9.9 -d 8.8.8.8 -p udp --sport 1 --dport 2 -t 50"),
        ("spaces", "   "),
        ("accum", "-D -s 10.0.0.1 -o xml\n-D -s 10.0.0.2\n"),
        ("quotes", "-D \"-s\" 10.0.0.1\n-D -s\"10.0.0.2\"\n"),
    ];
    let mut failures = Vec::new();
    let mut total = 0;
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write file");
        let p = path.to_str().expect("utf-8 path");
        for args in [vec!["-R", p], vec!["--load-file", p]] {
            total += 1;
            if let Err(e) = replayed(&ns, SETUP, &args, None) {
                failures.push(e);
            }
        }
        total += 1;
        if let Err(e) = replayed(&ns, SETUP, &["-R", "-"], Some(text.as_bytes())) {
            failures.push(e);
        }
    }
    total += 1;
    if let Err(e) = replayed(&ns, SETUP, &["-R", "/nonexistent/file"], None) {
        failures.push(e);
    }
    let _ = std::fs::remove_dir_all(&dir);
    all_passed(failures, total);
}

/// NAT filters on entries made by real traffic (which cannot be replayed identically): ours
/// deletes exactly the entries 1.4.7 lists with the same filter, and prints them as 1.4.7
/// prints deleted entries.
#[test]
fn nat_filtered_deletes() {
    need_reference();
    let mut failures = Vec::new();
    let filters: &[&str] = &[
        "-n",
        "-g",
        "-n -g",
        "-n 127.0.0.5",
        "-g 127.0.0.1:8080",
        "-n 127.0.0.5:4001",
    ];
    for filter in filters {
        let ns = Netns::new("clinat");
        ns.nft(cli_list_rules());
        ns.run("python3", &["-c", cli_list_traffic()]);
        let f = words(filter);
        let list: Vec<&str> = ["-L"].iter().copied().chain(f.iter().copied()).collect();
        let del: Vec<&str> = ["-D"].iter().copied().chain(f.iter().copied()).collect();
        let listed = run(&ns, REAL, &list, None);
        let all_before = run(&ns, REAL, &["-L"], None);
        let deleted = run(&ns, ours(), &del, None);
        let all_after = run(&ns, REAL, &["-L"], None);
        let n = listed.stdout.lines().count();
        let want_err =
            format!("conntrack v1.4.7 (conntrack-tools): {n} flow entries have been deleted.\n");
        let masked = |s: &str| cli_support::mask(s);
        let remaining: Vec<String> = masked(&all_before.stdout)
            .lines()
            .filter(|l| !masked(&listed.stdout).lines().any(|x| x == *l))
            .map(str::to_string)
            .collect();
        let ok = masked(&deleted.stdout) == masked(&listed.stdout)
            && deleted.stderr == want_err
            && deleted.code == i32::from(n == 0)
            && masked(&all_after.stdout)
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
                == remaining;
        if !ok {
            failures.push(format!(
                "-D {filter}: listed {listed:?}\ndeleted {deleted:?}\nafter {all_after:?}"
            ));
        }
    }
    all_passed(failures, filters.len());
}

fn cli_list_rules() -> &'static str {
    r#"
table inet t {
    chain out {
        type filter hook output priority 0; policy accept;
        ct state new accept
    }
}
table ip nat {
    chain out {
        type nat hook output priority -100; policy accept;
        tcp dport 9999 dnat to 127.0.0.1:8080
    }
    chain post {
        type nat hook postrouting priority 100; policy accept;
        udp dport 7777 snat to 127.0.0.5:4000
    }
}
"#
}

fn cli_list_traffic() -> &'static str {
    r#"
import socket, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 8080)); srv.listen(1)
def serve():
    c, _ = srv.accept(); c.sendall(c.recv(100)); c.close()
t = threading.Thread(target=serve); t.start()
cl = socket.create_connection(("127.0.0.1", 9999)); cl.sendall(b"hello"); cl.recv(100); cl.close()
t.join()
for port in (7777, 7778):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b"x", ("127.0.0.1", port))
"#
}
