//! Standard output and standard error as conntrack-tools uses them: stdout fully buffered
//! into a pipe or a file (flushed at exit, after the summary line on stderr), line-buffered
//! on a terminal, flushed after each event; stderr unbuffered.

use std::io::Write;

use conntrack_codec::labels::LabelNames;
use conntrack_io::Connlabels;

/// The label names to print with: those of `map`, or none (labels by number).
pub fn label_names(map: Option<&Connlabels>) -> &dyn LabelNames {
    match map {
        Some(m) => m,
        None => &(),
    }
}

/// Buffered standard output.
pub struct Out {
    buf: Vec<u8>,
    tty: bool,
    sink: Box<dyn Write + Send>,
    /// A write failed (the reader went away): nothing more is written.
    pub broken: bool,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Out")
            .field("buffered", &self.buf.len())
            .field("tty", &self.tty)
            .field("broken", &self.broken)
            .finish()
    }
}

impl Out {
    /// Output into `sink`; `tty` when it is a terminal (then each line is written at once).
    pub fn new(sink: Box<dyn Write + Send>, tty: bool) -> Out {
        Out {
            buf: Vec::with_capacity(1 << 16),
            tty,
            sink,
            broken: false,
        }
    }

    /// Appends text.
    pub fn text(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// Appends bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
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
        if !self.broken
            && self
                .sink
                .write_all(&self.buf)
                .and_then(|()| self.sink.flush())
                .is_err()
        {
            self.broken = true;
        }
        self.buf.clear();
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The program's two output streams.
pub struct Term {
    /// Standard output (buffered).
    pub out: Out,
    /// Standard error (unbuffered, as in C).
    pub err: Box<dyn Write + Send>,
    /// Whether standard error is open for reading and writing (see
    /// [`Globals::stderr_rw`](crate::parse::Globals::stderr_rw)); false for a sink.
    pub err_rw: bool,
}

impl std::fmt::Debug for Term {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Term").field("out", &self.out).finish()
    }
}

impl Term {
    /// The streams of this process.
    pub fn process() -> Term {
        use std::io::IsTerminal;
        Term {
            out: Out::new(Box::new(std::io::stdout()), std::io::stdout().is_terminal()),
            err: Box::new(std::io::stderr()),
            err_rw: stderr_is_read_write(),
        }
    }

    /// A terminal over two sinks (as a pipe would be: stderr write-only).
    pub fn new(out: Box<dyn Write + Send>, err: Box<dyn Write + Send>) -> Term {
        Term {
            out: Out::new(out, false),
            err,
            err_rw: false,
        }
    }

    /// Writes one line (bytes, then a newline) on stderr.
    pub fn err_line(&mut self, bytes: &[u8]) {
        let _ = self.err.write_all(bytes);
        let _ = self.err.write_all(b"\n");
        let _ = self.err.flush();
    }
}

/// Whether this process's standard error is open for reading and writing.
fn stderr_is_read_write() -> bool {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    fcntl(std::io::stderr(), FcntlArg::F_GETFL)
        .is_ok_and(|f| OFlag::from_bits_truncate(f) & OFlag::O_ACCMODE == OFlag::O_RDWR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A sink that keeps what is written.
    #[derive(Clone, Default)]
    struct Keep(Arc<Mutex<Vec<u8>>>);

    impl Write for Keep {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn buffered_until_flushed_unless_a_terminal() {
        let keep = Keep::default();
        let mut out = Out::new(Box::new(keep.clone()), false);
        out.line(format_args!("a {}", 1));
        assert!(keep.0.lock().unwrap().is_empty());
        out.flush();
        assert_eq!(*keep.0.lock().unwrap(), b"a 1\n");
        let mut tty = Out::new(Box::new(keep.clone()), true);
        tty.text("b");
        assert_eq!(*keep.0.lock().unwrap(), b"a 1\nb");
    }
}
