//! The text output of conntrack-tools 1.4.7 through `core::fmt`, without allocating.
//!
//! [`CtLine`] writes one conntrack entry as `conntrack -L`, `-G`, `-D` or `-E` print it: the
//! default line (with the `extended`, `id`, `ktimestamp` and `labels` variants, and the event
//! prefixes), the `-o save` form and the `-o xml` element. [`ExpLine`] writes an
//! expectation as `conntrack -L expect` / `-E expect` print it, [`StatsCpuLine`] and
//! [`ExpStatsCpuLine`] the lines of `conntrack -S`.
//!
//! The codec reads no clock: the caller passes the current time and the local time zone's
//! offset in [`Output`], for `delta-time=`, `[start=...]` and `<when>`.
//!
//! ```
//! use core::net::Ipv4Addr;
//! use conntrack_codec::ct::{ConntrackRepr, ProtoInfo, Status, TcpInfo, TcpState, Tuple};
//! use conntrack_codec::fmt::{CtLine, Origin, Output};
//!
//! let orig = Tuple::tcp(Ipv4Addr::new(1, 2, 3, 4).into(), Ipv4Addr::new(5, 6, 7, 8).into(), 1000, 80);
//! let entry = ConntrackRepr {
//!     family: 2,
//!     orig: Some(orig),
//!     reply: Some(orig.inverted()),
//!     status: Some(Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED),
//!     protoinfo: Some(ProtoInfo::Tcp(TcpInfo { state: Some(TcpState::Established), ..Default::default() })),
//!     timeout: Some(99),
//!     mark: Some(0),
//!     use_count: Some(1),
//!     ..ConntrackRepr::default()
//! };
//! let out = Output::default();
//! let line = CtLine::new(&entry, Origin::Dump, &out, &());
//! assert_eq!(
//!     format!("{line}"),
//!     "tcp      6 99 ESTABLISHED src=1.2.3.4 dst=5.6.7.8 sport=1000 dport=80 \
//!      src=5.6.7.8 dst=1.2.3.4 sport=80 dport=1000 [ASSURED] mark=0 use=1"
//! );
//! ```

use core::fmt::{self, Display, Formatter, Write};
use core::net::{IpAddr, Ipv6Addr};

use crate::ct::{
    l4proto, ConntrackRepr, EventKind, ExpStatsCpu, ProtoInfo, StatsCpu, Status, Tuple,
};
use crate::exp::{ExpectFlags, ExpectRepr};
use crate::labels::LabelNames;

/// The output style (`-o save`, `-o xml`, or neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Style {
    /// The default one-line text.
    #[default]
    Default,
    /// `-o save`: a conntrack command line that recreates the entry.
    Save,
    /// `-o xml`: one `<flow>` element per line.
    Xml,
}

/// The output options and the clock the formatter needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Output {
    /// Default, save or XML.
    pub style: Style,
    /// `-o extended`: the layer-3 prefix.
    pub extended: bool,
    /// `-o id`: `id=` (XML prints the id anyway).
    pub id: bool,
    /// `-o ktimestamp`: `[start=...]`/`[stop=...]` and XML `<timestamp>`.
    pub ktimestamp: bool,
    /// A label map is loaded: print `labels=`.
    pub labels: bool,
    /// `-o timestamp` on events: seconds and microseconds of the event, printed as a
    /// `[SEC.USEC]` prefix (or `<when>` in XML).
    pub event_time: Option<(u64, u32)>,
    /// Now, in seconds since the epoch (for `delta-time=`).
    pub now: u64,
    /// The local time zone's offset from UTC in seconds (for `[start=...]` and `<when>`).
    pub utc_offset: i32,
}

/// Where a conntrack line comes from: it decides the event prefix, the `-o save` command
/// and whether labels are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Origin {
    /// A listing (`-L`, `-G`) or an update's echo (`-U`).
    Dump,
    /// The echo of a delete (`-D`): no labels, `-D` in save form.
    Delete,
    /// An event (`-E`).
    Event(EventKind),
}

/// The ` [USERSPACE] portid=N progname=P` suffix conntrack-tools appends to events caused
/// by a userspace request (a message with a non-zero `nlmsg_pid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Userspace<'a> {
    /// The requester's port id.
    pub portid: u32,
    /// Its program name, when it could be found.
    pub progname: Option<&'a str>,
}

impl Display for Userspace<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, " [USERSPACE] portid={}", self.portid)?;
        if let Some(p) = self.progname {
            write!(f, " progname={p}")?;
        }
        Ok(())
    }
}

/// The XML document start conntrack-tools prints before the first conntrack element.
pub const XML_HEADER: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<conntrack>\n";
/// The XML document end for conntrack elements.
pub const XML_FOOTER: &str = "</conntrack>\n";
/// The XML document start for expectations.
pub const XML_EXP_HEADER: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<expect>\n";
/// The XML document end for expectations.
pub const XML_EXP_FOOTER: &str = "</expect>\n";

/// The name conntrack-tools gives an L4 protocol number (`unknown` for others).
pub fn l4_name(proto: u8) -> &'static str {
    match proto {
        l4proto::ICMP => "icmp",
        l4proto::TCP => "tcp",
        l4proto::UDP => "udp",
        l4proto::DCCP => "dccp",
        l4proto::GRE => "gre",
        l4proto::ICMPV6 => "icmpv6",
        l4proto::SCTP => "sctp",
        l4proto::UDPLITE => "udplite",
        _ => "unknown",
    }
}

/// The name conntrack-tools gives an address family (`unknown` for others).
pub fn l3_name(family: u8) -> &'static str {
    match family {
        2 => "ipv4",
        10 => "ipv6",
        _ => "unknown",
    }
}

