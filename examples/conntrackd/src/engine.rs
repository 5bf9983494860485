//! What the daemon needs from a synchronization engine ([`Engine`]), and [`KernelCache`]:
//! the internal cache fed by ctnetlink as 1.4.7 feeds it (a dump at start, then events, a
//! new dump after a loss or on `-R`). In sync mode it is the internal cache the daemon lists
//! (`-i`), beside `conntrack-sync`'s node ([`crate::sync`]), whose own cache keeps only the
//! attributes it sends; without a UDP link it is the whole engine (no peer: the external
//! cache stays empty, `-c` commits nothing, `-n` and `-B` only log).
//!
//! The program keeps the texts and the control protocol; engines only answer with data.

use std::collections::HashMap;
use std::io;
use std::ops::ControlFlow;
use std::os::fd::{AsRawFd, RawFd};

use conntrack_codec::ct::{ConntrackRepr, EventKind};
use conntrack_codec::exp::ExpectRepr;
use conntrack_codec::filter::DumpFilter;
use conntrack_io::{Event, Events, Groups, Socket};

use crate::config::Config;
use crate::log::{Logger, Priority};
use crate::text::{CacheStats, LinkStats, NetworkStats, QueueStats, Runtime, Traffic};

/// A cache of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// The local table, as the kernel reports it.
    Internal,
    /// The peer's table, as the peer sent it.
    External,
}

/// Conntrack entries, expectations, or both (the table argument of `-c`, `-F`, `-R`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `ct`.
    Conntrack,
    /// `expect`.
    Expect,
    /// Neither named: both.
    All,
}

/// How a commit went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Commit {
    /// Entries put into the kernel.
    pub ok: u32,
    /// Entries the kernel refused.
    pub fail: u32,
}

/// A synchronization engine as the daemon drives it: descriptors to watch, timers, and one
/// method per control request. The daemon does the logging of the requests and every text.
pub trait Engine {
    /// Descriptors to wait on for input.
    fn fds(&self) -> Vec<RawFd>;
    /// `fd` is readable.
    fn ready(&mut self, fd: RawFd, log: &mut Logger, rt: &mut Runtime);
    /// Milliseconds until [`Engine::tick`] is due, if a timer runs.
    fn timeout_ms(&self) -> Option<u64>;
    /// Runs due timers.
    fn tick(&mut self, log: &mut Logger, rt: &mut Runtime);
    /// Each entry of a cache with the time it entered it (seconds since the epoch), in the
    /// order 1.4.7 lists them.
    fn entries(&self, cache: Cache, table: Table, f: &mut dyn FnMut(&ConntrackRepr, i64));
    /// Each expectation of a cache with the time it entered it (seconds since the epoch);
    /// none by default (an engine without `ExpectationSync`).
    fn exp_entries(&self, _cache: Cache, _f: &mut dyn FnMut(&ExpectRepr, i64)) {}
    /// A cache's counters.
    fn cache_stats(&self, cache: Cache) -> CacheStats;
    /// Puts the external cache into the kernel (`-c`).
    fn commit(&mut self, table: Table, log: &mut Logger) -> Commit;
    /// Empties a cache, or both (`-f`).
    fn flush_cache(&mut self, cache: Option<Cache>);
    /// Flushes the kernel's table (`-F`).
    ///
    /// # Errors
    /// The kernel's refusal.
    fn flush_kernel(&mut self, table: Table) -> io::Result<()>;
    /// Reads the kernel's table again into the internal cache (`-R`).
    ///
    /// # Errors
    /// A failed dump.
    fn resync_kernel(&mut self, table: Table, rt: &mut Runtime) -> io::Result<()>;
    /// Asks the peer to send its table (`-n`).
    fn request_resync(&mut self);
    /// Sends the internal cache to the peer (`-B`).
    fn send_bulk(&mut self);
    /// The dedicated links, the active one first.
    fn links(&self) -> Vec<LinkStats>;
    /// The sync protocol's message counters.
    fn network(&self) -> NetworkStats;
    /// Bytes and packets of the flows seen to end.
    fn traffic(&self) -> Traffic;
    /// The lines of `-s rsqueue` after its header, and the queue's length.
    fn rsqueue(&self) -> (u32, String);
    /// `-s queue`: allocated nodes and each queue.
    fn queues(&self) -> (u32, Vec<QueueStats>);
}

