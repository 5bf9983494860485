//! FTFW without sockets: two engines joined by an in-memory link that loses, reorders,
//! duplicates and replays datagrams, on a simulated clock.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};

use conntrack_codec::ct::{ConntrackRepr, ProtoInfo, Status, TcpInfo, TcpState, Tuple};
use conntrack_codec::sync::{flags, Body, Control, Messages, SyncCt};

use crate::{Config, Engine};

pub(crate) fn entry(i: u32) -> ConntrackRepr {
    let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i >> 16)));
    let dst = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let orig = Tuple::tcp(src, dst, (i & 0xffff) as u16, 80);
    ConntrackRepr {
        family: 2,
        orig: Some(orig),
        reply: Some(orig.inverted()),
        status: Some(Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED),
        protoinfo: Some(ProtoInfo::Tcp(TcpInfo {
            state: Some(TcpState::Established),
            ..TcpInfo::default()
        })),
        timeout: Some(300),
        mark: Some(i),
        ..ConntrackRepr::default()
    }
}

/// A tiny deterministic generator (xorshift), so that every run loses the same datagrams.
pub(crate) struct Rng(pub(crate) u64);
impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn percent(&mut self) -> u64 {
        self.next() % 100
    }
}

#[derive(Default, Clone, Copy)]
pub(crate) struct Faults {
    pub(crate) loss: u64,
    pub(crate) duplicate: u64,
    pub(crate) reorder: u64,
}

/// Two engines and the link; `step` moves the clock 10 ms.
pub(crate) struct Pair {
    pub(crate) a: Engine,
    pub(crate) b: Engine,
    pub(crate) now: u64,
    pub(crate) rng: Rng,
    pub(crate) faults: Faults,
    pub(crate) a_to_b: VecDeque<Vec<u8>>,
    pub(crate) b_to_a: VecDeque<Vec<u8>>,
    pub(crate) sent_a: Vec<Vec<u8>>,
}

impl Pair {
    pub(crate) fn new(cfg: Config, seq_a: u32, seq_b: u32, faults: Faults) -> Pair {
        Pair {
            a: Engine::new(cfg.clone(), seq_a),
            b: Engine::new(cfg, seq_b),
            now: 1,
            rng: Rng(0x9e37_79b9_7f4a_7c15),
            faults,
            a_to_b: VecDeque::new(),
            b_to_a: VecDeque::new(),
            sent_a: Vec::new(),
        }
    }

    fn carry(rng: &mut Rng, f: Faults, q: &mut VecDeque<Vec<u8>>, d: Vec<u8>) {
        if rng.percent() < f.loss {
            return;
        }
        if rng.percent() < f.duplicate {
            q.push_back(d.clone());
        }
        if rng.percent() < f.reorder && !q.is_empty() {
            q.push_front(d);
        } else {
            q.push_back(d);
        }
    }

    pub(crate) fn step(&mut self) {
        self.now += 10;
        let mut buf = [0u8; 2048];
        for e in [&mut self.a, &mut self.b] {
            e.on_tick(self.now);
        }
        while let Some(n) = self.a.poll_transmit(self.now, &mut buf) {
            self.sent_a.push(buf[..n].to_vec());
            Self::carry(
                &mut self.rng,
                self.faults,
                &mut self.a_to_b,
                buf[..n].to_vec(),
            );
        }
        while let Some(n) = self.b.poll_transmit(self.now, &mut buf) {
            Self::carry(
                &mut self.rng,
                self.faults,
                &mut self.b_to_a,
                buf[..n].to_vec(),
            );
        }
        while let Some(d) = self.a_to_b.pop_front() {
            self.b.on_datagram(&d, self.now);
        }
        while let Some(d) = self.b_to_a.pop_front() {
            self.a.on_datagram(&d, self.now);
        }
    }

    pub(crate) fn run_until(&mut self, max_ms: u64, done: impl Fn(&Pair) -> bool) -> bool {
        let end = self.now + max_ms;
        while self.now < end {
            self.step();
            if done(self) {
                return true;
            }
        }
        false
    }
}

