//! conntrackd's statistics mode (`Stats { }`): the daemon keeps a cache of the flows the
//! kernel tracks (a dump at start, then the events) and writes a line for each flow that
//! goes away, to `Stats { LogFile }` and, with `Stats { Syslog }`, to syslog at `LOG_INFO`.
//!
//! The line is what conntrackd 1.4.7 writes (checked byte for byte against the real daemon
//! by a live test): `ctime()` of the moment it is written without its newline, a tab, and
//! the flow as `nfct_snprintf` prints it with no event prefix and no timeout — counters and
//! `delta-time` when the kernel keeps them — then a newline; syslog gets the same text
//! without the time and the tab.
//!
//! ```text
//! Sat Dec  5 03:38:46 2026<TAB>tcp      6 ESTABLISHED src=10.1.1.1 dst=10.2.2.2 sport=1000 dport=80 packets=0 bytes=0 src=10.2.2.2 dst=10.1.1.1 sport=80 dport=1000 packets=0 bytes=0 [ASSURED] mark=7 delta-time=1
//! ```
//!
//! Only flows the cache knew are written (a flow made and gone while the daemon was not
//! watching is not). After lost events the cache is read again from a dump; flows it held
//! that the kernel no longer has are written then, from what the cache kept of them (their
//! tuples, status, protocol state, mark, zone, helper, labels and start time: no counters,
//! as conntrackd's own cache drops them).
//!
//! [`StatsCache`] is the sans-IO part; [`StatsNode`] reads the kernel for it, and
//! [`StatsLog`] writes the lines to a file.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::os::fd::AsFd;
use std::path::Path;

use conntrack_codec::ct::{ConntrackRepr, EventKind, Timestamp};
use conntrack_codec::filter::DumpFilter;
use conntrack_codec::fmt::{CtLine, Ctime, Origin, Output};
use conntrack_codec::sync::{emit_ct_attrs, NtaWriter, SyncCt};
use conntrack_io::{Event, Events, Groups, Socket};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::cache::{Key, KeyBuild, KeyHasher};
use crate::engine::CacheStats;
use crate::filter::Filter;

/// The text of a flow in the statistics log, without the time: `nfct_snprintf`'s plain
/// line with no event prefix and without the timeout (conntrackd unsets it). `now` (seconds
/// since the epoch) serves `delta-time=` for a flow the kernel gave no stop time.
pub fn flow_text(entry: &ConntrackRepr, now: u64) -> String {
    let mut e = entry.clone();
    e.timeout = None;
    let out = Output {
        now,
        ..Output::default()
    };
    CtLine::new(&e, Origin::Dump, &out, &()).to_string()
}

/// A whole line of the statistics log file: `ctime()` of `now` at `utc_offset` seconds from
/// UTC, a tab, [`flow_text`], a newline.
pub fn log_line(entry: &ConntrackRepr, now: u64, utc_offset: i32) -> String {
    format!("{}\t{}\n", Ctime(now, utc_offset), flow_text(entry, now))
}

#[derive(Debug)]
struct Flow {
    attrs: Box<[u8]>,
    start_ns: Option<u64>,
    epoch: u32,
}

/// The flows the statistics mode knows; see the module documentation.
#[derive(Debug)]
pub struct StatsCache {
    keys: KeyHasher,
    flows: HashMap<Key, Flow, KeyBuild>,
    limit: usize,
    filter: Filter,
    epoch: u32,
    stats: CacheStats,
    scratch: Box<ConntrackRepr>,
}

impl StatsCache {
    /// An empty cache of at most `hash_limit` flows (`HashLimit`); flows the `filter`
    /// keeps out are not taken (`General { Filter }`).
    pub fn new(hash_limit: usize, filter: Filter) -> StatsCache {
        StatsCache {
            keys: KeyHasher::new(),
            flows: HashMap::with_hasher(KeyBuild),
            limit: hash_limit,
            filter,
            epoch: 0,
            stats: CacheStats::default(),
            scratch: Box::default(),
        }
    }

    fn encode(&self, e: &ConntrackRepr, buf: &mut [u8]) -> Option<(usize, Key)> {
        let mut w = NtaWriter::new(buf);
        emit_ct_attrs(e, &mut w).ok()?;
        let len = w.len();
        let key = self.keys.ct(&SyncCt::new_checked(buf.get(..len)?).ok()?);
        Some((len, key))
    }

