//! [`CtLine`]: one conntrack entry in any of the formats, read from the zero-copy view or
//! from a repr.

use core::fmt::{self, Display, Formatter};

use crate::ct::{attrs::cta, Conntrack, ConntrackRepr, Counters, EventKind};
use crate::ct::{Labels, ProtoInfo, Status, Timestamp, Tuple};
use crate::fmt::{save, text::Text, xml, Origin, Output, Style, Userspace};
use crate::labels::LabelNames;
use crate::Result;

/// What the formats print of an entry, read once from a view or a repr: small values
/// copied, strings borrowed from the message or the repr.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Entry<'a> {
    pub(crate) family: u8,
    pub(crate) orig: Option<Tuple>,
    pub(crate) reply: Option<Tuple>,
    pub(crate) status: Option<Status>,
    pub(crate) protoinfo: Option<ProtoInfo>,
    pub(crate) timeout: Option<u32>,
    pub(crate) mark: Option<u32>,
    pub(crate) secmark: Option<u32>,
    pub(crate) use_count: Option<u32>,
    pub(crate) id: Option<u32>,
    pub(crate) zone: Option<u16>,
    pub(crate) counters_orig: Option<Counters>,
    pub(crate) counters_reply: Option<Counters>,
    pub(crate) timestamp: Option<Timestamp>,
    pub(crate) secctx: Option<&'a str>,
    pub(crate) helper: Option<&'a str>,
    pub(crate) labels: Option<Labels>,
}

impl<'a> Entry<'a> {
    fn from_repr(e: &'a ConntrackRepr) -> Self {
        Entry {
            family: e.family,
            orig: e.orig,
            reply: e.reply,
            status: e.status,
            protoinfo: e.protoinfo,
            timeout: e.timeout,
            mark: e.mark,
            secmark: e.secmark,
            use_count: e.use_count,
            id: e.id,
            zone: e.zone,
            counters_orig: e.counters_orig,
            counters_reply: e.counters_reply,
            timestamp: e.timestamp,
            secctx: e.secctx.as_ref().map(|s| s.name.as_str()),
            helper: e.helper.as_ref().map(|h| h.name.as_str()),
            labels: e.labels,
        }
    }

    /// Reads what the formats print. A helper or security context nest without a name
    /// reads as an empty name, as it does in a repr.
    fn from_view(v: &Conntrack<'a>) -> Result<Self> {
        let named = |present: bool, name: Option<&'a str>| present.then(|| name.unwrap_or(""));
        Ok(Entry {
            family: v.family(),
            orig: v.orig()?,
            reply: v.reply()?,
            status: v.status()?,
            protoinfo: v.protoinfo()?,
            timeout: v.timeout()?,
            mark: v.mark()?,
            secmark: v.secmark()?,
            use_count: v.use_count()?,
            id: v.id()?,
            zone: v.zone()?,
            counters_orig: v.counters_orig()?,
            counters_reply: v.counters_reply()?,
            timestamp: v.timestamp()?,
            secctx: named(v.attr(cta::SECCTX).is_some(), v.secctx()?),
            helper: named(v.attr(cta::HELP).is_some(), v.helper_name()?),
            labels: v.labels()?,
        })
    }

    /// The L4 protocol: the original tuple's, else the reply's, else 0.
    pub(crate) fn proto(&self) -> u8 {
        self.orig
            .and_then(|t| t.proto)
            .or(self.reply.and_then(|t| t.proto))
            .unwrap_or(0)
    }

    /// Whether the status says the entry saw no reply yet.
    pub(crate) fn is_unreplied(&self) -> bool {
        self.status.is_some_and(|s| !s.contains(Status::SEEN_REPLY))
    }

    /// The protocol state as a number (TCP, SCTP or DCCP).
    pub(crate) fn state(&self) -> Option<u8> {
        match self.protoinfo? {
            ProtoInfo::Tcp(t) => t.state.map(u8::from),
            ProtoInfo::Sctp(s) => s.state.map(u8::from),
            ProtoInfo::Dccp(d) => d.state.map(u8::from),
        }
    }
}

