//! Deletes the conntrack entries NATed to a backend that went away, as kube-proxy, Calico or
//! Cilium do when a service endpoint is removed: every entry whose reply comes from the
//! backend (so its destination was translated to it), of one protocol, optionally one port.
//! IPv6 backends are matched exactly (the kernel's own filter compares IPv6 addresses
//! inverted; the library never lets it).
//!
//! ```text
//! nat_cleanup BACKEND [tcp|udp|sctp] [PORT]      (as root)
//! nat_cleanup fd00::5 udp 53
//! ```

use std::net::IpAddr;
use std::process::ExitCode;

use conntrack_codec::ct::{l4proto, Tuple};
use conntrack_codec::filter::DumpFilter;
use conntrack_io::Socket;

/// The filter from the command line, or a one-line complaint.
fn parse(args: &[String]) -> Result<DumpFilter, String> {
    let backend: IpAddr = args
        .first()
        .ok_or("usage: nat_cleanup BACKEND [tcp|udp|sctp] [PORT]")?
        .parse()
        .map_err(|e| format!("backend address: {e}"))?;
    let proto = match args.get(1).map(String::as_str) {
        None | Some("udp") => l4proto::UDP,
        Some("tcp") => l4proto::TCP,
        Some("sctp") => l4proto::SCTP,
        Some(other) => return Err(format!("unknown protocol {other:?}")),
    };
    let port = match args.get(2) {
        Some(p) => Some(p.parse::<u16>().map_err(|e| format!("port: {e}"))?),
        None => None,
    };
    // The reply of a DNATed connection comes from the backend, from the backend's port.
    Ok(DumpFilter::all().with_reply(Tuple {
        src: Some(backend),
        proto: Some(proto),
        src_port: port,
        ..Tuple::default()
    }))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filter = match parse(&args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("nat_cleanup: {e}");
            return ExitCode::from(2);
        }
    };
    let run = || -> Result<_, conntrack_io::Error> {
        let mut sock = Socket::open()?;
        sock.delete_matching(&filter)
    };
    match run() {
        Ok(done) => {
            println!(
                "{} deleted, {} already gone, {} failed ({} entries looked at)",
                done.succeeded, done.vanished, done.failed, done.dumped
            );
            match done.first_error {
                Some(e) => {
                    eprintln!("nat_cleanup: {e}");
                    ExitCode::from(1)
                }
                None => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("nat_cleanup: {e}");
            ExitCode::from(1)
        }
    }
}