    /// Takes in a flow of a dump, or a new or changed flow (`update_force`).
    fn upsert(&mut self, e: &ConntrackRepr) {
        let mut buf = [0u8; 512];
        let Some((len, key)) = self.encode(e, &mut buf) else {
            return;
        };
        let attrs = buf.get(..len).unwrap_or(&[]);
        let start_ns = e.timestamp.and_then(|t| t.start);
        let epoch = self.epoch;
        if let Some(f) = self.flows.get_mut(&key) {
            if *f.attrs != *attrs {
                f.attrs = attrs.into();
            }
            f.start_ns = start_ns.or(f.start_ns);
            f.epoch = epoch;
            self.stats.upd_ok += 1;
            return;
        }
        if self.flows.len() >= self.limit {
            self.stats.add_fail += 1;
            self.stats.add_fail_enospc += 1;
            return;
        }
        self.flows.insert(
            key,
            Flow {
                attrs: attrs.into(),
                start_ns,
                epoch,
            },
        );
        self.stats.add_ok += 1;
    }

    /// A flow of the first dump.
    pub fn populate(&mut self, e: &ConntrackRepr) {
        if self.filter.accepts(e) {
            self.upsert(e);
        }
    }

    /// A kernel event (already filtered by the kernel if `Filter From Kernelspace`; `filter`
    /// says whether to judge it here). Returns whether the flow is to be logged: a flow the
    /// cache knew went away.
    pub fn event(&mut self, kind: EventKind, e: &ConntrackRepr, filter: bool) -> bool {
        if filter && !self.filter.accepts(e) {
            return false;
        }
        match kind {
            EventKind::New | EventKind::Update => {
                self.upsert(e);
                false
            }
            EventKind::Destroy => {
                let mut buf = [0u8; 512];
                let Some((_, key)) = self.encode(e, &mut buf) else {
                    return false;
                };
                if self.flows.remove(&key).is_some() {
                    self.stats.del_ok += 1;
                    true
                } else {
                    self.stats.del_fail += 1;
                    self.stats.del_fail_enoent += 1;
                    false
                }
            }
        }
    }

    /// Starts reading the table again (after lost events).
    pub fn begin_resync(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// A flow of the resync dump.
    pub fn resync(&mut self, e: &ConntrackRepr) {
        self.populate(e);
    }

    /// Ends the resync: flows the dump did not show went away while events were lost;
    /// each is passed to `gone` (rebuilt from what the cache kept) and forgotten.
    pub fn end_resync(&mut self, mut gone: impl FnMut(&ConntrackRepr)) {
        let epoch = self.epoch;
        let stale: Vec<Key> = self
            .flows
            .iter()
            .filter(|(_, f)| f.epoch != epoch)
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            if let Some(f) = self.flows.remove(&k) {
                self.stats.del_ok += 1;
                if SyncCt::new_checked(&f.attrs)
                    .and_then(|v| v.read_into(&mut self.scratch))
                    .is_ok()
                {
                    if let Some(start) = f.start_ns {
                        self.scratch.timestamp = Some(Timestamp {
                            start: Some(start),
                            stop: None,
                        });
                    }
                    gone(&self.scratch);
                }
            }
        }
    }

    /// How many flows it holds.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Forgets every flow (`conntrackd -f`).
    pub fn flush(&mut self) {
        self.flows.clear();
    }

    /// The flows, as the `NTA_*` attributes the cache keeps (for `conntrackd -i`).
    pub fn flows(&self) -> impl Iterator<Item = &[u8]> {
        self.flows.values().map(|f| &*f.attrs)
    }

    /// The counters (for `conntrackd -s`).
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            objects: self.flows.len() as u64,
            active: self.flows.len() as u64,
            ..self.stats
        }
    }
}

/// The statistics log file (`Stats { LogFile }`), written a line at a time.
#[derive(Debug)]
pub struct StatsLog {
    file: File,
    utc_offset: i32,
}

impl StatsLog {
    /// Opens `path` for appending (made if missing), lines to be stamped at `utc_offset`
    /// seconds from UTC.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(path: &Path, utc_offset: i32) -> io::Result<StatsLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(StatsLog { file, utc_offset })
    }

    /// Writes the line of a flow that went away, stamped `now`.
    ///
    /// # Errors
    /// The write fails.
    pub fn write(&mut self, entry: &ConntrackRepr, now: u64) -> io::Result<()> {
        self.file
            .write_all(log_line(entry, now, self.utc_offset).as_bytes())
    }
}

