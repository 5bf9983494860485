//! Builders for every conntrack request: each writes one complete netlink message (header,
//! nfgenmsg, attributes) through a [`Writer`] and returns its byte range.
//!
//! Every request carries `NLM_F_REQUEST`; those that change the table or get one entry carry
//! `NLM_F_ACK` so the kernel answers each with an acknowledgement or an error. The port id is
//! 0 (the kernel fills in the sender).
//!
//! ```
//! use core::net::{IpAddr, Ipv4Addr};
//! use conntrack_codec::ct::{request, ConntrackRepr, Status, Tuple};
//! use conntrack_codec::nl::{Messages, Writer};
//!
//! let orig = Tuple::tcp(Ipv4Addr::new(10, 0, 0, 1).into(), Ipv4Addr::new(10, 0, 0, 2).into(), 1234, 80);
//! let entry = ConntrackRepr {
//!     family: 2,
//!     orig: Some(orig),
//!     reply: Some(orig.inverted()),
//!     status: Some(Status::SEEN_REPLY | Status::ASSURED),
//!     timeout: Some(120),
//!     ..ConntrackRepr::default()
//! };
//! let mut buf = [0u8; 256];
//! let mut w = Writer::new(&mut buf);
//! request::create(&mut w, 1, &entry)?;
//! let msg = Messages::new(w.written()).next().unwrap()?;
//! let back = ConntrackRepr::parse_msg(msg)?;
//! assert_eq!(back.orig, entry.orig);
//! // The builder adds CONFIRMED, without which the kernel refuses a create (EBUSY).
//! assert!(back.status.unwrap().contains(Status::CONFIRMED));
//! # Ok::<(), conntrack_codec::Error>(())
//! ```

use core::net::IpAddr;
use core::ops::Range;

use crate::ct::attrs::cta;
use crate::ct::entry::{Conntrack, ConntrackRepr};
use crate::ct::status::Status;
use crate::ct::tuple::{l4proto, require_complete, Tuple};
use crate::filter::dump::{icmp_type_tracked, icmpv6_type_tracked, impossible};
use crate::filter::DumpFilter;
use crate::nfnl::{ct_msg, write_message, NfGenMsg, Subsystem, NFNETLINK_V0, NFNETLINK_V1};
use crate::nl::{flags, opt, Writer};
use crate::{Error, Result};

