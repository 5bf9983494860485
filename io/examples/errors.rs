//! Error handling with `conntrack-io`: what each kind of failure looks like, how to tell
//! them apart, and how they travel through `?` into an application's own error type or a
//! `Box<dyn Error>`. Runs as root (it creates and deletes one entry in the caller's
//! network namespace: run it in a throwaway one, `ip netns exec NAME ...`) or not (then
//! the first request shows `EPERM`).

use std::fmt;
use std::ops::ControlFlow;

use conntrack_codec::ct::request::Key;
use conntrack_codec::ct::{ConntrackRepr, Tuple};
use conntrack_codec::filter::{filter_flags, DumpFilter};
use conntrack_io::{Errno, Error, Socket};

/// An application's own error: conntrack failures and its own.
#[derive(Debug)]
enum AppError {
    Conntrack(Error),
    Policy(String),
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Conntrack(e) => write!(f, "conntrack: {e}"),
            AppError::Policy(why) => write!(f, "policy: {why}"),
        }
    }
}

impl std::error::Error for AppError {}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Conntrack(e)
    }
}

impl From<conntrack_codec::Error> for AppError {
    fn from(e: conntrack_codec::Error) -> Self {
        AppError::Conntrack(e.into())
    }
}

/// Refuses entries marked 666, with `?` on codec, io and own errors alike.
fn audit(sock: &mut Socket) -> Result<u64, AppError> {
    let summary = sock.try_list(&DumpFilter::all(), |entry| {
        if entry.mark()? == Some(666) {
            return Err(AppError::Policy(format!(
                "{:?} is marked 666",
                entry.orig()?
            )));
        }
        Ok(())
    })?;
    Ok(summary.delivered)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut sock = Socket::open()?;

    // 1. An impossible request is refused before anything is sent: a port without a
    //    protocol, a flag without its field, a tuple with no family.
    let bad = DumpFilter {
        family: 2,
        orig: Some((Tuple::default(), filter_flags::PROTO_DST_PORT)),
        ..DumpFilter::default()
    };
    match sock.list(&bad, |_| ControlFlow::Continue(())) {
        Err(Error::Build(e)) => println!("1. refused before sending: {e}"),
        other => println!("1. unexpected: {other:?}"),
    }

    // 2. The kernel's refusals carry the errno, and its message when it gives one.
    let orig = Tuple::udp("192.0.2.1".parse()?, "192.0.2.2".parse()?, 1, 2);
    let entry = ConntrackRepr {
        orig: Some(orig),
        reply: Some(orig.inverted()),
        timeout: Some(30),
        ..ConntrackRepr::default()
    };
    match sock.create(&entry) {
        Ok(()) => println!("2. created"),
        Err(Error::Kernel(k)) if k.errno == Errno::EPERM => {
            println!("2. not allowed ({}): run as root", k.errno);
            return Ok(());
        }
        Err(e) => println!("2. {e} (errno {:?}, io kind {:?})", e.errno(), e.kind()),
    }
    match sock.create(&entry) {
        Err(Error::Kernel(k)) if k.errno == Errno::EEXIST => println!("2. exists already: {k}"),
        other => println!("2. unexpected: {other:?}"),
    }

    // 3. Gone is not always a failure: a delete of what vanished meanwhile says ENOENT;
    //    `delete_matching` counts those apart.
    sock.delete(&Key::orig(orig))?;
    let gone = sock.delete(&Key::orig(orig));
    if let Err(e) = &gone {
        println!("3. second delete: {e}");
    }

    // 4. The caller's own error type through `?`, and into `Box<dyn Error>`.
    match audit(&mut sock) {
        Ok(n) => println!("4. {n} entries audited"),
        Err(e) => println!("4. {e}"),
    }

    // 5. Into `std::io::Error`, for code that speaks std: the kind follows the errno.
    if let Err(e) = gone {
        let io = std::io::Error::from(e);
        println!("5. as io::Error: {io} ({:?})", io.kind());
    }
    Ok(())
}
