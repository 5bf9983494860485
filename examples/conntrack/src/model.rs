//! The conntrack object as libnetfilter_conntrack 1.0.9 models it for conntrack-tools: a set
//! of attributes, each present or not, with the library's rules for building a request from
//! it and for comparing a template with an entry (`nfct_cmp`). conntrack 1.4.7 keeps its
//! command-line template in this form, so its filters and requests follow these rules.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use conntrack_codec::ct::{
    l4proto, ConntrackRepr, DccpInfo, DccpRole, DccpState, Labels, NatRange, ProtoInfo, SctpInfo,
    SctpState, Status, TcpFlags, TcpInfo, TcpState, Tuple,
};

/// An address attribute. `Garbage` is what `--any-nat ADDR` leaves in the original source
/// address of conntrack 1.4.7's template (a value read from the stack): it equals nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Adr {
    /// An address.
    Ip(IpAddr),
    /// An unknown value.
    #[default]
    Garbage,
}

impl Adr {
    fn same(self, other: Adr) -> bool {
        matches!((self, other), (Adr::Ip(a), Adr::Ip(b)) if a == b)
    }

    /// The address, if it is one.
    pub fn ip(self) -> Option<IpAddr> {
        match self {
            Adr::Ip(a) => Some(a),
            Adr::Garbage => None,
        }
    }
}

/// The attributes of one direction's tuple.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tup {
    /// `ATTR_*_L3PROTO`.
    pub l3: Option<u8>,
    /// `ATTR_*_L4PROTO`.
    pub l4: Option<u8>,
    /// Source address.
    pub src: Option<Adr>,
    /// Destination address.
    pub dst: Option<Adr>,
    /// Source port (or GRE key).
    pub sport: Option<u16>,
    /// Destination port (or GRE key).
    pub dport: Option<u16>,
    /// The tuple zone (`ATTR_ORIG_ZONE` / `ATTR_REPL_ZONE`).
    pub zone: Option<u16>,
}

impl Tup {
    fn any(&self) -> bool {
        self.l3.is_some()
            || self.l4.is_some()
            || self.src.is_some()
            || self.dst.is_some()
            || self.sport.is_some()
            || self.dport.is_some()
            || self.zone.is_some()
    }
}

/// A label bitmask (`struct nfct_bitmask`): a number of 32-bit words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmask {
    /// The words, bit `n` in word `n / 32`.
    pub words: Vec<u32>,
}

impl Bitmask {
    /// An empty bitmask that holds bits `0..=max`.
    pub fn new(max: u32) -> Self {
        Bitmask {
            words: vec![0; (max / 32 + 1) as usize],
        }
    }

    /// The highest bit it can hold.
    pub fn maxbit(&self) -> u32 {
        (self.words.len() as u32) * 32 - 1
    }

    /// Whether `bit` is set.
    pub fn test(&self, bit: u32) -> bool {
        self.words
            .get((bit / 32) as usize)
            .is_some_and(|w| w & (1 << (bit % 32)) != 0)
    }

    /// Sets `bit` (ignored past the end).
    pub fn set(&mut self, bit: u32) {
        if let Some(w) = self.words.get_mut((bit / 32) as usize) {
            *w |= 1 << (bit % 32);
        }
    }

    /// Clears `bit`.
    pub fn unset(&mut self, bit: u32) {
        if let Some(w) = self.words.get_mut((bit / 32) as usize) {
            *w &= !(1 << (bit % 32));
        }
    }

    /// `merge_bitmasks`: the bits of both, in the larger of the two.
    pub fn merged(self, other: Bitmask) -> Bitmask {
        let (mut big, small) = if other.maxbit() > self.maxbit() {
            (other, self)
        } else {
            (self, other)
        };
        for i in 0..=small.maxbit() {
            if small.test(i) {
                big.set(i);
            }
        }
        big
    }

    /// The kernel's 128-bit form (words past the fourth are dropped).
    pub fn to_labels(&self) -> Labels {
        let mut l = Labels::default();
        for (i, w) in self.words.iter().take(4).enumerate() {
            if let Some(d) = l.0.get_mut(i) {
                *d = *w;
            }
        }
        l
    }

