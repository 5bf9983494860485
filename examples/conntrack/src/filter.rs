//! The userspace filters of conntrack-tools 1.4.7 (`nfct_filter` and its parts), and the
//! kernel-side filter we send ahead of them.
//!
//! The kernel filter is always a superset of what the userspace filter keeps: it only
//! narrows what the kernel sends, and the userspace filter, applied to everything that
//! arrives, decides exactly as 1.4.7 does. Where the kernel is known to compare wrongly
//! (IPv6 addresses in `CTA_FILTER`), the field is left to userspace.

use std::net::IpAddr;

use conntrack_codec::ct::{l4proto, Status, Tuple};
use conntrack_codec::filter::{filter_flags as ff, DumpFilter};

use crate::model::{self, nfct_cmp, Adr, Cmp, Obj, Tmpl, Tup};
use crate::parse::{opt, Cmd, Fail};

/// A network of `--mask-src`/`--mask-dst` (or a CIDR `-s`/`-d`): address and mask.
#[derive(Debug, Clone, Copy, Default)]
pub struct Net {
    network: [u8; 16],
    mask: [u8; 16],
}

fn bytes(a: Option<Adr>) -> [u8; 16] {
    let mut out = [0u8; 16];
    match a {
        Some(Adr::Ip(IpAddr::V4(v))) => out[..4].copy_from_slice(&v.octets()),
        Some(Adr::Ip(IpAddr::V6(v))) => out = v.octets(),
        _ => {}
    }
    out
}

/// The state `nfct_filter_init` sets up: the family and the two networks.
#[derive(Debug, Clone, Default)]
pub struct NetFilter {
    /// `filter_family`.
    pub family: u8,
    /// Source and destination networks.
    pub net: [Net; 2],
}

/// `nfct_filter_init`: checks the masks have their addresses, computes the networks, and
/// removes the exact addresses from the template.
pub fn filter_init(cmd: &mut Cmd) -> Result<NetFilter, Fail> {
    let mut nf = NetFilter {
        family: cmd.family,
        ..NetFilter::default()
    };
    for (i, (mask_opt, addr_opt, name)) in [
        (opt::MASK_SRC, opt::ORIG_SRC, "src"),
        (opt::MASK_DST, opt::ORIG_DST, "dst"),
    ]
    .into_iter()
    .enumerate()
    {
        if cmd.options & mask_opt == 0 {
            continue;
        }
        if cmd.options & addr_opt == 0 {
            return Err(Fail::param(format!(
                "Can't use --mask-{name} without --{name}"
            )));
        }
        let (addr, mask) = if i == 0 {
            (cmd.tmpl.ct.orig.src.take(), cmd.tmpl.mask.orig.src)
        } else {
            (cmd.tmpl.ct.orig.dst.take(), cmd.tmpl.mask.orig.dst)
        };
        let (a, m) = (bytes(addr), bytes(mask));
        let mut net = Net::default();
        for k in 0..16 {
            net.network[k] = a[k] & m[k];
            net.mask[k] = m[k];
        }
        nf.net[i] = net;
    }
    Ok(nf)
}

fn filter_network(cmd: &Cmd, nf: &NetFilter, e: &Obj) -> bool {
    for (i, mask_opt) in [opt::MASK_SRC, opt::MASK_DST].into_iter().enumerate() {
        if cmd.options & mask_opt == 0 {
            continue;
        }
        if e.orig.l3 != Some(nf.family) {
            return true;
        }
        let a = match (nf.family, if i == 0 { e.orig.src } else { e.orig.dst }) {
            (2, Some(Adr::Ip(IpAddr::V4(v)))) => bytes(Some(Adr::Ip(IpAddr::V4(v)))),
            (10, Some(Adr::Ip(IpAddr::V6(v)))) => bytes(Some(Adr::Ip(IpAddr::V6(v)))),
            _ => [0; 16],
        };
        let n = &nf.net[i];
        let len = if nf.family == 2 { 4 } else { 16 };
        if nf.family != 2 && nf.family != 10 {
            continue;
        }
        if (0..len).any(|k| a[k] & n.mask[k] != n.network[k]) {
            return true;
        }
    }
    false
}

