//! The daemon's engine in sync mode: `conntrack-sync`'s [`Node`] (the mode, the links, the
//! internal and external caches, the commit) behind the daemon's [`Engine`] trait. The node
//! is the daemon's only reader of kernel events: `-i` lists its internal cache (with the
//! kernel's ids), or the kernel's table when the internal cache is disabled, as 1.4.7 does.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};

use conntrack_codec::ct::{ConntrackRepr, TcpState};
use conntrack_codec::exp::ExpectRepr;
use conntrack_codec::sync::{SyncCt, SyncExp};
use conntrack_sync::filter::FilterLogic;
use conntrack_sync::{
    CacheId, ChannelConfig, ExpectSync, Filter, Mode, Network, Node, NodeConfig, Notice, RsEntry,
    Transport,
};

use crate::config::{self, ChannelKind, Config, Logic, SyncMode};
use crate::engine::{Cache, Commit, Engine, Table};
use crate::log::{Logger, Priority};
use crate::text::{CacheStats, LinkKind, LinkStats, NetworkStats, QueueStats, Runtime, Traffic};

/// The local and peer addresses of the default dedicated link, when it is UDP unicast.
pub fn udp_link(conf: &Config) -> Option<(SocketAddr, SocketAddr, String)> {
    let s = conf.sync.as_ref()?;
    let ch = s.default_channel()?;
    if ch.kind != ChannelKind::Udp {
        return None;
    }
    let local: IpAddr = ch.address?;
    let peer: IpAddr = ch.destination?;
    Some((
        SocketAddr::new(local, ch.port),
        SocketAddr::new(peer, ch.port),
        ch.interface.clone().unwrap_or_default(),
    ))
}

/// The node's links from `conntrackd.conf`'s `Multicast`, `UDP` and `TCP` sections.
///
/// # Errors
/// A link without the addresses it needs (a text for the log).
pub fn channels(conf: &Config) -> Result<Vec<ChannelConfig>, String> {
    let s = conf.sync.as_ref().ok_or("no Sync section")?;
    let mut out = Vec::new();
    for ch in &s.channels {
        let address = ch
            .address
            .ok_or("a dedicated link needs IPv4_address (or IPv6_address)")?;
        let mut c = match ch.kind {
            ChannelKind::Udp | ChannelKind::Tcp => {
                let peer = ch
                    .destination
                    .ok_or("a UDP or TCP link needs a destination address")?;
                let (l, p) = (
                    SocketAddr::new(address, ch.port),
                    SocketAddr::new(peer, ch.port),
                );
                if ch.kind == ChannelKind::Udp {
                    ChannelConfig::udp(l, p)
                } else {
                    ChannelConfig::tcp(l, p)
                }
            }
            ChannelKind::Multicast => {
                let mut c = ChannelConfig::multicast(
                    address,
                    ch.port,
                    ch.interface.as_deref().unwrap_or(""),
                );
                c.interface = ch.interface.clone();
                c.ipv4_interface = ch.ipv4_interface;
                c
            }
        };
        if ch.kind != ChannelKind::Multicast {
            c.interface = ch.interface.clone();
        }
        c.default = ch.default;
        c.checksum = ch.checksum;
        c.sndbuf = ch.sndbuf as usize;
        c.rcvbuf = ch.rcvbuf as usize;
        c.error_queue_len = s.error_queue_length as usize;
        out.push(c);
    }
    if out.is_empty() {
        return Err("No such file or directory".to_string());
    }
    Ok(out)
}

/// `General { Filter }` as the engine's filter.
pub fn filter(conf: &Config) -> (Filter, bool) {
    let Some(f) = &conf.general.filter else {
        return (Filter::default(), false);
    };
    let logic = |l: Logic| match l {
        Logic::Accept => FilterLogic::Positive,
        Logic::Ignore => FilterLogic::Negative,
    };
    let out = Filter {
        protocols: f.protocol.as_ref().map(|(l, v)| (logic(*l), v.clone())),
        addresses: f.address.as_ref().map(|(l, v)| {
            (
                logic(*l),
                v.iter()
                    .map(|n| Network {
                        addr: n.addr,
                        prefix: n.prefix,
                    })
                    .collect(),
            )
        }),
        tcp_states: f
            .state
            .as_ref()
            .map(|(l, v)| (logic(*l), v.iter().map(|s| TcpState::from(*s)).collect())),
    };
    (out, f.kernelspace)
}

