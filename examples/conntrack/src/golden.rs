//! Golden files: conntrack-tools 1.4.7's answers to command lines (exit status, stdout,
//! stderr), recorded once from the real tool by the capture tool
//! (`cargo run -p conntrack-tests --bin capture-cli-golden`, as root), and checked against
//! this program by the package's tests, which need no root, no namespace and no
//! conntrack-tools (`tests/golden.rs`).
//!
//! A case file has one command line per line (`#` starts a comment): the arguments after
//! the program name, separated by spaces, each escaped as [`escape`] does (`\x20` for a
//! space, `\xff` for a byte that is not printable ASCII, `\e` alone for an empty argument),
//! optionally preceded by `labels=NAME` (the label map the tool finds at
//! `/etc/xtables/connlabel.conf`: the file `labels/NAME.conf` of the golden directory, or no
//! file at all for `labels=none`; `default` otherwise).
//!
//! A golden file holds one record per case:
//!
//! ```text
//! == -L -p tcp --state FOO
//! labels default
//! exit 2
//! err| conntrack v1.4.7 (conntrack-tools): unknown TCP state `FOO'
//! err| Try `conntrack -h' or 'conntrack --help' for more information.
//! ```
//!
//! Each line of standard output is `out| LINE` and of standard error `err| LINE`, escaped;
//! a last line without its newline is `out~ LINE` (or `err~`).

use std::fmt::Write as _;

/// One command line of a case file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The name of the label map the tool reads (`none` for no file).
    pub labels: String,
    /// The arguments after the program name.
    pub args: Vec<Vec<u8>>,
}

/// What the tool did with a case.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    /// The exit status (-1 when a signal ended it).
    pub exit: i32,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

/// Escapes bytes for a golden file: printable ASCII as it is, except `\`; the rest as
/// `\xHH`; with `space`, spaces as `\x20` too.
pub fn escape(bytes: &[u8], space: bool) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b' ' if space => s.push_str("\\x20"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s
}

/// Reads back what [`escape`] wrote.
///
/// # Errors
/// A `\` not followed by `\`, `e` (alone) or `x` and two hex digits.
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    if text == "\\e" {
        return Ok(Vec::new());
    }
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let hex = text
                    .get(i + 2..i + 4)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad escape in `{text}'"))?;
                out.push(hex);
                i += 4;
            }
            _ => return Err(format!("bad escape in `{text}'")),
        }
    }
    Ok(out)
}

/// The arguments of a case, escaped and joined by spaces.
pub fn args_line(args: &[Vec<u8>]) -> String {
    args.iter()
        .map(|a| {
            if a.is_empty() {
                "\\e".to_string()
            } else {
                escape(a, true)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads the arguments of a case line.
fn parse_args(line: &str) -> Result<Vec<Vec<u8>>, String> {
    line.split(' ')
        .filter(|w| !w.is_empty())
        .map(unescape)
        .collect()
}

/// Reads a case file.
///
/// # Errors
/// A line with a bad escape.
pub fn parse_cases(text: &str) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (labels, rest) = match line.strip_prefix("labels=") {
            Some(rest) => {
                let (name, rest) = rest.split_once(' ').unwrap_or((rest, ""));
                (name.to_string(), rest)
            }
            None => ("default".to_string(), line),
        };
        cases.push(Case {
            labels,
            args: parse_args(rest)?,
        });
    }
    Ok(cases)
}

/// One stream of an answer as golden lines with `tag` (`out` or `err`).
fn stream(text: &mut String, tag: &str, bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        match rest.iter().position(|&b| b == b'\n') {
            Some(nl) => {
                let _ = writeln!(text, "{tag}| {}", escape(&rest[..nl], false));
                rest = &rest[nl + 1..];
            }
            None => {
                let _ = writeln!(text, "{tag}~ {}", escape(rest, false));
                rest = &[];
            }
        }
    }
}

/// The record of a case and its answer.
pub fn record(case: &Case, answer: &Answer) -> String {
    let mut text = format!(
        "== {}\nlabels {}\nexit {}\n",
        args_line(&case.args),
        case.labels,
        answer.exit
    );
    stream(&mut text, "out", &answer.stdout);
    stream(&mut text, "err", &answer.stderr);
    text
}

/// Reads a golden file.
///
/// # Errors
/// A line that is not part of a record, a bad escape, a bad exit status.
pub fn parse_records(text: &str) -> Result<Vec<(Case, Answer)>, String> {
    let mut records: Vec<(Case, Answer)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let bad = || format!("line {}: `{line}'", n + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(args) = line.strip_prefix("== ").or(line.strip_prefix("==")) {
            let case = Case {
                labels: "default".into(),
                args: parse_args(args)?,
            };
            records.push((case, Answer::default()));
            continue;
        }
        let (case, answer) = records.last_mut().ok_or_else(bad)?;
        let (tag, value) = line.split_once(' ').unwrap_or((line, ""));
        match tag {
            "labels" => case.labels = value.to_string(),
            "exit" => answer.exit = value.parse().map_err(|_| bad())?,
            "out|" | "out~" | "err|" | "err~" => {
                let target = if tag.starts_with("out") {
                    &mut answer.stdout
                } else {
                    &mut answer.stderr
                };
                target.extend(unescape(value)?);
                if tag.ends_with('|') {
                    target.push(b'\n');
                }
            }
            _ => return Err(bad()),
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back() {
        let case = Case {
            labels: "bad".into(),
            args: vec![b"-L".to_vec(), b"a b\xff\\".to_vec(), Vec::new()],
        };
        let answer = Answer {
            exit: 2,
            stdout: b"one\n\ttwo".to_vec(),
            stderr: b"\xe9\n".to_vec(),
        };
        let text = record(&case, &answer);
        assert_eq!(
            text,
            "== -L a\\x20b\\xff\\\\ \\e\nlabels bad\nexit 2\nout| one\nout~ \\x09two\nerr| \\xe9\n"
        );
        assert_eq!(parse_records(&text).unwrap(), vec![(case, answer)]);
    }

    #[test]
    fn case_files() {
        let cases = parse_cases("# c\n\n-L -s \\xff\nlabels=none -L -o labels\n").unwrap();
        assert_eq!(
            cases[0].args,
            vec![b"-L".to_vec(), b"-s".to_vec(), b"\xff".to_vec()]
        );
        assert_eq!(cases[0].labels, "default");
        assert_eq!(cases[1].labels, "none");
        assert!(parse_cases("-L \\q").is_err());
        assert!(parse_records("out| x").is_err());
    }
}