/// One conntrack entry as conntrack-tools 1.4.7 prints it. Implements [`Display`]; no
/// trailing newline.
///
/// Make it from the zero-copy view ([`CtLine::from_view`]), as a listing or an event loop
/// does, so that nothing is copied or allocated per entry; or from a repr
/// ([`CtLine::new`]).
pub struct CtLine<'a, L: LabelNames + ?Sized> {
    entry: Entry<'a>,
    origin: Origin,
    out: &'a Output,
    labels: &'a L,
    userspace: Option<Userspace<'a>>,
}

impl<'a, L: LabelNames + ?Sized> CtLine<'a, L> {
    /// A line for `entry`, printed as `out` says, with label names from `labels`.
    pub fn new(entry: &'a ConntrackRepr, origin: Origin, out: &'a Output, labels: &'a L) -> Self {
        CtLine {
            entry: Entry::from_repr(entry),
            origin,
            out,
            labels,
            userspace: None,
        }
    }

    /// A line for the entry `view` shows, read from the message's bytes (names borrowed).
    /// It prints what [`CtLine::new`] prints for the repr of the same message.
    ///
    /// ```
    /// use conntrack_codec::ct::{request, Conntrack, ConntrackRepr, Tuple};
    /// use conntrack_codec::fmt::{CtLine, Origin, Output};
    /// use conntrack_codec::nl::{Messages, Writer};
    ///
    /// let orig = Tuple::udp([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 5000, 53);
    /// let entry = ConntrackRepr { family: 2, orig: Some(orig), timeout: Some(30), ..Default::default() };
    /// let mut buf = [0u8; 256];
    /// let mut w = Writer::new(&mut buf);
    /// request::update(&mut w, 1, &entry)?;
    /// let view = Conntrack::parse(Messages::new(w.written()).next().unwrap()?)?;
    /// let out = Output::default();
    /// let line = CtLine::from_view(&view, Origin::Dump, &out, &())?;
    /// assert_eq!(line.to_string(), "udp      17 30 src=10.0.0.1 dst=10.0.0.2 sport=5000 dport=53");
    /// # Ok::<(), conntrack_codec::Error>(())
    /// ```
    ///
    /// # Errors
    /// A malformed attribute among those the line prints.
    pub fn from_view(
        view: &Conntrack<'a>,
        origin: Origin,
        out: &'a Output,
        labels: &'a L,
    ) -> Result<Self> {
        Ok(CtLine {
            entry: Entry::from_view(view)?,
            origin,
            out,
            labels,
            userspace: None,
        })
    }

    /// Appends the ` [USERSPACE] portid=...` suffix (events caused by a request).
    pub fn userspace(mut self, userspace: Option<Userspace<'a>>) -> Self {
        self.userspace = userspace;
        self
    }

    pub(crate) fn entry(&self) -> &Entry<'a> {
        &self.entry
    }

    pub(crate) fn out(&self) -> &Output {
        self.out
    }

    pub(crate) fn origin(&self) -> Origin {
        self.origin
    }

    pub(crate) fn label_names(&self) -> &L {
        self.labels
    }

    /// The event, if the line is one.
    pub(crate) fn event(&self) -> Option<EventKind> {
        match self.origin {
            Origin::Event(k) => Some(k),
            _ => None,
        }
    }

    /// Whether labels are printed: a label map is loaded and the line is not a delete's.
    pub(crate) fn labels_shown(&self) -> bool {
        self.out.labels && self.origin != Origin::Delete
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
        let mut t = Text::new(f);
        match self.out.style {
            Style::Default => crate::fmt::default::write(self, &mut t)?,
            Style::Save => save::write(self, &mut t)?,
            Style::Xml => xml::write(self, &mut t)?,
        }
        if let Some(u) = &self.userspace {
            u.write(&mut t)?;
        }
        t.finish()
    }
}
