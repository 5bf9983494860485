//! Filters that never select the wrong entries, against the real kernel: a table of IPv4
//! and IPv6 entries with NAT, zones (both directions, and one direction only), marks and
//! status bits; every address, port, protocol and ICMP field of both directions, the zone,
//! the mark and the status used as a filter for `list`, `flush` and `delete_matching`; what
//! is listed, or left, compared with an exact oracle written here over the same table.
//!
//! Each test runs in its own throwaway network namespace. `list` runs every case; flushes and
//! deletes, which rebuild the table between cases (and each dump or flush walks the kernel's
//! whole hash table, shared by every namespace), run one case per field, direction and
//! family. `flush` runs two ways: as the running kernel allows (`KernelFilters::Auto`: in
//! the kernel where it is exact, else dump, match and delete), and with only the family
//! trusted (the `EOPNOTSUPP` fallback, forced: every filtered flush is a dump, a match and a
//! delete).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::ControlFlow;

use conntrack_codec::ct::{l4proto, ConntrackRepr, NatRange, Status, Tuple};
use conntrack_codec::filter::{filter_flags, DumpFilter};
use conntrack_io::{Flushed, KernelFilters, Socket};
use conntrack_tests::Netns;

fn a4(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, 0, d))
}

fn a6(d: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, d))
}

fn nat(addr: IpAddr, port: Option<u16>) -> Option<NatRange> {
    Some(NatRange {
        min_addr: Some(addr),
        max_addr: Some(addr),
        min_port: port,
        max_port: port,
    })
}

/// One entry to create: its original tuple and what else it has.
fn entry(orig: Tuple) -> ConntrackRepr {
    ConntrackRepr {
        orig: Some(orig),
        reply: Some(orig.inverted()),
        timeout: Some(600),
        ..ConntrackRepr::default()
    }
}

/// The table: IPv4 and IPv6; TCP, UDP, ICMP/ICMPv6, SCTP; DNAT and SNAT; zone 7 in both
/// directions, zone 9 in the original direction only; the same tuple in two zones; marks
/// and status bits.
fn table() -> Vec<ConntrackRepr> {
    let assured = Some(Status::SEEN_REPLY | Status::ASSURED);
    vec![
        ConntrackRepr {
            nat_dst: nat(a4(200), Some(8080)),
            mark: Some(1),
            ..entry(Tuple::tcp(a4(1), a4(100), 1001, 80))
        },
        ConntrackRepr {
            zone: Some(7),
            mark: Some(2),
            ..entry(Tuple::tcp(a4(1), a4(100), 1001, 80))
        },
        ConntrackRepr {
            zone: Some(7),
            status: assured,
            ..entry(Tuple::tcp(a4(2), a4(100), 1002, 80))
        },
        ConntrackRepr {
            nat_src: nat(a4(250), Some(4000)),
            ..entry(Tuple::udp(a4(1), a4(101), 1001, 53))
        },
        entry(Tuple::udp(a4(3), a4(101), 1003, 53).with_zone(9)),
        entry(Tuple::icmp(
            Ipv4Addr::new(10, 1, 0, 1),
            Ipv4Addr::new(10, 1, 0, 100),
            8,
            0,
            77,
        )),
        ConntrackRepr {
            zone: Some(7),
            ..entry(Tuple::icmp(
                Ipv4Addr::new(10, 1, 0, 2),
                Ipv4Addr::new(10, 1, 0, 100),
                8,
                0,
                78,
            ))
        },
        entry(Tuple::ports(l4proto::SCTP, a4(1), a4(102), 5000, 6000)),
        entry(Tuple::ports(l4proto::SCTP, a4(1), a4(102), 5001, 6000)),
        // The issue's IPv6 scenario: three UDP entries to fd00::a, DNATed to fd00::5/6/7.
        ConntrackRepr {
            nat_dst: nat(a6(5), None),
            mark: Some(1),
            ..entry(Tuple::udp(a6(1), a6(0xa), 1001, 53))
        },
        ConntrackRepr {
            nat_dst: nat(a6(6), None),
            status: assured,
            ..entry(Tuple::udp(a6(2), a6(0xa), 1002, 53))
        },
        ConntrackRepr {
            nat_dst: nat(a6(7), None),
            ..entry(Tuple::udp(a6(3), a6(0xa), 1003, 53))
        },
        ConntrackRepr {
            zone: Some(7),
            ..entry(Tuple::tcp(a6(1), a6(0xb), 1001, 80))
        },
        entry(Tuple::tcp(a6(1), a6(0xb), 1001, 80).with_zone(9)),
        entry(Tuple::icmpv6(
            Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1),
            Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0xb),
            128,
            0,
            5,
        )),
        entry(Tuple::ports(l4proto::SCTP, a6(2), a6(0xc), 5000, 6000)),
    ]
}

