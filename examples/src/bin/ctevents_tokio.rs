//! `ctevents_tokio`: the conntrack event stream on tokio, with `conntrack-io`'s `tokio`
//! feature ([`AsyncEvents`], [`AsyncSocket`]): no `unsafe`, no readiness loop by hand. It
//! keeps a set of the entries it knows of, prints each event as `conntrack -E -o extended`
//! does, and after a loss resynchronises the set with a dump (on the blocking pool). Ends on
//! SIGINT or SIGTERM. Needs `CAP_NET_ADMIN`.

use std::collections::HashSet;
use std::future::{poll_fn, Future};
use std::ops::ControlFlow;
use std::pin::pin;
use std::process::ExitCode;
use std::task::Poll;

use conntrack_codec::ct::{ConntrackRepr, EventKind, Tuple};
use conntrack_codec::filter::DumpFilter;
use conntrack_codec::fmt::{CtLine, Origin, Userspace};
use conntrack_io::tokio::{AsyncEvents, AsyncSocket};
use conntrack_io::{Event, Groups};
use tokio::signal::unix::{signal, SignalKind};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The original tuples of the live entries, from a dump (retried while the kernel flags it
/// interrupted).
async fn resync(requests: &AsyncSocket) -> Result<HashSet<Tuple>, BoxError> {
    loop {
        let (live, summary) = requests
            .list_fold(DumpFilter::all(), HashSet::new(), |live, entry| {
                if let Ok(Some(orig)) = entry.orig() {
                    live.insert(orig);
                }
                ControlFlow::Continue(())
            })
            .await?;
        if !summary.interrupted {
            return Ok(live);
        }
    }
}

fn entries(n: usize) -> String {
    format!("{n} {}", if n == 1 { "entry" } else { "entries" })
}

async fn run() -> Result<(), BoxError> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;

    // Subscribe first, then dump: an entry created in between shows up in both, never in
    // neither.
    let mut events = AsyncEvents::open(Groups::CONNTRACK)?;
    let requests = AsyncSocket::open()?;
    let mut live = resync(&requests).await?;
    eprintln!("ctevents_tokio: {} in the table", entries(live.len()));

    let out = conntrack_codec::fmt::Output {
        extended: true,
        ..conntrack_io::clock::output_now()
    };
    loop {
        // The next event, or a signal to stop.
        let mut next = pin!(events.next());
        let ready = poll_fn(|cx| {
            if int.poll_recv(cx).is_ready() || term.poll_recv(cx).is_ready() {
                return Poll::Ready(None);
            }
            next.as_mut().poll(cx).map(Some)
        })
        .await;
        let Some(event) = ready else { break };
        let lost = match event? {
            Event::Conntrack(ev) => {
                let entry = ConntrackRepr::try_from(&ev.entry)?;
                if let Some(orig) = entry.orig {
                    match ev.kind {
                        EventKind::New | EventKind::Update => live.insert(orig),
                        EventKind::Destroy => live.remove(&orig),
                    };
                }
                let userspace = (ev.portid != 0).then_some(Userspace {
                    portid: ev.portid,
                    progname: None,
                });
                println!(
                    "{}",
                    CtLine::new(&entry, Origin::Event(ev.kind), &out, &()).userspace(userspace)
                );
                None
            }
            Event::Expect(_) => None,
            Event::Lost(lost) => Some(lost),
        };
        if let Some(lost) = lost {
            eprintln!("ctevents_tokio: {lost}; resynchronising with a dump");
            live = resync(&requests).await?;
            eprintln!("ctevents_tokio: {} in the table", entries(live.len()));
        }
    }
    let stats = events.get_ref().stats();
    eprintln!(
        "ctevents_tokio: {} received, {} lost; {} known at the end",
        stats.received,
        stats.lost,
        entries(live.len())
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
