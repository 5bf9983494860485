//! NOTRACK and ALARM, the caches' options (no internal cache, no external cache, the hash
//! limit), the filter, expectations, origins, the stream framing, the counters, without
//! sockets: two engines on the in-memory link of `tests`.

use std::net::{IpAddr, Ipv4Addr};

use conntrack_codec::ct::{l4proto, ConntrackRepr, EventKind, Helper, Tuple};
use conntrack_codec::exp::{ExpectFlags, ExpectRepr};
use conntrack_codec::filter::bpf::Logic;
use conntrack_codec::sync::{flags, Body, DataKind, Messages, SyncCt, SyncExp};

use crate::tests::{answered, ctl, entry, marks_in_external, Faults, Pair};
use crate::{CacheId, Config, Engine, ExpectSync, Filter, Mode, Network, Origin, RsEntry};

fn cfg(mode: Mode) -> Config {
    Config {
        mode,
        ..Config::default()
    }
}

/// Every message `e` sends now, as (type, flags).
fn drain(e: &mut Engine, now: u64) -> Vec<(u8, u8, Vec<u8>)> {
    let mut buf = [0u8; 2048];
    let mut out = Vec::new();
    while let Some(n) = e.poll_transmit(now, &mut buf) {
        for m in Messages::new(&buf[..n]) {
            let m = m.unwrap();
            out.push((m.header().kind, m.flags(), m.bytes().to_vec()));
        }
    }
    out
}

fn is_ack_or_nack(d: &[u8]) -> bool {
    Messages::new(d).any(|m| matches!(m.unwrap().body(), Ok(Body::Ack { .. } | Body::Nack { .. })))
}

#[test]
fn notrack_sends_once_counts_losses_and_recovers_only_on_request() {
    let faults = Faults {
        loss: 20,
        ..Faults::default()
    };
    let mut p = Pair::new(cfg(Mode::Notrack), 10, 20, faults);
    for i in 0..2000 {
        p.a.ct_update(&entry(i), p.now).unwrap();
        if i.is_multiple_of(50) {
            p.step();
        }
    }
    p.run_until(5_000, |_| false);
    let got = p.b.external_ct_len();
    assert!(got < 2000 && got > 1000, "{got}");
    assert!(p.b.stats().rx_lost > 0);
    assert_eq!(p.a.stats().tx_resent, 0);
    assert!(!p.sent_a.iter().any(|d| is_ack_or_nack(d)));
    // Nothing more comes by itself.
    p.run_until(10_000, |_| false);
    assert_eq!(p.b.external_ct_len(), got);
    // A clean link and a resync request (`-n` on B) bring the rest.
    p.faults = Faults::default();
    p.b.request_resync();
    assert!(p.run_until(10_000, |p| p.b.external_ct_len() == 2000));
    assert_eq!(p.a.stats().rx_resync, 1);
    assert_eq!(marks_in_external(&p.b), (0..2000).collect::<Vec<_>>());
}

#[test]
fn notrack_says_alive_after_a_second_of_silence_and_takes_late_messages() {
    let mut a = Engine::new(cfg(Mode::Notrack), 100);
    a.on_tick(5_000);
    let out = drain(&mut a, 5_000);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].0, out[0].1), (10, flags::ALIVE));
    // Sent right after, nothing; a second later, again.
    a.on_tick(5_500);
    assert!(drain(&mut a, 5_500).is_empty());
    a.on_tick(6_000);
    assert_eq!(drain(&mut a, 6_000).len(), 1);
    // A receiver in NOTRACK applies a message that comes late (conntrackd does), and an
    // ACK is a malformed header there.
    for i in 0..3 {
        a.ct_update(&entry(i), 6_000).unwrap();
    }
    let msgs = drain(&mut a, 6_000);
    let mut b = Engine::new(cfg(Mode::Notrack), 1);
    b.on_datagram(&msgs[2].2, 6_000);
    b.on_datagram(&msgs[0].2, 6_000);
    b.on_datagram(&msgs[1].2, 6_000);
    assert_eq!(b.external_ct_len(), 3);
    // 102 after 104 is late; 103 then follows 102 (the numbering restarts from what came).
    assert_eq!(b.stats().rx_before, 1);
    b.on_datagram(&ctl(50, flags::ACK, 1, 2), 6_000);
    assert_eq!(b.stats().rx_bad_header, 1);
}

