//! The event loop that `conntrack -E` and `ctevents` share: receiving (in one place,
//! [`receive`]: a receive thread of `conntrack_io::Receiver` drains the socket into a bounded
//! queue, so receiving never waits on the output), the look-up of the requesting program
//! (`conntrack_io::Prognames`, remembered across a burst), the clock of each line, the output
//! (in large blocks while a burst lasts, flushed as soon as the queue is empty, so an idle
//! stream shows each event at once; line by line on a terminal), and the end on SIGINT or
//! SIGTERM (the XML footer if the header was printed, a summary on stderr, exit status 0).
//! What each program prints is its [`Handler`].
//!
//! [`run`] is `conntrack -E` and `-E expect`: the lines of 1.4.7, filtered as `-L` filters,
//! with ` [USERSPACE] portid=N progname=P` when a request caused the event, and one warning
//! per overrun of the receive queue.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use conntrack_codec::ct::ConntrackRepr;
use conntrack_codec::fmt::{
    CtLine, ExpLine, Origin, Output, Style, Userspace, XML_EXP_FOOTER, XML_EXP_HEADER, XML_FOOTER,
    XML_HEADER,
};
use conntrack_io::{
    Connlabels, CtEvent, Error as IoError, Event, Events, ExpEvent, Groups, Lost, Prognames,
    Receiver, ReceiverStats, ReceiverWatch, WhenFull,
};

use crate::filter::{self, NetFilter};
use crate::kernel::Kernel;
use crate::model::{Obj, Tmpl};
use crate::out::Term;
use crate::parse::{cmd, ev, opt, out as o, Cmd, Fail};
use crate::run::{err2str, Ctx};

/// What a handler decides about one item of the stream.
#[derive(Debug)]
pub enum Next {
    /// Print the line it wrote.
    Print,
    /// Print nothing.
    Skip,
    /// End the loop with this failure.
    Stop(Fail),
}

/// A conntrack event to print, with what the loop knows of it.
#[derive(Debug, Clone, Copy)]
pub struct CtItem<'a, 'e> {
    /// The event.
    pub event: &'a CtEvent<'e>,
    /// The output settings of its line, with the clock filled in.
    pub out: &'a Output,
    /// The requester of the event, if a request caused it.
    pub userspace: Option<Userspace<'a>>,
}

/// One program's part of the loop: the lines it prints and how it reports trouble.
pub trait Handler {
    /// Writes the line of a conntrack event into `line` (without the newline).
    fn conntrack(&mut self, item: CtItem<'_, '_>, line: &mut String) -> Next;

    /// Writes the line of an expectation event into `line`.
    fn expect(&mut self, event: &ExpEvent<'_>, out: &Output, line: &mut String) -> Next;

    /// Events were lost: `report` is the stream's report, if this item is one;
    /// `overruns` the number of overruns since the previous item: of the socket's queue (the
    /// kernel's `ENOBUFS`) and of the receive thread's queue
    /// (`conntrack_io::ReceiverStats::overruns`).
    fn lost(&mut self, report: Option<&Lost>, overruns: u64, err: &mut dyn Write) -> Next;

    /// The stream failed to give the next item.
    fn error(&mut self, error: &IoError, err: &mut dyn Write) -> Next;
}

/// How a stream is printed and ended.
pub struct Settings {
    /// The output settings of the lines (the loop fills in the clock of each).
    pub out: Output,
    /// The XML header and footer, when the lines are XML.
    pub xml: Option<(&'static str, &'static str)>,
    /// Whether each line gets the time it is made (`-o timestamp`; 1.4.7 prints the time of
    /// printing too).
    pub timestamp: bool,
    /// What is printed on stderr at the end (the summary line).
    pub summary: Box<dyn Fn(&Tally) -> String + Send>,
    /// The capacity of the queue between the receive thread and the lines, in events.
    pub queue: usize,
    /// What the receive thread does when that queue is full.
    pub when_full: WhenFull,
}

/// What the end of a stream reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    /// Events printed.
    pub shown: u64,
    /// Events lost, as far as the receive thread knows.
    pub lost: u64,
    /// Overruns the handler has not been told of yet (they happened while the lines of
    /// the events before them were still queued).
    pub overruns_untold: u64,
}