const TCP_STATES: [&str; 10] = [
    "NONE",
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",
    "SYN_SENT2",
];

const SCTP_STATES: [&str; 10] = [
    "NONE",
    "CLOSED",
    "COOKIE_WAIT",
    "COOKIE_ECHOED",
    "ESTABLISHED",
    "SHUTDOWN_SENT",
    "SHUTDOWN_RECD",
    "SHUTDOWN_ACK_SENT",
    "HEARTBEAT_SENT",
    "HEARTBEAT_ACKED",
];

const DCCP_STATES: [&str; 10] = [
    "NONE", "REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "CLOSING", "TIMEWAIT", "IGNORE",
    "INVALID",
];

/// A state name from `table`, `NONE` past its end (as the library prints).
fn state_name(table: &[&'static str; 10], state: u8) -> &'static str {
    table.get(usize::from(state)).copied().unwrap_or("NONE")
}

/// The TCP state name conntrack-tools prints (`NONE` for values it has no name for).
pub fn tcp_state_name(state: u8) -> &'static str {
    state_name(&TCP_STATES, state)
}

/// The SCTP state name conntrack-tools prints.
pub fn sctp_state_name(state: u8) -> &'static str {
    state_name(&SCTP_STATES, state)
}

/// The DCCP state name conntrack-tools prints.
pub fn dccp_state_name(state: u8) -> &'static str {
    state_name(&DCCP_STATES, state)
}

/// An address as glibc's `inet_ntop` writes it (IPv6 differs from `Ipv6Addr`'s `Display`
/// in where it embeds IPv4 and which zero run it compresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr(pub IpAddr);

/// Logs the address as `inet_ntop` writes it (through `core::fmt`).
#[cfg(feature = "defmt")]
impl defmt::Format for Addr {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self));
    }
}

impl Display for Addr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => {
                let [a, b, c, d] = a.octets();
                write!(f, "{a}.{b}.{c}.{d}")
            }
            IpAddr::V6(a) => write_ipv6(f, &a),
        }
    }
}

fn write_ipv6(f: &mut Formatter<'_>, a: &Ipv6Addr) -> fmt::Result {
    let g = a.segments();
    // The longest run of two or more zero groups; the first one on a tie.
    let (mut best_start, mut best_len) = (0usize, 0usize);
    let mut i = 0usize;
    while i < g.len() {
        if g.get(i) == Some(&0) {
            let start = i;
            while g.get(i) == Some(&0) {
                i = i.saturating_add(1);
            }
            let len = i.saturating_sub(start);
            if len > best_len {
                (best_start, best_len) = (start, len);
            }
        } else {
            i = i.saturating_add(1);
        }
    }
    if best_len < 2 {
        best_len = 0;
    }
    let embedded_v4 =
        best_start == 0 && (best_len == 6 || (best_len == 5 && g.get(5) == Some(&0xffff)));
    let groups = if embedded_v4 { 6 } else { 8 };
    let mut i = 0usize;
    while i < groups {
        if best_len > 0 && i == best_start {
            f.write_str("::")?;
            i = i.saturating_add(best_len);
            continue;
        }
        if i != 0 && !(best_len > 0 && i == best_start.saturating_add(best_len)) {
            f.write_char(':')?;
        }
        write!(f, "{:x}", g.get(i).copied().unwrap_or(0))?;
        i = i.saturating_add(1);
    }
    if embedded_v4 {
        if best_start.saturating_add(best_len) < 6 {
            f.write_char(':')?;
        }
        let [.., a, b, c, d] = a.octets();
        write!(f, "{a}.{b}.{c}.{d}")?;
    }
    Ok(())
}

/// Writes fields separated by one space (the library's "append `text `, drop the last
/// byte").
struct Fields<'f, 'b> {
    f: &'f mut Formatter<'b>,
    first: bool,
}

impl<'f, 'b> Fields<'f, 'b> {
    fn new(f: &'f mut Formatter<'b>) -> Self {
        Fields { f, first: true }
    }

    fn sep(&mut self) -> fmt::Result {
        if !self.first {
            self.f.write_char(' ')?;
        }
        self.first = false;
        Ok(())
    }

    fn field(&mut self, args: fmt::Arguments<'_>) -> fmt::Result {
        self.sep()?;
        self.f.write_fmt(args)
    }

    fn str(&mut self, s: &str) -> fmt::Result {
        self.sep()?;
        self.f.write_str(s)
    }
}

fn addr_or_unspecified(a: Option<IpAddr>, family: u8) -> Addr {
    Addr(a.unwrap_or(if family == 10 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED)
    }))
}

/// The per-protocol part of a tuple in the default line.
fn l4_fields(out: &mut Fields<'_, '_>, t: &Tuple, proto: u8) -> fmt::Result {
    match proto {
        l4proto::TCP | l4proto::UDP | l4proto::UDPLITE | l4proto::SCTP | l4proto::DCCP => out
            .field(format_args!(
                "sport={} dport={}",
                t.src_port.unwrap_or(0),
                t.dst_port.unwrap_or(0)
            )),
        l4proto::GRE => out.field(format_args!(
            "srckey={:#x} dstkey={:#x}",
            t.src_port.unwrap_or(0),
            t.dst_port.unwrap_or(0)
        )),
        l4proto::ICMP => out.field(format_args!(
            "type={} code={} id={}",
            t.icmp_type.unwrap_or(0),
            t.icmp_code.unwrap_or(0),
            t.icmp_id.unwrap_or(0)
        )),
        l4proto::ICMPV6 => out.field(format_args!(
            "type={} code={} id={}",
            t.icmpv6_type.unwrap_or(0),
            t.icmpv6_code.unwrap_or(0),
            t.icmpv6_id.unwrap_or(0)
        )),
        _ => Ok(()),
    }
}

