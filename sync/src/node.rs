//! The IO shell: the dedicated links, the kernel's sockets, and the loop that drives an
//! [`Engine`].

use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::os::fd::{AsFd, BorrowedFd};

use conntrack_codec::ct::request::Key as CtKey;
use conntrack_codec::ct::{ConntrackRepr, EventKind};
use conntrack_codec::exp::request::ExpKey;
use conntrack_codec::exp::ExpectRepr;
use conntrack_codec::filter::DumpFilter;
use conntrack_codec::sync::{DataKind, SyncCt, SyncExp};
use conntrack_io::{Errno, Event, Events, Groups, LossCause, Socket};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::cache::{commit_request, exp_commit_request, update_request};
use crate::channel::{Channel, ChannelConfig, LinkStats, Transport};
use crate::engine::{Config, Engine, Origin, QueueStats};
use crate::now_ms;

/// How long after lost events the node reads the table again (conntrackd waits
/// `NetlinkOverrunResync` seconds, 30 by default).
const RESYNC_DELAY_MS: u64 = 200;

/// How many dumps a resync with the kernel makes at most when the kernel says the table
/// changed under the walk (`NLM_F_DUMP_INTR`): the entries a dump did not show are only
/// deleted after a complete one.
pub const RESYNC_DUMP_TRIES: u32 = 3;

/// What a resync with the kernel came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResyncOutcome {
    /// Dumps made.
    pub dumps: u32,
    /// Of which interrupted (`NLM_F_DUMP_INTR`).
    pub interrupted: u32,
    /// Whether one was complete, so that the entries it did not show were deleted.
    pub complete: bool,
}

/// Counts and tells what a resync's dumps came to: a notice per dump made again, one if
/// none was complete.
fn note_resync(stats: &mut NodeStats, notices: &mut Vec<Notice>, o: ResyncOutcome) {
    stats.resync_dumps_interrupted += u64::from(o.interrupted);
    for _ in 0..o.interrupted.min(RESYNC_DUMP_TRIES - 1) {
        notices.push(Notice::ResyncInterrupted);
    }
    if !o.complete {
        stats.resyncs_incomplete += 1;
        notices.push(Notice::ResyncIncomplete(o.interrupted));
    }
}

/// A resync of `engine` with the kernel, the dumps made by `dump` (which passes each entry
/// to [`Engine::ct_resync`] and says whether the kernel flagged the dump interrupted): up to
/// [`RESYNC_DUMP_TRIES`] dumps until one is complete; the entries that complete dump did
/// not show are deleted (and the peer told); after only interrupted dumps nothing is
/// deleted (what they showed is sent all the same).
///
/// # Errors
/// The first error of `dump`.
pub fn resync_with(
    engine: &mut Engine,
    mut dump: impl FnMut(&mut Engine) -> io::Result<bool>,
) -> io::Result<ResyncOutcome> {
    let mut out = ResyncOutcome::default();
    while out.dumps < RESYNC_DUMP_TRIES {
        engine.begin_kernel_resync();
        out.dumps += 1;
        if dump(engine)? {
            out.interrupted += 1;
            continue;
        }
        engine.end_kernel_resync();
        out.complete = true;
        break;
    }
    Ok(out)
}

/// What a node needs (conntrackd's `Sync { ... }` and the `General` options it applies).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The dedicated links (`UDP`, `Multicast`, `TCP` sections, at most four, of one
    /// transport family as conntrackd requires): the `default` one (else the first) carries
    /// the traffic until it fails.
    pub channels: Vec<ChannelConfig>,
    /// The engine's settings.
    pub engine: Config,
    /// The event socket's receive buffer (`NetlinkBufferSize`).
    pub netlink_buffer: usize,
    /// How far it may grow after a loss (`NetlinkBufferSizeMaxGrowth`).
    pub netlink_buffer_max: usize,
    /// `NetlinkEventsReliable`: the kernel does not drop events for a full socket (it
    /// makes the change wait instead).
    pub netlink_reliable: bool,
    /// Keep TCP window tracking on committed entries (`TCPWindowTracking`).
    pub window_tracking: bool,
    /// A fixed timeout for committed entries (`CommitTimeout`), else what is left of theirs.
    pub commit_timeout: Option<u32>,
    /// `PurgeTimeout`: seconds between `conntrackd -t` and the purge.
    pub purge_timeout: u32,
    /// `StartupResync`: ask the peer for its table at start.
    pub startup_resync: bool,
}