pub(crate) fn marks_in_external(e: &Engine) -> Vec<u32> {
    let mut v: Vec<u32> = e
        .external()
        .map(|x| {
            SyncCt::new_checked(&x.attrs)
                .unwrap()
                .to_repr()
                .unwrap()
                .mark
                .unwrap()
        })
        .collect();
    v.sort_unstable();
    v
}

fn converge(n: u32, faults: Faults, seq_a: u32) -> Pair {
    let mut p = Pair::new(Config::default(), seq_a, 7, faults);
    for i in 0..n {
        p.a.ct_update(&entry(i), p.now).unwrap();
        if i.is_multiple_of(50) {
            p.step();
        }
    }
    let ok = p.run_until(60_000, |p| p.b.external_ct_len() == n as usize);
    assert!(
        ok,
        "{} of {n} arrived; a: {:?}; b: {:?}",
        p.b.external_ct_len(),
        p.a.stats(),
        p.b.stats()
    );
    p
}

#[test]
fn a_clean_link_delivers_everything_in_order() {
    let p = converge(2000, Faults::default(), 1000);
    assert_eq!(marks_in_external(&p.b), (0..2000).collect::<Vec<_>>());
    assert_eq!(p.b.stats().rx_lost, 0);
    assert_eq!(p.a.stats().tx_resent, 0);
}

#[test]
fn thirty_percent_loss_both_ways_loses_nothing() {
    let p = converge(
        5000,
        Faults {
            loss: 30,
            ..Faults::default()
        },
        1000,
    );
    assert_eq!(marks_in_external(&p.b).len(), 5000);
    assert!(p.b.stats().rx_lost > 0 && p.a.stats().rx_nack > 0);
    assert!(p.a.stats().tx_resent > 0);
}

#[test]
fn reorder_and_duplicates_are_survived() {
    let p = converge(
        3000,
        Faults {
            loss: 5,
            duplicate: 10,
            reorder: 10,
        },
        1000,
    );
    assert_eq!(marks_in_external(&p.b), (0..3000).collect::<Vec<_>>());
    assert!(p.b.stats().rx_before > 0, "{:?}", p.b.stats());
}

#[test]
fn sequence_numbers_wrap_around_2_pow_32() {
    let p = converge(
        3000,
        Faults {
            loss: 20,
            ..Faults::default()
        },
        u32::MAX - 1500,
    );
    assert_eq!(marks_in_external(&p.b).len(), 3000);
}

#[test]
fn updates_and_deletes_travel_under_loss() {
    let faults = Faults {
        loss: 30,
        ..Faults::default()
    };
    let mut p = converge(1000, faults, 1);
    // Update the mark of the even entries and delete every third.
    for i in 0..1000u32 {
        if i.is_multiple_of(3) {
            p.a.ct_destroy(&entry(i)).unwrap();
        } else if i.is_multiple_of(2) {
            let mut e = entry(i);
            e.mark = Some(i + 100_000);
            p.a.ct_update(&e, p.now).unwrap();
        }
    }
    let want: Vec<u32> = (0..1000u32)
        .filter(|i| i % 3 != 0)
        .map(|i| if i.is_multiple_of(2) { i + 100_000 } else { i })
        .collect();
    let mut want_sorted = want.clone();
    want_sorted.sort_unstable();
    let ok = p.run_until(60_000, |p| marks_in_external(&p.b) == want_sorted);
    assert!(ok, "b: {:?}", p.b.stats());
    // Deleted entries leave the internal cache once the peer acknowledged them.
    assert!(p.run_until(20_000, |p| p.a.internal().count() == want.len()));
}

#[test]
fn an_update_event_without_mark_keeps_the_cached_mark() {
    let mut e = Engine::new(Config::default(), 1);
    e.ct_update(&entry(5), 0).unwrap();
    let mut upd = entry(5);
    upd.mark = None;
    upd.timeout = Some(100);
    e.ct_update(&upd, 1).unwrap();
    let got: Vec<_> = e
        .internal()
        .map(|x| SyncCt::new_checked(x.attrs).unwrap().to_repr().unwrap())
        .collect();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].mark, got[0].timeout), (Some(5), Some(100)));
}

