//! Cache keys and entries: an entry is kept as the `NTA_*` attributes of its last sync
//! message (a few dozen to a few hundred bytes), not as a full conntrack model, so memory per
//! entry stays small and bounded; the model is rebuilt on demand (dumps, commits).

use std::hash::{BuildHasher, Hasher, RandomState};

use std::net::IpAddr;

use conntrack_codec::ct::{ConntrackRepr, ProtoInfo, Tuple};
use conntrack_codec::sync::{nta, nta_exp, SyncCt, SyncExp};
use conntrack_codec::Result;

/// What identifies an entry in a cache: a 128-bit keyed hash of the bytes of its original
/// tuple and zone (conntrack) or of its master and expected tuples (expectation), as they
/// travel. Two independent SipHash keys drawn at random for each [`KeyHasher`] make a
/// collision between two different entries a chance of about n²/2¹²⁹ (10⁻²⁹ for 100,000
/// entries) that nobody outside the process can steer; in exchange a key is 16 bytes
/// instead of up to 96, and compares in one instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(u128);

impl Key {
    /// The 64 bits a hash table needs (the key is already a hash).
    pub fn low(self) -> u64 {
        self.0 as u64
    }
}

/// Makes [`Key`]s; every key compared with another must come from the same hasher.
#[derive(Debug, Clone, Default)]
pub struct KeyHasher {
    a: RandomState,
    b: RandomState,
}

impl KeyHasher {
    /// A hasher with fresh random keys.
    pub fn new() -> KeyHasher {
        KeyHasher::default()
    }

    fn build(&self, parts: &[&[u8]]) -> Key {
        // The parts, each after its length (so that parts of different lengths never
        // alias), in one buffer; then one SipHash-1-3 pass per half of the key.
        let mut buf = [0u8; 160];
        let mut n = 0usize;
        for p in parts {
            let len = p.len().min(255);
            let Some(dst) = buf.get_mut(n..n + 1 + len) else {
                break;
            };
            dst[0] = len as u8;
            dst[1..].copy_from_slice(&p[..len]);
            n += 1 + len;
        }
        let bytes = &buf[..n];
        Key((u128::from(self.a.hash_one(bytes)) << 64) | u128::from(self.b.hash_one(bytes)))
    }

    /// The key of a conntrack entry: addresses, protocol, ports, ICMP fields, zone.
    pub fn ct(&self, v: &SyncCt<'_>) -> Key {
        let p = |k| v.attr(k).map(|a| a.payload()).unwrap_or(&[]);
        self.build(&[
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
    pub fn exp(&self, v: &SyncExp<'_>) -> Key {
        let p = |k| v.attr(k).map(|a| a.payload()).unwrap_or(&[]);
        self.build(&[
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

/// A `BuildHasher` for maps keyed by [`Key`]: the key is already a keyed hash, so its low
/// 64 bits are used as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyBuild;

/// The hasher of [`KeyBuild`].
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyHash(u64);

impl Hasher for KeyHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64 ^ (v >> 64) as u64;
    }
}

impl BuildHasher for KeyBuild {
    type Hasher = KeyHash;
    fn build_hasher(&self) -> KeyHash {
        KeyHash(0)
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
    use conntrack_codec::ct::Status;
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
    r.timeout = Some(commit_timeout(r.timeout, elapsed, fixed_timeout));
    if !window_tracking {
        be_liberal(&mut r);
    }
    // A NAT range without addresses or ports means nothing to the kernel.
    for n in [&mut r.nat_src, &mut r.nat_dst] {
        if n.is_some_and(|x| x.min_addr.is_none() && x.min_port.is_none()) {
            *n = None;
        }
    }
    r
}

/// The request that changes a synced entry already in the kernel (`DisableExternalCache`),
/// as conntrackd's update makes it: no NAT (neither ranges nor `*_NAT` status bits: the
/// kernel refuses to change them), no helper (it would fail with `EBUSY`), no master (it
/// cannot change), TCP window tracking relaxed unless `window_tracking`. The reply tuple is
/// left out (the kernel keeps its own).
pub fn update_request(entry: &ConntrackRepr, window_tracking: bool) -> ConntrackRepr {
    use conntrack_codec::ct::Status;
    let mut r = entry.clone();
    r.reply = None;
    r.nat_src = None;
    r.nat_dst = None;
    r.helper = None;
    r.master = None;
    r.status = r
        .status
        .map(|s| Status(s.0 & !Status::NAT_MASK.0 & !Status::UNCHANGEABLE_MASK.0));
    if !window_tracking {
        be_liberal(&mut r);
    }
    r
}

/// The request that puts a synced expectation into the kernel, as conntrackd's commit makes
/// it: the timeout is `fixed_timeout` (`CommitTimeout`) or what is left of the expectation's
/// own (`elapsed` seconds after its last update; 60 if nothing is left). The master must be
/// in the kernel first.
pub fn exp_commit_request(
    exp: &conntrack_codec::exp::ExpectRepr,
    elapsed: u64,
    fixed_timeout: Option<u32>,
) -> conntrack_codec::exp::ExpectRepr {
    let mut r = exp.clone();
    r.id = None;
    r.timeout = Some(commit_timeout(r.timeout, elapsed, fixed_timeout));
    r
}

/// The timeout of a committed entry or expectation: `fixed_timeout` (`CommitTimeout`), else
/// what is left of its own `timeout` `elapsed` seconds after its last update (60 if it had
/// none or nothing is left).
fn commit_timeout(timeout: Option<u32>, elapsed: u64, fixed_timeout: Option<u32>) -> u32 {
    if let Some(t) = fixed_timeout {
        return t;
    }
    let left = u64::from(timeout.unwrap_or(60)).saturating_sub(elapsed);
    match u32::try_from(left) {
        Ok(t) if t > 0 => t,
        _ => 60,
    }
}

/// Turns TCP window tracking off for an entry put into the kernel (`IP_CT_TCP_FLAG_BE_LIBERAL`
/// both ways): a recovered connection's packets carry sequence numbers the node never saw.
fn be_liberal(r: &mut ConntrackRepr) {
    use conntrack_codec::ct::TcpFlags;
    if let Some(ProtoInfo::Tcp(t)) = &mut r.protoinfo {
        let f = TcpFlags {
            flags: TcpFlags::BE_LIBERAL,
            mask: TcpFlags::BE_LIBERAL,
        };
        t.flags_orig = Some(f);
        t.flags_reply = Some(f);
    }
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