/// The node's settings from `conntrackd.conf`: the links, the mode and its timers, the
/// caches' options, the filter, expectations, the netlink buffers.
///
/// # Errors
/// As [`channels`].
pub fn node_config(conf: &Config) -> Result<NodeConfig, String> {
    let mut n = NodeConfig::with_channels(channels(conf)?);
    let g = &conf.general;
    if g.netlink_buffer_size > 0 {
        n.netlink_buffer = g.netlink_buffer_size as usize;
    }
    if g.netlink_buffer_size_max_growth > 0 {
        n.netlink_buffer_max = g.netlink_buffer_size_max_growth as usize;
    }
    n.netlink_reliable = g.netlink_events_reliable;
    n.engine.hash_limit = g.hashlimit as usize;
    let (f, kernelspace) = filter(conf);
    n.engine.filter = f;
    n.engine.filter_kernelspace = kernelspace;
    if let Some(s) = &conf.sync {
        n.engine.mode = match s.mode() {
            SyncMode::Ftfw => Mode::Ftfw,
            SyncMode::Notrack => Mode::Notrack,
            SyncMode::Alarm => Mode::Alarm,
        };
        n.engine.ack_window = s.window_size;
        n.engine.resend_ctl_max = s.resend_queue_size as usize;
        n.engine.refresh_s = s.refresh;
        n.engine.cache_timeout_s = s.cache_timeout;
        n.engine.internal_cache = !s.disable_internal_cache;
        n.engine.external_cache = !s.disable_external_cache;
        n.engine.expectations = match &s.expectation_sync {
            config::ExpectSync::Off => ExpectSync::Off,
            config::ExpectSync::All => ExpectSync::All,
            config::ExpectSync::Helpers(h) => ExpectSync::Helpers(h.clone()),
        };
        n.window_tracking = s.tcp_window_tracking;
        n.commit_timeout = (s.commit_timeout != 0).then_some(s.commit_timeout);
        n.purge_timeout = s.purge_timeout;
        n.startup_resync = s.startup_resync;
    }
    Ok(n)
}

/// The sync node: the internal cache (what is listed by `-i`), the external cache, the
/// links, the kernel's events.
pub struct SyncEngine {
    node: Node,
    device: String,
}

impl SyncEngine {
    /// Starts the node on the configured links: subscribes to the kernel's events and
    /// reads the table into the internal cache.
    ///
    /// # Errors
    /// Sockets that cannot be opened or bound, a failed first dump.
    pub fn start(conf: &Config, log: &mut Logger, rt: &mut Runtime) -> io::Result<SyncEngine> {
        let cfg = node_config(conf).map_err(io::Error::other)?;
        let device = conf.default_device();
        let node = Node::start(cfg)?;
        let size = conf.general.netlink_buffer_size;
        if size > 0 {
            log.log(
                Priority::Notice,
                &format!("netlink event socket buffer size has been set to {size} bytes"),
            );
            rt.buffer_size = size;
        }
        Ok(SyncEngine { node, device })
    }

    fn external(&self, f: &mut dyn FnMut(&ConntrackRepr, i64)) {
        let now_ms = conntrack_sync::now_ms();
        let now = crate::now_secs();
        for e in self.node.engine().external().filter(|e| !e.expect) {
            if let Ok(mut r) = SyncCt::new_checked(&e.attrs).and_then(|v| v.to_repr()) {
                // What the peer sent: 1.4.7 lists no reply tuple (it makes one only to
                // commit).
                r.reply = None;
                let age = i64::try_from(now_ms.saturating_sub(e.created_ms) / 1000).unwrap_or(0);
                f(&r, now - age);
            }
        }
    }

    fn internal(&self, f: &mut dyn FnMut(&ConntrackRepr, i64)) {
        let now_ms = conntrack_sync::now_ms();
        let now = crate::now_secs();
        if !self.node.engine().config().internal_cache {
            // No internal cache: the kernel's table, as 1.4.7's bypass dumps it.
            if let Ok(mut sock) = conntrack_io::Socket::open() {
                let filter = &self.node.engine().config().filter;
                let mut e = ConntrackRepr::default();
                let _ = sock.list(&conntrack_codec::filter::DumpFilter::default(), |v| {
                    if e.parse_into(v.nf()).is_ok() && filter.accepts(&e) {
                        f(&e, now);
                    }
                    std::ops::ControlFlow::Continue(())
                });
            }
            return;
        }
        let mut r = ConntrackRepr::default();
        for e in self.node.engine().internal().filter(|e| !e.expect) {
            if SyncCt::new_checked(e.attrs)
                .and_then(|v| v.read_into(&mut r))
                .is_ok()
            {
                r.id = e.id;
                let age = i64::try_from(now_ms.saturating_sub(e.created_ms) / 1000).unwrap_or(0);
                f(&r, now - age);
            }
        }
    }