/// Builds one datagram from `msgs` (seq, flags, body kind).
pub(crate) fn ctl(seq: u32, fl: u8, from: u32, to: u32) -> Vec<u8> {
    let mut b = [0u8; 16];
    let n = Control {
        flags: fl,
        seq,
        from,
        to,
    }
    .emit(&mut b)
    .unwrap();
    b[..n].to_vec()
}

/// An FTFW engine whose HELLO the peer (numbering from `peer_seq`) answered: it sends
/// everything at once (before the answer it sends only HELLOs).
pub(crate) fn answered(cfg: Config, first_seq: u32, peer_seq: u32) -> Engine {
    let mut e = Engine::new(cfg, first_seq);
    e.on_datagram(&ctl(peer_seq, flags::ALIVE | flags::HELLO_BACK, 0, 0), 0);
    e
}

#[test]
fn forged_malformed_and_replayed_datagrams_are_dropped_and_counted() {
    let mut p = converge(200, Faults::default(), 1000);
    p.run_until(3000, |_| false);
    for i in 200..300 {
        p.a.ct_update(&entry(i), p.now).unwrap();
    }
    assert!(p.run_until(3000, |p| p.b.external_ct_len() == 300));
    let before = marks_in_external(&p.b);
    let stats0 = p.b.stats();
    // Replays of everything A sent after the handshake: all before the expected number.
    // (A replayed HELLO is taken as the peer starting again, as conntrackd takes it: only
    // the peer's address is accepted, see `Node`.)
    let replays: Vec<Vec<u8>> = p
        .sent_a
        .iter()
        .filter(|d| !Messages::new(d).any(|m| m.unwrap().is_hello()))
        .cloned()
        .collect();
    assert!(!replays.is_empty());
    for d in &replays {
        p.b.on_datagram(d, p.now);
    }
    let s = p.b.stats();
    assert!(s.rx_before > stats0.rx_before);
    assert_eq!(marks_in_external(&p.b), before);
    // Garbage, truncations and a wrong version.
    let sample = replays[0].clone();
    for cut in 0..sample.len() {
        p.b.on_datagram(&sample[..cut], p.now);
    }
    let mut v2 = sample.clone();
    v2[0] = 0x20;
    p.b.on_datagram(&v2, p.now);
    p.b.on_datagram(&[0xff; 64], p.now);
    assert!(p.b.stats().rx_malformed > s.rx_malformed);
    // A forged data message far ahead of the peer's numbering, with a poisoned entry.
    let mut forged = sample.clone();
    let seq = u32::from_be_bytes(forged[4..8].try_into().unwrap()).wrapping_add(10_000_000);
    forged[4..8].copy_from_slice(&seq.to_be_bytes());
    p.b.on_datagram(&forged, p.now);
    assert_eq!(p.b.stats().rx_out_of_window, 1);
    assert_eq!(marks_in_external(&p.b), before);
    // A forged NACK of everything does no harm beyond resending.
    p.a.on_datagram(&ctl(1, flags::NACK, 0, u32::MAX / 2), p.now);
    assert!(p.run_until(10_000, |p| !p.a.has_output()));
    assert_eq!(marks_in_external(&p.b), before);
    // The caches stay consistent and the pair keeps working.
    p.a.ct_update(&entry(999), p.now).unwrap();
    assert!(p.run_until(10_000, |p| p.b.external_ct_len() == 301));
}

