//! `-o xml`: one `<flow>` element per entry, as conntrack-tools 1.4.7 writes it.

use core::fmt::{self, Write};

use crate::ct::{l4proto, EventKind, Status, Tuple};
use crate::fmt::entry::CtLine;
use crate::fmt::text::{addr_or_unspecified, Text};
use crate::fmt::time::{secs, When};
use crate::fmt::{l3_name, l4_name};
use crate::labels::LabelNames;

/// `<tag>v</tag>`.
pub(crate) fn element(t: &mut Text<'_, '_>, tag: &str, v: impl Into<u64>) -> fmt::Result {
    t.char('<')?;
    t.str(tag)?;
    t.char('>')?;
    t.dec(v)?;
    t.str("</")?;
    t.str(tag)?;
    t.char('>')
}

/// `<tag>s</tag>`.
pub(crate) fn text_element(t: &mut Text<'_, '_>, tag: &str, s: &str) -> fmt::Result {
    t.char('<')?;
    t.str(tag)?;
    t.char('>')?;
    t.str(s)?;
    t.str("</")?;
    t.str(tag)?;
    t.char('>')
}

/// `<flow>` with the event's type.
pub(crate) fn flow_start(t: &mut Text<'_, '_>, event: Option<EventKind>) -> fmt::Result {
    t.str(match event {
        None => "<flow>",
        Some(EventKind::New) => "<flow type=\"new\">",
        Some(EventKind::Update) => "<flow type=\"update\">",
        Some(EventKind::Destroy) => "<flow type=\"destroy\">",
    })
}

/// `protonum="N" protoname="name"`.
pub(crate) fn protocol(t: &mut Text<'_, '_>, num: u8, name: &str) -> fmt::Result {
    t.str(" protonum=\"")?;
    t.dec(num)?;
    t.str("\" protoname=\"")?;
    t.str(name)?;
    t.char('"')
}

/// The ports or GRE keys of a tuple (other protocols have none in XML).
pub(crate) fn l4(t: &mut Text<'_, '_>, tuple: &Tuple, proto: u8) -> fmt::Result {
    let hex_element = |t: &mut Text<'_, '_>, tag: &str, v: Option<u16>| {
        t.char('<')?;
        t.str(tag)?;
        t.char('>')?;
        t.hex(u32::from(v.unwrap_or(0)), true)?;
        t.str("</")?;
        t.str(tag)?;
        t.char('>')
    };
    match proto {
        l4proto::GRE => {
            hex_element(t, "srckey", tuple.src_port)?;
            hex_element(t, "dstkey", tuple.dst_port)
        }
        p if l4proto::has_ports(p) => {
            element(t, "sport", tuple.src_port.unwrap_or(0))?;
            element(t, "dport", tuple.dst_port.unwrap_or(0))
        }
        _ => Ok(()),
    }
}

