//! What the program asks of the kernel, as one trait: [`Sockets`] does it with
//! `conntrack-io`'s operations on real netlink sockets; [`EmptyTable`] answers as the kernel
//! of a fresh network namespace answers (no entry, no expectation), so that every command
//! line can run, whole, in a test without root.

use std::ops::ControlFlow;

use conntrack_codec::ct::request::Key;
use conntrack_codec::ct::{Conntrack, ConntrackRepr, ExpStatsCpu, StatsCpu};
use conntrack_codec::exp::request::ExpKey;
use conntrack_codec::exp::{Expect, ExpectRepr};
use conntrack_codec::filter::DumpFilter;
use conntrack_codec::nfnl::{ct_msg, msg_type, Subsystem};
use conntrack_codec::nl::{flags, NlMsg};
use conntrack_io::{Acks, DumpSummary, Errno, Error as IoError, Events, Groups, Socket};

/// Which list a dump walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// The table.
    Table,
    /// The table, zeroing the counters of the entries dumped.
    TableZero,
    /// The dying list.
    Dying,
    /// The unconfirmed list.
    Unconfirmed,
}

/// A callback for each conntrack entry of a dump.
pub type EntryFn<'f> = dyn FnMut(Conntrack<'_>) -> ControlFlow<()> + 'f;

/// The kernel operations of `conntrack`.
pub trait Kernel {
    /// Dumps a list, filtered in the kernel by `filter` (for [`ListKind::Table`] and
    /// [`ListKind::TableZero`]), each entry to `f`.
    ///
    /// # Errors
    /// The dump failed.
    fn list(
        &mut self,
        kind: ListKind,
        filter: &DumpFilter,
        f: &mut EntryFn<'_>,
    ) -> Result<DumpSummary, IoError>;

    /// Gets the entry `request` names (a `CT_GET` carrying `request`, its family included).
    ///
    /// # Errors
    /// The kernel's refusal (`ENOENT`...), or a malformed reply.
    fn get(&mut self, request: &ConntrackRepr) -> Result<ConntrackRepr, IoError>;

    /// Sends `entry` in a `CT_NEW` with `flags` (`CREATE`, `EXCL`) and waits for the answer.
    ///
    /// # Errors
    /// The kernel's refusal.
    fn create(&mut self, entry: &ConntrackRepr, flags: u16) -> Result<(), IoError>;

    /// Empties the table (every family: 1.4.7 sends nfgenmsg version 0).
    ///
    /// # Errors
    /// The kernel's refusal.
    fn flush(&mut self) -> Result<(), IoError>;

