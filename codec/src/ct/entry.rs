//! One conntrack entry: the zero-copy view [`Conntrack`] and the plain-data [`ConntrackRepr`].

use crate::ct::attrs::{self, cta};
use crate::ct::labels::Labels;
use crate::ct::misc::{Counters, Helper, NatRange, SecCtx, SeqAdj, Synproxy, Timestamp};
use crate::ct::protoinfo::ProtoInfo;
use crate::ct::status::Status;
use crate::ct::table::{self, attribute_table, AttrIndex};
use crate::ct::tuple::Tuple;
use crate::filter::FilterFlags;
use crate::nfnl::{ct_msg, msg_type, NfMsg, Subsystem};
use crate::nl::{flags, Attr, Attrs, NlMsg};
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

/// The slots of the view's index: `CTA_*` 1 to 27 (slot 0 unused).
const SLOTS: usize = cta::MAX as usize + 1;

const _: () = assert!(
    table::last(ConntrackRepr::ATTRIBUTES) == cta::MAX,
    "the table ends with the highest attribute the view indexes"
);

/// Refuses every message but a conntrack `NEW` or `DELETE`.
fn check_kind(nf: &NfMsg<'_>) -> Result<()> {
    if nf.subsystem() != Subsystem::Ctnetlink
        || !matches!(nf.msg_num(), ct_msg::NEW | ct_msg::DELETE)
    {
        return Err(Error::UnexpectedMessage("not a conntrack entry"));
    }
    Ok(())
}

/// A zero-copy view of one conntrack message (a dump entry, a GET reply or an event).
///
/// Making the view walks the top-level attributes once, checking their framing and noting
/// where each one is; the getters decode on demand from the borrowed bytes. A getter
/// returns `Ok(None)` when the attribute is absent and `Err` when it is malformed; no
/// getter panics. Of repeated attributes, the getters read the last (as the kernel and
/// [`ConntrackRepr::parse`] do).
#[derive(Debug, Clone, Copy)]
pub struct Conntrack<'a> {
    nf: NfMsg<'a>,
    attrs: &'a [u8],
    index: AttrIndex<SLOTS>,
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
            self.index.unknown()
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
        check_kind(&nf)?;
        let attrs = nf.attr_bytes();
        let index = AttrIndex::build(attrs, Some(cta::TIMESTAMP_EVENT_PAD))?;
        Ok(Conntrack { nf, attrs, index })
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
        self.index.get(self.attrs, kind)
    }

    /// Every top-level attribute, in wire order.
    #[inline]
    pub fn attrs(&self) -> Attrs<'a> {
        Attrs::new(self.attrs)
    }

    /// How many top-level attributes have types this codec does not know.
    #[inline]
    pub const fn unknown_count(&self) -> u16 {
        self.index.unknown()
    }

    /// The top-level attributes this codec does not know.
    #[inline]
    pub fn unknown(&self) -> impl Iterator<Item = Attr<'a>> + 'a {
        Attrs::new(self.attrs)
            .filter_map(|a| a.ok())
            .filter(|a| a.kind() == 0 || a.kind() > cta::MAX)
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
        help.nested()
            .find_last(attrs::help::NAME)?
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
        Ok(help
            .nested()
            .find_last(attrs::help::INFO)?
            .map(|a| a.payload()))
    }
}

