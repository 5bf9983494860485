//! Builders for every expectation request; each writes one complete message.
//!
//! ```
//! use core::net::Ipv4Addr;
//! use conntrack_codec::ct::Tuple;
//! use conntrack_codec::exp::{request, ExpectRepr};
//! use conntrack_codec::nl::{Messages, Writer};
//!
//! let a = Ipv4Addr::new(10, 0, 0, 1).into();
//! let b = Ipv4Addr::new(10, 0, 0, 2).into();
//! let exp = ExpectRepr {
//!     family: 2,
//!     master: Some(Tuple::tcp(a, b, 40000, 21)),
//!     tuple: Some(Tuple::tcp(a, b, 0, 50000)),
//!     mask: Some(Tuple::tcp(
//!         Ipv4Addr::BROADCAST.into(), Ipv4Addr::BROADCAST.into(), 0, 0xffff)),
//!     timeout: Some(300),
//!     helper: Some("ftp".try_into().unwrap()),
//!     ..ExpectRepr::default()
//! };
//! let mut buf = [0u8; 512];
//! let mut w = Writer::new(&mut buf);
//! request::create(&mut w, 7, &exp)?;
//! let msg = Messages::new(w.written()).next().unwrap()?;
//! assert_eq!(ExpectRepr::parse_msg(msg)?, exp);
//! # Ok::<(), conntrack_codec::Error>(())
//! ```

use core::ops::Range;

use crate::ct::attrs::expect;
use crate::ct::tuple::require_complete;
use crate::ct::Tuple;
use crate::exp::ExpectRepr;
use crate::nfnl::{exp_msg, write_message, NfGenMsg, Subsystem, NFNETLINK_V0, NFNETLINK_V1};
use crate::nl::{flags, opt, Writer};
use crate::{Error, Result};

fn exp_message(
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
    write_message(w, Subsystem::CtnetlinkExp, msg, fl, seq, nfgen, body)
}

/// Creates an expectation (`EXP_NEW` with `CREATE|EXCL|ACK`). The kernel needs the master
/// tuple (of an existing entry that has a helper), the expected tuple and its mask; class,
/// NAT, function, flags, zone and helper name are sent when present.
///
/// # Errors
/// [`Error::MissingAttribute`] without master, tuple or mask; [`Error::BufferTooSmall`].
pub fn create(w: &mut Writer<'_>, seq: u32, exp: &ExpectRepr) -> Result<Range<usize>> {
    let master = exp
        .master
        .as_ref()
        .ok_or(Error::MissingAttribute("CTA_EXPECT_MASTER"))?;
    require_complete(master, "CTA_EXPECT_MASTER addresses and protocol")?;
    exp.tuple
        .as_ref()
        .ok_or(Error::MissingAttribute("CTA_EXPECT_TUPLE"))?;
    exp.mask
        .as_ref()
        .ok_or(Error::MissingAttribute("CTA_EXPECT_MASK"))?;
    let family = if exp.family != 0 {
        exp.family
    } else {
        master.family().unwrap_or(0)
    };
    let fl = flags::REQUEST | flags::ACK | flags::CREATE | flags::EXCL;
    exp_message(w, exp_msg::NEW, fl, seq, family, NFNETLINK_V0, |w| {
        exp.emit_attrs(w)
    })
}

/// Which expectation a get or delete is about: its expected tuple, its zone, and optionally
/// its id. (The kernel finds expectations only by their expected tuple: a get by the
/// master's tuple alone answers ENOENT.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExpKey {
    /// The expected tuple.
    pub tuple: Option<Tuple>,
    /// The zone.
    pub zone: Option<u16>,
    /// The id: the kernel answers ENOENT unless the expectation found has it.
    pub id: Option<u32>,
}

impl ExpKey {
    /// The expectation of expected tuple `tuple`.
    pub fn tuple(tuple: Tuple) -> Self {
        ExpKey {
            tuple: Some(tuple),
            ..ExpKey::default()
        }
    }

    /// The same key, also requiring the expectation's id.
    pub fn with_id(mut self, id: u32) -> Self {
        self.id = Some(id);
        self
    }

    /// The same key in `zone`.
    pub fn in_zone(mut self, zone: u16) -> Self {
        self.zone = Some(zone);
        self
    }
}

fn keyed(w: &mut Writer<'_>, seq: u32, msg: u8, key: &ExpKey) -> Result<Range<usize>> {
    let t = key
        .tuple
        .as_ref()
        .ok_or(Error::MissingAttribute("CTA_EXPECT_TUPLE"))?;
    require_complete(t, "tuple addresses and protocol")?;
    let family = t.family().unwrap_or(0);
    exp_message(
        w,
        msg,
        flags::REQUEST | flags::ACK,
        seq,
        family,
        NFNETLINK_V0,
        |w| {
            t.emit(expect::TUPLE, w)?;
            opt(w, key.zone, |w, z| w.attr_u16_be(expect::ZONE, z))?;
            opt(w, key.id, |w, id| w.attr_u32_be(expect::ID, id))
        },
    )
}

/// Gets one expectation (`EXP_GET`) by its expected tuple.
///
/// # Errors
/// [`Error::MissingAttribute`] without a complete tuple; [`Error::BufferTooSmall`].
pub fn get(w: &mut Writer<'_>, seq: u32, key: &ExpKey) -> Result<Range<usize>> {
    keyed(w, seq, exp_msg::GET, key)
}

/// Deletes one expectation (`EXP_DELETE` with its expected tuple, and optionally its id).
///
/// # Errors
/// [`Error::MissingAttribute`] without a complete expected tuple; [`Error::BufferTooSmall`].
pub fn delete(w: &mut Writer<'_>, seq: u32, key: &ExpKey) -> Result<Range<usize>> {
    keyed(w, seq, exp_msg::DELETE, key)
}

