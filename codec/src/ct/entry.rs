//! One conntrack entry: the zero-copy view [`Conntrack`] and the plain-data [`ConntrackRepr`].

use crate::ct::attrs::cta;
use crate::ct::labels::Labels;
use crate::ct::misc::{Counters, Helper, NatRange, SecCtx, SeqAdj, Synproxy, Timestamp};
use crate::ct::protoinfo::ProtoInfo;
use crate::ct::status::Status;
use crate::ct::tuple::{opt, Tuple};
use crate::ct::unknown::{attr_len, sum, Unknowns, TOP};
use crate::filter::FilterFlags;
use crate::nfnl::{ct_msg, msg_type, write_typed, NfGenMsg, NfMsg, Subsystem, NFNETLINK_V0};
use crate::nl::{flags, Attr, Attrs, NlMsg, NlMsgHeader, Writer};
use crate::{Error, Result};

/// What a conntrack message announces when it arrives as an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EventKind {
    /// A new entry: `CT_NEW` with `NLM_F_CREATE` and `NLM_F_EXCL`.
    New,
    /// A change to an entry: any other `CT_NEW`.
    Update,
    /// An entry went away: `CT_DELETE`.
    Destroy,
}

impl EventKind {
    /// The kind of a conntrack message, or `None` if it is not a conntrack `NEW`/`DELETE`.
    pub fn of(msg: &NlMsg<'_>) -> Option<Self> {
        let new = msg_type(Subsystem::Ctnetlink, ct_msg::NEW);
        let delete = msg_type(Subsystem::Ctnetlink, ct_msg::DELETE);
        match msg.kind() {
            k if k == delete => Some(EventKind::Destroy),
            k if k == new => {
                let both = flags::CREATE | flags::EXCL;
                if msg.flags() & both == both {
                    Some(EventKind::New)
                } else {
                    Some(EventKind::Update)
                }
            }
            _ => None,
        }
    }
}

/// The number of top-level slots of the view's index (`CTA_*` 1 to 27).
const SLOTS: usize = cta::MAX as usize + 1;
const ABSENT: u32 = u32::MAX;

/// A zero-copy view of one conntrack message (a dump entry, a GET reply or an event).
///
/// Making the view walks the top-level attributes once, checking their framing and noting
/// where each one is; the getters decode on demand from the borrowed bytes. A getter
/// returns `Ok(None)` when the attribute is absent and `Err` when it is malformed; no
/// getter panics.
#[derive(Debug, Clone, Copy)]
pub struct Conntrack<'a> {
    nf: NfMsg<'a>,
    attrs: &'a [u8],
    index: [u32; SLOTS],
    unknown: u16,
}

/// Logs the message and how many attribute bytes and unknown attributes it has; the
/// attribute index is left out (it only repeats where the attributes are).
#[cfg(feature = "defmt")]
impl defmt::Format for Conntrack<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "Conntrack {{ nf: {}, attrs: {=usize} bytes, unknown: {=u16} }}",
            self.nf,
            self.attrs.len(),
            self.unknown
        );
    }
}

impl<'a> Conntrack<'a> {
    /// Makes a view of a ctnetlink `CT_NEW`/`CT_DELETE` message.
    ///
    /// # Errors
    /// [`Error::UnexpectedMessage`] for a message of another subsystem or type; any framing
    /// error of the top-level attributes.
    #[inline]
    pub fn new_checked(nf: NfMsg<'a>) -> Result<Self> {
        if nf.subsystem() != Subsystem::Ctnetlink
            || !matches!(nf.msg_num(), ct_msg::NEW | ct_msg::DELETE)
        {
            return Err(Error::UnexpectedMessage("not a conntrack entry"));
        }
        let attrs = nf.attr_bytes();
        let mut view = Conntrack {
            nf,
            attrs,
            index: [ABSENT; SLOTS],
            unknown: 0,
        };
        let mut it = Attrs::new(attrs);
        loop {
            let offset = attrs.len().saturating_sub(it.remaining().len());
            let Some(a) = it.next() else { break };
            let a = a?;
            let kind = a.kind();
            if kind == cta::TIMESTAMP_EVENT_PAD && a.payload().is_empty() {
                continue;
            }
            match view.index.get_mut(usize::from(kind)) {
                Some(slot) if kind != 0 => {
                    *slot = u32::try_from(offset).map_err(|_| Error::TooLong("message"))?;
                }
                _ => view.unknown = view.unknown.saturating_add(1),
            }
        }
        Ok(view)
    }

    /// Makes a view of a netlink message.
    ///
    /// # Errors
    /// As [`NfMsg::new_checked`] and [`Conntrack::new_checked`].
    #[inline]
    pub fn parse(msg: NlMsg<'a>) -> Result<Self> {
        Self::new_checked(NfMsg::new_checked(msg)?)
    }

