//! Conntrack entries in sync messages: the view [`SyncCt`], the conversion to and from
//! [`ConntrackRepr`], and the emitter [`emit_ct`].

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ct::{
    l4proto, ConntrackRepr, DccpInfo, DccpRole, DccpState, Helper, Labels, NatRange, ProtoInfo,
    SctpInfo, SctpState, SeqAdj, Status, Synproxy, TcpInfo, TcpState, Tuple,
};
use crate::sync::attr::{nta, NtaAttr, NtaAttrs, NtaWriter, VAR_MAX};
use crate::sync::header::{DataKind, Header};
use crate::sync::{HEADER_LEN, VERSION};
use crate::{Error, Result};

const ABSENT: u16 = u16::MAX;
const SLOTS: usize = nta::MAX as usize;

/// Walks `attrs`, checks every attribute's size against `size`, and notes where each known
/// one is (the last of duplicates wins, as in conntrackd).
pub(crate) fn index<const N: usize>(
    attrs: &[u8],
    size: fn(u16) -> Option<Option<usize>>,
    var_max: fn(u16) -> usize,
) -> Result<([u16; N], u16)> {
    let mut idx = [ABSENT; N];
    let mut unknown = 0u16;
    let mut it = NtaAttrs::new(attrs);
    loop {
        let offset = attrs.len().saturating_sub(it.rest_len());
        let Some(a) = it.next() else { break };
        let a = a?;
        match size(a.kind()) {
            Some(Some(n)) if a.payload().len() != n => {
                return Err(Error::AttributeSize {
                    kind: a.kind(),
                    len: a.payload().len(),
                })
            }
            Some(None) if a.payload().len() > var_max(a.kind()) => {
                return Err(Error::AttributeSize {
                    kind: a.kind(),
                    len: a.payload().len(),
                })
            }
            Some(_) => {
                if let Some(slot) = idx.get_mut(usize::from(a.kind())) {
                    *slot = u16::try_from(offset).map_err(|_| Error::TooLong("sync message"))?;
                }
            }
            None => unknown = unknown.saturating_add(1),
        }
    }
    Ok((idx, unknown))
}

pub(crate) fn at<'a, const N: usize>(
    attrs: &'a [u8],
    idx: &[u16; N],
    kind: u16,
) -> Option<NtaAttr<'a>> {
    let off = *idx.get(usize::from(kind))?;
    if off == ABSENT {
        return None;
    }
    NtaAttrs::new(attrs.get(usize::from(off)..)?).next()?.ok()
}

/// Reads an address group: source then destination.
pub(crate) fn addrs(a: &NtaAttr<'_>) -> Result<(IpAddr, IpAddr)> {
    match a.payload().len() {
        8 => {
            let b: [u8; 8] = a.array()?;
            let (s, d) = b.split_at(4);
            let s: [u8; 4] = s.try_into().map_err(|_| Error::Truncated("address"))?;
            let d: [u8; 4] = d.try_into().map_err(|_| Error::Truncated("address"))?;
            Ok((IpAddr::V4(Ipv4Addr::from(s)), IpAddr::V4(Ipv4Addr::from(d))))
        }
        _ => {
            let b: [u8; 32] = a.array()?;
            let (s, d) = b.split_at(16);
            let s: [u8; 16] = s.try_into().map_err(|_| Error::Truncated("address"))?;
            let d: [u8; 16] = d.try_into().map_err(|_| Error::Truncated("address"))?;
            Ok((IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d))))
        }
    }
}

/// Reads a port group: source then destination, both be16.
pub(crate) fn ports(a: &NtaAttr<'_>) -> Result<(u16, u16)> {
    let [a0, a1, b0, b1] = a.array::<4>()?;
    Ok((u16::from_be_bytes([a0, a1]), u16::from_be_bytes([b0, b1])))
}