/// Creates the table; every create must succeed.
fn fill(sock: &mut Socket) {
    let table = table();
    let s = sock
        .create_batch(&table, 64, |i, r| {
            r.unwrap_or_else(|err| panic!("create {:?}: {err}", table[i].orig))
        })
        .unwrap();
    assert_eq!(s.succeeded, table.len());
}

/// Every entry of the namespace, as plain data.
fn all(sock: &mut Socket) -> Vec<ConntrackRepr> {
    listed(sock, &DumpFilter::all())
}

fn listed(sock: &mut Socket, f: &DumpFilter) -> Vec<ConntrackRepr> {
    let mut out = Vec::new();
    let summary = sock
        .list(f, |v| {
            out.push(ConntrackRepr::try_from(&v).unwrap());
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(summary.delivered as usize, out.len());
    out
}

/// What identifies an entry: family, tuples and zones.
type Id = (u8, Option<Tuple>, Option<Tuple>, Option<u16>);

fn ids(entries: &[ConntrackRepr]) -> BTreeSet<String> {
    entries
        .iter()
        .map(|e| {
            let id: Id = (e.family, e.orig, e.reply, e.zone);
            format!("{id:?}")
        })
        .collect()
}

/// The oracle: whether `e` has every field of `want` in direction `reply` (or original),
/// compared on the plain data, written independently of the library's matcher.
fn has(e: &ConntrackRepr, reply: bool, want: &Tuple) -> bool {
    let t = if reply { e.reply } else { e.orig }.unwrap();
    let zone = e.zone.or(t.zone).unwrap_or(0);
    fn same<T: PartialEq>(w: Option<T>, v: Option<T>) -> bool {
        w.is_none() || w == v
    }
    same(want.src, t.src)
        && same(want.dst, t.dst)
        && same(want.proto, t.proto)
        && same(want.src_port, t.src_port)
        && same(want.dst_port, t.dst_port)
        && same(want.icmp_type, t.icmp_type)
        && same(want.icmp_code, t.icmp_code)
        && same(want.icmp_id, t.icmp_id)
        && same(want.icmpv6_type, t.icmpv6_type)
        && same(want.icmpv6_code, t.icmpv6_code)
        && same(want.icmpv6_id, t.icmpv6_id)
        && same(want.zone, Some(zone))
}

/// A filter case: a description, the filter, and the oracle's choice.
struct Case {
    name: String,
    /// What the case exercises (direction, family, fields): cases of one kind differ only
    /// in the values compared. Empty for cases of a kind of their own.
    kind: String,
    filter: DumpFilter,
    selects: Box<dyn Fn(&ConntrackRepr) -> bool>,
}

/// One case per field of each direction of each entry of the table (the protocol added to
/// ports and ICMP fields, the family to fields without an address), plus the zone, mark
/// and status, and the issue's combination.
fn cases() -> Vec<Case> {
    let mut out: Vec<Case> = Vec::new();
    let mut seen = BTreeSet::new();
    for e in table() {
        let family = e.orig.unwrap().family().unwrap();
        let after_nat = e.nat_dst.is_some() || e.nat_src.is_some();
        for reply in [false, true] {
            // The reply tuple the kernel will compute (NAT rewrites it): only the original
            // tuple's own fields are known here for NATed entries' replies, so those take
            // the fields of the reply the table will really have, read back below.
            if reply && after_nat {
                continue;
            }
            let t = if reply { e.reply } else { e.orig }.unwrap();
            let proto = t.proto;
            let one = |f: &dyn Fn(&mut Tuple)| {
                let mut w = Tuple::default();
                f(&mut w);
                w
            };
            let mut specs = vec![
                one(&|w| w.src = t.src),
                one(&|w| w.dst = t.dst),
                one(&|w| w.proto = proto),
                one(&|w| w.zone = Some(e.zone.or(t.zone).unwrap_or(0))),
            ];
            if t.src_port.is_some() {
                specs.push(one(&|w| {
                    w.proto = proto;
                    w.src_port = t.src_port;
                }));
                specs.push(one(&|w| {
                    w.proto = proto;
                    w.dst_port = t.dst_port;
                }));
            }
            if t.icmp_type.is_some() {
                specs.push(one(&|w| {
                    w.proto = proto;
                    w.icmp_type = t.icmp_type;
                }));
                specs.push(one(&|w| {
                    w.proto = proto;
                    w.icmp_code = t.icmp_code;
                }));
                specs.push(one(&|w| {
                    w.proto = proto;
                    w.icmp_id = t.icmp_id;
                }));
            }
            if t.icmpv6_type.is_some() {
                specs.push(one(&|w| {
                    w.proto = proto;
                    w.icmpv6_type = t.icmpv6_type;
                }));
                specs.push(one(&|w| {
                    w.proto = proto;
                    w.icmpv6_code = t.icmpv6_code;
                }));
                specs.push(one(&|w| {
                    w.proto = proto;
                    w.icmpv6_id = t.icmpv6_id;
                }));
            }
            for spec in specs {
                let key = format!("{reply} {family} {spec:?}");
                if !seen.insert(key.clone()) {
                    continue;
                }
                let base = DumpFilter::family(family);
                let filter = if reply {
                    base.with_reply(spec)
                } else {
                    base.with_orig(spec)
                };
                out.push(Case {
                    name: key,
                    kind: format!("{reply} {family} {:#x}", filter_flags::of(&spec)),
                    filter,
                    selects: Box::new(move |x| x.family == family && has(x, reply, &spec)),
                });
            }
        }
    }
    // The reply side of the NATed entries, from the tuples the kernel computes: the
    // issue's case (reply source fd00::5, UDP) and the other NATed replies' sources.
    for (addr, proto, port) in [
        (a6(5), l4proto::UDP, None),
        (a6(6), l4proto::UDP, None),
        (a4(200), l4proto::TCP, Some(8080)),
        (a4(101), l4proto::UDP, None),
    ] {
        let spec = Tuple {
            src: Some(addr),
            proto: Some(proto),
            src_port: port,
            ..Tuple::default()
        };
        out.push(Case {
            kind: String::new(),
            name: format!("reply NAT {spec:?}"),
            filter: DumpFilter::all().with_reply(spec),
            selects: Box::new(move |x| has(x, true, &spec)),
        });
    }
    for spec in [
        Tuple {
            dst: Some(a4(250)),
            ..Tuple::default()
        },
        Tuple {
            dst: Some(a4(250)),
            proto: Some(l4proto::UDP),
            dst_port: Some(4000),
            ..Tuple::default()
        },
    ] {
        out.push(Case {
            kind: String::new(),
            name: format!("reply SNAT {spec:?}"),
            filter: DumpFilter::all().with_reply(spec),
            selects: Box::new(move |x| has(x, true, &spec)),
        });
    }
    for zone in [0, 7, 9] {
        out.push(Case {
            kind: String::new(),
            name: format!("zone {zone}"),
            filter: DumpFilter::all().with_zone(zone),
            selects: Box::new(move |x| {
                x.zone
                    .or(x.orig.unwrap().zone)
                    .or(x.reply.unwrap().zone)
                    .unwrap_or(0)
                    == zone
            }),
        });
    }
    out.push(Case {
        kind: String::new(),
        name: "mark 1, IPv6".into(),
        filter: DumpFilter::ipv6().with_mark(1, u32::MAX),
        selects: Box::new(|x| x.family == 10 && x.mark.unwrap_or(0) == 1),
    });
    out.push(Case {
        kind: String::new(),
        name: "status ASSURED".into(),
        filter: DumpFilter::all().with_status(Status::ASSURED, Status::ASSURED),
        selects: Box::new(|x| x.status.unwrap().contains(Status::ASSURED)),
    });
    out.push(Case {
        kind: String::new(),
        name: "IPv6 reply source fd00::5, UDP, zone 0, original source fd00::1".into(),
        filter: DumpFilter::all()
            .with_reply(Tuple {
                src: Some(a6(5)),
                proto: Some(l4proto::UDP),
                ..Tuple::default()
            })
            .with_orig(Tuple {
                src: Some(a6(1)),
                ..Tuple::default()
            })
            .with_zone(0),
        selects: Box::new(|x| {
            x.reply.unwrap().src == Some(a6(5)) && x.orig.unwrap().src == Some(a6(1))
        }),
    });
    out
}

/// The table as the kernel has it, and what each case's oracle selects from it.
fn expected(table: &[ConntrackRepr], case: &Case) -> Vec<ConntrackRepr> {
    table
        .iter()
        .filter(|e| (case.selects)(e))
        .cloned()
        .collect()
}

#[test]
fn list_selects_exactly_what_the_oracle_selects() {
    let ns = Netns::new("flt-list");
    let mut sock = ns.socket();
    fill(&mut sock);
    let table = all(&mut sock);
    assert_eq!(table.len(), self::table().len());
    let cases = cases();
    let mut nonempty = 0;
    for case in &cases {
        let want = expected(&table, case);
        let got = listed(&mut sock, &case.filter);
        assert_eq!(ids(&got), ids(&want), "list: {}", case.name);
        nonempty += usize::from(!want.is_empty());
    }
    println!("{} list cases, {nonempty} selecting something", cases.len());
    // The issue's case: one entry, not the other two.
    let issue = DumpFilter::ipv6().with_reply(Tuple {
        src: Some(a6(5)),
        proto: Some(l4proto::UDP),
        ..Tuple::default()
    });
    let got = listed(&mut sock, &issue);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].orig.unwrap().src, Some(a6(1)));
}

