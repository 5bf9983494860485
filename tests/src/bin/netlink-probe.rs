//! Tells whether this process can talk ctnetlink: opens a `NETLINK_NETFILTER` socket in a
//! throwaway namespace and asks for the entry count.
//!
//! `.ci/portability` runs it under `qemu-aarch64-static` to learn whether qemu-user passes
//! such sockets through (it decides whether the live tests can run there). Exit status 0:
//! they work; 3: the socket or the request failed (the error is printed); other: the probe
//! itself could not run (no `ip netns`, say).

use std::process::ExitCode;

use conntrack_io::Socket;
use conntrack_tests::Netns;

fn main() -> ExitCode {
    let ns = Netns::new("probe");
    let result = Socket::open_in_netns(ns.path()).and_then(|mut s| s.count());
    drop(ns);
    match result {
        Ok(n) => {
            println!("NETLINK_NETFILTER works: {n} entries in a new namespace");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("NETLINK_NETFILTER fails: {e} ({e:?})");
            ExitCode::from(3)
        }
    }
}