    fn from_labels(l: &Labels) -> Self {
        Bitmask {
            words: l.0.to_vec(),
        }
    }

    /// The library's comparison: equal on the common words, the longer one zero past them.
    fn same(&self, other: &Bitmask) -> bool {
        let (long, short) = if self.words.len() >= other.words.len() {
            (self, other)
        } else {
            (other, self)
        };
        long.words[short.words.len()..].iter().all(|w| *w == 0)
            && long.words[..short.words.len()] == short.words[..]
    }
}

/// The attributes conntrack-tools sets on, or reads from, a conntrack object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Obj {
    /// The original tuple.
    pub orig: Tup,
    /// The reply tuple.
    pub repl: Tup,
    /// `ATTR_ICMP_TYPE` (ICMP or ICMPv6, original direction).
    pub icmp_type: Option<u8>,
    /// `ATTR_ICMP_CODE`.
    pub icmp_code: Option<u8>,
    /// `ATTR_ICMP_ID`.
    pub icmp_id: Option<u16>,
    /// The reply direction's ICMP type, code and id (stored, without attributes).
    pub repl_icmp: (u8, u8, u16),
    /// Status bits.
    pub status: Option<u32>,
    /// Timeout.
    pub timeout: Option<u32>,
    /// Mark.
    pub mark: Option<u32>,
    /// Secmark.
    pub secmark: Option<u32>,
    /// Id.
    pub id: Option<u32>,
    /// Zone.
    pub zone: Option<u16>,
    /// TCP state.
    pub tcp_state: Option<u8>,
    /// TCP flags and mask, original and reply direction.
    pub tcp_flags: [Option<(u8, u8)>; 2],
    /// SCTP state.
    pub sctp_state: Option<u8>,
    /// SCTP verification tags, original and reply.
    pub vtag: [Option<u32>; 2],
    /// DCCP state.
    pub dccp_state: Option<u8>,
    /// DCCP role.
    pub dccp_role: Option<u8>,
    /// Source NAT address (`ATTR_SNAT_IPV4`/`IPV6`).
    pub snat: Option<IpAddr>,
    /// Destination NAT address.
    pub dnat: Option<IpAddr>,
    /// Source NAT port.
    pub snat_port: Option<u16>,
    /// Destination NAT port.
    pub dnat_port: Option<u16>,
    /// Labels.
    pub labels: Option<Bitmask>,
    /// Labels mask.
    pub labels_mask: Option<Bitmask>,
}

fn tup_of(t: Option<&Tuple>, family: u8) -> Tup {
    match t {
        None => Tup {
            l3: Some(family),
            ..Tup::default()
        },
        Some(t) => Tup {
            l3: Some(family),
            l4: t.proto,
            src: t.src.map(Adr::Ip),
            dst: t.dst.map(Adr::Ip),
            sport: t.src_port,
            dport: t.dst_port,
            zone: t.zone,
        },
    }
}

/// Whether a protocol number carries ports (or GRE keys) in its tuple: the library's list.
pub use conntrack_codec::ct::l4proto::has_ports;

