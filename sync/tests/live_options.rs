//! The options of a pair, live between two throwaway namespaces: several links and the
//! switch to another when the active one fails; UDP checksums off and socket buffers;
//! expectations replicated and committed; no external cache (straight into the kernel); no
//! internal cache; the kernel-side filter; the purge of `-t`; `StartupResync`.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use conntrack_codec::ct::request::Key;
use conntrack_codec::ct::{l4proto, ConntrackRepr};
use conntrack_codec::filter::bpf::Logic;
use conntrack_sync::{ChannelConfig, Config, ExpectSync, Filter, Mode, Network, NodeConfig};
use support::*;

fn udp(l: &Veth, a: bool) -> ChannelConfig {
    let (local, peer, iface) = if a {
        (l.a(false), l.b(false), &l.if_a)
    } else {
        (l.b(false), l.a(false), &l.if_b)
    };
    ChannelConfig::udp(SocketAddr::new(local, PORT), SocketAddr::new(peer, PORT))
        .on_interface(iface)
}

fn pair_cfg(l: &Veth) -> (NodeConfig, NodeConfig) {
    (
        NodeConfig::with_channels(vec![udp(l, true)]),
        NodeConfig::with_channels(vec![udp(l, false)]),
    )
}

#[test]
fn a_failed_link_hands_over_to_the_next() {
    let mut p = Pair::new("ofail");
    let l1 = p.links[0].clone();
    let l2 = p.add_link();
    let mut ca = NodeConfig::with_channels(vec![udp(&l1, true), udp(&l2, true)]);
    let mut cb = NodeConfig::with_channels(vec![udp(&l1, false), udp(&l2, false)]);
    ca.channels[0].default = true;
    cb.channels[0].default = true;
    let na = spawn(&p.a, ca);
    let nb = spawn(&p.b, cb);
    make_entries(&p.a, 1, 100, 0);
    let s = nb.wait_for("entries over the first link", 20, |s| {
        s.ext_marks == range(0, 100)
    });
    assert!(s.links[0].active && s.links[0].stats.packets_recv > 0);
    let before = s.links[1].stats.packets_recv;
    // The first link fails (A's end goes down, B's loses its carrier).
    p.a.run("ip", &["link", "set", &l1.if_a, "down"]);
    let sa = na.wait_for("A moved to the second link", 10, |s| s.links[1].active);
    let notice = na.run(|n| n.poll_notice().map(|x| x.to_string()));
    assert_eq!(
        notice,
        Some(format!("device `{}' becomes dedicated link", l2.if_a))
    );
    make_entries_from(&p.a, 1, 100, 100, 1000);
    let mut want = range(0, 100);
    want.extend(range(1000, 100));
    let sb = nb.wait_for("entries over the second link", 20, |s| {
        s.ext_marks == want && s.links[1].active
    });
    assert!(sb.links[1].stats.packets_recv > before);
    println!(
        "link {} down: A switched to {} ({} switch), B followed; 200 entries arrived",
        l1.if_a, l2.if_a, sa.node.link_switches
    );
    na.stop();
    nb.stop();
}

#[test]
fn checksums_off_and_socket_buffers() {
    let p = Pair::new("ocsum");
    let l = p.links[0].clone();
    let (mut ca, cb) = pair_cfg(&l);
    ca.channels[0].checksum = false;
    ca.channels[0].sndbuf = 1 << 20;
    ca.channels[0].rcvbuf = 1 << 20;
    let cap = capture_udp_checksums(&p.b, l.v4.0, PORT, 5, 10);
    let na = spawn(&p.a, ca);
    let nb = spawn(&p.b, cb);
    make_entries(&p.a, 1, 50, 0);
    nb.wait_for("entries with checksums off", 20, |s| {
        s.ext_marks == range(0, 50)
    });
    let sums = cap.join().unwrap();
    assert!(!sums.is_empty());
    assert!(sums.iter().all(|&c| c == 0), "{sums:?}");
    let link = &na.snap().links[0];
    assert!(!link.checksum);
    assert!(link.sndbuf >= 1 << 20 && link.rcvbuf >= 1 << 20, "{link:?}");
    // The other way, with checksums on, they are there.
    let cap = capture_udp_checksums(&p.a, l.v4.1, PORT, 5, 10);
    make_entries(&p.b, 2, 50, 100);
    na.wait_for("entries with checksums on", 20, |s| {
        s.ext_marks == range(100, 50)
    });
    let sums = cap.join().unwrap();
    assert!(!sums.is_empty() && sums.iter().all(|&c| c != 0), "{sums:?}");
    assert!(nb.snap().links[0].checksum);
    na.stop();
    nb.stop();
}