    /// The nfnetlink message.
    #[inline]
    pub const fn nf(&self) -> &NfMsg<'a> {
        &self.nf
    }

    /// The address family (nfgenmsg).
    #[inline]
    pub const fn family(&self) -> u8 {
        self.nf.nfgen().family
    }

    /// What the message announces if it is an event.
    #[inline]
    pub fn event_kind(&self) -> Option<EventKind> {
        EventKind::of(self.nf.msg())
    }

    /// The top-level attribute of type `kind`, if present.
    #[inline]
    pub fn attr(&self, kind: u16) -> Option<Attr<'a>> {
        let offset = *self.index.get(usize::from(kind))?;
        if offset == ABSENT {
            return None;
        }
        let rest = self.attrs.get(usize::try_from(offset).ok()?..)?;
        Attrs::new(rest).next()?.ok()
    }

    /// Every top-level attribute, in wire order.
    #[inline]
    pub fn attrs(&self) -> Attrs<'a> {
        Attrs::new(self.attrs)
    }

    /// How many top-level attributes have types this codec does not know.
    #[inline]
    pub const fn unknown_count(&self) -> u16 {
        self.unknown
    }

    /// The top-level attributes this codec does not know.
    #[inline]
    pub fn unknown(&self) -> impl Iterator<Item = Attr<'a>> + 'a {
        Attrs::new(self.attrs)
            .filter_map(|a| a.ok())
            .filter(|a| a.kind() == 0 || a.kind() > cta::MAX)
    }

    #[inline]
    fn get<T>(&self, kind: u16, f: impl FnOnce(&Attr<'a>) -> Result<T>) -> Result<Option<T>> {
        self.attr(kind).as_ref().map(f).transpose()
    }

    #[inline]
    fn tuple(&self, kind: u16) -> Result<Option<Tuple>> {
        self.get(kind, |a| Tuple::parse(a, &mut ()))
    }

    /// The original-direction tuple.
    ///
    /// # Errors
    /// A malformed nest.
    #[inline]
    pub fn orig(&self) -> Result<Option<Tuple>> {
        self.tuple(cta::TUPLE_ORIG)
    }

    /// The reply-direction tuple.
    ///
    /// # Errors
    /// A malformed nest.
    #[inline]
    pub fn reply(&self) -> Result<Option<Tuple>> {
        self.tuple(cta::TUPLE_REPLY)
    }

    /// The master's tuple (entries created by an expectation).
    ///
    /// # Errors
    /// A malformed nest.
    #[inline]
    pub fn master(&self) -> Result<Option<Tuple>> {
        self.tuple(cta::TUPLE_MASTER)
    }

    /// The status bits.
    ///
    /// # Errors
    /// A wrong-sized attribute.
    #[inline]
    pub fn status(&self) -> Result<Option<Status>> {
        self.get(cta::STATUS, |a| a.u32_be().map(Status))
    }

    /// The status mask (requests).
    ///
    /// # Errors
    /// A wrong-sized attribute.
    #[inline]
    pub fn status_mask(&self) -> Result<Option<Status>> {
        self.get(cta::STATUS_MASK, |a| a.u32_be().map(Status))
    }

    /// Seconds until the entry expires.
    ///
    /// # Errors
    /// A wrong-sized attribute.
    #[inline]
    pub fn timeout(&self) -> Result<Option<u32>> {
        self.get(cta::TIMEOUT, Attr::u32_be)
    }

    /// The mark.
    ///
    /// # Errors
    /// A wrong-sized attribute.
    #[inline]
    pub fn mark(&self) -> Result<Option<u32>> {
        self.get(cta::MARK, Attr::u32_be)
    }

    /// The mark mask (requests).
    ///
    /// # Errors
    /// A wrong-sized attribute.
    #[inline]
    pub fn mark_mask(&self) -> Result<Option<u32>> {
        self.get(cta::MARK_MASK, Attr::u32_be)
    }

    /// The reference count.
    ///
    /// # Errors
    /// A wrong-sized attribute.
    #[inline]
    pub fn use_count(&self) -> Result<Option<u32>> {
        self.get(cta::USE, Attr::u32_be)
    }

    /// The entry's id.
    ///
    /// # Errors
    /// A wrong-sized attribute.
    #[inline]
    pub fn id(&self) -> Result<Option<u32>> {
        self.get(cta::ID, Attr::u32_be)
    }

    /// The security mark.
    ///
    /// # Errors
    /// A wrong-sized attribute.
    #[inline]
    pub fn secmark(&self) -> Result<Option<u32>> {
        self.get(cta::SECMARK, Attr::u32_be)
    }

    /// The zone.
    ///
    /// # Errors
    /// A wrong-sized attribute.
    #[inline]
    pub fn zone(&self) -> Result<Option<u16>> {
        self.get(cta::ZONE, Attr::u16_be)
    }

    /// The event's time in nanoseconds since the epoch (Linux 6.14+, events only).
    ///
    /// # Errors
    /// A wrong-sized attribute.
    #[inline]
    pub fn timestamp_event(&self) -> Result<Option<u64>> {
        self.get(cta::TIMESTAMP_EVENT, Attr::u64_be)
    }

    /// The protocol state.
    ///
    /// # Errors
    /// A malformed nest.
    #[inline]
    pub fn protoinfo(&self) -> Result<Option<ProtoInfo>> {
        Ok(self
            .get(cta::PROTOINFO, |a| ProtoInfo::parse(a, &mut ()))?
            .flatten())
    }

    /// Original-direction counters.
    ///
    /// # Errors
    /// A malformed nest.
    #[inline]
    pub fn counters_orig(&self) -> Result<Option<Counters>> {
        self.get(cta::COUNTERS_ORIG, |a| Counters::parse(a, &mut ()))
    }

    /// Reply-direction counters.
    ///
    /// # Errors
    /// A malformed nest.
    #[inline]
    pub fn counters_reply(&self) -> Result<Option<Counters>> {
        self.get(cta::COUNTERS_REPLY, |a| Counters::parse(a, &mut ()))
    }

    /// Start and stop timestamps.
    ///
    /// # Errors
    /// A malformed nest.
    #[inline]
    pub fn timestamp(&self) -> Result<Option<Timestamp>> {
        self.get(cta::TIMESTAMP, |a| Timestamp::parse(a, &mut ()))
    }

    /// The source NAT range.
    ///
    /// # Errors
    /// A malformed nest.
    #[inline]
    pub fn nat_src(&self) -> Result<Option<NatRange>> {
        self.get(cta::NAT_SRC, |a| NatRange::parse(a, &mut ()))
    }

    /// The destination NAT range.
    ///
    /// # Errors
    /// A malformed nest.
    #[inline]
    pub fn nat_dst(&self) -> Result<Option<NatRange>> {
        self.get(cta::NAT_DST, |a| NatRange::parse(a, &mut ()))
    }

    /// Original-direction sequence adjustment.
    ///
    /// # Errors
    /// A malformed nest.
    #[inline]
    pub fn seq_adj_orig(&self) -> Result<Option<SeqAdj>> {
        self.get(cta::SEQ_ADJ_ORIG, |a| SeqAdj::parse(a, &mut ()))
    }

    /// Reply-direction sequence adjustment.
    ///
    /// # Errors
    /// A malformed nest.
    #[inline]
    pub fn seq_adj_reply(&self) -> Result<Option<SeqAdj>> {
        self.get(cta::SEQ_ADJ_REPLY, |a| SeqAdj::parse(a, &mut ()))
    }

    /// Synproxy state.
    ///
    /// # Errors
    /// A malformed nest.
    #[inline]
    pub fn synproxy(&self) -> Result<Option<Synproxy>> {
        self.get(cta::SYNPROXY, |a| Synproxy::parse(a, &mut ()))
    }

    /// The helper's name, borrowed from the message.
    ///
    /// # Errors
    /// A malformed nest or name.
    #[inline]
    pub fn helper_name(&self) -> Result<Option<&'a str>> {
        let Some(help) = self.attr(cta::HELP) else {
            return Ok(None);
        };
        last_in(&help, crate::ct::attrs::help::NAME)?
            .map(|a| a.c_str())
            .transpose()
    }

    /// The helper's private data, borrowed from the message.
    ///
    /// # Errors
    /// A malformed nest.
    #[inline]
    pub fn helper_info(&self) -> Result<Option<&'a [u8]>> {
        let Some(help) = self.attr(cta::HELP) else {
            return Ok(None);
        };
        Ok(last_in(&help, crate::ct::attrs::help::INFO)?.map(|a| a.payload()))
    }

    /// The security context, borrowed from the message.
    ///
    /// # Errors
    /// A malformed nest or name.
    #[inline]
    pub fn secctx(&self) -> Result<Option<&'a str>> {
        let Some(ctx) = self.attr(cta::SECCTX) else {
            return Ok(None);
        };
        last_in(&ctx, crate::ct::attrs::secctx::NAME)?
            .map(|a| a.c_str())
            .transpose()
    }

    /// The label bitmap.
    ///
    /// # Errors
    /// A wrong-sized attribute.
    #[inline]
    pub fn labels(&self) -> Result<Option<Labels>> {
        self.get(cta::LABELS, Labels::parse)
    }

    /// The label mask (requests).
    ///
    /// # Errors
    /// A wrong-sized attribute.
    #[inline]
    pub fn labels_mask(&self) -> Result<Option<Labels>> {
        self.get(cta::LABELS_MASK, Labels::parse)
    }

    /// The dump filter flags (requests).
    ///
    /// # Errors
    /// A malformed nest.
    #[inline]
    pub fn filter(&self) -> Result<Option<FilterFlags>> {
        self.get(cta::FILTER, |a| FilterFlags::parse(a, &mut ()))
    }
}