impl NodeConfig {
    /// The defaults conntrackd uses, with one UDP link between `local` and `peer`.
    pub fn new(local: SocketAddr, peer: SocketAddr) -> Self {
        Self::with_channels(vec![ChannelConfig::udp(local, peer)])
    }

    /// The defaults conntrackd uses, with these links.
    pub fn with_channels(channels: Vec<ChannelConfig>) -> Self {
        NodeConfig {
            channels,
            engine: Config::default(),
            netlink_buffer: 2 * 1024 * 1024,
            netlink_buffer_max: 8 * 1024 * 1024,
            netlink_reliable: false,
            window_tracking: false,
            commit_timeout: None,
            purge_timeout: 60,
            startup_resync: false,
        }
    }
}

/// Counters of the shell (the engine has its own, [`Engine::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Datagrams from a source other than the peer (dropped).
    pub foreign_datagrams: u64,
    /// Kernel events received.
    pub events: u64,
    /// Kernel events lost (reported by the event socket).
    pub events_lost: u64,
    /// Resyncs with the kernel (after losses, or asked for).
    pub kernel_resyncs: u64,
    /// Resync dumps the kernel flagged interrupted (`NLM_F_DUMP_INTR`: the table changed
    /// under the walk); each is made again, [`RESYNC_DUMP_TRIES`] times at most.
    pub resync_dumps_interrupted: u64,
    /// Resyncs whose every dump was interrupted: nothing was deleted (stale entries stay
    /// until the next resync).
    pub resyncs_incomplete: u64,
    /// Times the event buffer grew.
    pub buffer_growths: u64,
    /// Events that did not convert (dropped).
    pub events_bad: u64,
    /// Events caused by this node's own commits (kept, not sent).
    pub events_own: u64,
    /// Datagrams the local stack refused to send (full queue, firewall): lost, recovered
    /// by FTFW.
    pub tx_refused: u64,
    /// Entries committed (`-c`) and entries the kernel refused.
    pub commit_ok: u64,
    /// See `commit_ok`.
    pub commit_fail: u64,
    /// Purges of the kernel table done (`-t`), and the entries they deleted.
    pub purges: u64,
    /// See `purges`.
    pub purged: u64,
    /// Times the active link changed.
    pub link_switches: u64,
    /// Bytes and packets of the flows seen to go away (their counters, when the kernel
    /// keeps them: `traffic processed` of `conntrackd -s`).
    pub traffic_bytes: u64,
    /// See `traffic_bytes`.
    pub traffic_packets: u64,
}

/// What a link looks like now, for `conntrackd -s link` and `-s network`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Its transport.
    pub transport: Transport,
    /// Its interface's name (`Interface`), if given.
    pub interface: Option<String>,
    /// The interface's state, if it has one.
    pub state: Option<conntrack_io::net::LinkState>,
    /// Whether the node sends on it now (`role=ACTIVE`, else `BACKUP`).
    pub active: bool,
    /// Its counters.
    pub stats: LinkStats,
    /// TCP: (the connection the peer made is up, the one this node made is up).
    pub tcp: Option<(bool, bool)>,
    /// Whether sent UDP datagrams carry a checksum (`Checksum`), as the socket says.
    pub checksum: bool,
    /// The send buffer the kernel gave (`SndSocketBuffer`; twice the request).
    pub sndbuf: usize,
    /// The receive buffer the kernel gave (`RcvSocketBuffer`; twice the request).
    pub rcvbuf: usize,
}