impl Obj {
    /// The object the library builds from an entry the kernel sent.
    pub fn from_entry(e: &ConntrackRepr) -> Obj {
        let o = e.orig.as_ref();
        let r = e.reply.as_ref();
        let mut obj = Obj {
            orig: tup_of(o, e.family),
            repl: tup_of(r, e.family),
            status: e.status.map(|s| s.0),
            timeout: e.timeout,
            mark: e.mark,
            secmark: e.secmark,
            id: e.id,
            zone: e.zone,
            labels: e.labels.as_ref().map(Bitmask::from_labels),
            ..Obj::default()
        };
        if let Some(t) = o {
            obj.icmp_type = t.icmp_type.or(t.icmpv6_type);
            obj.icmp_code = t.icmp_code.or(t.icmpv6_code);
            obj.icmp_id = t.icmp_id.or(t.icmpv6_id);
        }
        if let Some(t) = r {
            obj.repl_icmp = (
                t.icmp_type.or(t.icmpv6_type).unwrap_or(0),
                t.icmp_code.or(t.icmpv6_code).unwrap_or(0),
                t.icmp_id.or(t.icmpv6_id).unwrap_or(0),
            );
        }
        match e.protoinfo {
            Some(ProtoInfo::Tcp(t)) => {
                obj.tcp_state = t.state.map(u8::from);
                obj.tcp_flags = [
                    t.flags_orig.map(|f| (f.flags, f.mask)),
                    t.flags_reply.map(|f| (f.flags, f.mask)),
                ];
            }
            Some(ProtoInfo::Sctp(s)) => {
                obj.sctp_state = s.state.map(u8::from);
                obj.vtag = [s.vtag_orig, s.vtag_reply];
            }
            Some(ProtoInfo::Dccp(d)) => {
                obj.dccp_state = d.state.map(u8::from);
                obj.dccp_role = d.role.map(u8::from);
            }
            None => {}
        }
        obj
    }

    /// `ATTR_ICMP_TYPE`: the original type, and the reply's (the inverse type, found with
    /// the original tuple's family as it is now; 255, which the kernel refuses, if there is
    /// no inverse or no family yet).
    pub fn set_icmp_type(&mut self, ty: u8) {
        self.icmp_type = Some(ty);
        self.repl_icmp.0 = inverse_icmp_type(self.orig.l3, ty).unwrap_or(255);
    }

    /// `ATTR_ICMP_CODE`: the code of both directions.
    pub fn set_icmp_code(&mut self, code: u8) {
        self.icmp_code = Some(code);
        self.repl_icmp.1 = code;
    }

    /// `ATTR_ICMP_ID`: the id of both directions.
    pub fn set_icmp_id(&mut self, id: u16) {
        self.icmp_id = Some(id);
        self.repl_icmp.2 = id;
    }

    /// `nfct_setobjopt(NFCT_SOPT_SETUP_REPLY)`: the reply tuple from the original one
    /// (families, protocol, swapped addresses and ports; the ICMP fields were set with the
    /// original ones).
    pub fn setup_reply(&mut self) {
        let o = self.orig.clone();
        autocomplete(&mut self.repl, &o);
    }

    /// `nfct_setobjopt(NFCT_SOPT_SETUP_ORIGINAL)`: the original tuple from the reply one.
    pub fn setup_original(&mut self) {
        let r = self.repl.clone();
        autocomplete(&mut self.orig, &r);
    }

