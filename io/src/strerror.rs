//! The C library's wording of an errno, as `strerror(3)` and `perror(3)` print it: what a
//! program that must print the same lines as a C tool needs (`nix`'s [`Errno::desc`] has
//! its own wording for some, such as `EIO`).
//!
//! ```
//! assert_eq!(conntrack_io::strerror(2), "No such file or directory");
//! assert_eq!(conntrack_io::strerror(0), "Success");
//! ```
//!
//! [`Errno::desc`]: crate::Errno::desc

/// The text `strerror(errno)` gives, from the C library this program runs with.
pub fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error ") {
        Some(cut) => text.get(..cut).unwrap_or(&text).to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::strerror;

    #[test]
    fn the_c_library_wording() {
        assert_eq!(strerror(nix::libc::EIO), "Input/output error");
        assert_eq!(strerror(nix::libc::ENODATA), "No data available");
        assert_eq!(strerror(nix::libc::ENOBUFS), "No buffer space available");
    }
}