/// Runs every case as a change of the table (rebuilt before each), comparing what is left
/// with the table minus what the oracle selects.
fn each_case_leaves_the_rest(tag: &str, change: &dyn Fn(&mut Socket, &DumpFilter) -> String) {
    let ns = Netns::new(tag);
    let mut sock = ns.socket();
    fill(&mut sock);
    let table = all(&mut sock);
    let mut ways = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| c.kind.is_empty() || kinds.insert(c.kind.clone()))
        .collect();
    println!("{tag}: {} cases", cases.len());
    for case in cases {
        sock.flush(&DumpFilter::all()).unwrap();
        assert!(all(&mut sock).is_empty());
        fill(&mut sock);
        let want: Vec<ConntrackRepr> = table
            .iter()
            .filter(|e| !(case.selects)(e))
            .cloned()
            .collect();
        let how = change(&mut sock, &case.filter);
        let left = all(&mut sock);
        assert_eq!(ids(&left), ids(&want), "{tag}: {} ({how})", case.name);
        ways.insert(how);
    }
    println!("{tag}: done as {ways:?}");
}

#[test]
fn delete_matching_deletes_exactly_what_the_oracle_selects() {
    each_case_leaves_the_rest("flt-delmatch", &|sock, f| {
        let s = sock.delete_matching(f).unwrap().complete().unwrap();
        // Every matching entry deleted, none gone meanwhile, none failed (what is left is
        // compared with the oracle by the caller).
        assert!(s.dumped >= s.matched);
        assert_eq!((s.succeeded, s.vanished, s.failed), (s.matched, 0, 0));
        "delete_matching".into()
    });
}

