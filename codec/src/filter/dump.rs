//! The filter of dumps and flushes: which entries a [`DumpFilter`] selects, what of it the
//! kernel can be trusted to compare, and the exact comparison in userspace.
//!
//! # What the kernel compares, and since when
//!
//! A dump or a flush carries the filter as attributes (`CTA_MARK`, `CTA_STATUS`,
//! `CTA_ZONE`, and `CTA_FILTER` with the tuples to compare). The kernel's support grew over
//! time, and parts of it compare wrongly. Found by reading `nf_conntrack_netlink.c` in the
//! commits that changed it (the netfilter mailing-list patches and the stable trees 6.6,
//! 6.12 and 6.18), and checked live on 6.18 (`tests/tests/filter_kernel.rs`):
//!
//! | field | dumps | flushes | what older kernels do |
//! |---|---|---|---|
//! | family (nfgenmsg) | always | 4.20 (with nfgenmsg version 1) | a flush ignores it: **every family is flushed** |
//! | mark and mask | always | 4.20 at the latest | a flush ignores it: **everything is flushed** |
//! | status and mask | 5.15 | 5.15 | ignored: a dump returns more, **a flush deletes more** |
//! | zone | 6.8 | 6.8 | ignored: a dump returns more, **a flush deletes more** |
//! | tuple fields (`CTA_FILTER`) | 5.8 | 6.11 | a dump ignores them; a flush answers `EOPNOTSUPP` (5.8–6.10), or before 5.8 takes a complete tuple for the one entry to delete |
//! | IPv6 addresses | **never right** | **never right** | compared inverted (`!ipv6_addr_cmp`) from 5.8 to at least 6.18: the kernel selects every entry *but* the named ones |
//! | ports of protocols other than TCP and UDP | never | never | ignored: every SCTP, DCCP, UDP-Lite or GRE entry matches |
//! | tuple zone (`CTA_FILTER_F_CTA_TUPLE_ZONE`) | never | never | not a per-direction filter in any version |
//! | ICMP/ICMPv6 type of no request/reply pair | — | — | refused (`EINVAL`); no entry has such a type anyway |
//!
//! Hence the split this module makes: [`DumpFilter::kernel_filter`] is the part any kernel
//! since 5.8 compares right (IPv6 addresses, tuple zones, ports of other protocols and
//! unmapped ICMP types left out), a superset of what the whole filter selects; and
//! [`DumpFilter::matches`] compares every field exactly, in userspace. `conntrack-io` sends
//! the kernel part and checks each entry it receives with `matches`, so a kernel that
//! ignores a field only makes the dump longer; and it flushes in the kernel only when the
//! kernel part is the whole filter and the running kernel is at least
//! [`DumpFilter::kernel_flush_since`], otherwise it dumps, matches and deletes.
//!
//! The version numbers come from the patches that added each feature: `CTA_FILTER` for
//! dumps (Romain Bellan, March 2020, "add kernel side filtering for dump", which made a
//! filtered flush answer `EOPNOTSUPP`), status (Florian Westphal, July 2021, "allow to
//! filter dump by status bits"), zone (Felix Huettner, commit eff3c558bb7e, pulled in
//! December 2023 for 6.8), `CTA_FILTER` for flushes (Changliang Wu, June 2024, "support
//! CTA_FILTER for flush": absent from the 6.6 stable tree, present in 6.12), and family
//! flushes (commit 59c08c69c278, "Support L3 protocol-filter on flush", 4.20, with the
//! nfgenmsg version 1 rule of commit f8e608982022).

use core::net::IpAddr;

use crate::ct::attrs::{cta, filter};
use crate::ct::tuple::l4proto;
use crate::ct::unknown::UnknownSink;
use crate::ct::{family, Conntrack, Status, Tuple};
use crate::nl::{attr_len, opt, opt_len, total_len, Attr, Writer};
use crate::{Error, Result};

/// `CTA_FILTER_F_*`: the tuple fields a filtered dump compares (host-order u32 on the wire).
pub mod filter_flags {
    /// Source address.
    pub const IP_SRC: u32 = 1 << 0;
    /// Destination address.
    pub const IP_DST: u32 = 1 << 1;
    /// Tuple zone.
    pub const TUPLE_ZONE: u32 = 1 << 2;
    /// L4 protocol number.
    pub const PROTO_NUM: u32 = 1 << 3;
    /// Source port.
    pub const PROTO_SRC_PORT: u32 = 1 << 4;
    /// Destination port.
    pub const PROTO_DST_PORT: u32 = 1 << 5;
    /// ICMP type.
    pub const PROTO_ICMP_TYPE: u32 = 1 << 6;
    /// ICMP code.
    pub const PROTO_ICMP_CODE: u32 = 1 << 7;
    /// ICMP id.
    pub const PROTO_ICMP_ID: u32 = 1 << 8;
    /// ICMPv6 type.
    pub const PROTO_ICMPV6_TYPE: u32 = 1 << 9;
    /// ICMPv6 code.
    pub const PROTO_ICMPV6_CODE: u32 = 1 << 10;
    /// ICMPv6 id.
    pub const PROTO_ICMPV6_ID: u32 = 1 << 11;
    /// Every field.
    pub const ALL: u32 = (1 << 12) - 1;