/// A boxed engine is an engine (the daemon picks one at start).
impl<T: Engine + ?Sized> Engine for Box<T> {
    fn fds(&self) -> Vec<RawFd> {
        (**self).fds()
    }
    fn ready(&mut self, fd: RawFd, log: &mut Logger, rt: &mut Runtime) {
        (**self).ready(fd, log, rt)
    }
    fn timeout_ms(&self) -> Option<u64> {
        (**self).timeout_ms()
    }
    fn tick(&mut self, log: &mut Logger, rt: &mut Runtime) {
        (**self).tick(log, rt)
    }
    fn entries(&self, cache: Cache, table: Table, f: &mut dyn FnMut(&ConntrackRepr, i64)) {
        (**self).entries(cache, table, f)
    }
    fn exp_entries(&self, cache: Cache, f: &mut dyn FnMut(&ExpectRepr, i64)) {
        (**self).exp_entries(cache, f)
    }
    fn cache_stats(&self, cache: Cache) -> CacheStats {
        (**self).cache_stats(cache)
    }
    fn commit(&mut self, table: Table, log: &mut Logger) -> Commit {
        (**self).commit(table, log)
    }
    fn flush_cache(&mut self, cache: Option<Cache>) {
        (**self).flush_cache(cache)
    }
    fn flush_kernel(&mut self, table: Table) -> io::Result<()> {
        (**self).flush_kernel(table)
    }
    fn resync_kernel(&mut self, table: Table, rt: &mut Runtime) -> io::Result<()> {
        (**self).resync_kernel(table, rt)
    }
    fn request_resync(&mut self) {
        (**self).request_resync()
    }
    fn send_bulk(&mut self) {
        (**self).send_bulk()
    }
    fn links(&self) -> Vec<LinkStats> {
        (**self).links()
    }
    fn network(&self) -> NetworkStats {
        (**self).network()
    }
    fn traffic(&self) -> Traffic {
        (**self).traffic()
    }
    fn rsqueue(&self) -> (u32, String) {
        (**self).rsqueue()
    }
    fn queues(&self) -> (u32, Vec<QueueStats>) {
        (**self).queues()
    }
}

/// The key of a cache entry: 1.4.7 compares the original tuple and the id; the cache keeps
/// a 128-bit keyed hash of them (two random SipHash keys per cache: 16 bytes an entry, and
/// two different entries would have to collide on 128 bits to be confused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key(u128);

/// The two random keys of a cache's [`Key`]s.
#[derive(Debug, Default)]
struct KeyHasher(std::hash::RandomState, std::hash::RandomState);

impl KeyHasher {
    fn key_of(&self, e: &ConntrackRepr) -> Key {
        use std::hash::BuildHasher;
        let parts = (e.family, e.orig.unwrap_or_default(), e.id.unwrap_or(0));
        let (a, b) = (self.0.hash_one(parts), self.1.hash_one(parts));
        Key((u128::from(a) << 64) | u128::from(b))
    }
}

/// An entry as the cache keeps it: the netlink message of a dump entry (a few hundred
/// bytes, where the parsed form takes 1.2 KB), read again when listed.
fn pack(e: &ConntrackRepr) -> Box<[u8]> {
    use conntrack_codec::nfnl::{ct_msg, msg_type, Subsystem};
    let mut buf = vec![0u8; e.buffer_len()];
    let mut w = conntrack_codec::nl::Writer::new(&mut buf);
    let kind = msg_type(Subsystem::Ctnetlink, ct_msg::NEW);
    let n = match e.emit(&mut w, kind, 0, 0) {
        Ok(r) => r.end,
        Err(_) => 0,
    };
    buf.truncate(n);
    buf.into_boxed_slice()
}

/// The entry [`pack`] kept.
fn unpack(bytes: &[u8], out: &mut ConntrackRepr) -> bool {
    let Some(Ok(msg)) = conntrack_codec::nl::Messages::new(bytes).next() else {
        return false;
    };
    conntrack_codec::nfnl::NfMsg::new_checked(msg).is_ok_and(|nf| out.parse_into(&nf).is_ok())
}

