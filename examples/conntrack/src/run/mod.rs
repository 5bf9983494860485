//! Running a parsed command (`do_command_ct`): the requests conntrack-tools 1.4.7 makes,
//! with the same effect on the table, the same output and the same errors, but with the
//! filters pushed to the kernel where it can apply them and many-entry changes sent in
//! bulk.

mod change;
mod expect;
mod list;
mod stats;

use conntrack_codec::ct::ConntrackRepr;
use conntrack_codec::fmt::{CtLine, Origin, Output, Style, XML_HEADER};
use conntrack_io::Error as IoError;
use nix::libc;

use crate::cnum::strerror;
use crate::kernel::Kernel;
use crate::model::Tmpl;
use crate::out::Term;
use crate::parse::{cmd, opt, out as o, Cmd, Fail, Globals};
use crate::sys::System;

/// What lives across the commands of one run.
pub struct Ctx {
    /// The parse-time globals (output flags, label map, last protocol, errno).
    pub g: Globals,
    /// Entries shown or changed (a global counter in 1.4.7).
    pub counter: u64,
    /// The XML header was printed and the footer is due.
    pub xml_open: bool,
    /// Standard output and standard error.
    pub term: Term,
    /// `argv[0]`.
    pub progname: Vec<u8>,
    /// The template of the last command parsed (1.4.7's `cur_tmpl`: with `-R`, the label
    /// filter and the mark of the last line apply to every line).
    pub cur: Tmpl,
    /// The files the program reads.
    pub sys: Box<dyn System + Send>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("counter", &self.counter)
            .field("xml_open", &self.xml_open)
            .finish_non_exhaustive()
    }
}

/// Prints one entry as a line, naming its labels from `labels`.
fn line(
    term: &mut Term,
    labels: &Option<conntrack_io::Connlabels>,
    e: &ConntrackRepr,
    origin: Origin,
    out: &Output,
) {
    let labels = crate::out::label_names(labels.as_ref());
    term.out
        .line(format_args!("{}", CtLine::new(e, origin, out, labels)));
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
pub fn errno_of(e: &IoError) -> Option<i32> {
    match e {
        IoError::DumpInterrupted => Some(libc::EINTR),
        // What the library refuses before sending, the kernel refuses with EINVAL.
        IoError::Build(conntrack_codec::Error::ImpossibleRequest(_)) => Some(libc::EINVAL),
        other => other.errno().map(|e| e as i32),
    }
}

/// `Operation failed: ...` for a socket-layer error.
pub fn failed(e: &IoError, command: u32) -> Fail {
    match errno_of(e) {
        Some(errno) => build_failed(errno, command),
        None => Fail::other(format!("Operation failed: {e}")),
    }
}

/// `Operation failed: ...` for an errno.
pub fn build_failed(errno: i32, command: u32) -> Fail {
    Fail::other(format!("Operation failed: {}", err2str(errno, command)))
}

impl Ctx {
    /// A context writing to `term` and reading from `sys`, as `progname`.
    pub fn new(progname: Vec<u8>, term: Term, sys: Box<dyn System + Send>) -> Ctx {
        Ctx {
            g: Globals::default(),
            counter: 0,
            xml_open: false,
            term,
            progname,
            cur: Tmpl::default(),
            sys,
        }
    }

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
        conntrack_io::clock::set_now(&mut out);
        out
    }

    /// Prints one entry; `header` says whether this command opens an XML document.
    fn print(&mut self, e: &ConntrackRepr, origin: Origin, out: &Output, header: bool) {
        if header && out.style == Style::Xml && !self.xml_open {
            self.xml_open = true;
            self.term.out.text(XML_HEADER);
        }
        line(&mut self.term, &self.g.labelmap, e, origin, out);
    }

    /// `print_stats`: the summary line, and whether the command counts as failed.
    pub fn print_stats(&mut self, c: &Cmd) -> bool {
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
        let line = format!(
            "conntrack v1.4.7 (conntrack-tools): {} {msg}",
            self.counter as i32
        );
        self.term.err_line(line.as_bytes());
        self.counter != 0 || c.command & (cmd::CT_LIST | cmd::EXP_LIST | cmd::CT_ADD) != 0
    }

    /// Runs one command.
    ///
    /// # Errors
    /// The failure to report, as the tool would.
    pub fn run(&mut self, c: &mut Cmd, k: &mut dyn Kernel) -> Result<(), Fail> {
        match c.command {
            cmd::CT_LIST => self.list(c, k),
            cmd::CT_GET => self.get(c, k),
            cmd::CT_CREATE | cmd::CT_ADD => self.create(c, k),
            cmd::CT_UPDATE => self.update(c, k),
            cmd::CT_DELETE => self.delete(c, k),
            cmd::CT_FLUSH => {
                let res = k.flush();
                self.term.err_line(
                    b"conntrack v1.4.7 (conntrack-tools): connection tracking table has been emptied.",
                );
                res.map_err(|e| failed(&e, c.command))
            }
            cmd::EXP_LIST => self.exp_list(c, k, false),
            cmd::EXP_COUNT => self.exp_list(c, k, true),
            cmd::EXP_CREATE => self.exp_create(c, k),
            cmd::EXP_DELETE => self.exp_delete(c, k),
            cmd::EXP_GET => self.exp_get(c, k),
            cmd::EXP_FLUSH => {
                let res = k.exp_flush(0);
                self.term.err_line(
                    b"conntrack v1.4.7 (conntrack-tools): expectation table has been emptied.",
                );
                res.map_err(|e| failed(&e, c.command))
            }
            cmd::CT_EVENT | cmd::EXP_EVENT => crate::events::run(self, c, k),
            cmd::CT_COUNT => self.count(c, k),
            cmd::CT_STATS | cmd::EXP_STATS => self.stats(c, k),
            cmd::CT_VERSION => {
                self.term.out.text("conntrack v1.4.7 (conntrack-tools)\n");
                Ok(())
            }
            cmd::CT_HELP => {
                self.usage();
                if c.options & opt::PROTO != 0 {
                    self.proto_help(c);
                }
                Ok(())
            }
            _ => {
                self.usage();
                Ok(())
            }
        }
    }

    fn usage(&mut self) {
        let text = crate::usage::usage(&self.progname);
        self.term.out.bytes(&text);
    }

    /// `extension_help`: the handler's name (the protocol's, for one without a handler)
    /// and options.
    fn proto_help(&mut self, c: &Cmd) {
        let Some(h) = self.g.handler else {
            return;
        };
        let name = if h == crate::proto::Proto::Unknown {
            let text = self.sys.read(crate::sys::PROTOCOLS).unwrap_or_default();
            crate::parse::values::protocols(&text)
                .into_iter()
                .find(|(_, n, _)| *n == c.protonum)
                .map_or_else(|| h.name().as_bytes().to_vec(), |(name, _, _)| name)
        } else {
            h.name().as_bytes().to_vec()
        };
        self.term
            .out
            .bytes(&crate::cat!("Proto `", name, "' help:\n"));
        self.term.out.text(h.help());
    }
}