    /// The port flags.
    pub(crate) const PORTS: u32 = PROTO_SRC_PORT | PROTO_DST_PORT;
    /// The ICMP flags.
    pub(crate) const ICMP: u32 = PROTO_ICMP_TYPE | PROTO_ICMP_CODE | PROTO_ICMP_ID;
    /// The ICMPv6 flags.
    pub(crate) const ICMPV6: u32 = PROTO_ICMPV6_TYPE | PROTO_ICMPV6_CODE | PROTO_ICMPV6_ID;

    /// The flags of the fields `t` has (what [`DumpFilter::with_orig`](super::DumpFilter::with_orig)
    /// compares).
    pub fn of(t: &crate::ct::Tuple) -> u32 {
        let fields = [
            (t.src.is_some(), IP_SRC),
            (t.dst.is_some(), IP_DST),
            (t.zone.is_some(), TUPLE_ZONE),
            (t.proto.is_some(), PROTO_NUM),
            (t.src_port.is_some(), PROTO_SRC_PORT),
            (t.dst_port.is_some(), PROTO_DST_PORT),
            (t.icmp_type.is_some(), PROTO_ICMP_TYPE),
            (t.icmp_code.is_some(), PROTO_ICMP_CODE),
            (t.icmp_id.is_some(), PROTO_ICMP_ID),
            (t.icmpv6_type.is_some(), PROTO_ICMPV6_TYPE),
            (t.icmpv6_code.is_some(), PROTO_ICMPV6_CODE),
            (t.icmpv6_id.is_some(), PROTO_ICMPV6_ID),
        ];
        fields
            .iter()
            .filter(|(set, _)| *set)
            .fold(0, |acc, (_, flag)| acc | flag)
    }
}

use filter_flags as ff;

/// The `CTA_FILTER` nest: flags for the original and reply tuples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FilterFlags {
    /// Fields of `CTA_TUPLE_ORIG` to compare.
    pub orig: Option<u32>,
    /// Fields of `CTA_TUPLE_REPLY` to compare.
    pub reply: Option<u32>,
}

impl FilterFlags {
    /// Reads `CTA_FILTER`.
    ///
    /// # Errors
    /// A malformed attribute or one of the wrong size.
    pub fn parse(nest: &Attr<'_>, unknown: &mut impl UnknownSink) -> Result<Self> {
        let mut f = FilterFlags::default();
        for a in nest.nested() {
            let a = a?;
            match a.kind() {
                filter::ORIG_FLAGS => f.orig = Some(a.u32_ne()?),
                filter::REPLY_FLAGS => f.reply = Some(a.u32_ne()?),
                _ => unknown.record([cta::FILTER, 0], &a),
            }
        }
        Ok(f)
    }

    /// Writes `CTA_FILTER`.
    ///
    /// # Errors
    /// [`crate::Error::BufferTooSmall`].
    pub fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        w.nest(cta::FILTER, |w| {
            opt(w, self.orig, |w, v| w.attr_u32_ne(filter::ORIG_FLAGS, v))?;
            opt(w, self.reply, |w, v| w.attr_u32_ne(filter::REPLY_FLAGS, v))
        })
    }

    /// The bytes [`FilterFlags::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let n = |v: &Option<u32>| opt_len(v, |_| attr_len(4));
        attr_len(total_len(&[n(&self.orig), n(&self.reply)]))
    }
}

/// What a dump, a counter-zeroing dump or a flush selects.
///
/// Every field narrows the selection; the default selects everything. Build it with the
/// constructors and `with_*` methods, which derive the tuple flags from the fields set and
/// the family from the addresses:
///
/// ```
/// use core::net::Ipv6Addr;
/// use conntrack_codec::ct::{l4proto, Tuple};
/// use conntrack_codec::filter::{filter_flags, DumpFilter};
///
/// // UDP entries whose replies come from fd00::5, in zone 7.
/// let f = DumpFilter::all()
///     .with_reply(Tuple {
///         src: Some(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5).into()),
///         proto: Some(l4proto::UDP),
///         ..Tuple::default()
///     })
///     .with_zone(7);
/// assert_eq!(f.family, 10);
/// assert_eq!(f.reply.unwrap().1, filter_flags::IP_SRC | filter_flags::PROTO_NUM);
/// f.check()?;
///
/// // Impossible combinations are errors before anything is sent: ports need a protocol.
/// let bad = DumpFilter::ipv4().with_orig(Tuple { dst_port: Some(53), ..Tuple::default() });
/// assert!(bad.check().is_err());
/// # Ok::<(), conntrack_codec::Error>(())
/// ```
///
/// The fields are public, so a filter can also be written out with raw
/// [`filter_flags`]; [`check`](DumpFilter::check) (which every request builder calls)
/// then refuses what the kernel would refuse or what cannot mean anything. See the
/// [module documentation](self) for which fields each kernel compares, and
/// [`matches`](DumpFilter::matches) for the exact meaning of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DumpFilter {
    /// Address family, 0 for all (a family-specific flush is sent with nfgenmsg version 1).
    ///
    /// Dumps: every kernel. Flushes: Linux 4.20; older kernels flush every family.
    pub family: u8,
    /// Mark value and mask: entries with `mark & mask == value`.
    ///
    /// Dumps: every kernel. Flushes: by 4.20 at the latest; older ones may flush all.
    pub mark: Option<(u32, u32)>,
    /// Status value and mask: entries with `status & mask == value`.
    ///
    /// Dumps and flushes: Linux 5.15; older kernels ignore it (a flush then deletes more).
    pub status: Option<(crate::ct::Status, crate::ct::Status)>,
    /// Zone: entries in this zone, whatever its direction.
    ///
    /// Dumps and flushes: Linux 6.8; older kernels ignore it (a flush then deletes more).
    pub zone: Option<u16>,
    /// Original tuple and the fields of it to compare ([`filter_flags`]).
    ///
    /// Dumps: Linux 5.8 (older kernels ignore it); flushes: 6.11 (5.8–6.10 answer
    /// `EOPNOTSUPP`). IPv6 addresses are never compared right (inverted), ports only for
    /// TCP and UDP, the tuple zone never: those are matched in userspace. See the
    /// [module documentation](self).
    pub orig: Option<(crate::ct::Tuple, u32)>,
    /// Reply tuple and the fields of it to compare; the kernel versions are those of
    /// [`orig`](DumpFilter::orig).
    pub reply: Option<(crate::ct::Tuple, u32)>,
}

