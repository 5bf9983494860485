//! A tokio event monitor that keeps a count of the live entries per protocol and, when the
//! kernel reports that events were lost, resynchronises it with a dump (feature `tokio`).
//!
//! ```text
//! cargo run -p conntrack-io --features tokio --example monitor      (as root)
//! ```

use std::collections::HashMap;
use std::ops::ControlFlow;

use conntrack_codec::ct::EventKind;
use conntrack_codec::filter::DumpFilter;
use conntrack_io::tokio::{AsyncEvents, AsyncSocket};
use conntrack_io::{Event, Groups};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Live entries per protocol number, from a dump.
async fn count(requests: &AsyncSocket) -> Result<HashMap<u8, i64>, BoxError> {
    let (live, summary) = requests
        .list_fold(DumpFilter::all(), HashMap::new(), |live, entry| {
            if let Ok(Some(t)) = entry.orig() {
                *live.entry(t.proto.unwrap_or(0)).or_insert(0) += 1;
            }
            ControlFlow::Continue(())
        })
        .await?;
    if summary.interrupted {
        eprintln!("monitor: the table changed during the dump; the counts may be off by a few");
    }
    Ok(live)
}

async fn run() -> Result<(), BoxError> {
    // Subscribe before the dump: nothing falls between the two.
    let mut events = AsyncEvents::open(Groups::CONNTRACK)?;
    events.get_ref().set_rcvbuf(4 << 20)?;
    let requests = AsyncSocket::open()?;
    let mut live = count(&requests).await?;
    println!("start: {live:?}");
    loop {
        match events.next().await? {
            Event::Conntrack(ev) => {
                let proto = ev.entry.orig()?.and_then(|t| t.proto).unwrap_or(0);
                let n = live.entry(proto).or_insert(0);
                match ev.kind {
                    EventKind::New => *n += 1,
                    EventKind::Destroy => *n -= 1,
                    EventKind::Update => {}
                }
            }
            Event::Expect(_) => {}
            Event::Lost(lost) => {
                eprintln!("monitor: {lost}; counting again");
                live = count(&requests).await?;
            }
        }
        if events.get_ref().stats().received % 1000 == 0 {
            println!("{live:?}");
        }
    }
}

fn main() -> std::process::ExitCode {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build();
    let result = match rt {
        Ok(rt) => rt.block_on(run()),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("monitor: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
