//! The commands that change the table: `-I`/`-A` (create), `-D` (delete what matches) and
//! `-U` (update what matches). The changes of many entries go out in bulk on a second
//! socket while the dump that finds them goes on; each entry is printed once its change is
//! done, so the output says exactly what happened.

use std::cell::RefCell;

use conntrack_codec::ct::{Conntrack, ConntrackRepr};
use conntrack_codec::fmt::{CtLine, Origin};
use conntrack_codec::nl::flags;
use conntrack_io::{ChangeSummary, Error as IoError};
use nix::libc;

use super::{build_failed, err2str, errno_of, failed, Ctx};
use crate::filter::{self, Push};
use crate::kernel::{Change, Kernel};
use crate::model::{nfct_cmp, Bitmask, Cmp, Obj, Tmpl, Tup};
use crate::parse::{cmd, opt, Cmd, Fail};
use crate::signals::StopFlag;

impl Ctx {
    pub(super) fn create(&mut self, c: &mut Cmd, k: &mut dyn Kernel) -> Result<(), Fail> {
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
        let mut e = ct
            .build(self.g.errno)
            .map_err(|err| build_failed(err, c.command))?;
        e.family = c.family;
        // `-A` of an entry that exists changes nothing and counts nothing (what 1.4.7
        // ends up doing).
        match k.create(&e, flags::CREATE | flags::EXCL) {
            Ok(()) => {
                self.counter += 1;
                Ok(())
            }
            Err(err) if c.command == cmd::CT_ADD && errno_of(&err) == Some(libc::EEXIST) => Ok(()),
            Err(err) => Err(failed(&err, c.command)),
        }
    }