/// Whether the kernel accepts ICMP type `t` in a tuple: the request and reply types it
/// tracks (the others are refused with `EINVAL`).
pub(crate) const fn icmp_type_tracked(t: u8) -> bool {
    matches!(t, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18)
}

/// The same for ICMPv6: echo request/reply and node information query/reply.
pub(crate) const fn icmpv6_type_tracked(t: u8) -> bool {
    matches!(t, 128 | 129 | 139 | 140)
}

/// An impossible filter.
pub(crate) const fn impossible(why: &'static str) -> Error {
    Error::ImpossibleRequest(why)
}

/// Checks one direction's tuple and flags against the filter's family (0 if none yet).
fn check_tuple(t: &Tuple, flags: u32, fam: u8) -> Result<()> {
    if flags == 0 {
        return Err(impossible("a tuple filter with no field to compare"));
    }
    if flags & !ff::ALL != 0 {
        return Err(impossible("unknown CTA_FILTER flag"));
    }
    let need = |flag: u32, set: bool, what: &'static str| {
        if flags & flag != 0 && !set {
            Err(impossible(what))
        } else {
            Ok(())
        }
    };
    need(
        ff::IP_SRC,
        t.src.is_some(),
        "IP_SRC flag without a source address",
    )?;
    need(
        ff::IP_DST,
        t.dst.is_some(),
        "IP_DST flag without a destination address",
    )?;
    need(
        ff::TUPLE_ZONE,
        t.zone.is_some(),
        "TUPLE_ZONE flag without a tuple zone",
    )?;
    need(
        ff::PROTO_NUM,
        t.proto.is_some(),
        "PROTO_NUM flag without a protocol",
    )?;
    need(
        ff::PROTO_SRC_PORT,
        t.src_port.is_some(),
        "PROTO_SRC_PORT flag without a source port",
    )?;
    need(
        ff::PROTO_DST_PORT,
        t.dst_port.is_some(),
        "PROTO_DST_PORT flag without a destination port",
    )?;
    need(
        ff::PROTO_ICMP_TYPE,
        t.icmp_type.is_some(),
        "PROTO_ICMP_TYPE flag without an ICMP type",
    )?;
    need(
        ff::PROTO_ICMP_CODE,
        t.icmp_code.is_some(),
        "PROTO_ICMP_CODE flag without an ICMP code",
    )?;
    need(
        ff::PROTO_ICMP_ID,
        t.icmp_id.is_some(),
        "PROTO_ICMP_ID flag without an ICMP id",
    )?;
    need(
        ff::PROTO_ICMPV6_TYPE,
        t.icmpv6_type.is_some(),
        "PROTO_ICMPV6_TYPE flag without an ICMPv6 type",
    )?;
    need(
        ff::PROTO_ICMPV6_CODE,
        t.icmpv6_code.is_some(),
        "PROTO_ICMPV6_CODE flag without an ICMPv6 code",
    )?;
    need(
        ff::PROTO_ICMPV6_ID,
        t.icmpv6_id.is_some(),
        "PROTO_ICMPV6_ID flag without an ICMPv6 id",
    )?;

    let proto = if flags & ff::PROTO_NUM != 0 {
        t.proto
    } else {
        None
    };
    let l4 = ff::PORTS | ff::ICMP | ff::ICMPV6;
    if flags & l4 != 0 && proto.is_none() {
        return Err(impossible(
            "port or ICMP fields without the protocol (PROTO_NUM)",
        ));
    }
    if let Some(p) = proto {
        if flags & ff::PORTS != 0 && !l4proto::has_ports(p) {
            return Err(impossible("ports of a protocol that has none"));
        }
        if flags & ff::ICMP != 0 && p != l4proto::ICMP {
            return Err(impossible("ICMP fields of a protocol other than ICMP"));
        }
        if flags & ff::ICMPV6 != 0 && p != l4proto::ICMPV6 {
            return Err(impossible("ICMPv6 fields of a protocol other than ICMPv6"));
        }
    }
    let addr_family = |a: Option<IpAddr>, flag: u32| match a {
        Some(IpAddr::V4(_)) if flags & flag != 0 => Some(family::INET),
        Some(IpAddr::V6(_)) if flags & flag != 0 => Some(family::INET6),
        _ => None,
    };
    for f in [
        addr_family(t.src, ff::IP_SRC),
        addr_family(t.dst, ff::IP_DST),
    ]
    .into_iter()
    .flatten()
    {
        if fam != f {
            return Err(impossible("an address of another family than the filter's"));
        }
    }
    Ok(())
}

