//! The IO shell: sockets and the loop that drive an [`Engine`].

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::os::fd::AsFd;

use conntrack_codec::ct::{ConntrackRepr, EventKind};
use conntrack_codec::exp::ExpectRepr;
use conntrack_codec::filter::DumpFilter;
use conntrack_codec::sync::SyncCt;
use conntrack_io::{Event, Events, Groups, Socket};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::cache::commit_request;
use crate::engine::{Config, Engine};
use crate::now_ms;

/// What a node needs (conntrackd's `Sync { UDP { ... } }` and `General` options).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The local address and port to bind (`IPv4_address`, `Port`).
    pub local: SocketAddr,
    /// The peer's address and port (`IPv4_Destination_Address`, `Port`); datagrams from any
    /// other source are dropped and counted.
    pub peer: SocketAddr,
    /// The engine's settings.
    pub engine: Config,
    /// The event socket's receive buffer (`NetlinkBufferSize`).
    pub netlink_buffer: usize,
    /// How far it may grow after a loss (`NetlinkBufferSizeMaxGrowth`).
    pub netlink_buffer_max: usize,
    /// Replicate expectations too (`Options { ExpectationSync on }`).
    pub expectations: bool,
    /// Keep TCP window tracking on committed entries (`TCPWindowTracking`).
    pub window_tracking: bool,
    /// A fixed timeout for committed entries (`CommitTimeout`), else what is left of theirs.
    pub commit_timeout: Option<u32>,
}

impl NodeConfig {
    /// The defaults conntrackd uses, between `local` and `peer`.
    pub fn new(local: SocketAddr, peer: SocketAddr) -> Self {
        NodeConfig {
            local,
            peer,
            engine: Config::default(),
            netlink_buffer: 2 * 1024 * 1024,
            netlink_buffer_max: 8 * 1024 * 1024,
            expectations: false,
            window_tracking: false,
            commit_timeout: None,
        }
    }
}

/// Counters of the shell (the engine has its own, [`Engine::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Datagrams from a source other than the peer (dropped).
    pub foreign_datagrams: u64,
    /// Kernel events lost (reported by the event socket).
    pub events_lost: u64,
    /// Resyncs with the kernel (after losses).
    pub kernel_resyncs: u64,
    /// Times the event buffer grew.
    pub buffer_growths: u64,
    /// Events that did not convert (dropped).
    pub events_bad: u64,
    /// Events caused by this node's own commits (ignored).
    pub events_own: u64,
    /// Datagrams the local stack refused to send (full queue, firewall): lost, recovered
    /// by FTFW.
    pub tx_refused: u64,
}

/// A running node; see the crate documentation. Sockets are opened in the calling thread's
/// network namespace.
#[derive(Debug)]
pub struct Node {
    cfg: NodeConfig,
    engine: Engine,
    udp: UdpSocket,
    events: Events,
    req: Socket,
    commit: Socket,
    scratch: Box<ConntrackRepr>,
    buf: Vec<u8>,
    stats: NodeStats,
}

fn io_err(e: conntrack_io::Error) -> io::Error {
    io::Error::other(e)
}