/// Writes an address group (both addresses must be of one family).
pub(crate) fn emit_addrs(
    w: &mut NtaWriter<'_>,
    v4: u16,
    v6: u16,
    src: IpAddr,
    dst: IpAddr,
) -> Result<()> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => w.attr_with(v4, 8, |out| {
            for (o, b) in out.iter_mut().zip(s.octets().into_iter().chain(d.octets())) {
                *o = b;
            }
        }),
        (IpAddr::V6(s), IpAddr::V6(d)) => w.attr_with(v6, 32, |out| {
            for (o, b) in out.iter_mut().zip(s.octets().into_iter().chain(d.octets())) {
                *o = b;
            }
        }),
        _ => Err(Error::InvalidValue("tuple with addresses of two families")),
    }
}

/// Writes a port group.
pub(crate) fn emit_ports(w: &mut NtaWriter<'_>, kind: u16, src: u16, dst: u16) -> Result<()> {
    let [a, b] = src.to_be_bytes();
    let [c, d] = dst.to_be_bytes();
    w.attr(kind, &[a, b, c, d])
}

/// A 16-bit value as a little-endian sender's conntrackd puts it on the wire (`htons` of a
/// value already in network order): the bytes of its big-endian form, swapped.
fn swapped16(a: &NtaAttr<'_>) -> Result<u16> {
    a.array::<2>().map(u16::from_le_bytes)
}

/// A view of the attributes of a conntrack sync message (`CT_NEW`, `CT_UPD`, `CT_DEL`).
///
/// Making it walks the attributes once, checks every length and every known attribute's
/// size the way conntrackd's receiver does, and notes where each is. Attribute numbers
/// this codec does not know are skipped and counted (conntrackd 1.4.7 would refuse the whole
/// message).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SyncCt<'a> {
    attrs: &'a [u8],
    idx: [u16; SLOTS],
    unknown: u16,
}

fn ct_var_max(kind: u16) -> usize {
    match kind {
        nta::HELPER_NAME => Helper::NAME_CAP.saturating_add(1),
        _ => VAR_MAX,
    }
}

impl<'a> SyncCt<'a> {
    /// Makes a view of a data message's attribute bytes.
    ///
    /// # Errors
    /// A malformed attribute, or one whose size its type does not allow.
    pub fn new_checked(attrs: &'a [u8]) -> Result<Self> {
        let (idx, unknown) = index::<SLOTS>(attrs, nta::size, ct_var_max)?;
        Ok(SyncCt {
            attrs,
            idx,
            unknown,
        })
    }