/// `filter_nat`: true when the entry is filtered out by `-n`, `-g` or `-j`.
pub fn filter_nat(cmd: &Cmd, e: &Obj) -> bool {
    let any = cmd.options & opt::ANY_NAT != 0;
    let check_src = any || cmd.options & opt::SRC_NAT != 0;
    let check_dst = any || cmd.options & opt::DST_NAT != 0;
    let obj = &cmd.tmpl.ct;
    let v4 = |a: Option<Adr>| match a {
        Some(Adr::Ip(IpAddr::V4(v))) => u32::from(v),
        _ => 0,
    };
    let side = |nat: Option<IpAddr>,
                port: Option<u16>,
                is_addr: bool,
                is_port: bool,
                reply_addr: Option<Adr>,
                reply_port: Option<u16>| {
        let mut has = false;
        let mut check_address = false;
        if let Some(IpAddr::V4(ip)) = nat {
            check_address = true;
            if is_addr && u32::from(ip) == v4(reply_addr) {
                has = true;
            }
        }
        let mut check_port = false;
        if let Some(p) = port {
            check_port = true;
            let ret = is_port && Some(p) == reply_port.or(Some(0)).filter(|_| true);
            if check_address && has && !ret {
                has = false;
            }
            if !check_address && ret {
                has = true;
            }
        }
        if !check_address && !check_port && (is_addr || is_port) {
            has = true;
        }
        has
    };
    let has_src = check_src
        && side(
            obj.snat,
            obj.snat_port,
            model::is_snat(e),
            model::is_spat(e),
            e.repl.dst,
            e.repl.dport,
        );
    let has_dst = check_dst
        && side(
            obj.dnat,
            obj.dnat_port,
            model::is_dnat(e),
            model::is_dpat(e),
            e.repl.src,
            e.repl.sport,
        );
    if any {
        !(has_src || has_dst)
    } else if cmd.options & opt::SRC_NAT != 0 && cmd.options & opt::DST_NAT != 0 {
        !(has_src && has_dst)
    } else if cmd.options & opt::SRC_NAT != 0 {
        !has_src
    } else if cmd.options & opt::DST_NAT != 0 {
        !has_dst
    } else {
        false
    }
}

/// `filter_label`: true when the entry lacks a label of `-l` (of the current template).
pub fn filter_label(e: &Obj, cur: &Tmpl) -> bool {
    let Some(want) = &cur.label else {
        return false;
    };
    let Some(have) = &e.labels else {
        return true;
    };
    (0..=want.maxbit()).any(|i| want.test(i) && !have.test(i))
}

fn filter_mark(cmd: &Cmd, e: &Obj) -> bool {
    if cmd.options & opt::MARK == 0 {
        return false;
    }
    let (value, mask) = cmd.tmpl.mark;
    !matches!(e.mark, Some(m) if m & mask == value)
}

/// `nfct_filter`: true when the entry is filtered out (for `-L`, `-G`, `-D`, `-E`).
pub fn nfct_filter(cmd: &Cmd, nf: &NetFilter, e: &Obj, cur: &Tmpl) -> bool {
    if filter_nat(cmd, e)
        || filter_mark(cmd, e)
        || filter_label(e, cur)
        || filter_network(cmd, nf, e)
    {
        return true;
    }
    cmd.options & opt::COMPARISON != 0 && !nfct_cmp(&cmd.tmpl.ct, e, Cmp::AllMask)
}

/// The filter `-U` applies to each entry before updating it.
pub fn update_filter(cmd: &Cmd, nf: &NetFilter, e: &Obj, cur: &Tmpl) -> bool {
    if filter_nat(cmd, e) || filter_label(e, cur) || filter_network(cmd, nf, e) {
        return true;
    }
    let t = &cmd.tmpl.ct;
    if let (Some(a), Some(b)) = (t.id, e.id) {
        if a != b {
            return true;
        }
    }
    if cmd.options & (opt::ORIG | opt::PROTO) != 0 && !nfct_cmp(t, e, Cmp::Orig) {
        return true;
    }
    cmd.options & (opt::REPL | opt::PROTO) != 0 && !nfct_cmp(t, e, Cmp::Repl)
}

