//! The default line of `conntrack -L` / `-E` (with `-o extended`, `id`, `ktimestamp`,
//! `timestamp` and labels): `tcp      6 431999 ESTABLISHED src=... [ASSURED] mark=0 use=1`.

use core::fmt::{self, Write};

use crate::ct::{l4proto, Counters, EventKind, ProtoInfo, Status, Tuple};
use crate::fmt::entry::CtLine;
use crate::fmt::text::{addr_or_unspecified, Text};
use crate::fmt::time::{secs, Ctime};
use crate::fmt::{l3_name, l4_name};
use crate::labels::LabelNames;

/// The event prefix, right-aligned in 9 columns (`{:>9}`).
pub(crate) fn event_prefix(t: &mut Text<'_, '_>, kind: EventKind) -> fmt::Result {
    let prefix = match kind {
        EventKind::New => "    [NEW]",
        EventKind::Update => " [UPDATE]",
        EventKind::Destroy => "[DESTROY]",
    };
    t.field(prefix)
}

/// `name    N`: a protocol name left-aligned in 8 columns, then its number (`{:<8} {}`).
fn name_and_number(t: &mut Text<'_, '_>, name: &str, n: u8) -> fmt::Result {
    t.sep()?;
    t.left(name, 8)?;
    t.char(' ')?;
    t.dec(n)
}

/// The addresses of a tuple (`src=... dst=...`), or the family's unspecified ones.
pub(crate) fn addresses(
    t: &mut Text<'_, '_>,
    prefix: &str,
    tuple: &Tuple,
    family: u8,
) -> fmt::Result {
    t.sep()?;
    t.str(prefix)?;
    t.str("src=")?;
    t.addr(addr_or_unspecified(tuple.src, family))?;
    t.char(' ')?;
    t.str(prefix)?;
    t.str("dst=")?;
    t.addr(addr_or_unspecified(tuple.dst, family))
}

/// The per-protocol part of a tuple: ports, GRE keys, ICMP type, code and id.
pub(crate) fn l4_fields(t: &mut Text<'_, '_>, tuple: &Tuple, proto: u8) -> fmt::Result {
    match proto {
        // GRE carries its keys in the port attributes (`has_ports`), printed as keys.
        l4proto::GRE => {
            t.field("srckey=")?;
            t.hex(u32::from(tuple.src_port.unwrap_or(0)), true)?;
            t.field("dstkey=")?;
            t.hex(u32::from(tuple.dst_port.unwrap_or(0)), true)
        }
        p if l4proto::has_ports(p) => {
            t.field_dec("sport", tuple.src_port.unwrap_or(0))?;
            t.field_dec("dport", tuple.dst_port.unwrap_or(0))
        }
        l4proto::ICMP => {
            t.field_dec("type", tuple.icmp_type.unwrap_or(0))?;
            t.field_dec("code", tuple.icmp_code.unwrap_or(0))?;
            t.field_dec("id", tuple.icmp_id.unwrap_or(0))
        }
        l4proto::ICMPV6 => {
            t.field_dec("type", tuple.icmpv6_type.unwrap_or(0))?;
            t.field_dec("code", tuple.icmpv6_code.unwrap_or(0))?;
            t.field_dec("id", tuple.icmpv6_id.unwrap_or(0))
        }
        _ => Ok(()),
    }
}

/// One direction: addresses, L4 fields, the tuple's zone, the counters.
fn direction(
    t: &mut Text<'_, '_>,
    tuple: &Tuple,
    family: u8,
    proto: u8,
    zone_name: &str,
    counters: Option<&Counters>,
) -> fmt::Result {
    addresses(t, "", tuple, family)?;
    l4_fields(t, tuple, proto)?;
    if let Some(z) = tuple.zone {
        t.field_dec(zone_name, z)?;
    }
    if let Some(c) = counters {
        if let (Some(p), Some(b)) = (c.packets, c.bytes) {
            t.field_dec("packets", p)?;
            t.field_dec("bytes", b)?;
        }
    }
    Ok(())
}

