//! The soak: the whole stack under load, for minutes, in one throwaway network namespace.
//! `scripts/soak` builds and runs it (as root); it is not part of the test suite.
//!
//! Usage: `soak --duration SECS [--entries N] [--workloads LIST] [--bin-dir DIR]`
//!
//! First the listeners subscribe (they must exist before the entries do: see
//! `docs/events.md`, "Entries that never send events"), then `N` entries (default 100 000)
//! are created in bulk, then the load runs for the duration, all at once:
//!
//! - `churn`: a round of bulk creates of new entries and bulk deletes of the oldest, again and
//!   again, so the table stays about `N` entries while it changes all the time;
//! - `dumps`: dumps of the whole churning table (`Socket::list`), one after the other;
//! - `cli-list`: `conntrack -L` (our program) every 5 s;
//! - `filtered-delete`: every 3 s, 1 000 entries with mark 7 are created, then
//!   `conntrack -D -m 7` (our program) must delete exactly those;
//! - listeners: `ctevents` with the default receive queue (`ctevents`), `ctevents -b 64 MiB`
//!   (`ctevents-big`), and the two-socket pattern of `docs/events.md` in this process, with a
//!   64 MiB queue (`monitor`) and with the default one (`monitor-small`): events on one
//!   socket, a dump on a second socket every 100 000 events and after every loss; no event
//!   may be lost to those requests.
//!
//! Then the load stops, the table is flushed, the listeners catch up and are stopped, and the
//! checks run: every event was received or counted lost (each listener: received + lost =
//! twice the entries created, one new and one destroy event each), every dump ended complete
//! or reported interrupted, every command did what it should, the descriptors and resident
//! memory of this process and of every listener process stayed flat (sampled every 10 s),
//! and nothing panicked. The result is a Markdown table on stdout (for the README); the exit
//! status is 0 if every check passed, 1 if one failed, 2 for a bad command line.
//!
//! More workloads plug in through [`WORKLOADS`]: a name, whether it listens (started before
//! the table is filled, finished after it is emptied, with the number of events the kernel
//! sent) or loads (started after the fill, stopped at the end of the duration), and a
//! function that starts it. A running workload names the processes to sample and returns its
//! rows of the report when finished.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use conntrack_codec::ct::request::{self, Key};
use conntrack_codec::ct::{ConntrackRepr, Status, Tuple};
use conntrack_codec::filter::DumpFilter;
use conntrack_io::{Event, Events, Groups, LossCause, Socket};
use conntrack_tests::{netfilter_sockets, Netns};

const USAGE: &str = "usage: soak --duration SECS [--entries N] [--workloads LIST] [--bin-dir DIR]";

/// How often the descriptors and memory of the processes are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Requests in flight in a bulk operation (the sockets get a 4 MiB queue for the answers).
const WINDOW: usize = 1024;
/// Entries a churn round creates, and deletes.
const CHURN_ROUND: u64 = 5_000;
/// Marked entries a filtered-delete round creates.
const MARKED: u64 = 1_000;
/// The first entry number of those entries (source ports 17 408 and up).
const MARKED_FIRST: u64 = 1 << 38;
/// The mark of those entries.
const MARK: u32 = 7;
/// A large event queue, as `SO_RCVBUFFORCE` asks for it.
const BIG_QUEUE: usize = 64 << 20;

/// Whether a workload listens to events or loads the table.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Started before the fill, finished after the table is emptied.
    Listener,
    /// Started after the fill, stopped at the end of the duration.
    Load,
}

/// The workloads: name, kind, starter.
const WORKLOADS: &[(&str, Kind, Starter)] = &[
    ("ctevents", Kind::Listener, |ctx| {
        CtEvents::start(ctx, "ctevents", &[])
    }),
    ("ctevents-big", Kind::Listener, |ctx| {
        CtEvents::start(ctx, "ctevents -b 64 MiB", &["-b", "67108864"])
    }),
    ("monitor", Kind::Listener, |ctx| {
        Monitor::start(ctx, "monitor (two sockets, 64 MiB)", Some(BIG_QUEUE))
    }),
    ("monitor-small", Kind::Listener, |ctx| {
        Monitor::start(ctx, "monitor (two sockets, default queue)", None)
    }),
    ("churn", Kind::Load, Churn::start),
    ("dumps", Kind::Load, Dumps::start),
    ("cli-list", Kind::Load, CliList::start),
    ("filtered-delete", Kind::Load, FilteredDelete::start),
];

