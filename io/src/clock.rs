//! The wall clock the text formatter needs: [`conntrack_codec::fmt::Output`] takes the time
//! of day and the local offset from UTC as plain numbers (the codec reads no clock), and
//! every program that prints entries as conntrack-tools does fills them from here.
//!
//! ```
//! let out = conntrack_io::clock::output_now();
//! assert!(out.now > 0);
//! ```
// `localtime_r` is the one call here nix does not wrap; it is kept to this module.
#![allow(unsafe_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use conntrack_codec::fmt::Output;

/// Now, in whole seconds since the epoch (0 if the clock is before it).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Now, in seconds and microseconds since the epoch (what `gettimeofday` gives, and what
/// `conntrack -o timestamp` prints before each event).
pub fn now_micros() -> (u64, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs(), d.subsec_micros())
}

/// The local time zone's offset from UTC at `secs`, in seconds, as `localtime_r` gives it
/// (so `TZ` is honoured); 0 if the time cannot be converted.
// `time_t` is marked deprecated on musl (its width changes with the 64-bit time transition);
// it is exactly the type `localtime_r` takes, so it is the right one here.
#[allow(deprecated)]
pub fn utc_offset(secs: u64) -> i32 {
    let t = nix::libc::time_t::try_from(secs).unwrap_or(0);
    // SAFETY: `tm` is a plain C struct for which all-zero bytes are a valid value.
    let mut tm: nix::libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: `localtime_r` reads `t` and writes only into `tm`; both are live locals we own
    // for the duration of the call, and it keeps neither pointer.
    let ok = unsafe { !nix::libc::localtime_r(&t, &mut tm).is_null() };
    if ok {
        i32::try_from(tm.tm_gmtoff).unwrap_or(0)
    } else {
        0
    }
}

/// Fills the clock fields of `out` (`now` and `utc_offset`) with the current time.
pub fn set_now(out: &mut Output) {
    let now = now_secs();
    out.now = now;
    out.utc_offset = utc_offset(now);
}

/// The default [`Output`] with the clock filled in.
pub fn output_now() -> Output {
    let mut out = Output::default();
    set_now(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_forward_and_the_offset_is_a_real_one() {
        let (s, us) = now_micros();
        assert!(us < 1_000_000);
        assert!(now_secs() >= s);
        // No zone on Earth is more than 14 hours from UTC.
        assert!(utc_offset(s).abs() <= 14 * 3600);
        let out = output_now();
        assert!(out.now >= s);
    }
}