/// The last attribute of type `kind` inside `nest`: of duplicates, the kernel and
/// [`ConntrackRepr::parse`] keep the last, and so do the view's getters.
///
/// # Errors
/// The first malformed attribute of the nest.
fn last_in<'a>(nest: &Attr<'a>, kind: u16) -> Result<Option<Attr<'a>>> {
    let mut found = None;
    for a in nest.nested() {
        let a = a?;
        if a.kind() == kind {
            found = Some(a);
        }
    }
    Ok(found)
}

/// One conntrack entry as plain data: every attribute ctnetlink defines.
///
/// Strings and the helper's data have fixed capacities (see [`Helper`], [`SecCtx`]);
/// attributes this codec does not know are kept in [`ConntrackRepr::unknown`] (the top-level
/// ones are written back by [`ConntrackRepr::emit`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConntrackRepr {
    /// Address family (nfgenmsg).
    pub family: u8,
    /// `CTA_TUPLE_ORIG`.
    pub orig: Option<Tuple>,
    /// `CTA_TUPLE_REPLY`.
    pub reply: Option<Tuple>,
    /// `CTA_STATUS`.
    pub status: Option<Status>,
    /// `CTA_PROTOINFO`.
    pub protoinfo: Option<ProtoInfo>,
    /// `CTA_HELP`.
    pub helper: Option<Helper>,
    /// `CTA_NAT_SRC`.
    pub nat_src: Option<NatRange>,
    /// `CTA_TIMEOUT` (seconds).
    pub timeout: Option<u32>,
    /// `CTA_MARK`.
    pub mark: Option<u32>,
    /// `CTA_COUNTERS_ORIG`.
    pub counters_orig: Option<Counters>,
    /// `CTA_COUNTERS_REPLY`.
    pub counters_reply: Option<Counters>,
    /// `CTA_USE`.
    pub use_count: Option<u32>,
    /// `CTA_ID`.
    pub id: Option<u32>,
    /// `CTA_NAT_DST`.
    pub nat_dst: Option<NatRange>,
    /// `CTA_TUPLE_MASTER`.
    pub master: Option<Tuple>,
    /// `CTA_SEQ_ADJ_ORIG`.
    pub seq_adj_orig: Option<SeqAdj>,
    /// `CTA_SEQ_ADJ_REPLY`.
    pub seq_adj_reply: Option<SeqAdj>,
    /// `CTA_SECMARK`.
    pub secmark: Option<u32>,
    /// `CTA_ZONE`.
    pub zone: Option<u16>,
    /// `CTA_SECCTX`.
    pub secctx: Option<SecCtx>,
    /// `CTA_TIMESTAMP`.
    pub timestamp: Option<Timestamp>,
    /// `CTA_MARK_MASK`.
    pub mark_mask: Option<u32>,
    /// `CTA_LABELS`.
    pub labels: Option<Labels>,
    /// `CTA_LABELS_MASK`.
    pub labels_mask: Option<Labels>,
    /// `CTA_SYNPROXY`.
    pub synproxy: Option<Synproxy>,
    /// `CTA_FILTER`.
    pub filter: Option<FilterFlags>,
    /// `CTA_STATUS_MASK`.
    pub status_mask: Option<Status>,
    /// `CTA_TIMESTAMP_EVENT` (nanoseconds).
    pub timestamp_event: Option<u64>,
    /// Attributes this codec does not know.
    pub unknown: Unknowns,
}