    /// `nfct_nlmsg_build`: the entry a request carries, or the errno of a failed build.
    ///
    /// A tuple without a family cannot be built; the library then fails without setting
    /// errno, so the error is `errno`, what the C library's errno holds at that point (see
    /// [`Globals::errno`](crate::parse::Globals::errno)). Labels past bit 127 make a
    /// bitmask longer than the kernel's, which it refuses (`ERANGE`).
    ///
    /// # Errors
    /// `EINVAL` without the original family; `errno` for a tuple without a family;
    /// `ERANGE` for labels past bit 127.
    pub fn build(&self, errno: i32) -> Result<ConntrackRepr, i32> {
        let family = self.orig.l3.ok_or(nix::libc::EINVAL)?;
        let proto = self.orig.l4.unwrap_or(0);
        let mut e = ConntrackRepr {
            family,
            ..ConntrackRepr::default()
        };
        // Any original attribute: the original tuple (the library checks L3PROTO first, so
        // it is always there).
        e.orig = Some(self.tuple(&self.orig, true).ok_or(errno)?);
        if self.repl.any() {
            e.reply = Some(self.tuple(&self.repl, false).ok_or(errno)?);
        }
        e.status = self.status.map(|s| Status(s | Status::CONFIRMED.0));
        e.timeout = self.timeout;
        e.mark = self.mark;
        e.secmark = self.secmark;
        e.protoinfo = match proto {
            l4proto::TCP
                if self.tcp_state.is_some() || self.tcp_flags.iter().any(Option::is_some) =>
            {
                let flags = |f: Option<(u8, u8)>| f.map(|(flags, mask)| TcpFlags { flags, mask });
                Some(ProtoInfo::Tcp(TcpInfo {
                    state: self.tcp_state.map(TcpState::from),
                    flags_orig: flags(self.tcp_flags[0]),
                    flags_reply: flags(self.tcp_flags[1]),
                    ..TcpInfo::default()
                }))
            }
            l4proto::SCTP if self.sctp_state.is_some() || self.vtag.iter().any(Option::is_some) => {
                Some(ProtoInfo::Sctp(SctpInfo {
                    state: self.sctp_state.map(SctpState::from),
                    vtag_orig: self.vtag[0],
                    vtag_reply: self.vtag[1],
                }))
            }
            l4proto::DCCP if self.dccp_state.is_some() || self.dccp_role.is_some() => {
                Some(ProtoInfo::Dccp(DccpInfo {
                    state: self.dccp_state.map(DccpState::from),
                    role: self.dccp_role.map(DccpRole::from),
                    handshake_seq: None,
                }))
            }
            _ => None,
        };
        let ports = matches!(proto, l4proto::TCP | l4proto::UDP);
        let nat = |addr: Option<IpAddr>, port: Option<u16>| {
            if addr.is_none() && port.is_none() {
                return None;
            }
            let port = port.filter(|_| ports);
            Some(NatRange {
                min_addr: addr,
                max_addr: None,
                min_port: port,
                max_port: port,
            })
        };
        e.nat_src = nat(self.snat, self.snat_port);
        e.nat_dst = nat(self.dnat, self.dnat_port);
        e.zone = self.zone;
        if let Some(l) = &self.labels {
            if l.words.len() > 4 {
                return Err(nix::libc::ERANGE);
            }
            e.labels = Some(l.to_labels());
            if let Some(m) = &self.labels_mask {
                if m.words.len() == l.words.len() {
                    e.labels_mask = Some(m.to_labels());
                }
            }
        }
        Ok(e)
    }

    /// The tuple of one direction; `None` without a family.
    fn tuple(&self, t: &Tup, orig: bool) -> Option<Tuple> {
        let zero = match t.l3 {
            Some(2) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Some(10) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            _ => return None,
        };
        let addr = |a: Option<Adr>| a.and_then(Adr::ip).unwrap_or(zero);
        let proto = t.l4.unwrap_or(0);
        let mut out = Tuple {
            src: Some(addr(t.src)),
            dst: Some(addr(t.dst)),
            proto: Some(proto),
            zone: t.zone,
            ..Tuple::default()
        };
        let (ty, code, id) = if orig {
            (
                self.icmp_type.unwrap_or(0),
                self.icmp_code.unwrap_or(0),
                self.icmp_id.unwrap_or(0),
            )
        } else {
            self.repl_icmp
        };
        match proto {
            l4proto::ICMP => {
                out.icmp_type = Some(ty);
                out.icmp_code = Some(code);
                out.icmp_id = Some(id);
            }
            l4proto::ICMPV6 => {
                out.icmpv6_type = Some(ty);
                out.icmpv6_code = Some(code);
                out.icmpv6_id = Some(id);
            }
            p if has_ports(p) => {
                out.src_port = Some(t.sport.unwrap_or(0));
                out.dst_port = Some(t.dport.unwrap_or(0));
            }
            _ => {}
        }
        Some(out)
    }
}

/// The library's `__autocomplete`: `this` direction from the `other` one.
fn autocomplete(this: &mut Tup, other: &Tup) {
    this.l3 = other.l3;
    this.l4 = other.l4;
    this.src = other.dst;
    this.dst = other.src;
    if other.l4.is_some_and(has_ports) {
        this.sport = other.dport;
        this.dport = other.sport;
    }
}

