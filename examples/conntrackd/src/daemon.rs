//! The daemon: what 1.4.7's `main` does after reading its configuration (log, lock file,
//! the control socket, the engine, `-d`), its main loop, and the answers to the control
//! requests (`run.c`'s `local_handler`, `ctnl.c`'s `ctnl_local`, `sync-mode.c`'s
//! `local_handler_sync`), with their log lines.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::action::Action;
use crate::config::Config;
use crate::engine::{Cache, Engine, Table};
use crate::log::{Logger, Priority};
use crate::text::{self, Runtime};

/// What the local handler tells the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Go on.
    Continue,
    /// `-k`: shut down.
    Kill,
}

/// The running daemon's state, apart from the process plumbing.
pub struct Daemon<E: Engine> {
    /// The configuration.
    pub conf: Config,
    /// The logger.
    pub log: Logger,
    /// The engine (present in sync and stats mode).
    pub engine: Option<E>,
    /// The daemon's own counters.
    pub rt: Runtime,
    /// A pending `-t` flush of the kernel table.
    pub purge_at: Option<Instant>,
}

impl<E: Engine> Daemon<E> {
    fn expect_sync(&self) -> bool {
        self.conf
            .sync
            .as_ref()
            .is_some_and(|s| s.expectation_sync != crate::config::ExpectSync::Off)
    }

    fn note(&mut self, msg: &str) {
        self.log.log(Priority::Notice, msg);
    }

    fn flush_master(&mut self, table: Table) {
        self.rt.kernel_table_flush += 1;
        let what = if table == Table::Expect {
            "flushing kernel expect table"
        } else {
            "flushing kernel conntrack table"
        };
        self.note(what);
        if let Some(e) = self.engine.as_mut() {
            if let Err(err) = e.flush_kernel(table) {
                self.log.log(Priority::Error, &format!("flush: {err}"));
            }
        }
    }

    fn resync_master(&mut self, table: Table) {
        let what = if table == Table::Expect {
            "resync with master expect table"
        } else {
            "resync with master conntrack table"
        };
        self.note(what);
        if let Some(e) = self.engine.as_mut() {
            if let Err(err) = e.resync_kernel(table, &mut self.rt) {
                self.log.log(Priority::Error, &format!("resync: {err}"));
            }
        }
    }

    fn commit(&mut self, table: Table) {
        let what = match table {
            Table::Conntrack => "committing conntrack cache",
            Table::Expect => "committing expectation cache",
            Table::All => "committing all external caches",
        };
        self.note(what);
        self.purge_at = None;
        // The conntrack entries first (the expectations need their masters), each cache
        // with its own lines, as 1.4.7 commits them one after the other.
        let expect = self.expect_sync();
        let parts = [
            (Table::Conntrack, table != Table::Expect, "entries"),
            (
                Table::Expect,
                table != Table::Conntrack && expect,
                "expectations",
            ),
        ];
        for (part, wanted, words) in parts {
            if !wanted {
                continue;
            }
            let start = Instant::now();
            let Some(e) = self.engine.as_mut() else {
                return;
            };
            let r = e.commit(part, &mut self.log);
            let took = start.elapsed();
            self.note(&format!("Committed {} new {words}", r.ok));
            if r.fail > 0 {
                self.note(&format!("{} {words} can't be committed", r.fail));
            }
            self.note(&format!(
                "commit has taken {}.{:06} seconds",
                took.as_secs(),
                took.subsec_micros()
            ));
        }
    }

    fn dump(&self, cache: Cache, table: Table, xml: bool, out: &mut String) {
        if let Some(e) = self.engine.as_ref() {
            let now = crate::now_secs();
            if table == Table::Expect {
                e.exp_entries(cache, &mut |exp, since| {
                    text::exp_cache_line(out, exp, now - since, xml);
                });
                return;
            }
            e.entries(cache, table, &mut |entry, since| {
                text::cache_line(out, entry, now - since, xml);
            });
        }
    }

