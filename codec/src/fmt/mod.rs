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

use core::fmt::{self, Display, Formatter};

use crate::ct::{l4proto, EventKind};

mod default;
mod entry;
mod expect;
mod save;
mod stats;
mod text;
mod time;
mod xml;

pub use entry::CtLine;
pub use expect::ExpLine;
pub use stats::{ExpStatsCpuLine, StatsCpuLine};
pub use text::Addr;
pub use time::Ctime;

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

impl Userspace<'_> {
    fn write(&self, t: &mut text::Text<'_, '_>) -> fmt::Result {
        t.str(" [USERSPACE] portid=")?;
        t.dec(self.portid)?;
        if let Some(p) = self.progname {
            t.str(" progname=")?;
            t.str(p)?;
        }
        Ok(())
    }
}

impl Display for Userspace<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut t = text::Text::new(f);
        self.write(&mut t)?;
        t.finish()
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