/// Whether any userspace filtering is needed at all (if not, entries are printed as they
/// come, without building the library's view of them).
pub fn needs_filter(cmd: &Cmd, cur: &Tmpl) -> bool {
    cmd.options
        & (opt::COMPARISON
            | opt::SRC_NAT
            | opt::DST_NAT
            | opt::ANY_NAT
            | opt::MASK_SRC
            | opt::MASK_DST)
        != 0
        || cur.label.is_some()
}

/// What the kernel filter may hold for a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// `-L`: mark and status as 1.4.7 sends them, plus zone and tuple.
    List,
    /// `-D`: mark as 1.4.7 sends it, plus status, zone and tuple.
    Delete,
    /// `-U`: tuple only.
    Update,
}

fn push_tuple(
    t: &Tup,
    family: u8,
    icmp: Option<(Option<u8>, Option<u8>, Option<u16>)>,
) -> Option<(Tuple, u32)> {
    let mut flags = 0;
    let mut out = Tuple::default();
    if family == 2 {
        if let Some(Adr::Ip(a @ IpAddr::V4(_))) = t.src {
            out.src = Some(a);
            flags |= ff::IP_SRC;
        }
        if let Some(Adr::Ip(a @ IpAddr::V4(_))) = t.dst {
            out.dst = Some(a);
            flags |= ff::IP_DST;
        }
    }
    if let Some(p) = t.l4 {
        out.proto = Some(p);
        flags |= ff::PROTO_NUM;
        match p {
            l4proto::TCP | l4proto::UDP => {
                if let Some(v) = t.sport {
                    out.src_port = Some(v);
                    flags |= ff::PROTO_SRC_PORT;
                }
                if let Some(v) = t.dport {
                    out.dst_port = Some(v);
                    flags |= ff::PROTO_DST_PORT;
                }
            }
            l4proto::ICMP if family == 2 => {
                if let Some((ty, code, id)) = icmp {
                    if let Some(v) = ty {
                        out.icmp_type = Some(v);
                        flags |= ff::PROTO_ICMP_TYPE;
                    }
                    if let Some(v) = code {
                        out.icmp_code = Some(v);
                        flags |= ff::PROTO_ICMP_CODE;
                    }
                    if let Some(v) = id {
                        out.icmp_id = Some(v);
                        flags |= ff::PROTO_ICMP_ID;
                    }
                }
            }
            l4proto::ICMPV6 if family == 10 => {
                if let Some((ty, code, id)) = icmp {
                    if let Some(v) = ty {
                        out.icmpv6_type = Some(v);
                        flags |= ff::PROTO_ICMPV6_TYPE;
                    }
                    if let Some(v) = code {
                        out.icmpv6_code = Some(v);
                        flags |= ff::PROTO_ICMPV6_CODE;
                    }
                    if let Some(v) = id {
                        out.icmpv6_id = Some(v);
                        flags |= ff::PROTO_ICMPV6_ID;
                    }
                }
            }
            _ => {}
        }
    }
    (flags != 0).then_some((out, flags))
}

