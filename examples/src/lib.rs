//! Shared pieces of the example programs (each binary lives in `src/bin/`).

use std::time::{SystemTime, UNIX_EPOCH};

pub mod decode;

use conntrack_codec::fmt::Output;

/// Now, in seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Now, in seconds and microseconds since the epoch (what `gettimeofday` gives).
pub fn now_micros() -> (u64, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs(), d.subsec_micros())
}

/// The local time zone's offset from UTC at `secs`, in seconds (honours `TZ`).
// `time_t` is marked deprecated on musl (its width changes with the 64-bit time transition);
// it is exactly the type `localtime_r` takes, so it is the right one here.
#[allow(deprecated)]
pub fn utc_offset(secs: u64) -> i32 {
    let t = nix::libc::time_t::try_from(secs).unwrap_or(0);
    // SAFETY: `localtime_r` reads `t` and writes only into the zeroed `tm` we own; both
    // pointers are to live locals.
    let mut tm: nix::libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !nix::libc::localtime_r(&t, &mut tm).is_null() };
    if ok {
        i32::try_from(tm.tm_gmtoff).unwrap_or(0)
    } else {
        0
    }
}

/// An [`Output`] with the clock filled in.
pub fn output_now() -> Output {
    let now = now_secs();
    Output {
        now,
        utc_offset: utc_offset(now),
        ..Output::default()
    }
}

/// `EEXIST (File exists)` for a positive errno.
pub fn errno_text(errno: i32) -> String {
    let e = nix::errno::Errno::from_raw(errno);
    format!("{e:?} ({})", e.desc())
}
