//! Replies to the statistics requests.

use crate::ct::attrs::{stats, stats_exp, stats_global};
use crate::nfnl::{ct_msg, exp_msg, NfMsg, Subsystem};
use crate::{Error, Result};

/// Per-CPU conntrack statistics (one message per CPU; `CTA_STATS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StatsCpu {
    /// The CPU (nfgenmsg `res_id`).
    pub cpu: u16,
    /// Searched (no longer sent).
    pub searched: Option<u32>,
    /// Found.
    pub found: Option<u32>,
    /// New (no longer sent).
    pub new: Option<u32>,
    /// Invalid.
    pub invalid: Option<u32>,
    /// Ignore (no longer sent).
    pub ignore: Option<u32>,
    /// Delete (no longer sent).
    pub delete: Option<u32>,
    /// Delete list (no longer sent).
    pub delete_list: Option<u32>,
    /// Insert.
    pub insert: Option<u32>,
    /// Insert failed.
    pub insert_failed: Option<u32>,
    /// Drop.
    pub drop: Option<u32>,
    /// Early drop.
    pub early_drop: Option<u32>,
    /// Error.
    pub error: Option<u32>,
    /// Search restart.
    pub search_restart: Option<u32>,
    /// Clash resolve.
    pub clash_resolve: Option<u32>,
    /// Chain too long.
    pub chain_toolong: Option<u32>,
}

impl StatsCpu {
    /// Reads one reply to a per-CPU statistics request.
    ///
    /// # Errors
    /// [`Error::UnexpectedMessage`] for another message; a malformed attribute.
    pub fn parse(nf: &NfMsg<'_>) -> Result<Self> {
        if nf.subsystem() != Subsystem::Ctnetlink || nf.msg_num() != ct_msg::GET_STATS_CPU {
            return Err(Error::UnexpectedMessage("not per-CPU conntrack statistics"));
        }
        let mut s = StatsCpu {
            cpu: nf.nfgen().res_id,
            ..StatsCpu::default()
        };
        for a in nf.attrs() {
            let a = a?;
            let slot = match a.kind() {
                stats::SEARCHED => &mut s.searched,
                stats::FOUND => &mut s.found,
                stats::NEW => &mut s.new,
                stats::INVALID => &mut s.invalid,
                stats::IGNORE => &mut s.ignore,
                stats::DELETE => &mut s.delete,
                stats::DELETE_LIST => &mut s.delete_list,
                stats::INSERT => &mut s.insert,
                stats::INSERT_FAILED => &mut s.insert_failed,
                stats::DROP => &mut s.drop,
                stats::EARLY_DROP => &mut s.early_drop,
                stats::ERROR => &mut s.error,
                stats::SEARCH_RESTART => &mut s.search_restart,
                stats::CLASH_RESOLVE => &mut s.clash_resolve,
                stats::CHAIN_TOOLONG => &mut s.chain_toolong,
                _ => continue,
            };
            *slot = Some(a.u32_be()?);
        }
        Ok(s)
    }
}

/// Global conntrack statistics (`CTA_STATS_GLOBAL_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StatsGlobal {
    /// Entries in the table.
    pub entries: Option<u32>,
    /// The table's maximum.
    pub max_entries: Option<u32>,
}

impl StatsGlobal {
    /// Reads the reply to a global statistics request.
    ///
    /// # Errors
    /// [`Error::UnexpectedMessage`] for another message; a malformed attribute.
    pub fn parse(nf: &NfMsg<'_>) -> Result<Self> {
        if nf.subsystem() != Subsystem::Ctnetlink || nf.msg_num() != ct_msg::GET_STATS {
            return Err(Error::UnexpectedMessage("not global conntrack statistics"));
        }
        let mut s = StatsGlobal::default();
        for a in nf.attrs() {
            let a = a?;
            match a.kind() {
                stats_global::ENTRIES => s.entries = Some(a.u32_be()?),
                stats_global::MAX_ENTRIES => s.max_entries = Some(a.u32_be()?),
                _ => {}
            }
        }
        Ok(s)
    }
}

/// Per-CPU expectation statistics (`CTA_STATS_EXP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExpStatsCpu {
    /// The CPU (nfgenmsg `res_id`).
    pub cpu: u16,
    /// New.
    pub new: Option<u32>,
    /// Create.
    pub create: Option<u32>,
    /// Delete.
    pub delete: Option<u32>,
}

impl ExpStatsCpu {
    /// Reads one reply to a per-CPU expectation statistics request.
    ///
    /// The kernel sends these replies with the type `CTNETLINK << 8 | 3` (the expectation
    /// message number under the conntrack subsystem), not under `CTNETLINK_EXP`; both are
    /// accepted.
    ///
    /// # Errors
    /// [`Error::UnexpectedMessage`] for another message; a malformed attribute.
    pub fn parse(nf: &NfMsg<'_>) -> Result<Self> {
        let known_subsystem = matches!(
            nf.subsystem(),
            Subsystem::Ctnetlink | Subsystem::CtnetlinkExp
        );
        if !known_subsystem || nf.msg_num() != exp_msg::GET_STATS_CPU {
            return Err(Error::UnexpectedMessage(
                "not per-CPU expectation statistics",
            ));
        }
        let mut s = ExpStatsCpu {
            cpu: nf.nfgen().res_id,
            ..ExpStatsCpu::default()
        };
        for a in nf.attrs() {
            let a = a?;
            match a.kind() {
                stats_exp::NEW => s.new = Some(a.u32_be()?),
                stats_exp::CREATE => s.create = Some(a.u32_be()?),
                stats_exp::DELETE => s.delete = Some(a.u32_be()?),
                _ => {}
            }
        }
        Ok(s)
    }
}
