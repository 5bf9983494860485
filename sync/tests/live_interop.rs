//! Ours paired with Debian's conntrackd 1.4.7 in each mode (FTFW, NOTRACK, ALARM) over each
//! transport (UDP, IPv4 and IPv6 multicast, TCP), between two throwaway namespaces joined by
//! veth: conntrackd's entries reach our external cache, ours reach conntrackd's (`-e`),
//! and deletes travel both ways. Skipped, saying so, when conntrackd is not installed.

mod support;

use conntrack_codec::ct::request::Key;
use conntrack_sync::{Config, Mode, NodeConfig, Transport};
use support::*;

const N: u32 = 200;

fn mode_section(mode: Mode) -> &'static str {
    match mode {
        Mode::Ftfw => "Mode FTFW { }",
        Mode::Notrack => "Mode NOTRACK { }",
        Mode::Alarm => "Mode ALARM { RefreshTime 5\n CacheTimeout 60 }",
    }
}

fn ours(mode: Mode, transport: Transport, v6: bool, l: &Veth) -> NodeConfig {
    let ch = our_channel(transport, v6, l, false);
    let mut cfg = NodeConfig::with_channels(vec![ch]);
    cfg.engine = Config {
        mode,
        refresh_s: 5,
        cache_timeout_s: 60,
        ..Config::default()
    };
    cfg
}

fn one_mode(p: &Pair, mode: Mode, transport: Transport, v6: bool, round: u32) {
    let l = &p.links[0];
    let ctd = Conntrackd::start(
        &p.a,
        mode_section(mode),
        &ctd_channel(transport, l.a(v6), l.b(v6), &l.if_a),
        "",
    );
    let node = spawn(&p.b, ours(mode, transport, v6, l));
    let what = format!("{mode:?} over {transport:?} (IPv6: {v6})");
    let (base_a, base_b) = (round * 10_000 + 100_000, round * 10_000 + 200_000);
    let ea: Vec<_> = (0..N)
        .map(|i| entry(1, round * 1000 + i, base_a + i))
        .collect();
    let eb: Vec<_> = (0..N)
        .map(|i| entry(2, round * 1000 + i, base_b + i))
        .collect();
    p.a.socket()
        .create_batch(&ea, 64, |_, r| r.unwrap())
        .unwrap();
    p.b.socket()
        .create_batch(&eb, 64, |_, r| r.unwrap())
        .unwrap();
    node.wait_for(&format!("{what}: conntrackd's entries in ours"), 30, |s| {
        s.ext_marks == range(base_a, N)
    });
    ctd.wait_ext(
        &format!("{what}: ours in conntrackd"),
        30,
        &range(base_b, N),
    );
    // Deletes both ways: the first half of each side's entries.
    let (mut sa, mut sb) = (p.a.socket(), p.b.socket());
    for i in 0..N / 2 {
        sa.delete(&Key::orig(ea[i as usize].orig.unwrap())).unwrap();
        sb.delete(&Key::orig(eb[i as usize].orig.unwrap())).unwrap();
    }
    node.wait_for(&format!("{what}: conntrackd's deletes in ours"), 30, |s| {
        s.ext_marks == range(base_a + N / 2, N / 2)
    });
    ctd.wait_ext(
        &format!("{what}: our deletes in conntrackd"),
        30,
        &range(base_b + N / 2, N / 2),
    );
    println!(
        "{what}: {N} entries and {} deletes each way with conntrackd 1.4.7",
        N / 2
    );
    node.stop();
    drop(ctd);
    // The next round starts from empty tables (ALARM refreshes everything it holds).
    flush_table(&p.a);
    flush_table(&p.b);
}

fn all_modes(tag: &str, transport: Transport, v6: bool) {
    need_conntrackd();
    let p = Pair::new(tag);
    for (round, mode) in [Mode::Ftfw, Mode::Notrack, Mode::Alarm]
        .into_iter()
        .enumerate()
    {
        one_mode(&p, mode, transport, v6, round as u32);
    }
}

#[test]
fn ours_and_conntrackd_over_udp_in_every_mode() {
    all_modes("iudp", Transport::Udp, false);
}

#[test]
fn ours_and_conntrackd_over_ipv4_multicast_in_every_mode() {
    all_modes("imc4", Transport::Multicast, false);
}

#[test]
fn ours_and_conntrackd_over_ipv6_multicast_in_every_mode() {
    all_modes("imc6", Transport::Multicast, true);
}

#[test]
fn ours_and_conntrackd_over_tcp_in_every_mode() {
    all_modes("itcp", Transport::Tcp, false);
}
