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

use core::ops::Range;

use crate::ct::attrs::cta;
use crate::ct::entry::ConntrackRepr;
use crate::ct::status::Status;
use crate::ct::tuple::{require_complete, Tuple};
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

    fn emit(&self, w: &mut Writer<'_>) -> Result<u8> {
        let tuple = self
            .orig
            .as_ref()
            .map(|t| (t, cta::TUPLE_ORIG))
            .or(self.reply.as_ref().map(|t| (t, cta::TUPLE_REPLY)))
            .ok_or(Error::MissingAttribute("CTA_TUPLE_ORIG or CTA_TUPLE_REPLY"))?;
        require_complete(tuple.0, "tuple addresses and protocol")?;
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
/// [`Error::MissingAttribute`] without a complete tuple; [`Error::BufferTooSmall`].
pub fn get(w: &mut Writer<'_>, seq: u32, key: &Key) -> Result<Range<usize>> {
    keyed(w, seq, ct_msg::GET, key)
}

/// Deletes one entry (`CT_DELETE` with a tuple, its zone, and optionally its id).
///
/// # Errors
/// [`Error::MissingAttribute`] without a complete tuple; [`Error::BufferTooSmall`].
pub fn delete(w: &mut Writer<'_>, seq: u32, key: &Key) -> Result<Range<usize>> {
    keyed(w, seq, ct_msg::DELETE, key)
}

/// Flushes the table (`CT_DELETE` without a tuple): everything, one family (sent with
/// nfgenmsg version 1, which the kernel needs to flush only that family), or the entries a
/// mark, status or zone filter selects.
///
/// # Errors
/// [`Error::BufferTooSmall`].
pub fn flush(w: &mut Writer<'_>, seq: u32, filter: &DumpFilter) -> Result<Range<usize>> {
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

/// Dumps the table (`CT_GET` with `NLM_F_DUMP`), filtered in the kernel by `filter`.
///
/// # Errors
/// [`Error::BufferTooSmall`].
pub fn dump(w: &mut Writer<'_>, seq: u32, filter: &DumpFilter) -> Result<Range<usize>> {
    dump_msg(w, seq, ct_msg::GET, filter)
}

/// Dumps the table and zeroes the counters of every entry dumped (`CT_GET_CTRZERO`).
///
/// # Errors
/// [`Error::BufferTooSmall`].
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
    use crate::ct::Conntrack;
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
