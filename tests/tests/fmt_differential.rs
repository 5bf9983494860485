//! The formatter against conntrack-tools: the same table, listed by `conntrack -L -o X` and
//! by our formatter from a dump, compared line by line for every output option.
//!
//! Live: runs as root in a throwaway network namespace. Only the countdowns (the timeout,
//! `delta-time` and XML `<deltatime>`) are masked, since a second may pass between the two
//! listings.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use conntrack_codec::ct::{request, ConntrackRepr, Labels, Tuple};
use conntrack_codec::exp::{self, ExpectRepr};
use conntrack_codec::filter::DumpFilter;
use conntrack_codec::fmt::{CtLine, ExpLine, Origin, Output, Style};
use conntrack_codec::labels::LabelMap;
use conntrack_codec::nl::{Messages, Writer};
use conntrack_tests::scenario::{RULES, TRAFFIC};
use conntrack_tests::{label_map, raw_dump, Netns};

/// Entries made with `conntrack -I`, so both tools see the same table.
const INSERTS: &[&str] = &[
    "-s 1.2.3.4 -d 5.6.7.8 -p tcp --sport 1000 --dport 80 --state ESTABLISHED -t 99 -u SEEN_REPLY,ASSURED -m 42",
    "-s 1.2.3.4 -d 5.6.7.8 -p tcp --sport 1001 --dport 80 --state SYN_SENT -t 98",
    "-s 1.2.3.4 -d 5.6.7.8 -p udp --sport 1000 --dport 53 -t 29",
    "-s 1.1.1.1 -d 2.2.2.2 -p udp --sport 1 --dport 2 -t 49 -w 5",
    "-s 1.1.1.1 -d 2.2.2.2 -p udp --sport 1 --dport 3 -t 49 --orig-zone 6",
    "-s 1.1.1.1 -d 2.2.2.2 -p udp --sport 1 --dport 4 -t 49 --reply-zone 7",
    "-s 1.1.1.1 -d 2.2.2.2 -p icmp --icmp-type 8 --icmp-code 0 --icmp-id 1234 -t 29",
    "-s 2001:db8::1 -d 2001:db8::2 -p icmpv6 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 4321 -t 29",
    "-s 3.3.3.3 -d 4.4.4.4 -p sctp --sport 31971 --dport 9 --state ESTABLISHED --orig-vtag 305419896 --reply-vtag 7 -t 49 -u SEEN_REPLY",
    "-s 1.1.1.1 -d 2.2.2.2 -p gre --srckey 4660 --dstkey 43981 -t 29 -u SEEN_REPLY,ASSURED,FIXED_TIMEOUT",
    "-s 1.1.1.1 -d 2.2.2.2 -p udplite --sport 5 --dport 6 -t 49",
    "-s 1.1.1.1 -d 2.2.2.2 -p 200 -t 29",
    "-s ::ffff:1.2.3.4 -d ::1.2.3.4 -p tcp --sport 1 --dport 2 --state ESTABLISHED -t 99",
    "-s 1:0:0:0:1:0:0:0 -d 2001:0:0:1:0:0:1:1 -p udp --sport 7 --dport 8 -t 29",
    "-s fe80::abcd -d ::2 -p udp --sport 9 --dport 10 -t 29 -m 4294967295",
];

fn set_labels(ns: &Netns, orig: Tuple, bits: &[u16]) {
    let mut labels = Labels::default();
    for b in bits {
        labels.insert(*b).unwrap();
    }
    let entry = ConntrackRepr {
        family: 2,
        orig: Some(orig),
        labels: Some(labels),
        labels_mask: Some(labels),
        ..ConntrackRepr::default()
    };
    let mut buf = [0u8; 512];
    let mut w = Writer::new(&mut buf);
    request::update(&mut w, 1, &entry).unwrap();
    let sock = ns.socket();
    sock.send(w.written()).unwrap();
    let mut reply = [0u8; 4096];
    let d = sock.recv(&mut reply).unwrap();
    let m = Messages::new(&reply[..d.len]).next().unwrap().unwrap();
    match m.control().unwrap() {
        Some(conntrack_codec::nl::Control::Error(e)) => {
            assert!(e.is_ack(), "labels update failed: errno {}", e.errno())
        }
        other => panic!("unexpected reply {other:?}"),
    }
}