    /// Answers one request; `out` gets what goes back to the client.
    pub fn local(&mut self, code: i32, out: &mut String) -> After {
        let Some(action) = Action::from_code(code) else {
            self.rt.local_unknown_request += 1;
            return After::Continue;
        };
        match action {
            Action::Kill => return After::Kill,
            Action::StatsRuntime => text::runtime(out, &self.rt, crate::now_secs()),
            Action::StatsProcess => {}
            _ => {}
        }
        if self.conf.sync.is_none() && self.conf.stats.is_none() {
            return After::Continue;
        }
        let expect = self.expect_sync();
        // ctnl_local: the kernel-table requests.
        match action {
            Action::CtFlushMaster => self.flush_master(Table::Conntrack),
            Action::CtResyncMaster => self.resync_master(Table::Conntrack),
            Action::ExpFlushMaster if expect => self.flush_master(Table::Expect),
            Action::ExpResyncMaster if expect => self.resync_master(Table::Expect),
            Action::AllFlushMaster => {
                self.flush_master(Table::Conntrack);
                if expect {
                    self.flush_master(Table::Expect);
                }
            }
            Action::AllResyncMaster => {
                self.resync_master(Table::Conntrack);
                if expect {
                    self.resync_master(Table::Expect);
                }
            }
            _ => {}
        }
        // The sync mode's requests.
        match action {
            Action::CtDumpInternal => self.dump(Cache::Internal, Table::Conntrack, false, out),
            Action::CtDumpExternal => self.dump(Cache::External, Table::Conntrack, false, out),
            Action::CtDumpIntXml => self.dump(Cache::Internal, Table::Conntrack, true, out),
            Action::CtDumpExtXml => self.dump(Cache::External, Table::Conntrack, true, out),
            Action::ExpDumpInternal if expect => {
                self.dump(Cache::Internal, Table::Expect, false, out)
            }
            Action::ExpDumpExternal if expect => {
                self.dump(Cache::External, Table::Expect, false, out)
            }
            Action::ExpDumpIntXml if expect => self.dump(Cache::Internal, Table::Expect, true, out),
            Action::ExpDumpExtXml if expect => self.dump(Cache::External, Table::Expect, true, out),
            Action::CtCommit => self.commit(Table::Conntrack),
            Action::ExpCommit if expect => self.commit(Table::Expect),
            Action::AllCommit => self.commit(Table::All),
            Action::ResetTimers if self.purge_at.is_none() => {
                let secs = self.conf.sync.as_ref().map_or(60, |s| s.purge_timeout);
                self.note(&format!("flushing conntrack table in {secs} secs"));
                self.purge_at = Some(Instant::now() + Duration::from_secs(u64::from(secs)));
            }
            Action::CtFlushCache | Action::AllFlushCache => {
                self.purge_at = None;
                self.note("flushing caches");
                if let Some(e) = self.engine.as_mut() {
                    e.flush_cache(None);
                }
            }
            Action::CtFlushIntCache => {
                self.purge_at = None;
                self.note("flushing internal cache");
                if let Some(e) = self.engine.as_mut() {
                    e.flush_cache(Some(Cache::Internal));
                }
            }
            Action::CtFlushExtCache => {
                self.note("flushing external cache");
                if let Some(e) = self.engine.as_mut() {
                    e.flush_cache(Some(Cache::External));
                }
            }
            Action::Stats => {
                if let Some(e) = self.engine.as_ref() {
                    text::cache_stats(out, "internal", &e.cache_stats(Cache::Internal));
                    text::cache_stats(out, "external", &e.cache_stats(Cache::External));
                    text::traffic(out, &e.traffic());
                    if let Some(l) = e.links().first() {
                        text::link_active(out, l);
                    }
                    text::message_tracking(out, &e.network());
                }
            }
            Action::StatsNetwork => {
                if let Some(e) = self.engine.as_ref() {
                    text::network(out, &e.network());
                    if let Some(l) = e.links().first() {
                        text::link_active(out, l);
                    }
                }
            }
            Action::StatsCache => {
                if let Some(e) = self.engine.as_ref() {
                    text::cache_stats_ext(out, "internal", &e.cache_stats(Cache::Internal));
                    text::cache_stats_ext(out, "external", &e.cache_stats(Cache::External));
                }
            }
            Action::StatsLink => {
                if let Some(e) = self.engine.as_ref() {
                    for l in e.links() {
                        text::link_ext(out, &l);
                    }
                }
            }
            Action::StatsRsqueue => {
                if let Some(e) = self.engine.as_ref() {
                    let (len, lines) = e.rsqueue();
                    out.push_str(&format!("resent queue (len={len})\n"));
                    out.push_str(&lines);
                }
            }
            Action::StatsQueue => {
                if let Some(e) = self.engine.as_ref() {
                    let (n, qs) = e.queues();
                    text::queues(out, n, &qs);
                }
            }
            Action::RequestDump => {
                self.note("resync requested");
                if let Some(e) = self.engine.as_mut() {
                    e.request_resync();
                }
            }
            Action::SendBulk => {
                self.note("sending bulk update");
                if let Some(e) = self.engine.as_mut() {
                    e.send_bulk();
                }
            }
            _ => {}
        }
        After::Continue
    }