/// Deletes every expectation of one helper (`EXP_DELETE` with `CTA_EXPECT_HELP_NAME`).
///
/// # Errors
/// [`Error::BufferTooSmall`]; [`Error::InvalidString`] for a name with a NUL.
pub fn delete_by_helper(w: &mut Writer<'_>, seq: u32, helper: &str) -> Result<Range<usize>> {
    exp_message(
        w,
        exp_msg::DELETE,
        flags::REQUEST | flags::ACK,
        seq,
        0,
        NFNETLINK_V0,
        |w| w.attr_str(expect::HELP_NAME, helper),
    )
}

/// Flushes expectations: all (`family` 0), or one family (nfgenmsg version 1).
///
/// # Errors
/// [`Error::BufferTooSmall`].
pub fn flush(w: &mut Writer<'_>, seq: u32, family: u8) -> Result<Range<usize>> {
    let version = if family != 0 {
        NFNETLINK_V1
    } else {
        NFNETLINK_V0
    };
    exp_message(
        w,
        exp_msg::DELETE,
        flags::REQUEST | flags::ACK,
        seq,
        family,
        version,
        |_| Ok(()),
    )
}

/// Dumps the expectations (`EXP_GET` with `NLM_F_DUMP`), all or of one family.
///
/// # Errors
/// [`Error::BufferTooSmall`].
pub fn dump(w: &mut Writer<'_>, seq: u32, family: u8) -> Result<Range<usize>> {
    exp_message(
        w,
        exp_msg::GET,
        flags::REQUEST | flags::DUMP,
        seq,
        family,
        NFNETLINK_V0,
        |_| Ok(()),
    )
}

/// Asks for per-CPU expectation statistics (`EXP_GET_STATS_CPU`, a dump).
///
/// # Errors
/// [`Error::BufferTooSmall`].
pub fn stats_cpu(w: &mut Writer<'_>, seq: u32) -> Result<Range<usize>> {
    exp_message(
        w,
        exp_msg::GET_STATS_CPU,
        flags::REQUEST | flags::DUMP,
        seq,
        0,
        NFNETLINK_V0,
        |_| Ok(()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exp::{Expect, ExpectFlags, ExpectNat};
    use crate::nfnl::NfMsg;
    use crate::nl::Messages;
    use core::net::{IpAddr, Ipv6Addr};

    fn v6(last: u16) -> IpAddr {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, last))
    }

    fn full() -> ExpectRepr {
        ExpectRepr {
            family: 10,
            master: Some(Tuple::tcp(v6(1), v6(2), 40000, 21)),
            tuple: Some(Tuple::tcp(v6(1), v6(2), 0, 50000)),
            mask: Some(Tuple::tcp(v6(0xffff), v6(0xffff), 0, 0xffff)),
            timeout: Some(300),
            id: None,
            helper: Some("ftp".try_into().unwrap()),
            zone: Some(2),
            flags: Some(ExpectFlags(
                ExpectFlags::PERMANENT.0 | ExpectFlags::USERSPACE.0,
            )),
            class: Some(1),
            nat: Some(ExpectNat {
                dir: Some(1),
                tuple: Some(Tuple::tcp(v6(3), v6(4), 0, 1000)),
            }),
            func: Some("sip".try_into().unwrap()),
            unknown: Default::default(),
        }
    }

    #[test]
    fn create_round_trips_every_attribute() {
        let e = full();
        let mut buf = [0xa5u8; 1024];
        let mut w = Writer::new(&mut buf);
        let r = create(&mut w, 3, &e).unwrap();
        assert_eq!(r.len(), e.buffer_len());
        let m = Messages::new(w.written()).next().unwrap().unwrap();
        assert_eq!(
            m.flags(),
            flags::REQUEST | flags::ACK | flags::CREATE | flags::EXCL
        );
        assert_eq!(ExpectRepr::parse_msg(m).unwrap(), e);
        let v = Expect::parse(m).unwrap();
        assert_eq!(v.helper().unwrap(), Some("ftp"));
        assert_eq!(v.func().unwrap(), Some("sip"));
        assert_eq!(v.class().unwrap(), Some(1));
        assert_eq!(v.nat().unwrap(), e.nat);
        assert_eq!(v.event_kind(), Some(crate::ct::EventKind::New));
    }

    #[test]
    fn create_needs_master_tuple_and_mask() {
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf);
        let mut e = full();
        e.mask = None;
        assert_eq!(
            create(&mut w, 1, &e),
            Err(Error::MissingAttribute("CTA_EXPECT_MASK"))
        );
        assert!(w.is_empty());
    }

    #[test]
    fn delete_get_flush() {
        let mut buf = [0u8; 512];
        let key = ExpKey::tuple(full().tuple.unwrap()).with_id(5);
        let mut w = Writer::new(&mut buf);
        delete(&mut w, 1, &key).unwrap();
        let m = Messages::new(w.written()).next().unwrap().unwrap();
        let r = ExpectRepr::parse_msg(m).unwrap();
        assert_eq!(r.tuple, key.tuple);
        assert_eq!(r.id, Some(5));

        let mut w = Writer::new(&mut buf);
        assert!(delete(&mut w, 1, &ExpKey::default()).is_err());
        assert!(get(&mut w, 1, &ExpKey::default()).is_err());
        assert!(w.is_empty());

        let mut w = Writer::new(&mut buf);
        flush(&mut w, 1, 10).unwrap();
        let nf = NfMsg::new_checked(Messages::new(w.written()).next().unwrap().unwrap()).unwrap();
        assert_eq!((nf.nfgen().family, nf.nfgen().version), (10, 1));
    }
}