#[test]
fn expectations_travel_and_commit_into_the_kernel() {
    let p = Pair::new("oexp");
    let l = p.links[0].clone();
    let (mut ca, mut cb) = pair_cfg(&l);
    for c in [&mut ca, &mut cb] {
        c.engine.expectations = ExpectSync::Helpers(vec!["ftp".into()]);
    }
    let na = spawn(&p.a, ca);
    let nb = spawn(&p.b, cb);
    let mut sa = p.a.socket();
    let mut exps = Vec::new();
    for i in 0..3u16 {
        let (m, e) = conntrack_tests::sync::ftp_master_and_expectation(i);
        sa.create(&m).unwrap();
        sa.exp_create(&e).unwrap();
        exps.push(e);
    }
    assert_eq!(
        conntrack_tests::sync::kernel_expectation_ports(&p.a),
        [50_000, 50_001, 50_002]
    );
    let s = nb.wait_for("the expectations in B", 20, |s| {
        s.ext_exp == 3 && s.ext_marks.len() == 3
    });
    assert_eq!(s.ext_marks, [77_000, 77_001, 77_002]);
    // B commits the masters, then the expectations.
    let (ok, failed) = nb.run(|n| n.commit().unwrap());
    assert_eq!((ok, failed), (3, 0));
    let (ok, failed) = nb.run(|n| n.commit_expectations().unwrap());
    assert_eq!((ok, failed), (3, 0));
    assert_eq!(
        conntrack_tests::sync::kernel_expectation_ports(&p.b),
        [50_000, 50_001, 50_002]
    );
    // An expectation's end travels.
    let mut k = conntrack_codec::exp::request::ExpKey::tuple(exps[1].tuple.unwrap());
    k.zone = None;
    sa.exp_delete(&k).unwrap();
    nb.wait_for("the deleted expectation gone from B", 20, |s| {
        s.ext_exp == 2
    });
    na.stop();
    nb.stop();
}