/// The reply type of ICMP `ty` (ICMPv6 with `family` 10), as the library's tables give it;
/// `None` for a type without one.
pub fn inverse_icmp_type(family: Option<u8>, ty: u8) -> Option<u8> {
    match (family, ty) {
        // Echo, timestamp, information and address mask requests and replies.
        (Some(2), 8) => Some(0),
        (Some(2), 0) => Some(8),
        (Some(2), 13) => Some(14),
        (Some(2), 14) => Some(13),
        (Some(2), 15) => Some(16),
        (Some(2), 16) => Some(15),
        (Some(2), 17) => Some(18),
        (Some(2), 18) => Some(17),
        // Echo request and reply; the library maps the node information query and reply
        // each to itself.
        (Some(10), 128) => Some(129),
        (Some(10), 129) => Some(128),
        (Some(10), t @ (139 | 140)) => Some(t),
        _ => None,
    }
}

/// Which parts `nfct_cmp` compares, and whether attributes of the template must be in the
/// entry (`NFCT_CMP_MASK`).
#[derive(Debug, Clone, Copy)]
pub enum Cmp {
    /// `NFCT_CMP_ALL | NFCT_CMP_MASK`.
    AllMask,
    /// `NFCT_CMP_ORIG`.
    Orig,
    /// `NFCT_CMP_REPL`.
    Repl,
}

/// One attribute's comparison: both present, compare; only in the template, with the mask a
/// strict attribute fails and a loose one is compared with the entry's default (0).
fn att<T: Copy + Default>(
    a: Option<T>,
    b: Option<T>,
    mask: bool,
    strict: bool,
    eq: impl Fn(T, T) -> bool,
) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => eq(a, b),
        (Some(a), None) if mask => !strict && eq(a, T::default()),
        _ => true,
    }
}

fn same_adr(a: Adr, b: Adr) -> bool {
    a.same(b)
}

/// `nfct_cmp(template, entry, flags)`.
pub fn nfct_cmp(t: &Obj, e: &Obj, how: Cmp) -> bool {
    let mask = matches!(how, Cmp::AllMask);
    match how {
        Cmp::AllMask => {
            cmp_meta(t, e, mask) && cmp_tuple(t, e, mask, true) && cmp_tuple(t, e, mask, false)
        }
        Cmp::Orig => cmp_tuple(t, e, mask, true),
        Cmp::Repl => cmp_tuple(t, e, mask, false),
    }
}

fn cmp_meta(t: &Obj, e: &Obj, m: bool) -> bool {
    att(t.id, e.id, m, true, |a, b| a == b)
        && att(t.mark, e.mark, m, false, |a, b| a == b)
        && att(t.timeout, e.timeout, m, true, |a, b| a == b)
        && att(t.status, e.status, m, true, |a, b| a & b == a)
        && att(t.tcp_state, e.tcp_state, m, true, |a, b| a == b)
        && att(t.sctp_state, e.sctp_state, m, true, |a, b| a == b)
        && att(t.dccp_state, e.dccp_state, m, true, |a, b| a == b)
        && att(t.zone, e.zone, m, false, |a, b| a == b)
        && match (&t.labels, &e.labels) {
            (Some(a), Some(b)) => a.same(b),
            (Some(_), None) => !m,
            _ => true,
        }
        && !(m && t.labels_mask.is_some() && e.labels_mask.is_none())
}

fn cmp_tuple(t: &Obj, e: &Obj, m: bool, orig: bool) -> bool {
    let (a, b) = if orig {
        (&t.orig, &e.orig)
    } else {
        (&t.repl, &e.repl)
    };
    let l4 = match (a.l4, b.l4) {
        (Some(x), Some(y)) => {
            x == y
                && match x {
                    l4proto::ICMP | l4proto::ICMPV6 => {
                        att(t.icmp_id, e.icmp_id, m, true, |p, q| p == q)
                            && att(t.icmp_code, e.icmp_code, m, true, |p, q| p == q)
                            && att(t.icmp_type, e.icmp_type, m, true, |p, q| p == q)
                    }
                    l4proto::TCP
                    | l4proto::UDP
                    | l4proto::UDPLITE
                    | l4proto::DCCP
                    | l4proto::SCTP => {
                        att(a.sport, b.sport, m, true, |p, q| p == q)
                            && att(a.dport, b.dport, m, true, |p, q| p == q)
                    }
                    _ => true,
                }
        }
        (Some(_), None) => !m,
        _ => true,
    };
    let v4 = |x: Option<Adr>| x.filter(|a| !matches!(a, Adr::Ip(IpAddr::V6(_))));
    let v6 = |x: Option<Adr>| x.filter(|a| matches!(a, Adr::Ip(IpAddr::V6(_))));
    att(a.l3, b.l3, m, true, |p, q| p == q)
        && l4
        && att(v4(a.src), v4(b.src), m, true, same_adr)
        && att(v4(a.dst), v4(b.dst), m, true, same_adr)
        && att(v6(a.src), v6(b.src), m, true, same_adr)
        && att(v6(a.dst), v6(b.dst), m, true, same_adr)
        && att(a.zone, b.zone, m, false, |p, q| p == q)
}