    /// The node's counters into the daemon's runtime statistics, its notices into the log.
    fn report(&mut self, log: &mut Logger, rt: &mut Runtime) {
        let n = self.node.stats();
        let s = self.node.engine().stats();
        let c = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        rt.events_received = n.events;
        rt.events_filtered = s.filtered;
        rt.catch_event_failed = c(n.events_bad);
        rt.netlink_overrun = c(n.buffer_growths.max(u64::from(n.events_lost > 0)));
        rt.kernel_table_resync = c(n.kernel_resyncs);
        rt.resync_dump_interrupted = c(n.resync_dumps_interrupted);
        rt.buffer_size = c(self.node.event_buffer() as u64);
        while let Some(notice) = self.node.poll_notice() {
            let p = match notice {
                Notice::BufferMaxed | Notice::ResyncInterrupted | Notice::ResyncIncomplete(_) => {
                    Priority::Warning
                }
                Notice::NoLinks => Priority::Error,
                _ => Priority::Notice,
            };
            log.log(p, &notice.to_string());
        }
    }
}

impl Engine for SyncEngine {
    fn fds(&self) -> Vec<RawFd> {
        self.node.fds().iter().map(|fd| fd.as_raw_fd()).collect()
    }

    fn ready(&mut self, _fd: RawFd, log: &mut Logger, rt: &mut Runtime) {
        // A link or the event socket: run the node now rather than at the next tick, so
        // that a burst of events is read as it comes.
        if let Err(e) = self.node.run_once(0) {
            log.log(Priority::Error, &format!("sync: {e}"));
        }
        self.report(log, rt);
    }

    fn timeout_ms(&self) -> Option<u64> {
        // Until the node's next timer: the loop sleeps in poll until then or until a link
        // or the event socket has something.
        Some(self.node.timeout_ms())
    }

    fn tick(&mut self, log: &mut Logger, rt: &mut Runtime) {
        if let Err(e) = self.node.run_once(0) {
            log.log(Priority::Error, &format!("sync: {e}"));
        }
        self.report(log, rt);
    }

    fn entries(&self, cache: Cache, table: Table, f: &mut dyn FnMut(&ConntrackRepr, i64)) {
        match (cache, table) {
            (_, Table::Expect) => {}
            (Cache::Internal, _) => self.internal(f),
            (Cache::External, _) => self.external(f),
        }
    }

    fn exp_entries(&self, cache: Cache, f: &mut dyn FnMut(&ExpectRepr, i64)) {
        let now_ms = conntrack_sync::now_ms();
        let now = crate::now_secs();
        let age =
            |created: u64| now - i64::try_from(now_ms.saturating_sub(created) / 1000).unwrap_or(0);
        match cache {
            Cache::Internal if !self.node.engine().config().internal_cache => {
                // No internal cache: the kernel's expectations, as 1.4.7's bypass dumps them.
                if let Ok(mut sock) = conntrack_io::Socket::open() {
                    for family in [2u8, 10] {
                        let _ = sock.exp_list(family, |e| {
                            if let Ok(x) = ExpectRepr::try_from(&e) {
                                f(&x, now);
                            }
                            std::ops::ControlFlow::Continue(())
                        });
                    }
                }
            }
            Cache::Internal => {
                for e in self.node.engine().internal().filter(|e| e.expect) {
                    if let Ok(x) = SyncExp::new_checked(e.attrs).and_then(|v| v.to_repr()) {
                        f(&x, age(e.created_ms));
                    }
                }
            }
            Cache::External => {
                for e in self.node.engine().external().filter(|e| e.expect) {
                    if let Ok(x) = SyncExp::new_checked(&e.attrs).and_then(|v| v.to_repr()) {
                        f(&x, age(e.created_ms));
                    }
                }
            }
        }
    }

    fn cache_stats(&self, cache: Cache) -> CacheStats {
        {
            let id = match cache {
                Cache::Internal => CacheId::InternalCt,
                Cache::External => CacheId::ExternalCt,
            };
            {
                let s = self.node.engine().cache_stats(id);
                let c = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
                CacheStats {
                    objects: c(s.objects),
                    active: c(s.active),
                    add_ok: c(s.add_ok),
                    add_fail: c(s.add_fail),
                    add_fail_enomem: 0,
                    add_fail_enospc: c(s.add_fail_enospc),
                    upd_ok: c(s.upd_ok),
                    upd_fail: c(s.upd_fail),
                    upd_fail_enoent: c(s.upd_fail_enoent),
                    del_ok: c(s.del_ok),
                    del_fail: c(s.del_fail),
                    del_fail_enoent: c(s.del_fail_enoent),
                }
            }
        }
    }

