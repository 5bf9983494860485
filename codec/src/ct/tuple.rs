//! Tuples: addresses, L4 protocol and its fields, and the tuple zone.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ct::attrs::{ip, proto, tuple};
use crate::ct::unknown::{attr_len, sum, UnknownSink};
use crate::nl::{Attr, Writer};
use crate::{Error, Result};

/// L4 protocol numbers conntrack tracks (`IPPROTO_*`).
pub mod l4proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IGMP (tracked as a generic protocol).
    pub const IGMP: u8 = 2;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// DCCP.
    pub const DCCP: u8 = 33;
    /// GRE.
    pub const GRE: u8 = 47;
    /// ESP.
    pub const ESP: u8 = 50;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// SCTP.
    pub const SCTP: u8 = 132;
    /// UDP-Lite.
    pub const UDPLITE: u8 = 136;

    /// Whether protocol `p` has ports in its tuples (TCP, UDP, UDP-Lite, SCTP, DCCP), or
    /// keys in their place (GRE).
    pub const fn has_ports(p: u8) -> bool {
        matches!(p, TCP | UDP | UDPLITE | SCTP | DCCP | GRE)
    }
}

/// A conntrack tuple as plain data (`CTA_TUPLE_ORIG`, `_REPLY`, `_MASTER`, and the tuples of
/// expectations). Every field is optional because requests and filters may give only some.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Tuple {
    /// Source address.
    #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
    pub src: Option<IpAddr>,
    /// Destination address.
    #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
    pub dst: Option<IpAddr>,
    /// L4 protocol number (see [`l4proto`]).
    pub proto: Option<u8>,
    /// Source port (TCP, UDP, UDP-Lite, SCTP, DCCP) or GRE source key.
    pub src_port: Option<u16>,
    /// Destination port or GRE destination key.
    pub dst_port: Option<u16>,
    /// ICMP identifier.
    pub icmp_id: Option<u16>,
    /// ICMP type.
    pub icmp_type: Option<u8>,
    /// ICMP code.
    pub icmp_code: Option<u8>,
    /// ICMPv6 identifier.
    pub icmpv6_id: Option<u16>,
    /// ICMPv6 type.
    pub icmpv6_type: Option<u8>,
    /// ICMPv6 code.
    pub icmpv6_code: Option<u8>,
    /// The zone of this direction (`CTA_TUPLE_ZONE`).
    pub zone: Option<u16>,
}

impl Tuple {
    /// A tuple of a port-based protocol (TCP, UDP, UDP-Lite, SCTP, DCCP).
    pub fn ports(proto: u8, src: IpAddr, dst: IpAddr, src_port: u16, dst_port: u16) -> Self {
        Tuple {
            src: Some(src),
            dst: Some(dst),
            proto: Some(proto),
            src_port: Some(src_port),
            dst_port: Some(dst_port),
            ..Tuple::default()
        }
    }

    /// A TCP tuple.
    pub fn tcp(src: IpAddr, dst: IpAddr, src_port: u16, dst_port: u16) -> Self {
        Self::ports(l4proto::TCP, src, dst, src_port, dst_port)
    }

    /// A UDP tuple.
    pub fn udp(src: IpAddr, dst: IpAddr, src_port: u16, dst_port: u16) -> Self {
        Self::ports(l4proto::UDP, src, dst, src_port, dst_port)
    }

    /// A GRE tuple: keys travel in the port attributes.
    pub fn gre(src: IpAddr, dst: IpAddr, src_key: u16, dst_key: u16) -> Self {
        Self::ports(l4proto::GRE, src, dst, src_key, dst_key)
    }

    /// An ICMP tuple (IPv4).
    pub fn icmp(src: Ipv4Addr, dst: Ipv4Addr, kind: u8, code: u8, id: u16) -> Self {
        Tuple {
            src: Some(IpAddr::V4(src)),
            dst: Some(IpAddr::V4(dst)),
            proto: Some(l4proto::ICMP),
            icmp_type: Some(kind),
            icmp_code: Some(code),
            icmp_id: Some(id),
            ..Tuple::default()
        }
    }

    /// An ICMPv6 tuple.
    pub fn icmpv6(src: Ipv6Addr, dst: Ipv6Addr, kind: u8, code: u8, id: u16) -> Self {
        Tuple {
            src: Some(IpAddr::V6(src)),
            dst: Some(IpAddr::V6(dst)),
            proto: Some(l4proto::ICMPV6),
            icmpv6_type: Some(kind),
            icmpv6_code: Some(code),
            icmpv6_id: Some(id),
            ..Tuple::default()
        }
    }

