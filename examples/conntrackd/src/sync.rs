//! The daemon's engine in sync mode: `conntrack-sync`'s [`Node`] (FTFW over UDP, the
//! external cache, the bulk commit) behind the daemon's [`Engine`] trait, with the internal
//! cache listed from [`KernelCache`] so that `-i` shows the kernel's entries exactly as
//! 1.4.7 does (the sync engine keeps only the attributes it sends).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;

use conntrack_codec::ct::ConntrackRepr;
use conntrack_codec::sync::SyncCt;
use conntrack_sync::{Node, NodeConfig};

use crate::config::{ChannelKind, Config};
use crate::engine::{Cache, Commit, Engine, KernelCache, Table};
use crate::log::{Logger, Priority};
use crate::text::{CacheStats, LinkKind, LinkStats, NetworkStats, QueueStats, Runtime, Traffic};

/// How often the sync node runs when nothing else wakes the loop (milliseconds).
pub const TICK_MS: u64 = 10;

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

/// The node's settings from `conntrackd.conf`.
pub fn node_config(conf: &Config, local: SocketAddr, peer: SocketAddr) -> NodeConfig {
    let mut n = NodeConfig::new(local, peer);
    let g = &conf.general;
    if g.netlink_buffer_size > 0 {
        n.netlink_buffer = g.netlink_buffer_size as usize;
    }
    if g.netlink_buffer_size_max_growth > 0 {
        n.netlink_buffer_max = g.netlink_buffer_size_max_growth as usize;
    }
    if let Some(s) = &conf.sync {
        n.engine.ack_window = s.window_size;
        n.engine.resend_ctl_max = s.resend_queue_size as usize;
        n.window_tracking = s.tcp_window_tracking;
        n.commit_timeout = (s.commit_timeout != 0).then_some(s.commit_timeout);
    }
    n
}

/// The sync node and the internal cache's view.
pub struct SyncEngine {
    node: Node,
    kernel: KernelCache,
    device: String,
}

impl SyncEngine {
    /// Starts the node on the default UDP link and the kernel view.
    ///
    /// # Errors
    /// Sockets that cannot be opened or bound, a failed first dump.
    pub fn start(conf: &Config, log: &mut Logger, rt: &mut Runtime) -> io::Result<SyncEngine> {
        let (local, peer, device) = udp_link(conf)
            .ok_or_else(|| io::Error::other("no UDP dedicated link with both addresses"))?;
        let node = Node::start(node_config(conf, local, peer))?;
        let mut kernel = KernelCache::start(conf, log, rt)?;
        // Entries this process puts into the kernel (commits) are the peer's, not ours:
        // 1.4.7 ignores the events its own requests cause.
        kernel.ignore_own_events();
        Ok(SyncEngine {
            node,
            kernel,
            device,
        })
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
}

impl Engine for SyncEngine {
    fn fds(&self) -> Vec<RawFd> {
        self.kernel.fds()
    }

    fn ready(&mut self, fd: RawFd, log: &mut Logger, rt: &mut Runtime) {
        self.kernel.ready(fd, log, rt);
    }

    fn timeout_ms(&self) -> Option<u64> {
        let k = self.kernel.timeout_ms().unwrap_or(TICK_MS);
        Some(k.min(TICK_MS))
    }

    fn tick(&mut self, log: &mut Logger, rt: &mut Runtime) {
        self.kernel.tick(log, rt);
        if let Err(e) = self.node.run_once(0) {
            log.log(Priority::Error, &format!("sync: {e}"));
        }
    }

    fn entries(&self, cache: Cache, table: Table, f: &mut dyn FnMut(&ConntrackRepr, i64)) {
        match (cache, table) {
            (_, Table::Expect) => {}
            (Cache::Internal, _) => self.kernel.entries(Cache::Internal, table, f),
            (Cache::External, _) => self.external(f),
        }
    }

    fn cache_stats(&self, cache: Cache) -> CacheStats {
        match cache {
            Cache::Internal => self.kernel.cache_stats(Cache::Internal),
            Cache::External => {
                let s = self.node.engine().stats();
                let n = u32::try_from(self.node.engine().external_ct_len()).unwrap_or(u32::MAX);
                let c = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
                CacheStats {
                    objects: n,
                    active: n,
                    add_ok: c(s.ext_new),
                    upd_ok: c(s.ext_upd),
                    del_ok: c(s.ext_del),
                    ..CacheStats::default()
                }
            }
        }
    }

    fn commit(&mut self, table: Table, log: &mut Logger) -> Commit {
        if table == Table::Expect {
            return Commit::default();
        }
        match self.node.commit() {
            Ok((ok, fail)) => Commit {
                ok: u32::try_from(ok).unwrap_or(u32::MAX),
                fail: u32::try_from(fail).unwrap_or(u32::MAX),
            },
            Err(e) => {
                log.log(Priority::Error, &format!("commit-create: {e}"));
                Commit::default()
            }
        }
    }

    fn flush_cache(&mut self, cache: Option<Cache>) {
        if cache != Some(Cache::External) {
            self.node.engine_mut().flush_internal();
        }
        if cache != Some(Cache::Internal) {
            self.node.engine_mut().flush_external();
        }
        self.kernel.flush_cache(cache);
    }

    fn flush_kernel(&mut self, table: Table) -> io::Result<()> {
        self.kernel.flush_kernel(table)
    }

    fn resync_kernel(&mut self, table: Table, rt: &mut Runtime) -> io::Result<()> {
        if table != Table::Expect {
            self.node.resync_kernel()?;
        }
        self.kernel.resync_kernel(table, rt)
    }

    fn request_resync(&mut self) {
        self.node.engine_mut().request_resync();
    }

    fn send_bulk(&mut self) {
        self.node.engine_mut().send_bulk();
    }

    fn links(&self) -> Vec<LinkStats> {
        let s = self.node.engine().stats();
        let n = self.node.stats();
        vec![LinkStats {
            kind: LinkKind::Udp,
            device: self.device.clone(),
            running: true,
            active: true,
            // The node counts datagrams, not bytes.
            bytes_sent: 0,
            bytes_recv: 0,
            packets_sent: s.tx_datagrams,
            packets_recv: s.rx_datagrams,
            error_sent: n.tx_refused,
            error_recv: n.foreign_datagrams,
        }]
    }

    fn network(&self) -> NetworkStats {
        let s = self.node.engine().stats();
        let c = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        NetworkStats {
            rcv_malformed: s.rx_malformed,
            rcv_bad_payload: c(s.rx_bad_payload),
            rcv_lost: s.rx_lost,
            rcv_before: s.rx_before,
            ..NetworkStats::default()
        }
    }

    fn traffic(&self) -> Traffic {
        self.kernel.traffic()
    }

    fn rsqueue(&self) -> (u32, String) {
        (0, String::new())
    }

    fn queues(&self) -> (u32, Vec<QueueStats>) {
        (0, Vec::new())
    }
}
