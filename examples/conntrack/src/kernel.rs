//! What the program asks of the kernel, as one trait: [`Sockets`] does it with
//! `conntrack-io`'s operations on real netlink sockets; [`EmptyTable`] answers as the kernel
//! of a fresh network namespace answers (no entry, no expectation), so that every command
//! line can run, whole, in a test without root.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;

use conntrack_codec::ct::request::{self, Key};
use conntrack_codec::ct::{Conntrack, ConntrackRepr, ExpStatsCpu, StatsCpu, Tuple};
use conntrack_codec::exp::request::ExpKey;
use conntrack_codec::exp::{Expect, ExpectRepr};
use conntrack_codec::filter::DumpFilter;
use conntrack_codec::nfnl::{ct_msg, msg_type, Subsystem};
use conntrack_codec::nl::flags;
use conntrack_io::{ChangeSummary, DumpSummary, Errno, Error as IoError, Events, Groups, Socket};

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

/// What to do with an entry a dump finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<T> {
    /// Leave it.
    Skip,
    /// Change it (with this request).
    Send(T),
    /// No more changes: this entry and the rest of the dump are left alone (the changes
    /// already picked are still sent and reported).
    Stop,
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
    /// picks; `done` gets each picked entry (as dumped) with the outcome of its delete, in
    /// dump order, a window at a time. After [`Change::Stop`] no entry is picked; the
    /// deletes already picked are still sent and reported.
    ///
    /// # Errors
    /// The dump, or the socket of the deletes, failed as a whole.
    fn delete_matching(
        &mut self,
        filter: &DumpFilter,
        select: &mut dyn FnMut(&Conntrack<'_>) -> Change<()>,
        done: &mut dyn FnMut(&ConntrackRepr, Result<(), IoError>),
    ) -> Result<ChangeSummary, IoError>;

    /// Updates, in bulk, the entries of a dump for which `build` gives an update request;
    /// `done` gets, in dump order, each one's outcome: the entry as the kernel has it after
    /// the update (got with a request of `family`), or why not. [`Change::Stop`] as for
    /// [`Kernel::delete_matching`].
    ///
    /// # Errors
    /// The dump, or the socket of the updates, failed as a whole.
    fn update_matching(
        &mut self,
        filter: &DumpFilter,
        family: u8,
        build: &mut dyn FnMut(&Conntrack<'_>) -> Change<ConntrackRepr>,
        done: &mut dyn FnMut(Result<ConntrackRepr, IoError>),
    ) -> Result<ChangeSummary, IoError>;

    /// Opens an event socket subscribed to `groups`.
    ///
    /// # Errors
    /// The socket cannot be opened or subscribed.
    fn events(&mut self, groups: Groups) -> Result<Events, IoError>;
}

/// The window of deletes and updates: entries held, and requests in flight.
const WINDOW: usize = 512;

/// The real kernel, through netlink sockets: one for requests and dumps (its second
/// socket, which `conntrack-io` opens in the same namespace, carries the changes that go
/// out while a dump runs), and one more for the gets of `-U`.
#[derive(Debug)]
pub struct Sockets {
    sock: Socket,
    /// For the gets of `-U` (the first socket dumps, its second one updates meanwhile).
    getter: Option<Socket>,
}

/// Hands the outcomes of a [`Socket::change_matching`] run out in dump order: the entries
/// are numbered as they are picked (by their id), and an outcome that comes early waits
/// for the ones before it. At most a window of them waits: every outcome of a window is in
/// before the dump goes on.
struct InOrder<T> {
    /// The number of the next outcome to hand out.
    next: u64,
    /// Entries picked so far.
    picked: u64,
    /// The number of each picked entry not settled yet, by id.
    numbers: HashMap<u32, u64>,
    /// Outcomes that came early, by number.
    waiting: BTreeMap<u64, (T, Result<(), IoError>)>,
}

impl<T> Default for InOrder<T> {
    fn default() -> Self {
        InOrder {
            next: 0,
            picked: 0,
            numbers: HashMap::new(),
            waiting: BTreeMap::new(),
        }
    }
}

impl<T> InOrder<T> {
    /// Numbers an entry that was just picked.
    fn picked(&mut self, view: &Conntrack<'_>) {
        if let Ok(Some(id)) = view.id() {
            self.numbers.insert(id, self.picked);
        }
        self.picked += 1;
    }

    /// Takes the outcome of `view` and hands out, in order, every outcome that is due.
    fn settled(
        &mut self,
        view: &Conntrack<'_>,
        value: T,
        r: Result<(), IoError>,
        out: &mut dyn FnMut(T, Result<(), IoError>),
    ) {
        let number = view
            .id()
            .ok()
            .flatten()
            .and_then(|id| self.numbers.remove(&id));
        match number {
            Some(n) if n == self.next => {
                out(value, r);
                self.next += 1;
            }
            Some(n) => {
                self.waiting.insert(n, (value, r));
            }
            // An entry without an id: it cannot wait for its turn.
            None => out(value, r),
        }
        while let Some((value, r)) = self.waiting.remove(&self.next) {
            out(value, r);
            self.next += 1;
        }
    }
}

impl Sockets {
    /// Opens the request socket.
    ///
    /// # Errors
    /// It cannot be opened.
    pub fn open() -> Result<Sockets, IoError> {
        Ok(Sockets {
            sock: Socket::open()?,
            getter: None,
        })
    }
}

/// A `CT_GET` carrying `request` (family included), on `sock`.
fn get_with(sock: &mut Socket, request: &ConntrackRepr) -> Result<ConntrackRepr, IoError> {
    let reply = sock.request(
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
        get_with(&mut self.sock, request)
    }

    fn create(&mut self, entry: &ConntrackRepr, fl: u16) -> Result<(), IoError> {
        self.sock.execute(|w, seq| {
            entry
                .emit(w, msg_type(Subsystem::Ctnetlink, ct_msg::NEW), fl, seq)
                .map(drop)
        })
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.sock.flush(&DumpFilter::default()).map(drop)
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
        // `conntrack-io` opens the second socket itself when the changes start; this only
        // checks, as 1.4.7 does before anything, that one can be opened.
        Socket::open().map(drop)
    }

    fn delete_matching(
        &mut self,
        filter: &DumpFilter,
        select: &mut dyn FnMut(&Conntrack<'_>) -> Change<()>,
        done: &mut dyn FnMut(&ConntrackRepr, Result<(), IoError>),
    ) -> Result<ChangeSummary, IoError> {
        let order = RefCell::new(InOrder::default());
        self.sock.change_matching(
            filter,
            WINDOW,
            |view, w| match select(view) {
                Change::Skip | Change::Stop => Ok(false),
                Change::Send(()) => {
                    request::delete(w, 0, &Key::from_view(view)?)?;
                    order.borrow_mut().picked(view);
                    Ok(true)
                }
            },
            |view, r| {
                let entry = ConntrackRepr::try_from(&view).map_err(|error| IoError::Codec {
                    error,
                    offset: None,
                });
                order
                    .borrow_mut()
                    .settled(&view, entry, r, &mut |entry, r| match entry {
                        Ok(e) => done(&e, r),
                        Err(e) => done(&ConntrackRepr::default(), Err(e)),
                    });
            },
        )
    }

    fn update_matching(
        &mut self,
        filter: &DumpFilter,
        family: u8,
        build: &mut dyn FnMut(&Conntrack<'_>) -> Change<ConntrackRepr>,
        done: &mut dyn FnMut(Result<ConntrackRepr, IoError>),
    ) -> Result<ChangeSummary, IoError> {
        if self.getter.is_none() {
            self.getter = Some(Socket::open()?);
        }
        let Sockets { sock, getter } = self;
        let Some(getter) = getter.as_mut() else {
            return Err(IoError::Sys {
                call: "socket",
                errno: Errno::EBADF,
            });
        };
        let kind = msg_type(Subsystem::Ctnetlink, ct_msg::NEW);
        let order = RefCell::new(InOrder::default());
        sock.change_matching(
            filter,
            WINDOW,
            |view, w| match build(view) {
                Change::Skip | Change::Stop => Ok(false),
                Change::Send(req) => {
                    req.emit(w, kind, 0, 0)?;
                    order.borrow_mut().picked(view);
                    Ok(true)
                }
            },
            |view, r| {
                // The entry as it is now, asked for as 1.4.7 asks: its original tuple,
                // without its zone, with the command's family.
                let now = r.and_then(|()| {
                    let orig = view.orig()?.map(|t| Tuple { zone: None, ..t });
                    let request = ConntrackRepr {
                        family,
                        orig,
                        ..ConntrackRepr::default()
                    };
                    get_with(getter, &request)
                });
                order
                    .borrow_mut()
                    .settled(&view, now, Ok(()), &mut |now, _| done(now));
            },
        )
    }

    fn events(&mut self, groups: Groups) -> Result<Events, IoError> {
        Events::open(groups)
    }
}

/// The kernel of a fresh network namespace, without asking it: no entry and no
/// expectation (dumps are empty; getting, deleting or updating one gives `ENOENT`; creating
/// one whose request is well formed succeeds and changes nothing), no statistics, and no
/// event socket for this stand-in (`EPERM`, as for an unprivileged user). Requests the
/// library refuses as impossible ([`DumpFilter::check`]) are refused here too.
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
        // What the library refuses before sending (the kernel would refuse it too).
        filter.check().map_err(IoError::Build)?;
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
        _select: &mut dyn FnMut(&Conntrack<'_>) -> Change<()>,
        _done: &mut dyn FnMut(&ConntrackRepr, Result<(), IoError>),
    ) -> Result<ChangeSummary, IoError> {
        Ok(ChangeSummary::default())
    }

    fn update_matching(
        &mut self,
        _filter: &DumpFilter,
        _family: u8,
        _build: &mut dyn FnMut(&Conntrack<'_>) -> Change<ConntrackRepr>,
        _done: &mut dyn FnMut(Result<ConntrackRepr, IoError>),
    ) -> Result<ChangeSummary, IoError> {
        Ok(ChangeSummary::default())
    }

    fn events(&mut self, _groups: Groups) -> Result<Events, IoError> {
        Err(IoError::Sys {
            call: "bind",
            errno: Errno::EPERM,
        })
    }
}
