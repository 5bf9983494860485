//! Running a parsed command (`do_command_ct`): the requests conntrack-tools 1.4.7 makes,
//! with the same effect on the table, the same output and the same errors, but with the
//! filters pushed to the kernel where it can apply them and many-entry changes sent in
//! bulk.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::ops::ControlFlow;

use conntrack_codec::ct::request::{self, Key};
use conntrack_codec::ct::{ConntrackRepr, Tuple};
use conntrack_codec::exp::request::ExpKey;
use conntrack_codec::exp::ExpectRepr;
use conntrack_codec::fmt::{
    CtLine, ExpLine, ExpStatsCpuLine, Origin, Output, StatsCpuLine, Style, XML_EXP_FOOTER,
    XML_EXP_HEADER, XML_FOOTER, XML_HEADER,
};
use conntrack_codec::labels::LabelNames;
use conntrack_codec::nfnl::{ct_msg, msg_type, NfGenMsg, Subsystem};
use conntrack_codec::nl::flags;
use conntrack_io::{Acks, Error as IoError, Socket};
use nix::libc;

use crate::cnum::{self, strerror};
use crate::filter::{self, NetFilter, Push};
use crate::model::{has_ports, nfct_cmp, Bitmask, Cmp, Obj, Tmpl, Tup};
use crate::out::Out;
use crate::parse::{cmd, opt, out as o, Cmd, Fail, Globals, Table};

/// The bulk window for deletes and updates: requests in flight.
const WINDOW: usize = 1024;
/// Entries handed to the deleting thread at a time.
const DELETE_CHUNK: usize = 2048;
/// The receive queue for bulk deletes and updates.
const BULK_RCVBUF: usize = 4 << 20;

/// What lives across the commands of one run.
#[derive(Debug, Default)]
pub struct Ctx {
    /// The parse-time globals (output flags, label map, last protocol).
    pub g: Globals,
    /// Entries shown or changed (a global counter in 1.4.7).
    pub counter: u64,
    /// The XML header was printed and the footer is due.
    pub xml_open: bool,
    /// Standard output.
    pub out: Out,
    /// `argv[0]`.
    pub progname: String,
    /// The template of the last command parsed (1.4.7's `cur_tmpl`: with `-R`, the label
    /// filter and the mark of the last line apply to every line).
    pub cur: Tmpl,
}

/// `err2str`: the tool's wording of a kernel error for a command.
pub fn err2str(err: i32, command: u32) -> String {
    let table: [(u32, i32, &str); 10] = [
        (cmd::CT_LIST, 524, "function not implemented"),
        (0xFFFF, libc::EINVAL, "invalid parameters"),
        (
            cmd::CT_CREATE,
            libc::EEXIST,
            "Such conntrack exists, try -U to update",
        ),
        (
            cmd::CT_CREATE | cmd::CT_GET | cmd::CT_DELETE | cmd::CT_ADD,
            libc::ENOENT,
            "such conntrack doesn't exist",
        ),
        (
            cmd::CT_CREATE | cmd::CT_GET | cmd::CT_ADD,
            libc::ENOMEM,
            "not enough memory",
        ),
        (cmd::CT_GET, libc::EAFNOSUPPORT, "protocol not supported"),
        (
            cmd::CT_CREATE | cmd::CT_ADD,
            libc::ETIME,
            "conntrack has expired",
        ),
        (cmd::EXP_CREATE, libc::ENOENT, "master conntrack not found"),
        (cmd::EXP_CREATE, libc::EINVAL, "invalid parameters"),
        (
            !0,
            libc::EPERM,
            "sorry, you must be root or get CAP_NET_ADMIN capability to do this",
        ),
    ];
    table
        .iter()
        .find(|(mask, e, _)| mask & command != 0 && *e == err)
        .map_or_else(|| strerror(err), |(_, _, m)| (*m).to_string())
}

/// The errno of a socket-layer error, when it has one.
fn errno_of(e: &IoError) -> Option<i32> {
    match e {
        IoError::Kernel(k) => Some(k.errno as i32),
        IoError::Sys { errno, .. } => Some(*errno as i32),
        IoError::Overrun => Some(libc::ENOBUFS),
        IoError::DumpInterrupted => Some(libc::EINTR),
        // What the library refuses before sending, the kernel refuses with EINVAL.
        IoError::Build(conntrack_codec::Error::ImpossibleRequest(_)) => Some(libc::EINVAL),
        _ => None,
    }
}

