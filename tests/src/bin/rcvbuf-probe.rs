//! Sizes the receive queue of a conntrack event socket in the caller's network namespace and
//! says how it went, for `tests/tests/faults_live.rs`: it runs as root, as the root of a user
//! namespace of its own (which holds `CAP_NET_ADMIN` over its network namespace but not in the
//! initial user namespace, so `SO_RCVBUFFORCE` is refused), and as an unprivileged user.
//!
//! Usage: `rcvbuf-probe BYTES`. Prints one line of `key=value` words:
//! `forced=true|false requested=N effective=N rmem_max=N subscribed=yes|ERROR entries=N|ERROR`
//! (`subscribed` and `entries` show whether the process may join the event groups and ask
//! the kernel: the capability it holds, whatever happened to the queue). Exit status 0 when
//! the queue was sized, 3 when even that failed, 2 for a bad argument.

use std::process::ExitCode;

use conntrack_io::{Events, Groups, Socket};

fn main() -> ExitCode {
    let Some(bytes) = std::env::args()
        .nth(1)
        .and_then(|a| a.parse::<usize>().ok())
    else {
        eprintln!("usage: rcvbuf-probe BYTES");
        return ExitCode::from(2);
    };
    let word = |e: conntrack_io::Error| match e {
        conntrack_io::Error::Sys { errno, .. } => format!("{errno:?}"),
        conntrack_io::Error::Kernel(k) => format!("{:?}", k.errno),
        other => format!("{other:?}").replace(' ', "_"),
    };
    let sock = match Socket::open() {
        Ok(s) => s,
        Err(e) => {
            println!("open={}", word(e));
            return ExitCode::from(3);
        }
    };
    let got = match sock.set_rcvbuf_report(bytes) {
        Ok(got) => got,
        Err(e) => {
            println!("set_rcvbuf={}", word(e));
            return ExitCode::from(3);
        }
    };
    let rmem_max = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let entries = match Socket::open().and_then(|mut s| s.count()) {
        Ok(n) => n.to_string(),
        Err(e) => word(e),
    };
    let subscribed = match Events::subscribe(sock, Groups::CONNTRACK) {
        Ok(_) => "yes".to_string(),
        Err(e) => word(e),
    };
    println!(
        "forced={} requested={} effective={} rmem_max={rmem_max} subscribed={subscribed} entries={entries}",
        got.forced, got.requested, got.effective
    );
    ExitCode::SUCCESS
}
