//! `conntrack` against conntrack-tools 1.4.7 on its command line: usage, version, every
//! kind of bad parameter, option abbreviations, optional arguments and their quirks. Each
//! case runs both tools in one throwaway namespace and compares exit status, stdout and
//! stderr; none of these cases changes the (empty) table.

mod cli_support;

use cli_support::{all_passed, need_reference, ours, run, same_table, words, Netns};

/// Command lines both tools must answer identically (mostly refusals).
const CASES: &[&str] = &[
    "",
    "-h",
    "--help",
    "-V",
    "--version",
    "-h -p tcp",
    "-h -p udp",
    "-h -p udplite",
    "-h -p sctp",
    "-h -p dccp",
    "-h -p icmp",
    "-h -p icmpv6",
    "-h -p gre",
    "-h -p esp",
    "-h -p 200",
    "-h -p 17",
    "-h -s 1.1.1.1",
    "-a 1",
    "--d",
    "--s",
    "--re",
    "-L -X",
    "-L -Xz",
    "-L -zX",
    "-L --stats=1",
    "-L -s",
    "-L --src",
    "-L --bogus",
    "-L foo",
    "-L -o xml expect",
    "-R",
    "-R /nonexistent/file",
    "-L -R x",
    "-S -S",
    "-L -D",
    "-L -t 5",
    "-I -c 1",
    "-L -p tcp --state FOO",
    "-L -p foo",
    "-L -p 300",
    "-L -p unknown",
    "-L -f ipv7",
    "-L -s 1.1.1.1 -f ipv6",
    "-L -p tcp -p udp --state ESTABLISHED",
    "-L -p dccp --role c",
    "-I -s 1.1.1.1 -d 2.2.2.2 -p tcp --sport 1 --dport 2 -t 100",
    "-A -s 1.1.1.1 -d 2.2.2.2 -p tcp --sport 1 --dport 3 -t 100",
    "-s 1.2.3.4",
    "-p tcp",
    "-f ipv4",
    "-m 1",
    "-o xml",
    "-z",
    "-w 1",
    "-l zero",
    "--reply-zone 1",
    "--tuple-src 1.1.1.1",
    "-L -s 1.2.3.999",
    "-L -s foo",
    "-L -s 1.2.3.4/33",
    "-L -s 1.2.3.4/-1",
    "-L -s 1.2.3.4/abc",
    "-L -s ::1/129",
    "-L -r 1.2.3.4/24",
    "-L -q ::1/64",
    "-L --mask-src 1.2.3.4/24 -s 1.1.1.1",
    "-L --mask-src 255.0.0.0",
    "-L --mask-dst 255.0.0.0 -s 1.1.1.1",
    "-L -d 1.2.3.4 --mask-dst ffff::",
    "-L -n [",
    "-L -n []:80",
    "-L -n [::1",
    "-L -n [::1]:",
    "-L -n [::1]:99999",
    "-L -n 1.2.3.4:",
    "-L -n 1.2.3.4:abc",
    "-L -n 1.2.3.4:65536",
    "-L -g 1.2.3.4:-1",
    "-L -g :8080",
    "-L -j 1.1.1.1 -n",
    "-L -n -j",
    "-L -p",
    "-L -p tcp --sport",
    "-L -z -p tcp",
    "-L -z -s 1.1.1.1",
    "-L -z -m 1",
    "-L -o",
    "-L -o xml,",
    "-L -o ,xml",
    "-L -o bogus",
    "-L -o s",
    "-L -o d",
    "-L -o save,xml",
    "-L -o xml -o save",
    "-L -o SAVE,id",
    "-L -o xmlfoo",
    "-E -e FOO",
    "-E -e ,",
    "-L -u FOO",
    "-L -u ,ASSURED",
    "-L -u !",
    "-L -u !,ASSURED",
    "-L -u ASSURED,",
    "-L -u unreplied",
    "-L -u s",
    "-I -t 1",
    "-I -s 1.1.1.1 -t 1 -p tcp",
    "-I -s 1.1.1.1 -d 1.1.1.1 -p tcp",
    "-I -s 1.1.1.1 -d 1.1.1.1 -t 5 -p tcp",
    "-I -s 1.1.1.1 -d 1.1.1.1 -t 5 -p tcp --sport 1",
    "-I -r 1.1.1.1 -q 1.1.1.1 -t 5 -p tcp --reply-port-src 1 --state NONE",
    "-I -r 1.1.1.1 -t 5 -p udp",
    "-I -s 1.1.1.1 -r 1.1.1.1 -t 5 -p udp",
    "-I -s 1.1.1.1 -d 1.1.1.1 -t 5 -p icmp",
    "-I -s 1.1.1.1 -d 1.1.1.1 -t 5 -p icmp --icmp-type 8",
    "-I -s 1.1.1.1 -d 1.1.1.1 -t 5 -p sctp --sport 1 --dport 2 --state CLOSED",
    "-I -s 1.1.1.1 -d 1.1.1.1 -t 5 -p dccp --sport 1 --dport 2 --state OPEN",
    "-I -s 1.1.1.1 -d 1.1.1.1 -t 5 -p dccp --sport 1 --dport 2 --state FOO",
    "-I -s 1.1.1.1 -d 1.1.1.1 -t 5 -p dccp --sport 1 --dport 2 --state OPEN --role x",
    "-I -s 1.1.1.1 -d 1.1.1.1 -t 5 -p gre --srckey 1",
    "-I -s 1.1.1.1 -d ::1 -t 5 -p udp",
    "-I expect",
    "-I expect -s 1.1.1.1 -d 1.1.1.1 -p tcp",
    "-I -f ipv4 -s 1.1.1.1",
    "-I dying",
    "-L unconfirmed -s 1.1.1.1",
    "-D dying",
    "-U expect",
    "-A expect",
    "-G expect -o xml",
    "-G",
    "-G -s 1.1.1.1 -d 2.2.2.2",
    "-G -s 1.1.1.1 -d 2.2.2.2 -p tcp",
    "-G -r 1.1.1.1 -q 2.2.2.2 -p udp --reply-port-src 1 --reply-port-dst 2",
    "-G -w 1 -s 1.1.1.1 -d 2.2.2.2 -p udp --sport 1 --dport 2",
    "-D --label-add zero",
    "-I --label-del zero",
    "-U -l zero --label-add nosuch",
    "-U --label-add zero --label-del five",
    "-U --label-del five --label-add zero",
    "-L -l zero --label-add five",
    "-L -l nosuch",
    "-L -l zero,",
    "-E -z",
    "-F -s 1.1.1.1",
    "-C -s 1.1.1.1",
    "-S -p tcp",
    "-V -s 1.1.1.1",
    "-h -p tcp --sport 1",
    "-L conntr",
    "-L exp",
    "-L dy",
    "-L u",
    "-D expect -s 1.1.1.1 -d 2.2.2.2 -p tcp --sport 1 --dport 2",
    "-G expect -s 1.1.1.1 -d 2.2.2.2 -p udp --sport 1 --dport 2 --reply-port-src 2 --reply-port-dst 1",
    "--dump",
    "--dum",
    "--du=expect",
    "--create",
    "--counter",
    "--coun expect",
    "--stat",
    "--stats expect",
    "-L --orig-src=1.1.1.1",
    "-L --src 1.1.1.1 --dst",
    "-L --zero=x",
    "-L --family ipv6 --proto tcp",
    "-L --proto tcp --sp 1",
    "-L --proto tcp --s 1",
    "-L --proto tcp --st ESTABLISHED",
    "-L --proto tcp --or 1",
    "-L --proto tcp --orig-port 1",
    "-L -p udp --state x",
    "-L -p sctp --orig-vtag 1",
    "-L -m abc",
    "-L -m 1/",
    "-L -c x",
    "-L -b 5",
    "-- -L",
    "-L -- -s 1.1.1.1",
    "-L -s 1.1.1.1 extra args here",
    "-Lz",
    "-zL",
    "-zLexpect",
    "-L -ofoo",
    "-L -p6 --dport 80",
    "-L -p ESP",
    "-L -p Tcp --dport 1",
    "-L -p 0x6 --dport 1",
    "-L -p 006 --dport 1",
    "-L -p +6",
    "-L -p -6",
    "-L -p 6x",
    "-L -p ipv6-icmp --icmpv6-type 1",
    "-L -p icmp -f ipv6",
    "-L -f ipv4 -f ipv6",
    "-L -f ipv4x",
    "-L -s 1.1.1.1 -s ::1",
    "-L -d 1.1.1.1 -s 2.2.2.2 -d 3.3.3.3",
    "--load-file",
    "-L -(",
    "-L -) 5 -[ 1.1.1.1",
    "-L -e NEW",
    "-I -s 1.1.1.1 -d 2.2.2.2 -p udp --sport 1 --dport 2 -t 5 --tuple-src 3.3.3.3",
];