/// `Operation failed: ...` for a socket-layer error.
fn failed(e: &IoError, command: u32) -> Fail {
    match errno_of(e) {
        Some(errno) => Fail::other(format!("Operation failed: {}", err2str(errno, command))),
        None => Fail::other(format!("Operation failed: {e}")),
    }
}

fn build_failed(errno: i32, command: u32) -> Fail {
    Fail::other(format!("Operation failed: {}", err2str(errno, command)))
}

/// The time fields of an [`Output`].
pub fn clock(out: &mut Output) {
    let now = conntrack_examples::now_secs();
    out.now = now;
    out.utc_offset = conntrack_examples::utc_offset(now);
}

impl Ctx {
    /// The output options of the conntrack lines of a command.
    pub fn output(&self, ktimestamp: bool) -> Output {
        let m = self.g.output_mask;
        let mut out = Output {
            style: if m & o::SAVE != 0 {
                Style::Save
            } else if m & o::XML != 0 {
                Style::Xml
            } else {
                Style::Default
            },
            extended: m & o::EXT != 0,
            id: m & o::ID != 0,
            ktimestamp: ktimestamp && m & o::KTMS != 0,
            labels: self.g.labelmap.is_some(),
            ..Output::default()
        };
        clock(&mut out);
        out
    }

    /// Prints one entry; `header` says whether this command opens an XML document.
    fn print(&mut self, e: &ConntrackRepr, origin: Origin, out: &Output, header: bool) {
        if header && out.style == Style::Xml && !self.xml_open {
            self.xml_open = true;
            self.out.text(XML_HEADER);
        }
        let labels: &dyn LabelNames = match &self.g.labelmap {
            Some(m) => m,
            None => &(),
        };
        self.out
            .line(format_args!("{}", CtLine::new(e, origin, out, labels)));
    }

    /// `print_stats`: the summary line, and whether the command counts as failed.
    pub fn print_stats(&self, c: &Cmd) -> bool {
        let msg = match c.command {
            cmd::CT_LIST | cmd::CT_GET => "flow entries have been shown.",
            cmd::CT_CREATE => "flow entries have been created.",
            cmd::CT_UPDATE => "flow entries have been updated.",
            cmd::CT_DELETE => "flow entries have been deleted.",
            cmd::CT_EVENT => "flow events have been shown.",
            cmd::EXP_LIST | cmd::EXP_DELETE => "expectations have been shown.",
            cmd::CT_ADD => "flow entries have been added.",
            _ => return true,
        };
        eprintln!(
            "conntrack v1.4.7 (conntrack-tools): {} {msg}",
            self.counter as i32
        );
        self.counter != 0 || c.command & (cmd::CT_LIST | cmd::EXP_LIST | cmd::CT_ADD) != 0
    }

