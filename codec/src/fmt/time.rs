//! Time as conntrack-tools prints it: `ctime()` for `[start=...]`, the broken-down time of
//! XML's `<when>`, seconds from the kernel's nanoseconds.

use core::fmt::{self, Display, Formatter};

/// `floor(ns / 1e9)`.
pub(crate) const fn secs(ns: u64) -> u64 {
    ns / 1_000_000_000
}

/// Broken-down civil time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tm {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    /// 0 = Sunday.
    wday: u32,
}

/// Converts seconds since the epoch plus an offset to civil time (proleptic Gregorian).
///
/// The arithmetic cannot overflow: the input is at most `u64::MAX + i32::MAX` seconds, and
/// every intermediate value stays within a small multiple of that, far inside `i128`.
#[allow(clippy::arithmetic_side_effects)]
fn civil(epoch_secs: u64, utc_offset: i32) -> Tm {
    let t = i128::from(epoch_secs).saturating_add(i128::from(utc_offset));
    let days = t.div_euclid(86_400);
    let rem = t.rem_euclid(86_400);
    let narrow = |v: i128| u32::try_from(v).unwrap_or(0);
    let (hour, min, sec) = (
        narrow(rem / 3600),
        narrow(rem % 3600 / 60),
        narrow(rem % 60),
    );
    // 1970-01-01 was a Thursday (4).
    let wday = narrow(days.saturating_add(4).rem_euclid(7));
    // Days to civil date (the era-based algorithm).
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = narrow(doy - (153 * mp + 2) / 5 + 1);
    let month = narrow(if mp < 10 { mp + 3 } else { mp - 9 });
    let year = yoe + era * 400 + i128::from(month <= 2);
    Tm {
        year: i64::try_from(year).unwrap_or(i64::MAX),
        month,
        day,
        hour,
        min,
        sec,
        wday,
    }
}

/// `ctime()` without its newline: `Fri Nov 27 09:53:28 2026`, for seconds since the epoch
/// (the first field) at an offset from UTC in seconds (the second: the local time zone's).
///
/// ```
/// use conntrack_codec::fmt::Ctime;
/// assert_eq!(Ctime(1_796_441_926, 0).to_string(), "Sat Dec  5 03:38:46 2026");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ctime(pub u64, pub i32);

#[cfg(feature = "defmt")]
impl defmt::Format for Ctime {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self));
    }
}

impl Display for Ctime {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let tm = civil(self.0, self.1);
        let day = DAYS
            .get(usize::try_from(tm.wday).unwrap_or(7))
            .copied()
            .unwrap_or("???");
        let month = MONTHS
            .get(usize::try_from(tm.month).unwrap_or(0).wrapping_sub(1))
            .copied()
            .unwrap_or("???");
        write!(
            f,
            "{day} {month}{:3} {:02}:{:02}:{:02} {}",
            tm.day, tm.hour, tm.min, tm.sec, tm.year
        )
    }
}

/// `<when>...</when>` of XML events with `-o timestamp`.
pub(crate) struct When(pub(crate) u64, pub(crate) i32);

impl Display for When {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let tm = civil(self.0, self.1);
        write!(
            f,
            "<when><hour>{}</hour><min>{:02}</min><sec>{:02}</sec><wday>{}</wday>\
             <day>{}</day><month>{}</month><year>{}</year></when>",
            tm.hour,
            tm.min,
            tm.sec,
            tm.wday.saturating_add(1),
            tm.day,
            tm.month,
            tm.year
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmt::text::tests::show;

    #[test]
    fn ctime_and_civil() {
        // 2026-11-27 09:53:28 UTC was a Friday.
        assert_eq!(
            show(Ctime(1_795_773_208, 0)).as_str(),
            "Fri Nov 27 09:53:28 2026"
        );
        assert_eq!(show(Ctime(0, 0)).as_str(), "Thu Jan  1 00:00:00 1970");
        assert_eq!(show(Ctime(0, -3600)).as_str(), "Wed Dec 31 23:00:00 1969");
        assert_eq!(
            show(Ctime(951_782_400, 0)).as_str(),
            "Tue Feb 29 00:00:00 2000"
        );
    }

    /// `civil` is exempt from `arithmetic_side_effects` (see its comment); the extremes of
    /// its input, run with overflow checks (tests and the fuzz targets have them on), show
    /// that the claim holds.
    #[test]
    fn civil_time_at_the_extremes() {
        for (secs, offset) in [
            (0, 0),
            (0, i32::MIN),
            (0, i32::MAX),
            (u64::MAX, i32::MAX),
            (u64::MAX, i32::MIN),
        ] {
            let tm = civil(secs, offset);
            assert!(tm.month >= 1 && tm.month <= 12 && tm.day >= 1 && tm.day <= 31);
            assert!(tm.hour < 24 && tm.min < 60 && tm.sec < 60 && tm.wday < 7);
        }
        assert_eq!(civil(0, 0).year, 1970);
        assert_eq!(civil(0, i32::MIN).year, 1901);
    }
}