/// The `SCHED_FIFO` priority of the receive thread: the lowest, above every normal thread.
const REALTIME_PRIORITY: u8 = 1;

/// What the loop and the signal thread share.
#[derive(Default)]
struct Counts {
    shown: AtomicU64,
    lost: AtomicU64,
    /// Overruns the handler was told of.
    told: AtomicU64,
    xml_open: AtomicBool,
    /// The receive thread's counters, once it runs.
    watch: OnceLock<ReceiverWatch>,
}

impl Counts {
    /// Tells the handler of the overruns `stats` counts that it was not told of yet.
    fn tell_overruns(
        &self,
        stats: &ReceiverStats,
        handler: &mut dyn Handler,
        term: &Mutex<Term>,
    ) -> Option<Fail> {
        let told = self.told.load(Ordering::SeqCst);
        let new = stats.overruns().saturating_sub(told);
        if new == 0 {
            return None;
        }
        self.told.store(told.saturating_add(new), Ordering::SeqCst);
        let mut t = term.lock().unwrap_or_else(PoisonError::into_inner);
        match handler.lost(None, new, &mut t.err) {
            Next::Stop(f) => Some(f),
            _ => None,
        }
    }
}

/// The next item of the stream: the one place where events are taken. `idle` runs first
/// when the stream has gone quiet (the output is flushed there).
///
/// # Errors
/// As [`Receiver::next`].
pub fn receive(
    rx: &mut Receiver,
    idle: impl FnOnce(&ReceiverStats),
) -> Result<Option<Event<'_>>, IoError> {
    rx.next_or_idle(idle)
}

/// A terminal that writes nowhere.
fn nowhere() -> Term {
    Term::new(Box::new(std::io::sink()), Box::new(std::io::sink()))
}