impl ConntrackRepr {
    /// Reads every attribute of a conntrack message.
    ///
    /// # Errors
    /// [`Error::UnexpectedMessage`] for a message that is not a conntrack entry; any
    /// malformed attribute; [`Error::CapacityExceeded`] for a helper name, helper data or
    /// security context longer than this type holds.
    pub fn parse(nf: &NfMsg<'_>) -> Result<Self> {
        if nf.subsystem() != Subsystem::Ctnetlink
            || !matches!(nf.msg_num(), ct_msg::NEW | ct_msg::DELETE)
        {
            return Err(Error::UnexpectedMessage("not a conntrack entry"));
        }
        Self::parse_attrs(nf.nfgen().family, nf.attr_bytes())
    }

    /// Reads the attributes in `attrs` (what follows nfgenmsg) of a family-`family` entry.
    ///
    /// # Errors
    /// As [`ConntrackRepr::parse`].
    pub fn parse_attrs(family: u8, attrs: &[u8]) -> Result<Self> {
        let mut r = ConntrackRepr {
            family,
            ..ConntrackRepr::default()
        };
        r.read_attrs(attrs)?;
        Ok(r)
    }

    /// Reads a conntrack message into `self`, replacing everything it held: what
    /// [`ConntrackRepr::parse`] returns, without making and moving a new value (this type
    /// is over a kilobyte), for loops that read many entries into one, as a dump does.
    ///
    /// # Errors
    /// As [`ConntrackRepr::parse`]; `self` then holds what was read before the error.
    pub fn parse_into(&mut self, nf: &NfMsg<'_>) -> Result<()> {
        if nf.subsystem() != Subsystem::Ctnetlink
            || !matches!(nf.msg_num(), ct_msg::NEW | ct_msg::DELETE)
        {
            return Err(Error::UnexpectedMessage("not a conntrack entry"));
        }
        self.clear(nf.nfgen().family);
        self.read_attrs(nf.attr_bytes())
    }