/// What the statistics mode needs (`Stats { }` and the `General` options it applies).
#[derive(Debug, Clone)]
pub struct StatsConfig {
    /// `HashLimit`.
    pub hash_limit: usize,
    /// `General { Filter }`.
    pub filter: Filter,
    /// `Filter From Kernelspace`.
    pub filter_kernelspace: bool,
    /// `NetlinkBufferSize`.
    pub netlink_buffer: usize,
    /// `NetlinkBufferSizeMaxGrowth`.
    pub netlink_buffer_max: usize,
    /// `NetlinkEventsReliable`.
    pub netlink_reliable: bool,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            hash_limit: 262_144,
            filter: Filter::default(),
            filter_kernelspace: false,
            netlink_buffer: 2 * 1024 * 1024,
            netlink_buffer_max: 8 * 1024 * 1024,
            netlink_reliable: false,
        }
    }
}

/// The statistics mode's shell: the kernel's event socket and a request socket, feeding a
/// [`StatsCache`].
#[derive(Debug)]
pub struct StatsNode {
    cfg: StatsConfig,
    cache: StatsCache,
    events: Events,
    req: Socket,
    rcvbuf: usize,
    scratch: Box<ConntrackRepr>,
    /// Events lost (the kernel said so), and resyncs made.
    pub lost: u64,
}

fn io_err(e: conntrack_io::Error) -> io::Error {
    io::Error::other(e)
}

impl StatsNode {
    /// Subscribes to the events and reads the table.
    ///
    /// # Errors
    /// A socket error, or a filter too large for the kernel.
    pub fn start(cfg: StatsConfig) -> io::Result<StatsNode> {
        let events = Events::open(Groups::CONNTRACK).map_err(io_err)?;
        events.set_nonblocking(true).map_err(io_err)?;
        let rcvbuf = events.set_rcvbuf(cfg.netlink_buffer).map_err(io_err)?;
        if cfg.netlink_reliable {
            events.set_reliable(true).map_err(io_err)?;
        }
        if cfg.filter_kernelspace && !cfg.filter.is_empty() {
            let f = cfg
                .filter
                .event_filter()
                .map_err(|e| io::Error::other(format!("kernel filter: {e}")))?;
            events.attach_filter(&f).map_err(io_err)?;
        }
        let mut node = StatsNode {
            cache: StatsCache::new(cfg.hash_limit, cfg.filter.clone()),
            cfg,
            events,
            req: Socket::open().map_err(io_err)?,
            rcvbuf,
            scratch: Box::default(),
            lost: 0,
        };
        let (cache, scratch) = (&mut node.cache, &mut *node.scratch);
        let _ = node
            .req
            .list(&DumpFilter::default(), |v| {
                if scratch.parse_into(v.nf()).is_ok() {
                    cache.populate(scratch);
                }
                ControlFlow::Continue(())
            })
            .map_err(io_err)?;
        Ok(node)
    }

    /// The cache.
    pub fn cache(&self) -> &StatsCache {
        &self.cache
    }

    /// The cache, to flush it.
    pub fn cache_mut(&mut self) -> &mut StatsCache {
        &mut self.cache
    }