/// The part of one direction's filter the kernel compares right: IPv6 addresses, the tuple
/// zone, ports of protocols other than TCP and UDP, and ICMP types the kernel refuses left
/// out; the tuple keeps only the fields flagged. `None` if nothing is left.
fn kernel_tuple((t, flags): (Tuple, u32)) -> Option<(Tuple, u32)> {
    let mut keep = flags & !ff::TUPLE_ZONE;
    if matches!(t.src, Some(IpAddr::V6(_))) {
        keep &= !ff::IP_SRC;
    }
    if matches!(t.dst, Some(IpAddr::V6(_))) {
        keep &= !ff::IP_DST;
    }
    if !matches!(t.proto, Some(l4proto::TCP | l4proto::UDP)) {
        keep &= !ff::PORTS;
    }
    if t.icmp_type.is_some_and(|ty| !icmp_type_tracked(ty)) {
        keep &= !ff::PROTO_ICMP_TYPE;
    }
    if t.icmpv6_type.is_some_and(|ty| !icmpv6_type_tracked(ty)) {
        keep &= !ff::PROTO_ICMPV6_TYPE;
    }
    if keep == 0 {
        return None;
    }
    Some((masked(&t, keep), keep))
}

/// The fields of `t` that `flags` name.
fn masked(t: &Tuple, flags: u32) -> Tuple {
    let pick = |flag: u32| flags & flag != 0;
    Tuple {
        src: t.src.filter(|_| pick(ff::IP_SRC)),
        dst: t.dst.filter(|_| pick(ff::IP_DST)),
        proto: t.proto.filter(|_| pick(ff::PROTO_NUM)),
        src_port: t.src_port.filter(|_| pick(ff::PROTO_SRC_PORT)),
        dst_port: t.dst_port.filter(|_| pick(ff::PROTO_DST_PORT)),
        icmp_id: t.icmp_id.filter(|_| pick(ff::PROTO_ICMP_ID)),
        icmp_type: t.icmp_type.filter(|_| pick(ff::PROTO_ICMP_TYPE)),
        icmp_code: t.icmp_code.filter(|_| pick(ff::PROTO_ICMP_CODE)),
        icmpv6_id: t.icmpv6_id.filter(|_| pick(ff::PROTO_ICMPV6_ID)),
        icmpv6_type: t.icmpv6_type.filter(|_| pick(ff::PROTO_ICMPV6_TYPE)),
        icmpv6_code: t.icmpv6_code.filter(|_| pick(ff::PROTO_ICMPV6_CODE)),
        zone: t.zone.filter(|_| pick(ff::TUPLE_ZONE)),
    }
}

/// Whether `entry` (one direction's tuple, with that direction's zone) has every field
/// `flags` names as `want` has it.
fn tuple_matches(want: &Tuple, flags: u32, entry: &Tuple, dir_zone: u16) -> bool {
    let eq = |flag: u32, same: bool| flags & flag == 0 || same;
    eq(ff::IP_SRC, want.src == entry.src)
        && eq(ff::IP_DST, want.dst == entry.dst)
        && eq(ff::PROTO_NUM, want.proto == entry.proto)
        && eq(ff::PROTO_SRC_PORT, want.src_port == entry.src_port)
        && eq(ff::PROTO_DST_PORT, want.dst_port == entry.dst_port)
        && eq(ff::PROTO_ICMP_TYPE, want.icmp_type == entry.icmp_type)
        && eq(ff::PROTO_ICMP_CODE, want.icmp_code == entry.icmp_code)
        && eq(ff::PROTO_ICMP_ID, want.icmp_id == entry.icmp_id)
        && eq(ff::PROTO_ICMPV6_TYPE, want.icmpv6_type == entry.icmpv6_type)
        && eq(ff::PROTO_ICMPV6_CODE, want.icmpv6_code == entry.icmpv6_code)
        && eq(ff::PROTO_ICMPV6_ID, want.icmpv6_id == entry.icmpv6_id)
        && eq(ff::TUPLE_ZONE, want.zone == Some(dir_zone))
}

/// A kernel release, `(major, minor)`, as [`DumpFilter::kernel_flush_since`] names them.
pub type KernelRelease = (u16, u16);

impl DumpFilter {
    /// Everything, of every family.
    pub const fn all() -> Self {
        DumpFilter {
            family: 0,
            mark: None,
            status: None,
            zone: None,
            orig: None,
            reply: None,
        }
    }

    /// Everything of one family (`2` IPv4, `10` IPv6).
    pub const fn family(family: u8) -> Self {
        DumpFilter {
            family,
            ..DumpFilter::all()
        }
    }