    /// Empties every field (naming each, so that a new field cannot be forgotten).
    fn clear(&mut self, new_family: u8) {
        let ConntrackRepr {
            family,
            orig,
            reply,
            status,
            protoinfo,
            helper,
            nat_src,
            timeout,
            mark,
            counters_orig,
            counters_reply,
            use_count,
            id,
            nat_dst,
            master,
            seq_adj_orig,
            seq_adj_reply,
            secmark,
            zone,
            secctx,
            timestamp,
            mark_mask,
            labels,
            labels_mask,
            synproxy,
            filter,
            status_mask,
            timestamp_event,
            unknown,
        } = self;
        *family = new_family;
        (*orig, *reply, *master) = (None, None, None);
        (*status, *status_mask) = (None, None);
        *protoinfo = None;
        *helper = None;
        (*nat_src, *nat_dst) = (None, None);
        (*timeout, *mark, *mark_mask, *use_count, *id, *secmark) =
            (None, None, None, None, None, None);
        (*counters_orig, *counters_reply) = (None, None);
        (*seq_adj_orig, *seq_adj_reply) = (None, None);
        *zone = None;
        *secctx = None;
        *timestamp = None;
        (*labels, *labels_mask) = (None, None);
        *synproxy = None;
        *filter = None;
        *timestamp_event = None;
        unknown.kept.clear();
        unknown.overflow = 0;
    }

    /// Reads the attributes in `attrs` into `self`, over what it holds.
    #[inline]
    fn read_attrs(&mut self, attrs: &[u8]) -> Result<()> {
        let r = self;
        let u = &mut r.unknown;
        for a in Attrs::new(attrs) {
            let a = a?;
            match a.kind() {
                cta::TUPLE_ORIG => r.orig = Some(Tuple::parse(&a, u)?),
                cta::TUPLE_REPLY => r.reply = Some(Tuple::parse(&a, u)?),
                cta::TUPLE_MASTER => r.master = Some(Tuple::parse(&a, u)?),
                cta::TIMESTAMP_EVENT_PAD if a.payload().is_empty() => {}
                cta::STATUS => r.status = Some(Status(a.u32_be()?)),
                cta::PROTOINFO => r.protoinfo = ProtoInfo::parse(&a, u)?,
                cta::HELP => r.helper = Some(Helper::parse(&a, u)?),
                cta::NAT_SRC => r.nat_src = Some(NatRange::parse(&a, u)?),
                cta::TIMEOUT => r.timeout = Some(a.u32_be()?),
                cta::MARK => r.mark = Some(a.u32_be()?),
                cta::COUNTERS_ORIG => r.counters_orig = Some(Counters::parse(&a, u)?),
                cta::COUNTERS_REPLY => r.counters_reply = Some(Counters::parse(&a, u)?),
                cta::USE => r.use_count = Some(a.u32_be()?),
                cta::ID => r.id = Some(a.u32_be()?),
                cta::NAT_DST => r.nat_dst = Some(NatRange::parse(&a, u)?),
                cta::SEQ_ADJ_ORIG => r.seq_adj_orig = Some(SeqAdj::parse(&a, u)?),
                cta::SEQ_ADJ_REPLY => r.seq_adj_reply = Some(SeqAdj::parse(&a, u)?),
                cta::SECMARK => r.secmark = Some(a.u32_be()?),
                cta::ZONE => r.zone = Some(a.u16_be()?),
                cta::SECCTX => r.secctx = Some(SecCtx::parse(&a, u)?),
                cta::TIMESTAMP => r.timestamp = Some(Timestamp::parse(&a, u)?),
                cta::MARK_MASK => r.mark_mask = Some(a.u32_be()?),
                cta::LABELS => r.labels = Some(Labels::parse(&a)?),
                cta::LABELS_MASK => r.labels_mask = Some(Labels::parse(&a)?),
                cta::SYNPROXY => r.synproxy = Some(Synproxy::parse(&a, u)?),
                cta::FILTER => r.filter = Some(FilterFlags::parse(&a, u)?),
                cta::STATUS_MASK => r.status_mask = Some(Status(a.u32_be()?)),
                cta::TIMESTAMP_EVENT => r.timestamp_event = Some(a.u64_be()?),
                _ => u.record(TOP, &a),
            }
        }
        Ok(())
    }