    /// Waits up to `timeout_ms` for events and takes them in; `gone` gets each flow to log.
    ///
    /// # Errors
    /// A socket error.
    pub fn run_once(
        &mut self,
        timeout_ms: u16,
        mut gone: impl FnMut(&ConntrackRepr),
    ) -> io::Result<()> {
        {
            let mut fds = [PollFd::new(self.events.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(timeout_ms)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(io::Error::from(e)),
            }
        }
        let filter_here = !self.cfg.filter_kernelspace;
        let mut lost = false;
        for _ in 0..4096 {
            let ev = match self.events.try_next() {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) => return Err(io_err(e)),
            };
            match ev {
                Event::Conntrack(ev) => {
                    if self.scratch.parse_into(ev.entry.nf()).is_err() {
                        continue;
                    }
                    if self.cache.event(ev.kind, &self.scratch, filter_here) {
                        gone(&self.scratch);
                    }
                }
                Event::Expect(_) => {}
                Event::Lost(l) => {
                    self.lost += l.count;
                    lost = true;
                }
            }
        }
        if lost {
            if self.rcvbuf < self.cfg.netlink_buffer_max {
                let want = (self.rcvbuf * 2).min(self.cfg.netlink_buffer_max);
                self.rcvbuf = self.events.set_rcvbuf(want).map_err(io_err)?;
            }
            self.cache.begin_resync();
            let (cache, scratch) = (&mut self.cache, &mut *self.scratch);
            let summary = self
                .req
                .list(&DumpFilter::default(), |v| {
                    if scratch.parse_into(v.nf()).is_ok() {
                        cache.resync(scratch);
                    }
                    ControlFlow::Continue(())
                })
                .map_err(io_err)?;
            if !summary.interrupted {
                self.cache.end_resync(gone);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_codec::ct::{Counters, ProtoInfo, Status, TcpInfo, TcpState, Tuple};
    use std::net::{IpAddr, Ipv4Addr};

    fn flow(i: u8) -> ConntrackRepr {
        let o = Tuple::tcp(
            IpAddr::V4(Ipv4Addr::new(10, 1, 1, i)),
            IpAddr::V4(Ipv4Addr::new(10, 2, 2, 2)),
            1000,
            80,
        );
        ConntrackRepr {
            family: 2,
            orig: Some(o),
            reply: Some(o.inverted()),
            status: Some(Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED),
            protoinfo: Some(ProtoInfo::Tcp(TcpInfo {
                state: Some(TcpState::Established),
                ..TcpInfo::default()
            })),
            timeout: Some(100),
            mark: Some(7),
            ..ConntrackRepr::default()
        }
    }

    #[test]
    fn the_line_is_conntrackds() {
        // As the destroy event of conntrackd 1.4.7's capture (see the module documentation).
        let mut e = flow(1);
        e.timeout = None;
        e.counters_orig = Some(Counters {
            packets: Some(0),
            bytes: Some(0),
        });
        e.counters_reply = e.counters_orig;
        e.timestamp = Some(Timestamp {
            start: Some(1_796_441_925_000_000_000),
            stop: Some(1_796_441_926_000_000_000),
        });
        assert_eq!(
            log_line(&e, 1_796_441_926, 0),
            "Sat Dec  5 03:38:46 2026\ttcp      6 ESTABLISHED src=10.1.1.1 dst=10.2.2.2 \
             sport=1000 dport=80 packets=0 bytes=0 src=10.2.2.2 dst=10.1.1.1 sport=80 \
             dport=1000 packets=0 bytes=0 [ASSURED] mark=7 delta-time=1\n"
        );
        // The timeout is never printed.
        assert!(!flow_text(&flow(1), 0).contains(" 100 "));
    }

    #[test]
    fn only_known_flows_are_logged_and_a_resync_logs_the_vanished() {
        let mut c = StatsCache::new(10, Filter::default());
        c.populate(&flow(1));
        assert!(!c.event(EventKind::New, &flow(2), true));
        assert!(c.event(EventKind::Destroy, &flow(1), true));
        assert!(!c.event(EventKind::Destroy, &flow(1), true));
        assert!(!c.event(EventKind::Destroy, &flow(9), true));
        assert_eq!(c.len(), 1);
        c.populate(&flow(3));
        c.begin_resync();
        c.resync(&flow(3));
        let mut gone = Vec::new();
        c.end_resync(|e| gone.push(flow_text(e, 0)));
        assert_eq!(gone.len(), 1);
        assert!(
            gone[0].starts_with("tcp      6 ESTABLISHED src=10.1.1.2 "),
            "{gone:?}"
        );
        assert!(gone[0].contains("mark=7"));
        assert_eq!(c.len(), 1);
        let s = c.stats();
        assert_eq!((s.add_ok, s.del_ok, s.del_fail_enoent), (3, 2, 2));
    }

    #[test]
    fn the_limit_and_the_filter_bound_the_cache() {
        let f = Filter {
            protocols: Some((
                conntrack_codec::filter::bpf::Logic::Positive,
                vec![conntrack_codec::ct::l4proto::UDP],
            )),
            ..Filter::default()
        };
        let mut c = StatsCache::new(10, f);
        c.populate(&flow(1));
        assert!(c.is_empty());
        let mut c = StatsCache::new(2, Filter::default());
        for i in 0..5 {
            c.populate(&flow(i));
        }
        assert_eq!(c.len(), 2);
        assert_eq!(c.stats().add_fail_enospc, 3);
    }
}
