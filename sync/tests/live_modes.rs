//! Ours paired with ours in each mode (FTFW, NOTRACK, ALARM) over each transport (UDP,
//! IPv4 and IPv6 multicast, TCP) between two throwaway namespaces joined by veth: entries
//! made on each side reach the other's external cache, updates and deletes follow. A few
//! hundred entries per case, to stay lean in CI.

mod support;

use conntrack_codec::ct::request::Key;
use conntrack_codec::ct::ConntrackRepr;
use conntrack_sync::{Config, Mode, NodeConfig, Transport};
use support::*;

const N: u32 = 300;

/// A node's configuration for `mode` on link `l`, as side A (`a`) or B.
fn node_cfg(mode: Mode, transport: Transport, v6: bool, l: &Veth, a: bool) -> NodeConfig {
    let ch = our_channel(transport, v6, l, a);
    let mut cfg = NodeConfig::with_channels(vec![ch]);
    cfg.engine = Config {
        mode,
        refresh_s: 5,
        ..Config::default()
    };
    cfg
}

/// One mode over one transport: entries both ways, then updates and deletes on A.
fn one_mode(p: &Pair, mode: Mode, transport: Transport, v6: bool, round: u32) {
    let l = &p.links[0];
    let na = spawn(&p.a, node_cfg(mode, transport, v6, l, true));
    let nb = spawn(&p.b, node_cfg(mode, transport, v6, l, false));
    let (base_a, base_b) = (round * 10_000 + 1_000_000, round * 10_000 + 2_000_000);
    let ea: Vec<ConntrackRepr> = (0..N)
        .map(|i| entry(1, round * 1000 + i, base_a + i))
        .collect();
    let eb: Vec<ConntrackRepr> = (0..N)
        .map(|i| entry(2, round * 1000 + i, base_b + i))
        .collect();
    p.a.socket()
        .create_batch(&ea, 64, |_, r| r.unwrap())
        .unwrap();
    p.b.socket()
        .create_batch(&eb, 64, |_, r| r.unwrap())
        .unwrap();
    let what = format!("{mode:?} over {transport:?} (IPv6: {v6})");
    nb.wait_for(&format!("{what}: A's entries in B"), 30, |s| {
        s.ext_marks == range(base_a, N)
    });
    na.wait_for(&format!("{what}: B's entries in A"), 30, |s| {
        s.ext_marks == range(base_b, N)
    });
    // Updates (mark) and deletes on A.
    let mut sa = p.a.socket();
    let mut upd = Vec::new();
    for (i, e) in ea.iter().enumerate() {
        let i = i as u32;
        if i.is_multiple_of(3) {
            sa.delete(&Key::orig(e.orig.unwrap())).unwrap();
        } else if i % 3 == 1 {
            upd.push(ConntrackRepr {
                family: 2,
                orig: e.orig,
                mark: Some(base_a + 5_000 + i),
                ..ConntrackRepr::default()
            });
        }
    }
    sa.update_batch(&upd, 64, |_, r| r.unwrap()).unwrap();
    let mut want: Vec<u32> = (0..N)
        .filter(|i| i % 3 != 0)
        .map(|i| {
            if i % 3 == 1 {
                base_a + 5_000 + i
            } else {
                base_a + i
            }
        })
        .collect();
    want.sort_unstable();
    let s = nb.wait_for(&format!("{what}: A's updates and deletes in B"), 30, |s| {
        s.ext_marks == want
    });
    println!(
        "{what}: {N} entries each way, {} updates and {} deletes: B took {} messages, lost {}",
        upd.len(),
        N.div_ceil(3),
        s.stats.rx_messages,
        s.stats.rx_lost
    );
    na.stop();
    nb.stop();
    flush_table(&p.a);
    flush_table(&p.b);
}

fn all_modes(tag: &str, transport: Transport, v6: bool) {
    let p = Pair::new(tag);
    for (round, mode) in [Mode::Ftfw, Mode::Notrack, Mode::Alarm]
        .into_iter()
        .enumerate()
    {
        one_mode(&p, mode, transport, v6, round as u32);
    }
}

#[test]
fn ours_with_ours_over_udp_in_every_mode() {
    all_modes("mudp", Transport::Udp, false);
}

#[test]
fn ours_with_ours_over_udp_ipv6() {
    let p = Pair::new("mudp6");
    one_mode(&p, Mode::Ftfw, Transport::Udp, true, 0);
}

#[test]
fn ours_with_ours_over_ipv4_multicast_in_every_mode() {
    all_modes("mmc4", Transport::Multicast, false);
}

#[test]
fn ours_with_ours_over_ipv6_multicast_in_every_mode() {
    all_modes("mmc6", Transport::Multicast, true);
}

#[test]
fn ours_with_ours_over_tcp_in_every_mode() {
    all_modes("mtcp", Transport::Tcp, false);
}
