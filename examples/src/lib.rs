//! Shared pieces of the example programs (each binary lives in `src/bin/`). The clock they
//! print with is `conntrack_io::clock`.

pub mod decode;

/// `EEXIST (File exists)` for a positive errno.
pub fn errno_text(errno: i32) -> String {
    let e = nix::errno::Errno::from_raw(errno);
    format!("{e:?} ({})", e.desc())
}
