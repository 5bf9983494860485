//! A minimal node for benchmarks and experiments (not the `conntrackd` program): one
//! dedicated link, the mode, the engine's counters written to a status file.
//!
//! ```text
//! sync_node --local ADDR --peer ADDR [--port 3780] [--mode ftfw|notrack|alarm]
//!           [--transport udp|tcp] [--status FILE] [--rcvbuf BYTES] [--rcvbuf-max BYTES]
//!           [--startup-resync]
//! ```
//!
//! The status file is rewritten (atomically) every 50 ms with lines `external N`,
//! `internal N`, `rx_messages N`, `events_lost N`. It runs until killed.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use conntrack_sync::{CacheId, ChannelConfig, Mode, Node, NodeConfig};

fn main() {
    if let Err(e) = run() {
        eprintln!("sync_node: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut local, mut peer): (Option<IpAddr>, Option<IpAddr>) = (None, None);
    let (mut port, mut mode, mut tcp, mut status) = (3780u16, Mode::Ftfw, false, None);
    let (mut rcvbuf, mut rcvbuf_max, mut startup_resync) = (None, None, false);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--local" => local = Some(val()?.parse()?),
            "--peer" => peer = Some(val()?.parse()?),
            "--port" => port = val()?.parse()?,
            "--mode" => {
                mode = match val()?.as_str() {
                    "ftfw" => Mode::Ftfw,
                    "notrack" => Mode::Notrack,
                    "alarm" => Mode::Alarm,
                    m => return Err(format!("unknown mode {m}").into()),
                }
            }
            "--transport" => tcp = val()? == "tcp",
            "--status" => status = Some(val()?),
            "--rcvbuf" => rcvbuf = Some(val()?.parse()?),
            "--rcvbuf-max" => rcvbuf_max = Some(val()?.parse()?),
            "--startup-resync" => startup_resync = true,
            _ => return Err(format!("unknown option {a}").into()),
        }
    }
    let (local, peer) = (
        SocketAddr::new(local.ok_or("--local missing")?, port),
        SocketAddr::new(peer.ok_or("--peer missing")?, port),
    );
    let ch = if tcp {
        ChannelConfig::tcp(local, peer)
    } else {
        ChannelConfig::udp(local, peer)
    };
    let mut cfg = NodeConfig::with_channels(vec![ch]);
    cfg.engine.mode = mode;
    cfg.startup_resync = startup_resync;
    if let Some(b) = rcvbuf {
        cfg.netlink_buffer = b;
    }
    if let Some(b) = rcvbuf_max {
        cfg.netlink_buffer_max = b;
    }
    let mut node = Node::start(cfg)?;
    let mut last = Instant::now();
    loop {
        node.run_once(50)?;
        if let Some(path) = &status {
            if last.elapsed().as_millis() >= 50 {
                last = Instant::now();
                let s = node.engine().stats();
                let text = format!(
                    "external {}\ninternal {}\nrx_messages {}\nevents_lost {}\n",
                    node.engine().external_ct_len(),
                    node.engine().cache_stats(CacheId::InternalCt).active,
                    s.rx_messages,
                    node.stats().events_lost
                );
                let tmp = format!("{path}.tmp");
                std::fs::write(&tmp, text)?;
                std::fs::rename(&tmp, path)?;
            }
        }
    }
}