    /// Runs one command.
    ///
    /// # Errors
    /// The failure to report, as the tool would.
    pub fn run(&mut self, c: &mut Cmd, sock: &mut Socket) -> Result<(), Fail> {
        match c.command {
            cmd::CT_LIST => self.list(c, sock),
            cmd::EXP_LIST => self.exp_list(c, sock, false),
            cmd::EXP_COUNT => self.exp_list(c, sock, true),
            cmd::CT_CREATE | cmd::CT_ADD => self.create(c, sock),
            cmd::EXP_CREATE => self.exp_create(c, sock),
            cmd::CT_UPDATE => self.update(c, sock),
            cmd::CT_DELETE => self.delete(c, sock),
            cmd::EXP_DELETE => {
                let key = ExpKey::tuple(exp_tuple(&c.tmpl.ct.orig, &c.tmpl.ct));
                sock.exp_delete(&key).map_err(|e| failed(&e, c.command))
            }
            cmd::CT_GET => self.get(c, sock),
            cmd::EXP_GET => {
                let key = ExpKey::tuple(exp_tuple(&c.tmpl.ct.orig, &c.tmpl.ct));
                let exp = sock.exp_get(&key).map_err(|e| failed(&e, c.command))?;
                let out = self.exp_output(c);
                self.out
                    .line(format_args!("{}", ExpLine::new(&exp, None, &out)));
                self.counter += 1;
                Ok(())
            }
            cmd::CT_FLUSH => {
                let family = c.family;
                let res = sock.execute(|w, seq| {
                    w.message(
                        msg_type(Subsystem::Ctnetlink, ct_msg::DELETE),
                        0,
                        seq,
                        0,
                        |w| {
                            NfGenMsg {
                                family,
                                version: 0,
                                res_id: 0,
                            }
                            .emit(w)
                        },
                    )
                    .map(drop)
                });
                eprintln!(
                    "conntrack v1.4.7 (conntrack-tools): connection tracking table has been emptied."
                );
                res.map_err(|e| failed(&e, c.command))
            }
            cmd::EXP_FLUSH => {
                let res = sock.exp_flush(0);
                eprintln!(
                    "conntrack v1.4.7 (conntrack-tools): expectation table has been emptied."
                );
                res.map_err(|e| failed(&e, c.command))
            }
            cmd::CT_EVENT | cmd::EXP_EVENT => crate::events::run(self, c, sock),
            cmd::CT_COUNT => match sock.count() {
                Ok(n) => {
                    self.out.line(format_args!("{}", n as i32));
                    Ok(())
                }
                Err(e) => {
                    // 1.4.7 falls back to /proc, prints what it finds there, and still
                    // reports the netlink failure.
                    const P: &str = "/proc/sys/net/netfilter/nf_conntrack_count";
                    let text = std::fs::read_to_string(P)
                        .map_err(|_| Fail::other(format!("Can't open {P}")))?;
                    let n = cnum::strtoll(text.trim_start());
                    if n.1 == 0 {
                        return Err(Fail::other(format!("Can't read {P}")));
                    }
                    self.out.line(format_args!("{}", n.0 as i32));
                    Err(failed(&e, c.command))
                }
            },
            cmd::CT_STATS => match sock.stats_per_cpu() {
                Ok(stats) => {
                    for s in &stats {
                        self.out.line(format_args!("{}", StatsCpuLine(s)));
                    }
                    Ok(())
                }
                Err(e) => {
                    self.proc_stats()?;
                    Err(failed(&e, c.command))
                }
            },
            cmd::EXP_STATS => match sock.exp_stats_per_cpu() {
                Ok(stats) => {
                    for s in &stats {
                        self.out.line(format_args!("{}", ExpStatsCpuLine(s)));
                    }
                    Ok(())
                }
                Err(e) => {
                    self.proc_stats()?;
                    Err(failed(&e, c.command))
                }
            },
            cmd::CT_VERSION => {
                self.out.text("conntrack v1.4.7 (conntrack-tools)\n");
                Ok(())
            }
            cmd::CT_HELP => {
                self.out.text(&crate::usage::usage(&self.progname));
                if c.options & opt::PROTO != 0 {
                    if let Some(h) = self.g.handler {
                        let name = if h == crate::proto::Proto::Unknown {
                            crate::parse::protocols()
                                .into_iter()
                                .find(|(_, n, _)| *n == c.protonum)
                                .map_or_else(|| h.name().to_string(), |(name, _, _)| name)
                        } else {
                            h.name().to_string()
                        };
                        self.out.text(&format!("Proto `{name}' help:\n"));
                        self.out.text(h.help());
                    }
                }
                Ok(())
            }
            _ => {
                self.out.text(&crate::usage::usage(&self.progname));
                Ok(())
            }
        }
    }

