//! Every request builder (`ct::request::*`, `exp::request::*`) driven by structured input.
//!
//! Several requests are written one after the other into one buffer, as a bulk datagram is.
//! A builder either fails, leaving the writer exactly as it was, or writes exactly one
//! well-formed message at the end, with `NLM_F_REQUEST`, the given sequence number, port
//! id 0, the right type and nfgenmsg, and attributes that parse back to what was asked.
//! Each message is also rebuilt alone into a buffer of exactly its size (same bytes) and
//! into one a byte short (`BufferTooSmall`, writer untouched).
#![no_main]

use core::ops::Range;

use arbitrary::Arbitrary;
use conntrack_codec::ct::{request, ConntrackRepr, Status, Tuple};
use conntrack_codec::exp::{request as exp_request, ExpectRepr};
use conntrack_codec::filter::{DumpFilter, FilterFlags};
use conntrack_codec::nfnl::{
    ct_msg, exp_msg, split_type, NfMsg, Subsystem, NFNETLINK_V0, NFNETLINK_V1,
};
use conntrack_codec::nl::{flags, Messages, Writer};
use conntrack_codec::{Error, Result};
use conntrack_fuzz::arb::{AConntrack, ADumpFilter, AExpKey, AExpect, AKey};
use conntrack_fuzz::emitted_unknowns;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Req {
    Create(AConntrack),
    Update(AConntrack),
    CreateOrUpdate(AConntrack),
    Get(AKey),
    Delete(AKey),
    Flush(ADumpFilter),
    Dump(ADumpFilter),
    DumpZero(ADumpFilter),
    Dying,
    Unconfirmed,
    StatsCpu,
    StatsGlobal,
    ExpCreate(AExpect),
    ExpGet(AExpKey),
    ExpDelete(AExpKey),
    ExpDeleteHelper(String),
    ExpFlush(u8),
    ExpDump(u8),
    ExpStatsCpu,
}

#[derive(Arbitrary, Debug)]
struct Input {
    seq: u32,
    reqs: Vec<Req>,
}

fn build(req: &Req, w: &mut Writer<'_>, seq: u32) -> Result<Range<usize>> {
    match req {
        Req::Create(e) => request::create(w, seq, &e.get()),
        Req::Update(e) => request::update(w, seq, &e.get()),
        Req::CreateOrUpdate(e) => request::create_or_update(w, seq, &e.get()),
        Req::Get(k) => request::get(w, seq, &k.get()),
        Req::Delete(k) => request::delete(w, seq, &k.get()),
        Req::Flush(f) => request::flush(w, seq, &f.get()),
        Req::Dump(f) => request::dump(w, seq, &f.get()),
        Req::DumpZero(f) => request::dump_zero_counters(w, seq, &f.get()),
        Req::Dying => request::dump_dying(w, seq),
        Req::Unconfirmed => request::dump_unconfirmed(w, seq),
        Req::StatsCpu => request::stats_cpu(w, seq),
        Req::StatsGlobal => request::stats_global(w, seq),
        Req::ExpCreate(e) => exp_request::create(w, seq, &e.get()),
        Req::ExpGet(k) => exp_request::get(w, seq, &k.get()),
        Req::ExpDelete(k) => exp_request::delete(w, seq, &k.get()),
        Req::ExpDeleteHelper(h) => exp_request::delete_by_helper(w, seq, h),
        Req::ExpFlush(f) => exp_request::flush(w, seq, *f),
        Req::ExpDump(f) => exp_request::dump(w, seq, *f),
        Req::ExpStatsCpu => exp_request::stats_cpu(w, seq),
    }
}

fn complete(t: &Tuple) -> bool {
    t.src.is_some() && t.dst.is_some() && t.proto.is_some()
}

/// What a conntrack entry request must carry: the entry, its family filled in from the
/// tuples, `CONFIRMED` added to a create's status, and only top-level unknowns.
fn expected_entry(e: &ConntrackRepr, creating: bool) -> ConntrackRepr {
    let family = if e.family != 0 {
        e.family
    } else {
        e.orig
            .as_ref()
            .or(e.reply.as_ref())
            .and_then(Tuple::family)
            .unwrap_or(0)
    };
    ConntrackRepr {
        family,
        status: e
            .status
            .map(|s| if creating { s | Status::CONFIRMED } else { s }),
        unknown: emitted_unknowns(&e.unknown),
        ..e.clone()
    }
}