fn setup() -> Netns {
    let ns = Netns::new("fmtdiff");
    ns.sysctl("net.netfilter.nf_conntrack_acct", "1");
    ns.sysctl("net.netfilter.nf_conntrack_timestamp", "1");
    ns.nft(RULES);
    for args in INSERTS {
        let args: Vec<&str> = std::iter::once("-I").chain(args.split(' ')).collect();
        ns.run("conntrack", &args);
    }
    ns.run("python3", &["-c", TRAFFIC]);
    ns.run("ping", &["-c", "1", "-W", "1", "127.0.0.1"]);
    ns.run("ping", &["-c", "1", "-W", "1", "::1"]);
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    set_labels(
        &ns,
        Tuple::tcp(v4(1, 2, 3, 4), v4(5, 6, 7, 8), 1000, 80),
        &[0, 5, 9],
    );
    set_labels(
        &ns,
        Tuple::udp(v4(1, 2, 3, 4), v4(5, 6, 7, 8), 1000, 53),
        &[9],
    );
    ns
}

/// Replaces the countdowns with `N`: the digits after `delta-time=`, `<deltatime>`,
/// `<timeout>` and `-t `, and the timeout field of the default line (the first number after
/// the protocol number). Spacing is kept as it is.
fn mask(line: &str) -> String {
    let mut out = line.to_string();
    for key in ["delta-time=", "<deltatime>", "<timeout>", "-t "] {
        let mut from = 0;
        while let Some(pos) = out[from..].find(key) {
            let start = from + pos + key.len();
            let end = start
                + out[start..]
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(out.len() - start);
            out.replace_range(start..end, "N");
            from = start + 1;
        }
    }
    if out.starts_with('<') || out.starts_with('-') {
        return out;
    }
    let mut tokens: Vec<&str> = out.split(' ').collect();
    let words: Vec<usize> = (0..tokens.len())
        .filter(|&i| !tokens[i].is_empty())
        .collect();
    let numeric = |i: usize| tokens[words[i]].chars().all(|c| c.is_ascii_digit());
    // [ipv4 2] tcp 6 TIMEOUT ...: the timeout follows the first "name number" pair, or the
    // second one with -o extended.
    let skip = if tokens[words[0]] == "ipv4" || tokens[words[0]] == "ipv6" {
        2
    } else {
        0
    };
    if words.len() > skip + 2 && numeric(skip + 1) && numeric(skip + 2) {
        tokens[words[skip + 2]] = "N";
    }
    tokens.join(" ")
}

fn ours(entries: &[ConntrackRepr], out: &Output, map: &LabelMap) -> Vec<String> {
    let mut lines: Vec<String> = entries
        .iter()
        .map(|e| mask(&CtLine::new(e, Origin::Dump, out, map).to_string()))
        .collect();
    lines.sort();
    lines
}

fn theirs(ns: &Netns, option: &str) -> Vec<String> {
    let mut args = vec!["-L"];
    if !option.is_empty() {
        args.extend(["-o", option]);
    }
    let stdout = ns.run("conntrack", &args);
    let mut lines: Vec<String> = stdout
        .lines()
        .filter(|l| !l.starts_with("<?xml") && *l != "<conntrack>" && *l != "</conntrack>")
        .map(mask)
        .collect();
    lines.sort();
    lines
}