#[test]
fn alarm_refreshes_recover_losses_and_send_no_control_messages() {
    let c = Config {
        refresh_s: 2,
        ..cfg(Mode::Alarm)
    };
    let faults = Faults {
        loss: 30,
        ..Faults::default()
    };
    let mut p = Pair::new(c, 10, 20, faults);
    for i in 0..1000 {
        p.a.ct_update(&entry(i), p.now).unwrap();
    }
    assert!(p.run_until(60_000, |p| p.b.external_ct_len() == 1000));
    assert!(p.a.stats().tx_refresh > 0);
    // Only data messages, and no HELLO flags.
    for d in &p.sent_a {
        for m in Messages::new(d) {
            let m = m.unwrap();
            assert!(m.header().kind <= 5 && m.flags() == 0, "{:?}", m.header());
        }
    }
    // -n and -B do nothing in ALARM (as in conntrackd).
    p.b.request_resync();
    p.a.send_bulk();
    assert!(!p.b.has_output() && !p.a.has_output());
}

#[test]
fn alarm_forgets_external_entries_not_refreshed_within_cache_timeout() {
    let c = Config {
        refresh_s: 1,
        cache_timeout_s: 5,
        ..cfg(Mode::Alarm)
    };
    let mut p = Pair::new(c, 10, 20, Faults::default());
    for i in 0..100 {
        p.a.ct_update(&entry(i), p.now).unwrap();
    }
    assert!(p.run_until(5_000, |p| p.b.external_ct_len() == 100));
    // Refreshes keep them there well past the timeout.
    p.run_until(12_000, |_| false);
    assert_eq!(p.b.external_ct_len(), 100);
    // The peer goes silent: they go after CacheTimeout.
    p.faults.loss = 100;
    assert!(p.run_until(8_000, |p| p.b.external_ct_len() == 0));
    assert_eq!(p.b.stats().ext_expired, 100);
    // A control message (flags set) is ignored by ALARM, and counted as nothing bad.
    p.b.on_datagram(&ctl(7, flags::ACK, 1, 2), p.now);
    assert_eq!(p.b.stats().rx_malformed, 0);
}

#[test]
fn populate_sends_nothing_resync_sends_what_the_peer_lacks() {
    let mut a = answered(Config::default(), 1, 1000);
    for i in 0..10 {
        a.ct_populate(&entry(i), 0).unwrap();
    }
    assert!(!a.has_output());
    assert_eq!(a.internal().count(), 10);
    // A resync (after lost events) sends the never-sent ones as new, and deletes the ones
    // the kernel no longer has.
    a.begin_kernel_resync();
    for i in 0..8 {
        a.ct_resync(&entry(i), 1).unwrap();
    }
    a.end_kernel_resync();
    let out = drain(&mut a, 1);
    let news = out.iter().filter(|m| m.0 == 0).count();
    assert_eq!(news, 8);
    assert_eq!(a.internal().count(), 8);
    // Once sent, an unchanged entry is not sent again by the next resync; a changed one is.
    a.begin_kernel_resync();
    for i in 0..8 {
        let mut e = entry(i);
        if i == 3 {
            e.mark = Some(333);
        }
        a.ct_resync(&e, 2).unwrap();
    }
    a.end_kernel_resync();
    let out = drain(&mut a, 2);
    let data: Vec<_> = out.iter().filter(|m| m.0 <= 5).collect();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0].0, 1); // an update
}