    /// The statistics of `/proc/net/stat/nf_conntrack`, which 1.4.7 prints when netlink
    /// fails: the names from the first line, one line of hex values per CPU.
    fn proc_stats(&mut self) -> Result<(), Fail> {
        let fail = || Fail::other("Can't open /proc interface");
        let text = std::fs::read_to_string("/proc/net/stat/nf_conntrack").map_err(|_| fail())?;
        let mut lines = text.lines();
        let names: Vec<&str> = lines.next().ok_or_else(fail)?.split_whitespace().collect();
        let mut values = vec![0u32; names.len()];
        let mut cpu = 0u32;
        for line in lines {
            for (v, token) in values.iter_mut().zip(line.split_whitespace()) {
                *v = cnum::strtoull(token, 16).0 as u32;
            }
            let mut l = format!("cpu={cpu:<4}\t");
            for (name, v) in names.iter().zip(&values) {
                let _ = write!(l, "{name}={v} ");
            }
            self.out.line(format_args!("{l}"));
            cpu += 1;
        }
        if cpu == 0 {
            return Err(fail());
        }
        Ok(())
    }

    fn list(&mut self, c: &mut Cmd, sock: &mut Socket) -> Result<(), Fail> {
        let nf = match c.table {
            Table::Dying | Table::Unconfirmed => NetFilter::default(),
            _ => {
                if c.options & opt::COMPARISON != 0 && c.options & opt::ZERO != 0 {
                    return Err(Fail::param("Can't use -z with filtering parameters"));
                }
                filter::filter_init(c)?
            }
        };
        let out = self.output(true);
        let check = filter::needs_filter(c, &self.cur);
        let cur = self.cur.clone();
        let kf = filter::kernel_filter(c, Push::List);
        let mut error = None;
        let c2: &Cmd = c;
        let cb = |view: conntrack_codec::ct::Conntrack<'_>| {
            let e = match ConntrackRepr::try_from(&view) {
                Ok(e) => e,
                Err(err) => {
                    error = Some(Fail::other(format!("Operation failed: {err}")));
                    return ControlFlow::Break(());
                }
            };
            if check && filter::nfct_filter(c2, &nf, &Obj::from_entry(&e), &cur) {
                return ControlFlow::Continue(());
            }
            self.print(&e, Origin::Dump, &out, true);
            self.counter += 1;
            ControlFlow::Continue(())
        };
        let res = match c2.table {
            Table::Dying => sock.list_dying(cb),
            Table::Unconfirmed => sock.list_unconfirmed(cb),
            _ if c2.options & opt::ZERO != 0 => sock.list_and_zero(&kf, cb),
            _ => sock.list(&kf, cb),
        };
        if self.xml_open {
            self.out.text(XML_FOOTER);
            self.out.flush();
        }
        if let Some(e) = error {
            return Err(e);
        }
        let summary = res.map_err(|e| failed(&e, c2.command))?;
        if summary.interrupted {
            return Err(build_failed(libc::EINTR, c2.command));
        }
        Ok(())
    }

    fn get(&mut self, c: &mut Cmd, sock: &mut Socket) -> Result<(), Fail> {
        let mut req = c.tmpl.ct.build().map_err(|e| build_failed(e, c.command))?;
        req.family = c.family;
        let reply = sock
            .request(
                |w, seq| {
                    req.emit(w, msg_type(Subsystem::Ctnetlink, ct_msg::GET), 0, seq)
                        .map(drop)
                },
                |nf| ConntrackRepr::parse(&nf),
            )
            .map_err(|e| failed(&e, c.command))?;
        let e = reply.map_err(|err| Fail::other(format!("Operation failed: {err}")))?;
        let cur = self.cur.clone();
        if filter::nfct_filter(c, &NetFilter::default(), &Obj::from_entry(&e), &cur) {
            return Ok(());
        }
        let out = self.output(true);
        self.print(&e, Origin::Dump, &out, true);
        self.counter += 1;
        Ok(())
    }

    fn create(&mut self, c: &mut Cmd, sock: &mut Socket) -> Result<(), Fail> {
        let mut ct = c.tmpl.ct.clone();
        let orig = c.options & opt::ORIG != 0;
        let repl = c.options & opt::REPL != 0;
        if orig && !repl {
            ct.setup_reply();
        } else if !orig && repl {
            ct.setup_original();
        }
        if c.options & opt::MARK != 0 {
            ct.mark = Some(c.tmpl.mark.0);
        }
        if c.options & opt::ADD_LABEL != 0 {
            ct.labels = c.tmpl.label_modify.clone();
        }
        let mut e = ct.build().map_err(|err| build_failed(err, c.command))?;
        e.family = c.family;
        let fl = flags::CREATE | flags::EXCL;
        match sock.execute(|w, seq| {
            e.emit(w, msg_type(Subsystem::Ctnetlink, ct_msg::NEW), fl, seq)
                .map(drop)
        }) {
            Ok(()) => {
                self.counter += 1;
                Ok(())
            }
            Err(err) if c.command == cmd::CT_ADD && errno_of(&err) == Some(libc::EEXIST) => Ok(()),
            Err(err) => Err(failed(&err, c.command)),
        }
    }

    /// `-D`: the entries the dump finds go, in chunks, to a second socket on a thread of
    /// its own, which deletes them in bulk while the dump goes on (as 1.4.7 deletes them
    /// between the reads of its dump, one request at a time); then the deleted entries are
    /// printed in the order of the dump.
    fn delete(&mut self, c: &mut Cmd, sock: &mut Socket) -> Result<(), Fail> {
        let nf = filter::filter_init(c)?;
        let out = self.output(false);
        let check = filter::needs_filter(c, &self.cur);
        let cur = self.cur.clone();
        let kf = filter::kernel_filter(c, Push::Delete);
        let mut text = String::new();
        let mut ends = Vec::new();
        let mut error = None;
        let c2: &Cmd = c;
        let labels: &dyn LabelNames = &();
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Key>>(8);
        let deleter = std::thread::spawn(move || delete_chunks(rx));
        let mut chunk = Vec::with_capacity(DELETE_CHUNK);
        let mut deleter_gone = false;
        let res = sock.list(&kf, |view| {
            let e = match ConntrackRepr::try_from(&view) {
                Ok(e) => e,
                Err(err) => {
                    error = Some(Fail::other(format!("Operation failed: {err}")));
                    return ControlFlow::Break(());
                }
            };
            if check && filter::nfct_filter(c2, &nf, &Obj::from_entry(&e), &cur) {
                return ControlFlow::Continue(());
            }
            chunk.push(Key {
                orig: e.orig,
                reply: None,
                zone: e.zone,
                id: None,
            });
            let _ = write!(text, "{}", CtLine::new(&e, Origin::Delete, &out, labels));
            ends.push(text.len());
            if chunk.len() >= DELETE_CHUNK && tx.send(std::mem::take(&mut chunk)).is_err() {
                deleter_gone = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        if !chunk.is_empty() && !deleter_gone {
            let _ = tx.send(chunk);
        }
        drop(tx);
        let results = deleter
            .join()
            .map_err(|_| build_failed(libc::EIO, c2.command))?
            .map_err(|e| failed(&e, c2.command))?;
        if let Some(e) = error {
            return Err(e);
        }
        // ctnetlink never marks its dumps interrupted; a table that changes meanwhile is
        // the race 1.4.7 has too.
        let _ = res.map_err(|e| failed(&e, c2.command))?;
        let mut start = 0;
        for (i, r) in results.into_iter().enumerate() {
            let end = ends.get(i).copied().unwrap_or(start);
            match r {
                Some(Ok(())) => {
                    self.out.line(format_args!("{}", &text[start..end]));
                    self.counter += 1;
                }
                Some(Err(e)) if errno_of(&e) == Some(libc::ENOENT) => {}
                Some(Err(e)) => return Err(failed(&e, c2.command)),
                None => return Err(build_failed(libc::EIO, c2.command)),
            }
            start = end;
        }
        Ok(())
    }

    fn update(&mut self, c: &mut Cmd, sock: &mut Socket) -> Result<(), Fail> {
        let nf = filter::filter_init(c)?;
        let cur = self.cur.clone();
        let kf = filter::kernel_filter(c, Push::Update);
        let mut reqs: Vec<ConntrackRepr> = Vec::new();
        let mut error = None;
        let c2: &Cmd = c;
        let res = sock.list(&kf, |view| {
            let e = match ConntrackRepr::try_from(&view) {
                Ok(e) => e,
                Err(err) => {
                    error = Some(Fail::other(format!("Operation failed: {err}")));
                    return ControlFlow::Break(());
                }
            };
            let obj = Obj::from_entry(&e);
            if filter::update_filter(c2, &nf, &obj, &cur) {
                return ControlFlow::Continue(());
            }
            let tmp = update_object(c2, &obj, &cur);
            if nfct_cmp(&tmp, &obj, Cmp::AllMask) {
                return ControlFlow::Continue(());
            }
            match tmp.build() {
                Ok(mut r) => {
                    r.family = c2.family;
                    reqs.push(r);
                    ControlFlow::Continue(())
                }
                Err(errno) => {
                    error = Some(update_fatal(errno));
                    ControlFlow::Break(())
                }
            }
        });
        if let Some(e) = error {
            return Err(e);
        }
        let _ = res.map_err(|e| failed(&e, c2.command))?;
        let mut results: Vec<Option<Result<(), IoError>>> = vec![None; reqs.len()];
        let kind = msg_type(Subsystem::Ctnetlink, ct_msg::NEW);
        bulk_queue(sock);
        sock.bulk_with_acks(
            reqs.len(),
            WINDOW,
            Acks::PerDatagram,
            |i, w, seq| match reqs.get(i) {
                Some(r) => r.emit(w, kind, 0, seq).map(drop),
                None => Err(conntrack_codec::Error::InvalidValue("bulk index")),
            },
            |i, r| {
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(r);
                }
            },
        )
        .map_err(|e| failed(&e, c2.command))?;
        // conntrack 1.4.7 sends, for each entry, the update then a GET, both asking for an
        // acknowledgement, and reads one datagram after each: the replies fall out of step,
        // so only some GET replies are printed, and an error is reported by the request that
        // happens to read it. Replay that reading on the same replies.
        let out = self.output(false);
        let mut queue: VecDeque<Reply> = VecDeque::new();
        for (i, r) in results.into_iter().enumerate() {
            let failed_update = match r {
                Some(Ok(())) => {
                    queue.push_back(Reply::Ack);
                    false
                }
                Some(Err(e)) => {
                    queue.push_back(Reply::Err(errno_of(&e).unwrap_or(libc::EIO)));
                    true
                }
                None => {
                    queue.push_back(Reply::Err(libc::EIO));
                    true
                }
            };
            // The update's read: an error is printed, and the GET is sent anyway.
            if let Some(Reply::Err(errno)) = queue.pop_front() {
                eprintln!("Operation failed: {}", err2str(errno, cmd::CT_UPDATE));
            }
            // The GET of this entry: its reply (the entry, then an acknowledgement) is
            // fetched when a read finds it; a GET that fails (as it does when the update
            // could not find the entry) answers with one error.
            let get_error = if failed_update {
                reqs.get(i)
                    .and_then(|req| get_entry(sock, req, c2.family).err())
            } else {
                None
            };
            match get_error {
                Some(errno) => queue.push_back(Reply::Err(errno)),
                None => {
                    queue.push_back(Reply::Entry(i));
                    queue.push_back(Reply::Ack);
                }
            }
            match queue.pop_front() {
                Some(Reply::Entry(m)) => {
                    if let Some(req) = reqs.get(m) {
                        if let Ok(Some(e)) = get_entry(sock, req, c2.family) {
                            self.print(&e, Origin::Dump, &out, false);
                        }
                    }
                }
                Some(Reply::Err(libc::ENOENT)) => continue,
                Some(Reply::Err(errno)) => {
                    return Err(Fail::other(format!(
                        "Operation failed: {}",
                        err2str(errno, cmd::CT_UPDATE)
                    )))
                }
                _ => {}
            }
            self.counter += 1;
        }
        Ok(())
    }

    fn exp_output(&self, c: &Cmd) -> Output {
        let m = self.g.output_mask;
        let mut out = Output {
            style: if m & o::XML != 0 {
                Style::Xml
            } else {
                Style::Default
            },
            ..Output::default()
        };
        let _ = c;
        clock(&mut out);
        out
    }

    fn exp_list(&mut self, c: &mut Cmd, sock: &mut Socket, count_only: bool) -> Result<(), Fail> {
        let mut out = self.exp_output(c);
        let tms = self.g.output_mask & o::TMS != 0;
        let mut error = None;
        let res = sock.exp_list(c.family, |view| {
            if count_only {
                self.counter += 1;
                return ControlFlow::Continue(());
            }
            let e = match ExpectRepr::try_from(&view) {
                Ok(e) => e,
                Err(err) => {
                    error = Some(Fail::other(format!("Operation failed: {err}")));
                    return ControlFlow::Break(());
                }
            };
            if out.style == Style::Xml && !self.xml_open {
                self.xml_open = true;
                self.out.text(XML_EXP_HEADER);
            }
            if tms {
                out.event_time = Some(conntrack_examples::now_micros());
                clock(&mut out);
            }
            self.out
                .line(format_args!("{}", ExpLine::new(&e, None, &out)));
            self.counter += 1;
            ControlFlow::Continue(())
        });
        if self.xml_open {
            self.out.text(XML_EXP_FOOTER);
            self.out.flush();
        }
        if let Some(e) = error {
            return Err(e);
        }
        if count_only {
            self.out.line(format_args!("{}", self.counter as i32));
        }
        let _ = res.map_err(|e| failed(&e, c.command))?;
        Ok(())
    }

    fn exp_create(&mut self, c: &mut Cmd, sock: &mut Socket) -> Result<(), Fail> {
        let t = &c.tmpl;
        let exp = ExpectRepr {
            family: t.ct.orig.l3.unwrap_or(0),
            master: Some(exp_tuple(&t.ct.orig, &t.ct)),
            tuple: Some(exp_tuple(&t.exptuple.orig, &t.exptuple)),
            mask: Some(exp_tuple(&t.mask.orig, &t.mask)),
            timeout: t.exp_timeout,
            ..ExpectRepr::default()
        };
        sock.exp_create(&exp).map_err(|e| failed(&e, c.command))
    }
}

/// Deletes the entries of each chunk received, in bulk, on a socket of its own; returns
/// every entry's result in order.
fn delete_chunks(
    rx: std::sync::mpsc::Receiver<Vec<Key>>,
) -> Result<Vec<Option<Result<(), IoError>>>, IoError> {
    let mut sock = Socket::open()?;
    bulk_queue(&sock);
    let mut results: Vec<Option<Result<(), IoError>>> = Vec::new();
    for keys in rx {
        let base = results.len();
        results.resize(base + keys.len(), None);
        let slots = results.get_mut(base..).unwrap_or_default();
        sock.bulk_with_acks(
            keys.len(),
            WINDOW,
            Acks::PerDatagram,
            |i, w, seq| match keys.get(i) {
                Some(k) => request::delete(w, seq, k).map(drop),
                None => Err(conntrack_codec::Error::InvalidValue("bulk index")),
            },
            |i, r| {
                if let Some(slot) = slots.get_mut(i) {
                    *slot = Some(r);
                }
            },
        )?;
    }
    Ok(results)
}

/// Gives the socket's receive queue room for the answers of a bulk operation (the kernel
/// answers only failures and one request per datagram, but failures can be many).
fn bulk_queue(sock: &Socket) {
    let _ = sock.set_rcvbuf(BULK_RCVBUF);
}

/// A reply datagram of the modifier socket of 1.4.7's `-U`.
enum Reply {
    Ack,
    Err(i32),
    Entry(usize),
}

/// The failure to build an update request.
fn update_fatal(errno: i32) -> Fail {
    Fail::other(format!(
        "Operation failed: {}",
        err2str(errno, cmd::CT_UPDATE)
    ))
}

/// The GET of an updated entry by the request that updated it.
fn get_entry(
    sock: &mut Socket,
    req: &ConntrackRepr,
    family: u8,
) -> Result<Option<ConntrackRepr>, i32> {
    let mut req = req.clone();
    req.family = family;
    match sock.request(
        |w, seq| {
            req.emit(w, msg_type(Subsystem::Ctnetlink, ct_msg::GET), 0, seq)
                .map(drop)
        },
        |nf| ConntrackRepr::parse(&nf).ok(),
    ) {
        Ok(e) => Ok(e),
        Err(e) => Err(errno_of(&e).unwrap_or(libc::EIO)),
    }
}

/// The object 1.4.7's `-U` sends for an entry: the entry's original tuple, the template's
/// meta attributes, the new mark, status and labels.
fn update_object(c: &Cmd, e: &Obj, cur: &Tmpl) -> Obj {
    let t = &c.tmpl.ct;
    let mut tmp = Obj {
        // The library copies the original tuple without its zone.
        orig: Tup {
            zone: None,
            ..e.orig.clone()
        },
        icmp_type: e.icmp_type,
        icmp_code: e.icmp_code,
        icmp_id: e.icmp_id,
        repl: Tup::default(),
        // The meta attributes (from ATTR_TCP_STATE up) of the template.
        tcp_state: t.tcp_state,
        snat: t.snat,
        dnat: t.dnat,
        snat_port: t.snat_port,
        dnat_port: t.dnat_port,
        timeout: t.timeout,
        mark: t.mark,
        id: t.id,
        status: t.status,
        tcp_flags: t.tcp_flags,
        secmark: t.secmark,
        sctp_state: t.sctp_state,
        vtag: t.vtag,
        dccp_state: t.dccp_state,
        dccp_role: t.dccp_role,
        zone: t.zone,
        labels: t.labels.clone(),
        labels_mask: t.labels_mask.clone(),
        ..Obj::default()
    };
    if c.options & opt::MARK != 0 {
        let (value, mask) = cur.mark;
        tmp.mark = Some((e.mark.unwrap_or(0) & !mask) ^ value);
    }
    if c.options & opt::STATUS != 0 {
        tmp.status = Some(e.status.unwrap_or(0) | tmp.status.unwrap_or(0));
    }
    if c.options & (opt::ADD_LABEL | opt::DEL_LABEL) != 0 {
        let mut ctb = e.labels.clone();
        tmp.labels = ctb.clone();
        if c.options & opt::ADD_LABEL != 0 {
            match ctb.as_mut() {
                None => tmp.labels = cur.label_modify.clone(),
                Some(ctb) => {
                    let mut newmask = Bitmask::new(ctb.maxbit());
                    for i in 0..=ctb.maxbit() {
                        if cur.label_modify.as_ref().is_some_and(|m| m.test(i)) {
                            ctb.set(i);
                            newmask.set(i);
                        } else if ctb.test(i) {
                            ctb.unset(i);
                        }
                    }
                    tmp.labels = Some(ctb.clone());
                    tmp.labels_mask = Some(newmask);
                }
            }
        } else if let Some(ctb) = ctb.as_mut() {
            match &cur.label_modify {
                None => tmp.labels = Some(Bitmask::new(0)),
                Some(modify) => {
                    for i in 0..=ctb.maxbit() {
                        if modify.test(i) {
                            ctb.unset(i);
                        }
                    }
                    tmp.labels = Some(ctb.clone());
                    tmp.labels_mask = Some(modify.clone());
                }
            }
        }
    }
    tmp
}

/// A tuple as the expectation requests of libnetfilter_conntrack build it: addresses of
/// the family, the protocol number, and the protocol's ports or ICMP fields.
fn exp_tuple(t: &Tup, obj: &Obj) -> Tuple {
    let mut out = Tuple::default();
    let zero = match t.l3 {
        Some(2) => Some(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        Some(10) => Some(std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
        _ => None,
    };
    if let Some(z) = zero {
        out.src = Some(t.src.and_then(|a| a.ip()).unwrap_or(z));
        out.dst = Some(t.dst.and_then(|a| a.ip()).unwrap_or(z));
    }
    let proto = t.l4.unwrap_or(0);
    out.proto = Some(proto);
    match proto {
        1 => {
            out.icmp_code = Some(obj.icmp_code.unwrap_or(0));
            out.icmp_type = Some(obj.icmp_type.unwrap_or(0));
            out.icmp_id = Some(obj.icmp_id.unwrap_or(0));
        }
        58 => {
            out.icmpv6_code = Some(obj.icmp_code.unwrap_or(0));
            out.icmpv6_type = Some(obj.icmp_type.unwrap_or(0));
            out.icmpv6_id = Some(obj.icmp_id.unwrap_or(0));
        }
        p if has_ports(p) => {
            out.src_port = Some(t.sport.unwrap_or(0));
            out.dst_port = Some(t.dport.unwrap_or(0));
        }
        _ => {}
    }
    out
}