    /// The attribute of number `kind`, if present.
    pub fn attr(&self, kind: u16) -> Option<NtaAttr<'a>> {
        at(self.attrs, &self.idx, kind)
    }

    /// The attribute bytes.
    pub const fn bytes(&self) -> &'a [u8] {
        self.attrs
    }

    /// How many attributes have numbers this codec does not know.
    pub const fn unknown_count(&self) -> u16 {
        self.unknown
    }

    /// The address family (2 or 10) from the address attribute.
    ///
    /// # Errors
    /// [`Error::MissingAttribute`] without `NTA_IPV4`/`NTA_IPV6`.
    pub fn family(&self) -> Result<u8> {
        if self.attr(nta::IPV4).is_some() {
            Ok(crate::ct::family::INET)
        } else if self.attr(nta::IPV6).is_some() {
            Ok(crate::ct::family::INET6)
        } else {
            Err(Error::MissingAttribute("sync NTA_IPV4/NTA_IPV6"))
        }
    }

    fn u8_of(&self, kind: u16) -> Result<Option<u8>> {
        self.attr(kind).map(|a| a.u8()).transpose()
    }

    fn u32_of(&self, kind: u16) -> Result<Option<u32>> {
        self.attr(kind).map(|a| a.u32_be()).transpose()
    }

    /// The original tuple: addresses, protocol, ports or ICMP fields.
    ///
    /// # Errors
    /// [`Error::MissingAttribute`] without addresses or protocol.
    pub fn orig(&self) -> Result<Tuple> {
        let a = self
            .attr(nta::IPV4)
            .or_else(|| self.attr(nta::IPV6))
            .ok_or(Error::MissingAttribute("sync NTA_IPV4/NTA_IPV6"))?;
        let (src, dst) = addrs(&a)?;
        let proto = self
            .u8_of(nta::L4PROTO)?
            .ok_or(Error::MissingAttribute("sync NTA_L4PROTO"))?;
        let mut t = Tuple::generic(proto, src, dst);
        if let Some(p) = self.attr(nta::PORT) {
            let (s, d) = ports(&p)?;
            (t.src_port, t.dst_port) = (Some(s), Some(d));
        }
        let icmp = (
            self.u8_of(nta::ICMP_TYPE)?,
            self.u8_of(nta::ICMP_CODE)?,
            self.attr(nta::ICMP_ID).map(|a| swapped16(&a)).transpose()?,
        );
        if proto == l4proto::ICMPV6 {
            (t.icmpv6_type, t.icmpv6_code, t.icmpv6_id) = icmp;
        } else if proto == l4proto::ICMP {
            (t.icmp_type, t.icmp_code, t.icmp_id) = icmp;
        }
        Ok(t)
    }

    /// The zone (`NTA_ZONE`).
    ///
    /// # Errors
    /// A wrong-sized attribute (caught when the view was made).
    pub fn zone(&self) -> Result<Option<u16>> {
        self.attr(nta::ZONE).map(|a| a.u16_be()).transpose()
    }

    /// The master's tuple, for an entry an expectation created.
    ///
    /// # Errors
    /// A master address without its protocol.
    pub fn master(&self) -> Result<Option<Tuple>> {
        let Some(a) = self
            .attr(nta::MASTER_IPV4)
            .or_else(|| self.attr(nta::MASTER_IPV6))
        else {
            return Ok(None);
        };
        let (src, dst) = addrs(&a)?;
        let proto = self
            .u8_of(nta::MASTER_L4PROTO)?
            .ok_or(Error::MissingAttribute("sync NTA_MASTER_L4PROTO"))?;
        let mut t = Tuple::generic(proto, src, dst);
        if let Some(p) = self.attr(nta::MASTER_PORT) {
            let (s, d) = ports(&p)?;
            (t.src_port, t.dst_port) = (Some(s), Some(d));
        }
        Ok(Some(t))
    }

    /// The helper's name (`NTA_HELPER_NAME`).
    ///
    /// # Errors
    /// A name without its NUL, not UTF-8, or over 15 bytes.
    pub fn helper(&self) -> Result<Option<Helper>> {
        self.attr(nta::HELPER_NAME)
            .map(|a| Helper::named(a.c_str()?))
            .transpose()
    }

    /// The labels (`NTA_LABELS`); `None` when absent or all clear.
    ///
    /// # Errors
    /// A length not a multiple of 4, or a label set beyond the 128 the kernel has.
    pub fn labels(&self) -> Result<Option<Labels>> {
        let Some(a) = self.attr(nta::LABELS) else {
            return Ok(None);
        };
        let p = a.payload();
        if p.len() % 4 != 0 {
            return Err(Error::AttributeSize {
                kind: nta::LABELS,
                len: p.len(),
            });
        }
        let mut l = Labels::default();
        for (i, c) in p.chunks_exact(4).enumerate() {
            let w = u32::from_be_bytes(c.try_into().map_err(|_| Error::Truncated("labels"))?);
            match l.0.get_mut(i) {
                Some(slot) => *slot = w,
                None if w == 0 => {}
                None => return Err(Error::CapacityExceeded("sync labels beyond 128 bits")),
            }
        }
        Ok((!l.is_empty()).then_some(l))
    }

    /// Whether [`SyncCt::read_into`] would take the entry, without building it: what the
    /// view's making left to check (every fixed size was checked then) is the original
    /// tuple's addresses and protocol, the master's protocol, the helper's name and the
    /// labels. A receiver that only keeps the bytes checks them this way (the `sync_msg`
    /// fuzz target holds it to `read_into`).
    ///
    /// # Errors
    /// As [`SyncCt::read_into`].
    pub fn check(&self) -> Result<()> {
        if self.attr(nta::IPV4).is_none() && self.attr(nta::IPV6).is_none() {
            return Err(Error::MissingAttribute("sync NTA_IPV4/NTA_IPV6"));
        }
        if self.attr(nta::L4PROTO).is_none() {
            return Err(Error::MissingAttribute("sync NTA_L4PROTO"));
        }
        let master = self.attr(nta::MASTER_IPV4).is_some() || self.attr(nta::MASTER_IPV6).is_some();
        if master && self.attr(nta::MASTER_L4PROTO).is_none() {
            return Err(Error::MissingAttribute("sync NTA_MASTER_L4PROTO"));
        }
        self.helper()?;
        self.labels()?;
        Ok(())
    }

    /// Reads the entry into `r`, replacing everything it held: the original tuple, the reply
    /// tuple the kernel would have (the inverse, with the NAT addresses and ports applied),
    /// the NAT ranges, status, timeout, mark, protocol state, master, sequence adjustment,
    /// helper, labels, synproxy and zone.
    ///
    /// # Errors
    /// As [`SyncCt::orig`]; [`Error::CapacityExceeded`] for labels beyond 128 bits or a
    /// helper name over 15 bytes.
    pub fn read_into(&self, r: &mut ConntrackRepr) -> Result<()> {
        let orig = self.orig()?;
        r.clone_from(&ConntrackRepr::default());
        r.family = self.family()?;
        let mut reply = orig.inverted();
        r.status = self.u32_of(nta::STATUS)?.map(Status);
        r.timeout = self.u32_of(nta::TIMEOUT)?;
        r.mark = self.u32_of(nta::MARK)?;
        r.zone = self.zone()?;
        r.master = self.master()?;
        // NAT: the reply tuple's destination (SNAT) and source (DNAT).
        let snat = self
            .attr(nta::SNAT_IPV4)
            .map(|a| a.array::<4>().map(|b| IpAddr::V4(b.into())))
            .or_else(|| {
                self.attr(nta::SNAT_IPV6)
                    .map(|a| a.array::<16>().map(|b| IpAddr::V6(b.into())))
            })
            .transpose()?;
        let dnat = self
            .attr(nta::DNAT_IPV4)
            .map(|a| a.array::<4>().map(|b| IpAddr::V4(b.into())))
            .or_else(|| {
                self.attr(nta::DNAT_IPV6)
                    .map(|a| a.array::<16>().map(|b| IpAddr::V6(b.into())))
            })
            .transpose()?;
        let spat = self
            .attr(nta::SPAT_PORT)
            .map(|a| swapped16(&a))
            .transpose()?;
        let dpat = self
            .attr(nta::DPAT_PORT)
            .map(|a| swapped16(&a))
            .transpose()?;
        if snat.is_some() || spat.is_some() {
            reply.dst = snat.or(reply.dst);
            reply.dst_port = spat.or(reply.dst_port);
            r.nat_src = Some(NatRange {
                min_addr: snat,
                max_addr: snat,
                min_port: spat,
                max_port: spat,
            });
        }
        if dnat.is_some() || dpat.is_some() {
            reply.src = dnat.or(reply.src);
            reply.src_port = dpat.or(reply.src_port);
            r.nat_dst = Some(NatRange {
                min_addr: dnat,
                max_addr: dnat,
                min_port: dpat,
                max_port: dpat,
            });
        }
        r.orig = Some(orig);
        r.reply = Some(reply);
        r.protoinfo = match orig.proto {
            Some(l4proto::TCP) if self.attr(nta::TCP_STATE).is_some() => {
                Some(ProtoInfo::Tcp(TcpInfo {
                    state: self.u8_of(nta::TCP_STATE)?.map(TcpState::from),
                    wscale_orig: self.u8_of(nta::TCP_WSCALE_ORIG)?,
                    wscale_reply: self.u8_of(nta::TCP_WSCALE_REPL)?,
                    ..TcpInfo::default()
                }))
            }
            Some(l4proto::SCTP) if self.attr(nta::SCTP_STATE).is_some() => {
                Some(ProtoInfo::Sctp(SctpInfo {
                    state: self.u8_of(nta::SCTP_STATE)?.map(SctpState::from),
                    vtag_orig: self.u32_of(nta::SCTP_VTAG_ORIG)?,
                    vtag_reply: self.u32_of(nta::SCTP_VTAG_REPL)?,
                }))
            }
            Some(l4proto::DCCP) if self.attr(nta::DCCP_STATE).is_some() => {
                Some(ProtoInfo::Dccp(DccpInfo {
                    state: self.u8_of(nta::DCCP_STATE)?.map(DccpState::from),
                    role: self.u8_of(nta::DCCP_ROLE)?.map(DccpRole::from),
                    handshake_seq: None,
                }))
            }
            _ => None,
        };
        if let Some(a) = self.attr(nta::NAT_SEQ_ADJ) {
            let b: [u8; 24] = a.array()?;
            let mut v = [0u32; 6];
            for (x, c) in v.iter_mut().zip(b.chunks_exact(4)) {
                *x = u32::from_be_bytes(c.try_into().map_err(|_| Error::Truncated("seqadj"))?);
            }
            let [p0, b0, a0, p1, b1, a1] = v;
            r.seq_adj_orig = Some(SeqAdj {
                correction_pos: Some(p0),
                offset_before: Some(b0),
                offset_after: Some(a0),
            });
            r.seq_adj_reply = Some(SeqAdj {
                correction_pos: Some(p1),
                offset_before: Some(b1),
                offset_after: Some(a1),
            });
        }
        r.helper = self.helper()?;
        r.labels = self.labels()?;
        if let Some(a) = self.attr(nta::SYNPROXY) {
            let b: [u8; 12] = a.array()?;
            let w = |i: usize| -> Result<u32> {
                b.get(i..i.saturating_add(4))
                    .and_then(|s| s.try_into().ok())
                    .map(u32::from_be_bytes)
                    .ok_or(Error::Truncated("synproxy"))
            };
            r.synproxy = Some(Synproxy {
                its: Some(w(0)?),
                isn: Some(w(4)?),
                tsoff: Some(w(8)?),
            });
        }
        Ok(())
    }

    /// The entry as a [`ConntrackRepr`] (see [`SyncCt::read_into`]).
    ///
    /// # Errors
    /// As [`SyncCt::read_into`].
    pub fn to_repr(&self) -> Result<ConntrackRepr> {
        let mut r = ConntrackRepr::default();
        self.read_into(&mut r)?;
        Ok(r)
    }
}