#[test]
fn gaps_are_nacked_and_acks_follow_the_window() {
    let cfg = Config {
        ack_window: 4,
        ..Config::default()
    };
    let mut b = answered(cfg.clone(), 50, 99);
    let mut a = answered(cfg, 100, 49);
    for i in 0..10 {
        a.ct_update(&entry(i), 0).unwrap();
    }
    let mut buf = [0u8; 100]; // one message per datagram
    let mut grams = Vec::new();
    while let Some(n) = a.poll_transmit(0, &mut buf) {
        grams.push(buf[..n].to_vec());
    }
    assert_eq!(grams.len(), 10);
    // Lose seq 103 and 104.
    for (i, g) in grams.iter().enumerate() {
        if i != 3 && i != 4 {
            b.on_datagram(g, 0);
        }
    }
    assert_eq!(b.stats().rx_lost, 2);
    let mut out = Vec::new();
    while let Some(n) = b.poll_transmit(0, &mut buf) {
        for m in Messages::new(&buf[..n]) {
            match m.unwrap().body().unwrap() {
                Body::Ack { from, to } => out.push((true, from, to)),
                Body::Nack { from, to } => out.push((false, from, to)),
                _ => {}
            }
        }
    }
    assert!(out.contains(&(true, 99, 102)), "{out:?}");
    assert!(out.contains(&(false, 103, 104)), "{out:?}");
    // A answers the NACK with the two entries, under new numbers.
    let mut ctl_gram = [0u8; 64];
    let n = Control {
        flags: flags::NACK,
        seq: 50,
        from: 103,
        to: 104,
    }
    .emit(&mut ctl_gram)
    .unwrap();
    a.on_datagram(&ctl_gram[..n], 0);
    let mut resent = 0;
    while let Some(n) = a.poll_transmit(0, &mut buf) {
        for m in Messages::new(&buf[..n]) {
            let m = m.unwrap();
            assert!(m.seq() >= 110);
            resent += 1;
            b.on_datagram(m.bytes(), 0);
        }
    }
    assert_eq!(resent, 2);
    assert_eq!(b.external_ct_len(), 10);
}

#[test]
fn hello_handshake_and_a_restarted_peer() {
    let mut p = converge(100, Faults::default(), 1000);
    // Once answered (B's next message carries HELLO_BACK), A stops saying HELLO.
    p.run_until(3000, |_| false);
    let mut buf = [0u8; 2048];
    p.a.ct_update(&entry(500), p.now).unwrap();
    let n = p.a.poll_transmit(p.now, &mut buf).unwrap();
    let m = Messages::new(&buf[..n]).next().unwrap().unwrap();
    assert!(!m.is_hello());
    p.b.on_datagram(&buf[..n], p.now);
    // B restarts: a new engine with another numbering, and an empty external cache. A's
    // HELLO handling sends again whatever B had not acknowledged; a resync request from
    // the new B brings everything.
    p.b = Engine::new(Config::default(), 900_000_000);
    p.b.request_resync();
    assert!(p.run_until(20_000, |p| p.b.external_ct_len() == 101));
    assert!(p.a.stats().rx_hello >= 1);
    assert_eq!(p.a.stats().rx_resync, 1);
}

#[test]
fn committed_timeouts_are_what_is_left_or_commit_timeout() {
    use crate::cache::{commit_request, exp_commit_request};
    let e = entry(1); // timeout 300
    assert_eq!(commit_request(&e, 100, None, false).timeout, Some(200));
    assert_eq!(commit_request(&e, 300, None, false).timeout, Some(60));
    assert_eq!(commit_request(&e, u64::MAX, None, false).timeout, Some(60));
    assert_eq!(commit_request(&e, 100, Some(7), false).timeout, Some(7));
    let none = ConntrackRepr {
        timeout: None,
        ..entry(2)
    };
    assert_eq!(commit_request(&none, 0, None, false).timeout, Some(60));
    let x = conntrack_codec::exp::ExpectRepr {
        timeout: Some(30),
        id: Some(9),
        ..Default::default()
    };
    let c = exp_commit_request(&x, 10, None);
    assert_eq!((c.timeout, c.id), (Some(20), None));
    assert_eq!(exp_commit_request(&x, 40, None).timeout, Some(60));
    assert_eq!(exp_commit_request(&x, 0, Some(5)).timeout, Some(5));
}
