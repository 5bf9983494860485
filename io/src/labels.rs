//! The label map file (`connlabel.conf`): names for the bits of the connection labels.

use std::fmt;
use std::path::{Path, PathBuf};

use conntrack_codec::labels::{LabelMap, LabelMapError};

/// Where conntrack-tools and iptables look for the label map.
pub const DEFAULT_CONNLABEL_CONF: &str = "/etc/xtables/connlabel.conf";

/// Why a label map could not be loaded.
#[derive(Debug)]
pub enum LabelFileError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A line is malformed.
    Parse {
        /// The file.
        path: PathBuf,
        /// The line and what is wrong with it.
        error: LabelMapError,
    },
}

impl fmt::Display for LabelFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelFileError::Read { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            LabelFileError::Parse { path, error } => {
                write!(f, "{}: {error}", path.display())
            }
        }
    }
}

/// The message names the file and the cause, so `source()` is `None` (a chain printed link
/// by link says the cause once); match the variant to reach it.
impl std::error::Error for LabelFileError {}

/// Reads a label map (`BIT NAME` per line) from `path`, such as
/// [`DEFAULT_CONNLABEL_CONF`].
///
/// # Errors
/// [`LabelFileError::Read`] if the file cannot be read; [`LabelFileError::Parse`] with the
/// line number of the first bad line.
pub fn load_label_map(path: impl AsRef<Path>) -> Result<LabelMap, LabelFileError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|error| LabelFileError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    LabelMap::parse(&text).map_err(|error| LabelFileError::Parse {
        path: path.to_path_buf(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_reports_the_bad_line() {
        let dir = std::env::temp_dir().join(format!("ctrs-labels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.conf");
        std::fs::write(&good, "# c\n0 zero\n127 last\n").unwrap();
        let map = load_label_map(&good).unwrap();
        assert_eq!(map.name(127), Some("last"));
        let bad = dir.join("bad.conf");
        std::fs::write(&bad, "0 zero\n\nxx y\n").unwrap();
        match load_label_map(&bad) {
            Err(LabelFileError::Parse { error, .. }) => assert_eq!(error.line, 3),
            other => panic!("{other:?}"),
        }
        let msg = load_label_map(dir.join("missing")).unwrap_err().to_string();
        assert!(msg.starts_with("cannot read"), "{msg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