    /// Dumps the expectations of `family` (0 for all).
    ///
    /// # Errors
    /// The dump failed.
    fn exp_list(
        &mut self,
        family: u8,
        f: &mut dyn FnMut(Expect<'_>) -> ControlFlow<()>,
    ) -> Result<DumpSummary, IoError>;

    /// Creates an expectation.
    ///
    /// # Errors
    /// The kernel's refusal (`ENOENT` without the master...).
    fn exp_create(&mut self, exp: &ExpectRepr) -> Result<(), IoError>;

    /// Gets one expectation.
    ///
    /// # Errors
    /// The kernel's refusal, or a malformed reply.
    fn exp_get(&mut self, key: &ExpKey) -> Result<ExpectRepr, IoError>;

    /// Deletes one expectation.
    ///
    /// # Errors
    /// The kernel's refusal.
    fn exp_delete(&mut self, key: &ExpKey) -> Result<(), IoError>;

    /// Flushes the expectations of `family` (0 for all).
    ///
    /// # Errors
    /// The kernel's refusal.
    fn exp_flush(&mut self, family: u8) -> Result<(), IoError>;

    /// The number of entries in the table.
    ///
    /// # Errors
    /// The request failed.
    fn count(&mut self) -> Result<u32, IoError>;

    /// The per-CPU statistics.
    ///
    /// # Errors
    /// The request failed.
    fn stats_per_cpu(&mut self) -> Result<Vec<StatsCpu>, IoError>;

    /// The per-CPU expectation statistics.
    ///
    /// # Errors
    /// The request failed.
    fn exp_stats_per_cpu(&mut self) -> Result<Vec<ExpStatsCpu>, IoError>;

    /// Makes sure the second socket, on which changes go out, is open (1.4.7 opens its
    /// modifier socket before `-D` and `-U`).
    ///
    /// # Errors
    /// It cannot be opened.
    fn open_modifier(&mut self) -> Result<(), IoError>;

    /// Deletes, in bulk, the entries of a dump (`filter` in the kernel) that `select`
    /// picks; `done` gets each picked entry with the outcome of its delete, in dump order.
    ///
    /// # Errors
    /// The dump, or the socket of the deletes, failed as a whole.
    fn delete_matching(
        &mut self,
        filter: &DumpFilter,
        select: &mut dyn FnMut(&Conntrack<'_>) -> bool,
        done: &mut dyn FnMut(Conntrack<'_>, Result<(), IoError>),
    ) -> Result<DumpSummary, IoError>;

    /// Updates, in bulk, the entries of a dump for which `build` writes an update request;
    /// `done` gets, in dump order, each one's outcome: the entry as the kernel has it after
    /// the update, or why not.
    ///
    /// # Errors
    /// The dump, or the socket of the updates, failed as a whole.
    fn update_matching(
        &mut self,
        filter: &DumpFilter,
        build: &mut dyn FnMut(&Conntrack<'_>) -> Option<ConntrackRepr>,
        done: &mut dyn FnMut(Result<ConntrackRepr, IoError>),
    ) -> Result<DumpSummary, IoError>;

    /// Opens an event socket subscribed to `groups`.
    ///
    /// # Errors
    /// The socket cannot be opened or subscribed.
    fn events(&mut self, groups: Groups) -> Result<Events, IoError>;
}

/// The bulk window for deletes and updates: requests in flight.
const WINDOW: usize = 1024;
/// The receive queue for bulk deletes and updates.
const BULK_RCVBUF: usize = 4 << 20;

/// The real kernel, through netlink sockets: the first one for requests and dumps, a second
/// one, opened when needed, for the changes that go out while a dump runs.
#[derive(Debug)]
pub struct Sockets {
    sock: Socket,
    modifier: Option<Socket>,
}

impl Sockets {
    /// Opens the request socket.
    ///
    /// # Errors
    /// It cannot be opened.
    pub fn open() -> Result<Sockets, IoError> {
        Ok(Sockets {
            sock: Socket::open()?,
            modifier: None,
        })
    }

    fn modifier(&mut self) -> Result<&mut Socket, IoError> {
        if self.modifier.is_none() {
            let s = Socket::open()?;
            // The kernel answers failures (and one request per datagram): give them room.
            let _ = s.set_rcvbuf(BULK_RCVBUF);
            self.modifier = Some(s);
        }
        self.modifier.as_mut().ok_or(IoError::Sys {
            call: "socket",
            errno: Errno::EBADF,
        })
    }

    /// Dumps the table and keeps the bytes of the entries `keep` picks.
    fn collect(
        &mut self,
        filter: &DumpFilter,
        mut keep: impl FnMut(&Conntrack<'_>) -> bool,
    ) -> Result<(Vec<Vec<u8>>, DumpSummary), IoError> {
        let mut kept = Vec::new();
        let summary = self.sock.list(filter, |view| {
            if keep(&view) {
                if let Some(bytes) = copy(&view) {
                    kept.push(bytes);
                }
            }
            ControlFlow::Continue(())
        })?;
        Ok((kept, summary))
    }
}

/// A copy of an entry, as the bytes of a message.
fn copy(view: &Conntrack<'_>) -> Option<Vec<u8>> {
    let repr = ConntrackRepr::try_from(view).ok()?;
    let mut buf = vec![0u8; repr.buffer_len() + 64];
    let mut w = conntrack_codec::nl::Writer::new(&mut buf);
    let kind = msg_type(Subsystem::Ctnetlink, ct_msg::NEW);
    let range = repr.emit(&mut w, kind, 0, 0).ok()?;
    buf.truncate(range.end);
    Some(buf)
}

/// The view of an entry kept as bytes.
fn view_of(bytes: &[u8]) -> Option<Conntrack<'_>> {
    let msg = NlMsg::new_checked(bytes).ok()?;
    let nf = conntrack_codec::nfnl::NfMsg::new_checked(msg).ok()?;
    Conntrack::new_checked(nf).ok()
}

impl Kernel for Sockets {
    fn list(
        &mut self,
        kind: ListKind,
        filter: &DumpFilter,
        f: &mut EntryFn<'_>,
    ) -> Result<DumpSummary, IoError> {
        match kind {
            ListKind::Table => self.sock.list(filter, f),
            ListKind::TableZero => self.sock.list_and_zero(filter, f),
            ListKind::Dying => self.sock.list_dying(f),
            ListKind::Unconfirmed => self.sock.list_unconfirmed(f),
        }
    }

    fn get(&mut self, request: &ConntrackRepr) -> Result<ConntrackRepr, IoError> {
        let reply = self.sock.request(
            |w, seq| {
                request
                    .emit(w, msg_type(Subsystem::Ctnetlink, ct_msg::GET), 0, seq)
                    .map(drop)
            },
            |nf| ConntrackRepr::parse(&nf),
        )?;
        reply.map_err(|error| IoError::Codec {
            error,
            offset: None,
        })
    }

    fn create(&mut self, entry: &ConntrackRepr, fl: u16) -> Result<(), IoError> {
        self.sock.execute(|w, seq| {
            entry
                .emit(w, msg_type(Subsystem::Ctnetlink, ct_msg::NEW), fl, seq)
                .map(drop)
        })
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.sock.flush(&DumpFilter::default())
    }

    fn exp_list(
        &mut self,
        family: u8,
        f: &mut dyn FnMut(Expect<'_>) -> ControlFlow<()>,
    ) -> Result<DumpSummary, IoError> {
        self.sock.exp_list(family, f)
    }

    fn exp_create(&mut self, exp: &ExpectRepr) -> Result<(), IoError> {
        self.sock.exp_create(exp)
    }

    fn exp_get(&mut self, key: &ExpKey) -> Result<ExpectRepr, IoError> {
        self.sock.exp_get(key)
    }

    fn exp_delete(&mut self, key: &ExpKey) -> Result<(), IoError> {
        self.sock.exp_delete(key)
    }

    fn exp_flush(&mut self, family: u8) -> Result<(), IoError> {
        self.sock.exp_flush(family)
    }

    fn count(&mut self) -> Result<u32, IoError> {
        self.sock.count()
    }

    fn stats_per_cpu(&mut self) -> Result<Vec<StatsCpu>, IoError> {
        self.sock.stats_per_cpu()
    }

    fn exp_stats_per_cpu(&mut self) -> Result<Vec<ExpStatsCpu>, IoError> {
        self.sock.exp_stats_per_cpu()
    }

    fn open_modifier(&mut self) -> Result<(), IoError> {
        self.modifier().map(drop)
    }

    fn delete_matching(
        &mut self,
        filter: &DumpFilter,
        select: &mut dyn FnMut(&Conntrack<'_>) -> bool,
        done: &mut dyn FnMut(Conntrack<'_>, Result<(), IoError>),
    ) -> Result<DumpSummary, IoError> {
        let (entries, summary) = self.collect(filter, select)?;
        let keys: Vec<Option<Key>> = entries
            .iter()
            .map(|b| {
                let v = view_of(b)?;
                Some(Key {
                    orig: v.orig().ok()?,
                    reply: None,
                    zone: v.zone().ok()?,
                    id: None,
                })
            })
            .collect();
        let mut results: Vec<Option<Result<(), IoError>>> = vec![None; keys.len()];
        self.modifier()?.bulk_with_acks(
            keys.len(),
            WINDOW,
            Acks::PerDatagram,
            |i, w, seq| match keys.get(i).and_then(Option::as_ref) {
                Some(k) => conntrack_codec::ct::request::delete(w, seq, k).map(drop),
                None => Err(conntrack_codec::Error::InvalidValue("entry")),
            },
            |i, r| {
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(r);
                }
            },
        )?;
        for (bytes, r) in entries.iter().zip(results) {
            if let Some(v) = view_of(bytes) {
                done(v, r.unwrap_or(Err(IoError::NoAnswer)));
            }
        }
        Ok(summary)
    }

    fn update_matching(
        &mut self,
        filter: &DumpFilter,
        build: &mut dyn FnMut(&Conntrack<'_>) -> Option<ConntrackRepr>,
        done: &mut dyn FnMut(Result<ConntrackRepr, IoError>),
    ) -> Result<DumpSummary, IoError> {
        let mut reqs = Vec::new();
        let summary = self.sock.list(filter, |view| {
            if let Some(r) = build(&view) {
                reqs.push(r);
            }
            ControlFlow::Continue(())
        })?;
        let mut results: Vec<Option<Result<(), IoError>>> = vec![None; reqs.len()];
        let kind = msg_type(Subsystem::Ctnetlink, ct_msg::NEW);
        self.modifier()?.bulk_with_acks(
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
        )?;
        for (req, r) in reqs.iter().zip(results) {
            match r.unwrap_or(Err(IoError::NoAnswer)) {
                Ok(()) => done(self.get(req)),
                Err(e) => done(Err(e)),
            }
        }
        Ok(summary)
    }

    fn events(&mut self, groups: Groups) -> Result<Events, IoError> {
        Events::open(groups)
    }
}

/// The kernel of a fresh network namespace, without asking it: no entry and no
/// expectation (dumps are empty; getting, deleting or updating one gives `ENOENT`; creating
/// one whose request is well formed succeeds and changes nothing), no statistics, and no
/// event socket for this stand-in (`EPERM`, as for an unprivileged user). Of the kernel's
/// checks of a request it makes one: a status filter must select some bit (`EINVAL`).
#[derive(Debug, Default, Clone, Copy)]
pub struct EmptyTable;

/// What the stand-in answers for a missing entry.
fn enoent() -> IoError {
    IoError::Sys {
        call: "ctnetlink",
        errno: Errno::ENOENT,
    }
}

impl Kernel for EmptyTable {
    fn list(
        &mut self,
        _kind: ListKind,
        filter: &DumpFilter,
        _f: &mut EntryFn<'_>,
    ) -> Result<DumpSummary, IoError> {
        // The kernel refuses a status filter whose mask selects no bit.
        if filter.status.is_some_and(|(_, mask)| mask.0 == 0) {
            return Err(IoError::Sys {
                call: "ctnetlink",
                errno: Errno::EINVAL,
            });
        }
        // The request must still be one that can be written.
        let mut buf = [0u8; 1024];
        let mut w = conntrack_codec::nl::Writer::new(&mut buf);
        conntrack_codec::ct::request::dump(&mut w, 1, filter).map_err(IoError::Build)?;
        Ok(DumpSummary::default())
    }

    fn get(&mut self, _request: &ConntrackRepr) -> Result<ConntrackRepr, IoError> {
        Err(enoent())
    }

    fn create(&mut self, entry: &ConntrackRepr, fl: u16) -> Result<(), IoError> {
        let mut buf = [0u8; 4096];
        let mut w = conntrack_codec::nl::Writer::new(&mut buf);
        entry
            .emit(
                &mut w,
                msg_type(Subsystem::Ctnetlink, ct_msg::NEW),
                fl | flags::REQUEST,
                1,
            )
            .map(drop)
            .map_err(IoError::Build)
    }

    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }

    fn exp_list(
        &mut self,
        _family: u8,
        _f: &mut dyn FnMut(Expect<'_>) -> ControlFlow<()>,
    ) -> Result<DumpSummary, IoError> {
        Ok(DumpSummary::default())
    }

    fn exp_create(&mut self, _exp: &ExpectRepr) -> Result<(), IoError> {
        // The master conntrack cannot exist.
        Err(enoent())
    }

    fn exp_get(&mut self, _key: &ExpKey) -> Result<ExpectRepr, IoError> {
        Err(enoent())
    }

    fn exp_delete(&mut self, _key: &ExpKey) -> Result<(), IoError> {
        Err(enoent())
    }

    fn exp_flush(&mut self, _family: u8) -> Result<(), IoError> {
        Ok(())
    }

    fn count(&mut self) -> Result<u32, IoError> {
        Ok(0)
    }

    fn stats_per_cpu(&mut self) -> Result<Vec<StatsCpu>, IoError> {
        Ok(Vec::new())
    }

    fn exp_stats_per_cpu(&mut self) -> Result<Vec<ExpStatsCpu>, IoError> {
        Ok(Vec::new())
    }

    fn open_modifier(&mut self) -> Result<(), IoError> {
        Ok(())
    }

    fn delete_matching(
        &mut self,
        _filter: &DumpFilter,
        _select: &mut dyn FnMut(&Conntrack<'_>) -> bool,
        _done: &mut dyn FnMut(Conntrack<'_>, Result<(), IoError>),
    ) -> Result<DumpSummary, IoError> {
        Ok(DumpSummary::default())
    }

    fn update_matching(
        &mut self,
        _filter: &DumpFilter,
        _build: &mut dyn FnMut(&Conntrack<'_>) -> Option<ConntrackRepr>,
        _done: &mut dyn FnMut(Result<ConntrackRepr, IoError>),
    ) -> Result<DumpSummary, IoError> {
        Ok(DumpSummary::default())
    }

    fn events(&mut self, _groups: Groups) -> Result<Events, IoError> {
        Err(IoError::Sys {
            call: "bind",
            errno: Errno::EPERM,
        })
    }
}
