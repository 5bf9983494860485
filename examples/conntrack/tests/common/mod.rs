//! Running the whole program in this process, as `conntrack` would run as a process, with
//! recorded files and the kernel of an empty namespace.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use conntrack_cli::golden::{Answer, Case};
use conntrack_cli::kernel::{EmptyTable, Kernel};
use conntrack_cli::out::Term;
use conntrack_cli::sys::{Files, CONNLABEL_CONF, PROTOCOLS};

/// A sink whose bytes are kept.
#[derive(Clone, Default)]
pub struct Kept(Arc<Mutex<Vec<u8>>>);

impl Write for Kept {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Kept {
    /// What was written so far.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The golden directory.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Runs `conntrack ARGS` here, with the files the recording had (the case's label map, the
/// recording machine's `/etc/protocols`) and an empty kernel table.
pub fn ours(case: &Case) -> Answer {
    let mut files = Files::default();
    let protocols = std::fs::read(dir().join("protocols")).expect("golden/protocols");
    files.add(PROTOCOLS, &protocols);
    if case.labels != "none" {
        let map = std::fs::read(dir().join("labels").join(format!("{}.conf", case.labels)))
            .expect("the case's label map");
        files.add(CONNLABEL_CONF, &map);
    }
    let (out, err) = (Kept::default(), Kept::default());
    let term = Term::new(Box::new(out.clone()), Box::new(err.clone()));
    let mut argv = vec![b"conntrack".to_vec()];
    argv.extend(case.args.iter().cloned());
    let exit = conntrack_cli::app::run(argv, term, Box::new(files), &mut || {
        Ok(Box::new(EmptyTable) as Box<dyn Kernel>)
    });
    Answer {
        exit: i32::from(exit),
        stdout: out.take(),
        stderr: err.take(),
    }
}

/// The case of a command line (words split on spaces).
pub fn case(line: &str) -> Case {
    Case {
        labels: "default".into(),
        args: line
            .split_whitespace()
            .map(|w| w.as_bytes().to_vec())
            .collect(),
    }
}