    /// Reads a message received from the kernel (a dump entry, a GET reply, an event).
    ///
    /// # Errors
    /// As [`NfMsg::new_checked`] and [`ConntrackRepr::parse`].
    pub fn parse_msg(msg: NlMsg<'_>) -> Result<Self> {
        Self::parse(&NfMsg::new_checked(msg)?)
    }

    /// Writes every present attribute, in ascending type order, then the top-level unknown
    /// ones; nothing else (no message header, no nfgenmsg).
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`]; [`Error::TooLong`] for a nest over 64 KiB.
    pub fn emit_attrs(&self, w: &mut Writer<'_>) -> Result<()> {
        opt(w, self.orig.as_ref(), |w, t| t.emit(cta::TUPLE_ORIG, w))?;
        opt(w, self.reply.as_ref(), |w, t| t.emit(cta::TUPLE_REPLY, w))?;
        opt(w, self.status, |w, s| w.attr_u32_be(cta::STATUS, s.0))?;
        opt(w, self.protoinfo.as_ref(), |w, p| p.emit(w))?;
        opt(w, self.helper.as_ref(), |w, h| h.emit(cta::HELP, w))?;
        opt(w, self.nat_src.as_ref(), |w, n| n.emit(cta::NAT_SRC, w))?;
        opt(w, self.timeout, |w, v| w.attr_u32_be(cta::TIMEOUT, v))?;
        opt(w, self.mark, |w, v| w.attr_u32_be(cta::MARK, v))?;
        opt(w, self.counters_orig.as_ref(), |w, c| {
            c.emit(cta::COUNTERS_ORIG, w)
        })?;
        opt(w, self.counters_reply.as_ref(), |w, c| {
            c.emit(cta::COUNTERS_REPLY, w)
        })?;
        opt(w, self.use_count, |w, v| w.attr_u32_be(cta::USE, v))?;
        opt(w, self.id, |w, v| w.attr_u32_be(cta::ID, v))?;
        opt(w, self.nat_dst.as_ref(), |w, n| n.emit(cta::NAT_DST, w))?;
        opt(w, self.master.as_ref(), |w, t| t.emit(cta::TUPLE_MASTER, w))?;
        opt(w, self.seq_adj_orig.as_ref(), |w, s| {
            s.emit(cta::SEQ_ADJ_ORIG, w)
        })?;
        opt(w, self.seq_adj_reply.as_ref(), |w, s| {
            s.emit(cta::SEQ_ADJ_REPLY, w)
        })?;
        opt(w, self.secmark, |w, v| w.attr_u32_be(cta::SECMARK, v))?;
        opt(w, self.zone, |w, v| w.attr_u16_be(cta::ZONE, v))?;
        opt(w, self.secctx.as_ref(), |w, s| s.emit(cta::SECCTX, w))?;
        opt(w, self.timestamp.as_ref(), |w, t| t.emit(cta::TIMESTAMP, w))?;
        opt(w, self.mark_mask, |w, v| w.attr_u32_be(cta::MARK_MASK, v))?;
        opt(w, self.labels.as_ref(), |w, l| l.emit(cta::LABELS, w))?;
        opt(w, self.labels_mask.as_ref(), |w, l| {
            l.emit(cta::LABELS_MASK, w)
        })?;
        opt(w, self.synproxy.as_ref(), |w, s| s.emit(cta::SYNPROXY, w))?;
        opt(w, self.filter.as_ref(), |w, f| f.emit(w))?;
        opt(w, self.status_mask, |w, s| {
            w.attr_u32_be(cta::STATUS_MASK, s.0)
        })?;
        opt(w, self.timestamp_event, |w, v| {
            w.attr_u64_be(cta::TIMESTAMP_EVENT, v)
        })?;
        self.unknown.emit_top_level(w)
    }

    /// The bytes [`ConntrackRepr::emit_attrs`] writes.
    pub fn attrs_len(&self) -> usize {
        fn n<T>(v: &Option<T>, f: impl FnOnce(&T) -> usize) -> usize {
            v.as_ref().map_or(0, f)
        }
        let u32_len = attr_len(4);
        sum(&[
            n(&self.orig, Tuple::buffer_len),
            n(&self.reply, Tuple::buffer_len),
            n(&self.status, |_| u32_len),
            n(&self.protoinfo, ProtoInfo::buffer_len),
            n(&self.helper, Helper::buffer_len),
            n(&self.nat_src, NatRange::buffer_len),
            n(&self.timeout, |_| u32_len),
            n(&self.mark, |_| u32_len),
            n(&self.counters_orig, Counters::buffer_len),
            n(&self.counters_reply, Counters::buffer_len),
            n(&self.use_count, |_| u32_len),
            n(&self.id, |_| u32_len),
            n(&self.nat_dst, NatRange::buffer_len),
            n(&self.master, Tuple::buffer_len),
            n(&self.seq_adj_orig, SeqAdj::buffer_len),
            n(&self.seq_adj_reply, SeqAdj::buffer_len),
            n(&self.secmark, |_| u32_len),
            n(&self.zone, |_| attr_len(2)),
            n(&self.secctx, SecCtx::buffer_len),
            n(&self.timestamp, Timestamp::buffer_len),
            n(&self.mark_mask, |_| u32_len),
            n(&self.labels, |_| attr_len(Labels::LEN)),
            n(&self.labels_mask, |_| attr_len(Labels::LEN)),
            n(&self.synproxy, Synproxy::buffer_len),
            n(&self.filter, FilterFlags::buffer_len),
            n(&self.status_mask, |_| u32_len),
            n(&self.timestamp_event, |_| attr_len(8)),
            self.unknown.top_level_len(),
        ])
    }

    /// The bytes of a whole message [`ConntrackRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        sum(&[NlMsgHeader::LEN, NfGenMsg::LEN, self.attrs_len()])
    }

    /// Writes a whole conntrack message carrying this entry: header (`kind`, `flags`,
    /// `seq`, port id 0), nfgenmsg (`family`, version 0), attributes.
    ///
    /// # Errors
    /// As [`ConntrackRepr::emit_attrs`]; the writer is left as it was.
    pub fn emit(
        &self,
        w: &mut Writer<'_>,
        kind: u16,
        flags: u16,
        seq: u32,
    ) -> Result<core::ops::Range<usize>> {
        let nfgen = NfGenMsg {
            family: self.family,
            version: NFNETLINK_V0,
            res_id: 0,
        };
        write_typed(w, kind, flags, seq, nfgen, |w| self.emit_attrs(w))
    }

    /// Whether the entry's status says it saw no reply yet (`[UNREPLIED]`).
    pub fn is_unreplied(&self) -> bool {
        self.status.is_some_and(|s| !s.contains(Status::SEEN_REPLY))
    }
}

