//! `conntrack -L` (and `-G`, `-C`, `-S`, `-L expect`, `dying`, `unconfirmed`) against
//! conntrack-tools 1.4.7 on the same table: entries made by request and by real traffic on
//! `lo` (NAT, an FTP helper and its expectations, counters, timestamps, labels, zones), listed
//! by both tools one after the other with every output option and every kind of filter.

mod cli_support;

use cli_support::{all_passed, compare, need_reference, ours, run, same_table, words, Netns, REAL};
use conntrack_tests::scenario::{RULES, TRAFFIC};

/// Entries made by request (with the reference tool).
pub const INSERTS: &str = "\
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
-I -s 1:0:0:0:1:0:0:0 -d 2001:0:0:1:0:0:1:1 -p udp --sport 7 --dport 8 -t 999
-I -s fe80::abcd -d ::2 -p udp --sport 9 --dport 10 -t 999 -m 4294967295
-I -s 10.0.0.1 -d 10.0.1.1 -p tcp --sport 5 --dport 6 -t 999 --state TIME_WAIT -m 7 --label-add zero
-I -s 10.0.0.2 -d 10.0.1.1 -p tcp --sport 5 --dport 6 -t 999 --state CLOSE -m 0x100 --label-add zero,five
-I -s 10.0.0.3 -d 10.0.2.1 -p udp --sport 5 --dport 6 -t 999 -m 0x101 --label-add big
-I -s 10.0.0.4 -d 10.0.2.1 -p udp --sport 5 --dport 7 -t 999 -u ASSURED
";

/// The listings compared.
const LISTS: &[&str] = &[
    "-L",
    "-L conntrack",
    "-L -o extended",
    "-L -o id",
    "-L -o extended,id",
    "-L -o xml",
    "-L -o save",
    "-L -o ktimestamp",
    "-L -o timestamp",
    "-L -o labels",
    "-L -o userspace",
    "-L -o extended,id,ktimestamp,labels",
    "-L -o xml,ktimestamp,labels",
    "-L -o xml,extended,id",
    "-L -f ipv4",
    "-L -f ipv6",
    "-L -f ipv6 -o xml,extended",
    "-L -p tcp",
    "-L -p udp --dport 53",
    "-L -p tcp --dport 21",
    "-L -p icmp --icmp-type 8",
    "-L -p icmpv6 --icmpv6-type 128",
    "-L -p tcp --state TIME_WAIT",
    "-L -p sctp",
    "-L -p sctp --state ESTABLISHED",
    "-L -p gre --srckey 4660",
    "-L -p 200",
    "-L -p udplite",
    "-L -s 1.2.3.4",
    "-L -s 1.2.3.4 -d 5.6.7.8 -p tcp --sport 1000 --dport 80",
    "-L -s 10.0.0.0/24",
    "-L -s 10.0.0.0/255.255.255.0",
    "-L -s 10.0.0.0 --mask-src 255.255.255.252",
    "-L -d 10.0.2.0/24 -p udp",
    "-L -s 2001:db8::1",
    "-L -s 2001:db8::/32",
    "-L -s ::1/128 -p udp",
    "-L -d ::1 --mask-dst ffff::",
    "-L -r 5.6.7.8",
    "-L -q 1.1.1.1 -p udp",
    "-L -q 127.0.0.5",
    "-L -p tcp --reply-port-src 80",
    "-L -m 42",
    "-L -m 0x100/0xf00",
    "-L -m 0 -o id",
    "-L -m 1 -u ASSURED",
    "-L -u ASSURED -m 4",
    "-L -u ASSURED",
    "-L -u UNREPLIED",
    "-L -u SEEN_REPLY,ASSURED",
    "-L -u !SEEN_REPLY",
    "-L -u !ASSURED,SEEN_REPLY",
    "-L -u ASSURED -u SEEN_REPLY",
    "-L -u FIXED_TIMEOUT",
    "-L -w 5",
    "-L -w 0",
    "-L --orig-zone 6",
    "-L --reply-zone 7",
    "-L --orig-zone 0",
    "-L -c 5",
    "-L -l zero",
    "-L -l zero,five",
    "-L -l five -l zero",
    "-L -l big -o save",
    "-L -n",
    "-L -g",
    "-L -j",
    "-L -n -g",
    "-L -n 127.0.0.5",
    "-L -n 127.0.0.6",
    "-L -n 127.0.0.5:4000",
    "-L -n 127.0.0.5:4001",
    "-L -g 127.0.0.1:8080",
    "-L -g 127.0.0.1:8081",
    "-L -g 127.0.0.1",
    "-L -j 127.0.0.5",
    "-L -j 127.0.0.5 -p udp",
    "-L --src-nat=127.0.0.5",
    "-L -n [::1]:80",
    "-L -g ::1",
    "-L -p tcp -o save -s 127.0.0.1",
    "-L -w 5 -p udp -f ipv4",
    "-L -w 5 -s 1.1.1.1 -m 0",
    "-L --orig-zone 6 -p udp -s 1.1.1.1",
    "-L -f ipv4 -p udp --sport 1 -w 5",
    "-L -f ipv4 -u ASSURED -p udp -s 10.0.0.4",
    "-L -f ipv6 -p icmpv6 --icmpv6-id 4321",
    "-L -f ipv4 -p icmp --icmp-type 8 --icmp-code 0",
    "-L -f ipv4 -p tcp --sport 1000 --dport 80 -r 5.6.7.8",
    "-L expect",
    "-L expect -f ipv6",
    "-L expect -o xml",
    "-L expect -o timestamp",
    "-L expect -o xml,timestamp",
    "-L expect -o extended",
    "-L dying",
    "-L unconfirmed",
    "-L dying -o xml",
    "-C",
    "-C expect",
    "-S",
    "-S expect",
    "-G -s 1.2.3.4 -d 5.6.7.8 -p tcp --sport 1000 --dport 80",
    "-G -s 1.2.3.4 -d 5.6.7.8 -p tcp --sport 1000 --dport 80 -o xml",
    "-G -s 1.2.3.4 -d 5.6.7.8 -p tcp --sport 1000 --dport 80 -o save",
    "-G -s 1.2.3.4 -d 5.6.7.8 -p tcp --sport 1000 --dport 80 -o extended,id",
    "-G -s 1.2.3.4 -d 5.6.7.8 -p tcp --sport 1000 --dport 81",
    "-G -r 5.6.7.8 -q 1.2.3.4 -p tcp --reply-port-src 80 --reply-port-dst 1000",
    "-G -s 1.1.1.1 -d 2.2.2.2 -p icmp --icmp-type 8 --icmp-code 0 --icmp-id 1234",
    "-G -s 10.0.0.2 -d 10.0.1.1 -p tcp --sport 5 --dport 6 -l five",
    "-G -s 10.0.0.2 -d 10.0.1.1 -p tcp --sport 5 --dport 6 -l big",
    "-G -s 2001:db8::1 -d 2001:db8::2 -p icmpv6 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 4321",
    "-G -s 1.1.1.1 -d 2.2.2.2 -p udp --sport 1 --dport 2",
];

