//! Typed conntrack and expectation operations: each one builds its request with the codec's
//! builders and runs it with [`Socket::execute`], [`Socket::request`], [`Socket::dump`] or
//! [`Socket::bulk`].

use std::ops::ControlFlow;

use conntrack_codec::ct::request::{self, Key};
use conntrack_codec::ct::ExpStatsCpu;
use conntrack_codec::ct::{Conntrack, ConntrackRepr, StatsCpu, StatsGlobal};
use conntrack_codec::exp::request::{self as exp_request, ExpKey};
use conntrack_codec::exp::{Expect, ExpectRepr};
use conntrack_codec::filter::DumpFilter;
use conntrack_codec::nfnl::NfMsg;

use conntrack_codec::nl::Writer;
use nix::errno::Errno;

use crate::error::{Error, Result};
use crate::matching::ChangeSummary;
use crate::ops::{BulkSummary, DumpSummary};
use crate::socket::Socket;

/// How [`Socket::flush`] did it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flushed {
    /// In one request, by the kernel (which does not say how many entries went).
    InKernel,
    /// As a dump, an exact match and a bulk delete ([`Socket::delete_matching`]), with its
    /// totals: the kernel could not be trusted to flush exactly this filter.
    Matched(ChangeSummary),
}

/// Which dump of entries: a plain one or one that zeroes counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DumpKind {
    /// `CT_GET`.
    List,
    /// `CT_GET_CTRZERO`.
    Zero,
}

impl DumpKind {
    fn build(
        self,
        w: &mut Writer<'_>,
        seq: u32,
        filter: &DumpFilter,
    ) -> conntrack_codec::Result<()> {
        match self {
            DumpKind::List => request::dump(w, seq, filter).map(drop),
            DumpKind::Zero => request::dump_zero_counters(w, seq, filter).map(drop),
        }
    }
}

/// Builds and checks the view of a conntrack message the kernel sent.
fn view<'a>(nf: NfMsg<'a>) -> Result<Conntrack<'a>> {
    Conntrack::new_checked(nf).map_err(|error| Error::Codec {
        error,
        offset: None,
    })
}

fn codec(error: conntrack_codec::Error) -> Error {
    Error::Codec {
        error,
        offset: None,
    }
}