/// Writes the attributes of `r` the way conntrackd's `ct2msg` lays them out: addresses,
/// status, protocol, the protocol's fields, timeout, mark, master, NAT, sequence adjustment,
/// helper, labels, synproxy, zone. Absent fields are left out. NAT is derived as conntrackd
/// derives it: source NAT when the status says `SRC_NAT_DONE` (or has no status) and the
/// reply's destination differs from the original source, and so on.
///
/// # Errors
/// [`Error::MissingAttribute`] without an original tuple with addresses and protocol;
/// [`Error::BufferTooSmall`].
pub fn emit_ct_attrs(r: &ConntrackRepr, w: &mut NtaWriter<'_>) -> Result<()> {
    let orig = r
        .orig
        .as_ref()
        .ok_or(Error::MissingAttribute("original tuple"))?;
    let (Some(src), Some(dst), Some(proto)) = (orig.src, orig.dst, orig.proto) else {
        return Err(Error::MissingAttribute("original addresses and protocol"));
    };
    emit_addrs(w, nta::IPV4, nta::IPV6, src, dst)?;
    if let Some(s) = r.status {
        w.u32_be(nta::STATUS, s.0)?;
    }
    w.u8(nta::L4PROTO, proto)?;
    if let (Some(s), Some(d)) = (orig.src_port, orig.dst_port) {
        emit_ports(w, nta::PORT, s, d)?;
    }
    match r.protoinfo {
        Some(ProtoInfo::Tcp(t)) => {
            if let Some(s) = t.state {
                w.u8(nta::TCP_STATE, s.into())?;
            }
            if let Some(v) = t.wscale_orig {
                w.u8(nta::TCP_WSCALE_ORIG, v)?;
            }
            if let Some(v) = t.wscale_reply {
                w.u8(nta::TCP_WSCALE_REPL, v)?;
            }
        }
        Some(ProtoInfo::Sctp(s)) => {
            if let Some(v) = s.state {
                w.u8(nta::SCTP_STATE, v.into())?;
            }
            if let Some(v) = s.vtag_orig {
                w.u32_be(nta::SCTP_VTAG_ORIG, v)?;
            }
            if let Some(v) = s.vtag_reply {
                w.u32_be(nta::SCTP_VTAG_REPL, v)?;
            }
        }
        Some(ProtoInfo::Dccp(d)) => {
            if let Some(v) = d.state {
                w.u8(nta::DCCP_STATE, v.into())?;
            }
            if let Some(v) = d.role {
                w.u8(nta::DCCP_ROLE, v.into())?;
            }
        }
        None => {}
    }
    let icmp = match proto {
        l4proto::ICMP => (orig.icmp_type, orig.icmp_code, orig.icmp_id),
        l4proto::ICMPV6 => (orig.icmpv6_type, orig.icmpv6_code, orig.icmpv6_id),
        _ => (None, None, None),
    };
    // Each field on its own, in conntrackd's order: a message that carries only some of
    // them reads back the same.
    let (t, c, id) = icmp;
    if let Some(t) = t {
        w.u8(nta::ICMP_TYPE, t)?;
    }
    if let Some(c) = c {
        w.u8(nta::ICMP_CODE, c)?;
    }
    if let Some(id) = id {
        w.attr(nta::ICMP_ID, &id.to_le_bytes())?;
    }
    if let Some(v) = r.timeout {
        w.u32_be(nta::TIMEOUT, v)?;
    }
    if let Some(v) = r.mark {
        w.u32_be(nta::MARK, v)?;
    }
    if let Some(m) = r.master {
        if let (Some(s), Some(d), Some(p)) = (m.src, m.dst, m.proto) {
            emit_addrs(w, nta::MASTER_IPV4, nta::MASTER_IPV6, s, d)?;
            w.u8(nta::MASTER_L4PROTO, p)?;
            if let (Some(s), Some(d)) = (m.src_port, m.dst_port) {
                emit_ports(w, nta::MASTER_PORT, s, d)?;
            }
        }
    }
    emit_nat(r, orig, w)?;
    if let (Some(o), Some(p)) = (r.seq_adj_orig, r.seq_adj_reply) {
        if let (Some(a), Some(b), Some(c), Some(d), Some(e), Some(f)) = (
            o.correction_pos,
            o.offset_before,
            o.offset_after,
            p.correction_pos,
            p.offset_before,
            p.offset_after,
        ) {
            w.attr_with(nta::NAT_SEQ_ADJ, 24, |out| {
                for (o, v) in out.chunks_exact_mut(4).zip([a, b, c, d, e, f]) {
                    o.copy_from_slice(&v.to_be_bytes());
                }
            })?;
        }
    }
    if let Some(h) = &r.helper {
        w.c_str(nta::HELPER_NAME, &h.name)?;
    }
    if let Some(l) = r.labels.filter(|l| !l.is_empty()) {
        w.attr_with(nta::LABELS, 16, |out| {
            for (o, v) in out.chunks_exact_mut(4).zip(l.0) {
                o.copy_from_slice(&v.to_be_bytes());
            }
        })?;
    }
    if let Some(Synproxy {
        isn: Some(isn),
        its: Some(its),
        tsoff: Some(tsoff),
    }) = r.synproxy
    {
        w.attr_with(nta::SYNPROXY, 12, |out| {
            for (o, v) in out.chunks_exact_mut(4).zip([its, isn, tsoff]) {
                o.copy_from_slice(&v.to_be_bytes());
            }
        })?;
    }
    if let Some(z) = r.zone {
        w.u16_be(nta::ZONE, z)?;
    }
    Ok(())
}