fn flush_with(policy: KernelFilters) -> impl Fn(&mut Socket, &DumpFilter) -> String {
    move |sock, f| {
        sock.set_kernel_filters(policy);
        let how = match sock.flush(f).unwrap() {
            Flushed::InKernel => "in the kernel".to_string(),
            Flushed::Matched(s) => {
                assert_eq!(s.failed, 0);
                "dump, match and delete".to_string()
            }
            other => format!("{other:?}"),
        };
        sock.set_kernel_filters(KernelFilters::Auto);
        how
    }
}

#[test]
fn flush_deletes_exactly_what_the_oracle_selects() {
    each_case_leaves_the_rest("flt-flush", &flush_with(KernelFilters::Auto));
}

#[test]
fn flush_trusting_only_the_family_is_exact_too() {
    each_case_leaves_the_rest("flt-flushfam", &flush_with(KernelFilters::FamilyOnly));
}

#[test]
fn list_trusting_only_the_family_is_exact_too() {
    let ns = Netns::new("flt-listfam");
    let mut sock = ns.socket();
    sock.set_kernel_filters(KernelFilters::FamilyOnly);
    fill(&mut sock);
    let table = all(&mut sock);
    for case in &cases() {
        let got = listed(&mut sock, &case.filter);
        assert_eq!(ids(&got), ids(&expected(&table, case)), "{}", case.name);
    }
}