#[test]
fn events_of_own_commits_are_kept_not_sent_and_injections_ignored() {
    let mut a = answered(Config::default(), 1, 1000);
    a.ct_event(EventKind::New, &entry(1), Origin::Commit, 0)
        .unwrap();
    assert!(!a.has_output());
    assert_eq!(a.internal().count(), 1);
    a.ct_event(EventKind::New, &entry(2), Origin::Inject, 0)
        .unwrap();
    assert_eq!(a.internal().count(), 1);
    a.ct_event(EventKind::Destroy, &entry(1), Origin::Commit, 0)
        .unwrap();
    assert_eq!(a.internal().count(), 0);
    assert!(!a.has_output());
    // The peer's RESYNC gets committed entries too (they are ours now).
    a.ct_event(EventKind::New, &entry(3), Origin::Commit, 0)
        .unwrap();
    a.send_bulk();
    assert_eq!(drain(&mut a, 0).iter().filter(|m| m.0 == 0).count(), 1);
}

#[test]
fn the_userspace_filter_judges_events_and_dumps_the_kernel_one_only_dumps() {
    let filter = Filter {
        addresses: Some((
            Logic::Positive,
            vec![Network {
                addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)),
                prefix: 8,
            }],
        )),
        ..Filter::default()
    };
    let other = |i: u32| {
        let mut e = entry(i);
        let o = Tuple::tcp(
            IpAddr::V4(Ipv4Addr::new(172, 16, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            i as u16,
            80,
        );
        e.orig = Some(o);
        e.reply = Some(o.inverted());
        e
    };
    let mut a = Engine::new(
        Config {
            filter: filter.clone(),
            ..Config::default()
        },
        1,
    );
    a.ct_update(&entry(1), 0).unwrap();
    a.ct_update(&other(2), 0).unwrap();
    a.ct_populate(&other(3), 0).unwrap();
    assert_eq!(a.internal().count(), 1);
    assert_eq!(a.stats().filtered, 2);
    // From Kernelspace: events are taken as the kernel let them through; dumps are still
    // judged here.
    let mut k = Engine::new(
        Config {
            filter,
            filter_kernelspace: true,
            ..Config::default()
        },
        1,
    );
    k.ct_update(&other(2), 0).unwrap();
    k.ct_populate(&other(3), 0).unwrap();
    k.ct_resync(&other(4), 0).unwrap();
    assert_eq!(k.internal().count(), 1);
    assert_eq!(k.stats().filtered, 2);
}

fn ftp_exp(master: &ConntrackRepr, helper: &str, port: u16) -> ExpectRepr {
    let m = master.orig.unwrap();
    let mut t = Tuple::tcp(m.src.unwrap(), m.dst.unwrap(), 0, port);
    t.src_port = Some(0);
    let mut mask = Tuple::tcp(
        IpAddr::V4(Ipv4Addr::BROADCAST),
        IpAddr::V4(Ipv4Addr::BROADCAST),
        0,
        0xffff,
    );
    mask.proto = Some(l4proto::TCP);
    ExpectRepr {
        family: 2,
        master: Some(m),
        tuple: Some(t),
        mask: Some(mask),
        timeout: Some(300),
        flags: Some(ExpectFlags(0)),
        helper: Some(helper.try_into().unwrap()),
        ..ExpectRepr::default()
    }
}

#[test]
fn expectations_follow_the_helper_list_and_need_their_master() {
    let c = Config {
        expectations: ExpectSync::Helpers(vec!["ftp".into(), "sip".into()]),
        ..Config::default()
    };
    let mut p = Pair::new(c, 5, 6, Faults::default());
    let mut master = entry(7);
    master.helper = Some(Helper::named("ftp").unwrap());
    // Without its master in the cache, an expectation is not taken.
    p.a.exp_update(&ftp_exp(&master, "ftp", 2000), 0).unwrap();
    assert_eq!(p.a.stats().filtered, 1);
    p.a.ct_update(&master, 0).unwrap();
    p.a.exp_update(&ftp_exp(&master, "ftp", 2000), 0).unwrap();
    p.a.exp_update(&ftp_exp(&master, "sip-5060", 2001), 0)
        .unwrap();
    p.a.exp_update(&ftp_exp(&master, "irc", 2002), 0).unwrap();
    assert_eq!(p.a.stats().filtered, 2);
    assert!(p.run_until(3_000, |p| p.b.external_exp_len() == 2));
    let mut ports: Vec<u16> =
        p.b.external()
            .filter(|e| e.expect)
            .map(|e| {
                SyncExp::new_checked(&e.attrs)
                    .unwrap()
                    .to_repr()
                    .unwrap()
                    .tuple
                    .unwrap()
                    .dst_port
                    .unwrap()
            })
            .collect();
    ports.sort_unstable();
    assert_eq!(ports, [2000, 2001]);
    // Its end travels too.
    p.a.exp_destroy(&ftp_exp(&master, "ftp", 2000)).unwrap();
    assert!(p.run_until(3_000, |p| p.b.external_exp_len() == 1));
    assert_eq!(p.b.cache_stats(CacheId::ExternalExp).del_ok, 1);
    // Off: none at all.
    assert!(!ExpectSync::Off.accepts(Some("ftp")));
    assert!(ExpectSync::All.accepts(None));
    assert!(!ExpectSync::Helpers(vec!["sip".into()]).accepts(Some("si")));
    assert!(ExpectSync::Helpers(vec!["SIP".into()]).accepts(Some("sip-5060")));
}

#[test]
fn without_internal_cache_events_go_straight_out_and_bulk_asks_for_a_dump() {
    let c = Config {
        internal_cache: false,
        ..cfg(Mode::Notrack)
    };
    let mut a = Engine::new(c, 1);
    a.ct_update(&entry(1), 0).unwrap();
    a.ct_event(EventKind::New, &entry(2), Origin::Kernel, 0)
        .unwrap();
    a.ct_destroy(&entry(1)).unwrap();
    a.ct_event(EventKind::New, &entry(3), Origin::Commit, 0)
        .unwrap();
    assert_eq!(a.internal().count(), 0);
    let out = drain(&mut a, 0);
    let kinds: Vec<u8> = out.iter().map(|m| m.0).collect();
    assert_eq!(kinds, [1, 0, 2]);
    a.send_bulk();
    assert!(a.take_kernel_bulk());
    assert!(!a.take_kernel_bulk());
    a.bulk_entry(&entry(9)).unwrap();
    let out = drain(&mut a, 0);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, 0);
    let mut b = Engine::new(cfg(Mode::Notrack), 9);
    b.on_datagram(&out[0].2, 0);
    assert_eq!(marks_in_external(&b), [9]);
}

