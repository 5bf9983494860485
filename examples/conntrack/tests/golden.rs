//! Every command line of `golden/*.cases` against the answer conntrack-tools 1.4.7 gave to it
//! (`golden/*.golden`, recorded by `capture-cli-golden`): exit status, stdout and stderr,
//! byte for byte.
//!
//! The whole program runs here, in this process, with no root, no network namespace and no
//! conntrack-tools: its files are the recorded ones (the label map of each case, the
//! `/etc/protocols` of the recording machine), and its kernel is
//! [`EmptyTable`](conntrack_cli::kernel::EmptyTable), which answers as the empty table of the
//! namespace the answers were recorded in. What depends on more of the kernel than that is
//! compared live (`tests/tests/cli_*.rs` in the workspace).

mod common;

use std::path::PathBuf;

use common::{dir, ours};
use conntrack_cli::golden::{parse_cases, parse_records, record, Answer, Case};

/// A case file: its name, its cases, and the records of its golden file.
struct Recorded {
    name: String,
    cases: Vec<Case>,
    records: Vec<(Case, Answer)>,
}

/// The cases and records of every case file.
fn recorded() -> Vec<Recorded> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("golden directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cases"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no case file in {}", dir().display());
    files
        .into_iter()
        .map(|cases_file| {
            let name = cases_file.display().to_string();
            let cases = parse_cases(&std::fs::read_to_string(&cases_file).expect("read cases"))
                .expect("parse cases");
            let golden = cases_file.with_extension("golden");
            let records = parse_records(&std::fs::read_to_string(&golden).expect("read golden"))
                .expect("parse golden");
            Recorded {
                name,
                cases,
                records,
            }
        })
        .collect()
}

#[test]
fn every_case_is_recorded() {
    for Recorded {
        name,
        cases,
        records,
    } in recorded()
    {
        let recorded: Vec<&Case> = records.iter().map(|(c, _)| c).collect();
        let wanted: Vec<&Case> = cases.iter().collect();
        assert_eq!(
            recorded, wanted,
            "{name}: the golden file is not a recording of these cases: record it again"
        );
        assert!(cases.len() > 200, "{name}: {} cases", cases.len());
    }
}

#[test]
fn answers_match_conntrack_tools() {
    let mut failures = Vec::new();
    let mut total = 0;
    for Recorded { records, .. } in recorded() {
        for (case, want) in &records {
            total += 1;
            let got = ours(case);
            if &got != want {
                failures.push(format!(
                    "conntrack-tools 1.4.7:\n{}ours:\n{}",
                    record(case, want),
                    record(case, &got)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
