//! [`ExpLine`]: one expectation as `conntrack -L expect` and `-E expect` print it, in the
//! default form and in XML.

use core::fmt::{self, Display, Formatter, Write};

use crate::ct::{EventKind, Tuple};
use crate::exp::{Expect, ExpectFlags, ExpectRepr};
use crate::fmt::default::{addresses, event_prefix, l4_fields};
use crate::fmt::text::{addr_or_unspecified, Text};
use crate::fmt::time::When;
use crate::fmt::xml::{element, flow_start, l4, protocol, text_element};
use crate::fmt::{l3_name, l4_name, Output, Style};
use crate::Result;

/// What the formats print of an expectation, read once from a view or a repr.
#[derive(Debug, Clone, Copy, Default)]
struct Exp<'a> {
    family: u8,
    tuple: Tuple,
    mask: Tuple,
    master: Tuple,
    timeout: Option<u32>,
    zone: Option<u16>,
    flags: Option<ExpectFlags>,
    class: Option<u32>,
    helper: Option<&'a str>,
}

/// The flags the tools name, in the order they print them.
const FLAGS: [(&str, &str, ExpectFlags); 3] = [
    ("PERMANENT", "<permanent/>", ExpectFlags::PERMANENT),
    ("INACTIVE", "<inactive/>", ExpectFlags::INACTIVE),
    ("USERSPACE", "<userspace/>", ExpectFlags::USERSPACE),
];

/// One expectation as `conntrack -L expect` (or `-E expect`) prints it. Implements
/// [`Display`]; no trailing newline.
pub struct ExpLine<'a> {
    exp: Exp<'a>,
    event: Option<EventKind>,
    out: &'a Output,
}

impl<'a> ExpLine<'a> {
    /// A line for `exp`; `event` gives the event prefix.
    pub fn new(exp: &'a ExpectRepr, event: Option<EventKind>, out: &'a Output) -> Self {
        let exp = Exp {
            family: exp.family,
            tuple: exp.tuple.unwrap_or_default(),
            mask: exp.mask.unwrap_or_default(),
            master: exp.master.unwrap_or_default(),
            timeout: exp.timeout,
            zone: exp.zone,
            flags: exp.flags,
            class: exp.class,
            helper: exp.helper.as_deref(),
        };
        ExpLine { exp, event, out }
    }

    /// A line for the expectation `view` shows, read from the message's bytes; it prints
    /// what [`ExpLine::new`] prints for the repr of the same message.
    ///
    /// # Errors
    /// A malformed attribute among those the line prints.
    pub fn from_view(view: &Expect<'a>, event: Option<EventKind>, out: &'a Output) -> Result<Self> {
        let exp = Exp {
            family: view.family(),
            tuple: view.tuple()?.unwrap_or_default(),
            mask: view.mask()?.unwrap_or_default(),
            master: view.master()?.unwrap_or_default(),
            timeout: view.timeout()?,
            zone: view.zone()?,
            flags: view.flags()?,
            class: view.class()?,
            helper: view.helper()?,
        };
        Ok(ExpLine { exp, event, out })
    }

    fn write_default(&self, t: &mut Text<'_, '_>) -> fmt::Result {
        let e = &self.exp;
        if let Some((s, us)) = self.out.event_time {
            // Expectations pad with spaces, not zeros (`%-8ld.%-6ld`).
            write!(t, "[{s:<8}.{us:<6}]\t")?;
        }
        if let Some(k) = self.event {
            event_prefix(t, k)?;
        }
        if let Some(v) = e.timeout {
            t.sep()?;
            t.dec(v)?;
        }
        let proto = e.tuple.proto.unwrap_or(0);
        let fam = e.family;
        t.field_dec("proto", proto)?;
        addresses(t, "", &e.tuple, fam)?;
        l4_fields(t, &e.tuple, proto)?;
        addresses(t, "mask-", &e.mask, fam)?;
        l4_fields(t, &e.mask, proto)?;
        addresses(t, "master-", &e.master, fam)?;
        l4_fields(t, &e.master, e.master.proto.unwrap_or(proto))?;
        if let Some(z) = e.zone {
            t.field_dec("zone", z)?;
        }
        if let Some(fl) = e.flags {
            let mut any = false;
            for (name, _, bit) in FLAGS {
                if fl.contains(bit) {
                    if any {
                        t.char(',')?;
                    } else {
                        t.sep()?;
                    }
                    t.str(name)?;
                    any = true;
                }
            }
        }
        if let Some(c) = e.class {
            t.field_dec("class", c)?;
        }
        if let Some(h) = e.helper {
            t.field("helper=")?;
            t.str(h)?;
        }
        Ok(())
    }