/// What the attributes of a dump or flush must say.
fn check_filter(f: &DumpFilter, got: &ConntrackRepr) {
    assert_eq!(got.orig, f.orig.map(|(t, _)| t));
    assert_eq!(got.reply, f.reply.map(|(t, _)| t));
    assert_eq!(got.mark.zip(got.mark_mask), f.mark);
    assert_eq!(got.status.zip(got.status_mask), f.status);
    assert_eq!(got.zone, f.zone);
    let flags = (f.orig.is_some() || f.reply.is_some()).then(|| FilterFlags {
        orig: f.orig.map(|(_, fl)| fl),
        reply: f.reply.map(|(_, fl)| fl),
    });
    assert_eq!(got.filter, flags);
}

/// Checks one message a builder wrote for `req`.
fn check(req: &Req, bytes: &[u8], seq: u32) {
    let mut it = Messages::new(bytes);
    let msg = it.next().expect("a message").expect("well formed");
    assert!(it.next().is_none(), "exactly one message");
    assert_eq!(msg.bytes().len(), bytes.len());
    assert_eq!(msg.seq(), seq);
    assert_eq!(msg.pid(), 0);
    assert_ne!(msg.flags() & flags::REQUEST, 0);
    let nf = NfMsg::new_checked(msg).expect("nfgenmsg");
    let (subsys, num) = split_type(msg.kind());
    let g = *nf.nfgen();
    assert_eq!(g.res_id, 0);
    let ack = flags::REQUEST | flags::ACK;
    let dump = flags::REQUEST | flags::DUMP;
    let attrs = |family| ConntrackRepr::parse_attrs(family, nf.attr_bytes()).expect("attributes");
    let exp_attrs = |family| ExpectRepr::parse_attrs(family, nf.attr_bytes()).expect("attributes");
    match req {
        Req::Create(e) | Req::Update(e) | Req::CreateOrUpdate(e) => {
            let e = e.get();
            let (creating, fl) = match req {
                Req::Create(_) => (true, ack | flags::CREATE | flags::EXCL),
                Req::Update(_) => (false, ack),
                _ => (true, ack | flags::CREATE),
            };
            assert_eq!(
                (subsys, num, msg.flags()),
                (Subsystem::Ctnetlink, ct_msg::NEW, fl)
            );
            let want = expected_entry(&e, creating);
            assert_eq!(g.family, want.family);
            assert_eq!(ConntrackRepr::parse(&nf).expect("entry parses"), want);
            assert_eq!(
                want.buffer_len(),
                bytes.len(),
                "buffer_len() is the emitted length"
            );
        }
        Req::Get(k) | Req::Delete(k) => {
            let num_want = if matches!(req, Req::Get(_)) {
                ct_msg::GET
            } else {
                ct_msg::DELETE
            };
            assert_eq!(
                (subsys, num, msg.flags()),
                (Subsystem::Ctnetlink, num_want, ack)
            );
            let k = k.get();
            let got = attrs(g.family);
            match k.orig {
                Some(t) => assert_eq!((got.orig, got.reply), (Some(t), None)),
                None => assert_eq!((got.orig, got.reply), (None, k.reply)),
            }
            let t = got.orig.or(got.reply).expect("a tuple");
            assert!(complete(&t));
            assert_eq!(Some(g.family), t.family());
            assert_eq!((got.zone, got.id), (k.zone, k.id));
        }
        Req::Flush(f) | Req::Dump(f) | Req::DumpZero(f) => {
            let f = f.get();
            // Written only if possible at all.
            assert_eq!(f.check(), Ok(()));
            let (num_want, fl) = match req {
                Req::Flush(_) => (ct_msg::DELETE, ack),
                Req::Dump(_) => (ct_msg::GET, dump),
                _ => (ct_msg::GET_CTRZERO, dump),
            };
            assert_eq!(
                (subsys, num, msg.flags()),
                (Subsystem::Ctnetlink, num_want, fl)
            );
            let version = if f.family != 0 {
                NFNETLINK_V1
            } else {
                NFNETLINK_V0
            };
            assert_eq!((g.family, g.version), (f.family, version));
            check_filter(&f, &attrs(g.family));
        }
        Req::Dying | Req::Unconfirmed | Req::StatsCpu => {
            let num_want = match req {
                Req::Dying => ct_msg::GET_DYING,
                Req::Unconfirmed => ct_msg::GET_UNCONFIRMED,
                _ => ct_msg::GET_STATS_CPU,
            };
            assert_eq!(
                (subsys, num, msg.flags()),
                (Subsystem::Ctnetlink, num_want, dump)
            );
            assert!(nf.attr_bytes().is_empty());
        }
        Req::StatsGlobal => {
            assert_eq!(
                (subsys, num, msg.flags()),
                (Subsystem::Ctnetlink, ct_msg::GET_STATS, ack)
            );
            assert!(nf.attr_bytes().is_empty());
        }
        Req::ExpCreate(e) => {
            let e = e.get();
            let fl = ack | flags::CREATE | flags::EXCL;
            assert_eq!(
                (subsys, num, msg.flags()),
                (Subsystem::CtnetlinkExp, exp_msg::NEW, fl)
            );
            let master = e.master.expect("a master");
            assert!(complete(&master) && e.tuple.is_some() && e.mask.is_some());
            let family = if e.family != 0 {
                e.family
            } else {
                master.family().unwrap_or(0)
            };
            let want = ExpectRepr {
                family,
                unknown: emitted_unknowns(&e.unknown),
                ..e
            };
            assert_eq!(g.family, family);
            assert_eq!(ExpectRepr::parse(&nf).expect("expectation parses"), want);
            assert_eq!(
                want.buffer_len(),
                bytes.len(),
                "buffer_len() is the emitted length"
            );
        }
        Req::ExpGet(k) | Req::ExpDelete(k) => {
            let num_want = if matches!(req, Req::ExpGet(_)) {
                exp_msg::GET
            } else {
                exp_msg::DELETE
            };
            assert_eq!(
                (subsys, num, msg.flags()),
                (Subsystem::CtnetlinkExp, num_want, ack)
            );
            let k = k.get();
            let got = exp_attrs(g.family);
            let t = got.tuple.expect("a tuple");
            assert!(complete(&t));
            assert_eq!((Some(t), got.zone, got.id), (k.tuple, k.zone, k.id));
            assert_eq!(g.family, t.family().unwrap_or(0));
        }
        Req::ExpDeleteHelper(h) => {
            assert_eq!(
                (subsys, num, msg.flags()),
                (Subsystem::CtnetlinkExp, exp_msg::DELETE, ack)
            );
            let a = nf
                .attrs()
                .find(6)
                .expect("framing")
                .expect("CTA_EXPECT_HELP_NAME");
            assert_eq!(a.c_str(), Ok(h.as_str()));
        }
        Req::ExpFlush(f) | Req::ExpDump(f) => {
            let (num_want, fl, version) = match req {
                Req::ExpFlush(_) => (
                    exp_msg::DELETE,
                    ack,
                    if *f != 0 { NFNETLINK_V1 } else { NFNETLINK_V0 },
                ),
                _ => (exp_msg::GET, dump, NFNETLINK_V0),
            };
            assert_eq!(
                (subsys, num, msg.flags()),
                (Subsystem::CtnetlinkExp, num_want, fl)
            );
            assert_eq!((g.family, g.version), (*f, version));
            assert!(nf.attr_bytes().is_empty());
        }
        Req::ExpStatsCpu => {
            assert_eq!(
                (subsys, num, msg.flags()),
                (Subsystem::CtnetlinkExp, exp_msg::GET_STATS_CPU, dump)
            );
        }
    }
}