/// Runs the stream until a signal ends the program (then the process exits with status 0)
/// or `handler` stops it; returns the terminal and the failure.
///
/// # Errors
/// SIGINT and SIGTERM cannot be caught (the terminal comes back with the error).
pub fn run_loop(
    events: Events,
    settings: Settings,
    term: Term,
    handler: &mut dyn Handler,
) -> Result<(Term, Fail), (Term, std::io::Error)> {
    let term = Arc::new(Mutex::new(term));
    let counts = Arc::new(Counts::default());
    let (t, c) = (Arc::clone(&term), Arc::clone(&counts));
    let Settings {
        out: base,
        xml,
        timestamp,
        summary,
        queue,
        when_full,
    } = settings;
    let caught = crate::signals::on_stop(move |_| {
        let mut t = t.lock().unwrap_or_else(PoisonError::into_inner);
        if let (true, Some((_, footer))) = (c.xml_open.load(Ordering::SeqCst), xml) {
            t.out.text(footer);
        }
        t.out.flush();
        let mut tally = Tally {
            shown: c.shown.load(Ordering::SeqCst),
            lost: c.lost.load(Ordering::SeqCst),
            overruns_untold: 0,
        };
        if let Some(now) = c.watch.get().map(ReceiverWatch::stats) {
            tally.lost = tally.lost.max(now.lost());
            tally.overruns_untold = now.overruns().saturating_sub(c.told.load(Ordering::SeqCst));
        }
        let line = summary(&tally);
        t.err_line(line.as_bytes());
        std::process::exit(0);
    });
    if let Err(e) = caught {
        // The reaction was dropped with the thread that was not started.
        let mut t = term.lock().unwrap_or_else(PoisonError::into_inner);
        return Err((std::mem::replace(&mut *t, nowhere()), e));
    }
    // Started after the signals are blocked (the thread blocks them too, whatever the order);
    // under real-time scheduling when allowed, so that a busy machine does not keep it from
    // the socket while a burst arrives.
    let started = Receiver::builder()
        .capacity(queue)
        .when_full(when_full)
        .realtime(Some(REALTIME_PRIORITY))
        .spawn(events);
    let mut rx = match started {
        Ok(rx) => rx,
        Err(e) => {
            let mut t = term.lock().unwrap_or_else(PoisonError::into_inner);
            let fail = Fail::other(format!("cannot start the receive thread: {e}"));
            return Ok((std::mem::replace(&mut *t, nowhere()), fail));
        }
    };
    let _ = counts.watch.set(rx.watch());
    let mut prognames = Prognames::default();
    let mut line = String::new();
    let fail = loop {
        line.clear();
        let mut out = base;
        conntrack_io::clock::set_now(&mut out);
        if timestamp {
            out.event_time = Some(conntrack_io::clock::now_micros());
        }
        // The stream went quiet: the overruns no item told of, and the output.
        let mut stop = None;
        let idle = |stats: &ReceiverStats| {
            stop = counts.tell_overruns(stats, handler, &term);
            term.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .out
                .flush();
        };
        let next = match receive(&mut rx, idle) {
            Ok(Some(Event::Conntrack(ev))) => {
                let userspace = (ev.portid != 0).then(|| Userspace {
                    portid: ev.portid,
                    progname: prognames.get(ev.portid),
                });
                let item = CtItem {
                    event: &ev,
                    out: &out,
                    userspace,
                };
                handler.conntrack(item, &mut line)
            }
            Ok(Some(Event::Expect(ev))) => handler.expect(&ev, &out, &mut line),
            Ok(Some(Event::Lost(lost))) => {
                counts.lost.store(lost.total, Ordering::SeqCst);
                let mut t = term.lock().unwrap_or_else(PoisonError::into_inner);
                handler.lost(Some(&lost), 0, &mut t.err)
            }
            // Only after the error that ended the receive thread, which the handler saw.
            Ok(None) => Next::Stop(Fail::other("the event stream ended")),
            Err(e) => {
                let mut t = term.lock().unwrap_or_else(PoisonError::into_inner);
                handler.error(&e, &mut t.err)
            }
        };
        if let Some(f) = stop.or_else(|| counts.tell_overruns(&rx.stats(), handler, &term)) {
            break f;
        }
        match next {
            Next::Skip => {}
            Next::Stop(f) => break f,
            Next::Print => {
                let mut t = term.lock().unwrap_or_else(PoisonError::into_inner);
                if let (false, Some((header, _))) = (counts.xml_open.load(Ordering::SeqCst), xml) {
                    counts.xml_open.store(true, Ordering::SeqCst);
                    t.out.text(header);
                }
                // Written out when the buffer is full or the queue empty (at once on a
                // terminal).
                t.out.line(format_args!("{line}"));
                if t.out.broken {
                    // Only reached if SIGPIPE is ignored: the reader went away.
                    break Fail::other("");
                }
                counts.shown.fetch_add(1, Ordering::SeqCst);
            }
        }
    };
    let mut t = term.lock().unwrap_or_else(PoisonError::into_inner);
    Ok((std::mem::replace(&mut *t, nowhere()), fail))
}

/// Writes the line of conntrack event `kind` for the entry `view` shows, as `conntrack -E`
/// prints it, with label names from `labels` and the requester in `userspace`; read from
/// the message's bytes (nothing copied or allocated for it).
///
/// # Errors
/// An attribute the line prints is malformed.
pub fn write_ct_line(
    line: &mut String,
    view: &conntrack_codec::ct::Conntrack<'_>,
    kind: conntrack_codec::ct::EventKind,
    out: &Output,
    labels: Option<&Connlabels>,
    userspace: Option<Userspace<'_>>,
) -> Result<(), conntrack_codec::Error> {
    use std::fmt::Write as _;
    let names = crate::out::label_names(labels);
    let l = CtLine::from_view(view, Origin::Event(kind), out, names)?.userspace(userspace);
    let _ = write!(line, "{l}");
    Ok(())
}