/// The first 32 bits of an address, as the library compares NAT addresses.
fn word(a: Option<Adr>) -> [u8; 4] {
    match a {
        Some(Adr::Ip(IpAddr::V4(v))) => v.octets(),
        Some(Adr::Ip(IpAddr::V6(v))) => {
            let [a, b, c, d, ..] = v.octets();
            [a, b, c, d]
        }
        _ => [0; 4],
    }
}

fn done(e: &Obj, bit: u32) -> bool {
    e.status.is_none_or(|s| s & bit != 0)
}

/// `NFCT_GOPT_IS_SNAT`.
pub fn is_snat(e: &Obj) -> bool {
    done(e, Status::SRC_NAT_DONE.0) && word(e.repl.dst) != word(e.orig.src)
}

/// `NFCT_GOPT_IS_DNAT`.
pub fn is_dnat(e: &Obj) -> bool {
    done(e, Status::DST_NAT_DONE.0) && word(e.repl.src) != word(e.orig.dst)
}

/// The raw `l4src`/`l4dst` union of a direction (ports, or ICMP id / type and code).
fn l4(e: &Obj, orig: bool, src: bool) -> [u8; 2] {
    let t = if orig { &e.orig } else { &e.repl };
    let icmp = matches!(e.orig.l4, Some(l4proto::ICMP | l4proto::ICMPV6));
    if icmp {
        let (ty, code, id) = if orig {
            (
                e.icmp_type.unwrap_or(0),
                e.icmp_code.unwrap_or(0),
                e.icmp_id.unwrap_or(0),
            )
        } else {
            e.repl_icmp
        };
        return if src { id.to_be_bytes() } else { [ty, code] };
    }
    let p = if src { t.sport } else { t.dport };
    p.unwrap_or(0).to_be_bytes()
}

/// `NFCT_GOPT_IS_SPAT`.
pub fn is_spat(e: &Obj) -> bool {
    done(e, Status::SRC_NAT_DONE.0) && l4(e, false, false) != l4(e, true, true)
}

/// `NFCT_GOPT_IS_DPAT`.
pub fn is_dpat(e: &Obj) -> bool {
    done(e, Status::DST_NAT_DONE.0) && l4(e, false, true) != l4(e, true, false)
}

/// The template objects of one command (`struct ct_tmpl`).
#[derive(Debug, Clone, Default)]
pub struct Tmpl {
    /// The conntrack template (tuples, meta attributes).
    pub ct: Obj,
    /// The expected tuple of an expectation.
    pub exptuple: Obj,
    /// The mask of an expectation (and the netmasks of `-s`/`-d`).
    pub mask: Obj,
    /// The expectation timeout (`-t`).
    pub exp_timeout: Option<u32>,
    /// `-m`: value and mask (the value is also overwritten by `-u`, as in 1.4.7).
    pub mark: (u32, u32),
    /// The mark filter sent to the kernel.
    pub filter_mark_kernel: Option<(u32, u32)>,
    /// The status filter sent to the kernel: value, mask.
    pub filter_status_kernel: Option<(u32, u32)>,
    /// `-l`: labels an entry must have.
    pub label: Option<Bitmask>,
    /// `--label-add` / `--label-del`: labels to change.
    pub label_modify: Option<Bitmask>,
}