fuzz_target!(|input: Input| {
    let mut buf = vec![0xa5u8; 1 << 16];
    let mut w = Writer::new(&mut buf);
    let mut seq = input.seq;
    for req in input.reqs.iter().take(64) {
        let before = w.written().to_vec();
        match build(req, &mut w, seq) {
            Ok(range) => {
                assert_eq!(range.start, before.len());
                assert_eq!(range.end, w.len());
                assert_eq!(&w.written()[..before.len()], &before[..]);
                let bytes = w.written()[range.clone()].to_vec();
                check(req, &bytes, seq);
                // Alone, into exactly its size: the same bytes; one byte short: refused.
                let mut exact = vec![0u8; bytes.len()];
                let mut w2 = Writer::new(&mut exact);
                assert_eq!(build(req, &mut w2, seq), Ok(0..bytes.len()));
                assert_eq!(w2.written(), &bytes[..]);
                let mut short = vec![0u8; bytes.len() - 1];
                let mut w3 = Writer::new(&mut short);
                assert_eq!(build(req, &mut w3, seq), Err(Error::BufferTooSmall));
                assert!(w3.is_empty());
            }
            Err(e) => {
                assert_eq!(
                    w.written(),
                    &before[..],
                    "a failed builder changed the writer ({e})"
                );
                assert!(
                    !matches!(
                        e,
                        Error::TooLong(_) | Error::Truncated(_) | Error::InvalidLength(_)
                    ),
                    "{e:?} for {req:?}"
                );
                // An impossible request is one the checks refuse, and only that.
                if let Error::ImpossibleRequest(_) = e {
                    match req {
                        Req::Flush(f) | Req::Dump(f) | Req::DumpZero(f) => {
                            assert!(f.get().check().is_err())
                        }
                        Req::Get(k) | Req::Delete(k) => assert!(k.get().check().is_err()),
                        _ => panic!("{e:?} for {req:?}"),
                    }
                }
            }
        }
        seq = seq.wrapping_add(1);
    }
    // What was written is a datagram of whole messages.
    assert!(Messages::new(w.written()).all(|m| m.is_ok()));
});
