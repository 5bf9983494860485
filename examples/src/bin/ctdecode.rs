//! `ctdecode [FILE]`: prints the netlink messages in FILE (or stdin), one line each.
//!
//! The input is raw bytes as received from a `NETLINK_NETFILTER` socket: one or more
//! messages, concatenated. A conntrack entry prints as `conntrack -L -o extended,id`
//! prints it, an event with its `[NEW]`/`[UPDATE]`/`[DESTROY]` prefix, an expectation as
//! `conntrack -L expect` does; ACKs, errors, DONE and statistics get a short readable form.
//! Malformed input gives one error line naming its offset and exit status 1.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use conntrack_examples::decode::decode;
use conntrack_io::clock::output_now;

const USAGE: &str = "usage: ctdecode [FILE]   (reads stdin when FILE is absent or -)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut input = Vec::new();
    let read = match args.as_slice() {
        [] => io::stdin().read_to_end(&mut input).map(|_| ()),
        [a] if a == "-" => io::stdin().read_to_end(&mut input).map(|_| ()),
        [a] if a == "-h" || a == "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [path] => std::fs::read(path).map(|b| input = b),
        _ => {
            eprintln!("ctdecode: too many arguments\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = read {
        eprintln!("ctdecode: cannot read input: {e}");
        return ExitCode::from(2);
    }
    let out = conntrack_codec::fmt::Output {
        extended: true,
        id: true,
        ..output_now()
    };
    let stdout = io::stdout();
    let mut stdout = io::BufWriter::new(stdout.lock());
    let result = decode(&input, &out, &mut stdout);
    let flushed = stdout.flush();
    match (result, flushed) {
        (Ok(_), Ok(())) => ExitCode::SUCCESS,
        (Err(e), _) => {
            eprintln!("ctdecode: {e}");
            ExitCode::from(1)
        }
        (Ok(_), Err(e)) => {
            eprintln!("ctdecode: cannot write: {e}");
            ExitCode::from(1)
        }
    }
}