/// Something the daemon should log (conntrackd's words from [`Notice`]'s `Display`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The active link failed and this one takes over.
    LinkSwitched(String),
    /// The active link failed and no other is up.
    NoLinks,
    /// Events were lost: the event buffer grew to this many bytes.
    BufferGrown(usize),
    /// Events were lost and the buffer cannot grow further.
    BufferMaxed,
    /// The scheduled purge (`-t`) runs now.
    Purging,
    /// A resync dump was interrupted (the table changed under it): made again.
    ResyncInterrupted,
    /// Every dump of a resync was interrupted: the entries gone from the kernel meanwhile
    /// stay in the internal cache until the next resync.
    ResyncIncomplete(u32),
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::LinkSwitched(d) => write!(f, "device `{d}' becomes dedicated link"),
            Notice::NoLinks => f.write_str("no dedicated links available!"),
            Notice::BufferGrown(n) => write!(
                f,
                "netlink event socket buffer size has been doubled to {n} bytes"
            ),
            Notice::BufferMaxed => f.write_str(
                "netlink event socket buffer size cannot be doubled further since it will \
                 exceed NetlinkBufferSizeMaxGrowth. We are likely to be losing events, this \
                 may lead to unsynchronized replicas. Please, consider increasing netlink \
                 socket buffer size via NetlinkBufferSize and NetlinkBufferSizeMaxGrowth \
                 clauses in conntrackd.conf",
            ),
            Notice::Purging => f.write_str("flushing kernel conntrack table (scheduled)"),
            Notice::ResyncInterrupted => f.write_str(
                "resync with kernel conntrack table: dump interrupted (the table changed \
                 during it), dumping again",
            ),
            Notice::ResyncIncomplete(n) => write!(
                f,
                "resync with kernel conntrack table: {n} dumps interrupted, stale entries \
                 are kept until the next resync"
            ),
        }
    }
}

/// A running node; see the crate documentation. Sockets are opened in the calling thread's
/// network namespace.
#[derive(Debug)]
pub struct Node {
    cfg: NodeConfig,
    engine: Engine,
    channels: Vec<Channel>,
    current: usize,
    events: Events,
    req: Socket,
    commit: Socket,
    inject: Socket,
    rcvbuf: usize,
    maxed: bool,
    scratch: Box<ConntrackRepr>,
    buf: Vec<u8>,
    out: Vec<u8>,
    stats: NodeStats,
    notices: Vec<Notice>,
    next_link_check: u64,
    resync_at: Option<u64>,
}

fn io_err(e: conntrack_io::Error) -> io::Error {
    io::Error::other(e)
}

fn ct_key(r: &ConntrackRepr) -> CtKey {
    let mut key = CtKey::orig(r.orig.unwrap_or_default());
    key.zone = r.zone;
    key
}

fn exp_key(e: &ExpectRepr) -> ExpKey {
    let mut k = ExpKey::tuple(e.tuple.unwrap_or_default());
    k.zone = e.zone;
    k
}

impl Node {
    /// Opens the links, subscribes to the kernel's events (with the kernel-side filter of
    /// `Filter From Kernelspace`), and fills the internal cache with a dump of the table
    /// (and of the expectations, with `ExpectationSync`); with `StartupResync`, asks the
    /// peer for its table.
    ///
    /// # Errors
    /// Any socket error; no link; a filter too large for the kernel.
    pub fn start(cfg: NodeConfig) -> io::Result<Node> {
        if cfg.channels.is_empty() {
            return Err(io::Error::other("no dedicated link"));
        }
        let mut channels = Vec::with_capacity(cfg.channels.len());
        for c in &cfg.channels {
            channels.push(Channel::open(c.clone())?);
        }
        let current = cfg.channels.iter().rposition(|c| c.default).unwrap_or(0);
        let mut ecfg = cfg.engine.clone();
        ecfg.tcp_window_tracking |= cfg.window_tracking;
        // The largest datagram the active link takes (the smallest of all, so that a
        // switch never meets a datagram too large).
        let mtu_max = channels
            .iter()
            .map(|c| c.max_datagram)
            .min()
            .unwrap_or(1472);
        ecfg.max_datagram = ecfg.max_datagram.min(mtu_max);
        let groups = if ecfg.expectations.enabled() {
            Groups::CONNTRACK | Groups::EXPECT
        } else {
            Groups::CONNTRACK
        };
        let mut events = Events::open(groups).map_err(io_err)?;
        events.set_nonblocking(true).map_err(io_err)?;
        // The size as configured (the kernel reports twice it), as conntrackd says it.
        let rcvbuf = cfg.netlink_buffer;
        events.set_rcvbuf(rcvbuf).map_err(io_err)?;
        // Doubled after each overrun up to the maximum, by the stream itself (each growth
        // comes with the loss report, below).
        events.set_rcvbuf_growth(Some(cfg.netlink_buffer_max));
        if cfg.netlink_reliable {
            events.set_reliable(true).map_err(io_err)?;
        }
        if ecfg.filter_kernelspace && !ecfg.filter.is_empty() {
            let f = ecfg
                .filter
                .event_filter()
                .map_err(|e| io::Error::other(format!("kernel filter: {e}")))?;
            events.attach_filter(&f).map_err(io_err)?;
        }
        let req = Socket::open().map_err(io_err)?;
        let commit = Socket::open().map_err(io_err)?;
        let inject = Socket::open().map_err(io_err)?;
        let first_seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() as u32);
        let mut node = Node {
            engine: Engine::new(ecfg, first_seq),
            cfg,
            channels,
            current,
            events,
            req,
            commit,
            inject,
            rcvbuf,
            maxed: false,
            scratch: Box::default(),
            buf: vec![0; 65536],
            out: vec![0; 65536],
            stats: NodeStats::default(),
            notices: Vec::new(),
            next_link_check: 0,
            resync_at: None,
        };
        node.populate()?;
        if node.cfg.startup_resync {
            node.engine.request_resync();
        }
        node.flush()?;
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