    fn commit(&mut self, table: Table, log: &mut Logger) -> Commit {
        let mut total = Commit::default();
        let mut add = |r: io::Result<(u64, u64)>, what: &str, log: &mut Logger| match r {
            Ok((ok, fail)) => {
                total.ok = total
                    .ok
                    .saturating_add(u32::try_from(ok).unwrap_or(u32::MAX));
                total.fail = total
                    .fail
                    .saturating_add(u32::try_from(fail).unwrap_or(u32::MAX));
            }
            Err(e) => log.log(Priority::Error, &format!("{what}: {e}")),
        };
        // Conntrack entries first: the expectations need their masters.
        if table != Table::Expect {
            add(self.node.commit(), "commit-create", log);
        }
        if table != Table::Conntrack && self.node.engine().config().expectations.enabled() {
            add(self.node.commit_expectations(), "commit-create", log);
        }
        total
    }

    fn flush_cache(&mut self, cache: Option<Cache>) {
        if cache != Some(Cache::External) {
            self.node.engine_mut().flush_internal();
        }
        if cache != Some(Cache::Internal) {
            self.node.engine_mut().flush_external();
        }
    }

    fn flush_kernel(&mut self, table: Table) -> io::Result<()> {
        self.node
            .flush_kernel(table != Table::Expect, table != Table::Conntrack)
    }

    fn resync_kernel(&mut self, table: Table, rt: &mut Runtime) -> io::Result<()> {
        if table != Table::Expect {
            self.node.resync_kernel()?;
        }
        rt.kernel_table_resync =
            u32::try_from(self.node.stats().kernel_resyncs).unwrap_or(u32::MAX);
        Ok(())
    }

    fn request_resync(&mut self) {
        self.node.engine_mut().request_resync();
    }

    fn send_bulk(&mut self) {
        self.node.engine_mut().send_bulk();
    }

    fn links(&self) -> Vec<LinkStats> {
        let mut v: Vec<LinkStats> = self
            .node
            .links()
            .into_iter()
            .map(|l| LinkStats {
                kind: match l.transport {
                    Transport::Udp => LinkKind::Udp,
                    Transport::Multicast => LinkKind::Multicast,
                    Transport::Tcp => LinkKind::Tcp,
                },
                device: l.interface.clone().unwrap_or_else(|| self.device.clone()),
                running: l.state.is_none_or(|s| s.up && s.running),
                active: l.active,
                counters: l.stats,
            })
            .collect();
        // The active link first.
        v.sort_by_key(|l| !l.active);
        v
    }

    fn network(&self) -> NetworkStats {
        let s = self.node.engine().stats();
        let c = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        NetworkStats {
            rcv_malformed: s.rx_malformed,
            rcv_bad_version: c(s.rx_bad_version),
            rcv_bad_header: c(s.rx_bad_header),
            rcv_bad_payload: c(s.rx_bad_payload),
            rcv_bad_type: c(s.rx_bad_type),
            rcv_truncated: c(s.rx_truncated),
            rcv_bad_size: c(s.rx_bad_size),
            snd_malformed: c(s.tx_malformed),
            rcv_lost: s.rx_lost,
            rcv_before: s.rx_before,
        }
    }

    fn traffic(&self) -> Traffic {
        let n = self.node.stats();
        Traffic {
            bytes: n.traffic_bytes,
            packets: n.traffic_packets,
        }
    }

    fn rsqueue(&self) -> (u32, String) {
        let mut text = String::new();
        let mut n = 0u32;
        for e in self.node.engine().rs_queue() {
            n = n.saturating_add(1);
            match e {
                RsEntry::Control { seq, flags } => {
                    text.push_str(&format!("control -> seq:{seq} flags:{flags}\n"));
                }
                RsEntry::Object { seq } => text.push_str(&format!("object -> seq:{seq}\n")),
            }
        }
        (n, text)
    }

    fn queues(&self) -> (u32, Vec<QueueStats>) {
        let c = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let qs: Vec<QueueStats> = self
            .node
            .queues()
            .into_iter()
            .map(|q| QueueStats {
                name: q.name.to_string(),
                current: c(q.current),
                max: c(q.max),
                full: c(q.full),
            })
            .collect();
        let allocated = qs.iter().map(|q| q.current).sum();
        (allocated, qs)
    }
}