    /// Runs a due `-t` flush.
    pub fn timers(&mut self) {
        if self.purge_at.is_some_and(|t| Instant::now() >= t) {
            // 1.4.7's reset-cache alarm: the kernel table and the internal cache.
            self.purge_at = None;
            self.rt.kernel_table_flush += 1;
            self.note("flushing kernel conntrack table (scheduled)");
            if let Some(e) = self.engine.as_mut() {
                if let Err(err) = e.flush_kernel(Table::Conntrack) {
                    self.log.log(Priority::Error, &format!("flush: {err}"));
                }
                e.flush_cache(Some(Cache::Internal));
            }
        }
        if let Some(e) = self.engine.as_mut() {
            e.tick(&mut self.log, &mut self.rt);
        }
    }

    fn timeout(&self) -> Option<Duration> {
        let purge = self
            .purge_at
            .map(|t| t.saturating_duration_since(Instant::now()));
        let engine = self
            .engine
            .as_ref()
            .and_then(|e| e.timeout_ms())
            .map(Duration::from_millis);
        match (purge, engine) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The scheduling 1.4.7 applies for `General { Scheduler }`: without a `Type`, `SCHED_RR`
/// at the top priority (a `Priority` alone is not looked at); with one, that policy at the
/// configured priority (0 when none is given, which the kernel refuses for both).
pub fn scheduling(s: &crate::config::Scheduler) -> (conntrack_io::sched::Policy, i32) {
    use crate::config::SchedPolicy;
    use conntrack_io::sched::Policy;
    match s.policy {
        None => (Policy::RoundRobin, 99),
        Some(SchedPolicy::RoundRobin) => (Policy::RoundRobin, s.priority),
        Some(SchedPolicy::Fifo) => (Policy::Fifo, s.priority),
    }
}

/// The lock file: created exclusively, mode 0600 (through the 0177 umask).
///
/// # Errors
/// The line 1.4.7 logs when it exists (or cannot be made).
pub fn lock(path: &std::path::Path) -> Result<(), String> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map(drop)
        .map_err(|_| {
            format!(
                "lockfile `{}' exists, perhaps conntrackd already running?",
                path.display()
            )
        })
}

/// Blocks SIGINT and SIGTERM and returns a descriptor that reads them; SIGPIPE is ignored
/// (a client that goes away must not kill the daemon).
///
/// # Errors
/// When the signal mask or the descriptor cannot be set up.
pub fn signals() -> nix::Result<SignalFd> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block()?;
    // SAFETY: SIG_IGN installs no handler code; ignoring SIGPIPE is process-wide and safe.
    unsafe { nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigIgn) }?;
    SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

/// What the loop runs on.
pub struct Plumbing {
    /// The control socket.
    pub listener: UnixListener,
    /// Its path (removed at shutdown).
    pub socket_path: PathBuf,
    /// SIGINT/SIGTERM.
    pub signals: SignalFd,
    /// The lock file (removed at shutdown).
    pub lockfile: PathBuf,
}