/// Bob Jenkins' lookup2 `jhash2` (the kernel's old `jhash2`), spreading entries over the
/// `HashSize` buckets. The listing order is not 1.4.7's: its buckets did not come out in
/// this hash's order on the same table (the live test compares the lines sorted).
pub fn jhash2(k: &[u32], initval: u32) -> u32 {
    fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
        *a = a.wrapping_sub(*b).wrapping_sub(*c) ^ (*c >> 13);
        *b = b.wrapping_sub(*c).wrapping_sub(*a) ^ (*a << 8);
        *c = c.wrapping_sub(*a).wrapping_sub(*b) ^ (*b >> 13);
        *a = a.wrapping_sub(*b).wrapping_sub(*c) ^ (*c >> 12);
        *b = b.wrapping_sub(*c).wrapping_sub(*a) ^ (*a << 16);
        *c = c.wrapping_sub(*a).wrapping_sub(*b) ^ (*b >> 5);
        *a = a.wrapping_sub(*b).wrapping_sub(*c) ^ (*c >> 3);
        *b = b.wrapping_sub(*c).wrapping_sub(*a) ^ (*a << 10);
        *c = c.wrapping_sub(*a).wrapping_sub(*b) ^ (*b >> 15);
    }
    let mut a: u32 = 0x9e37_79b9;
    let mut b: u32 = 0x9e37_79b9;
    let mut c: u32 = initval;
    let mut chunks = k.chunks_exact(3);
    for ch in &mut chunks {
        a = a.wrapping_add(ch[0]);
        b = b.wrapping_add(ch[1]);
        c = c.wrapping_add(ch[2]);
        mix(&mut a, &mut b, &mut c);
    }
    c = c.wrapping_add((k.len() as u32).wrapping_mul(4));
    let rest = chunks.remainder();
    if rest.len() == 2 {
        b = b.wrapping_add(rest[1]);
    }
    if !rest.is_empty() {
        a = a.wrapping_add(rest[0]);
    }
    mix(&mut a, &mut b, &mut c);
    c
}

/// An address's bytes as libnetfilter_conntrack hands them to the hash: network-order
/// words read as native integers.
fn words(ip: Option<std::net::IpAddr>) -> [u32; 4] {
    let mut w = [0u32; 4];
    match ip {
        Some(std::net::IpAddr::V4(a)) => w[0] = u32::from_ne_bytes(a.octets()),
        Some(std::net::IpAddr::V6(a)) => {
            for (i, ch) in a.octets().chunks_exact(4).enumerate() {
                w[i] = u32::from_ne_bytes([ch[0], ch[1], ch[2], ch[3]]);
            }
        }
        None => {}
    }
    w
}

/// The bucket of an entry in a table of `size` buckets, from the fields 1.4.7's
/// `cache_ct_hash` reads.
pub fn bucket(e: &ConntrackRepr, size: u32) -> u32 {
    let orig = e.orig.unwrap_or_default();
    let port = |p: Option<u16>| u32::from(u16::from_ne_bytes(p.unwrap_or(0).to_be_bytes()));
    let protos = u32::from(e.family) << 16 | u32::from(orig.proto.unwrap_or(0));
    let ports = port(orig.src_port) << 16 | port(orig.dst_port);
    let h = if e.family == 10 {
        // 1.4.7 hashes the source address twice (the destination is never read).
        let s = words(orig.src);
        let a = [
            s[0], s[1], s[2], s[3], s[0], s[1], s[2], s[3], protos, ports,
        ];
        jhash2(&a, 0)
    } else {
        let a = [words(orig.src)[0], words(orig.dst)[0], protos, ports];
        jhash2(&a, 0)
    };
    ((u64::from(h) * u64::from(size)) >> 32) as u32
}

struct Object {
    entry: Box<[u8]>,
    since: i64,
}

/// A cache in 1.4.7's shape: `HashSize` buckets, newest first in each, at most `HashLimit`
/// entries (more are refused and counted, as 1.4.7 counts them).
pub struct HashCache {
    buckets: Vec<Vec<Key>>,
    objects: HashMap<Key, Object>,
    keys: KeyHasher,
    limit: u32,
    stats: CacheStats,
}

impl HashCache {
    /// An empty cache.
    pub fn new(size: u32, limit: u32) -> HashCache {
        HashCache {
            buckets: (0..size.max(1)).map(|_| Vec::new()).collect(),
            objects: HashMap::new(),
            keys: KeyHasher::default(),
            limit,
            stats: CacheStats::default(),
        }
    }

