//! What the program reads from the machine besides the kernel: files (the label map,
//! `/etc/protocols`, `-R` files and standard input, the `/proc` fallbacks) and the
//! environment. [`Machine`] is the real one; [`Files`] holds them in memory, so that the
//! program can run, whole, in a test without root and without touching the host.

use std::collections::BTreeMap;
use std::io;

/// Where conntrack-tools reads label names (fixed in 1.4.7).
pub const CONNLABEL_CONF: &str = conntrack_io::DEFAULT_CONNLABEL_CONF;
/// Where `getprotobyname` and `getprotobynumber` look.
pub const PROTOCOLS: &str = "/etc/protocols";
/// What `-R -` reads.
pub const STDIN: &str = "/dev/stdin";

/// The files and environment the program reads.
pub trait System {
    /// Reads the whole file at `path` (`/dev/stdin` is standard input).
    ///
    /// # Errors
    /// The file cannot be read (its errno is what the tool reports).
    fn read(&mut self, path: &str) -> io::Result<Vec<u8>>;

    /// Whether `POSIXLY_CORRECT` is set (option scanning stops at the first non-option).
    fn posixly_correct(&self) -> bool;

    /// Catches SIGINT and SIGTERM from now on, for a command that must finish the changes
    /// it has in flight before it ends (see [`StopFlag`](crate::signals::StopFlag));
    /// `None` where there are no signals to catch (in memory, or if they cannot be).
    fn catch_stop(&mut self) -> Option<crate::signals::StopFlag>;
}

/// The real machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct Machine;

impl System for Machine {
    fn read(&mut self, path: &str) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn posixly_correct(&self) -> bool {
        std::env::var_os("POSIXLY_CORRECT").is_some()
    }

    fn catch_stop(&mut self) -> Option<crate::signals::StopFlag> {
        crate::signals::StopFlag::catch().ok()
    }
}

/// Files in memory; a path that is not there reads as `ENOENT`.
#[derive(Debug, Default, Clone)]
pub struct Files {
    files: BTreeMap<String, Vec<u8>>,
    /// `POSIXLY_CORRECT`.
    pub posixly_correct: bool,
}

impl Files {
    /// Adds (or replaces) a file.
    pub fn add(&mut self, path: &str, bytes: &[u8]) -> &mut Self {
        self.files.insert(path.to_string(), bytes.to_vec());
        self
    }
}

impl System for Files {
    fn read(&mut self, path: &str) -> io::Result<Vec<u8>> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from_raw_os_error(nix::libc::ENOENT))
    }

    fn posixly_correct(&self) -> bool {
        self.posixly_correct
    }

    fn catch_stop(&mut self) -> Option<crate::signals::StopFlag> {
        None
    }
}