/// NAT as conntrackd derives it from the status and the reply tuple; an entry read from a
/// sync message (whose NAT ranges say what the message carried) writes back exactly that.
fn emit_nat(r: &ConntrackRepr, orig: &Tuple, w: &mut NtaWriter<'_>) -> Result<()> {
    let Some(reply) = r.reply else { return Ok(()) };
    let has = |bit: Status| r.status.is_some_and(|s| s.contains(bit));
    let status_or_absent = |bit: Status| r.status.is_none_or(|s| s.contains(bit));
    let snat = match r.nat_src {
        Some(n) => n.min_addr,
        None if has(Status::SRC_NAT_DONE) && reply.dst != orig.src => reply.dst,
        None => None,
    };
    let dnat = match r.nat_dst {
        Some(n) => n.min_addr,
        None if has(Status::DST_NAT_DONE) && reply.src != orig.dst => reply.src,
        None => None,
    };
    let spat = match r.nat_src {
        Some(n) => n.min_port,
        None if status_or_absent(Status::SRC_NAT_DONE) && reply.dst_port != orig.src_port => {
            reply.dst_port
        }
        None => None,
    };
    let dpat = match r.nat_dst {
        Some(n) => n.min_port,
        None if status_or_absent(Status::DST_NAT_DONE) && reply.src_port != orig.dst_port => {
            reply.src_port
        }
        None => None,
    };
    match snat {
        Some(IpAddr::V4(a)) => w.attr(nta::SNAT_IPV4, &a.octets())?,
        Some(IpAddr::V6(a)) => w.attr(nta::SNAT_IPV6, &a.octets())?,
        None => {}
    }
    match dnat {
        Some(IpAddr::V4(a)) => w.attr(nta::DNAT_IPV4, &a.octets())?,
        Some(IpAddr::V6(a)) => w.attr(nta::DNAT_IPV6, &a.octets())?,
        None => {}
    }
    if let Some(p) = spat {
        w.attr(nta::SPAT_PORT, &p.to_le_bytes())?;
    }
    if let Some(p) = dpat {
        w.attr(nta::DPAT_PORT, &p.to_le_bytes())?;
    }
    Ok(())
}