    fn size(&self) -> u32 {
        u32::try_from(self.buckets.len()).unwrap_or(u32::MAX)
    }

    /// Adds an entry, or updates it with the attributes the new one carries
    /// (`cache_update_force`).
    pub fn update_force(&mut self, e: &ConntrackRepr, now: i64) {
        // 1.4.7 keeps no reference count in its caches (`-i` never shows `use=`).
        let mut e = e.clone();
        e.use_count = None;
        let e = &e;
        let k = self.keys.key_of(e);
        if let Some(o) = self.objects.get_mut(&k) {
            let mut old = ConntrackRepr::default();
            if unpack(&o.entry, &mut old) {
                overlay(&mut old, e);
                o.entry = pack(&old);
            } else {
                o.entry = pack(e);
            }
            self.stats.upd_ok += 1;
            return;
        }
        if self.objects.len() >= self.limit as usize {
            self.stats.add_fail += 1;
            self.stats.add_fail_enospc += 1;
            return;
        }
        let b = bucket(e, self.size()) as usize;
        if let Some(list) = self.buckets.get_mut(b) {
            list.insert(0, k);
        }
        self.objects.insert(
            k,
            Object {
                entry: pack(e),
                since: now,
            },
        );
        self.stats.add_ok += 1;
    }

    /// Removes an entry (a destroy event); false if the cache did not hold it.
    pub fn remove(&mut self, e: &ConntrackRepr) -> bool {
        let k = self.keys.key_of(e);
        if self.objects.remove(&k).is_none() {
            self.stats.del_fail += 1;
            self.stats.del_fail_enoent += 1;
            return false;
        }
        let b = bucket(e, self.size()) as usize;
        if let Some(list) = self.buckets.get_mut(b) {
            list.retain(|x| *x != k);
        }
        self.stats.del_ok += 1;
        true
    }

    /// Empties the cache.
    pub fn flush(&mut self) {
        self.objects.clear();
        for b in &mut self.buckets {
            b.clear();
        }
    }

    /// Each entry in bucket order.
    pub fn each(&self, f: &mut dyn FnMut(&ConntrackRepr, i64)) {
        let mut e = ConntrackRepr::default();
        for list in &self.buckets {
            for k in list {
                if let Some(o) = self.objects.get(k) {
                    if unpack(&o.entry, &mut e) {
                        f(&e, o.since);
                    }
                }
            }
        }
    }

    /// The counters.
    pub fn stats(&self) -> CacheStats {
        let n = u32::try_from(self.objects.len()).unwrap_or(u32::MAX);
        CacheStats {
            objects: n,
            active: n,
            ..self.stats
        }
    }