fn output_for(option: &str, labels: bool) -> Output {
    let mut out = conntrack_io::clock::output_now();
    for o in option.split(',').filter(|o| !o.is_empty()) {
        match o {
            "extended" => out.extended = true,
            "id" => out.id = true,
            "ktimestamp" => out.ktimestamp = true,
            // `-o timestamp` only prefixes events; a listing ignores it.
            "timestamp" => out.event_time = Some(conntrack_io::clock::now_micros()),
            "labels" => out.labels = labels,
            "save" => out.style = Style::Save,
            "xml" => out.style = Style::Xml,
            other => panic!("option {other} not covered"),
        }
    }
    out
}

#[test]
fn formatter_matches_conntrack_tools_for_every_option() {
    // conntrack -L reads the tests' label map (see conntrack_tests): the same names.
    let map = label_map();
    let ns = setup();
    let sock = ns.socket();
    let mut req = [0u8; 64];
    let mut w = Writer::new(&mut req);
    request::dump(&mut w, 1, &DumpFilter::default()).unwrap();
    let entries: Vec<ConntrackRepr> = raw_dump(&sock, w.written())
        .iter()
        .map(|b| ConntrackRepr::parse_msg(Messages::new(b).next().unwrap().unwrap()).unwrap())
        .collect();
    assert!(
        entries.len() >= INSERTS.len() + 5,
        "only {} entries",
        entries.len()
    );

    let options = [
        "",
        "extended",
        "id",
        "timestamp",
        "extended,id",
        "ktimestamp",
        "labels",
        "extended,id,ktimestamp,labels",
        "save",
        "xml",
        "xml,ktimestamp,labels",
    ];
    let mut report = BTreeMap::new();
    for option in options {
        let out = output_for(option, true);
        let mine = ours(&entries, &out, &map);
        let tools = theirs(&ns, option);
        assert_eq!(mine.len(), tools.len(), "-o {option}: line counts differ");
        for (a, b) in mine.iter().zip(&tools) {
            assert_eq!(a, b, "-o {option}: ours vs conntrack -L");
        }
        if option == "extended,id,ktimestamp,labels" || option == "save" {
            for l in &mine {
                println!("{l}");
            }
        }
        report.insert(option, mine.len());
    }
    println!("compared line by line: {report:?}");

    // Expectations: conntrack -L expect lists one family at a time (IPv4 by default).
    let mut w = Writer::new(&mut req);
    exp::request::dump(&mut w, 2, 0).unwrap();
    let expectations: Vec<ExpectRepr> = raw_dump(&sock, w.written())
        .iter()
        .map(|b| ExpectRepr::parse_msg(Messages::new(b).next().unwrap().unwrap()).unwrap())
        .collect();
    for (family, args) in [
        (2u8, vec!["-L", "expect"]),
        (10, vec!["-L", "expect", "-f", "ipv6"]),
    ] {
        for option in ["", "xml"] {
            let out = output_for(option, false);
            let mut mine: Vec<String> = expectations
                .iter()
                .filter(|e| e.family == family)
                .map(|e| mask_exp(&ExpLine::new(e, None, &out).to_string()))
                .collect();
            mine.sort();
            let mut args = args.clone();
            if !option.is_empty() {
                args.extend(["-o", option]);
            }
            let mut tools: Vec<String> = ns
                .run("conntrack", &args)
                .lines()
                .filter(|l| !l.starts_with("<?xml") && *l != "<expect>" && *l != "</expect>")
                .map(mask_exp)
                .collect();
            tools.sort();
            assert!(
                !mine.is_empty(),
                "no expectation of family {family}: the FTP helper made none"
            );
            assert_eq!(mine, tools, "conntrack {args:?}");
            println!(
                "expectations, family {family}, -o {option:?}: {} lines equal",
                mine.len()
            );
        }
    }
}

/// Masks the countdown of an expectation line (its first field, or XML `<timeout>`).
fn mask_exp(line: &str) -> String {
    let masked = mask(line);
    if masked.starts_with('<') {
        return masked;
    }
    match masked.split_once(' ') {
        Some((first, rest)) if first.chars().all(|c| c.is_ascii_digit()) => format!("N {rest}"),
        _ => masked,
    }
}
