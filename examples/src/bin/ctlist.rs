//! `ctlist`: lists this machine's conntrack table, one entry per line, as `conntrack -L`
//! prints it, with the same summary line on stderr. The smallest complete use of the crates.
//!
//! It takes no argument but `-h`/`--help`; anything else is a bad parameter (exit status 2).
//! A closed standard output kills it with SIGPIPE, as it does `conntrack`.

use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::process::ExitCode;

use conntrack_codec::ct::ConntrackRepr;
use conntrack_codec::filter::DumpFilter;
use conntrack_codec::fmt::{CtLine, Origin};
use conntrack_io::Socket;

const USAGE: &str = "usage: ctlist   (lists the conntrack table as `conntrack -L` does)";

fn main() -> ExitCode {
    conntrack_cli::signals::default_sigpipe();
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let help = |a: &std::ffi::OsString| a == "-h" || a == "--help";
    match args.as_slice() {
        [] => {}
        [a] if help(a) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [first, rest @ ..] => {
            let bad = if help(first) { &rest[0] } else { first };
            eprintln!(
                "ctlist: unexpected argument `{}'\n{USAGE}",
                bad.to_string_lossy()
            );
            return ExitCode::from(2);
        }
    }
    let mut sock = match Socket::open() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ctlist: cannot open the netlink socket: {e}");
            return ExitCode::from(1);
        }
    };
    let out = conntrack_io::clock::output_now();
    let stdout = std::io::stdout();
    let mut stdout = BufWriter::new(stdout.lock());
    let mut shown = 0u64;
    let mut write_error = None;
    let listed = sock.list(&DumpFilter::default(), |entry| {
        let line = ConntrackRepr::try_from(&entry)
            .map(|e| CtLine::new(&e, Origin::Dump, &out, &()).to_string());
        let written = match line {
            Ok(line) => writeln!(stdout, "{line}"),
            Err(e) => writeln!(stdout, "(malformed entry: {e})"),
        };
        if let Err(e) = written {
            write_error = Some(e);
            return ControlFlow::Break(());
        }
        shown += 1;
        ControlFlow::Continue(())
    });
    let flushed = stdout.flush();
    match (listed, write_error.map_or(flushed, Err)) {
        (Ok(summary), Ok(())) => {
            if summary.interrupted {
                eprintln!(
                    "ctlist: the table changed during the dump; entries may be missing or repeated"
                );
            }
            eprintln!("conntrack v1.4.7 (conntrack-tools): {shown} flow entries have been shown.");
            ExitCode::SUCCESS
        }
        (Err(e), _) => {
            eprintln!("ctlist: {e}");
            ExitCode::from(1)
        }
        (_, Err(e)) => {
            eprintln!("ctlist: cannot write: {e}");
            ExitCode::from(1)
        }
    }
}