type Starter = fn(&Arc<Ctx>) -> Result<Box<dyn Running>, String>;

/// What every workload shares.
struct Ctx {
    ns: Netns,
    bin_dir: PathBuf,
    /// Set at the end of the duration: the load workloads stop.
    stop: AtomicBool,
    /// Entries the kernel acknowledged as created, by every workload: each sends one new and
    /// one destroy event before the end.
    created: AtomicU64,
    /// The next entry number of the fill and the churn (which deletes them in order).
    next: AtomicU64,
}

impl Ctx {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps up to `d`, less if the soak stops meanwhile.
    fn pause(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stopped() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn program(&self, name: &str) -> String {
        self.bin_dir.join(name).to_string_lossy().into_owned()
    }
}

/// One row of the report.
struct Row {
    workload: String,
    did: String,
    check: String,
    ok: bool,
}

impl Row {
    fn new(workload: &str, did: String, check: String, ok: bool) -> Row {
        Row {
            workload: workload.to_string(),
            did,
            check,
            ok,
        }
    }
}

/// A started workload.
trait Running: Send {
    /// The processes to sample, with a label.
    fn processes(&self) -> Vec<(String, u32)> {
        Vec::new()
    }
    /// Ends the workload (load workloads: `ctx.stop` is set; listeners: the table is empty and
    /// the kernel sent `events` events) and returns its rows of the report.
    fn finish(self: Box<Self>, ctx: &Ctx, events: u64) -> Vec<Row>;
}

/// Entry `i` of the soak: a TCP entry from 10.0.0.0/8 (the low 24 bits of `i`; the next
/// bits pick the source port), to 192.0.2.1:80, ten minutes of timeout.
fn entry(i: u64, mark: Option<u32>) -> ConntrackRepr {
    let low = u32::try_from(i & 0x00ff_ffff).unwrap_or(0);
    let high = u16::try_from((i >> 24) & 0x7fff).unwrap_or(0);
    let orig = Tuple::tcp(
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | low)),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        1024 + high,
        80,
    );
    ConntrackRepr {
        family: 2,
        orig: Some(orig),
        reply: Some(orig.inverted()),
        status: Some(Status::SEEN_REPLY | Status::ASSURED),
        timeout: Some(3600),
        mark,
        ..ConntrackRepr::default()
    }
}

/// Creates (or deletes) entries `first..first + count` in bulk, writing each request as it
/// goes (nothing is allocated per entry); returns (succeeded, failed, first error).
fn bulk(
    sock: &mut Socket,
    first: u64,
    count: u64,
    mark: Option<u32>,
    delete: bool,
) -> (u64, u64, Option<String>) {
    let mut failure = None;
    let result = sock.bulk(
        usize::try_from(count).unwrap_or(0),
        WINDOW,
        |i, w, seq| {
            let e = entry(first + i as u64, mark);
            if delete {
                let key = Key::orig(e.orig.unwrap_or_default());
                request::delete(w, seq, &key).map(drop)
            } else {
                request::create(w, seq, &e).map(drop)
            }
        },
        |_, r| {
            if let (Err(e), None) = (r, &failure) {
                failure = Some(e.to_string());
            }
        },
    );
    match result {
        Ok(s) => (s.succeeded as u64, s.failed as u64, failure),
        Err(e) => (0, count, Some(e.to_string())),
    }
}

fn request_socket(ctx: &Ctx) -> Result<Socket, String> {
    let sock = Socket::open_in_netns(ctx.ns.path()).map_err(|e| format!("open: {e}"))?;
    sock.set_rcvbuf(4 << 20)
        .map_err(|e| format!("rcvbuf: {e}"))?;
    Ok(sock)
}

/// Joins a workload thread; a panic becomes a failed row.
fn join<T>(name: &str, handle: JoinHandle<T>) -> Result<T, Row> {
    handle.join().map_err(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Row::new(name, format!("panicked: {what}"), "no panic".into(), false)
    })
}

// --- listeners -------------------------------------------------------------------------