/// Streams a dump of conntrack entries to `f` as views; a message that is not a well-formed
/// entry stops the dump with [`Error::Codec`].
fn entries<'f, F>(
    mut f: F,
    error: &'f mut Option<Error>,
) -> impl FnMut(NfMsg<'_>) -> ControlFlow<()> + 'f
where
    F: FnMut(Conntrack<'_>) -> ControlFlow<()> + 'f,
{
    move |nf| match view(nf) {
        Ok(v) => f(v),
        Err(e) => {
            *error = Some(e);
            ControlFlow::Break(())
        }
    }
}

impl Socket {
    /// Creates an entry that must not exist yet (`CT_NEW` with `CREATE|EXCL`).
    ///
    /// # Errors
    /// [`Error::Build`] if the entry lacks its tuples or timeout; [`Error::Kernel`] with
    /// `EEXIST` if it exists, or another refusal; see [`Socket::execute`].
    pub fn create(&mut self, entry: &ConntrackRepr) -> Result<()> {
        self.execute(|w, seq| request::create(w, seq, entry).map(drop))
    }

    /// Updates an existing entry, found by its tuple and zone (`CT_NEW` without `CREATE`):
    /// the attributes `entry` has (mark, timeout, status bits, labels, protocol state...)
    /// are changed, the others are left alone.
    ///
    /// ```no_run
    /// use conntrack_codec::ct::request::Key;
    /// use conntrack_codec::ct::{ConntrackRepr, Tuple};
    ///
    /// let mut sock = conntrack_io::Socket::open()?;
    /// let orig = Tuple::tcp("10.0.0.1".parse()?, "10.0.0.2".parse()?, 40000, 443);
    /// // Set the mark and a new timeout of the entry in zone 3.
    /// sock.update(&ConntrackRepr {
    ///     orig: Some(orig),
    ///     zone: Some(3),
    ///     mark: Some(0x10),
    ///     timeout: Some(3600),
    ///     ..ConntrackRepr::default()
    /// })?;
    /// assert_eq!(sock.get(&Key::orig(orig).in_zone(3))?.mark, Some(0x10));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Kernel`] with `ENOENT` if there is no such entry; see [`Socket::execute`].
    pub fn update(&mut self, entry: &ConntrackRepr) -> Result<()> {
        self.execute(|w, seq| request::update(w, seq, entry).map(drop))
    }

    /// Creates the entry, or updates it if it exists (`CT_NEW` with `CREATE`).
    ///
    /// # Errors
    /// See [`Socket::create`].
    pub fn create_or_update(&mut self, entry: &ConntrackRepr) -> Result<()> {
        self.execute(|w, seq| request::create_or_update(w, seq, entry).map(drop))
    }

    /// Gets one entry as plain data.
    ///
    /// ```no_run
    /// use conntrack_codec::ct::request::Key;
    /// use conntrack_codec::ct::Tuple;
    /// use conntrack_io::{Errno, Error};
    ///
    /// let mut sock = conntrack_io::Socket::open()?;
    /// let orig = Tuple::udp("10.0.0.1".parse()?, "10.0.0.53".parse()?, 5000, 53);
    /// match sock.get(&Key::orig(orig)) {
    ///     Ok(entry) => println!("timeout {:?} s, mark {:?}", entry.timeout, entry.mark),
    ///     Err(Error::Kernel(k)) if k.errno == Errno::ENOENT => println!("no such entry"),
    ///     Err(e) => return Err(e.into()),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Kernel`] with `ENOENT` if there is no such entry; [`Error::Codec`] for a
    /// malformed reply; see [`Socket::request`].
    pub fn get(&mut self, key: &Key) -> Result<ConntrackRepr> {
        self.get_with(key, |v| ConntrackRepr::try_from(&v))?
            .map_err(codec)
    }

    /// Gets one entry and hands it to `f` as a view over the receive buffer.
    ///
    /// # Errors
    /// As [`Socket::get`].
    pub fn get_with<R>(&mut self, key: &Key, f: impl FnOnce(Conntrack<'_>) -> R) -> Result<R> {
        self.request(
            |w, seq| request::get(w, seq, key).map(drop),
            |nf| view(nf).map(f),
        )?
    }

    /// Deletes one entry, found by its tuple, its zone (an entry of zone 7 is not found
    /// without it) and, if the key has one, its id.
    ///
    /// # Errors
    /// [`Error::Kernel`] with `ENOENT` if there is no such entry (or its id differs).
    pub fn delete(&mut self, key: &Key) -> Result<()> {
        self.execute(|w, seq| request::delete(w, seq, key).map(drop))
    }

    /// Flushes what `filter` selects — exactly: everything, one family, or any filter.
    ///
    /// The kernel flushes in one request when it is known to compare every field of the
    /// filter right ([`crate::filtering`]: never for IPv6 addresses; tuple fields only
    /// since Linux 6.11, status since 5.15, zone since 6.8); otherwise, or if it answers
    /// `EOPNOTSUPP`, the flush is done by [`delete_matching`](Socket::delete_matching):
    /// a dump, an exact match and a bulk delete. An older kernel's flush would delete more
    /// than asked (it ignores what it does not know), and any kernel's flush by IPv6
    /// address deletes the other entries.
    ///
    /// ```no_run
    /// use conntrack_codec::ct::Tuple;
    /// use conntrack_codec::filter::DumpFilter;
    /// use conntrack_io::Flushed;
    ///
    /// let mut sock = conntrack_io::Socket::open()?;
    /// sock.flush(&DumpFilter::ipv6())?; // every IPv6 entry, in one request
    /// let by_reply = DumpFilter::all().with_reply(Tuple {
    ///     src: Some("fd00::5".parse()?),
    ///     ..Tuple::default()
    /// });
    /// match sock.flush(&by_reply)? {
    ///     Flushed::InKernel => println!("flushed by the kernel"),
    ///     Flushed::Matched(s) => println!("{} deleted one by one", s.succeeded),
    ///     _ => {}
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Build`] for an impossible filter ([`DumpFilter::check`]), before anything
    /// is sent; see [`Socket::execute`] and [`Socket::delete_matching`].
    pub fn flush(&mut self, filter: &DumpFilter) -> Result<Flushed> {
        filter.check().map_err(Error::Build)?;
        if self.kernel_filters.flushes_exactly(filter) {
            match self.execute(|w, seq| request::flush(w, seq, filter).map(drop)) {
                Ok(()) => return Ok(Flushed::InKernel),
                Err(Error::Kernel(k)) if k.errno == Errno::EOPNOTSUPP => {}
                Err(e) => return Err(e),
            }
        }
        self.delete_matching(filter).map(Flushed::Matched)
    }

    /// Runs a dump whose replies are conntrack entries, handing each to `f` as a view.
    fn list_with<B, F>(&mut self, build: B, f: F) -> Result<DumpSummary>
    where
        B: FnOnce(&mut Writer<'_>, u32) -> conntrack_codec::Result<()>,
        F: FnMut(Conntrack<'_>) -> ControlFlow<()>,
    {
        let mut error = None;
        let summary = self.dump(build, entries(f, &mut error))?;
        error.map_or(Ok(summary), Err)
    }

    /// Dumps with the part of `filter` the policy leaves to the kernel, handing every
    /// entry received to `f` unchecked; a dump the kernel refuses with `EOPNOTSUPP` is
    /// retried with only the family.
    pub(crate) fn dump_entries<F>(
        &mut self,
        filter: &DumpFilter,
        kind: DumpKind,
        mut f: F,
    ) -> Result<DumpSummary>
    where
        F: FnMut(Conntrack<'_>) -> ControlFlow<()>,
    {
        let kernel = self.kernel_filters.dump_filter(filter);
        match self.list_with(|w, seq| kind.build(w, seq, &kernel), &mut f) {
            Err(Error::Kernel(k)) if k.errno == Errno::EOPNOTSUPP && !kernel.is_plain() => {
                let family = DumpFilter::family(filter.family);
                self.list_with(|w, seq| kind.build(w, seq, &family), f)
            }
            other => other,
        }
    }

    /// Dumps the table, handing each entry `filter` selects to `f` as a view parsed in
    /// place (nothing is allocated per entry). `f` returns whether to go on.
    ///
    /// The kernel filters what it compares right, and every entry it sends is checked
    /// against the whole filter ([`DumpFilter::matches`]) before `f` sees it, so the
    /// entries are exactly those selected on any kernel, IPv6 addresses included (the
    /// kernel compares them inverted); [`DumpSummary::skipped`] counts the entries the
    /// check left out. See [`crate::filtering`].
    ///
    /// ```no_run
    /// use std::ops::ControlFlow;
    /// use conntrack_codec::ct::{l4proto, Tuple};
    /// use conntrack_codec::filter::DumpFilter;
    ///
    /// let mut sock = conntrack_io::Socket::open()?;
    /// let tcp_to_443 = DumpFilter::ipv4().with_orig(Tuple {
    ///     proto: Some(l4proto::TCP),
    ///     dst_port: Some(443),
    ///     ..Tuple::default()
    /// });
    /// let summary = sock.list(&tcp_to_443, |entry| {
    ///     println!("{:?} mark {:?}", entry.orig(), entry.mark());
    ///     ControlFlow::Continue(())
    /// })?;
    /// println!("{} entries", summary.delivered);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Build`] for an impossible filter; as [`Socket::dump`]; [`Error::Codec`] for
    /// an entry that is not well formed.
    pub fn list<F>(&mut self, filter: &DumpFilter, f: F) -> Result<DumpSummary>
    where
        F: FnMut(Conntrack<'_>) -> ControlFlow<()>,
    {
        self.list_checked(filter, DumpKind::List, f)
    }

    /// [`list`](Socket::list) with a callback that can fail with the caller's own error
    /// type: `?` works inside it, on codec results, io results and the caller's own. The
    /// first error stops the dump (the rest is read and dropped) and is returned; the
    /// socket's own errors are converted into `E`.
    ///
    /// ```no_run
    /// use std::collections::HashMap;
    /// use conntrack_codec::filter::DumpFilter;
    ///
    /// #[derive(Debug)]
    /// enum AppError {
    ///     Conntrack(conntrack_io::Error),
    ///     NoTuple,
    /// }
    /// impl From<conntrack_io::Error> for AppError {
    ///     fn from(e: conntrack_io::Error) -> Self {
    ///         AppError::Conntrack(e)
    ///     }
    /// }
    /// impl From<conntrack_codec::Error> for AppError {
    ///     fn from(e: conntrack_codec::Error) -> Self {
    ///         AppError::Conntrack(e.into())
    ///     }
    /// }
    ///
    /// fn per_source(sock: &mut conntrack_io::Socket) -> Result<HashMap<std::net::IpAddr, u32>, AppError> {
    ///     let mut count = HashMap::new();
    ///     sock.try_list(&DumpFilter::all(), |entry| {
    ///         let orig = entry.orig()?.ok_or(AppError::NoTuple)?;
    ///         *count.entry(orig.src.ok_or(AppError::NoTuple)?).or_insert(0) += 1;
    ///         Ok::<_, AppError>(())
    ///     })?;
    ///     Ok(count)
    /// }
    /// ```
    ///
    /// # Errors
    /// The first error of `f`, or [`list`](Socket::list)'s errors converted into `E`.
    pub fn try_list<F, E>(&mut self, filter: &DumpFilter, mut f: F) -> Result<DumpSummary, E>
    where
        F: FnMut(Conntrack<'_>) -> Result<(), E>,
        E: From<Error>,
    {
        let mut failed = None;
        let summary = self.list(filter, |entry| match f(entry) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(summary?),
        }
    }

    /// A dump of `kind` with `filter`, each entry checked against it before `f`.
    fn list_checked<F>(
        &mut self,
        filter: &DumpFilter,
        kind: DumpKind,
        mut f: F,
    ) -> Result<DumpSummary>
    where
        F: FnMut(Conntrack<'_>) -> ControlFlow<()>,
    {
        filter.check().map_err(Error::Build)?;
        let mut skipped = 0u64;
        let mut error = None;
        let check = |view: Conntrack<'_>| match filter.matches(&view) {
            Ok(true) => f(view),
            Ok(false) => {
                skipped += 1;
                ControlFlow::Continue(())
            }
            Err(e) => {
                error = Some(codec(e));
                ControlFlow::Break(())
            }
        };
        let summary = match kind {
            DumpKind::List => self.dump_entries(filter, kind, check),
            // A zeroing dump is never retried with less of the filter: it would zero more.
            DumpKind::Zero => self.list_with(|w, seq| kind.build(w, seq, filter), check),
        }?;
        if let Some(e) = error {
            return Err(e);
        }
        Ok(DumpSummary {
            delivered: summary.delivered.saturating_sub(skipped),
            skipped,
            ..summary
        })
    }

    /// Dumps the table like [`Socket::list`] and zeroes the counters of every entry it
    /// hands to `f` (`CT_GET_CTRZERO`); the entries show the counters before zeroing.
    ///
    /// The counters of exactly the selected entries are zeroed: when the kernel's zeroing
    /// dump would select more (IPv6 addresses, or fields the running kernel does not
    /// filter; see [`crate::filtering`]), the entries are dumped without zeroing, matched,
    /// and each matching one is zeroed by a `CT_GET_CTRZERO` of its own on the socket's
    /// second socket (`f` then sees that answer). Entries gone before theirs are left out
    /// (counted in [`DumpSummary::skipped`]).
    ///
    /// # Errors
    /// As [`Socket::list`]; for the per-entry zeroing, the errors of [`Socket::request`]
    /// other than `ENOENT`.
    pub fn list_and_zero<F>(&mut self, filter: &DumpFilter, mut f: F) -> Result<DumpSummary>
    where
        F: FnMut(Conntrack<'_>) -> ControlFlow<()>,
    {
        filter.check().map_err(Error::Build)?;
        if self.kernel_filters.dumps_exactly(filter) {
            match self.list_checked(filter, DumpKind::Zero, &mut f) {
                Err(Error::Kernel(k)) if k.errno == Errno::EOPNOTSUPP => {}
                other => return other,
            }
        }
        let mut helper = self.take_helper()?;
        let mut skipped = 0u64;
        let mut gone = 0u64;
        let mut error = None;
        let result = self.dump_entries(filter, DumpKind::List, |entry| {
            match filter
                .matches(&entry)
                .and_then(|m| m.then(|| Key::from_view(&entry)).transpose())
            {
                Ok(Some(key)) => {
                    let zeroed = helper.request(
                        |w, seq| request::get_zero_counters(w, seq, &key).map(drop),
                        |nf| view(nf).map(&mut f),
                    );
                    match zeroed.and_then(|r| r) {
                        Ok(flow) => flow,
                        Err(e) if e.errno() == Some(Errno::ENOENT) => {
                            gone += 1;
                            ControlFlow::Continue(())
                        }
                        Err(e) => {
                            error = Some(e);
                            ControlFlow::Break(())
                        }
                    }
                }
                Ok(None) => {
                    skipped += 1;
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    error = Some(codec(e));
                    ControlFlow::Break(())
                }
            }
        });
        self.put_helper(helper);
        let summary = result?;
        if let Some(e) = error {
            return Err(e);
        }
        let left_out = skipped + gone;
        Ok(DumpSummary {
            delivered: summary.delivered.saturating_sub(left_out),
            skipped: left_out,
            ..summary
        })
    }

    /// Dumps the dying list: entries being destroyed.
    ///
    /// # Errors
    /// As [`Socket::list`].
    pub fn list_dying<F>(&mut self, f: F) -> Result<DumpSummary>
    where
        F: FnMut(Conntrack<'_>) -> ControlFlow<()>,
    {
        self.list_with(|w, seq| request::dump_dying(w, seq).map(drop), f)
    }

    /// Dumps the unconfirmed list: entries whose first packet has not left the box yet.
    ///
    /// # Errors
    /// As [`Socket::list`].
    pub fn list_unconfirmed<F>(&mut self, f: F) -> Result<DumpSummary>
    where
        F: FnMut(Conntrack<'_>) -> ControlFlow<()>,
    {
        self.list_with(|w, seq| request::dump_unconfirmed(w, seq).map(drop), f)
    }

    /// The global statistics: entries in the table and its maximum.
    ///
    /// # Errors
    /// See [`Socket::request`]; [`Error::Codec`] for a malformed reply.
    pub fn stats(&mut self) -> Result<StatsGlobal> {
        self.request(
            |w, seq| request::stats_global(w, seq).map(drop),
            |nf| StatsGlobal::parse(&nf).map_err(codec),
        )?
    }

    /// The number of entries in the table (what `conntrack -C` prints).
    ///
    /// # Errors
    /// As [`Socket::stats`]; [`Error::Codec`] if the kernel left the count out.
    pub fn count(&mut self) -> Result<u32> {
        self.stats()?
            .entries
            .ok_or(codec(conntrack_codec::Error::MissingAttribute(
                "CTA_STATS_GLOBAL_ENTRIES",
            )))
    }

    /// Runs a dump whose replies `parse` reads, and collects them.
    fn collect<B, T>(
        &mut self,
        build: B,
        parse: impl Fn(&NfMsg<'_>) -> conntrack_codec::Result<T>,
    ) -> Result<Vec<T>>
    where
        B: FnOnce(&mut conntrack_codec::nl::Writer<'_>, u32) -> conntrack_codec::Result<()>,
    {
        let mut out = Vec::new();
        let mut error = None;
        let summary = self.dump(build, |nf| match parse(&nf) {
            Ok(s) => {
                out.push(s);
                ControlFlow::Continue(())
            }
            Err(e) => {
                error = Some(codec(e));
                ControlFlow::Break(())
            }
        })?;
        // Statistics dumps are never interrupted: nothing to report from the summary.
        let _ = summary;
        error.map_or(Ok(out), Err)
    }

    /// The per-CPU statistics, one value per CPU.
    ///
    /// # Errors
    /// As [`Socket::dump`]; [`Error::Codec`] for a malformed reply.
    pub fn stats_per_cpu(&mut self) -> Result<Vec<StatsCpu>> {
        self.collect(
            |w, seq| request::stats_cpu(w, seq).map(drop),
            StatsCpu::parse,
        )
    }

    /// Runs `build_one(item)` for each of `items` through [`Socket::bulk`].
    fn batch<T, R>(
        &mut self,
        items: &[T],
        window: usize,
        build_one: impl Fn(
            &mut conntrack_codec::nl::Writer<'_>,
            u32,
            &T,
        ) -> conntrack_codec::Result<core::ops::Range<usize>>,
        on_result: R,
    ) -> Result<BulkSummary>
    where
        R: FnMut(usize, Result<()>),
    {
        self.bulk(
            items.len(),
            window,
            |i, w, seq| match items.get(i) {
                Some(item) => build_one(w, seq, item).map(drop),
                None => Err(conntrack_codec::Error::InvalidValue("bulk index")),
            },
            on_result,
        )
    }

    /// Creates many entries with many requests per datagram ([`Socket::bulk`]), `window` at
    /// most in flight; `on_result(index, result)` is called once per entry.
    ///
    /// # Errors
    /// As [`Socket::bulk`].
    pub fn create_batch<R>(
        &mut self,
        entries: &[ConntrackRepr],
        window: usize,
        on_result: R,
    ) -> Result<BulkSummary>
    where
        R: FnMut(usize, Result<()>),
    {
        self.batch(entries, window, request::create, on_result)
    }

    /// Updates many entries in bulk; see [`Socket::create_batch`].
    ///
    /// # Errors
    /// As [`Socket::bulk`].
    pub fn update_batch<R>(
        &mut self,
        entries: &[ConntrackRepr],
        window: usize,
        on_result: R,
    ) -> Result<BulkSummary>
    where
        R: FnMut(usize, Result<()>),
    {
        self.batch(entries, window, request::update, on_result)
    }

    /// Deletes many entries in bulk; see [`Socket::create_batch`].
    ///
    /// # Errors
    /// As [`Socket::bulk`].
    pub fn delete_batch<R>(
        &mut self,
        keys: &[Key],
        window: usize,
        on_result: R,
    ) -> Result<BulkSummary>
    where
        R: FnMut(usize, Result<()>),
    {
        self.batch(keys, window, request::delete, on_result)
    }

    /// Creates an expectation; its master must exist and have a helper.
    ///
    /// # Errors
    /// [`Error::Kernel`]: `ENOENT` without the master, `EOPNOTSUPP` if it has no helper,
    /// `EEXIST` if the expectation exists; see [`Socket::execute`].
    pub fn exp_create(&mut self, exp: &ExpectRepr) -> Result<()> {
        self.execute(|w, seq| exp_request::create(w, seq, exp).map(drop))
    }

    /// Gets one expectation by its expected tuple.
    ///
    /// # Errors
    /// [`Error::Kernel`] with `ENOENT` if there is none; [`Error::Codec`] for a malformed
    /// reply.
    pub fn exp_get(&mut self, key: &ExpKey) -> Result<ExpectRepr> {
        self.request(
            |w, seq| exp_request::get(w, seq, key).map(drop),
            |nf| {
                Expect::new_checked(nf)
                    .and_then(|v| ExpectRepr::try_from(&v))
                    .map_err(codec)
            },
        )?
    }

    /// Deletes one expectation by its expected tuple (and id, if the key has one).
    ///
    /// # Errors
    /// [`Error::Kernel`] with `ENOENT` if there is none.
    pub fn exp_delete(&mut self, key: &ExpKey) -> Result<()> {
        self.execute(|w, seq| exp_request::delete(w, seq, key).map(drop))
    }

    /// Deletes every expectation of the helper named `helper`.
    ///
    /// # Errors
    /// See [`Socket::execute`].
    pub fn exp_delete_helper(&mut self, helper: &str) -> Result<()> {
        self.execute(|w, seq| exp_request::delete_by_helper(w, seq, helper).map(drop))
    }

    /// Flushes the expectations of `family` (0 for all).
    ///
    /// # Errors
    /// See [`Socket::execute`].
    pub fn exp_flush(&mut self, family: u8) -> Result<()> {
        self.execute(|w, seq| exp_request::flush(w, seq, family).map(drop))
    }

    /// Dumps the expectations of `family` (0 for all), each as a view parsed in place.
    ///
    /// # Errors
    /// As [`Socket::dump`]; [`Error::Codec`] for a malformed expectation.
    pub fn exp_list<F>(&mut self, family: u8, mut f: F) -> Result<DumpSummary>
    where
        F: FnMut(Expect<'_>) -> ControlFlow<()>,
    {
        let mut error = None;
        let summary = self.dump(
            |w, seq| exp_request::dump(w, seq, family).map(drop),
            |nf| match Expect::new_checked(nf) {
                Ok(v) => f(v),
                Err(e) => {
                    error = Some(codec(e));
                    ControlFlow::Break(())
                }
            },
        )?;
        error.map_or(Ok(summary), Err)
    }

    /// The per-CPU expectation statistics.
    ///
    /// # Errors
    /// As [`Socket::dump`]; [`Error::Codec`] for a malformed reply.
    pub fn exp_stats_per_cpu(&mut self) -> Result<Vec<ExpStatsCpu>> {
        self.collect(
            |w, seq| exp_request::stats_cpu(w, seq).map(drop),
            ExpStatsCpu::parse,
        )
    }
}