/// Writes one ctnetlink message with nfgenmsg `family`/`version` and the attributes `body`
/// writes.
pub(crate) fn ct_message(
    w: &mut Writer<'_>,
    msg: u8,
    fl: u16,
    seq: u32,
    family: u8,
    version: u8,
    body: impl FnOnce(&mut Writer<'_>) -> Result<()>,
) -> Result<Range<usize>> {
    let nfgen = NfGenMsg {
        family,
        version,
        res_id: 0,
    };
    write_message(w, Subsystem::Ctnetlink, msg, fl, seq, nfgen, body)
}

fn entry_family(entry: &ConntrackRepr) -> u8 {
    if entry.family != 0 {
        return entry.family;
    }
    entry
        .orig
        .as_ref()
        .or(entry.reply.as_ref())
        .and_then(Tuple::family)
        .unwrap_or(0)
}

fn write_entry(
    w: &mut Writer<'_>,
    seq: u32,
    entry: &ConntrackRepr,
    fl: u16,
    creating: bool,
) -> Result<Range<usize>> {
    let family = entry_family(entry);
    ct_message(w, ct_msg::NEW, fl, seq, family, NFNETLINK_V0, |w| {
        if creating && entry.status.is_some() {
            // The kernel answers EBUSY to a create whose status lacks CONFIRMED.
            let mut e = entry.clone();
            e.status = e.status.map(|s| s | Status::CONFIRMED);
            e.emit_attrs(w)
        } else {
            entry.emit_attrs(w)
        }
    })
}

/// Creates an entry that must not exist yet (`CT_NEW` with `CREATE|EXCL|ACK`).
///
/// The entry needs both tuples and a timeout (the kernel refuses a create without them); a
/// given status gets `CONFIRMED` added, which the kernel also requires of a create. The
/// family comes from `entry.family`, or from the tuples' addresses.
///
/// # Errors
/// [`Error::MissingAttribute`] without both complete tuples or a timeout;
/// [`Error::BufferTooSmall`].
pub fn create(w: &mut Writer<'_>, seq: u32, entry: &ConntrackRepr) -> Result<Range<usize>> {
    require_both_tuples(entry)?;
    if entry.timeout.is_none() {
        return Err(Error::MissingAttribute("CTA_TIMEOUT"));
    }
    let fl = flags::REQUEST | flags::ACK | flags::CREATE | flags::EXCL;
    write_entry(w, seq, entry, fl, true)
}

/// Updates an existing entry (`CT_NEW` without `CREATE`): mark, labels, timeout, status,
/// helper, protocol state... The entry is found by its original tuple (or reply tuple) and
/// zone.
///
/// # Errors
/// [`Error::MissingAttribute`] without a tuple; [`Error::BufferTooSmall`].
pub fn update(w: &mut Writer<'_>, seq: u32, entry: &ConntrackRepr) -> Result<Range<usize>> {
    if entry.orig.is_none() && entry.reply.is_none() {
        return Err(Error::MissingAttribute("CTA_TUPLE_ORIG or CTA_TUPLE_REPLY"));
    }
    write_entry(w, seq, entry, flags::REQUEST | flags::ACK, false)
}

/// Creates the entry, or updates it if it exists (`CT_NEW` with `CREATE|ACK`).
///
/// # Errors
/// [`Error::MissingAttribute`] without both complete tuples; [`Error::BufferTooSmall`].
pub fn create_or_update(
    w: &mut Writer<'_>,
    seq: u32,
    entry: &ConntrackRepr,
) -> Result<Range<usize>> {
    require_both_tuples(entry)?;
    let fl = flags::REQUEST | flags::ACK | flags::CREATE;
    write_entry(w, seq, entry, fl, true)
}

fn require_both_tuples(entry: &ConntrackRepr) -> Result<()> {
    let orig = entry
        .orig
        .as_ref()
        .ok_or(Error::MissingAttribute("CTA_TUPLE_ORIG"))?;
    let reply = entry
        .reply
        .as_ref()
        .ok_or(Error::MissingAttribute("CTA_TUPLE_REPLY"))?;
    require_complete(orig, "CTA_TUPLE_ORIG addresses and protocol")?;
    require_complete(reply, "CTA_TUPLE_REPLY addresses and protocol")
}

/// Which entry a get or delete is about: its original tuple (or its reply tuple), its zone,
/// and optionally its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Key {
    /// The original tuple; if absent, `reply` is used.
    pub orig: Option<Tuple>,
    /// The reply tuple.
    pub reply: Option<Tuple>,
    /// The zone (an entry in zone 7 is not found without it).
    pub zone: Option<u16>,
    /// The id: the kernel then answers ENOENT unless the entry found has this id.
    pub id: Option<u32>,
}

impl Key {
    /// The entry with original tuple `orig`, in zone 0.
    pub fn orig(orig: Tuple) -> Self {
        Key {
            orig: Some(orig),
            ..Key::default()
        }
    }

    /// The same key in `zone`.
    pub fn in_zone(mut self, zone: u16) -> Self {
        self.zone = Some(zone);
        self
    }

    /// The same key, also requiring the entry's id.
    pub fn with_id(mut self, id: u32) -> Self {
        self.id = Some(id);
        self
    }

    /// The same key without an id: it then finds whatever entry has the tuple now.
    pub fn without_id(mut self) -> Self {
        self.id = None;
        self
    }