/// Writes a whole data message at the start of `buf`: the header (`kind`, `flags`, `seq`)
/// and the attributes [`emit_ct_attrs`] writes for `r`; returns its length.
///
/// # Errors
/// As [`emit_ct_attrs`]; [`Error::TooLong`] for a message over 64 KiB.
pub fn emit_ct(
    buf: &mut [u8],
    kind: DataKind,
    flags: u8,
    seq: u32,
    r: &ConntrackRepr,
) -> Result<usize> {
    emit_data(buf, kind, flags, seq, |w| emit_ct_attrs(r, w))
}

/// Writes a data message whose attributes `body` writes.
pub(crate) fn emit_data(
    buf: &mut [u8],
    kind: DataKind,
    flags: u8,
    seq: u32,
    body: impl FnOnce(&mut NtaWriter<'_>) -> Result<()>,
) -> Result<usize> {
    let (hdr, rest) = buf
        .split_at_mut_checked(HEADER_LEN)
        .ok_or(Error::BufferTooSmall)?;
    let mut w = NtaWriter::new(rest);
    body(&mut w)?;
    let len = w
        .len()
        .checked_add(HEADER_LEN)
        .ok_or(Error::TooLong("sync message"))?;
    Header {
        version: VERSION,
        kind: kind.number(),
        flags,
        len: u16::try_from(len).map_err(|_| Error::TooLong("sync message"))?,
        seq,
    }
    .emit(hdr)?;
    Ok(len)
}

/// The length of the message [`emit_ct`] writes for `r`.
///
/// # Errors
/// As [`emit_ct_attrs`].
pub fn ct_msg_len(r: &ConntrackRepr) -> Result<usize> {
    let mut w = NtaWriter::measure();
    emit_ct_attrs(r, &mut w)?;
    w.len()
        .checked_add(HEADER_LEN)
        .ok_or(Error::TooLong("sync message"))
}