/// `floor(ns / 1e9)`.
const fn secs(ns: u64) -> u64 {
    ns / 1_000_000_000
}

/// Broken-down civil time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tm {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    /// 0 = Sunday.
    wday: u32,
}

/// Converts seconds since the epoch plus an offset to civil time (proleptic Gregorian).
///
/// The arithmetic cannot overflow: the input is at most `u64::MAX + i32::MAX` seconds, and
/// every intermediate value stays within a small multiple of that, far inside `i128`.
#[allow(clippy::arithmetic_side_effects)]
fn civil(epoch_secs: u64, utc_offset: i32) -> Tm {
    let t = i128::from(epoch_secs).saturating_add(i128::from(utc_offset));
    let days = t.div_euclid(86_400);
    let rem = t.rem_euclid(86_400);
    let narrow = |v: i128| u32::try_from(v).unwrap_or(0);
    let (hour, min, sec) = (
        narrow(rem / 3600),
        narrow(rem % 3600 / 60),
        narrow(rem % 60),
    );
    // 1970-01-01 was a Thursday (4).
    let wday = narrow(days.saturating_add(4).rem_euclid(7));
    // Days to civil date (the era-based algorithm).
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = narrow(doy - (153 * mp + 2) / 5 + 1);
    let month = narrow(if mp < 10 { mp + 3 } else { mp - 9 });
    let year = yoe + era * 400 + i128::from(month <= 2);
    Tm {
        year: i64::try_from(year).unwrap_or(i64::MAX),
        month,
        day,
        hour,
        min,
        sec,
        wday,
    }
}

/// `ctime()` without its newline: `Fri Nov 27 09:53:28 2026`, for seconds since the epoch
/// (the first field) at an offset from UTC in seconds (the second: the local time zone's).
///
/// ```
/// use conntrack_codec::fmt::Ctime;
/// assert_eq!(Ctime(1_796_441_926, 0).to_string(), "Sat Dec  5 03:38:46 2026");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ctime(pub u64, pub i32);

#[cfg(feature = "defmt")]
impl defmt::Format for Ctime {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self));
    }
}

impl Display for Ctime {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let tm = civil(self.0, self.1);
        let day = DAYS
            .get(usize::try_from(tm.wday).unwrap_or(7))
            .copied()
            .unwrap_or("???");
        let month = MONTHS
            .get(usize::try_from(tm.month).unwrap_or(0).wrapping_sub(1))
            .copied()
            .unwrap_or("???");
        write!(
            f,
            "{day} {month}{:3} {:02}:{:02}:{:02} {}",
            tm.day, tm.hour, tm.min, tm.sec, tm.year
        )
    }
}

/// `<when>...</when>` of XML events with `-o timestamp`.
struct When(u64, i32);

impl Display for When {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let tm = civil(self.0, self.1);
        write!(
            f,
            "<when><hour>{}</hour><min>{:02}</min><sec>{:02}</sec><wday>{}</wday>\
             <day>{}</day><month>{}</month><year>{}</year></when>",
            tm.hour,
            tm.min,
            tm.sec,
            tm.wday.saturating_add(1),
            tm.day,
            tm.month,
            tm.year
        )
    }
}

/// One conntrack entry as conntrack-tools 1.4.7 prints it. Implements [`Display`]; no
/// trailing newline.
pub struct CtLine<'a, L: LabelNames + ?Sized> {
    entry: &'a ConntrackRepr,
    origin: Origin,
    out: &'a Output,
    labels: &'a L,
    userspace: Option<Userspace<'a>>,
}

impl<'a, L: LabelNames + ?Sized> CtLine<'a, L> {
    /// A line for `entry`, printed as `out` says, with label names from `labels`.
    pub fn new(entry: &'a ConntrackRepr, origin: Origin, out: &'a Output, labels: &'a L) -> Self {
        CtLine {
            entry,
            origin,
            out,
            labels,
            userspace: None,
        }
    }

    /// Appends the ` [USERSPACE] portid=...` suffix (events caused by a request).
    pub fn userspace(mut self, userspace: Option<Userspace<'a>>) -> Self {
        self.userspace = userspace;
        self
    }

    fn proto(&self) -> u8 {
        self.entry
            .orig
            .as_ref()
            .and_then(|t| t.proto)
            .or(self.entry.reply.as_ref().and_then(|t| t.proto))
            .unwrap_or(0)
    }

    fn event(&self) -> Option<EventKind> {
        match self.origin {
            Origin::Event(k) => Some(k),
            _ => None,
        }
    }

    fn labels_shown(&self) -> bool {
        self.out.labels && self.origin != Origin::Delete
    }

    fn delta_time(&self) -> Option<u64> {
        let ts = self.entry.timestamp.as_ref()?;
        let start = ts.start?;
        Some(match ts.stop {
            Some(stop) if stop != 0 => secs(stop).wrapping_sub(secs(start)),
            _ => self.out.now.wrapping_sub(secs(start)),
        })
    }