    /// The key of an entry as dumped, fetched or received in an event: its original tuple
    /// (or its reply tuple if it has none), its zone — `CTA_ZONE`, or the `CTA_TUPLE_ZONE`
    /// inside the tuple for an entry zoned in one direction only, which the tuple keeps —
    /// and its id, so that a delete or get finds this entry and not a later one with the
    /// same tuple ([`without_id`](Key::without_id) drops it).
    ///
    /// ```
    /// use core::net::Ipv4Addr;
    /// use conntrack_codec::ct::request::{self, Key};
    /// use conntrack_codec::ct::{Conntrack, ConntrackRepr, Tuple};
    /// use conntrack_codec::nl::{Messages, Writer};
    ///
    /// let orig = Tuple::udp(Ipv4Addr::new(10, 0, 0, 1).into(), Ipv4Addr::new(10, 0, 0, 2).into(), 5000, 53);
    /// let entry = ConntrackRepr {
    ///     orig: Some(orig),
    ///     reply: Some(orig.inverted()),
    ///     zone: Some(7),
    ///     id: Some(42),
    ///     ..ConntrackRepr::default()
    /// };
    /// let key = Key::from_repr(&entry)?;
    /// assert_eq!(key, Key::orig(orig).in_zone(7).with_id(42));
    ///
    /// // The same from the zero-copy view of the entry's message.
    /// let mut buf = [0u8; 256];
    /// let mut w = Writer::new(&mut buf);
    /// request::update(&mut w, 1, &entry)?;
    /// let view = Conntrack::parse(Messages::new(w.written()).next().unwrap()?)?;
    /// assert_eq!(Key::from_view(&view)?, key);
    /// # Ok::<(), conntrack_codec::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::MissingAttribute`] if the entry has no complete tuple (addresses and
    /// protocol); the errors of a malformed attribute.
    pub fn from_view(entry: &Conntrack<'_>) -> Result<Key> {
        Key::from_parts(entry.orig()?, entry.reply()?, entry.zone()?, entry.id()?)
    }

    /// The key of an entry held as plain data; see [`from_view`](Key::from_view).
    ///
    /// # Errors
    /// [`Error::MissingAttribute`] if the entry has no complete tuple.
    pub fn from_repr(entry: &ConntrackRepr) -> Result<Key> {
        Key::from_parts(entry.orig, entry.reply, entry.zone, entry.id)
    }

    fn from_parts(
        orig: Option<Tuple>,
        reply: Option<Tuple>,
        zone: Option<u16>,
        id: Option<u32>,
    ) -> Result<Key> {
        let (orig, reply) = match (orig, reply) {
            (Some(o), _) => (Some(o), None),
            (None, Some(r)) => (None, Some(r)),
            (None, None) => {
                return Err(Error::MissingAttribute("CTA_TUPLE_ORIG or CTA_TUPLE_REPLY"))
            }
        };
        if let Some(t) = orig.as_ref().or(reply.as_ref()) {
            require_complete(t, "tuple addresses and protocol")?;
        }
        Ok(Key {
            orig,
            reply,
            zone,
            id,
        })
    }

    /// Checks that the key can find an entry, as [`get`] and [`delete`] do before writing
    /// anything.
    ///
    /// # Errors
    /// [`Error::MissingAttribute`] without a tuple, or with a tuple lacking an address or
    /// the protocol; [`Error::ImpossibleRequest`] for addresses of two families, ports
    /// missing from a protocol that has them (TCP, UDP, UDP-Lite, SCTP, DCCP; GRE keys),
    /// an ICMP or ICMPv6 tuple without its type, code and id or with a type the kernel does
    /// not track (it refuses them with `EINVAL`), or ICMP with IPv6 addresses (ICMPv6 with
    /// IPv4).
    pub fn check(&self) -> Result<()> {
        let (t, _) = self.tuple()?;
        require_complete(t, "tuple addresses and protocol")?;
        let v6 = matches!(t.src, Some(IpAddr::V6(_)));
        if v6 != matches!(t.dst, Some(IpAddr::V6(_))) {
            return Err(impossible("key: addresses of two families"));
        }
        let proto = t.proto.unwrap_or(0);
        if l4proto::has_ports(proto) && (t.src_port.is_none() || t.dst_port.is_none()) {
            return Err(impossible("key: a protocol with ports needs both ports"));
        }
        let icmp =
            |ty: Option<u8>, code: Option<u8>, id: Option<u16>, tracked: fn(u8) -> bool| match (
                ty, code, id,
            ) {
                (Some(ty), Some(_), Some(_)) if tracked(ty) => Ok(()),
                (Some(_), Some(_), Some(_)) => Err(impossible(
                    "key: an ICMP type the kernel does not track (not a request or reply)",
                )),
                _ => Err(impossible("key: ICMP needs its type, code and id")),
            };
        match proto {
            l4proto::ICMP if v6 => Err(impossible("key: ICMP with IPv6 addresses")),
            l4proto::ICMPV6 if !v6 => Err(impossible("key: ICMPv6 with IPv4 addresses")),
            l4proto::ICMP => icmp(t.icmp_type, t.icmp_code, t.icmp_id, icmp_type_tracked),
            l4proto::ICMPV6 => icmp(
                t.icmpv6_type,
                t.icmpv6_code,
                t.icmpv6_id,
                icmpv6_type_tracked,
            ),
            _ => Ok(()),
        }
    }

