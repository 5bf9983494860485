//! Which parts of a [`DumpFilter`] the socket leaves to the kernel.
//!
//! The kernel compares some filter fields wrongly and ignores the ones it is too old to
//! know (see [`conntrack_codec::filter::dump`] for the table, kernel by kernel). So:
//!
//! - a dump ([`Socket::list`]) sends the part any kernel compares right
//!   ([`DumpFilter::kernel_filter`]) and checks every entry it receives against the whole
//!   filter in userspace ([`DumpFilter::matches`]): a kernel that ignores a field only makes
//!   the dump longer ([`DumpSummary::skipped`](crate::DumpSummary::skipped) counts what
//!   userspace dropped);
//! - a flush ([`Socket::flush`]) goes to the kernel only when the kernel part is the whole
//!   filter and the running kernel is at least [`DumpFilter::kernel_flush_since`];
//!   otherwise it is a dump, an exact match and a bulk delete
//!   ([`Socket::delete_matching`]);
//! - a counter-zeroing dump ([`Socket::list_and_zero`]) zeroes in the kernel's dump only on
//!   the same condition (for dumps); otherwise it dumps, matches, and zeroes each matching
//!   entry with a `CT_GET_CTRZERO` of its own.
//!
//! A kernel that answers `EOPNOTSUPP` to a filtered dump or flush (built without zones or
//! marks, say) gets the same request again with only the family, and the rest is done in
//! userspace. [`KernelFilters`] sets the policy; [`KernelFilters::FamilyOnly`] forces the
//! fallback everywhere.

use std::sync::OnceLock;

use conntrack_codec::filter::{DumpFilter, KernelRelease};

#[cfg(doc)]
use crate::Socket;

/// What a socket trusts the kernel to filter; see [`Socket::set_kernel_filters`] and the
/// [module documentation](self).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelFilters {
    /// What the running kernel filters right, by its release (read once from
    /// `/proc/sys/kernel/osrelease`; an unreadable release counts as a kernel too old for
    /// any filtered flush).
    #[default]
    Auto,
    /// What a kernel of this release filters right (for a kernel that reports another
    /// release than what it has, or for tests).
    Release(KernelRelease),
    /// Only the family: every other field is compared in userspace, and every filtered
    /// flush or counter-zeroing dump is done entry by entry. What a request that the
    /// kernel refused with `EOPNOTSUPP` is retried with.
    FamilyOnly,
}

/// The release of the running kernel, `(0, 0)` if it cannot be read.
pub fn running_release() -> KernelRelease {
    static RELEASE: OnceLock<KernelRelease> = OnceLock::new();
    *RELEASE.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .and_then(|s| parse_release(&s))
            .unwrap_or((0, 0))
    })
}

/// `(major, minor)` of a release string such as `6.18.44-fc-v1252`.
pub(crate) fn parse_release(s: &str) -> Option<KernelRelease> {
    let mut parts = s.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// What the tuple fields of a dump need (`CTA_FILTER`, 5.8), status (5.15) and zone (6.8).
fn dump_since(f: &DumpFilter) -> KernelRelease {
    let mut since: KernelRelease = (0, 0);
    for (release, used) in [
        ((5, 15), f.status.is_some()),
        ((6, 8), f.zone.is_some()),
        ((5, 8), f.orig.is_some() || f.reply.is_some()),
    ] {
        if used && release > since {
            since = release;
        }
    }
    since
}

impl KernelFilters {
    /// The release the policy assumes, or `None` for [`KernelFilters::FamilyOnly`].
    fn release(self) -> Option<KernelRelease> {
        match self {
            KernelFilters::Auto => Some(running_release()),
            KernelFilters::Release(r) => Some(r),
            KernelFilters::FamilyOnly => None,
        }
    }

    /// The filter to send with a dump whose entries are then matched in userspace.
    pub(crate) fn dump_filter(self, f: &DumpFilter) -> DumpFilter {
        match self {
            KernelFilters::FamilyOnly => DumpFilter::family(f.family),
            _ => f.kernel_filter(),
        }
    }

    /// Whether a flush with `f` deletes exactly what `f` selects.
    pub(crate) fn flushes_exactly(self, f: &DumpFilter) -> bool {
        if f.is_plain() && f.family == 0 {
            return true;
        }
        match (self.release(), f.kernel_flush_since()) {
            (Some(release), Some(since)) => release >= since,
            (None, Some(_)) => f.is_plain(),
            (_, None) => false,
        }
    }

    /// Whether a zeroing dump with `f` zeroes exactly the entries `f` selects.
    pub(crate) fn dumps_exactly(self, f: &DumpFilter) -> bool {
        if f.is_plain() {
            return true;
        }
        match self.release() {
            Some(release) => f.kernel_filter() == *f && release >= dump_since(f),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_codec::ct::{Status, Tuple};

    #[test]
    fn releases_parse() {
        assert_eq!(parse_release("6.18.44-fc-v1252\n"), Some((6, 18)));
        assert_eq!(parse_release("5.15.0-91-generic"), Some((5, 15)));
        assert_eq!(parse_release("6.8-rc1"), Some((6, 8)));
        assert_eq!(parse_release("garbage"), None);
        assert!(running_release() >= (4, 0), "{:?}", running_release());
    }

    #[test]
    fn flushes_go_to_the_kernel_only_when_it_is_exact() {
        let v4 = DumpFilter::all().with_orig(Tuple {
            src: Some("10.0.0.1".parse().unwrap()),
            ..Tuple::default()
        });
        let v6 = DumpFilter::all().with_orig(Tuple {
            src: Some("fd00::1".parse().unwrap()),
            ..Tuple::default()
        });
        let status = DumpFilter::all().with_status(Status::ASSURED, Status::ASSURED);
        let at = |r| KernelFilters::Release(r);
        assert!(at((6, 11)).flushes_exactly(&v4));
        assert!(!at((6, 10)).flushes_exactly(&v4));
        assert!(!at((6, 18)).flushes_exactly(&v6));
        assert!(at((5, 15)).flushes_exactly(&status));
        assert!(!at((5, 14)).flushes_exactly(&status));
        assert!(at((0, 0)).flushes_exactly(&DumpFilter::all()));
        assert!(!at((4, 19)).flushes_exactly(&DumpFilter::ipv4()));
        let family_only = KernelFilters::FamilyOnly;
        assert!(family_only.flushes_exactly(&DumpFilter::ipv6()));
        assert!(!family_only.flushes_exactly(&status));
        assert_eq!(family_only.dump_filter(&v4), DumpFilter::ipv4());
        assert_eq!(at((6, 18)).dump_filter(&v6), DumpFilter::ipv6());
        assert!(at((5, 8)).dumps_exactly(&v4));
        assert!(!at((5, 7)).dumps_exactly(&v4));
        assert!(!at((6, 18)).dumps_exactly(&v6));
        assert!(!family_only.dumps_exactly(&status));
    }
}