#[test]
fn without_external_cache_entries_are_handed_over_for_the_kernel() {
    let c = Config {
        external_cache: false,
        ..Config::default()
    };
    let mut p = Pair::new(c, 1, 2, Faults::default());
    for i in 0..5 {
        p.a.ct_update(&entry(i), 0).unwrap();
    }
    p.a.ct_destroy(&entry(0)).unwrap();
    let mut got = Vec::new();
    let ok = p.run_until(3_000, |p| p.b.poll_inject().is_some());
    assert!(ok);
    p.run_until(500, |_| false);
    while let Some(i) = p.b.poll_inject() {
        let r = SyncCt::new_checked(i.attrs).unwrap().to_repr().unwrap();
        got.push((i.kind, r.mark.unwrap()));
        p.b.pop_inject();
    }
    assert_eq!(p.b.external_ct_len(), 0);
    assert!(got.contains(&(DataKind::CtNew, 3)), "{got:?}");
    assert_eq!(got.len(), 4, "{got:?}"); // entry 0 never left: made and gone before a send
    p.b.count_inject(DataKind::CtNew, true, false);
    p.b.count_inject(DataKind::CtUpdate, false, true);
    let s = p.b.cache_stats(CacheId::ExternalCt);
    assert_eq!((s.add_ok, s.upd_fail, s.upd_fail_enoent), (1, 1, 1));
}