    /// Entries now.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// `nfct_copy(dst, src, NFCT_CP_OVERRIDE)`: every attribute `src` has replaces `dst`'s
/// (down to the fields of the TCP and SCTP protocol info), the others stay.
pub fn overlay(dst: &mut ConntrackRepr, src: &ConntrackRepr) {
    let mut new = src.clone();
    conntrack_sync::cache::fill_missing(&mut new, dst);
    // What the sync engine's merge leaves out: counters, ids and timestamps.
    for (n, o) in [
        (&mut new.counters_orig, &dst.counters_orig),
        (&mut new.counters_reply, &dst.counters_reply),
    ] {
        if n.is_none() {
            n.clone_from(o);
        }
    }
    new.id = new.id.or(dst.id);
    new.secmark = new.secmark.or(dst.secmark);
    if new.secctx.is_none() {
        new.secctx.clone_from(&dst.secctx);
    }
    if new.timestamp.is_none() {
        new.timestamp.clone_from(&dst.timestamp);
    }
    *dst = new;
}

/// The internal cache fed by ctnetlink (and the whole engine when there is no peer).
pub struct KernelCache {
    events: Events,
    requests: Socket,
    internal: HashCache,
    external: HashCache,
    device: String,
    traffic: Traffic,
    resync_due: Option<std::time::Instant>,
    overrun_resync: i32,
    max_buffer: u32,
    warned: bool,
    /// Netlink port ids of this process's other sockets: events they caused are ignored.
    own: Vec<u32>,
    /// `General { Filter }` (judged here unless the kernel does it).
    filter: conntrack_sync::Filter,
    filter_here: bool,
    /// Statistics mode: where the flows that go away are written (`Stats { LogFile }`),
    /// and whether to syslog them (`Stats { Syslog }`).
    stats_log: Option<std::fs::File>,
    stats_syslog: bool,
}

/// The netlink port ids of this process's sockets (`/proc/net/netlink` rows whose inode is
/// one of our descriptors).
pub fn own_portids() -> Vec<u32> {
    let mut inodes = std::collections::HashSet::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for e in dir.flatten() {
            if let Ok(target) = std::fs::read_link(e.path()) {
                let t = target.to_string_lossy();
                if let Some(n) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                    if let Ok(n) = n.parse::<u64>() {
                        inodes.insert(n);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    if let Ok(text) = std::fs::read_to_string("/proc/self/net/netlink") {
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(pid), Some(inode)) = (f.get(2), f.get(9)) else {
                continue;
            };
            if let (Ok(pid), Ok(inode)) = (pid.parse::<u32>(), inode.parse::<u64>()) {
                if pid != 0 && inodes.contains(&inode) {
                    out.push(pid);
                }
            }
        }
    }
    out
}

impl KernelCache {
    /// Subscribes to the conntrack events, sizes the event socket as `NetlinkBufferSize`
    /// says, and reads the table once.
    ///
    /// # Errors
    /// Sockets that cannot be opened or a failed first dump.
    pub fn start(conf: &Config, log: &mut Logger, rt: &mut Runtime) -> io::Result<KernelCache> {
        let events = Events::open(Groups::CONNTRACK).map_err(to_io)?;
        let g = &conf.general;
        if g.netlink_buffer_size > 0 {
            let got = events
                .set_rcvbuf(g.netlink_buffer_size as usize)
                .map_err(to_io)?;
            rt.buffer_size = u32::try_from(got).unwrap_or(u32::MAX);
            log.log(
                Priority::Notice,
                &format!(
                    "netlink event socket buffer size has been set to {} bytes",
                    g.netlink_buffer_size
                ),
            );
            rt.buffer_size = g.netlink_buffer_size;
        }
        events.set_nonblocking(true).map_err(to_io)?;
        if g.netlink_events_reliable {
            events.set_reliable(true).map_err(to_io)?;
        }
        let (filter, kernelspace) = crate::sync::filter(conf);
        if kernelspace && !filter.is_empty() {
            let f = filter
                .event_filter()
                .map_err(|e| io::Error::other(format!("kernel filter: {e}")))?;
            events.attach_filter(&f).map_err(to_io)?;
        }
        let (stats_log, stats_syslog) = match &conf.stats {
            Some(st) => {
                let file = match &st.logfile {
                    Some(path) => Some(
                        std::fs::OpenOptions::new()
                            .append(true)
                            .create(true)
                            .open(path)?,
                    ),
                    None => None,
                };
                if let Some(fac) = st.syslog {
                    log.open_syslog(fac);
                }
                (file, st.syslog.is_some())
            }
            None => (None, false),
        };
        let requests = Socket::open().map_err(to_io)?;
        let device = conf.default_device();
        let mut k = KernelCache {
            events,
            requests,
            internal: HashCache::new(g.hashsize, g.hashlimit),
            external: HashCache::new(g.hashsize, g.hashlimit),
            device,
            traffic: Traffic::default(),
            resync_due: None,
            overrun_resync: g.netlink_overrun_resync,
            max_buffer: g.netlink_buffer_size_max_growth,
            warned: false,
            own: Vec::new(),
            filter,
            filter_here: !kernelspace,
            stats_log,
            stats_syslog,
        };
        k.dump()?;
        Ok(k)
    }

    /// From now on, events caused by this process's other netlink sockets (the sync
    /// node's commits) are not taken into the cache.
    pub fn ignore_own_events(&mut self) {
        let mine = self.requests.portid();
        self.own = own_portids().into_iter().filter(|p| *p != mine).collect();
    }

    fn dump(&mut self) -> io::Result<()> {
        let now = crate::now_secs();
        let (internal, filter) = (&mut self.internal, &self.filter);
        let _summary = self
            .requests
            .list(&DumpFilter::default(), |view| {
                if let Ok(e) = ConntrackRepr::parse(view.nf()) {
                    if filter.accepts(&e) {
                        internal.update_force(&e, now);
                    }
                }
                ControlFlow::Continue(())
            })
            .map_err(to_io)?;
        Ok(())
    }

    /// After a loss: grows the event socket's buffer up to `NetlinkBufferSizeMaxGrowth`
    /// (doubling, as 1.4.7 does) and schedules a resync after `NetlinkOverrunResync`.
    fn on_loss(&mut self, rt: &mut Runtime, log: &mut Logger) {
        rt.netlink_overrun += 1;
        if !self.warned {
            if rt.buffer_size.saturating_mul(2) > self.max_buffer {
                log.log(
                    Priority::Warning,
                    "netlink event socket buffer size cannot be doubled further since it will exceed NetlinkBufferSizeMaxGrowth. We are likely to be losing events, this may lead to unsynchronized replicas. Please, consider increasing netlink socket buffer size via NetlinkBufferSize and NetlinkBufferSizeMaxGrowth clauses in conntrackd.conf",
                );
                self.warned = true;
            } else {
                let want = rt.buffer_size.saturating_mul(2).max(1);
                if self.events.set_rcvbuf(want as usize).is_ok() {
                    rt.buffer_size = want;
                    log.log(
                        Priority::Notice,
                        &format!(
                            "netlink event socket buffer size has been doubled to {want} bytes"
                        ),
                    );
                }
            }
        }
        if self.overrun_resync > 0 && self.resync_due.is_none() {
            self.resync_due = Some(
                std::time::Instant::now()
                    + std::time::Duration::from_secs(self.overrun_resync as u64),
            );
        }
    }
}

impl KernelCache {
    /// Statistics mode: a flow the cache knew went away; written as 1.4.7 writes it (the
    /// local `ctime`, a tab, the flow), and syslogged at `LOG_INFO` without the time.
    fn log_flow(&mut self, e: &ConntrackRepr, now: i64, log: &mut Logger) {
        if self.stats_log.is_none() && !self.stats_syslog {
            return;
        }
        let secs = u64::try_from(now).unwrap_or(0);
        let text = conntrack_sync::stats::flow_text(e, secs);
        if let Some(f) = self.stats_log.as_mut() {
            let line = format!("{}\t{text}\n", crate::log::ctime_local(now));
            let _ = std::io::Write::write_all(f, line.as_bytes());
        }
        if self.stats_syslog {
            log.syslog_info(&text);
        }
    }
}

fn to_io(e: conntrack_io::Error) -> io::Error {
    io::Error::other(e.to_string())
}

impl Engine for KernelCache {
    fn fds(&self) -> Vec<RawFd> {
        vec![self.events.socket().as_raw_fd()]
    }

    fn ready(&mut self, _fd: RawFd, log: &mut Logger, rt: &mut Runtime) {
        let now = crate::now_secs();
        let mut lost = false;
        // Drain the socket (bounded, so control requests still get their turn).
        for _ in 0..16_384 {
            match self.events.try_next() {
                Ok(Some(Event::Conntrack(ev))) => {
                    rt.events_received += 1;
                    if ev.portid != 0 && self.own.contains(&ev.portid) {
                        continue;
                    }
                    let Ok(e) = ConntrackRepr::parse(ev.entry.nf()) else {
                        rt.catch_event_failed += 1;
                        continue;
                    };
                    if self.filter_here && !self.filter.accepts(&e) {
                        rt.events_filtered += 1;
                        continue;
                    }
                    match ev.kind {
                        EventKind::New | EventKind::Update => self.internal.update_force(&e, now),
                        EventKind::Destroy => {
                            for c in [e.counters_orig, e.counters_reply].into_iter().flatten() {
                                self.traffic.bytes += c.bytes.unwrap_or(0);
                                self.traffic.packets += c.packets.unwrap_or(0);
                            }
                            if self.internal.remove(&e) {
                                self.log_flow(&e, now, log);
                            }
                        }
                    }
                }
                Ok(Some(Event::Expect(_))) => rt.events_received += 1,
                Ok(Some(Event::Lost(_))) => lost = true,
                Ok(None) => break,
                Err(_) => {
                    rt.catch_event_failed += 1;
                    break;
                }
            }
        }
        if lost {
            self.on_loss(rt, log);
        }
    }

    fn timeout_ms(&self) -> Option<u64> {
        self.resync_due.map(|t| {
            u64::try_from(
                t.saturating_duration_since(std::time::Instant::now())
                    .as_millis(),
            )
            .unwrap_or(u64::MAX)
        })
    }

    fn tick(&mut self, _log: &mut Logger, rt: &mut Runtime) {
        if let Some(t) = self.resync_due {
            if std::time::Instant::now() >= t {
                self.resync_due = None;
                rt.kernel_table_resync += 1;
                let _ = self.dump();
            }
        }
    }

    fn entries(&self, cache: Cache, table: Table, f: &mut dyn FnMut(&ConntrackRepr, i64)) {
        if table == Table::Expect {
            return;
        }
        match cache {
            Cache::Internal => self.internal.each(f),
            Cache::External => self.external.each(f),
        }
    }

    fn cache_stats(&self, cache: Cache) -> CacheStats {
        match cache {
            Cache::Internal => self.internal.stats(),
            Cache::External => self.external.stats(),
        }
    }

    fn commit(&mut self, _table: Table, _log: &mut Logger) -> Commit {
        Commit::default()
    }

    fn flush_cache(&mut self, cache: Option<Cache>) {
        if cache != Some(Cache::External) {
            self.internal.flush();
        }
        if cache != Some(Cache::Internal) {
            self.external.flush();
        }
    }

    fn flush_kernel(&mut self, table: Table) -> io::Result<()> {
        if table != Table::Expect {
            self.requests.flush(&DumpFilter::default()).map_err(to_io)?;
        }
        Ok(())
    }

    fn resync_kernel(&mut self, table: Table, rt: &mut Runtime) -> io::Result<()> {
        if table != Table::Expect {
            rt.kernel_table_resync += 1;
            self.dump()?;
        }
        Ok(())
    }

    fn request_resync(&mut self) {}

    fn send_bulk(&mut self) {}

    fn links(&self) -> Vec<LinkStats> {
        vec![LinkStats {
            kind: crate::text::LinkKind::Udp,
            device: self.device.clone(),
            running: true,
            active: true,
            counters: conntrack_sync::LinkStats::default(),
        }]
    }

    fn network(&self) -> NetworkStats {
        NetworkStats::default()
    }

    fn traffic(&self) -> Traffic {
        self.traffic
    }

    fn rsqueue(&self) -> (u32, String) {
        (0, String::new())
    }

    fn queues(&self) -> (u32, Vec<QueueStats>) {
        (0, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_codec::ct::Tuple;

    fn entry(src: &str, sport: u16, id: u32) -> ConntrackRepr {
        let orig = Tuple::tcp(
            src.parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
            sport,
            80,
        );
        ConntrackRepr {
            family: 2,
            orig: Some(orig),
            reply: Some(orig.inverted()),
            id: Some(id),
            mark: Some(1),
            ..ConntrackRepr::default()
        }
    }

    #[test]
    fn cache_limit_update_and_order() {
        let mut c = HashCache::new(1, 2);
        c.update_force(&entry("10.0.0.1", 1, 1), 5);
        c.update_force(&entry("10.0.0.1", 2, 2), 6);
        c.update_force(&entry("10.0.0.1", 3, 3), 7);
        assert_eq!(c.len(), 2);
        assert_eq!(c.stats().add_fail_enospc, 1);
        let mut upd = entry("10.0.0.1", 1, 1);
        upd.mark = Some(9);
        upd.reply = None;
        c.update_force(&upd, 8);
        let mut seen = Vec::new();
        c.each(&mut |e, since| {
            seen.push((
                e.orig.and_then(|t| t.src_port),
                e.mark,
                e.reply.is_some(),
                since,
            ))
        });
        // One bucket: newest first; the update kept the reply tuple and the first time.
        assert_eq!(
            seen,
            vec![(Some(2), Some(1), true, 6), (Some(1), Some(9), true, 5)]
        );
        c.remove(&entry("10.0.0.1", 2, 2));
        c.remove(&entry("10.0.0.1", 2, 2));
        assert_eq!(c.len(), 1);
        assert_eq!(c.stats().del_fail_enoent, 1);
    }
}
