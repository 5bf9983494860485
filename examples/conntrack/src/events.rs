//! The event loop that `conntrack -E` and `ctevents` share: receiving (in one place,
//! [`receive`]), the look-up of the requesting program, the clock of each line, writing each
//! line at once, and the end on SIGINT or SIGTERM (the XML footer if the header was printed,
//! a summary on stderr, exit status 0). What each program prints is its [`Handler`].
//!
//! [`run`] is `conntrack -E` and `-E expect`: the lines of 1.4.7, filtered as `-L` filters,
//! with ` [USERSPACE] portid=N progname=P` when a request caused the event, and one warning
//! per overrun of the receive queue.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use conntrack_codec::ct::ConntrackRepr;
use conntrack_codec::exp::ExpectRepr;
use conntrack_codec::fmt::{
    CtLine, ExpLine, Origin, Output, Style, Userspace, XML_EXP_FOOTER, XML_EXP_HEADER, XML_FOOTER,
    XML_HEADER,
};
use conntrack_io::{
    Connlabels, CtEvent, Error as IoError, Event, Events, ExpEvent, Groups, Lost, Prognames,
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
    /// `overruns` the number of overruns the kernel reported (`ENOBUFS`) since the
    /// previous item.
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
    /// Whether each line gets the time it was received (`-o timestamp`).
    pub timestamp: bool,
    /// The summary line printed on stderr at the end, from the numbers of events shown and
    /// lost.
    pub summary: Box<dyn Fn(u64, u64) -> String + Send>,
}

/// What the loop and the signal thread share.
#[derive(Default)]
struct Counts {
    shown: AtomicU64,
    lost: AtomicU64,
    xml_open: AtomicBool,
}

/// The next item of the stream: the one place where events are received.
///
/// # Errors
/// As [`Events::next`].
pub fn receive(events: &mut Events) -> Result<Option<Event<'_>>, IoError> {
    events.next()
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
    mut events: Events,
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
    } = settings;
    let caught = crate::signals::on_stop(move |_| {
        let mut t = t.lock().unwrap_or_else(PoisonError::into_inner);
        if let (true, Some((_, footer))) = (c.xml_open.load(Ordering::SeqCst), xml) {
            t.out.text(footer);
        }
        t.out.flush();
        let line = summary(
            c.shown.load(Ordering::SeqCst),
            c.lost.load(Ordering::SeqCst),
        );
        t.err_line(line.as_bytes());
        std::process::exit(0);
    });
    if let Err(e) = caught {
        // The reaction was dropped with the thread that was not started.
        let mut t = term.lock().unwrap_or_else(PoisonError::into_inner);
        return Err((std::mem::replace(&mut *t, nowhere()), e));
    }
    let mut prognames = Prognames::default();
    let mut line = String::new();
    let mut overruns = events.stats().overruns;
    let fail = loop {
        line.clear();
        let mut out = base;
        conntrack_io::clock::set_now(&mut out);
        if timestamp {
            out.event_time = Some(conntrack_io::clock::now_micros());
        }
        let next = match receive(&mut events) {
            Ok(Some(Event::Conntrack(ev))) => {
                let name = (ev.portid != 0).then(|| prognames.get(ev.portid));
                let item = CtItem {
                    event: &ev,
                    out: &out,
                    userspace: name.as_ref().map(|p| Userspace {
                        portid: ev.portid,
                        progname: p.as_deref(),
                    }),
                };
                handler.conntrack(item, &mut line)
            }
            Ok(Some(Event::Expect(ev))) => handler.expect(&ev, &out, &mut line),
            Ok(Some(Event::Lost(lost))) => {
                counts.lost.store(lost.total, Ordering::SeqCst);
                let mut t = term.lock().unwrap_or_else(PoisonError::into_inner);
                handler.lost(Some(&lost), 0, &mut t.err)
            }
            Ok(None) => Next::Skip,
            Err(e) => {
                let mut t = term.lock().unwrap_or_else(PoisonError::into_inner);
                handler.error(&e, &mut t.err)
            }
        };
        let new_overruns = events.stats().overruns.saturating_sub(overruns);
        if new_overruns > 0 {
            overruns = overruns.saturating_add(new_overruns);
            let mut t = term.lock().unwrap_or_else(PoisonError::into_inner);
            if let Next::Stop(f) = handler.lost(None, new_overruns, &mut t.err) {
                break f;
            }
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
                t.out.line(format_args!("{line}"));
                t.out.flush();
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

/// Writes the line of conntrack event `kind` for `entry`, as `conntrack -E` prints it, with
/// label names from `labels` and the requester in `userspace`.
pub fn write_ct_line(
    line: &mut String,
    entry: &ConntrackRepr,
    kind: conntrack_codec::ct::EventKind,
    out: &Output,
    labels: Option<&Connlabels>,
    userspace: Option<Userspace<'_>>,
) {
    use std::fmt::Write as _;
    let names = crate::out::label_names(labels);
    let l = CtLine::new(entry, Origin::Event(kind), out, names).userspace(userspace);
    let _ = write!(line, "{l}");
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
    let exp = ExpectRepr::try_from(&event.exp)?;
    let _ = write!(line, "{}", ExpLine::new(&exp, Some(event.kind), out));
    Ok(())
}

const ENOBUFS_WARNING: &[u8] = b"WARNING: We have hit ENOBUFS! We are losing events.\nThis message means that the current netlink socket buffer size is too small.\nPlease, check --buffer-size in conntrack(8) manpage.";

/// `conntrack -E`'s part: 1.4.7's filters and lines.
struct Conntrack<'a> {
    c: &'a Cmd,
    nf: NetFilter,
    cur: Tmpl,
    check: bool,
    labelmap: Option<&'a Connlabels>,
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
        let Ok(entry) = ConntrackRepr::try_from(&event.entry) else {
            return Next::Skip;
        };
        if self.c.family != 0 && self.c.family != entry.family {
            return Next::Skip;
        }
        if self.check && filter::nfct_filter(self.c, &self.nf, &Obj::from_entry(&entry), &self.cur)
        {
            return Next::Skip;
        }
        write_ct_line(line, &entry, event.kind, out, self.labelmap, userspace);
        Next::Print
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
    if !expect && c.options & opt::BUFFERSIZE != 0 {
        let size = usize::try_from(c.buffer_size).unwrap_or(0);
        let got = events.set_rcvbuf(size).unwrap_or(0);
        let line = format!("NOTICE: Netlink socket buffer size has been set to {got} bytes.");
        ctx.term.err_line(line.as_bytes());
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
        summary: Box::new(move |shown, _lost| {
            format!(
                "conntrack v1.4.7 (conntrack-tools): {} {what} have been shown.",
                shown as i32
            )
        }),
    };
    let cur = ctx.cur.clone();
    let mut handler = Conntrack {
        c,
        nf,
        check: filter::needs_filter(c, &cur),
        cur,
        labelmap: ctx.g.labelmap.as_ref(),
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
