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

use crate::error::{Error, Result};
use crate::ops::{BulkSummary, DumpSummary};
use crate::socket::Socket;

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

    /// Updates an existing entry, found by its tuple and zone (`CT_NEW` without `CREATE`).
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

    /// Flushes the table: everything, one family, or what a mark, status or zone filter
    /// selects.
    ///
    /// # Errors
    /// See [`Socket::execute`].
    pub fn flush(&mut self, filter: &DumpFilter) -> Result<()> {
        self.execute(|w, seq| request::flush(w, seq, filter).map(drop))
    }

    /// Runs a dump whose replies are conntrack entries, handing each to `f` as a view.
    fn list_with<B, F>(&mut self, build: B, f: F) -> Result<DumpSummary>
    where
        B: FnOnce(&mut conntrack_codec::nl::Writer<'_>, u32) -> conntrack_codec::Result<()>,
        F: FnMut(Conntrack<'_>) -> ControlFlow<()>,
    {
        let mut error = None;
        let summary = self.dump(build, entries(f, &mut error))?;
        error.map_or(Ok(summary), Err)
    }

    /// Dumps the table, filtered in the kernel by `filter`, handing each entry to `f` as a
    /// view parsed in place (nothing is allocated per entry). `f` returns whether to go on.
    ///
    /// # Errors
    /// As [`Socket::dump`]; [`Error::Codec`] for an entry that is not well formed.
    pub fn list<F>(&mut self, filter: &DumpFilter, f: F) -> Result<DumpSummary>
    where
        F: FnMut(Conntrack<'_>) -> ControlFlow<()>,
    {
        self.list_with(|w, seq| request::dump(w, seq, filter).map(drop), f)
    }

    /// Dumps the table like [`Socket::list`] and zeroes the counters of every entry dumped
    /// (`CT_GET_CTRZERO`); the entries show the counters before zeroing.
    ///
    /// # Errors
    /// As [`Socket::list`].
    pub fn list_and_zero<F>(&mut self, filter: &DumpFilter, f: F) -> Result<DumpSummary>
    where
        F: FnMut(Conntrack<'_>) -> ControlFlow<()>,
    {
        self.list_with(
            |w, seq| request::dump_zero_counters(w, seq, filter).map(drop),
            f,
        )
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