    /// The tuple the key finds the entry by, and its attribute type.
    fn tuple(&self) -> Result<(&Tuple, u16)> {
        self.orig
            .as_ref()
            .map(|t| (t, cta::TUPLE_ORIG))
            .or(self.reply.as_ref().map(|t| (t, cta::TUPLE_REPLY)))
            .ok_or(Error::MissingAttribute("CTA_TUPLE_ORIG or CTA_TUPLE_REPLY"))
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<u8> {
        let tuple = self.tuple()?;
        tuple.0.emit(tuple.1, w)?;
        opt(w, self.zone, |w, z| w.attr_u16_be(cta::ZONE, z))?;
        opt(w, self.id, |w, id| w.attr_u32_be(cta::ID, id))?;
        tuple
            .0
            .family()
            .ok_or(Error::MissingAttribute("tuple addresses"))
    }
}

fn keyed(w: &mut Writer<'_>, seq: u32, msg: u8, key: &Key) -> Result<Range<usize>> {
    key.check()?;
    let family = key
        .orig
        .as_ref()
        .or(key.reply.as_ref())
        .and_then(Tuple::family)
        .ok_or(Error::MissingAttribute("CTA_TUPLE_ORIG or CTA_TUPLE_REPLY"))?;
    ct_message(
        w,
        msg,
        flags::REQUEST | flags::ACK,
        seq,
        family,
        NFNETLINK_V0,
        |w| key.emit(w).map(|_| ()),
    )
}

/// Gets one entry (`CT_GET`); the kernel answers with the entry, then an ACK.
///
/// # Errors
/// [`Key::check`]'s errors; [`Error::BufferTooSmall`].
pub fn get(w: &mut Writer<'_>, seq: u32, key: &Key) -> Result<Range<usize>> {
    keyed(w, seq, ct_msg::GET, key)
}

/// Gets one entry and zeroes its counters (`CT_GET_CTRZERO` without `NLM_F_DUMP`): the
/// kernel answers with the entry as it was before zeroing, then an ACK.
///
/// # Errors
/// [`Key::check`]'s errors; [`Error::BufferTooSmall`].
pub fn get_zero_counters(w: &mut Writer<'_>, seq: u32, key: &Key) -> Result<Range<usize>> {
    keyed(w, seq, ct_msg::GET_CTRZERO, key)
}

/// Deletes one entry (`CT_DELETE` with a tuple, its zone, and optionally its id).
///
/// # Errors
/// [`Key::check`]'s errors; [`Error::BufferTooSmall`].
pub fn delete(w: &mut Writer<'_>, seq: u32, key: &Key) -> Result<Range<usize>> {
    keyed(w, seq, ct_msg::DELETE, key)
}

/// Flushes the table (`CT_DELETE` without a tuple): everything, one family (sent with
/// nfgenmsg version 1, which the kernel needs to flush only that family), or the entries
/// the filter selects.
///
/// This writes the filter as it is. Which kernels flush exactly what a filter selects is
/// in [`crate::filter::dump`]: the kernel compares IPv6 addresses inverted, ignores fields
/// it does not know (and then deletes more than asked), and flushes by tuple only since
/// 6.11; [`DumpFilter::kernel_flush_since`] says whether this request is safe.
/// `conntrack-io`'s `Socket::flush` makes that choice.
///
/// # Errors
/// [`Error::ImpossibleRequest`] ([`DumpFilter::check`]); [`Error::BufferTooSmall`].
pub fn flush(w: &mut Writer<'_>, seq: u32, filter: &DumpFilter) -> Result<Range<usize>> {
    filter.check()?;
    let version = if filter.family != 0 {
        NFNETLINK_V1
    } else {
        NFNETLINK_V0
    };
    ct_message(
        w,
        ct_msg::DELETE,
        flags::REQUEST | flags::ACK,
        seq,
        filter.family,
        version,
        |w| filter.emit_attrs(w),
    )
}

fn dump_msg(w: &mut Writer<'_>, seq: u32, msg: u8, filter: &DumpFilter) -> Result<Range<usize>> {
    filter.check()?;
    let version = if filter.family != 0 {
        NFNETLINK_V1
    } else {
        NFNETLINK_V0
    };
    ct_message(
        w,
        msg,
        flags::REQUEST | flags::DUMP,
        seq,
        filter.family,
        version,
        |w| filter.emit_attrs(w),
    )
}

/// Dumps the table (`CT_GET` with `NLM_F_DUMP`), filtered in the kernel by `filter` as it
/// is written (the kernel compares IPv6 addresses inverted: send
/// [`DumpFilter::kernel_filter`] and check each entry with [`DumpFilter::matches`], as
/// `conntrack-io`'s `Socket::list` does).
///
/// # Errors
/// [`Error::ImpossibleRequest`] ([`DumpFilter::check`]); [`Error::BufferTooSmall`].
pub fn dump(w: &mut Writer<'_>, seq: u32, filter: &DumpFilter) -> Result<Range<usize>> {
    dump_msg(w, seq, ct_msg::GET, filter)
}

/// Dumps the table and zeroes the counters of every entry dumped (`CT_GET_CTRZERO`).
///
/// # Errors
/// [`Error::ImpossibleRequest`] ([`DumpFilter::check`]); [`Error::BufferTooSmall`].
pub fn dump_zero_counters(
    w: &mut Writer<'_>,
    seq: u32,
    filter: &DumpFilter,
) -> Result<Range<usize>> {
    dump_msg(w, seq, ct_msg::GET_CTRZERO, filter)
}

/// Dumps the dying list (entries being destroyed, `CT_GET_DYING`).
///
/// # Errors
/// [`Error::BufferTooSmall`].
pub fn dump_dying(w: &mut Writer<'_>, seq: u32) -> Result<Range<usize>> {
    dump_msg(w, seq, ct_msg::GET_DYING, &DumpFilter::default())
}

/// Dumps the unconfirmed list (`CT_GET_UNCONFIRMED`).
///
/// # Errors
/// [`Error::BufferTooSmall`].
pub fn dump_unconfirmed(w: &mut Writer<'_>, seq: u32) -> Result<Range<usize>> {
    dump_msg(w, seq, ct_msg::GET_UNCONFIRMED, &DumpFilter::default())
}

/// Asks for per-CPU statistics (`CT_GET_STATS_CPU`, a dump of one message per CPU).
///
/// # Errors
/// [`Error::BufferTooSmall`].
pub fn stats_cpu(w: &mut Writer<'_>, seq: u32) -> Result<Range<usize>> {
    dump_msg(w, seq, ct_msg::GET_STATS_CPU, &DumpFilter::default())
}

/// Asks for global statistics (`CT_GET_STATS`: one reply, then an ACK).
///
/// # Errors
/// [`Error::BufferTooSmall`].
pub fn stats_global(w: &mut Writer<'_>, seq: u32) -> Result<Range<usize>> {
    ct_message(
        w,
        ct_msg::GET_STATS,
        flags::REQUEST | flags::ACK,
        seq,
        0,
        NFNETLINK_V0,
        |_| Ok(()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::filter_flags;
    use crate::nfnl::NfMsg;
    use crate::nl::{Messages, NlMsg};
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn tcp() -> Tuple {
        Tuple::tcp(
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            1111,
            80,
        )
    }

    fn one(buf: &[u8]) -> NlMsg<'_> {
        let mut it = Messages::new(buf);
        let m = it.next().unwrap().unwrap();
        assert!(it.next().is_none());
        m
    }

    #[test]
    fn create_sets_flags_family_and_confirmed() {
        let e = ConntrackRepr {
            orig: Some(tcp()),
            reply: Some(tcp().inverted()),
            status: Some(Status::ASSURED),
            timeout: Some(30),
            ..ConntrackRepr::default()
        };
        let mut buf = [0xa5u8; 256];
        let mut w = Writer::new(&mut buf);
        create(&mut w, 9, &e).unwrap();
        let m = one(w.written());
        assert_eq!(m.seq(), 9);
        assert_eq!(
            m.flags(),
            flags::REQUEST | flags::ACK | flags::CREATE | flags::EXCL
        );
        let v = Conntrack::parse(m).unwrap();
        assert_eq!(v.family(), 2);
        assert_eq!(
            v.status().unwrap(),
            Some(Status::ASSURED | Status::CONFIRMED)
        );

        let mut w = Writer::new(&mut buf);
        update(&mut w, 10, &e).unwrap();
        let m = one(w.written());
        assert_eq!(m.flags(), flags::REQUEST | flags::ACK);
        assert_eq!(
            Conntrack::parse(m).unwrap().status().unwrap(),
            Some(Status::ASSURED)
        );
    }

    #[test]
    fn create_needs_both_tuples() {
        let mut buf = [0u8; 256];
        let mut w = Writer::new(&mut buf);
        let e = ConntrackRepr {
            orig: Some(tcp()),
            ..ConntrackRepr::default()
        };
        assert_eq!(
            create(&mut w, 1, &e),
            Err(Error::MissingAttribute("CTA_TUPLE_REPLY"))
        );
        assert!(w.is_empty());
    }

    #[test]
    fn delete_with_zone_and_id() {
        let mut buf = [0u8; 256];
        let mut w = Writer::new(&mut buf);
        delete(&mut w, 3, &Key::orig(tcp()).in_zone(7).with_id(99)).unwrap();
        let m = one(w.written());
        let v = Conntrack::parse(m).unwrap();
        assert_eq!(v.orig().unwrap(), Some(tcp()));
        assert_eq!(v.zone().unwrap(), Some(7));
        assert_eq!(v.id().unwrap(), Some(99));
        assert_eq!(v.event_kind(), Some(crate::ct::EventKind::Destroy));
    }

    #[test]
    fn impossible_keys_are_refused_before_writing() {
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let icmp = |ty| {
            Key::orig(Tuple {
                src: Some(v4),
                dst: Some(v4),
                proto: Some(l4proto::ICMP),
                icmp_type: Some(ty),
                icmp_code: Some(0),
                icmp_id: Some(1),
                ..Tuple::default()
            })
        };
        let bad = [
            Key::default(),
            Key::orig(Tuple {
                src: Some(v4),
                proto: Some(6),
                ..Tuple::default()
            }),
            Key::orig(Tuple::udp(v4, v6, 1, 2)),
            Key::orig(Tuple {
                src_port: None,
                ..Tuple::tcp(v4, v4, 1, 2)
            }),
            Key::orig(Tuple::generic(l4proto::ICMP, v4, v4)),
            icmp(3),
            Key::orig(Tuple::generic(l4proto::ICMP, v6, v6)),
            Key::orig(Tuple::generic(l4proto::ICMPV6, v4, v4)),
        ];
        for key in bad {
            let mut buf = [0u8; 256];
            let mut w = Writer::new(&mut buf);
            let e = delete(&mut w, 1, &key).unwrap_err();
            assert!(
                matches!(e, Error::ImpossibleRequest(_) | Error::MissingAttribute(_)),
                "{key:?}: {e:?}"
            );
            assert!(w.is_empty());
            assert_eq!(key.check(), Err(e));
        }
        for good in [
            icmp(8),
            Key::orig(Tuple::generic(l4proto::GRE + 1, v6, v6)),
            Key {
                reply: Some(tcp()),
                ..Key::default()
            },
        ] {
            assert_eq!(good.check(), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn keys_of_entries_keep_zone_and_id() {
        let e = ConntrackRepr {
            orig: Some(tcp().with_zone(4)),
            reply: Some(tcp().inverted()),
            id: Some(9),
            ..ConntrackRepr::default()
        };
        let k = Key::from_repr(&e).unwrap();
        assert_eq!(k.orig, Some(tcp().with_zone(4)));
        assert_eq!((k.reply, k.zone, k.id), (None, None, Some(9)));
        assert_eq!(k.without_id().id, None);
        let reply_only = ConntrackRepr {
            orig: None,
            zone: Some(3),
            ..e.clone()
        };
        let k = Key::from_repr(&reply_only).unwrap();
        assert_eq!(
            (k.orig, k.reply, k.zone),
            (None, Some(tcp().inverted()), Some(3))
        );
        assert!(Key::from_repr(&ConntrackRepr::default()).is_err());
    }

    #[test]
    fn impossible_filters_write_nothing() {
        let f = DumpFilter::ipv4().with_orig(Tuple {
            dst_port: Some(1),
            ..Tuple::default()
        });
        let mut buf = [0u8; 256];
        let mut w = Writer::new(&mut buf);
        assert!(matches!(
            dump(&mut w, 1, &f),
            Err(Error::ImpossibleRequest(_))
        ));
        assert!(matches!(
            flush(&mut w, 1, &f),
            Err(Error::ImpossibleRequest(_))
        ));
        assert!(matches!(
            dump_zero_counters(&mut w, 1, &f),
            Err(Error::ImpossibleRequest(_))
        ));
        assert!(w.is_empty());
    }

    #[test]
    fn flush_of_one_family_uses_version_1() {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        flush(&mut w, 1, &DumpFilter::family(10)).unwrap();
        let nf = NfMsg::new_checked(one(w.written())).unwrap();
        assert_eq!(nf.nfgen().version, 1);
        assert_eq!(nf.nfgen().family, 10);
        assert!(nf.attr_bytes().is_empty());

        let mut w = Writer::new(&mut buf);
        flush(&mut w, 1, &DumpFilter::default()).unwrap();
        let nf = NfMsg::new_checked(one(w.written())).unwrap();
        assert_eq!(nf.nfgen().version, 0);
    }

    #[test]
    fn filtered_dump_carries_every_filter() {
        let t = Tuple {
            src: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            proto: Some(6),
            ..Tuple::default()
        };
        let f = DumpFilter {
            family: 10,
            mark: Some((1, 0xff)),
            status: Some((Status::ASSURED, Status::ASSURED)),
            zone: Some(4),
            orig: Some((t, filter_flags::IP_SRC | filter_flags::PROTO_NUM)),
            reply: None,
        };
        let mut buf = [0u8; 256];
        let mut w = Writer::new(&mut buf);
        dump(&mut w, 1, &f).unwrap();
        let m = one(w.written());
        assert_eq!(m.flags(), flags::REQUEST | flags::DUMP);
        let r = ConntrackRepr::parse_attrs(10, &m.payload()[4..]).unwrap();
        assert_eq!(r.mark, Some(1));
        assert_eq!(r.mark_mask, Some(0xff));
        assert_eq!(r.status_mask, Some(Status::ASSURED));
        assert_eq!(r.zone, Some(4));
        assert_eq!(r.orig, Some(t));
        let filter = r.filter.unwrap();
        assert_eq!(
            filter.orig,
            Some(filter_flags::IP_SRC | filter_flags::PROTO_NUM)
        );
        assert_eq!(filter.reply, None);
    }

    #[test]
    fn every_builder_fails_cleanly_when_short() {
        let e = ConntrackRepr {
            orig: Some(tcp()),
            reply: Some(tcp().inverted()),
            mark: Some(1),
            timeout: Some(30),
            ..ConntrackRepr::default()
        };
        let key = Key::orig(tcp()).in_zone(1);
        let filter = DumpFilter {
            family: 2,
            mark: Some((1, 1)),
            ..DumpFilter::default()
        };
        type Build<'a> = &'a dyn Fn(&mut Writer<'_>) -> Result<Range<usize>>;
        let builders: [Build<'_>; 11] = [
            &|w| create(w, 1, &e),
            &|w| update(w, 1, &e),
            &|w| create_or_update(w, 1, &e),
            &|w| get(w, 1, &key),
            &|w| delete(w, 1, &key),
            &|w| flush(w, 1, &filter),
            &|w| dump(w, 1, &filter),
            &|w| dump_zero_counters(w, 1, &filter),
            &|w| dump_dying(w, 1),
            &|w| stats_cpu(w, 1),
            &|w| stats_global(w, 1),
        ];
        for b in builders {
            let mut full = [0u8; 512];
            let need = b(&mut Writer::new(&mut full)).unwrap().end;
            for size in 0..need {
                let mut small = [0u8; 512];
                let mut w = Writer::new(&mut small[..size]);
                assert_eq!(b(&mut w), Err(Error::BufferTooSmall));
                assert!(w.is_empty());
            }
        }
    }
}