    fn write_default(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let e = self.entry;
        let proto = self.proto();
        if let (Some(_), Some((s, us))) = (self.event(), self.out.event_time) {
            write!(f, "[{s:08}.{us:06}]\t")?;
        }
        let mut out = Fields::new(f);
        if let Some(k) = self.event() {
            let prefix = match k {
                EventKind::New => "[NEW]",
                EventKind::Update => "[UPDATE]",
                EventKind::Destroy => "[DESTROY]",
            };
            out.field(format_args!("{prefix:>9}"))?;
        }
        if self.out.extended {
            out.field(format_args!("{:<8} {}", l3_name(e.family), e.family))?;
        }
        out.field(format_args!("{:<8} {}", l4_name(proto), proto))?;
        if let Some(t) = e.timeout {
            out.field(format_args!("{t}"))?;
        }
        match e.protoinfo {
            Some(ProtoInfo::Tcp(t)) => {
                if let Some(s) = t.state {
                    out.str(tcp_state_name(s.into()))?;
                }
            }
            Some(ProtoInfo::Sctp(s)) => {
                if let Some(s) = s.state {
                    out.str(sctp_state_name(s.into()))?;
                }
            }
            Some(ProtoInfo::Dccp(d)) => {
                if let Some(s) = d.state {
                    out.str(dccp_state_name(s.into()))?;
                }
            }
            None => {}
        }
        let orig = e.orig.unwrap_or_default();
        let reply = e.reply.unwrap_or_default();
        self.write_direction(
            &mut out,
            &orig,
            proto,
            "zone-orig",
            e.counters_orig.as_ref(),
        )?;
        if e.is_unreplied() {
            out.str("[UNREPLIED]")?;
        }
        // An entry without a reply tuple (conntrackd's external cache keeps only the
        // original one) prints none, as libnetfilter_conntrack does.
        if e.reply.is_some() {
            self.write_direction(
                &mut out,
                &reply,
                proto,
                "zone-reply",
                e.counters_reply.as_ref(),
            )?;
        }
        if let Some(s) = e.status {
            if s.contains(Status::HW_OFFLOAD) {
                out.str("[HW_OFFLOAD]")?;
            } else if s.contains(Status::OFFLOAD) {
                out.str("[OFFLOAD]")?;
            } else if s.contains(Status::ASSURED) {
                out.str("[ASSURED]")?;
            }
        }
        if let Some(m) = e.mark {
            out.field(format_args!("mark={m}"))?;
        }
        if let Some(m) = e.secmark {
            out.field(format_args!("secmark={m}"))?;
        }
        if let Some(c) = &e.secctx {
            out.field(format_args!("secctx={}", c.name))?;
        }
        if let Some(z) = e.zone {
            out.field(format_args!("zone={z}"))?;
        }
        if let Some(d) = self.delta_time() {
            out.field(format_args!("delta-time={d}"))?;
        }
        if self.out.ktimestamp {
            if let Some(ts) = &e.timestamp {
                if let Some(start) = ts.start {
                    out.field(format_args!(
                        "[start={}]",
                        Ctime(secs(start), self.out.utc_offset)
                    ))?;
                }
                if let Some(stop) = ts.stop {
                    out.field(format_args!(
                        "[stop={}]",
                        Ctime(secs(stop), self.out.utc_offset)
                    ))?;
                }
            }
        }
        if let Some(h) = &e.helper {
            out.field(format_args!("helper={}", h.name))?;
        }
        if let Some(u) = e.use_count {
            out.field(format_args!("use={u}"))?;
        }
        if self.out.id {
            if let Some(id) = e.id {
                out.field(format_args!("id={id}"))?;
            }
        }
        if self.labels_shown() {
            if let Some(l) = &e.labels {
                out.sep()?;
                let mut named = l
                    .iter()
                    .filter_map(|b| self.labels.name(b).filter(|n| !n.is_empty()));
                match named.next() {
                    None => out.f.write_str("labels")?,
                    Some(first) => {
                        write!(out.f, "labels={first}")?;
                        for n in named {
                            write!(out.f, ",{n}")?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn write_direction(
        &self,
        out: &mut Fields<'_, '_>,
        t: &Tuple,
        proto: u8,
        zone_name: &str,
        counters: Option<&crate::ct::Counters>,
    ) -> fmt::Result {
        let fam = self.entry.family;
        out.field(format_args!(
            "src={} dst={}",
            addr_or_unspecified(t.src, fam),
            addr_or_unspecified(t.dst, fam)
        ))?;
        l4_fields(out, t, proto)?;
        if let Some(z) = t.zone {
            out.field(format_args!("{zone_name}={z}"))?;
        }
        if let Some(c) = counters {
            if let (Some(p), Some(b)) = (c.packets, c.bytes) {
                out.field(format_args!("packets={p} bytes={b}"))?;
            }
        }
        Ok(())
    }

    fn write_save(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let e = self.entry;
        let proto = self.proto();
        let mut out = Fields::new(f);
        out.str(match self.origin {
            Origin::Dump | Origin::Event(EventKind::New) => "-A",
            Origin::Event(EventKind::Update) => "-U",
            Origin::Delete | Origin::Event(EventKind::Destroy) => "-D",
        })?;
        if let Some(t) = e.timeout {
            out.field(format_args!("-t {t}"))?;
        }
        if let Some(s) = e.status {
            out.str("-u")?;
            let shown = [
                ("EXPECTED", Status::EXPECTED),
                ("SEEN_REPLY", Status::SEEN_REPLY),
                ("ASSURED", Status::ASSURED),
                ("FIXED_TIMEOUT", Status::FIXED_TIMEOUT),
            ];
            let mut any = false;
            for (name, bit) in shown {
                if s.contains(bit) {
                    out.f.write_str(if any { "," } else { " " })?;
                    out.f.write_str(name)?;
                    any = true;
                }
            }
            if !any {
                out.f.write_str(" UNSET")?;
            }
        }
        if let Some(m) = e.secmark {
            out.field(format_args!("-c {m}"))?;
        }
        if let Some(z) = e.zone {
            out.field(format_args!("-w {z}"))?;
        }
        let orig = e.orig.unwrap_or_default();
        let reply = e.reply.unwrap_or_default();
        if let Some(z) = orig.zone {
            out.field(format_args!("--orig-zone {z}"))?;
        }
        if let Some(z) = reply.zone {
            out.field(format_args!("--reply-zone {z}"))?;
        }
        let fam = e.family;
        // The library's NAT test: the NAT_DONE bit (taken as set when the status is absent)
        // and a reply address whose first 32 bits differ.
        let nat_done = |bit: Status| e.status.is_none_or(|s| s.contains(bit));
        let first_word_differs = |a: Option<IpAddr>, b: Option<IpAddr>| {
            let w = |x: Option<IpAddr>| match x {
                Some(IpAddr::V4(v)) => v.octets(),
                Some(IpAddr::V6(v)) => {
                    let [a, b, c, d, ..] = v.octets();
                    [a, b, c, d]
                }
                None => [0; 4],
            };
            w(a) != w(b)
        };
        let dnat = nat_done(Status::DST_NAT_DONE) && first_word_differs(reply.src, orig.dst);
        let snat = nat_done(Status::SRC_NAT_DONE) && first_word_differs(reply.dst, orig.src);
        out.field(format_args!(
            "-s {} -d {} {} {} {} {}",
            addr_or_unspecified(orig.src, fam),
            addr_or_unspecified(orig.dst, fam),
            if dnat { "-g" } else { "-r" },
            addr_or_unspecified(reply.src, fam),
            if snat { "-n" } else { "-q" },
            addr_or_unspecified(reply.dst, fam),
        ))?;
        match proto {
            l4proto::TCP
            | l4proto::UDP
            | l4proto::UDPLITE
            | l4proto::SCTP
            | l4proto::DCCP
            | l4proto::GRE
            | l4proto::ICMP
            | l4proto::ICMPV6 => out.field(format_args!("-p {}", l4_name(proto)))?,
            other => out.field(format_args!("-p {other}"))?,
        }
        let ports = |out: &mut Fields<'_, '_>, names: [&str; 4]| -> fmt::Result {
            let values = [orig.src_port, orig.dst_port, reply.src_port, reply.dst_port];
            for (name, v) in names.iter().zip(values) {
                if let Some(v) = v {
                    out.field(format_args!("{name} {v}"))?;
                }
            }
            Ok(())
        };
        const PORTS: [&str; 4] = ["--sport", "--dport", "--reply-port-src", "--reply-port-dst"];
        match proto {
            l4proto::TCP | l4proto::UDP | l4proto::UDPLITE | l4proto::SCTP | l4proto::DCCP => {
                ports(&mut out, PORTS)?;
            }
            l4proto::GRE => ports(
                &mut out,
                ["--srckey", "--dstkey", "--reply-key-src", "--reply-key-dst"],
            )?,
            l4proto::ICMP => {
                for (name, v) in [
                    ("--icmp-type", orig.icmp_type.map(u16::from)),
                    ("--icmp-code", orig.icmp_code.map(u16::from)),
                    ("--icmp-id", orig.icmp_id),
                ] {
                    if let Some(v) = v {
                        out.field(format_args!("{name} {v}"))?;
                    }
                }
            }
            l4proto::ICMPV6 => {
                for (name, v) in [
                    ("--icmpv6-type", orig.icmpv6_type.map(u16::from)),
                    ("--icmpv6-code", orig.icmpv6_code.map(u16::from)),
                    ("--icmpv6-id", orig.icmpv6_id),
                ] {
                    if let Some(v) = v {
                        out.field(format_args!("{name} {v}"))?;
                    }
                }
            }
            _ => {}
        }
        match (proto, e.protoinfo) {
            (l4proto::TCP, Some(ProtoInfo::Tcp(t))) => {
                if let Some(s) = t.state {
                    let name = TCP_STATES.get(usize::from(u8::from(s))).copied();
                    out.field(format_args!("--state {}", name.unwrap_or("(null)")))?;
                }
            }
            (l4proto::SCTP, Some(ProtoInfo::Sctp(s))) => {
                if let Some(st) = s.state {
                    // The tool's own table stops before HEARTBEAT_SENT.
                    let name = SCTP_STATES
                        .get(..8)
                        .and_then(|t| t.get(usize::from(u8::from(st))))
                        .copied();
                    out.field(format_args!("--state {}", name.unwrap_or("(null)")))?;
                }
                // The tool prints the vtags through ntohl() of a host-order value.
                if let Some(v) = s.vtag_orig {
                    out.field(format_args!("--orig-vtag {}", u32::from_be(v)))?;
                }
                if let Some(v) = s.vtag_reply {
                    out.field(format_args!("--reply-vtag {}", u32::from_be(v)))?;
                }
            }
            (l4proto::DCCP, Some(ProtoInfo::Dccp(d))) => {
                if let Some(st) = d.state {
                    let name = DCCP_STATES.get(usize::from(u8::from(st))).copied();
                    out.field(format_args!("--state {}", name.unwrap_or("(null)")))?;
                }
                if let Some(r) = d.role {
                    let role = match u8::from(r) {
                        0 => "client",
                        1 => "server",
                        _ => "(null)",
                    };
                    out.field(format_args!("--role {role}"))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn write_xml(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let e = self.entry;
        let proto = self.proto();
        match self.event() {
            None => f.write_str("<flow>")?,
            Some(EventKind::New) => f.write_str("<flow type=\"new\">")?,
            Some(EventKind::Update) => f.write_str("<flow type=\"update\">")?,
            Some(EventKind::Destroy) => f.write_str("<flow type=\"destroy\">")?,
        }
        let counters_shown = e
            .counters_orig
            .as_ref()
            .is_some_and(|c| c.packets.is_some() && c.bytes.is_some());
        for (dir, t, c) in [
            ("original", e.orig.unwrap_or_default(), e.counters_orig),
            ("reply", e.reply.unwrap_or_default(), e.counters_reply),
        ] {
            write!(
                f,
                "<meta direction=\"{dir}\"><layer3 protonum=\"{}\" protoname=\"{}\">\
                 <src>{}</src><dst>{}</dst></layer3>\
                 <layer4 protonum=\"{proto}\" protoname=\"{}\">",
                e.family,
                l3_name(e.family),
                addr_or_unspecified(t.src, e.family),
                addr_or_unspecified(t.dst, e.family),
                l4_name(proto),
            )?;
            xml_l4(f, &t, proto)?;
            f.write_str("</layer4>")?;
            if let Some(z) = t.zone {
                write!(f, "<zone>{z}</zone>")?;
            }
            if counters_shown {
                let c = c.unwrap_or_default();
                write!(
                    f,
                    "<counters><packets>{}</packets><bytes>{}</bytes></counters>",
                    c.packets.unwrap_or(0),
                    c.bytes.unwrap_or(0)
                )?;
            }
            f.write_str("</meta>")?;
        }
        let state = match e.protoinfo {
            Some(ProtoInfo::Tcp(t)) => t.state.map(u8::from),
            Some(ProtoInfo::Sctp(s)) => s.state.map(u8::from),
            Some(ProtoInfo::Dccp(d)) => d.state.map(u8::from),
            None => None,
        };
        let labels = e.labels.filter(|_| self.labels_shown());
        let ts_start = e.timestamp.and_then(|t| t.start);
        let independent = state.is_some()
            || e.timeout.is_some()
            || e.mark.is_some()
            || e.secmark.is_some()
            || e.zone.is_some()
            || e.use_count.is_some()
            || e.status.is_some()
            || e.id.is_some()
            || labels.is_some()
            || ts_start.is_some();
        if independent {
            f.write_str("<meta direction=\"independent\">")?;
            if let Some(s) = state {
                // The library names SCTP and DCCP states from the TCP table here.
                write!(f, "<state>{}</state>", tcp_state_name(s))?;
            }
            if let Some(t) = e.timeout {
                write!(f, "<timeout>{t}</timeout>")?;
            }
            if let Some(m) = e.mark {
                write!(f, "<mark>{m}</mark>")?;
            }
            if let Some(l) = labels {
                f.write_str("<labels>")?;
                for n in l.iter().filter_map(|b| self.labels.name(b)) {
                    write!(f, "<label>{n}</label>")?;
                }
                f.write_str("</labels>")?;
            }
            if let Some(m) = e.secmark {
                write!(f, "<secmark>{m}</secmark>")?;
            }
            if let Some(c) = &e.secctx {
                write!(f, "<secctx>{}</secctx>", c.name)?;
            }
            if let Some(z) = e.zone {
                write!(f, "<zone>{z}</zone>")?;
            }
            if let Some(u) = e.use_count {
                write!(f, "<use>{u}</use>")?;
            }
            if let Some(id) = e.id {
                write!(f, "<id>{id}</id>")?;
            }
            if let Some(s) = e.status {
                if s.contains(Status::ASSURED) {
                    f.write_str("<assured/>")?;
                }
                if !s.contains(Status::SEEN_REPLY) {
                    f.write_str("<unreplied/>")?;
                }
            }
            let ts = e.timestamp.unwrap_or_default();
            if self.out.ktimestamp && (ts.start.is_some() || ts.stop.is_some()) {
                f.write_str("<timestamp>")?;
                if let Some(s) = ts.start {
                    write!(f, "<start>{s}</start>")?;
                }
                if let Some(s) = ts.stop {
                    write!(f, "<stop>{s}</stop>")?;
                }
                f.write_str("</timestamp>")?;
            }
            match (ts.start, ts.stop) {
                (Some(start), Some(stop)) => {
                    write!(
                        f,
                        "<deltatime>{}</deltatime>",
                        secs(stop.wrapping_sub(start))
                    )?;
                }
                (Some(start), None) => {
                    write!(
                        f,
                        "<deltatime>{}</deltatime>",
                        self.out.now.wrapping_sub(secs(start))
                    )?;
                }
                _ => {}
            }
            f.write_str("</meta>")?;
        }
        if let (Some(_), Some((s, _))) = (self.event(), self.out.event_time) {
            write!(f, "{}", When(s, self.out.utc_offset))?;
        }
        if let Some(h) = &e.helper {
            write!(f, "<helper>{}</helper>", h.name)?;
        }
        f.write_str("</flow>")
    }
}

fn xml_l4(f: &mut Formatter<'_>, t: &Tuple, proto: u8) -> fmt::Result {
    match proto {
        l4proto::TCP | l4proto::UDP | l4proto::UDPLITE | l4proto::SCTP | l4proto::DCCP => write!(
            f,
            "<sport>{}</sport><dport>{}</dport>",
            t.src_port.unwrap_or(0),
            t.dst_port.unwrap_or(0)
        ),
        l4proto::GRE => write!(
            f,
            "<srckey>{:#x}</srckey><dstkey>{:#x}</dstkey>",
            t.src_port.unwrap_or(0),
            t.dst_port.unwrap_or(0)
        ),
        _ => Ok(()),
    }
}

/// Logs the text line (through `core::fmt`).
#[cfg(feature = "defmt")]
impl<L: LabelNames + ?Sized> defmt::Format for CtLine<'_, L> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self));
    }
}

impl<L: LabelNames + ?Sized> Display for CtLine<'_, L> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.out.style {
            Style::Default => self.write_default(f)?,
            Style::Save => self.write_save(f)?,
            Style::Xml => self.write_xml(f)?,
        }
        if let Some(u) = &self.userspace {
            write!(f, "{u}")?;
        }
        Ok(())
    }
}

/// One expectation as `conntrack -L expect` (or `-E expect`) prints it. Implements
/// [`Display`]; no trailing newline.
pub struct ExpLine<'a> {
    exp: &'a ExpectRepr,
    event: Option<EventKind>,
    out: &'a Output,
}

impl<'a> ExpLine<'a> {
    /// A line for `exp`; `event` gives the event prefix.
    pub fn new(exp: &'a ExpectRepr, event: Option<EventKind>, out: &'a Output) -> Self {
        ExpLine { exp, event, out }
    }

    fn write_default(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let e = self.exp;
        if let Some((s, us)) = self.out.event_time {
            // Expectations pad with spaces, not zeros (`%-8ld.%-6ld`).
            write!(f, "[{s:<8}.{us:<6}]\t")?;
        }
        let mut out = Fields::new(f);
        if let Some(k) = self.event {
            let prefix = match k {
                EventKind::New => "[NEW]",
                EventKind::Update => "[UPDATE]",
                EventKind::Destroy => "[DESTROY]",
            };
            out.field(format_args!("{prefix:>9}"))?;
        }
        if let Some(t) = e.timeout {
            out.field(format_args!("{t}"))?;
        }
        let tuple = e.tuple.unwrap_or_default();
        let mask = e.mask.unwrap_or_default();
        let master = e.master.unwrap_or_default();
        let proto = tuple.proto.unwrap_or(0);
        let fam = e.family;
        out.field(format_args!("proto={proto}"))?;
        out.field(format_args!(
            "src={} dst={}",
            addr_or_unspecified(tuple.src, fam),
            addr_or_unspecified(tuple.dst, fam)
        ))?;
        l4_fields(&mut out, &tuple, proto)?;
        out.field(format_args!(
            "mask-src={} mask-dst={}",
            addr_or_unspecified(mask.src, fam),
            addr_or_unspecified(mask.dst, fam)
        ))?;
        l4_fields(&mut out, &mask, proto)?;
        out.field(format_args!(
            "master-src={} master-dst={}",
            addr_or_unspecified(master.src, fam),
            addr_or_unspecified(master.dst, fam)
        ))?;
        l4_fields(&mut out, &master, master.proto.unwrap_or(proto))?;
        if let Some(z) = e.zone {
            out.field(format_args!("zone={z}"))?;
        }
        if let Some(fl) = e.flags {
            let mut any = false;
            for (name, bit) in [
                ("PERMANENT", ExpectFlags::PERMANENT),
                ("INACTIVE", ExpectFlags::INACTIVE),
                ("USERSPACE", ExpectFlags::USERSPACE),
            ] {
                if fl.contains(bit) {
                    if any {
                        out.f.write_char(',')?;
                    } else {
                        out.sep()?;
                    }
                    out.f.write_str(name)?;
                    any = true;
                }
            }
        }
        if let Some(c) = e.class {
            out.field(format_args!("class={c}"))?;
        }
        if let Some(h) = &e.helper {
            out.field(format_args!("helper={h}"))?;
        }
        Ok(())
    }

    fn write_xml(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let e = self.exp;
        match self.event {
            None => f.write_str("<flow>")?,
            Some(EventKind::New) => f.write_str("<flow type=\"new\">")?,
            Some(EventKind::Update) => f.write_str("<flow type=\"update\">")?,
            Some(EventKind::Destroy) => f.write_str("<flow type=\"destroy\">")?,
        }
        let tuple = e.tuple.unwrap_or_default();
        let mask = e.mask.unwrap_or_default();
        let master = e.master.unwrap_or_default();
        let proto = tuple.proto.unwrap_or(0);
        let fam = e.family;
        write!(
            f,
            "<layer3 protonum=\"{fam}\" protoname=\"{}\">",
            l3_name(fam)
        )?;
        for (name, t) in [("expected", &tuple), ("mask", &mask), ("master", &master)] {
            write!(
                f,
                "<{name}><src>{}</src><dst>{}</dst></{name}>",
                addr_or_unspecified(t.src, fam),
                addr_or_unspecified(t.dst, fam)
            )?;
        }
        write!(
            f,
            "</layer3><layer4 protonum=\"{proto}\" protoname=\"{}\">",
            l4_name(proto)
        )?;
        // The master's ports follow its own protocol, as in the text line.
        let master_proto = master.proto.unwrap_or(proto);
        for (name, t, p) in [
            ("expected", &tuple, proto),
            ("mask", &mask, proto),
            ("master", &master, master_proto),
        ] {
            write!(f, "<{name}>")?;
            xml_l4(f, t, p)?;
            write!(f, "</{name}>")?;
        }
        f.write_str("</layer4><meta>")?;
        if let Some(h) = &e.helper {
            write!(f, "<helper-name>{h}</helper-name>")?;
        }
        if let Some(t) = e.timeout {
            write!(f, "<timeout>{t}</timeout>")?;
        }
        if let Some(c) = e.class {
            write!(f, "<class>{c}</class>")?;
        }
        if let Some(z) = e.zone {
            write!(f, "<zone>{z}</zone>")?;
        }
        if let Some((s, _)) = self.out.event_time {
            write!(f, "{}", When(s, self.out.utc_offset))?;
        }
        let fl = e.flags.unwrap_or_default();
        for (tag, bit) in [
            ("<permanent/>", ExpectFlags::PERMANENT),
            ("<inactive/>", ExpectFlags::INACTIVE),
            ("<userspace/>", ExpectFlags::USERSPACE),
        ] {
            if e.flags.is_some() && fl.contains(bit) {
                f.write_str(tag)?;
            }
        }
        f.write_str("</meta></flow>")
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
        match self.out.style {
            Style::Xml => self.write_xml(f),
            _ => self.write_default(f),
        }
    }
}

/// One line of `conntrack -S`: `cpu=N` then every counter the kernel sent, each followed by
/// a space (the line keeps its trailing space).
pub struct StatsCpuLine<'a>(pub &'a StatsCpu);

/// Logs the text line (through `core::fmt`).
#[cfg(feature = "defmt")]
impl defmt::Format for StatsCpuLine<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self));
    }
}

