//! Logging as conntrackd 1.4.7 does it (`src/log.c`): every line is
//! `[<ctime>] (pid=<pid>) [<level>] <message>`, on the console until logging is set up and
//! for as long as the program is not a background daemon (info and notice on stdout,
//! warnings and errors on stderr), then also into `LogFile` and to syslog (`Syslog`, with
//! the package name `conntrack-tools`, the pid, and the configured facility).

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use conntrack_codec::fmt::Ctime;

/// A log line's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// `info`.
    Info,
    /// `notice`.
    Notice,
    /// `warning`.
    Warning,
    /// `ERROR`.
    Error,
}

impl Priority {
    /// The word in brackets.
    pub fn word(self) -> &'static str {
        match self {
            Priority::Info => "info",
            Priority::Notice => "notice",
            Priority::Warning => "warning",
            Priority::Error => "ERROR",
        }
    }

    /// The syslog level.
    pub fn syslog_level(self) -> i32 {
        match self {
            Priority::Info => nix::libc::LOG_INFO,
            Priority::Notice => nix::libc::LOG_NOTICE,
            Priority::Warning => nix::libc::LOG_WARNING,
            Priority::Error => nix::libc::LOG_ERR,
        }
    }

    /// Whether the console line goes to stderr (warnings and errors) or stdout.
    pub fn to_stderr(self) -> bool {
        matches!(self, Priority::Warning | Priority::Error)
    }
}

/// `ctime`'s text of `secs` since the epoch in the local time zone (`TZ` honoured), without
/// its newline: `Sat Dec  5 02:39:36 2026`.
pub fn ctime_local(secs: i64) -> Ctime {
    let secs = u64::try_from(secs).unwrap_or(0);
    Ctime(secs, conntrack_io::clock::utc_offset(secs))
}

/// One log line as 1.4.7 writes it, with its newline.
pub fn line(when: Ctime, pid: u32, p: Priority, msg: &str) -> String {
    format!("[{when}] (pid={pid}) [{}] {msg}\n", p.word())
}

/// A syslog facility by its `conntrackd.conf` name (`daemon`, `local0`..`local7`).
pub fn facility(name: &str) -> Option<i32> {
    use nix::libc::*;
    Some(match name {
        "daemon" => LOG_DAEMON,
        "local0" => LOG_LOCAL0,
        "local1" => LOG_LOCAL1,
        "local2" => LOG_LOCAL2,
        "local3" => LOG_LOCAL3,
        "local4" => LOG_LOCAL4,
        "local5" => LOG_LOCAL5,
        "local6" => LOG_LOCAL6,
        "local7" => LOG_LOCAL7,
        _ => return None,
    })
}

/// The logger: the console, then the log file and syslog once [`Logger::init`] ran.
#[derive(Debug, Default)]
pub struct Logger {
    background: bool,
    init: bool,
    file: Option<File>,
    syslog: Option<i32>,
    syslog_open: bool,
}

/// The name syslog lines carry: 1.4.7 opens syslog with its package name.
static IDENT: &[u8] = b"conntrack-tools\0";

impl Logger {
    /// A logger that writes to the console only.
    pub fn console() -> Logger {
        Logger::default()
    }

    /// Opens the log file (appending) and syslog.
    ///
    /// # Errors
    /// The line 1.4.7 prints on stderr when the log file cannot be opened.
    pub fn init(&mut self, logfile: Option<&Path>, syslog: Option<i32>) -> Result<(), String> {
        if let Some(path) = logfile {
            match OpenOptions::new()
                .append(true)
                .read(true)
                .create(true)
                .open(path)
            {
                Ok(f) => self.file = Some(f),
                Err(e) => {
                    return Err(format!(
                        "ERROR: can't open logfile `{}'.Reason: {}",
                        path.display(),
                        errno_desc(&e)
                    ))
                }
            }
        }
        if let Some(fac) = syslog {
            // SAFETY: IDENT is a static NUL-terminated string that outlives every later
            // `syslog` call, as `openlog` requires.
            unsafe { nix::libc::openlog(IDENT.as_ptr().cast(), nix::libc::LOG_PID, fac) };
            self.syslog = Some(fac);
        }
        self.init = true;
        Ok(())
    }

    /// The program runs as a background daemon (`-d`): once logging is set up, lines no
    /// longer go to the console.
    pub fn set_background(&mut self) {
        self.background = true;
    }

    /// Whether lines still reach the console.
    pub fn on_console(&self) -> bool {
        !self.background || !self.init
    }

    /// Logs one line.
    pub fn log(&mut self, p: Priority, msg: &str) {
        let text = line(ctime_local(crate::now_secs()), std::process::id(), p, msg);
        if self.on_console() {
            if p.to_stderr() {
                let _ = io::stderr().write_all(text.as_bytes());
            } else {
                let mut out = io::stdout();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
        }
        if !self.init {
            return;
        }
        if let Some(f) = self.file.as_mut() {
            let _ = f.write_all(text.as_bytes());
        }
        if self.syslog.is_some() {
            if let Ok(c) = CString::new(msg.replace('\0', "")) {
                // SAFETY: the format is a static "%s" and `c` is a NUL-terminated string
                // that lives across the call.
                unsafe {
                    nix::libc::syslog(p.syslog_level(), c"%s".as_ptr(), c.as_ptr());
                }
            }
        }
    }

    /// Opens syslog for the statistics mode's lines (`Stats { Syslog }`) if it is not open
    /// yet; the daemon's own lines still go to syslog only if `General { Syslog }` says so.
    pub fn open_syslog(&mut self, facility: i32) {
        if self.syslog.is_none() && !self.syslog_open {
            // SAFETY: IDENT is a static NUL-terminated string that outlives every later
            // `syslog` call, as `openlog` requires.
            unsafe { nix::libc::openlog(IDENT.as_ptr().cast(), nix::libc::LOG_PID, facility) };
        }
        self.syslog_open = true;
    }

    /// Sends one statistics line to syslog at `LOG_INFO` (as 1.4.7's `dlog_ct` does).
    pub fn syslog_info(&mut self, msg: &str) {
        if !self.syslog_open && self.syslog.is_none() {
            return;
        }
        if let Ok(c) = CString::new(msg.replace('\0', "")) {
            // SAFETY: the format is a static "%s" and `c` is a NUL-terminated string that
            // lives across the call.
            unsafe {
                nix::libc::syslog(nix::libc::LOG_INFO, c"%s".as_ptr(), c.as_ptr());
            }
        }
    }

    /// Closes syslog (the file closes on drop).
    pub fn close(&mut self) {
        if self.syslog.take().is_some() || std::mem::take(&mut self.syslog_open) {
            // SAFETY: closelog takes no arguments and may be called at any time.
            unsafe { nix::libc::closelog() };
        }
        self.file = None;
    }
}

/// `strerror` of an I/O error: "No such file or directory".
pub fn errno_desc(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format() {
        // 02:39:36 UTC, one hour east of it.
        let when = Ctime(1_796_438_376, 3600);
        assert_eq!(
            line(when, 23151, Priority::Error, "x"),
            "[Sat Dec  5 03:39:36 2026] (pid=23151) [ERROR] x\n"
        );
        assert_eq!(ctime_local(0).to_string().len(), 24);
    }

    #[test]
    fn facilities() {
        assert_eq!(facility("local3"), Some(nix::libc::LOG_LOCAL3));
        assert_eq!(facility("user"), None);
    }
}