/// Writes the line of an expectation event, as `conntrack -E expect` prints it.
///
/// # Errors
/// The event's expectation is malformed.
pub fn write_exp_line(
    line: &mut String,
    event: &ExpEvent<'_>,
    out: &Output,
) -> Result<(), conntrack_codec::Error> {
    use std::fmt::Write as _;
    let l = ExpLine::from_view(&event.exp, Some(event.kind), out)?;
    let _ = write!(line, "{l}");
    Ok(())
}

const ENOBUFS_WARNING_TEXT: &str = "WARNING: We have hit ENOBUFS! We are losing events.\nThis message means that the current netlink socket buffer size is too small.\nPlease, check --buffer-size in conntrack(8) manpage.";
const ENOBUFS_WARNING: &[u8] = ENOBUFS_WARNING_TEXT.as_bytes();

/// `conntrack -E`'s part: 1.4.7's filters and lines.
struct Conntrack<'a> {
    c: &'a Cmd,
    nf: NetFilter,
    cur: Tmpl,
    check: bool,
    labelmap: Option<&'a Connlabels>,
    /// The entry of the event, for the filters the kernel cannot apply (one value, reused).
    entry: ConntrackRepr,
}

impl Handler for Conntrack<'_> {
    fn conntrack(&mut self, item: CtItem<'_, '_>, line: &mut String) -> Next {
        let CtItem {
            event,
            out,
            userspace,
        } = item;
        if self.c.command == cmd::EXP_EVENT {
            return Next::Skip;
        }
        if self.c.family != 0 && self.c.family != event.entry.family() {
            return Next::Skip;
        }
        // Only a filter the kernel cannot apply needs the entry as plain data.
        if self.check
            && (self.entry.read_view(&event.entry).is_err()
                || filter::nfct_filter(self.c, &self.nf, &Obj::from_entry(&self.entry), &self.cur))
        {
            return Next::Skip;
        }
        match write_ct_line(
            line,
            &event.entry,
            event.kind,
            out,
            self.labelmap,
            userspace,
        ) {
            Ok(()) => Next::Print,
            Err(_) => Next::Skip,
        }
    }

    fn expect(&mut self, event: &ExpEvent<'_>, out: &Output, line: &mut String) -> Next {
        if self.c.command != cmd::EXP_EVENT || write_exp_line(line, event, out).is_err() {
            return Next::Skip;
        }
        Next::Print
    }

    fn lost(&mut self, _report: Option<&Lost>, overruns: u64, err: &mut dyn Write) -> Next {
        if overruns == 0 {
            // The drop counter's reports: 1.4.7 knows of losses only by ENOBUFS.
            return Next::Skip;
        }
        if self.c.command == cmd::EXP_EVENT {
            // `nfexp_catch` fails on ENOBUFS, and 1.4.7 reports it.
            return Next::Stop(Fail::other(format!(
                "Operation failed: {}",
                err2str(nix::libc::ENOBUFS, self.c.command)
            )));
        }
        // One warning per overrun, as 1.4.7 prints one per ENOBUFS from recvmsg.
        for _ in 0..overruns {
            let _ = err.write_all(ENOBUFS_WARNING);
            let _ = err.write_all(b"\n");
        }
        Next::Skip
    }

    fn error(&mut self, error: &IoError, _err: &mut dyn Write) -> Next {
        match error {
            // A message or datagram that cannot be read: the stream goes on.
            IoError::Codec { .. } | IoError::Truncated { .. } => Next::Skip,
            e => {
                let errno = e.errno().map_or(nix::libc::EIO, |e| e as i32);
                Next::Stop(Fail::other(if self.c.command == cmd::EXP_EVENT {
                    format!("Operation failed: {}", err2str(errno, self.c.command))
                } else {
                    format!(
                        "failed to received netlink event: {}",
                        crate::cnum::strerror(errno)
                    )
                }))
            }
        }
    }
}