    /// The settings.
    pub fn config(&self) -> &NodeConfig {
        &self.cfg
    }

    /// The event socket's buffer size as configured (`NetlinkBufferSize`, doubled after
    /// each loss up to `NetlinkBufferSizeMaxGrowth`), as conntrackd reports it.
    pub fn event_buffer(&self) -> usize {
        self.rcvbuf
    }

    /// Passes each entry of the kernel's table (in the node's network namespace) to `f`,
    /// those the filter keeps out left out (`conntrackd -i` without an internal cache).
    ///
    /// # Errors
    /// A socket error.
    pub fn kernel_entries(&mut self, mut f: impl FnMut(&ConntrackRepr)) -> io::Result<()> {
        let filter = &self.engine.config().filter;
        let scratch = &mut *self.scratch;
        let _ = self
            .req
            .list(&DumpFilter::default(), |view| {
                if scratch.parse_into(view.nf()).is_ok() && filter.accepts(scratch) {
                    f(scratch);
                }
                ControlFlow::Continue(())
            })
            .map_err(io_err)?;
        Ok(())
    }

    /// Flushes the kernel's conntrack table (`conntrackd -F`), and its expectations with
    /// `expectations`.
    ///
    /// # Errors
    /// The kernel's refusal.
    pub fn flush_kernel(&mut self, conntrack: bool, expectations: bool) -> io::Result<()> {
        if conntrack {
            self.req.flush(&DumpFilter::default()).map_err(io_err)?;
        }
        if expectations {
            for family in [2u8, 10] {
                self.req.exp_flush(family).map_err(io_err)?;
            }
        }
        Ok(())
    }

    /// The next thing to log, if any.
    pub fn poll_notice(&mut self) -> Option<Notice> {
        if self.notices.is_empty() {
            None
        } else {
            Some(self.notices.remove(0))
        }
    }