    /// Every IPv4 entry.
    pub const fn ipv4() -> Self {
        DumpFilter::family(family::INET)
    }

    /// Every IPv6 entry.
    pub const fn ipv6() -> Self {
        DumpFilter::family(family::INET6)
    }

    /// The same filter, keeping only entries with `mark & mask == value`.
    #[must_use]
    pub const fn with_mark(mut self, value: u32, mask: u32) -> Self {
        self.mark = Some((value, mask));
        self
    }

    /// The same filter, keeping only entries with `status & mask == value`.
    #[must_use]
    pub const fn with_status(mut self, value: Status, mask: Status) -> Self {
        self.status = Some((value, mask));
        self
    }

    /// The same filter, keeping only entries of `zone` (in either direction).
    #[must_use]
    pub const fn with_zone(mut self, zone: u16) -> Self {
        self.zone = Some(zone);
        self
    }

    /// The same filter, keeping only entries whose original tuple has every field set in
    /// `tuple` (the flags are those of the fields set, [`filter_flags::of`]); the family is
    /// taken from the addresses if the filter has none yet.
    #[must_use]
    pub fn with_orig(mut self, tuple: Tuple) -> Self {
        self.take_family(&tuple);
        self.orig = Some((tuple, ff::of(&tuple)));
        self
    }

    /// The same filter, keeping only entries whose reply tuple has every field set in
    /// `tuple` (see [`with_orig`](DumpFilter::with_orig)).
    #[must_use]
    pub fn with_reply(mut self, tuple: Tuple) -> Self {
        self.take_family(&tuple);
        self.reply = Some((tuple, ff::of(&tuple)));
        self
    }

    fn take_family(&mut self, t: &Tuple) {
        if self.family == 0 {
            self.family = t.family().unwrap_or(0);
        }
    }

    /// Whether the filter selects everything of its family (no attribute to send).
    pub fn is_plain(&self) -> bool {
        self.mark.is_none()
            && self.status.is_none()
            && self.zone.is_none()
            && self.orig.is_none()
            && self.reply.is_none()
    }

    /// Checks that the filter can mean something, as the request builders do before
    /// writing anything.
    ///
    /// # Errors
    /// [`Error::ImpossibleRequest`] for: a tuple filter without a family, or with a family
    /// other than IPv4 and IPv6 (the kernel refuses it with `EOPNOTSUPP`); an address of
    /// another family than the filter's, or of two families; a flag naming a field the
    /// tuple lacks, no flag at all, or an unknown flag; ports or ICMP fields without the
    /// protocol, ports of a protocol without ports, ICMP fields of another protocol (the
    /// kernel would ignore them); a status mask of 0 (the kernel refuses it with `EINVAL`).
    ///
    /// A filter that merely selects nothing (a mark value with bits outside its mask, the
    /// ICMP protocol in an IPv6 filter) is not an error: it selects nothing, as in the
    /// kernel.
    pub fn check(&self) -> Result<()> {
        if let Some((_, mask)) = self.status {
            if mask.0 == 0 {
                return Err(impossible("a status filter with a mask of 0"));
            }
        }
        if self.orig.is_none() && self.reply.is_none() {
            return Ok(());
        }
        if self.family != family::INET && self.family != family::INET6 {
            return Err(impossible(
                "a tuple filter needs the family IPv4 or IPv6 (none given, none in the addresses)",
            ));
        }
        for (t, flags) in [self.orig, self.reply].into_iter().flatten() {
            check_tuple(&t, flags, self.family)?;
        }
        Ok(())
    }