#[test]
fn listings_match_conntrack_tools() {
    need_reference();
    let ns = Netns::new("clilist");
    ns.sysctl("net.netfilter.nf_conntrack_acct", "1");
    ns.sysctl("net.netfilter.nf_conntrack_timestamp", "1");
    ns.nft(RULES);
    cli_support::apply(&ns, INSERTS);
    ns.run("python3", &["-c", TRAFFIC]);
    ns.run("ping", &["-c", "1", "-W", "1", "127.0.0.1"]);
    ns.run("ping", &["-c", "1", "-W", "1", "::1"]);
    let mut failures = Vec::new();
    for line in LISTS {
        if let Err(e) = same_table(&ns, &words(line)) {
            failures.push(e);
        }
    }
    // -z zeroes the counters it lists: ours lists what 1.4.7 lists without -z, then both
    // see the counters zeroed.
    let before = run(&ns, REAL, &["-L", "-f", "ipv6"], None);
    let zeroing = run(&ns, ours(), &["-L", "-z", "-f", "ipv6"], None);
    if let Err(e) = compare(&["-L", "-z", "-f", "ipv6"], &before, &zeroing, None) {
        failures.push(e);
    }
    let after_ours = run(&ns, REAL, &["-L", "-f", "ipv6"], None);
    let again_real = run(&ns, REAL, &["-L", "-z", "-f", "ipv6"], None);
    if let Err(e) = compare(
        &["-L", "-z", "-f", "ipv6", "(after)"],
        &after_ours,
        &again_real,
        None,
    ) {
        failures.push(e);
    }
    if !after_ours.stdout.contains("packets=0 bytes=0") || after_ours.stdout.contains("packets=1 ")
    {
        failures.push(format!("counters not zeroed: {}", after_ours.stdout));
    }
    all_passed(failures, LISTS.len() + 3);
}