/// Writes the `<flow>` element.
pub(crate) fn write<L: LabelNames + ?Sized>(
    line: &CtLine<'_, L>,
    t: &mut Text<'_, '_>,
) -> fmt::Result {
    let e = line.entry();
    let out = line.out();
    let proto = e.proto();
    flow_start(t, line.event())?;
    let counters_shown = e
        .counters_orig
        .as_ref()
        .is_some_and(|c| c.packets.is_some() && c.bytes.is_some());
    for (dir, tuple, c) in [
        ("original", e.orig.unwrap_or_default(), e.counters_orig),
        ("reply", e.reply.unwrap_or_default(), e.counters_reply),
    ] {
        t.str("<meta direction=\"")?;
        t.str(dir)?;
        t.str("\"><layer3")?;
        protocol(t, e.family, l3_name(e.family))?;
        t.str("><src>")?;
        t.addr(addr_or_unspecified(tuple.src, e.family))?;
        t.str("</src><dst>")?;
        t.addr(addr_or_unspecified(tuple.dst, e.family))?;
        t.str("</dst></layer3><layer4")?;
        protocol(t, proto, l4_name(proto))?;
        t.char('>')?;
        l4(t, &tuple, proto)?;
        t.str("</layer4>")?;
        if let Some(z) = tuple.zone {
            element(t, "zone", z)?;
        }
        if counters_shown {
            let c = c.unwrap_or_default();
            t.str("<counters>")?;
            element(t, "packets", c.packets.unwrap_or(0))?;
            element(t, "bytes", c.bytes.unwrap_or(0))?;
            t.str("</counters>")?;
        }
        t.str("</meta>")?;
    }
    let state = e.state();
    let labels = e.labels.filter(|_| line.labels_shown());
    let ts = e.timestamp.unwrap_or_default();
    let independent = state.is_some()
        || e.timeout.is_some()
        || e.mark.is_some()
        || e.secmark.is_some()
        || e.zone.is_some()
        || e.use_count.is_some()
        || e.status.is_some()
        || e.id.is_some()
        || labels.is_some()
        || ts.start.is_some();
    if independent {
        t.str("<meta direction=\"independent\">")?;
        if let Some(s) = state {
            // The library names SCTP and DCCP states from the TCP table here.
            let name = crate::ct::TcpState::from(s).name();
            text_element(t, "state", name.unwrap_or("NONE"))?;
        }
        if let Some(v) = e.timeout {
            element(t, "timeout", v)?;
        }
        if let Some(m) = e.mark {
            element(t, "mark", m)?;
        }
        if let Some(l) = labels {
            t.str("<labels>")?;
            let names = line.label_names();
            for n in l.iter().filter_map(|b| names.name(b)) {
                text_element(t, "label", n)?;
            }
            t.str("</labels>")?;
        }
        if let Some(m) = e.secmark {
            element(t, "secmark", m)?;
        }
        if let Some(c) = e.secctx {
            text_element(t, "secctx", c)?;
        }
        if let Some(z) = e.zone {
            element(t, "zone", z)?;
        }
        if let Some(u) = e.use_count {
            element(t, "use", u)?;
        }
        if let Some(id) = e.id {
            element(t, "id", id)?;
        }
        if let Some(s) = e.status {
            if s.contains(Status::ASSURED) {
                t.str("<assured/>")?;
            }
            if !s.contains(Status::SEEN_REPLY) {
                t.str("<unreplied/>")?;
            }
        }
        if out.ktimestamp && (ts.start.is_some() || ts.stop.is_some()) {
            t.str("<timestamp>")?;
            if let Some(s) = ts.start {
                element(t, "start", s)?;
            }
            if let Some(s) = ts.stop {
                element(t, "stop", s)?;
            }
            t.str("</timestamp>")?;
        }
        match (ts.start, ts.stop) {
            (Some(start), Some(stop)) => {
                element(t, "deltatime", secs(stop.wrapping_sub(start)))?;
            }
            (Some(start), None) => {
                element(t, "deltatime", out.now.wrapping_sub(secs(start)))?;
            }
            _ => {}
        }
        t.str("</meta>")?;
    }
    if let (Some(_), Some((s, _))) = (line.event(), out.event_time) {
        write!(t, "{}", When(s, out.utc_offset))?;
    }
    if let Some(h) = e.helper {
        text_element(t, "helper", h)?;
    }
    t.str("</flow>")
}

#[cfg(test)]
mod tests {
    use core::net::{IpAddr, Ipv4Addr};

    use crate::ct::Tuple;
    use crate::fmt::text::tests::show;
    use crate::fmt::{CtLine, Origin, Output, Style};

    #[test]
    fn xml_flow() {
        let out = Output {
            style: Style::Xml,
            now: 1001,
            ..Output::default()
        };
        let mut e = crate::fmt::default::tests::entry();
        let v4 = |d| IpAddr::V4(Ipv4Addr::new(d, d, d, d));
        e.orig = Some(Tuple::udp(v4(1), v4(2), 1, 2));
        e.id = Some(7);
        let line = show(CtLine::new(&e, Origin::Dump, &out, &()));
        assert_eq!(
            line.as_str(),
            "<flow><meta direction=\"original\"><layer3 protonum=\"2\" protoname=\"ipv4\">\
             <src>1.1.1.1</src><dst>2.2.2.2</dst></layer3><layer4 protonum=\"17\" \
             protoname=\"udp\"><sport>1</sport><dport>2</dport></layer4><counters><packets>0\
             </packets><bytes>0</bytes></counters></meta><meta direction=\"reply\"><layer3 \
             protonum=\"2\" protoname=\"ipv4\"><src>2.2.2.2</src><dst>1.1.1.1</dst></layer3>\
             <layer4 protonum=\"17\" protoname=\"udp\"><sport>2</sport><dport>1</dport>\
             </layer4><counters><packets>0</packets><bytes>0</bytes></counters></meta><meta \
             direction=\"independent\"><timeout>49</timeout><mark>0</mark><use>1</use><id>7\
             </id><unreplied/><deltatime>1</deltatime></meta></flow>"
        );
    }
}