#[test]
fn the_hash_limit_bounds_both_caches_and_is_counted() {
    let c = Config {
        hash_limit: 10,
        ..Config::default()
    };
    let mut p = Pair::new(c.clone(), 1, 2, Faults::default());
    for i in 0..15 {
        p.a.ct_update(&entry(i), 0).unwrap();
    }
    let s = p.a.cache_stats(CacheId::InternalCt);
    assert_eq!((s.active, s.add_ok, s.add_fail_enospc), (10, 10, 5));
    // A bigger sender fills the smaller receiver up to its limit.
    let mut big = answered(Config::default(), 3, 1000);
    for i in 0..15 {
        big.ct_update(&entry(i), 0).unwrap();
    }
    let mut small = Engine::new(c, 4);
    for (_, _, m) in drain(&mut big, 0) {
        small.on_datagram(&m, 0);
    }
    let s = small.cache_stats(CacheId::ExternalCt);
    assert_eq!((s.active, s.add_fail, s.add_fail_enospc), (10, 5, 5));
}

#[test]
fn a_stream_cut_anywhere_gives_each_message_once() {
    let mut a = answered(Config::default(), 1, 1000);
    for i in 0..40 {
        a.ct_update(&entry(i), 0).unwrap();
    }
    let mut stream = Vec::new();
    let mut buf = [0u8; 1472];
    while let Some(n) = a.poll_transmit(0, &mut buf) {
        stream.extend_from_slice(&buf[..n]);
    }
    for cut in [1usize, 7, 8, 9, 15, 16, 17, 100, 333, stream.len() - 1] {
        let mut b = Engine::new(Config::default(), 2);
        let tail = b.on_stream(&stream[..cut], 0);
        assert!(tail <= cut);
        let mut rest = stream[cut - tail..cut].to_vec();
        rest.extend_from_slice(&stream[cut..]);
        assert_eq!(b.on_stream(&rest, 0), 0);
        assert_eq!(b.external_ct_len(), 40, "cut at {cut}");
        assert_eq!(b.stats().rx_malformed, 0);
    }
}

#[test]
fn malformed_messages_are_classified_as_conntrackd_counts_them() {
    let mut a = answered(Config::default(), 1, 1000);
    a.ct_update(&entry(1), 0).unwrap();
    let good = drain(&mut a, 0).remove(0).2;
    let mut b = Engine::new(Config::default(), 2);
    b.on_datagram(&good[..5], 0);
    assert_eq!(b.stats().rx_truncated, 1);
    let mut zero = good.clone();
    zero[2..4].copy_from_slice(&[0, 0]);
    b.on_datagram(&zero, 0);
    let mut long = good.clone();
    long[2..4].copy_from_slice(&2000u16.to_be_bytes());
    b.on_datagram(&long, 0);
    assert_eq!(b.stats().rx_bad_size, 2);
    let mut v2 = good.clone();
    v2[0] = 0x20;
    b.on_datagram(&v2, 0);
    assert_eq!(b.stats().rx_bad_version, 1);
    let mut badflags = good.clone();
    badflags[1] = flags::ACK;
    b.on_datagram(&badflags, 0);
    assert_eq!(b.stats().rx_bad_header, 1);
    let mut payload = good.clone();
    payload[9] = 0; // the first attribute's length under its header
    payload[4..8].copy_from_slice(&0u32.to_be_bytes()); // the number before the good one
    b.on_datagram(&payload, 0);
    assert_eq!(b.stats().rx_bad_payload, 1);
    assert_eq!(b.stats().rx_malformed, 6);
    assert_eq!(b.external_ct_len(), 0);
    b.on_datagram(&good, 0);
    assert_eq!(b.external_ct_len(), 1);
}