    /// A tuple with only an L4 protocol number (generic protocols).
    pub fn generic(proto: u8, src: IpAddr, dst: IpAddr) -> Self {
        Tuple {
            src: Some(src),
            dst: Some(dst),
            proto: Some(proto),
            ..Tuple::default()
        }
    }

    /// The same tuple with a zone.
    pub fn with_zone(mut self, zone: u16) -> Self {
        self.zone = Some(zone);
        self
    }

    /// The tuple of the other direction, as the kernel would compute it for a connection
    /// that is not NATed: addresses and ports swapped, ICMP requests turned into replies.
    /// The zone is not carried over.
    pub fn inverted(&self) -> Self {
        Tuple {
            src: self.dst,
            dst: self.src,
            proto: self.proto,
            src_port: self.dst_port,
            dst_port: self.src_port,
            icmp_id: self.icmp_id,
            icmp_type: self.icmp_type.map(invert_icmp_type),
            icmp_code: self.icmp_code,
            icmpv6_id: self.icmpv6_id,
            icmpv6_type: self.icmpv6_type.map(invert_icmpv6_type),
            icmpv6_code: self.icmpv6_code,
            zone: None,
        }
    }

    /// The address family of the tuple's addresses, if it has any (2 or 10).
    pub fn family(&self) -> Option<u8> {
        match self.src.or(self.dst)? {
            IpAddr::V4(_) => Some(crate::ct::family::INET),
            IpAddr::V6(_) => Some(crate::ct::family::INET6),
        }
    }

    /// Whether any field of the L4 protocol nest is set.
    fn has_proto(&self) -> bool {
        self.proto.is_some()
            || self.src_port.is_some()
            || self.dst_port.is_some()
            || self.icmp_id.is_some()
            || self.icmp_type.is_some()
            || self.icmp_code.is_some()
            || self.icmpv6_id.is_some()
            || self.icmpv6_type.is_some()
            || self.icmpv6_code.is_some()
    }

    /// Reads a tuple nest; attributes it does not know go to `unknown`.
    ///
    /// # Errors
    /// A malformed attribute or one of the wrong size.
    #[inline]
    pub fn parse(nest: &Attr<'_>, unknown: &mut impl UnknownSink) -> Result<Self> {
        match parse_ports_layout(nest.payload()) {
            Some(t) => Ok(t),
            None => Self::parse_walk(nest, unknown),
        }
    }

    /// [`Tuple::parse`] by the general attribute walk, for any layout.
    #[inline]
    fn parse_walk(nest: &Attr<'_>, unknown: &mut impl UnknownSink) -> Result<Self> {
        let mut t = Tuple::default();
        for a in nest.nested() {
            let a = a?;
            match a.kind() {
                tuple::IP => {
                    for x in a.nested() {
                        let x = x?;
                        match x.kind() {
                            ip::V4_SRC => t.src = Some(IpAddr::V4(x.array::<4>()?.into())),
                            ip::V4_DST => t.dst = Some(IpAddr::V4(x.array::<4>()?.into())),
                            ip::V6_SRC => t.src = Some(IpAddr::V6(x.array::<16>()?.into())),
                            ip::V6_DST => t.dst = Some(IpAddr::V6(x.array::<16>()?.into())),
                            _ => unknown.record([nest.kind(), tuple::IP], &x),
                        }
                    }
                }
                tuple::PROTO => {
                    for x in a.nested() {
                        let x = x?;
                        match x.kind() {
                            proto::NUM => t.proto = Some(x.u8()?),
                            proto::SRC_PORT => t.src_port = Some(x.u16_be()?),
                            proto::DST_PORT => t.dst_port = Some(x.u16_be()?),
                            proto::ICMP_ID => t.icmp_id = Some(x.u16_be()?),
                            proto::ICMP_TYPE => t.icmp_type = Some(x.u8()?),
                            proto::ICMP_CODE => t.icmp_code = Some(x.u8()?),
                            proto::ICMPV6_ID => t.icmpv6_id = Some(x.u16_be()?),
                            proto::ICMPV6_TYPE => t.icmpv6_type = Some(x.u8()?),
                            proto::ICMPV6_CODE => t.icmpv6_code = Some(x.u8()?),
                            _ => unknown.record([nest.kind(), tuple::PROTO], &x),
                        }
                    }
                }
                tuple::ZONE => t.zone = Some(a.u16_be()?),
                _ => unknown.record([nest.kind(), 0], &a),
            }
        }
        Ok(t)
    }