/// Writes the default line.
pub(crate) fn write<L: LabelNames + ?Sized>(
    line: &CtLine<'_, L>,
    t: &mut Text<'_, '_>,
) -> fmt::Result {
    let e = line.entry();
    let out = line.out();
    let proto = e.proto();
    if let (Some(_), Some((s, us))) = (line.event(), out.event_time) {
        write!(t, "[{s:08}.{us:06}]\t")?;
    }
    if let Some(k) = line.event() {
        event_prefix(t, k)?;
    }
    if out.extended {
        name_and_number(t, l3_name(e.family), e.family)?;
    }
    name_and_number(t, l4_name(proto), proto)?;
    if let Some(v) = e.timeout {
        t.sep()?;
        t.dec(v)?;
    }
    let state = match e.protoinfo {
        Some(ProtoInfo::Tcp(p)) => p.state.map(|s| s.name()),
        Some(ProtoInfo::Sctp(p)) => p.state.map(|s| s.name()),
        Some(ProtoInfo::Dccp(p)) => p.state.map(|s| s.name()),
        None => None,
    };
    if let Some(name) = state {
        // The library's tables print NONE for a state they have no name for.
        t.field(name.unwrap_or("NONE"))?;
    }
    let orig = e.orig.unwrap_or_default();
    let reply = e.reply.unwrap_or_default();
    direction(
        t,
        &orig,
        e.family,
        proto,
        "zone-orig",
        e.counters_orig.as_ref(),
    )?;
    if e.is_unreplied() {
        t.field("[UNREPLIED]")?;
    }
    // An entry without a reply tuple (conntrackd's external cache keeps only the original
    // one) prints none, as libnetfilter_conntrack does.
    if e.reply.is_some() {
        direction(
            t,
            &reply,
            e.family,
            proto,
            "zone-reply",
            e.counters_reply.as_ref(),
        )?;
    }
    if let Some(s) = e.status {
        if s.contains(Status::HW_OFFLOAD) {
            t.field("[HW_OFFLOAD]")?;
        } else if s.contains(Status::OFFLOAD) {
            t.field("[OFFLOAD]")?;
        } else if s.contains(Status::ASSURED) {
            t.field("[ASSURED]")?;
        }
    }
    if let Some(m) = e.mark {
        t.field_dec("mark", m)?;
    }
    if let Some(m) = e.secmark {
        t.field_dec("secmark", m)?;
    }
    if let Some(c) = e.secctx {
        t.field("secctx=")?;
        t.str(c)?;
    }
    if let Some(z) = e.zone {
        t.field_dec("zone", z)?;
    }
    if let Some(ts) = e.timestamp {
        if let Some(start) = ts.start {
            let delta = match ts.stop {
                Some(stop) if stop != 0 => secs(stop).wrapping_sub(secs(start)),
                _ => out.now.wrapping_sub(secs(start)),
            };
            t.field_dec("delta-time", delta)?;
        }
        if out.ktimestamp {
            if let Some(start) = ts.start {
                t.sep()?;
                write!(t, "[start={}]", Ctime(secs(start), out.utc_offset))?;
            }
            if let Some(stop) = ts.stop {
                t.sep()?;
                write!(t, "[stop={}]", Ctime(secs(stop), out.utc_offset))?;
            }
        }
    }
    if let Some(h) = e.helper {
        t.field("helper=")?;
        t.str(h)?;
    }
    if let Some(u) = e.use_count {
        t.field_dec("use", u)?;
    }
    if out.id {
        if let Some(id) = e.id {
            t.field_dec("id", id)?;
        }
    }
    if line.labels_shown() {
        if let Some(l) = e.labels {
            t.sep()?;
            let names = line.label_names();
            let mut named = l
                .iter()
                .filter_map(|b| names.name(b).filter(|n| !n.is_empty()));
            match named.next() {
                None => t.str("labels")?,
                Some(first) => {
                    t.str("labels=")?;
                    t.str(first)?;
                    for n in named {
                        t.char(',')?;
                        t.str(n)?;
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::ct::{ConntrackRepr, Counters, EventKind, Labels, Status, Timestamp, Tuple};
    use crate::fmt::text::tests::show;
    use crate::fmt::{CtLine, Origin, Output};
    use crate::labels::LabelNames;
    use core::net::{IpAddr, Ipv4Addr};

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    pub(crate) fn entry() -> ConntrackRepr {
        let orig = Tuple::udp(v4(1, 1, 1, 1), v4(2, 2, 2, 2), 1, 2);
        ConntrackRepr {
            family: 2,
            orig: Some(orig.with_zone(6)),
            reply: Some(orig.inverted()),
            status: Some(Status::CONFIRMED),
            timeout: Some(49),
            mark: Some(0),
            use_count: Some(1),
            counters_orig: Some(Counters {
                packets: Some(0),
                bytes: Some(0),
            }),
            counters_reply: Some(Counters {
                packets: Some(0),
                bytes: Some(0),
            }),
            timestamp: Some(Timestamp {
                start: Some(1_000_000_000_000),
                stop: None,
            }),
            ..ConntrackRepr::default()
        }
    }

    #[test]
    fn no_reply_tuple_prints_none() {
        // conntrackd's external cache: the original tuple only (as libnetfilter_conntrack
        // prints it, checked against conntrackd 1.4.7's `-e`).
        let orig = Tuple::udp(v4(1, 1, 1, 1), v4(2, 2, 2, 3), 10, 20);
        let e = ConntrackRepr {
            family: 2,
            orig: Some(orig),
            status: Some(Status::CONFIRMED),
            mark: Some(0),
            ..ConntrackRepr::default()
        };
        let out = Output::default();
        assert_eq!(
            show(CtLine::new(&e, Origin::Dump, &out, &())).as_str(),
            "udp      17 src=1.1.1.1 dst=2.2.2.3 sport=10 dport=20 [UNREPLIED] mark=0"
        );
    }

    #[test]
    fn gre_keys_and_icmp() {
        let gre = Tuple::gre(v4(1, 1, 1, 1), v4(2, 2, 2, 2), 0x1234, 0xabcd);
        let e = ConntrackRepr {
            family: 2,
            orig: Some(gre),
            reply: Some(gre.inverted()),
            ..ConntrackRepr::default()
        };
        let out = Output::default();
        assert_eq!(
            show(CtLine::new(&e, Origin::Dump, &out, &())).as_str(),
            "gre      47 src=1.1.1.1 dst=2.2.2.2 srckey=0x1234 dstkey=0xabcd \
             src=2.2.2.2 dst=1.1.1.1 srckey=0xabcd dstkey=0x1234"
        );
        let icmp = Tuple::icmp([1, 1, 1, 1].into(), [2, 2, 2, 2].into(), 8, 0, 99);
        let e = ConntrackRepr {
            family: 2,
            orig: Some(icmp),
            reply: Some(icmp.inverted()),
            ..ConntrackRepr::default()
        };
        assert_eq!(
            show(CtLine::new(&e, Origin::Dump, &out, &())).as_str(),
            "icmp     1 src=1.1.1.1 dst=2.2.2.2 type=8 code=0 id=99 \
             src=2.2.2.2 dst=1.1.1.1 type=0 code=0 id=99"
        );
    }

    #[test]
    fn default_line_with_zone_counters_delta() {
        let out = Output {
            now: 1000,
            ..Output::default()
        };
        let e = entry();
        assert_eq!(
            show(CtLine::new(&e, Origin::Dump, &out, &())).as_str(),
            "udp      17 49 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 zone-orig=6 packets=0 \
             bytes=0 [UNREPLIED] src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1 packets=0 bytes=0 \
             mark=0 delta-time=0 use=1"
        );
    }

    #[test]
    fn event_prefixes_and_extended() {
        let out = Output {
            extended: true,
            id: true,
            now: 1000,
            ..Output::default()
        };
        let mut e = entry();
        e.id = Some(5);
        e.use_count = None;
        let line = show(CtLine::new(&e, Origin::Event(EventKind::New), &out, &()));
        assert!(line
            .as_str()
            .starts_with("    [NEW] ipv4     2 udp      17 49 "));
        assert!(line.as_str().ends_with(" delta-time=0 id=5"));
        let line = show(CtLine::new(
            &e,
            Origin::Event(EventKind::Destroy),
            &out,
            &(),
        ));
        assert!(line.as_str().starts_with("[DESTROY] ipv4"));
    }

    struct Names;
    impl LabelNames for Names {
        fn name(&self, bit: u16) -> Option<&str> {
            match bit {
                0 => Some("zero"),
                5 => Some("five"),
                _ => None,
            }
        }
    }

    #[test]
    fn labels_named_unnamed_and_on_delete() {
        let out = Output {
            labels: true,
            now: 1000,
            ..Output::default()
        };
        let mut e = entry();
        let mut l = Labels::default();
        l.insert(0).unwrap();
        l.insert(5).unwrap();
        l.insert(9).unwrap();
        e.labels = Some(l);
        assert!(show(CtLine::new(&e, Origin::Dump, &out, &Names))
            .as_str()
            .ends_with("use=1 labels=zero,five"));
        assert!(show(CtLine::new(&e, Origin::Dump, &out, &()))
            .as_str()
            .ends_with("use=1 labels"));
        assert!(show(CtLine::new(&e, Origin::Delete, &out, &Names))
            .as_str()
            .ends_with("use=1"));
    }
}