fn serve_one<E: Engine>(d: &mut Daemon<E>, mut s: UnixStream) -> After {
    let _ = s.set_nonblocking(false);
    // A client that neither sends nor reads must not stall the daemon (1.4.7 forks for
    // the long answers; here they are written in place, with a deadline).
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    let code = match crate::local::read_request(&mut s) {
        Ok(Some(c)) => c,
        _ => {
            d.rt.local_read_failed += 1;
            return After::Continue;
        }
    };
    let mut out = String::new();
    let after = d.local(code, &mut out);
    if !out.is_empty() {
        let _ = s.write_all(out.as_bytes());
    }
    after
}

/// The main loop: control requests, engine input, timers, and SIGINT/SIGTERM, until one of
/// them stops the daemon; then 1.4.7's shutdown (socket and lock file removed, the last
/// log line).
pub fn run<E: Engine>(d: &mut Daemon<E>, p: &Plumbing) {
    loop {
        let engine_fds: Vec<RawFd> = d.engine.as_ref().map(|e| e.fds()).unwrap_or_default();
        let mut fds = vec![
            PollFd::new(p.listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(p.signals.as_fd(), PollFlags::POLLIN),
        ];
        for fd in &engine_fds {
            // SAFETY: the engine owns these descriptors and keeps them open while it lives,
            // which spans this poll call.
            let b = unsafe { BorrowedFd::borrow_raw(*fd) };
            fds.push(PollFd::new(b, PollFlags::POLLIN));
        }
        let timeout = d
            .timeout()
            .map(|t| {
                PollTimeout::try_from(t.as_millis().min(60_000) as i32 + 1)
                    .unwrap_or(PollTimeout::MAX)
            })
            .unwrap_or(PollTimeout::NONE);
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => {
                d.rt.select_failed += 1;
                continue;
            }
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready.get(1).copied().unwrap_or(false)
            && p.signals.read_signal().ok().flatten().is_some()
        {
            break;
        }
        for (i, fd) in engine_fds.iter().enumerate() {
            if ready.get(i + 2).copied().unwrap_or(false) {
                if let Some(e) = d.engine.as_mut() {
                    e.ready(*fd, &mut d.log, &mut d.rt);
                }
            }
        }
        if ready.first().copied().unwrap_or(false) {
            if let Ok((s, _)) = p.listener.accept() {
                if serve_one(d, s) == After::Kill {
                    break;
                }
            }
        }
        d.timers();
    }
    let _ = std::fs::remove_file(&p.socket_path);
    let _ = std::fs::remove_file(&p.lockfile);
    d.log.log(Priority::Notice, "---- shutdown received ----");
    d.log.close();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Commit, HashCache};
    use crate::text::{CacheStats, LinkStats, NetworkStats, QueueStats, Traffic};
    use conntrack_codec::ct::{ConntrackRepr, Tuple};

    /// An engine with canned caches, for the request handling.
    struct Fake {
        internal: HashCache,
        flushed: Vec<Option<Cache>>,
        commits: u32,
    }

    impl Engine for Fake {
        fn fds(&self) -> Vec<RawFd> {
            Vec::new()
        }
        fn ready(&mut self, _: RawFd, _: &mut Logger, _: &mut Runtime) {}
        fn timeout_ms(&self) -> Option<u64> {
            None
        }
        fn tick(&mut self, _: &mut Logger, _: &mut Runtime) {}
        fn entries(&self, cache: Cache, _: Table, f: &mut dyn FnMut(&ConntrackRepr, i64)) {
            if cache == Cache::Internal {
                self.internal.each(f);
            }
        }
        fn cache_stats(&self, cache: Cache) -> CacheStats {
            match cache {
                Cache::Internal => self.internal.stats(),
                Cache::External => CacheStats::default(),
            }
        }
        fn commit(&mut self, _: Table, _: &mut Logger) -> Commit {
            self.commits += 1;
            Commit { ok: 3, fail: 1 }
        }
        fn flush_cache(&mut self, c: Option<Cache>) {
            self.flushed.push(c);
        }
        fn flush_kernel(&mut self, _: Table) -> std::io::Result<()> {
            Ok(())
        }
        fn resync_kernel(&mut self, _: Table, _: &mut Runtime) -> std::io::Result<()> {
            Ok(())
        }
        fn request_resync(&mut self) {}
        fn send_bulk(&mut self) {}
        fn links(&self) -> Vec<LinkStats> {
            Vec::new()
        }
        fn network(&self) -> NetworkStats {
            NetworkStats::default()
        }
        fn traffic(&self) -> Traffic {
            Traffic::default()
        }
        fn rsqueue(&self) -> (u32, String) {
            (0, String::new())
        }
        fn queues(&self) -> (u32, Vec<QueueStats>) {
            (0, Vec::new())
        }
    }

    fn daemon() -> Daemon<Fake> {
        let mut internal = HashCache::new(16, 100);
        let orig = Tuple::udp(
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
            5,
            6,
        );
        let e = ConntrackRepr {
            family: 2,
            orig: Some(orig),
            reply: Some(orig.inverted()),
            timeout: Some(30),
            ..ConntrackRepr::default()
        };
        internal.update_force(&e, crate::now_secs() - 7);
        Daemon {
            conf: Config {
                sync: Some(crate::config::Sync::default()),
                ..Config::default()
            },
            log: Logger::console(),
            engine: Some(Fake {
                internal,
                flushed: Vec::new(),
                commits: 0,
            }),
            rt: Runtime::default(),
            purge_at: None,
        }
    }

    #[test]
    fn scheduling_as_conntrackd_applies_it() {
        use crate::config::{SchedPolicy, Scheduler};
        use conntrack_io::sched::Policy;
        let s = |policy, priority| Scheduler { policy, priority };
        assert_eq!(scheduling(&s(None, 0)), (Policy::RoundRobin, 99));
        assert_eq!(scheduling(&s(None, 5)), (Policy::RoundRobin, 99));
        assert_eq!(
            scheduling(&s(Some(SchedPolicy::RoundRobin), 5)),
            (Policy::RoundRobin, 5)
        );
        assert_eq!(
            scheduling(&s(Some(SchedPolicy::Fifo), 0)),
            (Policy::Fifo, 0)
        );
    }

    #[test]
    fn requests_reach_the_engine_and_the_texts() {
        let mut d = daemon();
        let mut out = String::new();
        assert_eq!(
            d.local(Action::CtDumpInternal.code(), &mut out),
            After::Continue
        );
        assert_eq!(
            out,
            "udp      17 src=10.0.0.1 dst=10.0.0.2 sport=5 dport=6 src=10.0.0.2 dst=10.0.0.1 sport=6 dport=5 [active since 7s]\n"
        );
        let mut out = String::new();
        d.local(Action::CtDumpExternal.code(), &mut out);
        assert_eq!(out, "");
        d.local(Action::AllFlushCache.code(), &mut out);
        d.local(Action::CtFlushExtCache.code(), &mut out);
        d.local(Action::AllCommit.code(), &mut out);
        let f = d.engine.as_ref().expect("engine");
        assert_eq!(f.flushed, vec![None, Some(Cache::External)]);
        assert_eq!(f.commits, 1);
        d.local(Action::ResetTimers.code(), &mut out);
        assert!(d.purge_at.is_some());
        d.local(Action::CtCommit.code(), &mut out);
        assert!(d.purge_at.is_none(), "a commit cancels the pending flush");
        d.local(12345, &mut out);
        assert_eq!(d.rt.local_unknown_request, 1);
        assert_eq!(d.local(Action::Kill.code(), &mut out), After::Kill);
        let mut out = String::new();
        d.local(Action::Stats.code(), &mut out);
        assert!(
            out.starts_with("cache internal:\ncurrent active connections:\t           1\n"),
            "{out}"
        );
    }
}
