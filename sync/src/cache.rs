//! Cache keys and entries: an entry is kept as the `NTA_*` attributes of its last sync
//! message (a few dozen to a few hundred bytes), not as a full conntrack model, so memory per
//! entry stays small and bounded; the model is rebuilt on demand (dumps, commits).

use std::net::IpAddr;

use conntrack_codec::ct::{ConntrackRepr, ProtoInfo, Tuple};
use conntrack_codec::sync::{nta, nta_exp, SyncCt, SyncExp};
use conntrack_codec::Result;

/// What identifies an entry in a cache: the bytes of its original tuple and zone (conntrack)
/// or of its master and expected tuples (expectation), as they travel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    bytes: [u8; 96],
    len: u8,
}

impl Key {
    fn build(parts: &[&[u8]]) -> Key {
        let mut k = Key {
            bytes: [0; 96],
            len: 0,
        };
        let mut pos = 0usize;
        for p in parts {
            let n = p.len().min(96 - pos);
            k.bytes[pos..pos + n].copy_from_slice(&p[..n]);
            pos += n;
            // A separator, so that parts of different lengths never alias.
            if pos < 96 {
                k.bytes[pos] = p.len() as u8;
                pos += 1;
            }
        }
        k.len = pos as u8;
        k
    }

    /// The key of a conntrack entry: addresses, protocol, ports, ICMP fields, zone.
    pub fn ct(v: &SyncCt<'_>) -> Key {
        let p = |k| v.attr(k).map(|a| a.payload()).unwrap_or(&[]);
        Key::build(&[
            &[0],
            p(nta::IPV4),
            p(nta::IPV6),
            p(nta::L4PROTO),
            p(nta::PORT),
            p(nta::ICMP_TYPE),
            p(nta::ICMP_CODE),
            p(nta::ICMP_ID),
            p(nta::ZONE),
        ])
    }

    /// The key of an expectation: master and expected tuples.
    pub fn exp(v: &SyncExp<'_>) -> Key {
        let p = |k| v.attr(k).map(|a| a.payload()).unwrap_or(&[]);
        Key::build(&[
            &[1],
            p(nta_exp::MASTER_IPV4),
            p(nta_exp::MASTER_IPV6),
            p(nta_exp::MASTER_PORT),
            p(nta_exp::EXPECT_IPV4),
            p(nta_exp::EXPECT_IPV6),
            p(nta_exp::EXPECT_L4PROTO),
            p(nta_exp::EXPECT_PORT),
        ])
    }
}

/// Fills every field of `new` that an event left out with the one `old` has: events carry
/// only what changed or is not zero (no mark when it is 0, no helper or labels after the
/// first), and the cache must keep the whole entry, as conntrackd's does.
pub fn fill_missing(new: &mut ConntrackRepr, old: &ConntrackRepr) {
    fn keep<T: Clone>(n: &mut Option<T>, o: &Option<T>) {
        if n.is_none() {
            n.clone_from(o);
        }
    }
    keep(&mut new.reply, &old.reply);
    keep(&mut new.status, &old.status);
    keep(&mut new.timeout, &old.timeout);
    keep(&mut new.mark, &old.mark);
    keep(&mut new.zone, &old.zone);
    keep(&mut new.master, &old.master);
    keep(&mut new.helper, &old.helper);
    keep(&mut new.labels, &old.labels);
    keep(&mut new.seq_adj_orig, &old.seq_adj_orig);
    keep(&mut new.seq_adj_reply, &old.seq_adj_reply);
    keep(&mut new.synproxy, &old.synproxy);
    keep(&mut new.nat_src, &old.nat_src);
    keep(&mut new.nat_dst, &old.nat_dst);
    match (&mut new.protoinfo, &old.protoinfo) {
        (Some(ProtoInfo::Tcp(n)), Some(ProtoInfo::Tcp(o))) => {
            keep(&mut n.state, &o.state);
            keep(&mut n.wscale_orig, &o.wscale_orig);
            keep(&mut n.wscale_reply, &o.wscale_reply);
        }
        (Some(ProtoInfo::Sctp(n)), Some(ProtoInfo::Sctp(o))) => {
            keep(&mut n.state, &o.state);
            keep(&mut n.vtag_orig, &o.vtag_orig);
            keep(&mut n.vtag_reply, &o.vtag_reply);
        }
        (n @ None, o) => n.clone_from(o),
        _ => {}
    }
}

/// The request that puts a synced entry into the kernel, as conntrackd's commit makes it:
/// the reply tuple is the inverse of the original (the kernel applies the NAT ranges to it),
/// `EXPECTED` is cleared (the kernel refuses to set it), the timeout is what is left of it
/// (`elapsed` seconds after the last update; 60 if nothing is left), and TCP window tracking
/// is relaxed unless `window_tracking` (the flags a recovered connection needs).
pub fn commit_request(
    entry: &ConntrackRepr,
    elapsed: u64,
    fixed_timeout: Option<u32>,
    window_tracking: bool,
) -> ConntrackRepr {
    use conntrack_codec::ct::{Status, TcpFlags};
    let mut r = entry.clone();
    if let Some(orig) = r.orig {
        r.reply = Some(Tuple {
            zone: None,
            ..orig.inverted()
        });
    }
    r.status = Some(Status(
        r.status.map_or(0, |s| s.0) & !Status::EXPECTED.0 & !Status::UNCHANGEABLE_MASK.0,
    ));
    r.timeout = Some(match fixed_timeout {
        Some(t) => t,
        None => {
            let left = i64::from(r.timeout.unwrap_or(60)) - elapsed as i64;
            if left <= 0 {
                60
            } else {
                left as u32
            }
        }
    });
    if !window_tracking {
        if let Some(ProtoInfo::Tcp(t)) = &mut r.protoinfo {
            let f = TcpFlags {
                flags: TcpFlags::BE_LIBERAL,
                mask: TcpFlags::BE_LIBERAL,
            };
            t.flags_orig = Some(f);
            t.flags_reply = Some(f);
        }
    }
    // A NAT range without addresses or ports means nothing to the kernel.
    for n in [&mut r.nat_src, &mut r.nat_dst] {
        if n.is_some_and(|x| x.min_addr.is_none() && x.min_port.is_none()) {
            *n = None;
        }
    }
    r
}

/// Whether `a` is one of the addresses of the entry's original tuple.
pub fn involves(entry: &ConntrackRepr, a: IpAddr) -> bool {
    entry
        .orig
        .is_some_and(|t| t.src == Some(a) || t.dst == Some(a))
}

/// Parses a cached conntrack entry into `out`.
///
/// # Errors
/// A cache entry that does not parse (never, for what the engine stored).
pub fn ct_repr(attrs: &[u8], out: &mut ConntrackRepr) -> Result<()> {
    SyncCt::new_checked(attrs)?.read_into(out)
}