#[test]
fn queues_and_the_resend_queue_are_listed() {
    let mut a = answered(Config::default(), 100, 8);
    for i in 0..3 {
        a.ct_update(&entry(i), 0).unwrap();
    }
    assert_eq!(a.queues()[0].current, 3);
    a.request_resync();
    drain(&mut a, 0);
    let rs: Vec<RsEntry> = a.rs_queue().collect();
    assert_eq!(
        rs,
        [
            RsEntry::Object { seq: 100 },
            RsEntry::Object { seq: 101 },
            RsEntry::Object { seq: 102 },
            RsEntry::Control {
                seq: 103,
                flags: flags::RESYNC
            },
        ]
    );
    assert_eq!(a.queues()[1].current, 4);
    assert_eq!(a.queues()[0].current, 0);
    // An entry changed again leaves the resend queue for the transmit queue: both lists
    // and both counts say so.
    let mut e = entry(0);
    e.mark = Some(7);
    a.ct_update(&e, 0).unwrap();
    assert_eq!(a.rs_queue().count(), 3);
    assert_eq!((a.queues()[0].current, a.queues()[1].current), (1, 3));
    drain(&mut a, 0);
    a.on_datagram(&ctl(9, flags::ACK, 100, 104), 0);
    assert_eq!(a.rs_queue().count(), 0);
}

#[test]
fn the_purge_timer_fires_once_after_its_delay_and_a_commit_cancels_it() {
    let mut a = Engine::new(Config::default(), 1);
    a.schedule_purge(1_000, 60);
    a.schedule_purge(30_000, 60); // kept, as conntrackd keeps its alarm
    assert!(a.purge_pending());
    assert!(!a.take_purge(60_999));
    assert!(a.take_purge(61_000));
    assert!(!a.take_purge(70_000));
    a.schedule_purge(0, 1);
    a.cancel_purge();
    assert!(!a.take_purge(10_000));
    for i in 0..4 {
        a.ct_populate(&entry(i), 0).unwrap();
    }
    a.flush_internal_ct();
    assert_eq!(a.internal().count(), 0);
}

/// A resync whose dumps the kernel flags interrupted (`NLM_F_DUMP_INTR`) is dumped again, a
/// bounded number of times; only a complete dump deletes what it did not show.
#[test]
fn an_interrupted_resync_dump_is_made_again_and_purges_only_when_complete() {
    use crate::{resync_with, RESYNC_DUMP_TRIES};
    let fresh = || {
        let mut a = answered(Config::default(), 1, 1000);
        for i in 0..10 {
            a.ct_update(&entry(i), 0).unwrap();
        }
        drain(&mut a, 0);
        a
    };
    // The kernel has 0..8 now (8 and 9 went while events were lost); the first two dumps
    // are interrupted (each shows part of the table), the third is complete.
    let mut a = fresh();
    let mut calls = 0;
    let o = resync_with(&mut a, |e| {
        calls += 1;
        let shown = if calls < 3 { 0..4 } else { 0..8 };
        for i in shown {
            e.ct_resync(&entry(i), 1).unwrap();
        }
        Ok(calls < 3)
    })
    .unwrap();
    assert_eq!((o.dumps, o.interrupted, o.complete), (3, 2, true));
    assert_eq!(a.internal().count(), 8);
    let deletes = drain(&mut a, 1).iter().filter(|m| m.0 == 2).count();
    assert_eq!(
        deletes, 2,
        "the two stale entries, and only them, deleted at the peer"
    );
    // Every dump interrupted: nothing is deleted, what was shown is kept.
    let mut a = fresh();
    let o = resync_with(&mut a, |e| {
        for i in 0..4 {
            e.ct_resync(&entry(i), 1).unwrap();
        }
        Ok(true)
    })
    .unwrap();
    assert_eq!(
        (o.dumps, o.interrupted, o.complete),
        (RESYNC_DUMP_TRIES, RESYNC_DUMP_TRIES, false)
    );
    assert_eq!(a.internal().count(), 10);
    assert!(drain(&mut a, 1).iter().all(|m| m.0 != 2));
    // An error ends it at once.
    let mut a = fresh();
    let e = resync_with(&mut a, |_| Err(std::io::Error::other("socket"))).unwrap_err();
    assert_eq!(e.to_string(), "socket");
}