    /// Whether `entry` is selected: every field of the filter compared exactly.
    ///
    /// - family: the entry's nfgenmsg family (or, if a message leaves it 0, its addresses');
    /// - mark, status: `value & mask == filter value`, an absent attribute read as 0;
    /// - zone: the entry's zone, whichever direction it applies to (`CTA_ZONE`, or the
    ///   `CTA_TUPLE_ZONE` of one of its tuples), 0 if it has none;
    /// - tuples: each flagged field equal to the entry's; a port, ICMP or ICMPv6 field of
    ///   a protocol that lacks it never matches; the tuple zone is the zone of that
    ///   direction.
    ///
    /// Only the attributes the filter needs are decoded.
    ///
    /// # Errors
    /// A malformed attribute of the entry.
    pub fn matches(&self, entry: &Conntrack<'_>) -> Result<bool> {
        if self.family != 0 {
            // The kernel always names the family; a message that does not is taken at its
            // addresses' word.
            let family = match entry.family() {
                0 => {
                    let of = |t: Option<Tuple>| t.and_then(|t| t.family());
                    of(entry.orig()?).or(of(entry.reply()?)).unwrap_or(0)
                }
                f => f,
            };
            if family != self.family {
                return Ok(false);
            }
        }
        if let Some((value, mask)) = self.mark {
            if entry.mark()?.unwrap_or(0) & mask != value {
                return Ok(false);
            }
        }
        if let Some((value, mask)) = self.status {
            if entry.status()?.unwrap_or_default().0 & mask.0 != value.0 {
                return Ok(false);
            }
        }
        if self.zone.is_none() && self.orig.is_none() && self.reply.is_none() {
            return Ok(true);
        }
        let both = entry.zone()?;
        let orig = entry.orig()?.unwrap_or_default();
        let reply = entry.reply()?.unwrap_or_default();
        if let Some(zone) = self.zone {
            if both.or(orig.zone).or(reply.zone).unwrap_or(0) != zone {
                return Ok(false);
            }
        }
        if let Some((want, flags)) = &self.orig {
            let dir_zone = both.or(orig.zone).unwrap_or(0);
            if !tuple_matches(want, *flags, &orig, dir_zone) {
                return Ok(false);
            }
        }
        if let Some((want, flags)) = &self.reply {
            let dir_zone = both.or(reply.zone).unwrap_or(0);
            if !tuple_matches(want, *flags, &reply, dir_zone) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The part of the filter the kernel compares right (see the [module
    /// documentation](self)): the same filter without IPv6 addresses, tuple zones, ports
    /// of protocols other than TCP and UDP, and ICMP/ICMPv6 types the kernel refuses. It
    /// selects a superset of what the whole filter selects; send it, then keep the entries
    /// [`matches`](DumpFilter::matches) accepts.
    pub fn kernel_filter(&self) -> DumpFilter {
        DumpFilter {
            orig: self.orig.and_then(kernel_tuple),
            reply: self.reply.and_then(kernel_tuple),
            ..*self
        }
    }

    /// The oldest kernel whose flush deletes exactly what this filter selects, or `None`
    /// if no kernel does (the filter names IPv6 addresses, tuple zones, ports of
    /// protocols other than TCP and UDP, or ICMP types the kernel refuses): such a flush
    /// must be done as a dump, an exact match and one delete per entry.
    ///
    /// An older kernel ignores what it does not know in a flush, and would delete more
    /// than asked; see the table in the [module documentation](self).
    pub fn kernel_flush_since(&self) -> Option<KernelRelease> {
        if self.kernel_filter() != *self {
            return None;
        }
        let mut since: KernelRelease = (0, 0);
        let mut need = |release: KernelRelease, used: bool| {
            if used && release > since {
                since = release;
            }
        };
        need((4, 20), self.family != 0 || self.mark.is_some());
        need((5, 15), self.status.is_some());
        need((6, 8), self.zone.is_some());
        need((6, 11), self.orig.is_some() || self.reply.is_some());
        Some(since)
    }

    /// Writes the filter's attributes (after nfgenmsg).
    ///
    /// # Errors
    /// [`crate::Error::BufferTooSmall`].
    pub fn emit_attrs(&self, w: &mut Writer<'_>) -> Result<()> {
        opt(w, self.orig.as_ref(), |w, (t, _)| {
            t.emit(cta::TUPLE_ORIG, w)
        })?;
        opt(w, self.reply.as_ref(), |w, (t, _)| {
            t.emit(cta::TUPLE_REPLY, w)
        })?;
        if let Some((value, mask)) = self.status {
            w.attr_u32_be(cta::STATUS, value.0)?;
            w.attr_u32_be(cta::STATUS_MASK, mask.0)?;
        }
        if let Some((value, mask)) = self.mark {
            w.attr_u32_be(cta::MARK, value)?;
            w.attr_u32_be(cta::MARK_MASK, mask)?;
        }
        opt(w, self.zone, |w, z| w.attr_u16_be(cta::ZONE, z))?;
        if self.orig.is_some() || self.reply.is_some() {
            FilterFlags {
                orig: self.orig.map(|(_, f)| f),
                reply: self.reply.map(|(_, f)| f),
            }
            .emit(w)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::{ConntrackRepr, NatRange};
    use crate::nfnl::{ct_msg, msg_type, Subsystem};
    use crate::nl::{flags, Messages};
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn v4(d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, d))
    }

    fn v6(d: u16) -> IpAddr {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, d))
    }

    /// Parses `entry` back as the kernel would send it, and asks `f`.
    fn sel(f: &DumpFilter, entry: &ConntrackRepr) -> bool {
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf);
        let kind = msg_type(Subsystem::Ctnetlink, ct_msg::NEW);
        entry.emit(&mut w, kind, flags::MULTI, 1).unwrap();
        let msg = Messages::new(w.written()).next().unwrap().unwrap();
        f.matches(&Conntrack::parse(msg).unwrap()).unwrap()
    }

    fn udp(src: IpAddr, dst: IpAddr, reply_src: IpAddr) -> ConntrackRepr {
        let orig = Tuple::udp(src, dst, 1000, 53);
        let reply = Tuple {
            src: Some(reply_src),
            ..orig.inverted()
        };
        ConntrackRepr {
            family: if src.is_ipv6() { 10 } else { 2 },
            orig: Some(orig),
            reply: Some(reply),
            mark: Some(0x12),
            status: Some(Status::CONFIRMED | Status::DST_NAT),
            ..ConntrackRepr::default()
        }
    }

    #[test]
    fn the_builder_derives_flags_and_family() {
        let t = Tuple {
            src: Some(v6(5)),
            proto: Some(l4proto::UDP),
            dst_port: Some(53),
            ..Tuple::default()
        };
        let f = DumpFilter::all().with_reply(t);
        assert_eq!(f.family, 10);
        assert_eq!(
            f.reply,
            Some((t, ff::IP_SRC | ff::PROTO_NUM | ff::PROTO_DST_PORT))
        );
        assert_eq!(f.check(), Ok(()));
        // A family given first stays.
        assert_eq!(DumpFilter::ipv4().with_orig(t).family, 2);
        assert!(DumpFilter::ipv4().with_orig(t).check().is_err());
        assert_eq!(ff::of(&Tuple::default()), 0);
        assert_eq!(ff::of(&Tuple::tcp(v4(1), v4(2), 1, 2).with_zone(3)), 0x3f);
    }

    #[test]
    fn impossible_filters_are_refused() {
        let bad = |f: DumpFilter| match f.check() {
            Err(Error::ImpossibleRequest(why)) => why,
            other => panic!("{f:?}: {other:?}"),
        };
        let port = Tuple {
            dst_port: Some(53),
            ..Tuple::default()
        };
        bad(DumpFilter::ipv4().with_orig(port));
        // A flag whose field is unset.
        bad(DumpFilter {
            family: 2,
            orig: Some((Tuple::default(), ff::IP_SRC)),
            ..DumpFilter::default()
        });
        // A tuple filter without a family.
        bad(DumpFilter {
            orig: Some((
                Tuple {
                    proto: Some(6),
                    ..Tuple::default()
                },
                ff::PROTO_NUM,
            )),
            ..DumpFilter::default()
        });
        // Mixed families.
        bad(DumpFilter::all().with_orig(Tuple {
            src: Some(v4(1)),
            dst: Some(v6(1)),
            ..Tuple::default()
        }));
        bad(DumpFilter::ipv4().with_reply(Tuple {
            dst: Some(v6(1)),
            ..Tuple::default()
        }));
        // Zero and unknown flags.
        bad(DumpFilter {
            family: 2,
            orig: Some((Tuple::tcp(v4(1), v4(2), 1, 2), 0)),
            ..DumpFilter::default()
        });
        bad(DumpFilter {
            family: 2,
            orig: Some((Tuple::tcp(v4(1), v4(2), 1, 2), 1 << 12)),
            ..DumpFilter::default()
        });
        // Ports of ICMP, ICMP fields of TCP, ICMP in IPv6.
        bad(DumpFilter::ipv4().with_orig(Tuple {
            proto: Some(l4proto::ICMP),
            src_port: Some(1),
            ..Tuple::default()
        }));
        bad(DumpFilter::ipv4().with_orig(Tuple {
            proto: Some(l4proto::TCP),
            icmp_type: Some(8),
            ..Tuple::default()
        }));
        bad(DumpFilter::ipv4().with_orig(Tuple {
            proto: Some(l4proto::ICMP),
            icmpv6_type: Some(128),
            ..Tuple::default()
        }));
        // A zero status mask.
        bad(DumpFilter::all().with_status(Status(0), Status(0)));
        // What is fine.
        for ok in [
            DumpFilter::all(),
            DumpFilter::family(7),
            DumpFilter::all().with_mark(0x11, 0x1),
            // Selects nothing, as in the kernel: ICMP entries of the IPv6 table.
            DumpFilter::ipv6().with_orig(Tuple {
                proto: Some(l4proto::ICMP),
                ..Tuple::default()
            }),
            DumpFilter::ipv6().with_orig(Tuple {
                proto: Some(l4proto::ICMPV6),
                icmpv6_type: Some(128),
                ..Tuple::default()
            }),
            DumpFilter::ipv4().with_orig(Tuple {
                proto: Some(l4proto::SCTP),
                src_port: Some(5),
                zone: Some(3),
                ..Tuple::default()
            }),
        ] {
            assert_eq!(ok.check(), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn matching_is_exact_for_every_field() {
        let a = udp(v6(1), v6(0xa), v6(5));
        let b = udp(v6(2), v6(0xa), v6(6));
        let reply_src = |addr| {
            DumpFilter::all().with_reply(Tuple {
                src: Some(addr),
                proto: Some(l4proto::UDP),
                ..Tuple::default()
            })
        };
        assert!(sel(&reply_src(v6(5)), &a));
        assert!(!sel(&reply_src(v6(5)), &b));
        // The family: an IPv4 filter never selects an IPv6 entry.
        assert!(!sel(&DumpFilter::ipv4(), &a));
        assert!(sel(&DumpFilter::all(), &a));
        // Mark and status with masks.
        assert!(sel(&DumpFilter::all().with_mark(0x2, 0xf), &a));
        assert!(!sel(&DumpFilter::all().with_mark(0x3, 0xf), &a));
        assert!(sel(
            &DumpFilter::all().with_status(Status::DST_NAT, Status::NAT_MASK),
            &a
        ));
        assert!(!sel(
            &DumpFilter::all().with_status(Status::SRC_NAT, Status::SRC_NAT),
            &a
        ));
        // Ports: of the entry's protocol only.
        let port = |p| {
            DumpFilter::all().with_orig(Tuple {
                proto: Some(l4proto::UDP),
                dst_port: Some(p),
                ..Tuple::default()
            })
        };
        assert!(sel(&port(53), &a));
        assert!(!sel(&port(54), &a));
        let sctp = DumpFilter::ipv6().with_orig(Tuple {
            proto: Some(l4proto::SCTP),
            dst_port: Some(53),
            ..Tuple::default()
        });
        assert!(!sel(&sctp, &a));
    }

    #[test]
    fn zones_by_direction() {
        let t = Tuple::tcp(v4(1), v4(2), 1, 2);
        let both = ConntrackRepr {
            family: 2,
            orig: Some(t),
            reply: Some(t.inverted()),
            zone: Some(7),
            ..ConntrackRepr::default()
        };
        let orig_only = ConntrackRepr {
            zone: None,
            orig: Some(t.with_zone(7)),
            ..both.clone()
        };
        let none = ConntrackRepr {
            zone: None,
            ..both.clone()
        };
        let zone = |z| DumpFilter::all().with_zone(z);
        assert!(sel(&zone(7), &both) && sel(&zone(7), &orig_only));
        assert!(!sel(&zone(7), &none) && sel(&zone(0), &none));
        let reply_zone = |z| {
            DumpFilter::ipv4().with_reply(Tuple {
                zone: Some(z),
                ..Tuple::default()
            })
        };
        assert!(sel(&reply_zone(7), &both));
        assert!(!sel(&reply_zone(7), &orig_only));
        assert!(sel(&reply_zone(0), &orig_only));
    }

    #[test]
    fn the_kernel_part_leaves_out_what_the_kernel_gets_wrong() {
        let t = Tuple {
            src: Some(v6(5)),
            dst: Some(v6(6)),
            proto: Some(l4proto::UDP),
            src_port: Some(9),
            zone: Some(2),
            ..Tuple::default()
        };
        let f = DumpFilter::all().with_reply(t).with_zone(3);
        let k = f.kernel_filter();
        let (kt, kflags) = k.reply.unwrap();
        assert_eq!(kflags, ff::PROTO_NUM | ff::PROTO_SRC_PORT);
        assert_eq!((kt.src, kt.dst, kt.zone), (None, None, None));
        assert_eq!((k.family, k.zone), (10, Some(3)));
        assert_eq!(f.kernel_flush_since(), None);
        // IPv4, TCP/UDP ports: the kernel does it all.
        let v4f = DumpFilter::all().with_orig(Tuple::udp(v4(1), v4(2), 3, 4));
        assert_eq!(v4f.kernel_filter(), v4f);
        assert_eq!(v4f.kernel_flush_since(), Some((6, 11)));
        // SCTP ports and unmapped ICMP types stay in userspace; nothing left: no tuple.
        let sctp = DumpFilter::ipv4().with_orig(Tuple {
            proto: Some(l4proto::SCTP),
            src_port: Some(1),
            ..Tuple::default()
        });
        assert_eq!(sctp.kernel_filter().orig.unwrap().1, ff::PROTO_NUM);
        let only_v6 = DumpFilter::all().with_orig(Tuple {
            src: Some(v6(1)),
            ..Tuple::default()
        });
        assert_eq!(only_v6.kernel_filter(), DumpFilter::ipv6());
        let unreachable = DumpFilter::ipv4().with_orig(Tuple {
            proto: Some(l4proto::ICMP),
            icmp_type: Some(3),
            ..Tuple::default()
        });
        assert_eq!(unreachable.kernel_filter().orig.unwrap().1, ff::PROTO_NUM);
        // Versions of the plain fields.
        assert_eq!(DumpFilter::all().kernel_flush_since(), Some((0, 0)));
        assert_eq!(DumpFilter::ipv4().kernel_flush_since(), Some((4, 20)));
        assert_eq!(
            DumpFilter::all()
                .with_status(Status::ASSURED, Status::ASSURED)
                .kernel_flush_since(),
            Some((5, 15))
        );
        assert_eq!(
            DumpFilter::all().with_zone(0).kernel_flush_since(),
            Some((6, 8))
        );
    }

    #[test]
    fn a_message_without_a_family_has_its_addresses_family() {
        // The kernel always names the family; a message that does not (as the fuzzer makes
        // them) is IPv4 if its addresses are.
        let e = ConntrackRepr {
            family: 0,
            ..udp(v4(1), v4(2), v4(3))
        };
        assert!(sel(&DumpFilter::ipv4(), &e));
        assert!(!sel(&DumpFilter::ipv6(), &e));
        assert!(sel(&DumpFilter::all().with_orig(e.orig.unwrap()), &e));
        // Only the reply tuple has an address.
        let e = ConntrackRepr {
            family: 0,
            orig: Some(Tuple {
                src: None,
                dst: None,
                ..Tuple::udp(v6(1), v6(2), 1, 2)
            }),
            ..udp(v6(1), v6(2), v6(3))
        };
        assert!(sel(&DumpFilter::ipv6(), &e));
    }

    #[test]
    fn nat_ranges_do_not_matter() {
        // The reply tuple is what NAT changed; the NAT attributes are not compared.
        let mut e = udp(v4(1), v4(0xa), v4(5));
        e.nat_dst = Some(NatRange {
            min_addr: Some(v4(5)),
            max_addr: Some(v4(5)),
            ..NatRange::default()
        });
        let f = DumpFilter::all().with_reply(Tuple {
            src: Some(v4(5)),
            ..Tuple::default()
        });
        assert!(sel(&f, &e));
    }
}