#[test]
fn without_external_cache_entries_go_straight_into_the_kernel() {
    let p = Pair::new("oinj");
    let l = p.links[0].clone();
    let (ca, mut cb) = pair_cfg(&l);
    cb.engine.external_cache = false;
    let na = spawn(&p.a, ca);
    let nb = spawn(&p.b, cb);
    let ea = make_entries(&p.a, 1, 100, 5_000);
    let b_kernel = || kernel_marks(&p.b);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while b_kernel() != range(5_000, 100) {
        assert!(std::time::Instant::now() < end, "{:?}", nb.snap().stats);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let s = nb.snap();
    assert!(s.ext_marks.is_empty());
    // Updates and deletes follow into the kernel.
    let mut sa = p.a.socket();
    sa.delete(&Key::orig(ea[0].orig.unwrap())).unwrap();
    let mut u = ConntrackRepr {
        family: 2,
        orig: ea[1].orig,
        mark: Some(9_999),
        ..ConntrackRepr::default()
    };
    sa.update(&u).unwrap();
    let mut want = range(5_002, 98);
    want.push(9_999);
    want.sort_unstable();
    while b_kernel() != want {
        assert!(std::time::Instant::now() < end, "{:?}", nb.snap().stats);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // What B put into its kernel is not sent back to A.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(na.snap().ext_marks.is_empty());
    u.mark = None;
    na.stop();
    nb.stop();
}

#[test]
fn without_internal_cache_events_go_out_and_a_bulk_dumps_the_kernel() {
    let p = Pair::new("obyp");
    let l = p.links[0].clone();
    let (mut ca, mut cb) = pair_cfg(&l);
    for c in [&mut ca, &mut cb] {
        c.engine.mode = Mode::Notrack;
    }
    ca.engine.internal_cache = false;
    make_entries(&p.a, 1, 40, 0); // before A starts: only a bulk sends these
    let na = spawn(&p.a, ca);
    let nb = spawn(&p.b, cb);
    make_entries_from(&p.a, 1, 40, 60, 40);
    nb.wait_for("A's events in B", 20, |s| s.ext_marks == range(40, 60));
    assert_eq!(na.snap().int_len, 0);
    na.run(|n| n.engine_mut().send_bulk());
    nb.wait_for("A's bulk in B", 20, |s| s.ext_marks == range(0, 100));
    na.stop();
    nb.stop();
}

#[test]
fn the_kernel_side_filter_keeps_events_out_before_they_are_read() {
    let p = Pair::new("okfl");
    let l = p.links[0].clone();
    let (mut ca, cb) = pair_cfg(&l);
    // Side 1's entries come from 10.201.X.Y: ignore 10.201.0.0/24 (the first 256).
    ca.engine.filter = Filter {
        protocols: Some((Logic::Positive, vec![l4proto::TCP])),
        addresses: Some((
            Logic::Negative,
            vec![Network {
                addr: IpAddr::V4(Ipv4Addr::new(10, 201, 0, 0)),
                prefix: 24,
            }],
        )),
        tcp_states: None,
    };
    ca.engine.filter_kernelspace = true;
    let na = spawn(&p.a, ca);
    let nb = spawn(&p.b, cb);
    make_entries(&p.a, 1, 300, 0);
    nb.wait_for("the entries the filter lets through", 20, |s| {
        s.ext_marks == range(256, 44)
    });
    let s = na.snap();
    // The kernel never delivered the others: no event of them was read.
    assert_eq!(s.node.events, 44, "{:?}", s.node);
    assert_eq!(s.stats.filtered, 0);
    na.stop();
    nb.stop();
}

#[test]
fn the_purge_of_t_empties_the_table_after_purge_timeout() {
    let p = Pair::new("opurge");
    let l = p.links[0].clone();
    let (mut ca, _) = pair_cfg(&l);
    ca.purge_timeout = 1;
    make_entries(&p.a, 1, 30, 0);
    let na = spawn(&p.a, ca);
    na.wait_for("the table in the internal cache", 10, |s| s.int_len == 30);
    let t0 = std::time::Instant::now();
    na.run(|n| n.schedule_purge());
    let s = na.wait_for("the purge", 10, |s| s.node.purges == 1);
    assert!(t0.elapsed() >= std::time::Duration::from_millis(900));
    assert_eq!(s.node.purged, 30);
    assert!(kernel_marks(&p.a).is_empty());
    na.wait_for("an empty internal cache", 5, |s| s.int_len == 0);
    na.stop();
}

#[test]
fn startup_resync_asks_the_peer_for_its_table() {
    let p = Pair::new("ostart");
    let l = p.links[0].clone();
    let (mut ca, cb) = pair_cfg(&l);
    make_entries(&p.b, 2, 50, 0);
    let nb = spawn(&p.b, cb);
    ca.startup_resync = true;
    let na = spawn(&p.a, ca);
    na.wait_for("B's table in A", 20, |s| s.ext_marks == range(0, 50));
    nb.wait_for("the RESYNC request seen by B", 5, |s| {
        s.stats.rx_resync == 1
    });
    na.stop();
    nb.stop();
}

#[test]
fn alarm_external_entries_expire_when_the_peer_stops() {
    let p = Pair::new("oalrm");
    let l = p.links[0].clone();
    let (mut ca, mut cb) = pair_cfg(&l);
    for c in [&mut ca, &mut cb] {
        c.engine = Config {
            mode: Mode::Alarm,
            refresh_s: 1,
            cache_timeout_s: 3,
            ..Config::default()
        };
    }
    let na = spawn(&p.a, ca);
    let nb = spawn(&p.b, cb);
    make_entries(&p.a, 1, 20, 0);
    nb.wait_for("A's entries in B", 20, |s| s.ext_marks == range(0, 20));
    na.stop();
    nb.wait_for("A's entries expired in B", 10, |s| s.ext_marks.is_empty());
    nb.stop();
}