/// The engine says when its timers are due, so that a caller can sleep until then.
#[test]
fn the_next_timer_is_the_earliest_thing_due() {
    let mut a = Engine::new(Config::default(), 1);
    a.on_tick(5);
    assert_eq!(a.next_timer(), Some(0), "the first HELLO is due now");
    drain(&mut a, 5);
    assert_eq!(
        a.next_timer(),
        Some(1005),
        "idle, not answered: a HELLO a second"
    );
    a.ct_update(&entry(1), 10).unwrap();
    assert_eq!(
        a.next_timer(),
        Some(205),
        "waiting to send: a HELLO every 200 ms"
    );
    // Answered: what waits goes now; then the ALIVE after the data, and the data's
    // resend timer.
    a.on_datagram(&ctl(500, flags::ALIVE | flags::HELLO_BACK, 0, 0), 20);
    assert_eq!(a.next_timer(), Some(0));
    a.on_tick(20);
    drain(&mut a, 20);
    assert_eq!(
        a.next_timer(),
        Some(70),
        "the ALIVE 50 ms after the last data"
    );
    a.on_tick(70);
    drain(&mut a, 70);
    assert_eq!(
        a.next_timer(),
        Some(1020),
        "the grace after the handshake ends"
    );
    a.on_tick(1020);
    assert_eq!(a.next_timer(), Some(1070), "the next ALIVE");
    a.on_datagram(&ctl(501, flags::ACK, 0, u32::MAX / 2), 1030);
    a.schedule_purge(1030, 0);
    assert_eq!(a.next_timer(), Some(1030), "the purge");
    assert!(a.take_purge(1030));
    assert_eq!(a.next_timer(), Some(1070));
    // ALARM: the next scan.
    let mut b = Engine::new(cfg(Mode::Alarm), 1);
    b.on_tick(100);
    assert_eq!(b.next_timer(), Some(300));
}

/// TCP window scales are sent only with `TCPWindowTracking`, as conntrackd sends them.
#[test]
fn window_scales_travel_only_with_window_tracking() {
    use conntrack_codec::ct::ProtoInfo;
    use conntrack_codec::sync::{nta, NtaAttrs};
    let mut e = entry(1);
    if let Some(ProtoInfo::Tcp(t)) = e.protoinfo.as_mut() {
        t.wscale_orig = Some(7);
        t.wscale_reply = Some(9);
    }
    for tracking in [false, true] {
        let c = Config {
            tcp_window_tracking: tracking,
            ..Config::default()
        };
        let mut a = answered(c, 1, 1000);
        a.ct_update(&e, 0).unwrap();
        let (_, _, m) = drain(&mut a, 0).remove(0);
        let kinds: Vec<u16> = NtaAttrs::new(&m[8..]).map(|x| x.unwrap().kind()).collect();
        let has = kinds.contains(&nta::TCP_WSCALE_ORIG) && kinds.contains(&nta::TCP_WSCALE_REPL);
        assert_eq!(has, tracking, "{kinds:?}");
        assert!(kinds.contains(&nta::TCP_STATE) && kinds.contains(&nta::MARK));
        let r = SyncCt::new_checked(&m[8..]).unwrap().to_repr().unwrap();
        assert_eq!(r.mark, Some(1));
        let mut b = Engine::new(Config::default(), 5);
        b.on_datagram(&m, 0);
        assert_eq!(b.external_ct_len(), 1);
    }
}