    /// The descriptors the node waits on (links and the event socket), for a caller that
    /// runs its own `poll` and then calls [`Node::run_once`] with a zero timeout.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut v: Vec<BorrowedFd<'_>> = self.channels.iter().flat_map(|c| c.fds()).collect();
        v.push(self.events.as_fd());
        v
    }

    /// The links, the active one marked.
    pub fn links(&self) -> Vec<LinkInfo> {
        self.channels
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (checksum, sndbuf, rcvbuf) = c.socket_options();
                LinkInfo {
                    transport: c.cfg.transport,
                    interface: c.cfg.interface.clone(),
                    state: c
                        .cfg
                        .interface
                        .as_deref()
                        .and_then(|n| conntrack_io::net::interface_state(n).ok()),
                    active: i == self.current,
                    stats: c.stats,
                    tcp: c.tcp_state(),
                    checksum,
                    sndbuf,
                    rcvbuf,
                }
            })
            .collect()
    }

    /// The queues of `conntrackd -s queue`: the transmit and resend queues, and the error
    /// queue of a TCP link.
    pub fn queues(&self) -> Vec<QueueStats> {
        let mut v: Vec<QueueStats> = self.engine.queues().to_vec();
        let (cur, full) = self
            .channels
            .iter()
            .map(|c| c.errorq())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        v.insert(
            1,
            QueueStats {
                name: "errorq",
                current: cur as u64,
                max: self.cfg.channels.first().map_or(128, |c| c.error_queue_len) as u64,
                full,
            },
        );
        v
    }

    fn populate(&mut self) -> io::Result<()> {
        let now = now_ms();
        let engine = &mut self.engine;
        let scratch = &mut *self.scratch;
        let mut bad = 0u64;
        let _ = self
            .req
            .list(&DumpFilter::default(), |view| {
                if scratch.parse_into(view.nf()).is_err()
                    || engine.ct_populate(scratch, now).is_err()
                {
                    bad += 1;
                }
                ControlFlow::Continue(())
            })
            .map_err(io_err)?;
        bad += self.dump_expectations(|e, x| e.exp_populate(x, now))?;
        self.stats.events_bad += bad;
        Ok(())
    }

    /// With `ExpectationSync`, passes each expectation of the kernel to `apply`; returns how
    /// many did not convert or were refused.
    fn dump_expectations(
        &mut self,
        mut apply: impl FnMut(&mut Engine, &ExpectRepr) -> conntrack_codec::Result<()>,
    ) -> io::Result<u64> {
        let mut bad = 0u64;
        if !self.engine.config().expectations.enabled() {
            return Ok(0);
        }
        let engine = &mut self.engine;
        for family in [2u8, 10] {
            let _ = self
                .req
                .exp_list(family, |e| {
                    match ExpectRepr::try_from(&e) {
                        Ok(x) if apply(engine, &x).is_ok() => {}
                        _ => bad += 1,
                    }
                    ControlFlow::Continue(())
                })
                .map_err(io_err)?;
        }
        Ok(bad)
    }

    /// Reads the kernel's table again (`conntrackd -R`, and after lost events): changed and
    /// new entries are sent; entries the dump does not show are deleted (and the peer told).
    ///
    /// # Errors
    /// A socket error.
    pub fn resync_kernel(&mut self) -> io::Result<()> {
        let now = now_ms();
        self.stats.kernel_resyncs += 1;
        let (req, scratch) = (&mut self.req, &mut *self.scratch);
        let mut bad = 0u64;
        let outcome = resync_with(&mut self.engine, |engine| {
            let summary = req
                .list(&DumpFilter::default(), |view| {
                    if scratch.parse_into(view.nf()).is_err()
                        || engine.ct_resync(scratch, now).is_err()
                    {
                        bad += 1;
                    }
                    ControlFlow::Continue(())
                })
                .map_err(io_err)?;
            Ok(summary.interrupted)
        })?;
        note_resync(&mut self.stats, &mut self.notices, outcome);
        bad += self.dump_expectations(|e, x| e.exp_resync(x, now))?;
        self.stats.events_bad += bad;
        Ok(())
    }

    /// How long the node may sleep (milliseconds from now) before [`Node::run_once`] has
    /// something to do without new input: the engine's next timer, a resync with the kernel
    /// due, and, with several links or a TCP link, the next look at the links (every
    /// 250 ms). A caller that waits on [`Node::fds`] for that long, then calls
    /// [`Node::run_once`] with a zero timeout, runs the node as `run_once` does itself.
    pub fn timeout_ms(&self) -> u64 {
        let now = now_ms();
        let mut due = self.engine.next_timer().unwrap_or(u64::MAX);
        if let Some(r) = self.resync_at {
            due = due.min(r);
        }
        let watch = self.channels.len() > 1
            || self
                .channels
                .iter()
                .any(|c| c.cfg.transport == Transport::Tcp);
        if watch {
            due = due.min(self.next_link_check);
        }
        due.saturating_sub(now)
    }

    /// Runs the loop for at most `timeout_ms`: waits for datagrams and events, feeds the
    /// engine, ticks its timers, watches the links, and sends what it has.
    ///
    /// # Errors
    /// A socket error other than a full or empty queue.
    pub fn run_once(&mut self, timeout_ms: u16) -> io::Result<()> {
        {
            let mut fds: Vec<PollFd<'_>> = self
                .fds()
                .into_iter()
                .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
                .collect();
            let wait = u16::try_from(self.timeout_ms())
                .unwrap_or(u16::MAX)
                .min(timeout_ms);
            match poll(&mut fds, PollTimeout::from(wait)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(io::Error::from(e)),
            }
        }
        let now = now_ms();
        self.read_events()?;
        self.read_links(now);
        self.inject_pending()?;
        if self.engine.take_kernel_bulk() {
            self.bulk_from_kernel()?;
        }
        if self.engine.take_purge(now) {
            self.purge()?;
        }
        if now >= self.next_link_check {
            self.next_link_check = now + 250;
            self.check_links();
            for c in &mut self.channels {
                c.tick();
            }
        }
        self.engine.on_tick(now);
        self.flush()
    }

    fn read_links(&mut self, now: u64) {
        let (engine, buf) = (&mut self.engine, &mut self.buf);
        let mut switch = None;
        for (i, c) in self.channels.iter_mut().enumerate() {
            let accepted = c.read(engine, buf, now);
            if accepted > 0 && i != self.current {
                switch = Some(i);
            }
        }
        self.stats.foreign_datagrams = self.channels.iter().map(|c| c.stats.error_recv).sum();
        // The peer moved to another link: follow it (conntrackd's multichannel does).
        if let Some(i) = switch {
            self.current = i;
            self.stats.link_switches += 1;
        }
    }

    /// The active link's interface went down: take the first other one that is up.
    fn check_links(&mut self) {
        if self.channels.len() < 2 {
            return;
        }
        let Some(name) = self
            .channels
            .get(self.current)
            .and_then(|c| c.cfg.interface.clone())
        else {
            return;
        };
        let ok = conntrack_io::net::interface_state(&name).is_ok_and(|s| s.up && s.running);
        if ok {
            return;
        }
        for (i, c) in self.channels.iter().enumerate() {
            if i == self.current {
                continue;
            }
            let up = c
                .cfg
                .interface
                .as_deref()
                .and_then(|n| conntrack_io::net::interface_state(n).ok())
                .is_some_and(|s| s.up || s.running);
            if up {
                self.current = i;
                self.stats.link_switches += 1;
                self.notices.push(Notice::LinkSwitched(
                    c.cfg.interface.clone().unwrap_or_default(),
                ));
                return;
            }
        }
        self.notices.push(Notice::NoLinks);
    }

    fn read_events(&mut self) -> io::Result<()> {
        let own = self.commit.portid();
        let injector = self.inject.portid();
        let mut lost = false;
        // One clock read per batch: the events of a batch are a few milliseconds apart.
        let now = now_ms();
        for _ in 0..4096 {
            let ev = match self.events.try_next() {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) => return Err(io_err(e)),
            };
            let origin = |portid: u32| {
                if portid != 0 && portid == own {
                    Origin::Commit
                } else if portid != 0 && portid == injector {
                    Origin::Inject
                } else {
                    Origin::Kernel
                }
            };
            match ev {
                Event::Conntrack(ev) => {
                    self.stats.events += 1;
                    let o = origin(ev.portid);
                    if o == Origin::Commit {
                        self.stats.events_own += 1;
                    }
                    if self.scratch.parse_into(ev.entry.nf()).is_err() {
                        self.stats.events_bad += 1;
                        continue;
                    }
                    if ev.kind == EventKind::Destroy && o == Origin::Kernel {
                        for c in [self.scratch.counters_orig, self.scratch.counters_reply]
                            .into_iter()
                            .flatten()
                        {
                            self.stats.traffic_bytes += c.bytes.unwrap_or(0);
                            self.stats.traffic_packets += c.packets.unwrap_or(0);
                        }
                    }
                    if self
                        .engine
                        .ct_event(ev.kind, &self.scratch, o, now)
                        .is_err()
                    {
                        self.stats.events_bad += 1;
                    }
                }
                Event::Expect(ev) => {
                    self.stats.events += 1;
                    let o = origin(ev.portid);
                    let Ok(e) = ExpectRepr::try_from(&ev.exp) else {
                        self.stats.events_bad += 1;
                        continue;
                    };
                    if self.engine.exp_event(ev.kind, &e, o, now).is_err() {
                        self.stats.events_bad += 1;
                    }
                }
                Event::Lost(l) => {
                    self.stats.events_lost += l.count;
                    // As conntrackd: say each doubling, and say once that it cannot grow
                    // further.
                    if let Some(effective) = l.grown_to {
                        // The kernel reports twice the size asked; conntrackd says the size.
                        self.rcvbuf = effective / 2;
                        self.stats.buffer_growths += 1;
                        self.notices.push(Notice::BufferGrown(self.rcvbuf));
                    } else if l.cause == LossCause::QueueFull
                        && self.rcvbuf >= self.cfg.netlink_buffer_max
                        && !self.maxed
                    {
                        self.maxed = true;
                        self.notices.push(Notice::BufferMaxed);
                    }
                    lost = true;
                }
            }
        }
        if lost {
            // One resync for a burst of losses: a little later, when the burst that
            // overran the buffer has passed (a dump per loss would slow the table down and
            // lose more).
            if self.resync_at.is_none() {
                self.resync_at = Some(now_ms() + RESYNC_DELAY_MS);
            }
        }
        if self.resync_at.is_some_and(|t| now_ms() >= t) {
            self.resync_at = None;
            self.resync_kernel()?;
        }
        Ok(())
    }

    /// A bulk send without internal cache: the kernel's table, each entry as new.
    fn bulk_from_kernel(&mut self) -> io::Result<()> {
        let engine = &mut self.engine;
        let scratch = &mut *self.scratch;
        let mut bad = 0u64;
        let _ = self
            .req
            .list(&DumpFilter::default(), |view| {
                if scratch.parse_into(view.nf()).is_err() || engine.bulk_entry(scratch).is_err() {
                    bad += 1;
                }
                ControlFlow::Continue(())
            })
            .map_err(io_err)?;
        self.stats.events_bad += bad;
        Ok(())
    }

    /// `DisableExternalCache`: what the peer sent goes into the kernel now, as conntrackd's
    /// injector puts it there (a new entry that exists is deleted and made again; an
    /// update of a missing entry creates it; a failed update is tried as delete and create).
    fn inject_pending(&mut self) -> io::Result<()> {
        let wt = self.cfg.window_tracking;
        while let Some(item) = self.engine.poll_inject() {
            let kind = item.kind;
            let (ok, not_found) = if kind.is_expect() {
                match SyncExp::new_checked(item.attrs).and_then(|v| v.to_repr()) {
                    Ok(e) => self.inject_exp(kind, &e),
                    Err(_) => (false, false),
                }
            } else {
                match SyncCt::new_checked(item.attrs).and_then(|v| v.to_repr()) {
                    Ok(r) => self.inject_ct(kind, &r, wt),
                    Err(_) => (false, false),
                }
            };
            self.engine.pop_inject();
            self.engine.count_inject(kind, ok, not_found);
        }
        Ok(())
    }

    fn inject_ct(&mut self, kind: DataKind, r: &ConntrackRepr, wt: bool) -> (bool, bool) {
        let s = &mut self.inject;
        let enoent = |e: &conntrack_io::Error| e.errno() == Some(Errno::ENOENT);
        match kind {
            DataKind::CtNew => {
                let c = commit_request(r, 0, None, wt);
                match s.create(&c) {
                    Ok(()) => (true, false),
                    Err(e) if e.errno() == Some(Errno::EEXIST) => {
                        let _ = s.delete(&ct_key(r));
                        (s.create(&c).is_ok(), false)
                    }
                    Err(_) => (false, false),
                }
            }
            DataKind::CtUpdate => match s.update(&update_request(r, wt)) {
                Ok(()) => (true, false),
                Err(e) if enoent(&e) => (s.create(&commit_request(r, 0, None, wt)).is_ok(), true),
                Err(_) => {
                    let _ = s.delete(&ct_key(r));
                    (s.create(&commit_request(r, 0, None, wt)).is_ok(), false)
                }
            },
            _ => match s.delete(&ct_key(r)) {
                Ok(()) => (true, false),
                Err(e) if enoent(&e) => (true, true),
                Err(_) => (false, false),
            },
        }
    }

    fn inject_exp(&mut self, kind: DataKind, e: &ExpectRepr) -> (bool, bool) {
        let s = &mut self.inject;
        match kind {
            DataKind::ExpDelete => match s.exp_delete(&exp_key(e)) {
                Ok(()) => (true, false),
                Err(x) if x.errno() == Some(Errno::ENOENT) => (true, true),
                Err(_) => (false, false),
            },
            _ => {
                let c = exp_commit_request(e, 0, None);
                match s.exp_create(&c) {
                    Ok(()) => (true, false),
                    Err(x) if x.errno() == Some(Errno::EEXIST) => {
                        let _ = s.exp_delete(&exp_key(e));
                        (s.exp_create(&c).is_ok(), false)
                    }
                    Err(_) => (false, false),
                }
            }
        }
    }

    /// Sends everything the engine has queued on the active link.
    ///
    /// # Errors
    /// None today (a refused datagram is lost, and FTFW recovers it); kept for the links
    /// that may fail for good.
    pub fn flush(&mut self) -> io::Result<()> {
        let now = now_ms();
        while let Some(n) = self.engine.poll_transmit(now, &mut self.out) {
            let Some(ch) = self.channels.get_mut(self.current) else {
                break;
            };
            let d = self.out.get(..n).unwrap_or(&[]);
            if !ch.send(d) {
                self.stats.tx_refused += 1;
            }
        }
        Ok(())
    }

    /// Schedules the purge of `conntrackd -t`: after `PurgeTimeout` seconds the kernel's
    /// entries that pass the filter are deleted and the internal cache's conntrack entries
    /// forgotten (conntrackd's way of making a backup forget the connections it no longer
    /// serves). A purge already scheduled is kept.
    pub fn schedule_purge(&mut self) {
        self.engine.schedule_purge(now_ms(), self.cfg.purge_timeout);
    }

    fn purge(&mut self) -> io::Result<()> {
        self.notices.push(Notice::Purging);
        self.stats.purges += 1;
        let filter = self.engine.config().filter.clone();
        let mut victims = Vec::new();
        let scratch = &mut *self.scratch;
        let _ = self
            .req
            .list(&DumpFilter::default(), |view| {
                if scratch.parse_into(view.nf()).is_ok() && filter.accepts(scratch) {
                    victims.push(ct_key(scratch));
                }
                ControlFlow::Continue(())
            })
            .map_err(io_err)?;
        let mut gone = 0u64;
        self.commit
            .delete_batch(&victims, 64, |_, r| {
                if r.is_ok() {
                    gone += 1;
                }
            })
            .map_err(io_err)?;
        self.stats.purged += gone;
        self.engine.flush_internal_ct();
        Ok(())
    }

    /// Puts the external cache's conntrack entries into the kernel (`conntrackd -c`), in
    /// bulk, masters before the entries their expectations created; an entry that exists
    /// already is replaced. Returns how many went in and how many failed. Cancels a
    /// scheduled purge, as conntrackd does.
    ///
    /// # Errors
    /// A socket error.
    pub fn commit(&mut self) -> io::Result<(u64, u64)> {
        self.engine.cancel_purge();
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
            let _ = self.commit.delete(&ct_key(&r));
            match self.commit.create(&r) {
                Ok(()) => ok += 1,
                Err(_) => failed += 1,
            }
        }
        self.stats.commit_ok += ok;
        self.stats.commit_fail += failed;
        Ok((ok, failed))
    }

    /// Puts the external cache's expectations into the kernel (`conntrackd -c expect`):
    /// their masters must be there already (commit the conntrack entries first). Returns
    /// how many went in and how many failed.
    ///
    /// # Errors
    /// A socket error.
    pub fn commit_expectations(&mut self) -> io::Result<(u64, u64)> {
        self.engine.cancel_purge();
        let now = now_ms();
        let exps: Vec<(Vec<u8>, u64)> = self
            .engine
            .external()
            .filter(|e| e.expect)
            .map(|e| (e.attrs.clone(), e.updated_ms))
            .collect();
        let (mut ok, mut failed) = (0u64, 0u64);
        for (attrs, updated) in exps {
            let Ok(e) = SyncExp::new_checked(&attrs).and_then(|v| v.to_repr()) else {
                failed += 1;
                continue;
            };
            let elapsed = now.saturating_sub(updated) / 1000;
            let req = exp_commit_request(&e, elapsed, self.cfg.commit_timeout);
            let r = match self.commit.exp_create(&req) {
                Err(x) if x.errno() == Some(Errno::EEXIST) => {
                    let _ = self.commit.exp_delete(&exp_key(&req));
                    self.commit.exp_create(&req)
                }
                r => r,
            };
            match r {
                Ok(()) => ok += 1,
                Err(_) => failed += 1,
            }
        }
        self.stats.commit_ok += ok;
        self.stats.commit_fail += failed;
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
                Err(e) if e.errno() == Some(Errno::EEXIST) => eexist.push(i),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupted_resyncs_are_counted_and_told() {
        let (mut st, mut n) = (NodeStats::default(), Vec::new());
        let o = |dumps, interrupted, complete| ResyncOutcome {
            dumps,
            interrupted,
            complete,
        };
        note_resync(&mut st, &mut n, o(1, 0, true));
        assert!(n.is_empty());
        note_resync(&mut st, &mut n, o(2, 1, true));
        assert_eq!(n, [Notice::ResyncInterrupted]);
        note_resync(&mut st, &mut n, o(3, 3, false));
        assert_eq!(st.resync_dumps_interrupted, 4);
        assert_eq!(st.resyncs_incomplete, 1);
        assert_eq!(n.len(), 4);
        assert_eq!(
            n[3].to_string(),
            "resync with kernel conntrack table: 3 dumps interrupted, stale entries are kept \
             until the next resync"
        );
    }
}