impl<'a> TryFrom<&Conntrack<'a>> for ConntrackRepr {
    type Error = Error;

    fn try_from(view: &Conntrack<'a>) -> Result<Self> {
        ConntrackRepr::parse(view.nf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::{TcpInfo, TcpState};
    use crate::nl::Messages;
    use core::net::{IpAddr, Ipv4Addr};

    fn sample() -> ConntrackRepr {
        let a = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2));
        let b = IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8));
        let orig = Tuple::tcp(a, b, 40000, 443);
        ConntrackRepr {
            family: 2,
            orig: Some(orig),
            reply: Some(orig.inverted()),
            status: Some(Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED),
            protoinfo: Some(ProtoInfo::Tcp(TcpInfo {
                state: Some(TcpState::Established),
                ..TcpInfo::default()
            })),
            helper: Some(Helper::named("ftp").unwrap()),
            timeout: Some(431_999),
            mark: Some(7),
            zone: Some(3),
            labels: Some(Labels([1, 0, 0, 0x8000_0000])),
            ..ConntrackRepr::default()
        }
    }

    #[test]
    fn repr_round_trip_through_view() {
        let r = sample();
        let mut buf = [0xa5u8; 512];
        let mut w = Writer::new(&mut buf);
        let kind = msg_type(Subsystem::Ctnetlink, ct_msg::NEW);
        let range = r.emit(&mut w, kind, flags::MULTI, 5).unwrap();
        assert_eq!(range.len(), r.buffer_len());
        let msg = Messages::new(w.written()).next().unwrap().unwrap();
        let view = Conntrack::parse(msg).unwrap();
        assert_eq!(view.orig().unwrap(), r.orig);
        assert_eq!(view.timeout().unwrap(), Some(431_999));
        assert_eq!(view.helper_name().unwrap(), Some("ftp"));
        assert_eq!(view.labels().unwrap(), r.labels);
        assert_eq!(view.secctx().unwrap(), None);
        assert_eq!(view.event_kind(), Some(EventKind::Update));
        assert_eq!(ConntrackRepr::try_from(&view).unwrap(), r);
    }

    #[test]
    fn parse_into_replaces_everything() {
        let full = sample();
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf);
        let kind = msg_type(Subsystem::Ctnetlink, ct_msg::NEW);
        full.emit(&mut w, kind, flags::MULTI, 1).unwrap();
        let first = w.len();
        let small = ConntrackRepr {
            family: 10,
            mark: Some(3),
            ..ConntrackRepr::default()
        };
        small.emit(&mut w, kind, 0, 2).unwrap();
        let mut msgs = Messages::new(&buf[..first]).chain(Messages::new(&buf[first..]));
        let mut r = ConntrackRepr::default();
        fn nf(m: NlMsg<'_>) -> NfMsg<'_> {
            NfMsg::new_checked(m).unwrap()
        }
        r.parse_into(&nf(msgs.next().unwrap().unwrap())).unwrap();
        assert_eq!(r, full);
        // A second, smaller entry leaves nothing of the first behind.
        r.parse_into(&nf(msgs.next().unwrap().unwrap())).unwrap();
        assert_eq!(r, small);
        // Unknown attributes are emptied too.
        r.unknown.record(TOP, &Attr::new(99, &[1, 2]));
        r.parse_into(&nf(Messages::new(&buf[first..]).next().unwrap().unwrap()))
            .unwrap();
        assert!(r.unknown.is_empty());
        // Not a conntrack entry: refused, as by `parse`.
        let mut other = [0u8; 64];
        let mut w = Writer::new(&mut other);
        w.message(
            msg_type(Subsystem::Ctnetlink, ct_msg::GET_STATS),
            0,
            1,
            0,
            |w| w.raw(&[2, 0, 0, 0]),
        )
        .unwrap();
        let m = Messages::new(w.written()).next().unwrap().unwrap();
        assert!(r.parse_into(&nf(m)).is_err());
    }

    #[test]
    fn event_kinds() {
        let mut buf = [0u8; 64];
        for (msg, fl, kind) in [
            (ct_msg::NEW, flags::CREATE | flags::EXCL, EventKind::New),
            (ct_msg::NEW, 0, EventKind::Update),
            (ct_msg::DELETE, 0, EventKind::Destroy),
        ] {
            let mut w = Writer::new(&mut buf);
            ConntrackRepr::default()
                .emit(&mut w, msg_type(Subsystem::Ctnetlink, msg), fl, 1)
                .unwrap();
            let m = Messages::new(w.written()).next().unwrap().unwrap();
            assert_eq!(EventKind::of(&m), Some(kind));
        }
    }

    #[test]
    fn unknown_top_level_attributes_are_kept_and_written_back() {
        let mut buf = [0u8; 128];
        let mut w = Writer::new(&mut buf);
        w.message(0x100, 0, 1, 0, |w| {
            w.raw(&[2, 0, 0, 0])?;
            w.attr_u32_be(cta::MARK, 9)?;
            w.attr(200, &[1, 2, 3])?;
            w.attr_flag(cta::TIMESTAMP_EVENT_PAD)
        })
        .unwrap();
        let m = Messages::new(w.written()).next().unwrap().unwrap();
        let view = Conntrack::parse(m).unwrap();
        assert_eq!(view.unknown_count(), 1);
        assert_eq!(view.status().unwrap(), None);
        let r = ConntrackRepr::parse_msg(m).unwrap();
        assert_eq!(r.mark, Some(9));
        assert_eq!(r.unknown.kept.len(), 1);
        assert_eq!(&r.unknown.kept[0].payload[..], &[1, 2, 3]);
        let mut out = [0u8; 128];
        let mut w = Writer::new(&mut out);
        r.emit(&mut w, 0x100, 0, 1).unwrap();
        let again = Messages::new(w.written()).next().unwrap().unwrap();
        assert_eq!(ConntrackRepr::parse_msg(again).unwrap(), r);
    }

    #[test]
    fn other_messages_are_rejected() {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        w.message(
            msg_type(Subsystem::Ctnetlink, ct_msg::GET_STATS),
            0,
            1,
            0,
            |w| w.raw(&[2, 0, 0, 0]),
        )
        .unwrap();
        let m = Messages::new(w.written()).next().unwrap().unwrap();
        assert!(matches!(
            Conntrack::parse(m),
            Err(Error::UnexpectedMessage(_))
        ));
        assert!(ConntrackRepr::parse_msg(m).is_err());
    }
}