/// `ctevents` as a user runs it, stdout to /dev/null, stderr kept.
struct CtEvents {
    label: String,
    child: Child,
    stderr: Arc<Mutex<(u64, Vec<String>)>>,
    reader: JoinHandle<()>,
}

impl CtEvents {
    fn start(ctx: &Arc<Ctx>, label: &str, args: &[&str]) -> Result<Box<dyn Running>, String> {
        let mut child = ctx
            .ns
            .command(&ctx.program("ctevents"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("start ctevents: {e}"))?;
        // Lines of stderr: how many, and the last few (loss reports are many).
        let stderr = Arc::new(Mutex::new((0u64, Vec::new())));
        let out = child.stderr.take().ok_or("no stderr")?;
        let sink = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
                s.0 += 1;
                if s.1.len() == 8 {
                    s.1.remove(0);
                }
                s.1.push(line);
            }
        });
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !netfilter_sockets(pid).iter().any(|s| s.groups == 0x7) {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{label} exited early: {status}"));
            }
            if Instant::now() > deadline {
                return Err(format!("{label} never subscribed"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Box::new(CtEvents {
            label: label.to_string(),
            child,
            stderr,
            reader,
        }))
    }
}

/// Waits until process `pid` has read everything queued on its netfilter sockets (the
/// queues stay empty for a second), or 120 s.
fn wait_drained(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut empty_since = None;
    while Instant::now() < deadline {
        let queued: u64 = netfilter_sockets(pid).iter().map(|s| s.rmem).sum();
        match (queued, empty_since) {
            (0, None) => empty_since = Some(Instant::now()),
            (0, Some(t)) if t.elapsed() > Duration::from_secs(1) => return,
            (0, Some(_)) => {}
            _ => empty_since = None,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `ctevents: N flow events have been shown (L lost).`: (N, L).
fn shown_and_lost(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("ctevents: ")?;
    let (shown, rest) = rest.split_once(' ')?;
    let lost = match rest.split_once(" (") {
        Some((_, l)) => l.strip_suffix(" lost).")?.parse().ok()?,
        None => 0,
    };
    Some((shown.parse().ok()?, lost))
}

impl Running for CtEvents {
    fn processes(&self) -> Vec<(String, u32)> {
        vec![(self.label.clone(), self.child.id())]
    }

    fn finish(mut self: Box<Self>, _ctx: &Ctx, events: u64) -> Vec<Row> {
        let pid = self.child.id();
        wait_drained(pid);
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let status = self.child.wait();
        let _ = self.reader.join();
        let (lines, tail) =
            std::mem::take(&mut *self.stderr.lock().unwrap_or_else(|p| p.into_inner()));
        let summary = tail.last().and_then(|l| shown_and_lost(l));
        let clean = matches!(&status, Ok(s) if s.success());
        let panicked = tail.iter().any(|l| l.contains("panicked"));
        let (did, ok) = match summary {
            Some((shown, lost)) => (
                format!(
                    "{} received + {} lost = {} ({} loss reports)",
                    thousands(shown),
                    thousands(lost),
                    thousands(shown + lost),
                    thousands(lines.saturating_sub(1))
                ),
                shown + lost == events,
            ),
            None => (format!("no summary: {tail:?}"), false),
        };
        vec![Row::new(
            &self.label,
            did,
            format!(
                "received + lost = the {} events sent; exit status {}",
                thousands(events),
                match &status {
                    Ok(s) => s.code().map_or("by signal".into(), |c| c.to_string()),
                    Err(e) => e.to_string(),
                }
            ),
            ok && clean && !panicked,
        )]
    }
}

/// The two-socket pattern: events on one socket, dumps on another.
struct Monitor {
    label: String,
    thread: JoinHandle<MonitorTally>,
    /// Set when the table is empty: the number of events to wait for.
    expected: Arc<AtomicU64>,
}

#[derive(Default)]
struct MonitorTally {
    received: u64,
    lost_queue: u64,
    lost_request: u64,
    reports: u64,
    resyncs: u64,
    dumps: u64,
    interrupted: u64,
    failure: Option<String>,
}

impl Monitor {
    fn start(
        ctx: &Arc<Ctx>,
        label: &str,
        queue: Option<usize>,
    ) -> Result<Box<dyn Running>, String> {
        let mut events = Events::open_in_netns(ctx.ns.path(), Groups::CONNTRACK)
            .map_err(|e| format!("subscribe: {e}"))?;
        if let Some(bytes) = queue {
            events
                .set_rcvbuf(bytes)
                .map_err(|e| format!("rcvbuf: {e}"))?;
        }
        let mut requests = request_socket(ctx)?;
        let expected = Arc::new(AtomicU64::new(0));
        let want = Arc::clone(&expected);
        let thread = std::thread::spawn(move || {
            let mut t = MonitorTally::default();
            let mut idle_since: Option<Instant> = None;
            let mut since_dump = 0u64;
            loop {
                let item = match events.try_next() {
                    Ok(Some(Event::Conntrack(_))) => Some(None),
                    Ok(Some(Event::Expect(_))) => Some(None),
                    Ok(Some(Event::Lost(lost))) => Some(Some((lost.cause, lost.count))),
                    Ok(None) => None,
                    Err(e) => {
                        t.failure.get_or_insert(e.to_string());
                        None
                    }
                };
                let resync = match item {
                    Some(None) => {
                        t.received += 1;
                        since_dump += 1;
                        idle_since = None;
                        false
                    }
                    Some(Some((cause, n))) => {
                        t.reports += 1;
                        if cause == LossCause::QueueFull {
                            t.lost_queue += n;
                        } else {
                            t.lost_request += n;
                        }
                        t.resyncs += 1;
                        true
                    }
                    None => {
                        let want = want.load(Ordering::Relaxed);
                        let seen = t.received + t.lost_queue + t.lost_request;
                        if want > 0 && seen >= want {
                            break;
                        }
                        let idle = *idle_since.get_or_insert_with(Instant::now);
                        if want > 0 && idle.elapsed() > Duration::from_secs(10) {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(2));
                        false
                    }
                };
                if resync || since_dump >= 100_000 {
                    since_dump = 0;
                    t.dumps += 1;
                    match requests.list(&DumpFilter::default(), |_| ControlFlow::Continue(())) {
                        Ok(s) if s.interrupted => t.interrupted += 1,
                        Ok(_) => {}
                        Err(e) => {
                            t.failure.get_or_insert(format!("dump: {e}"));
                        }
                    }
                }
            }
            t
        });
        Ok(Box::new(Monitor {
            label: label.to_string(),
            thread,
            expected,
        }))
    }
}

impl Running for Monitor {
    fn finish(self: Box<Self>, _ctx: &Ctx, events: u64) -> Vec<Row> {
        self.expected.store(events.max(1), Ordering::Relaxed);
        let t = match join(&self.label, self.thread) {
            Ok(t) => t,
            Err(row) => return vec![row],
        };
        let total = t.received + t.lost_queue + t.lost_request;
        vec![Row::new(
            &self.label,
            format!(
                "{} received + {} lost ({} reports, {} to requests) = {}; {} dumps on the \
                 second socket ({} after a loss){}",
                thousands(t.received),
                thousands(t.lost_queue + t.lost_request),
                thousands(t.reports),
                thousands(t.lost_request),
                thousands(total),
                thousands(t.dumps),
                thousands(t.resyncs),
                t.failure
                    .as_ref()
                    .map(|f| format!("; error: {f}"))
                    .unwrap_or_default()
            ),
            format!(
                "received + lost = the {} events sent; none lost to requests",
                thousands(events)
            ),
            total == events && t.lost_request == 0 && t.failure.is_none(),
        )]
    }
}

// --- load ------------------------------------------------------------------------------

/// Bulk creates of new entries and bulk deletes of the oldest, round after round.
struct Churn(JoinHandle<(u64, u64, u64, u64, Option<String>)>);

impl Churn {
    fn start(ctx: &Arc<Ctx>) -> Result<Box<dyn Running>, String> {
        let mut sock = request_socket(ctx)?;
        let ctx = Arc::clone(ctx);
        // The fill took entries 0..N: delete from 0 on, create from the next free number.
        Ok(Box::new(Churn(std::thread::spawn(move || {
            let (mut rounds, mut made, mut gone, mut failed) = (0, 0, 0, 0);
            let mut failure = None;
            let mut oldest = 0;
            while !ctx.stopped() {
                let first = ctx.next.fetch_add(CHURN_ROUND, Ordering::Relaxed);
                let (ok, bad, e) = bulk(&mut sock, first, CHURN_ROUND, None, false);
                ctx.created.fetch_add(ok, Ordering::Relaxed);
                made += ok;
                failed += bad;
                failure = failure.or(e);
                let (ok, bad, e) = bulk(&mut sock, oldest, CHURN_ROUND, None, true);
                oldest += CHURN_ROUND;
                gone += ok;
                failed += bad;
                failure = failure.or(e);
                rounds += 1;
            }
            (rounds, made, gone, failed, failure)
        }))))
    }
}

impl Running for Churn {
    fn finish(self: Box<Self>, _ctx: &Ctx, _events: u64) -> Vec<Row> {
        match join("churn", self.0) {
            Ok((rounds, made, gone, failed, failure)) => vec![Row::new(
                "churn",
                format!(
                    "{} rounds: {} entries created and {} deleted in bulk",
                    thousands(rounds),
                    thousands(made),
                    thousands(gone)
                ),
                format!(
                    "every request succeeded ({} failed{})",
                    thousands(failed),
                    failure.map(|f| format!(": {f}")).unwrap_or_default()
                ),
                failed == 0 && rounds > 0,
            )],
            Err(row) => vec![row],
        }
    }
}

/// Whole-table dumps, one after the other.
struct Dumps(JoinHandle<DumpTally>);

#[derive(Default)]
struct DumpTally {
    complete: u64,
    interrupted: u64,
    failed: u64,
    smallest: u64,
    largest: u64,
    failure: Option<String>,
}

impl Dumps {
    fn start(ctx: &Arc<Ctx>) -> Result<Box<dyn Running>, String> {
        let mut sock = request_socket(ctx)?;
        let ctx = Arc::clone(ctx);
        Ok(Box::new(Dumps(std::thread::spawn(move || {
            let mut t = DumpTally {
                smallest: u64::MAX,
                ..DumpTally::default()
            };
            while !ctx.stopped() {
                match sock.list(&DumpFilter::default(), |_| ControlFlow::Continue(())) {
                    Ok(s) => {
                        if s.interrupted {
                            t.interrupted += 1;
                        } else {
                            t.complete += 1;
                        }
                        t.smallest = t.smallest.min(s.delivered);
                        t.largest = t.largest.max(s.delivered);
                    }
                    Err(e) => {
                        t.failed += 1;
                        t.failure.get_or_insert(e.to_string());
                    }
                }
            }
            t
        }))))
    }
}

impl Running for Dumps {
    fn finish(self: Box<Self>, _ctx: &Ctx, _events: u64) -> Vec<Row> {
        match join("dumps", self.0) {
            Ok(t) => vec![Row::new(
                "dumps",
                format!(
                    "{} dumps of the churning table ({}–{} entries each)",
                    thousands(t.complete + t.interrupted + t.failed),
                    thousands(if t.smallest == u64::MAX {
                        0
                    } else {
                        t.smallest
                    }),
                    thousands(t.largest)
                ),
                format!(
                    "complete or reported interrupted: {} complete, {} interrupted, {} failed{}",
                    thousands(t.complete),
                    thousands(t.interrupted),
                    thousands(t.failed),
                    t.failure.map(|f| format!(" ({f})")).unwrap_or_default()
                ),
                t.failed == 0 && t.complete + t.interrupted > 0,
            )],
            Err(row) => vec![row],
        }
    }
}

/// Runs our `conntrack` in the namespace; returns (exit code, stderr).
fn conntrack(ctx: &Ctx, args: &[&str]) -> (Option<i32>, String) {
    match ctx
        .ns
        .command(&ctx.program("conntrack"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
    {
        Ok(out) => (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        Err(e) => (None, format!("cannot run conntrack: {e}")),
    }
}

/// `conntrack -L` every 5 s.
struct CliList(JoinHandle<(u64, u64, u64, Option<String>)>);

impl CliList {
    fn start(ctx: &Arc<Ctx>) -> Result<Box<dyn Running>, String> {
        let ctx = Arc::clone(ctx);
        Ok(Box::new(CliList(std::thread::spawn(move || {
            let (mut ok, mut interrupted, mut failed) = (0, 0, 0);
            let mut failure = None;
            while !ctx.stopped() {
                let (code, stderr) = conntrack(&ctx, &["-L"]);
                if code == Some(0) && stderr.ends_with("flow entries have been shown.\n") {
                    ok += 1;
                } else if code == Some(1) && stderr.contains("Interrupted system call") {
                    interrupted += 1;
                } else {
                    failed += 1;
                    failure.get_or_insert(format!("exit {code:?}: {}", stderr.trim()));
                }
                ctx.pause(Duration::from_secs(5));
            }
            (ok, interrupted, failed, failure)
        }))))
    }
}

impl Running for CliList {
    fn finish(self: Box<Self>, _ctx: &Ctx, _events: u64) -> Vec<Row> {
        match join("conntrack -L", self.0) {
            Ok((ok, interrupted, failed, failure)) => vec![Row::new(
                "conntrack -L",
                format!(
                    "{} runs, one every 5 s",
                    thousands(ok + interrupted + failed)
                ),
                format!(
                    "listed (exit 0) or reported interrupted: {} listed, {} interrupted, {} \
                     failed{}",
                    thousands(ok),
                    thousands(interrupted),
                    thousands(failed),
                    failure.map(|f| format!(" ({f})")).unwrap_or_default()
                ),
                failed == 0 && ok + interrupted > 0,
            )],
            Err(row) => vec![row],
        }
    }
}

/// Every 3 s: 1 000 marked entries, then `conntrack -D -m 7`.
struct FilteredDelete(JoinHandle<(u64, u64, u64, Option<String>)>);

impl FilteredDelete {
    fn start(ctx: &Arc<Ctx>) -> Result<Box<dyn Running>, String> {
        let mut sock = request_socket(ctx)?;
        let ctx = Arc::clone(ctx);
        Ok(Box::new(FilteredDelete(std::thread::spawn(move || {
            let (mut rounds, mut deleted, mut failed) = (0, 0, 0);
            let mut failure = None;
            let mark = MARK.to_string();
            // Numbers of their own (other source ports), away from the churn's.
            let mut next = MARKED_FIRST;
            while !ctx.stopped() {
                let first = next;
                next += MARKED;
                let (made, bad, e) = bulk(&mut sock, first, MARKED, Some(MARK), false);
                ctx.created.fetch_add(made, Ordering::Relaxed);
                let (code, stderr) = conntrack(&ctx, &["-D", "-m", &mark]);
                let said = stderr
                    .trim_end()
                    .strip_suffix(" flow entries have been deleted.")
                    .and_then(|s| s.rsplit(' ').next())
                    .and_then(|n| n.parse::<u64>().ok());
                rounds += 1;
                if bad == 0 && code == Some(0) && said == Some(made) && made == MARKED {
                    deleted += made;
                } else {
                    failed += 1;
                    failure.get_or_insert(format!(
                        "created {made} ({}), conntrack -D exit {code:?}: {}",
                        e.unwrap_or_default(),
                        stderr.trim()
                    ));
                }
                ctx.pause(Duration::from_secs(3));
            }
            (rounds, deleted, failed, failure)
        }))))
    }
}

impl Running for FilteredDelete {
    fn finish(self: Box<Self>, _ctx: &Ctx, _events: u64) -> Vec<Row> {
        match join("conntrack -D -m 7", self.0) {
            Ok((rounds, deleted, failed, failure)) => vec![Row::new(
                "filtered delete (`conntrack -D -m 7`)",
                format!(
                    "{} rounds of {} marked entries among the churning ones; {} deleted",
                    thousands(rounds),
                    thousands(MARKED),
                    thousands(deleted)
                ),
                format!(
                    "each round deleted exactly its marked entries: {} rounds failed{}",
                    thousands(failed),
                    failure.map(|f| format!(" ({f})")).unwrap_or_default()
                ),
                failed == 0 && rounds > 0,
            )],
            Err(row) => vec![row],
        }
    }
}

// --- sampling --------------------------------------------------------------------------

/// Descriptors and resident memory (KiB) of a process, or `None` if it is gone.
fn sample(pid: u32) -> Option<(u64, u64)> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some((fds, rss))
}

/// The samples of one process: (descriptors, KiB resident), every [`SAMPLE_EVERY`].
type Samples = Vec<(u64, u64)>;

/// Whether the samples are flat after the first (the warm-up): descriptors never more than
/// `fd_slack` above the first sample kept, and the second half's highest resident size within
/// 10 % (at least 2 MiB) of the first half's.
fn flat(samples: &Samples, fd_slack: u64) -> bool {
    let kept = samples.get(1..).unwrap_or_default();
    if kept.len() < 2 {
        return true;
    }
    let first_fds = kept[0].0;
    let fds_ok = kept.iter().all(|&(f, _)| f <= first_fds + fd_slack);
    let (a, b) = kept.split_at(kept.len() / 2);
    let high = |s: &[(u64, u64)]| s.iter().map(|&(_, r)| r).max().unwrap_or(0);
    let rss_ok = high(b) <= high(a) + (high(a) / 10).max(2048);
    fds_ok && rss_ok
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

struct Args {
    duration: Duration,
    entries: u64,
    workloads: Vec<&'static str>,
    bin_dir: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut duration = None;
    let mut entries = 100_000;
    let mut workloads: Vec<&'static str> = WORKLOADS.iter().map(|w| w.0).collect();
    let mut bin_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--duration" => {
                let v = value("--duration")?;
                let secs: u64 = v.parse().map_err(|_| format!("bad duration {v:?}"))?;
                if secs == 0 {
                    return Err("the duration must be at least 1 s".into());
                }
                duration = Some(Duration::from_secs(secs));
            }
            "--entries" => {
                let v = value("--entries")?;
                entries = v.parse().map_err(|_| format!("bad entry count {v:?}"))?;
            }
            "--workloads" => {
                let v = value("--workloads")?;
                workloads = Vec::new();
                for name in v.split(',') {
                    let known = WORKLOADS
                        .iter()
                        .find(|w| w.0 == name)
                        .ok_or(format!("unknown workload {name:?}"))?;
                    workloads.push(known.0);
                }
            }
            "--bin-dir" => bin_dir = PathBuf::from(value("--bin-dir")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        duration: duration.ok_or("--duration is required")?,
        entries,
        workloads,
        bin_dir,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("soak: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    for program in ["ctevents", "conntrack"] {
        if !args.bin_dir.join(program).exists() {
            eprintln!(
                "soak: {} is missing (build it, or give --bin-dir)",
                args.bin_dir.join(program).display()
            );
            return ExitCode::from(2);
        }
    }
    if run(&args) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn run(args: &Args) -> bool {
    let started = Instant::now();
    let load_before = loadavg();
    let ctx = Arc::new(Ctx {
        ns: Netns::new("soak"),
        bin_dir: args.bin_dir.clone(),
        stop: AtomicBool::new(false),
        created: AtomicU64::new(0),
        next: AtomicU64::new(args.entries),
    });
    let mut rows = Vec::new();
    let start = |kind: Kind, rows: &mut Vec<Row>| {
        let mut running: Vec<Box<dyn Running>> = Vec::new();
        for (name, k, starter) in WORKLOADS {
            if *k == kind && args.workloads.contains(name) {
                match starter(&ctx) {
                    Ok(r) => running.push(r),
                    Err(e) => rows.push(Row::new(
                        name,
                        format!("did not start: {e}"),
                        String::new(),
                        false,
                    )),
                }
            }
        }
        running
    };
    let listeners = start(Kind::Listener, &mut rows);

    // The table.
    let mut sock = match request_socket(&ctx) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("soak: {e}");
            return false;
        }
    };
    let t0 = Instant::now();
    let (made, _, failure) = bulk(&mut sock, 0, args.entries, None, false);
    ctx.created.fetch_add(made, Ordering::Relaxed);
    rows.push(Row::new(
        "fill",
        format!(
            "{} entries created in bulk in {:.1} s",
            thousands(made),
            t0.elapsed().as_secs_f64()
        ),
        format!(
            "all created{}",
            failure.map(|f| format!(" ({f})")).unwrap_or_default()
        ),
        made == args.entries,
    ));
    eprintln!(
        "soak: {} entries; load for {} s",
        thousands(made),
        args.duration.as_secs()
    );

    let loads = start(Kind::Load, &mut rows);
    let mut processes: Vec<(String, u32)> = vec![("soak".into(), std::process::id())];
    for r in listeners.iter().chain(&loads) {
        processes.extend(r.processes());
    }
    let mut samples: Vec<Samples> = vec![Vec::new(); processes.len()];
    let load_start = Instant::now();
    let mut next_sample = load_start + SAMPLE_EVERY;
    let mut gone = Vec::new();
    while load_start.elapsed() < args.duration {
        std::thread::sleep(Duration::from_millis(200));
        if Instant::now() >= next_sample {
            next_sample += SAMPLE_EVERY;
            for ((label, pid), s) in processes.iter().zip(&mut samples) {
                match sample(*pid) {
                    Some(x) => s.push(x),
                    None if !gone.contains(label) => gone.push(label.clone()),
                    None => {}
                }
            }
            let (fds, rss) = samples[0].last().copied().unwrap_or_default();
            eprintln!(
                "soak: {:>4} s: {} entries created so far; soak {fds} fds, {} MiB",
                load_start.elapsed().as_secs(),
                thousands(ctx.created.load(Ordering::Relaxed)),
                mib(rss)
            );
        }
    }
    ctx.stop.store(true, Ordering::Relaxed);
    for r in loads {
        rows.extend(r.finish(&ctx, 0));
    }

    // Empty the table: every entry left sends its destroy event.
    let emptied = sock
        .flush(&DumpFilter::default())
        .and_then(|_flushed| sock.count());
    let created = ctx.created.load(Ordering::Relaxed);
    rows.push(Row::new(
        "flush",
        format!(
            "the table emptied at the end ({} entries created in all)",
            thousands(created)
        ),
        "no entry left".into(),
        matches!(emptied, Ok(0)),
    ));
    let events = 2 * created;
    for r in listeners {
        rows.extend(r.finish(&ctx, events));
    }

    // Descriptors and memory.
    let mut fd_cells = Vec::new();
    let mut rss_cells = Vec::new();
    let mut flat_ok = gone.is_empty();
    for ((label, _), s) in processes.iter().zip(&samples) {
        let first = s.get(1).or(s.first()).copied().unwrap_or_default();
        let last = s.last().copied().unwrap_or_default();
        let max_rss = s.iter().map(|x| x.1).max().unwrap_or(0);
        // Descriptors come and go: this process starts `conntrack` with pipes now and then,
        // and ctevents opens /proc directories to name the process behind an event.
        let slack = if label == "soak" { 8 } else { 4 };
        flat_ok &= flat(s, slack);
        fd_cells.push(format!("{label} {}→{}", first.0, last.0));
        rss_cells.push(format!(
            "{label} {}→{} (max {})",
            mib(first.1),
            mib(last.1),
            mib(max_rss)
        ));
    }
    let n = samples.first().map_or(0, Vec::len);
    rows.push(Row::new(
        "descriptors",
        fd_cells.join(", "),
        format!(
            "flat: {n} samples, one every 10 s, compared from the second on (a few descriptors \
             come and go with child processes and /proc look-ups)"
        ),
        flat_ok,
    ));
    rows.push(Row::new(
        "resident memory (MiB)",
        rss_cells.join(", "),
        "flat: the second half's peak within 10 % (2 MiB) of the first half's".into(),
        flat_ok,
    ));
    if !gone.is_empty() {
        rows.push(Row::new(
            "processes",
            format!("gone before the end: {}", gone.join(", ")),
            "every process lives to the end".into(),
            false,
        ));
    }

    let ok = rows.iter().all(|r| r.ok);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "soak: {} s of load on a {}-entry table, Linux {}, {cores} cores, load average {} \
         before, {} after; {} s in all",
        args.duration.as_secs(),
        thousands(args.entries),
        kernel.trim(),
        load_before,
        loadavg(),
        started.elapsed().as_secs()
    );
    println!();
    println!("| workload | what it did | check | result |");
    println!("|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} |",
            r.workload,
            r.did,
            r.check,
            if r.ok { "ok" } else { "**FAILED**" }
        );
    }
    println!();
    println!("soak: {}", if ok { "every check passed" } else { "FAILED" });
    ok
}