    /// `-D`: each entry of the dump that passes the filters is deleted (in bulk, on the
    /// second socket, a window at a time) and printed once deleted; entries gone meanwhile
    /// are skipped, as in 1.4.7. The first other failure stops the deletes (those already
    /// sent are still printed) and is reported. SIGINT or SIGTERM stop them too: what was
    /// deleted is printed, and the program dies of the signal.
    pub(super) fn delete(&mut self, c: &mut Cmd, k: &mut dyn Kernel) -> Result<(), Fail> {
        let nf = filter::filter_init(c)?;
        let out = self.output(false);
        let check = filter::needs_filter(c, &self.cur);
        let cur = self.cur.clone();
        let kf = filter::kernel_filter(c, Push::Delete);
        k.open_modifier()
            .map_err(|_| Fail::other("Can't open handler"))?;
        let stop = self.sys.catch_stop();
        let c: &Cmd = c;
        let error: RefCell<Option<Fail>> = RefCell::new(None);
        let mut select = |view: &Conntrack<'_>| -> Change<()> {
            if error.borrow().is_some() || stop.as_ref().and_then(StopFlag::signal).is_some() {
                return Change::Stop;
            }
            if !check {
                return Change::Send(());
            }
            match ConntrackRepr::try_from(view) {
                Ok(e) if filter::nfct_filter(c, &nf, &Obj::from_entry(&e), &cur) => Change::Skip,
                Ok(_) => Change::Send(()),
                Err(err) => {
                    *error.borrow_mut() = Some(Fail::other(format!("Operation failed: {err}")));
                    Change::Stop
                }
            }
        };
        let term = &mut self.term;
        let counter = &mut self.counter;
        let mut done = |e: &ConntrackRepr, r: Result<(), IoError>| match r {
            Ok(()) => {
                term.out.line(format_args!(
                    "{}",
                    CtLine::new(e, Origin::Delete, &out, &())
                ));
                *counter += 1;
            }
            // Gone meanwhile (expired, or deleted by someone else): not an error.
            Err(e) if errno_of(&e) == Some(libc::ENOENT) => {}
            Err(e) => {
                error
                    .borrow_mut()
                    .get_or_insert_with(|| failed(&e, c.command));
            }
        };
        let res = k.delete_matching(&kf, &mut select, &mut done);
        self.die_if_stopped(stop.as_ref());
        if let Some(e) = error.into_inner() {
            return Err(e);
        }
        interrupted_fails(res, c.command)
    }

    /// `-U`: each entry of the dump that passes `-U`'s filter and would change gets the
    /// update 1.4.7 sends (in bulk, on the second socket, a window at a time), and is
    /// printed as the kernel has it once updated, and counted. An update that fails is
    /// reported on stderr as 1.4.7 reports it (`Operation failed: ...`), not counted, and
    /// the others go on. SIGINT or SIGTERM stop the updates, as for `-D`.
    pub(super) fn update(&mut self, c: &mut Cmd, k: &mut dyn Kernel) -> Result<(), Fail> {
        let nf = filter::filter_init(c)?;
        let cur = self.cur.clone();
        let kf = filter::kernel_filter(c, Push::Update);
        k.open_modifier()
            .map_err(|_| Fail::other("Can't open handler"))?;
        let out = self.output(false);
        let errno = self.g.errno;
        let stop = self.sys.catch_stop();
        let c: &Cmd = c;
        let error: RefCell<Option<Fail>> = RefCell::new(None);
        let mut build = |view: &Conntrack<'_>| -> Change<ConntrackRepr> {
            if error.borrow().is_some() || stop.as_ref().and_then(StopFlag::signal).is_some() {
                return Change::Stop;
            }
            let e = match ConntrackRepr::try_from(view) {
                Ok(e) => e,
                Err(err) => {
                    *error.borrow_mut() = Some(Fail::other(format!("Operation failed: {err}")));
                    return Change::Stop;
                }
            };
            let obj = Obj::from_entry(&e);
            if filter::update_filter(c, &nf, &obj, &cur) {
                return Change::Skip;
            }
            let tmp = update_object(c, &obj, &cur);
            if nfct_cmp(&tmp, &obj, Cmp::AllMask) {
                return Change::Skip;
            }
            match tmp.build(errno) {
                Ok(mut r) => {
                    // 1.4.7 sends the update with the command's family.
                    r.family = c.family;
                    Change::Send(r)
                }
                Err(errno) => {
                    *error.borrow_mut() = Some(build_failed(errno, cmd::CT_UPDATE));
                    Change::Stop
                }
            }
        };
        let labels = &self.g.labelmap;
        let term = &mut self.term;
        let counter = &mut self.counter;
        let mut done = |r: Result<ConntrackRepr, IoError>| match r {
            Ok(e) => {
                super::line(term, labels, &e, Origin::Dump, &out);
                *counter += 1;
            }
            Err(e) => {
                let errno = errno_of(&e).unwrap_or(libc::EIO);
                let line = format!("Operation failed: {}", err2str(errno, cmd::CT_UPDATE));
                term.err_line(line.as_bytes());
            }
        };
        let res = k.update_matching(&kf, c.family, &mut build, &mut done);
        self.die_if_stopped(stop.as_ref());
        if let Some(e) = error.into_inner() {
            return Err(e);
        }
        interrupted_fails(res, c.command)
    }

    /// After a change stopped by a signal: writes out what was printed, and dies of the
    /// signal, as 1.4.7 (which has no handler for it there) does.
    fn die_if_stopped(&mut self, stop: Option<&StopFlag>) {
        if let Some(signal) = stop.and_then(StopFlag::signal) {
            self.term.out.flush();
            crate::signals::die_of(signal);
        }
    }
}

/// The end of `-D` or `-U`: ctnetlink (Linux 6.18) never marks its dumps interrupted, and a
/// table that changes meanwhile is the race 1.4.7 has too; should a kernel mark one, what
/// was changed has been printed, and the command fails with `EINTR`, as 1.4.7's dump does.
fn interrupted_fails(res: Result<ChangeSummary, IoError>, command: u32) -> Result<(), Fail> {
    match res {
        Ok(summary) if summary.interrupted => Err(build_failed(libc::EINTR, command)),
        Ok(_) => Ok(()),
        Err(e) => Err(failed(&e, command)),
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