attribute_table! {
    /// One conntrack entry as plain data: every attribute ctnetlink defines, one line each
    /// in the table that also makes the getters of the view [`Conntrack`].
    ///
    /// Strings and the helper's data have fixed capacities (see [`Helper`], [`SecCtx`]);
    /// attributes this codec does not know are kept in [`ConntrackRepr::unknown`] (the
    /// top-level ones are written back by [`ConntrackRepr::emit`]).
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    #[cfg_attr(feature = "defmt", derive(defmt::Format))]
    pub struct ConntrackRepr for Conntrack, checked by check_kind, pad cta::TIMESTAMP_EVENT_PAD {
        /// The original-direction tuple (`CTA_TUPLE_ORIG`).
        orig: Tuple = cta::TUPLE_ORIG,
        /// The reply-direction tuple (`CTA_TUPLE_REPLY`).
        reply: Tuple = cta::TUPLE_REPLY,
        /// The status bits (`CTA_STATUS`).
        status: Status = cta::STATUS,
        /// The protocol state (`CTA_PROTOINFO`; absent if it holds no protocol this codec
        /// knows).
        protoinfo: ProtoInfo = cta::PROTOINFO,
        /// The helper (`CTA_HELP`).
        helper: Helper = cta::HELP,
        /// The source NAT range (`CTA_NAT_SRC`).
        nat_src: NatRange = cta::NAT_SRC,
        /// Seconds until the entry expires (`CTA_TIMEOUT`).
        timeout: u32 = cta::TIMEOUT,
        /// The mark (`CTA_MARK`).
        mark: u32 = cta::MARK,
        /// Original-direction counters (`CTA_COUNTERS_ORIG`).
        counters_orig: Counters = cta::COUNTERS_ORIG,
        /// Reply-direction counters (`CTA_COUNTERS_REPLY`).
        counters_reply: Counters = cta::COUNTERS_REPLY,
        /// The reference count (`CTA_USE`).
        use_count: u32 = cta::USE,
        /// The entry's id (`CTA_ID`).
        id: u32 = cta::ID,
        /// The destination NAT range (`CTA_NAT_DST`).
        nat_dst: NatRange = cta::NAT_DST,
        /// The master's tuple, for entries created by an expectation (`CTA_TUPLE_MASTER`).
        master: Tuple = cta::TUPLE_MASTER,
        /// Original-direction sequence adjustment (`CTA_SEQ_ADJ_ORIG`).
        seq_adj_orig: SeqAdj = cta::SEQ_ADJ_ORIG,
        /// Reply-direction sequence adjustment (`CTA_SEQ_ADJ_REPLY`).
        seq_adj_reply: SeqAdj = cta::SEQ_ADJ_REPLY,
        /// The security mark (`CTA_SECMARK`).
        secmark: u32 = cta::SECMARK,
        /// The zone (`CTA_ZONE`).
        zone: u16 = cta::ZONE,
        /// The security context (`CTA_SECCTX`; the view borrows its name).
        secctx: SecCtx as &'a str = cta::SECCTX,
        /// Start and stop timestamps (`CTA_TIMESTAMP`).
        timestamp: Timestamp = cta::TIMESTAMP,
        /// The mark mask, in requests (`CTA_MARK_MASK`).
        mark_mask: u32 = cta::MARK_MASK,
        /// The label bitmap (`CTA_LABELS`).
        labels: Labels = cta::LABELS,
        /// The label mask, in requests (`CTA_LABELS_MASK`).
        labels_mask: Labels = cta::LABELS_MASK,
        /// Synproxy state (`CTA_SYNPROXY`).
        synproxy: Synproxy = cta::SYNPROXY,
        /// The dump filter flags, in requests (`CTA_FILTER`).
        filter: FilterFlags = cta::FILTER,
        /// The status mask, in requests (`CTA_STATUS_MASK`).
        status_mask: Status = cta::STATUS_MASK,
        /// The event's time in nanoseconds since the epoch, on events from Linux 6.14 on
        /// (`CTA_TIMESTAMP_EVENT`).
        timestamp_event: u64 = cta::TIMESTAMP_EVENT,
    }
}

impl ConntrackRepr {
    /// An entry to create, as if its flow had seen traffic both ways: `orig` and its
    /// inverse as the reply tuple, the family of `orig`'s addresses (0 if it has none),
    /// `SEEN_REPLY | ASSURED`, the given timeout in seconds and, for TCP, the
    /// `ESTABLISHED` state. Other fields (mark, zone, NAT, helper) are set with struct
    /// update syntax.
    ///
    /// ```
    /// use core::net::Ipv4Addr;
    /// use conntrack_codec::ct::{ConntrackRepr, ProtoInfo, Status, TcpState, Tuple};
    ///
    /// let orig = Tuple::tcp(Ipv4Addr::new(10, 0, 0, 1).into(), Ipv4Addr::new(10, 0, 0, 2).into(), 1234, 80);
    /// let entry = ConntrackRepr { mark: Some(7), ..ConntrackRepr::replied(orig, 120) };
    /// assert_eq!(entry.family, 2);
    /// assert_eq!(entry.reply, Some(orig.inverted()));
    /// assert_eq!(entry.status, Some(Status::SEEN_REPLY | Status::ASSURED));
    /// assert!(matches!(entry.protoinfo, Some(ProtoInfo::Tcp(t)) if t.state == Some(TcpState::Established)));
    /// ```
    pub fn replied(orig: Tuple, timeout: u32) -> Self {
        let tcp = orig.proto == Some(crate::ct::l4proto::TCP);
        ConntrackRepr {
            family: orig.family().unwrap_or(0),
            orig: Some(orig),
            reply: Some(orig.inverted()),
            status: Some(Status::SEEN_REPLY | Status::ASSURED),
            timeout: Some(timeout),
            protoinfo: tcp.then_some(ProtoInfo::Tcp(crate::ct::TcpInfo {
                state: Some(crate::ct::TcpState::Established),
                ..crate::ct::TcpInfo::default()
            })),
            ..ConntrackRepr::default()
        }
    }

    /// Whether the entry's status says it saw no reply yet (`[UNREPLIED]`).
    pub fn is_unreplied(&self) -> bool {
        self.status.is_some_and(|s| !s.contains(Status::SEEN_REPLY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::unknown::TOP;
    use crate::ct::{TcpInfo, TcpState};
    use crate::nl::{Messages, Writer};
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
