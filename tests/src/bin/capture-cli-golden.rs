//! `capture-cli-golden [--check] DIR`: records conntrack-tools 1.4.7's answers (exit status,
//! stdout, stderr) to the command lines of `DIR/*.cases` into `DIR/*.golden`, and copies
//! `/etc/protocols` (which the tool reads for `-p NAME`) to `DIR/protocols`; with `--check`,
//! writes nothing and exits 1 if an answer differs from the recorded one. As root; each case
//! runs in a throwaway network namespace with its own label map (see
//! `conntrack_tests::cli_golden`).
//!
//! ```text
//! cargo run -p conntrack-tests --bin capture-cli-golden -- examples/conntrack/tests/golden
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use conntrack_cli::golden::{parse_cases, parse_records, record, Answer, Case};
use conntrack_tests::cli_golden::{capture, header};

fn case_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cases"))
        .collect();
    files.sort();
    Ok(files)
}

fn differences(old: &[(Case, Answer)], new: &[(Case, Answer)]) -> Vec<String> {
    let mut out = Vec::new();
    if old.len() != new.len() {
        out.push(format!("{} recorded cases, {} now", old.len(), new.len()));
    }
    for ((case, a), (_, b)) in old.iter().zip(new) {
        if a != b {
            out.push(format!(
                "recorded:\n{}now:\n{}",
                record(case, a),
                record(case, b)
            ));
        }
    }
    out
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (check, dir) = match args.as_slice() {
        [d] => (false, PathBuf::from(d)),
        [c, d] if c == "--check" => (true, PathBuf::from(d)),
        _ => {
            eprintln!("usage: capture-cli-golden [--check] DIR");
            return ExitCode::from(2);
        }
    };
    let files = match case_files(&dir) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!("capture-cli-golden: no .cases file in {}", dir.display());
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("capture-cli-golden: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    for file in files {
        let cases = match std::fs::read_to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|t| parse_cases(&t))
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("capture-cli-golden: {}: {e}", file.display());
                return ExitCode::from(2);
            }
        };
        let answers = capture(&dir, &cases);
        let golden = file.with_extension("golden");
        if check {
            let old = std::fs::read_to_string(&golden)
                .map_err(|e| e.to_string())
                .and_then(|t| parse_records(&t))
                .unwrap_or_default();
            let diffs = differences(&old, &answers);
            for d in &diffs {
                eprintln!("{}: {d}", golden.display());
            }
            failed |= !diffs.is_empty();
            println!(
                "{}: {} cases, {} differ",
                golden.display(),
                answers.len(),
                diffs.len()
            );
        } else {
            let mut text = header();
            for (case, answer) in &answers {
                text.push_str(&record(case, answer));
            }
            if let Err(e) = std::fs::write(&golden, text) {
                eprintln!("capture-cli-golden: {}: {e}", golden.display());
                return ExitCode::from(1);
            }
            println!("{}: {} cases", golden.display(), answers.len());
        }
    }
    if !check {
        if let Err(e) = std::fs::copy("/etc/protocols", dir.join("protocols")) {
            eprintln!("capture-cli-golden: /etc/protocols: {e}");
            return ExitCode::from(1);
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
