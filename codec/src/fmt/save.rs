//! `-o save`: the conntrack command line that recreates an entry,
//! `-A -t 99 -u SEEN_REPLY,ASSURED -s 1.2.3.4 ... -p tcp --sport 1000 ... --state ESTABLISHED`.

use core::fmt;
use core::net::IpAddr;

use crate::ct::{l4proto, EventKind, ProtoInfo, Status};
use crate::fmt::entry::CtLine;
use crate::fmt::l4_name;
use crate::fmt::text::{addr_or_unspecified, Text};
use crate::fmt::Origin;
use crate::labels::LabelNames;

/// `name value` for each present value.
fn options(t: &mut Text<'_, '_>, options: &[(&str, Option<u16>)]) -> fmt::Result {
    for (name, v) in options {
        if let Some(v) = v {
            t.field(name)?;
            t.char(' ')?;
            t.dec(*v)?;
        }
    }
    Ok(())
}

/// The first 32 bits of an address (all of an IPv4 one), zero for none.
fn first_word(a: Option<IpAddr>) -> [u8; 4] {
    match a {
        Some(IpAddr::V4(v)) => v.octets(),
        Some(IpAddr::V6(v)) => {
            let [a, b, c, d, ..] = v.octets();
            [a, b, c, d]
        }
        None => [0; 4],
    }
}

