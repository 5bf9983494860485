//! One entry's life through the library: the table's statistics, the entry fetched by its
//! tuple, its mark updated, its counters read and zeroed.
//!
//! ```text
//! entry_ops SRC DST tcp|udp SPORT DPORT [MARK]      (as root)
//! entry_ops 10.0.0.1 10.0.0.2 tcp 40000 443 7
//! ```

use std::ops::ControlFlow;
use std::process::ExitCode;

use conntrack_codec::ct::request::Key;
use conntrack_codec::ct::{l4proto, ConntrackRepr, Tuple};
use conntrack_codec::filter::DumpFilter;
use conntrack_io::{Errno, Error, Socket};

fn parse(args: &[String]) -> Result<(Tuple, u32), String> {
    let usage = "usage: entry_ops SRC DST tcp|udp SPORT DPORT [MARK]";
    if args.len() < 5 {
        return Err(usage.into());
    }
    let addr = |s: &str| s.parse().map_err(|e| format!("address {s:?}: {e}"));
    let port = |s: &str| s.parse::<u16>().map_err(|e| format!("port {s:?}: {e}"));
    let proto = match args[2].as_str() {
        "tcp" => l4proto::TCP,
        "udp" => l4proto::UDP,
        other => return Err(format!("protocol {other:?}: tcp or udp")),
    };
    let tuple = Tuple::ports(
        proto,
        addr(&args[0])?,
        addr(&args[1])?,
        port(&args[3])?,
        port(&args[4])?,
    );
    let mark = match args.get(5) {
        Some(m) => m.parse().map_err(|e| format!("mark {m:?}: {e}"))?,
        None => 1,
    };
    Ok((tuple, mark))
}

fn run(tuple: Tuple, mark: u32) -> Result<(), Error> {
    let mut sock = Socket::open()?;
    let stats = sock.stats()?;
    println!(
        "table: {} entries of at most {}",
        stats.entries.unwrap_or(0),
        stats.max_entries.unwrap_or(0)
    );

    let entry = match sock.get(&Key::orig(tuple)) {
        Ok(e) => e,
        Err(Error::Kernel(k)) if k.errno == Errno::ENOENT => {
            println!("no entry with that original tuple (in zone 0)");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    println!(
        "found: mark {:?}, timeout {:?} s",
        entry.mark, entry.timeout
    );

    // Change only the mark: an update carries the key and what changes.
    let key = Key::from_repr(&entry)?;
    sock.update(&ConntrackRepr {
        orig: key.orig,
        zone: key.zone,
        mark: Some(mark),
        ..ConntrackRepr::default()
    })?;
    println!("mark now {:?}", sock.get(&key.without_id())?.mark);

    // Read and zero the counters of exactly this entry (the filter compares every field of
    // the tuple; accounting must be on, net.netfilter.nf_conntrack_acct=1, to count).
    let this = DumpFilter::all().with_orig(tuple);
    let summary = sock.list_and_zero(&this, |e| {
        println!(
            "counters before zeroing: {:?} / {:?}",
            e.counters_orig(),
            e.counters_reply()
        );
        ControlFlow::Continue(())
    })?;
    println!("{} entry zeroed", summary.delivered);
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (tuple, mark) = match parse(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("entry_ops: {e}");
            return ExitCode::from(2);
        }
    };
    match run(tuple, mark) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("entry_ops: {e}");
            ExitCode::from(1)
        }
    }
}