impl Node {
    /// Binds the UDP socket, subscribes to the kernel's events, and fills the internal cache
    /// with a dump of the table.
    ///
    /// # Errors
    /// Any socket error.
    pub fn start(cfg: NodeConfig) -> io::Result<Node> {
        let udp = UdpSocket::bind(cfg.local)?;
        udp.set_nonblocking(true)?;
        let groups = if cfg.expectations {
            Groups::CONNTRACK | Groups::EXPECT
        } else {
            Groups::CONNTRACK
        };
        let mut events = Events::open(groups).map_err(io_err)?;
        events.set_nonblocking(true).map_err(io_err)?;
        events.set_rcvbuf(cfg.netlink_buffer).map_err(io_err)?;
        // Doubled after each overrun up to the maximum, by the stream itself.
        events.set_rcvbuf_growth(Some(cfg.netlink_buffer_max));
        let req = Socket::open().map_err(io_err)?;
        let commit = Socket::open().map_err(io_err)?;
        let first_seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() as u32);
        let mut node = Node {
            engine: Engine::new(cfg.engine, first_seq),
            cfg,
            udp,
            events,
            req,
            commit,
            scratch: Box::default(),
            buf: vec![0; 65536],
            stats: NodeStats::default(),
        };
        node.resync_kernel()?;
        Ok(node)
    }

    /// The engine (caches, counters).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, to change it (flush, request a resync, send a bulk).
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The shell's counters.
    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    /// Dumps the kernel's table into the internal cache; entries the dump does not show are
    /// deleted (and the peer told).
    ///
    /// # Errors
    /// A socket error.
    pub fn resync_kernel(&mut self) -> io::Result<()> {
        let now = now_ms();
        self.engine.begin_kernel_resync();
        let engine = &mut self.engine;
        let scratch = &mut *self.scratch;
        let mut bad = 0u64;
        let summary = self
            .req
            .list(&DumpFilter::default(), |view| {
                if scratch.parse_into(view.nf()).is_err() || engine.ct_update(scratch, now).is_err()
                {
                    bad += 1;
                }
                ControlFlow::Continue(())
            })
            .map_err(io_err)?;
        self.stats.events_bad += bad;
        if !summary.interrupted {
            self.engine.end_kernel_resync();
        }
        Ok(())
    }

    /// Runs the loop for at most `timeout_ms`: waits for datagrams and events, feeds the
    /// engine, ticks its timers, and sends what it has.
    ///
    /// # Errors
    /// A socket error other than a full or empty queue.
    pub fn run_once(&mut self, timeout_ms: u16) -> io::Result<()> {
        {
            let mut fds = [
                PollFd::new(self.udp.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.events.as_fd(), PollFlags::POLLIN),
            ];
            let wait = if self.engine.has_output() {
                0
            } else {
                timeout_ms
            };
            poll(&mut fds, PollTimeout::from(wait)).map_err(io::Error::from)?;
        }
        self.read_events()?;
        self.read_datagrams()?;
        self.engine.on_tick(now_ms());
        self.flush()
    }

    fn read_events(&mut self) -> io::Result<()> {
        let own = self.commit.portid();
        let mut lost = false;
        for _ in 0..4096 {
            let now = now_ms();
            let ev = match self.events.try_next() {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) => return Err(io_err(e)),
            };
            match ev {
                Event::Conntrack(ev) => {
                    if own != 0 && ev.portid == own {
                        self.stats.events_own += 1;
                        continue;
                    }
                    if self.scratch.parse_into(ev.entry.nf()).is_err() {
                        self.stats.events_bad += 1;
                        continue;
                    }
                    let r = match ev.kind {
                        EventKind::Destroy => self.engine.ct_destroy(&self.scratch),
                        _ => self.engine.ct_update(&self.scratch, now),
                    };
                    if r.is_err() {
                        self.stats.events_bad += 1;
                    }
                }
                Event::Expect(ev) => {
                    if !self.cfg.expectations || (own != 0 && ev.portid == own) {
                        continue;
                    }
                    let Ok(e) = ExpectRepr::try_from(&ev.exp) else {
                        self.stats.events_bad += 1;
                        continue;
                    };
                    let r = match ev.kind {
                        EventKind::Destroy => self.engine.exp_destroy(&e),
                        _ => self.engine.exp_update(&e, now),
                    };
                    if r.is_err() {
                        self.stats.events_bad += 1;
                    }
                }
                Event::Lost(l) => {
                    self.stats.events_lost += l.count;
                    self.stats.buffer_growths += u64::from(l.grown_to.is_some());
                    lost = true;
                }
            }
        }
        if lost {
            self.stats.kernel_resyncs += 1;
            self.resync_kernel()?;
        }
        Ok(())
    }

    fn read_datagrams(&mut self) -> io::Result<()> {
        for _ in 0..1024 {
            match self.udp.recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    if from.ip() != self.cfg.peer.ip() {
                        self.stats.foreign_datagrams += 1;
                        continue;
                    }
                    let now = now_ms();
                    if let Some(d) = self.buf.get(..n) {
                        self.engine.on_datagram(d, now);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends everything the engine has queued.
    ///
    /// # Errors
    /// A socket error other than a full queue (the datagram is then lost and recovered by
    /// FTFW).
    pub fn flush(&mut self) -> io::Result<()> {
        let mut out = [0u8; 65536];
        while let Some(n) = self.engine.poll_transmit(now_ms(), &mut out) {
            match self.udp.send_to(&out[..n], self.cfg.peer) {
                Ok(_) => {}
                // A full queue, an ICMP error from an earlier send, or a local firewall
                // rule that drops the datagram (EPERM): the datagram is lost, and FTFW
                // recovers it as any lost datagram.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::PermissionDenied
                    ) =>
                {
                    self.stats.tx_refused += 1;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Puts the external cache into the kernel (`conntrackd -c`), in bulk; an entry that
    /// exists already is replaced. Returns how many went in and how many failed.
    ///
    /// # Errors
    /// A socket error.
    pub fn commit(&mut self) -> io::Result<(u64, u64)> {
        let now = now_ms();
        let mut reqs = Vec::with_capacity(256);
        let (mut ok, mut failed) = (0u64, 0u64);
        let mut exists = Vec::new();
        let entries: Vec<(Vec<u8>, u64)> = self
            .engine
            .external()
            .filter(|e| !e.expect)
            .map(|e| (e.attrs.clone(), e.updated_ms))
            .collect();
        // Masters first, then entries an expectation created (conntrackd's order).
        let mut related = Vec::new();
        for pass in 0..2 {
            let list = if pass == 0 { &entries } else { &related };
            let mut next_related = Vec::new();
            for (attrs, updated) in list {
                let Ok(r) = SyncCt::new_checked(attrs).and_then(|v| v.to_repr()) else {
                    failed += 1;
                    continue;
                };
                if pass == 0 && r.master.is_some() {
                    next_related.push((attrs.clone(), *updated));
                    continue;
                }
                let elapsed = now.saturating_sub(*updated) / 1000;
                reqs.push(commit_request(
                    &r,
                    elapsed,
                    self.cfg.commit_timeout,
                    self.cfg.window_tracking,
                ));
                if reqs.len() == 256 {
                    self.commit_batch(&mut reqs, &mut ok, &mut failed, &mut exists)?;
                }
            }
            self.commit_batch(&mut reqs, &mut ok, &mut failed, &mut exists)?;
            if pass == 0 {
                related = next_related;
            }
        }
        // Entries already in the table: delete, then create again.
        for r in exists {
            let mut key = conntrack_codec::ct::request::Key::orig(r.orig.unwrap_or_default());
            key.zone = r.zone;
            let _ = self.commit.delete(&key);
            match self.commit.create(&r) {
                Ok(()) => ok += 1,
                Err(_) => failed += 1,
            }
        }
        Ok((ok, failed))
    }

    fn commit_batch(
        &mut self,
        reqs: &mut Vec<ConntrackRepr>,
        ok: &mut u64,
        failed: &mut u64,
        exists: &mut Vec<ConntrackRepr>,
    ) -> io::Result<()> {
        if reqs.is_empty() {
            return Ok(());
        }
        let mut eexist = Vec::new();
        self.commit
            .create_batch(reqs, 64, |i, r| match r {
                Ok(()) => *ok += 1,
                Err(e) if e.errno() == Some(conntrack_io::Errno::EEXIST) => eexist.push(i),
                Err(_) => *failed += 1,
            })
            .map_err(io_err)?;
        for i in eexist {
            if let Some(r) = reqs.get(i) {
                exists.push(r.clone());
            }
        }
        reqs.clear();
        Ok(())
    }
}