#[test]
fn change_matching_updates_skips_and_counts_vanished_entries() {
    use conntrack_codec::ct::request::{self, Key};
    let ns = Netns::new("flt-change");
    let mut sock = ns.socket();
    let mut other = ns.socket();
    fill(&mut sock);
    // Every UDP entry of the IPv6 table, by reply source: the three DNATed ones.
    let udp6 = DumpFilter::ipv6().with_orig(Tuple {
        proto: Some(l4proto::UDP),
        ..Tuple::default()
    });
    let mut seen = Vec::new();
    let summary = sock
        .change_matching(
            &udp6,
            2,
            |entry, w| {
                let orig = entry.orig()?.unwrap_or_default();
                match orig.src {
                    // Left alone.
                    Some(src) if src == a6(3) => Ok(false),
                    // Deleted behind the run's back before its update goes out.
                    Some(src) if src == a6(2) => {
                        other.delete(&Key::from_view(entry)?).unwrap();
                        let mut e = ConntrackRepr::try_from(entry)?;
                        e.mark = Some(42);
                        request::update(w, 0, &e).map(|_| true)
                    }
                    _ => {
                        let e = ConntrackRepr {
                            mark: Some(42),
                            ..ConntrackRepr::try_from(entry)?
                        };
                        request::update(w, 0, &e).map(|_| true)
                    }
                }
            },
            |entry, result| {
                let src = entry.orig().unwrap().unwrap().src.unwrap();
                seen.push((src, result.map_err(|e| e.errno().map(|n| n as i32))));
            },
        )
        .unwrap();
    seen.sort();
    assert_eq!(
        seen,
        [
            (a6(1), Ok(())),
            (a6(2), Err(Some(conntrack_io::Errno::ENOENT as i32)))
        ]
    );
    assert_eq!(
        (
            summary.matched,
            summary.requested,
            summary.succeeded,
            summary.vanished,
            summary.failed
        ),
        (3, 2, 1, 1, 0)
    );
    assert!(summary.first_error.is_none());
    let marked = listed(&mut sock, &DumpFilter::all().with_mark(42, u32::MAX));
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0].orig.unwrap().src, Some(a6(1)));
}