impl Display for StatsCpuLine<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let s = self.0;
        write!(f, "cpu={:<4}\t", s.cpu)?;
        for (name, v) in [
            ("searched", s.searched),
            ("found", s.found),
            ("new", s.new),
            ("invalid", s.invalid),
            ("ignore", s.ignore),
            ("delete", s.delete),
            ("delete_list", s.delete_list),
            ("insert", s.insert),
            ("insert_failed", s.insert_failed),
            ("drop", s.drop),
            ("early_drop", s.early_drop),
            ("error", s.error),
            ("search_restart", s.search_restart),
            ("clash_resolve", s.clash_resolve),
            ("chaintoolong", s.chain_toolong),
        ] {
            if let Some(v) = v {
                write!(f, "{name}={v} ")?;
            }
        }
        Ok(())
    }
}

/// One line of `conntrack -S expect`.
pub struct ExpStatsCpuLine<'a>(pub &'a ExpStatsCpu);

/// Logs the text line (through `core::fmt`).
#[cfg(feature = "defmt")]
impl defmt::Format for ExpStatsCpuLine<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self));
    }
}

impl Display for ExpStatsCpuLine<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let s = self.0;
        write!(f, "cpu={:<4}\t", s.cpu)?;
        for (name, v) in [
            ("expect_new", s.new),
            ("expect_create", s.create),
            ("expect_delete", s.delete),
        ] {
            if let Some(v) = v {
                write!(f, "{name}={v} ")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::{Counters, Labels, SctpInfo, SctpState, TcpInfo, TcpState, Timestamp};
    use core::net::Ipv4Addr;

    /// A fixed-size `fmt::Write` sink for the tests (no allocation in the codec).
    struct Buf {
        b: [u8; 2048],
        n: usize,
    }

    impl Buf {
        fn new() -> Self {
            Buf { b: [0; 2048], n: 0 }
        }
        fn as_str(&self) -> &str {
            core::str::from_utf8(&self.b[..self.n]).unwrap()
        }
    }

    impl Write for Buf {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let end = self.n + s.len();
            self.b
                .get_mut(self.n..end)
                .ok_or(fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.n = end;
            Ok(())
        }
    }

    fn show(d: impl Display) -> Buf {
        let mut b = Buf::new();
        write!(b, "{d}").unwrap();
        b
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
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
    fn ipv6_like_glibc() {
        let cases: [(&str, &str); 12] = [
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::102:304", "::1.2.3.4"),
            ("0:0:0:0:0:0:1:2", "::0.1.0.2"),
            ("::ffff:0:0", "::ffff:0.0.0.0"),
            ("::2", "::2"),
            ("::", "::"),
            ("::1:0:0", "::1:0:0"),
            ("1:0:0:0:1:0:0:0", "1::1:0:0:0"),
            ("2001:0:0:1:0:0:1:1", "2001::1:0:0:1:1"),
            ("1:2:3:4:5:6:7:0", "1:2:3:4:5:6:7:0"),
            ("fe80::abcd", "fe80::abcd"),
            ("1::", "1::"),
        ];
        for (input, want) in cases {
            let a: Ipv6Addr = input.parse().unwrap();
            assert_eq!(show(Addr(IpAddr::V6(a))).as_str(), want, "{input}");
        }
        let a: Ipv6Addr = "::ffff:0:102:304".parse().unwrap();
        assert_eq!(show(Addr(IpAddr::V6(a))).as_str(), "::ffff:0:102:304");
    }

    #[test]
    fn ctime_and_civil() {
        // 2026-11-27 09:53:28 UTC was a Friday.
        assert_eq!(
            show(Ctime(1_795_773_208, 0)).as_str(),
            "Fri Nov 27 09:53:28 2026"
        );
        assert_eq!(show(Ctime(0, 0)).as_str(), "Thu Jan  1 00:00:00 1970");
        assert_eq!(show(Ctime(0, -3600)).as_str(), "Wed Dec 31 23:00:00 1969");
        assert_eq!(
            show(Ctime(951_782_400, 0)).as_str(),
            "Tue Feb 29 00:00:00 2000"
        );
    }

    fn entry() -> ConntrackRepr {
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

    #[test]
    fn xml_flow() {
        let out = Output {
            style: Style::Xml,
            now: 1001,
            ..Output::default()
        };
        let mut e = entry();
        e.orig = Some(Tuple::udp(v4(1, 1, 1, 1), v4(2, 2, 2, 2), 1, 2));
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

    #[test]
    fn stats_lines() {
        let s = StatsCpu {
            cpu: 1,
            found: Some(0),
            invalid: Some(4),
            ..StatsCpu::default()
        };
        assert_eq!(
            show(StatsCpuLine(&s)).as_str(),
            "cpu=1   \tfound=0 invalid=4 "
        );
    }

    /// `civil` is exempt from `arithmetic_side_effects` (see its comment); the extremes of
    /// its input, run with overflow checks (tests and the fuzz targets have them on), show
    /// that the claim holds.
    #[test]
    fn civil_time_at_the_extremes() {
        for (secs, offset) in [
            (0, 0),
            (0, i32::MIN),
            (0, i32::MAX),
            (u64::MAX, i32::MAX),
            (u64::MAX, i32::MIN),
        ] {
            let tm = civil(secs, offset);
            assert!(tm.month >= 1 && tm.month <= 12 && tm.day >= 1 && tm.day <= 31);
            assert!(tm.hour < 24 && tm.min < 60 && tm.sec < 60 && tm.wday < 7);
        }
        assert_eq!(civil(0, 0).year, 1970);
        assert_eq!(civil(0, i32::MIN).year, 1901);
    }
}
