//! `ctevents_tokio`: the conntrack event stream driven from tokio through
//! [`tokio::io::unix::AsyncFd`]. It keeps a count of the entries it knows of, prints each
//! event as `conntrack -E` does, and after a loss resynchronises its count with a dump on a
//! second socket. Ends on SIGINT or SIGTERM.
//!
//! The pattern: a non-blocking [`Events`] inside `AsyncFd`; wait until the descriptor is
//! readable, then call [`Events::try_next`] until it says "nothing now" (`Ok(None)`), and
//! only then clear the readiness. Needs `CAP_NET_ADMIN`.

use std::collections::HashSet;
use std::future::{poll_fn, Future};
use std::ops::ControlFlow;
use std::pin::pin;
use std::process::ExitCode;
use std::task::Poll;

use conntrack_codec::ct::{EventKind, Tuple};
use conntrack_codec::filter::DumpFilter;
use conntrack_codec::fmt::{CtLine, Origin, Userspace};
use conntrack_io::{Event, Events, Groups, Socket};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::signal::unix::{signal, SignalKind};

type BoxError = Box<dyn std::error::Error>;

/// What the program knows of the table: the original tuples of the live entries.
#[derive(Default)]
struct Table {
    live: HashSet<Tuple>,
}

impl Table {
    /// Replaces what is known with a dump of the table.
    fn resync(&mut self, requests: &mut Socket) -> Result<(), BoxError> {
        self.live.clear();
        let summary = requests.list(&DumpFilter::default(), |entry| {
            if let Ok(Some(orig)) = entry.orig() {
                self.live.insert(orig);
            }
            ControlFlow::Continue(())
        })?;
        if summary.interrupted {
            // The table changed under the dump: one more pass gives a consistent view.
            return self.resync(requests);
        }
        Ok(())
    }
}

async fn run() -> Result<(), BoxError> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;

    // Subscribe first, then dump: an entry created in between shows up in both, never in
    // neither.
    let events = Events::open(Groups::CONNTRACK)?;
    events.set_nonblocking(true)?;
    // SAFETY: `Events` owns its socket's descriptor: it stays open, and `as_raw_fd` returns
    // the same one, for as long as the `AsyncFd` holds it.
    let mut events = unsafe { AsyncFd::register_with_interest(events, Interest::READABLE) }
        .map_err(std::io::Error::from)?;
    let mut requests = Socket::open()?;
    let mut table = Table::default();
    table.resync(&mut requests)?;
    eprintln!("ctevents_tokio: {} entries in the table", table.live.len());

    let out = conntrack_codec::fmt::Output {
        extended: true,
        ..conntrack_examples::output_now()
    };
    loop {
        // Wait for events, or for a signal to stop.
        let mut readable = pin!(events.readable_mut());
        let ready = poll_fn(|cx| {
            if int.poll_recv(cx).is_ready() || term.poll_recv(cx).is_ready() {
                return Poll::Ready(None);
            }
            readable.as_mut().poll(cx).map(Some)
        })
        .await;
        let Some(guard) = ready else { break };
        let mut guard = guard?;
        // Read everything queued, then clear the readiness.
        loop {
            let lost = match guard.get_inner_mut().try_next()? {
                None => break,
                Some(Event::Conntrack(ev)) => {
                    if let Some(orig) = ev.entry.orig()? {
                        match ev.kind {
                            EventKind::New | EventKind::Update => table.live.insert(orig),
                            EventKind::Destroy => table.live.remove(&orig),
                        };
                    }
                    let userspace = (ev.portid != 0).then_some(Userspace {
                        portid: ev.portid,
                        progname: None,
                    });
                    println!(
                        "{}",
                        CtLine::from_view(&ev.entry, Origin::Event(ev.kind), &out, &())?
                            .userspace(userspace)
                    );
                    None
                }
                Some(Event::Expect(_)) => None,
                Some(Event::Lost(lost)) => Some(lost),
            };
            if let Some(lost) = lost {
                eprintln!("ctevents_tokio: {lost}; resynchronising with a dump");
                table.resync(&mut requests)?;
                eprintln!("ctevents_tokio: {} entries in the table", table.live.len());
            }
        }
        guard.clear_ready();
    }
    let stats = events.get_ref().stats();
    eprintln!(
        "ctevents_tokio: {} events, {} lost; {} entries known at the end",
        stats.received,
        stats.lost,
        table.live.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ctevents_tokio: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ctevents_tokio: {e}");
            ExitCode::from(1)
        }
    }
}