    /// Writes the tuple as a nest of type `kind`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        w.nest(kind, |w| {
            if self.src.is_some() || self.dst.is_some() {
                w.nest(tuple::IP, |w| {
                    match self.src {
                        Some(IpAddr::V4(a)) => w.attr(ip::V4_SRC, &a.octets())?,
                        Some(IpAddr::V6(a)) => w.attr(ip::V6_SRC, &a.octets())?,
                        None => {}
                    }
                    match self.dst {
                        Some(IpAddr::V4(a)) => w.attr(ip::V4_DST, &a.octets()),
                        Some(IpAddr::V6(a)) => w.attr(ip::V6_DST, &a.octets()),
                        None => Ok(()),
                    }
                })?;
            }
            if self.has_proto() {
                w.nest(tuple::PROTO, |w| {
                    opt(w, self.proto, |w, v| w.attr_u8(proto::NUM, v))?;
                    opt(w, self.src_port, |w, v| w.attr_u16_be(proto::SRC_PORT, v))?;
                    opt(w, self.dst_port, |w, v| w.attr_u16_be(proto::DST_PORT, v))?;
                    opt(w, self.icmp_id, |w, v| w.attr_u16_be(proto::ICMP_ID, v))?;
                    opt(w, self.icmp_type, |w, v| w.attr_u8(proto::ICMP_TYPE, v))?;
                    opt(w, self.icmp_code, |w, v| w.attr_u8(proto::ICMP_CODE, v))?;
                    opt(w, self.icmpv6_id, |w, v| w.attr_u16_be(proto::ICMPV6_ID, v))?;
                    opt(w, self.icmpv6_type, |w, v| w.attr_u8(proto::ICMPV6_TYPE, v))?;
                    opt(w, self.icmpv6_code, |w, v| w.attr_u8(proto::ICMPV6_CODE, v))
                })?;
            }
            opt(w, self.zone, |w, v| w.attr_u16_be(tuple::ZONE, v))
        })
    }

    /// The bytes [`Tuple::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let addr = |a: Option<IpAddr>| match a {
            Some(IpAddr::V4(_)) => attr_len(4),
            Some(IpAddr::V6(_)) => attr_len(16),
            None => 0,
        };
        let ip_len = if self.src.is_some() || self.dst.is_some() {
            attr_len(sum(&[addr(self.src), addr(self.dst)]))
        } else {
            0
        };
        let u8s = [
            self.proto,
            self.icmp_type,
            self.icmp_code,
            self.icmpv6_type,
            self.icmpv6_code,
        ]
        .iter()
        .filter(|v| v.is_some())
        .count();
        let u16s = [self.src_port, self.dst_port, self.icmp_id, self.icmpv6_id]
            .iter()
            .filter(|v| v.is_some())
            .count();
        let proto_len = if self.has_proto() {
            attr_len(sum(&[
                u8s.saturating_mul(attr_len(1)),
                u16s.saturating_mul(attr_len(2)),
            ]))
        } else {
            0
        };
        let zone_len = if self.zone.is_some() { attr_len(2) } else { 0 };
        attr_len(sum(&[ip_len, proto_len, zone_len]))
    }
}

