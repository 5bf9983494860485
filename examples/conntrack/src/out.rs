//! Standard output as conntrack-tools uses it: fully buffered into a pipe or file (flushed
//! at exit, after the summary line on stderr), line-buffered on a terminal, flushed after
//! each event.

use std::io::{IsTerminal, Write};

/// Buffered standard output.
#[derive(Debug)]
pub struct Out {
    buf: Vec<u8>,
    tty: bool,
    /// A write failed (the reader went away): nothing more is written.
    pub broken: bool,
}

impl Default for Out {
    fn default() -> Self {
        Out {
            buf: Vec::with_capacity(1 << 16),
            tty: std::io::stdout().is_terminal(),
            broken: false,
        }
    }
}

impl Out {
    /// Appends text.
    pub fn text(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
        self.after_write();
    }

    /// Appends formatted text and a newline.
    pub fn line(&mut self, args: std::fmt::Arguments<'_>) {
        let _ = self.buf.write_fmt(args);
        self.buf.push(b'\n');
        self.after_write();
    }

    fn after_write(&mut self) {
        if self.tty || self.buf.len() >= 1 << 16 {
            self.flush();
        }
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if !self.broken {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(&self.buf)
                .and_then(|()| stdout.flush())
                .is_err()
            {
                self.broken = true;
            }
        }
        self.buf.clear();
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        self.flush();
    }
}