/// Writes the `-o save` line.
pub(crate) fn write<L: LabelNames + ?Sized>(
    line: &CtLine<'_, L>,
    t: &mut Text<'_, '_>,
) -> fmt::Result {
    let e = line.entry();
    let proto = e.proto();
    t.field(match line.origin() {
        Origin::Dump | Origin::Event(EventKind::New) => "-A",
        Origin::Event(EventKind::Update) => "-U",
        Origin::Delete | Origin::Event(EventKind::Destroy) => "-D",
    })?;
    if let Some(v) = e.timeout {
        t.field("-t ")?;
        t.dec(v)?;
    }
    if let Some(s) = e.status {
        t.field("-u")?;
        let shown = [
            ("EXPECTED", Status::EXPECTED),
            ("SEEN_REPLY", Status::SEEN_REPLY),
            ("ASSURED", Status::ASSURED),
            ("FIXED_TIMEOUT", Status::FIXED_TIMEOUT),
        ];
        let mut any = false;
        for (name, bit) in shown {
            if s.contains(bit) {
                t.char(if any { ',' } else { ' ' })?;
                t.str(name)?;
                any = true;
            }
        }
        if !any {
            t.str(" UNSET")?;
        }
    }
    if let Some(m) = e.secmark {
        t.field("-c ")?;
        t.dec(m)?;
    }
    if let Some(z) = e.zone {
        t.field("-w ")?;
        t.dec(z)?;
    }
    let orig = e.orig.unwrap_or_default();
    let reply = e.reply.unwrap_or_default();
    options(
        t,
        &[("--orig-zone", orig.zone), ("--reply-zone", reply.zone)],
    )?;
    // The library's NAT test: the NAT_DONE bit (taken as set when the status is absent) and
    // a reply address whose first 32 bits differ.
    let nat_done = |bit: Status| e.status.is_none_or(|s| s.contains(bit));
    let dnat = nat_done(Status::DST_NAT_DONE) && first_word(reply.src) != first_word(orig.dst);
    let snat = nat_done(Status::SRC_NAT_DONE) && first_word(reply.dst) != first_word(orig.src);
    let fam = e.family;
    for (flag, a) in [
        ("-s ", orig.src),
        ("-d ", orig.dst),
        (if dnat { "-g " } else { "-r " }, reply.src),
        (if snat { "-n " } else { "-q " }, reply.dst),
    ] {
        t.field(flag)?;
        t.addr(addr_or_unspecified(a, fam))?;
    }
    t.field("-p ")?;
    match proto {
        l4proto::GRE | l4proto::ICMP | l4proto::ICMPV6 => t.str(l4_name(proto))?,
        p if l4proto::has_ports(p) => t.str(l4_name(proto))?,
        other => t.dec(other)?,
    }
    let (sport, dport) = (orig.src_port, orig.dst_port);
    let (reply_sport, reply_dport) = (reply.src_port, reply.dst_port);
    match proto {
        l4proto::GRE => options(
            t,
            &[
                ("--srckey", sport),
                ("--dstkey", dport),
                ("--reply-key-src", reply_sport),
                ("--reply-key-dst", reply_dport),
            ],
        )?,
        p if l4proto::has_ports(p) => options(
            t,
            &[
                ("--sport", sport),
                ("--dport", dport),
                ("--reply-port-src", reply_sport),
                ("--reply-port-dst", reply_dport),
            ],
        )?,
        l4proto::ICMP => options(
            t,
            &[
                ("--icmp-type", orig.icmp_type.map(u16::from)),
                ("--icmp-code", orig.icmp_code.map(u16::from)),
                ("--icmp-id", orig.icmp_id),
            ],
        )?,
        l4proto::ICMPV6 => options(
            t,
            &[
                ("--icmpv6-type", orig.icmpv6_type.map(u16::from)),
                ("--icmpv6-code", orig.icmpv6_code.map(u16::from)),
                ("--icmpv6-id", orig.icmpv6_id),
            ],
        )?,
        _ => {}
    }
    // The tool's tables print "(null)" for a state they have no name for.
    let state = |t: &mut Text<'_, '_>, name: Option<&str>| {
        t.field("--state ")?;
        t.str(name.unwrap_or("(null)"))
    };
    match (proto, e.protoinfo) {
        (l4proto::TCP, Some(ProtoInfo::Tcp(p))) => {
            if let Some(s) = p.state {
                state(t, s.name())?;
            }
        }
        (l4proto::SCTP, Some(ProtoInfo::Sctp(p))) => {
            if let Some(s) = p.state {
                // The tool's own table stops before HEARTBEAT_SENT.
                state(t, s.name().filter(|_| u8::from(s) < 8))?;
            }
            // The tool prints the vtags through ntohl() of a host-order value.
            if let Some(v) = p.vtag_orig {
                t.field("--orig-vtag ")?;
                t.dec(u32::from_be(v))?;
            }
            if let Some(v) = p.vtag_reply {
                t.field("--reply-vtag ")?;
                t.dec(u32::from_be(v))?;
            }
        }
        (l4proto::DCCP, Some(ProtoInfo::Dccp(p))) => {
            if let Some(s) = p.state {
                state(t, s.name())?;
            }
            if let Some(r) = p.role {
                t.field("--role ")?;
                t.str(r.name().unwrap_or("(null)"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use core::fmt::Write;
    use core::net::{IpAddr, Ipv4Addr};

    use crate::ct::{ConntrackRepr, EventKind, ProtoInfo, SctpInfo, SctpState, Status};
    use crate::ct::{TcpInfo, TcpState, Tuple};
    use crate::fmt::text::tests::{show, Buf};
    use crate::fmt::{CtLine, Origin, Output, Style};

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn save_form() {
        let orig = Tuple::tcp(v4(1, 2, 3, 4), v4(5, 6, 7, 8), 1000, 80);
        let e = ConntrackRepr {
            family: 2,
            orig: Some(orig),
            reply: Some(orig.inverted()),
            status: Some(Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED),
            protoinfo: Some(ProtoInfo::Tcp(TcpInfo {
                state: Some(TcpState::Established),
                ..TcpInfo::default()
            })),
            timeout: Some(99),
            mark: Some(42),
            ..ConntrackRepr::default()
        };
        let out = Output {
            style: Style::Save,
            ..Output::default()
        };
        assert_eq!(
            show(CtLine::new(&e, Origin::Dump, &out, &())).as_str(),
            "-A -t 99 -u SEEN_REPLY,ASSURED -s 1.2.3.4 -d 5.6.7.8 -r 5.6.7.8 -q 1.2.3.4 -p tcp \
             --sport 1000 --dport 80 --reply-port-src 80 --reply-port-dst 1000 --state ESTABLISHED"
        );
        let sctp = ConntrackRepr {
            family: 2,
            orig: Some(Tuple::ports(
                132,
                v4(1, 1, 1, 1),
                v4(2, 2, 2, 2),
                5000,
                6000,
            )),
            reply: Some(Tuple::ports(
                132,
                v4(2, 2, 2, 2),
                v4(1, 1, 1, 1),
                6000,
                5000,
            )),
            status: Some(Status::CONFIRMED),
            protoinfo: Some(ProtoInfo::Sctp(SctpInfo {
                state: Some(SctpState::HeartbeatSent),
                vtag_orig: Some(0x1234_5678),
                vtag_reply: Some(0),
            })),
            ..ConntrackRepr::default()
        };
        let want_vtag = u32::from_be(0x1234_5678);
        let line = show(CtLine::new(
            &sctp,
            Origin::Event(EventKind::Destroy),
            &out,
            &(),
        ));
        let mut expect = Buf::new();
        write!(
            expect,
            "-D -u UNSET -s 1.1.1.1 -d 2.2.2.2 -r 2.2.2.2 -q 1.1.1.1 -p sctp --sport 5000 \
             --dport 6000 --reply-port-src 6000 --reply-port-dst 5000 --state (null) \
             --orig-vtag {want_vtag} --reply-vtag 0"
        )
        .unwrap();
        assert_eq!(line.as_str(), expect.as_str());
    }
}