    fn write_xml(&self, t: &mut Text<'_, '_>) -> fmt::Result {
        let e = &self.exp;
        flow_start(t, self.event)?;
        let proto = e.tuple.proto.unwrap_or(0);
        let fam = e.family;
        t.str("<layer3")?;
        protocol(t, fam, l3_name(fam))?;
        t.char('>')?;
        for (name, tuple) in [
            ("expected", &e.tuple),
            ("mask", &e.mask),
            ("master", &e.master),
        ] {
            t.char('<')?;
            t.str(name)?;
            t.str("><src>")?;
            t.addr(addr_or_unspecified(tuple.src, fam))?;
            t.str("</src><dst>")?;
            t.addr(addr_or_unspecified(tuple.dst, fam))?;
            t.str("</dst></")?;
            t.str(name)?;
            t.char('>')?;
        }
        t.str("</layer3><layer4")?;
        protocol(t, proto, l4_name(proto))?;
        t.char('>')?;
        // The master's ports follow its own protocol, as in the text line.
        let master_proto = e.master.proto.unwrap_or(proto);
        for (name, tuple, p) in [
            ("expected", &e.tuple, proto),
            ("mask", &e.mask, proto),
            ("master", &e.master, master_proto),
        ] {
            t.char('<')?;
            t.str(name)?;
            t.char('>')?;
            l4(t, tuple, p)?;
            t.str("</")?;
            t.str(name)?;
            t.char('>')?;
        }
        t.str("</layer4><meta>")?;
        if let Some(h) = e.helper {
            text_element(t, "helper-name", h)?;
        }
        if let Some(v) = e.timeout {
            element(t, "timeout", v)?;
        }
        if let Some(c) = e.class {
            element(t, "class", c)?;
        }
        if let Some(z) = e.zone {
            element(t, "zone", z)?;
        }
        if let Some((s, _)) = self.out.event_time {
            write!(t, "{}", When(s, self.out.utc_offset))?;
        }
        if let Some(fl) = e.flags {
            for (_, tag, bit) in FLAGS {
                if fl.contains(bit) {
                    t.str(tag)?;
                }
            }
        }
        t.str("</meta></flow>")
    }
}

/// Logs the text line (through `core::fmt`).
#[cfg(feature = "defmt")]
impl defmt::Format for ExpLine<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self));
    }
}

impl Display for ExpLine<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut t = Text::new(f);
        match self.out.style {
            Style::Xml => self.write_xml(&mut t)?,
            _ => self.write_default(&mut t)?,
        }
        t.finish()
    }
}

#[cfg(test)]
mod tests {
    use core::net::{IpAddr, Ipv4Addr};

    use crate::ct::{EventKind, Tuple};
    use crate::exp::{ExpectFlags, ExpectRepr};
    use crate::fmt::text::tests::show;
    use crate::fmt::{ExpLine, Output, Style};

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn expectation_line() {
        let a = v4(127, 0, 0, 1);
        let e = ExpectRepr {
            family: 2,
            master: Some(Tuple::tcp(a, a, 56742, 2121)),
            tuple: Some(Tuple::tcp(a, a, 0, 10000)),
            mask: Some(Tuple::tcp(
                v4(255, 255, 255, 255),
                v4(255, 255, 255, 255),
                0,
                65535,
            )),
            timeout: Some(298),
            class: Some(0),
            helper: Some("ftp".try_into().unwrap()),
            flags: Some(ExpectFlags(0)),
            ..ExpectRepr::default()
        };
        let out = Output::default();
        assert_eq!(
            show(ExpLine::new(&e, None, &out)).as_str(),
            "298 proto=6 src=127.0.0.1 dst=127.0.0.1 sport=0 dport=10000 \
             mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 \
             master-src=127.0.0.1 master-dst=127.0.0.1 sport=56742 dport=2121 class=0 helper=ftp"
        );
        let mut e2 = e.clone();
        e2.flags = Some(ExpectFlags(3));
        let out = Output {
            event_time: Some((1_795_773_033, 6459)),
            ..Output::default()
        };
        let line = show(ExpLine::new(&e2, Some(EventKind::New), &out));
        assert!(line
            .as_str()
            .starts_with("[1795773033.6459  ]\t    [NEW] 298 proto=6"));
        assert!(line
            .as_str()
            .ends_with("dport=2121 PERMANENT,INACTIVE class=0 helper=ftp"));
    }

    /// An expected tuple of another protocol than its master's (conntrack 1.4.7's
    /// `--tuple-port-dst 50000` makes protocol 195): the master keeps its ports, in XML as
    /// in the text line (verified against conntrack -L expect -o xml).
    #[test]
    fn expectation_xml_master_of_another_protocol() {
        let a = v4(127, 0, 0, 1);
        let ones = v4(255, 255, 255, 255);
        let e = ExpectRepr {
            family: 2,
            master: Some(Tuple::tcp(a, a, 40021, 21)),
            tuple: Some(Tuple::generic(195, a, a)),
            mask: Some(Tuple::generic(195, ones, ones)),
            timeout: Some(299),
            class: Some(0),
            helper: Some("ftp".try_into().unwrap()),
            ..ExpectRepr::default()
        };
        let out = Output {
            style: Style::Xml,
            ..Output::default()
        };
        let line = show(ExpLine::new(&e, None, &out));
        assert!(
            line.as_str().contains(
                "<layer4 protonum=\"195\" protoname=\"unknown\"><expected></expected>\
                 <mask></mask><master><sport>40021</sport><dport>21</dport></master></layer4>"
            ),
            "{}",
            line.as_str()
        );
    }
}