/// The kernel filter for a dump whose entries 1.4.7 then filters in userspace.
pub fn kernel_filter(cmd: &Cmd, push: Push) -> DumpFilter {
    let t = &cmd.tmpl;
    let mut f = DumpFilter::family(cmd.family);
    if push != Push::Update {
        f.mark = t.filter_mark_kernel;
        if cmd.options & opt::ZONE != 0 {
            f.zone = t.ct.zone.filter(|z| *z != 0);
        }
    }
    match push {
        Push::List => {
            f.status = t.filter_status_kernel.map(|(v, m)| (Status(v), Status(m)));
        }
        Push::Delete => {
            if cmd.options & opt::STATUS != 0 {
                f.status =
                    t.ct.status
                        .filter(|s| *s != 0)
                        .map(|s| (Status(s), Status(s)));
            }
        }
        Push::Update => {}
    }
    let compare = match push {
        Push::Update => cmd.options & (opt::ORIG | opt::REPL | opt::PROTO) != 0,
        _ => cmd.options & opt::COMPARISON != 0,
    };
    if compare && (cmd.family == 2 || cmd.family == 10) {
        let icmp = (t.ct.icmp_type, t.ct.icmp_code, t.ct.icmp_id);
        f.orig = push_tuple(&t.ct.orig, cmd.family, Some(icmp));
        f.reply = push_tuple(&t.ct.repl, cmd.family, None);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{do_parse, Globals};

    fn cmd(line: &str) -> Cmd {
        let mut argv = vec![b"conntrack".to_vec()];
        argv.extend(line.split_whitespace().map(|w| w.as_bytes().to_vec()));
        let mut files = crate::sys::Files::default();
        let mut c =
            do_parse(argv, &mut Globals::default(), &mut files, &mut Vec::new()).expect("parses");
        filter_init(&mut c).expect("filter init");
        c
    }

    #[test]
    fn list_filters_go_to_the_kernel() {
        let c = cmd("-L -s 1.2.3.4 -p tcp --dport 80 -m 1/0xff -u ASSURED -w 3 -r 5.6.7.8");
        let f = kernel_filter(&c, Push::List);
        assert_eq!(f.family, 2);
        assert_eq!(f.mark, Some((1, 0xff)));
        assert_eq!(f.status, Some((Status(4), Status(4))));
        assert_eq!(f.zone, Some(3));
        let (t, flags) = f.orig.expect("original tuple filter");
        assert_eq!(flags, ff::IP_SRC | ff::PROTO_NUM | ff::PROTO_DST_PORT);
        assert_eq!(t.src, Some("1.2.3.4".parse().unwrap()));
        assert_eq!(t.dst_port, Some(80));
        let (t, flags) = f.reply.expect("reply tuple filter");
        assert_eq!(flags, ff::IP_SRC);
        assert_eq!(t.src, Some("5.6.7.8".parse().unwrap()));
    }

    #[test]
    fn what_the_kernel_cannot_do_stays_in_userspace() {
        // IPv6 addresses (CTA_FILTER compares them wrongly), masked addresses, SCTP ports,
        // no family (CTA_FILTER needs one), zone 0 (means no zone to the kernel).
        let f = kernel_filter(&cmd("-L -s 2001:db8::1 -p udp --sport 5"), Push::List);
        let (t, flags) = f.orig.expect("filter");
        assert_eq!(flags, ff::PROTO_NUM | ff::PROTO_SRC_PORT);
        assert_eq!(t.src, None);
        let f = kernel_filter(&cmd("-L -s 10.0.0.0/8 -p sctp --sport 5"), Push::List);
        assert_eq!(f.orig.map(|(_, fl)| fl), Some(ff::PROTO_NUM));
        let f = kernel_filter(&cmd("-L -p tcp --dport 80 -w 0"), Push::List);
        assert_eq!((f.family, f.orig, f.zone), (0, None, None));
    }

    #[test]
    fn delete_and_update_filters() {
        // -D: 1.4.7 sends only the mark; ours also the status bits that must be set.
        let f = kernel_filter(&cmd("-D -u ASSURED -u !SEEN_REPLY -m 7"), Push::Delete);
        assert_eq!(f.status, Some((Status(4), Status(4))));
        assert_eq!(f.mark, Some((7, u32::MAX)));
        // -U filters on the tuple only (the mark and status are what it sets).
        let f = kernel_filter(&cmd("-U -s 1.2.3.4 -m 7 -u ASSURED"), Push::Update);
        assert_eq!((f.mark, f.status), (None, None));
        assert_eq!(f.orig.map(|(_, fl)| fl), Some(ff::IP_SRC));
    }
}