/// Writes `v` with `f` if it is present.
#[inline]
pub(crate) fn opt<T: Copy>(
    w: &mut Writer<'_>,
    v: Option<T>,
    f: impl FnOnce(&mut Writer<'_>, T) -> Result<()>,
) -> Result<()> {
    match v {
        Some(v) => f(w, v),
        None => Ok(()),
    }
}

/// The ICMP type of the reply to a request of type `t` (echo, timestamp, info, mask).
const fn invert_icmp_type(t: u8) -> u8 {
    match t {
        8 => 0,
        0 => 8,
        13 => 14,
        14 => 13,
        15 => 16,
        16 => 15,
        17 => 18,
        18 => 17,
        other => other,
    }
}

/// The ICMPv6 type of the reply to a request of type `t` (echo, node information).
const fn invert_icmpv6_type(t: u8) -> u8 {
    match t {
        128 => 129,
        129 => 128,
        139 => 140,
        140 => 139,
        other => other,
    }
}

/// Checks that a tuple has what a request about one entry needs: both addresses and a
/// protocol number.
pub(crate) fn require_complete(t: &Tuple, what: &'static str) -> Result<()> {
    if t.src.is_none() || t.dst.is_none() || t.proto.is_none() {
        return Err(Error::MissingAttribute(what));
    }
    Ok(())
}

/// Takes `N` bytes off the front of `b`.
#[inline]
pub(crate) fn take<const N: usize>(b: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = b.split_first_chunk::<N>()?;
    *b = rest;
    Some(*head)
}

/// Takes an attribute header off the front of `b` if it has length `len` and type `kind`
/// (flags masked).
#[inline]
pub(crate) fn take_header(b: &mut &[u8], len: u16, kind: u16) -> Option<()> {
    let [l0, l1, k0, k1] = take::<4>(b)?;
    let found = (
        u16::from_ne_bytes([l0, l1]),
        Attr::new(u16::from_ne_bytes([k0, k1]), &[]).kind(),
    );
    (found == (len, kind)).then_some(())
}

/// Reads a tuple laid out exactly as the kernel writes one of a port-based protocol (TCP,
/// UDP, UDP-Lite, SCTP, DCCP), IPv4 or IPv6 — `IP { SRC, DST }`, `PROTO { NUM, SRC_PORT,
/// DST_PORT }`, nothing else — without the general attribute walk; most entries of a busy
/// table are such tuples. `None` for any other layout, which [`Tuple::parse`] then walks:
/// the result is the same either way.
#[inline]
fn parse_ports_layout(payload: &[u8]) -> Option<Tuple> {
    let mut b = payload;
    let (src, dst) = match payload.len() {
        48 => {
            take_header(&mut b, 20, tuple::IP)?;
            take_header(&mut b, 8, ip::V4_SRC)?;
            let src = Ipv4Addr::from(take::<4>(&mut b)?);
            take_header(&mut b, 8, ip::V4_DST)?;
            let dst = Ipv4Addr::from(take::<4>(&mut b)?);
            (IpAddr::V4(src), IpAddr::V4(dst))
        }
        72 => {
            take_header(&mut b, 44, tuple::IP)?;
            take_header(&mut b, 20, ip::V6_SRC)?;
            let src = Ipv6Addr::from(take::<16>(&mut b)?);
            take_header(&mut b, 20, ip::V6_DST)?;
            let dst = Ipv6Addr::from(take::<16>(&mut b)?);
            (IpAddr::V6(src), IpAddr::V6(dst))
        }
        _ => return None,
    };
    take_header(&mut b, 28, tuple::PROTO)?;
    take_header(&mut b, 5, proto::NUM)?;
    let [num, ..] = take::<4>(&mut b)?;
    take_header(&mut b, 6, proto::SRC_PORT)?;
    let [s0, s1, ..] = take::<4>(&mut b)?;
    take_header(&mut b, 6, proto::DST_PORT)?;
    let [d0, d1, ..] = take::<4>(&mut b)?;
    Some(Tuple {
        src: Some(src),
        dst: Some(dst),
        proto: Some(num),
        src_port: Some(u16::from_be_bytes([s0, s1])),
        dst_port: Some(u16::from_be_bytes([d0, d1])),
        ..Tuple::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::Unknowns;
    use crate::nl::Attrs;

    /// The kernel-layout fast path gives what the general walk gives, and only takes the
    /// layouts it knows.
    #[test]
    fn ports_layout_matches_the_walk() {
        use core::net::{Ipv4Addr, Ipv6Addr};
        let v4 = |a: [u8; 4]| IpAddr::V4(Ipv4Addr::from(a));
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7));
        let cases = [
            (
                Tuple::tcp(v4([10, 0, 0, 1]), v4([192, 0, 2, 9]), 40000, 80),
                true,
            ),
            (Tuple::udp(v6, v6, 53, 5353), true),
            (
                Tuple::ports(132, v4([1, 2, 3, 4]), v4([5, 6, 7, 8]), 1, 2),
                true,
            ),
            (
                Tuple::tcp(v4([10, 0, 0, 1]), v4([10, 0, 0, 2]), 1, 2).with_zone(7),
                false,
            ),
            (
                Tuple::icmp([1, 1, 1, 1].into(), [2, 2, 2, 2].into(), 8, 0, 99),
                false,
            ),
            (
                Tuple::generic(47, v4([1, 1, 1, 1]), v4([2, 2, 2, 2])),
                false,
            ),
        ];
        for (t, fast) in cases {
            let mut buf = [0u8; 256];
            let mut w = Writer::new(&mut buf);
            t.emit(1, &mut w).unwrap();
            let a = Attrs::new(w.written()).next().unwrap().unwrap();
            assert_eq!(parse_ports_layout(a.payload()).is_some(), fast, "{t:?}");
            assert_eq!(Tuple::parse_walk(&a, &mut ()).unwrap(), t);
            assert_eq!(Tuple::parse(&a, &mut ()).unwrap(), t);
        }
        // The right lengths with another attribute in a slot: the walk decides.
        let t = Tuple::tcp(v4([10, 0, 0, 1]), v4([10, 0, 0, 2]), 1, 2);
        let mut buf = [0u8; 256];
        let mut w = Writer::new(&mut buf);
        t.emit(1, &mut w).unwrap();
        let len = w.len();
        buf[4 + 4 + 2] = 9; // V4_SRC becomes type 9, unknown
        let a = Attrs::new(&buf[..len]).next().unwrap().unwrap();
        assert!(parse_ports_layout(a.payload()).is_none());
        let mut u = Unknowns::default();
        let walked = Tuple::parse(&a, &mut u).unwrap();
        assert_eq!((walked.src, u.count()), (None, 1));
    }

    fn round_trip(t: &Tuple) {
        let mut buf = [0xa5u8; 256];
        let mut w = Writer::new(&mut buf);
        t.emit(1, &mut w).unwrap();
        assert_eq!(w.len(), t.buffer_len());
        let a = Attrs::new(w.written()).next().unwrap().unwrap();
        let mut u = Unknowns::default();
        assert_eq!(&Tuple::parse(&a, &mut u).unwrap(), t);
        assert!(u.is_empty());
    }

    #[test]
    fn tuples_round_trip() {
        let v4 = |d| IpAddr::V4(Ipv4Addr::new(10, 0, 0, d));
        round_trip(&Tuple::tcp(v4(1), v4(2), 1000, 80));
        round_trip(&Tuple::tcp(v4(1), v4(2), 1000, 80).with_zone(7));
        round_trip(&Tuple::icmp(
            Ipv4Addr::new(1, 2, 3, 4),
            Ipv4Addr::LOCALHOST,
            8,
            0,
            77,
        ));
        round_trip(&Tuple::icmpv6(
            Ipv6Addr::LOCALHOST,
            Ipv6Addr::LOCALHOST,
            128,
            0,
            1,
        ));
        round_trip(&Tuple::generic(99, v4(3), v4(4)));
        round_trip(&Tuple::default());
        round_trip(&Tuple {
            zone: Some(3),
            ..Tuple::default()
        });
    }

    #[test]
    fn inversion() {
        let t = Tuple::icmp(
            Ipv4Addr::new(1, 1, 1, 1),
            Ipv4Addr::new(2, 2, 2, 2),
            8,
            0,
            5,
        );
        let r = t.inverted();
        assert_eq!(r.src, t.dst);
        assert_eq!(r.icmp_type, Some(0));
        assert_eq!(r.inverted(), t);
        let v6 = Tuple::icmpv6(Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED, 128, 0, 1);
        assert_eq!(v6.inverted().icmpv6_type, Some(129));
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        w.nest(1, |w| w.nest(tuple::IP, |w| w.attr(ip::V4_SRC, &[1, 2, 3])))
            .unwrap();
        let a = Attrs::new(w.written()).next().unwrap().unwrap();
        assert!(matches!(
            Tuple::parse(&a, &mut Unknowns::default()),
            Err(Error::AttributeSize { kind: 1, len: 3 })
        ));
    }

    #[test]
    fn unknown_fields_are_kept() {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        w.nest(1, |w| {
            w.nest(tuple::PROTO, |w| {
                w.attr_u8(proto::NUM, 6)?;
                w.attr_u16_be(42, 9)
            })
        })
        .unwrap();
        let a = Attrs::new(w.written()).next().unwrap().unwrap();
        let mut u = Unknowns::default();
        let t = Tuple::parse(&a, &mut u).unwrap();
        assert_eq!(t.proto, Some(6));
        assert_eq!(u.kept.len(), 1);
        assert_eq!(u.kept[0].path, [1, tuple::PROTO]);
        assert_eq!(u.kept[0].raw_kind, 42);
    }
}