/// The groups of `-E` and `-e`.
fn groups(c: &Cmd) -> Groups {
    if c.command == cmd::EXP_EVENT {
        return Groups::EXPECT;
    }
    if c.options & opt::EVENT_MASK == 0 {
        return Groups::CONNTRACK;
    }
    let mut g = Groups::NONE;
    if c.event_mask & ev::NEW != 0 {
        g |= Groups::CONNTRACK_NEW;
    }
    if c.event_mask & ev::UPD != 0 {
        g |= Groups::CONNTRACK_UPDATE;
    }
    if c.event_mask & ev::DEL != 0 {
        g |= Groups::CONNTRACK_DESTROY;
    }
    g
}

/// Runs `-E` or `-E expect` until a signal ends the program.
///
/// # Errors
/// The failure to report: the socket cannot be opened or read.
pub fn run(ctx: &mut Ctx, c: &mut Cmd, k: &mut dyn Kernel) -> Result<(), Fail> {
    let expect = c.command == cmd::EXP_EVENT;
    let events = k.events(groups(c)).map_err(|e| {
        if expect {
            return Fail::other("Can't open handler");
        }
        // 1.4.7 says which call failed first (perror), then that it could not open.
        if let IoError::Sys { call, errno } = &e {
            let what = if call.starts_with("socket") {
                "mnl_socket_open"
            } else {
                "mnl_socket_bind"
            };
            let line = format!("{what}: {}", crate::cnum::strerror(*errno as i32));
            ctx.term.err_line(line.as_bytes());
        }
        Fail::other("Can't open netlink socket")
    })?;
    // `-b` sizes the receive thread's queue too: at least as many events as the socket's
    // queue of that size holds (the kernel counts about 1 KiB per event of the doubled size).
    let mut queue = Receiver::DEFAULT_CAPACITY;
    if !expect && c.options & opt::BUFFERSIZE != 0 {
        let size = usize::try_from(c.buffer_size).unwrap_or(0);
        let got = events.set_rcvbuf(size).unwrap_or(0);
        let line = format!("NOTICE: Netlink socket buffer size has been set to {got} bytes.");
        ctx.term.err_line(line.as_bytes());
        queue = queue.max(size / Receiver::SLOT_BYTES);
    }
    let nf = if expect {
        NetFilter::default()
    } else {
        filter::filter_init(c)?
    };
    let mask = ctx.g.output_mask;
    let base = if expect {
        ctx.exp_output()
    } else {
        ctx.output(true)
    };
    let xml = (base.style == Style::Xml).then_some(if expect {
        (XML_EXP_HEADER, XML_EXP_FOOTER)
    } else {
        (XML_HEADER, XML_FOOTER)
    });
    let what = if expect {
        "expectation events"
    } else {
        "flow events"
    };
    let settings = Settings {
        out: base,
        xml,
        timestamp: mask & o::TMS != 0,
        summary: Box::new(move |tally: &Tally| {
            // The warnings still owed: overruns the receive thread met while the lines
            // before them waited to be printed (1.4.7 warns as it meets them).
            let mut text = String::new();
            if !expect {
                for _ in 0..tally.overruns_untold {
                    text.push_str(ENOBUFS_WARNING_TEXT);
                    text.push('\n');
                }
            }
            text.push_str(&format!(
                "conntrack v1.4.7 (conntrack-tools): {} {what} have been shown.",
                tally.shown as i32
            ));
            text
        }),
        queue,
        // 1.4.7 warns once per ENOBUFS: every loss stays the kernel's.
        when_full: WhenFull::Wait,
    };
    let cur = ctx.cur.clone();
    let mut handler = Conntrack {
        c,
        nf,
        check: filter::needs_filter(c, &cur),
        cur,
        labelmap: ctx.g.labelmap.as_ref(),
        entry: ConntrackRepr::default(),
    };
    let term = std::mem::replace(&mut ctx.term, nowhere());
    match run_loop(events, settings, term, &mut handler) {
        Ok((term, fail)) => {
            ctx.term = term;
            Err(fail)
        }
        Err((term, _)) => {
            ctx.term = term;
            Err(Fail::other("Can't open handler"))
        }
    }
}