#[test]
fn parameters_match_conntrack_tools() {
    need_reference();
    let ns = Netns::new("cliparam");
    let mut failures = Vec::new();
    for line in CASES {
        if let Err(e) = same_table(&ns, &words(line)) {
            failures.push(e);
        }
    }
    all_passed(failures, CASES.len());
}

/// Where 1.4.7 accepts a value silently (truncating it), crashes, or reads past its
/// tables, we refuse the parameter with exit status 2 and a clear message; nothing is sent.
#[test]
fn values_1_4_7_takes_silently_are_refused() {
    let ns = Netns::new("clistrict");
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
        let r = run(&ns, ours(), &words(line), None);
        let want = format!(
            "conntrack v1.4.7 (conntrack-tools): {msg}\nTry `conntrack -h' or 'conntrack --help' for more information.\n"
        );
        if r.code != 2 || r.stderr != want || !r.stdout.is_empty() {
            failures.push(format!("{line}: {r:?}"));
        }
    }
    // The strict checks come after the tool's own: its message wins where it has one.
    let r = run(
        &ns,
        ours(),
        &words("-L -p tcp --tuple-port-src 70000"),
        None,
    );
    if !r
        .stderr
        .contains("Illegal option `--tuple-port-src' with this command")
    {
        failures.push(format!("order of checks: {r:?}"));
    }
    all_passed(failures, cases.len() + 1);
}

/// `--labelmap FILE`, which 1.4.7 does not have, names labels from FILE; options of the
/// tool keep their meaning and abbreviations (`--label` is still `-l`).
#[test]
fn labelmap_option() {
    let ns = Netns::new("clilabelmap");
    let path = std::env::temp_dir().join(format!("cli-labelmap-{}.conf", std::process::id()));
    std::fs::write(&path, "3 three\n").expect("write map");
    let p = path.to_str().expect("utf-8 path");
    let r = run(&ns, ours(), &["-L", "-l", "three", "--labelmap", p], None);
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(&ns, ours(), &["-L", "--labelm", p, "-l", "nosuch"], None);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("unknown label 'nosuch'"), "{r:?}");
    let r = run(
        &ns,
        ours(),
        &["-L", "--labelmap=/nonexistent", "-o", "labels"],
        None,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .starts_with("nfct_labelmap_new: No such file or directory\n"),
        "{r:?}"
    );
    let _ = std::fs::remove_file(&path);
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
        let b = as_nobody(ours(), &args);
        if let Err(e) = cli_support::compare(&args, &a, &b, None) {
            failures.push(e);
        }
    }
    all_passed(failures, cases.len());
}
