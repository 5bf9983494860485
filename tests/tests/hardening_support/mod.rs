//! Forged datagrams for the hardening tests: every kind of message a process with
//! CAP_NET_ADMIN can send to another socket's port id, aimed at one request.
#![allow(dead_code)]

use conntrack_codec::nfnl::{ct_msg, msg_type, NfGenMsg, Subsystem};
use conntrack_codec::nl::{flags, msgtype, NlMsgHeader, Writer};
use conntrack_io::{Errno, Socket};

const AF_INET: u8 = 2;

/// One forged datagram and how many messages the socket must count as dropped for it
/// (every whole message, or 1 for a datagram that does not parse).
pub struct Forgery {
    pub what: &'static str,
    pub bytes: Vec<u8>,
    pub counted: u64,
}

pub fn header(buf: &mut [u8], len: u32, kind: u16, flags: u16, seq: u32, pid: u32) {
    NlMsgHeader {
        len,
        kind,
        flags,
        seq,
        pid,
    }
    .emit(buf)
    .unwrap();
}

/// An `NLMSG_ERROR` (ACK when `errno` is 0) for request `seq`, as the kernel writes it.
pub fn error(w: &mut Writer<'_>, seq: u32, pid: u32, errno: i32) {
    w.message(msgtype::ERROR, flags::CAPPED, seq, pid, |w| {
        w.raw(&(-errno).to_ne_bytes())?;
        let mut echoed = [0u8; NlMsgHeader::LEN];
        header(
            &mut echoed,
            60,
            0x100,
            flags::REQUEST | flags::ACK,
            seq,
            pid,
        );
        w.raw(&echoed)
    })
    .unwrap();
}

/// A conntrack entry message with `attrs` after nfgenmsg.
pub fn entry(w: &mut Writer<'_>, seq: u32, pid: u32, fl: u16, attrs: &[u8]) {
    w.message(
        msg_type(Subsystem::Ctnetlink, ct_msg::NEW),
        fl,
        seq,
        pid,
        |w| {
            NfGenMsg {
                family: AF_INET,
                version: 0,
                res_id: 0,
            }
            .emit(w)?;
            w.raw(attrs)
        },
    )
    .unwrap();
}

/// A plausible entry: original tuple 10.0.3.231 (entry 999 of io_support) -> 192.0.2.1.
pub fn fake_entry(w: &mut Writer<'_>, seq: u32, pid: u32, fl: u16) {
    let mut attrs = [0u8; 128];
    let mut a = Writer::new(&mut attrs);
    a.nest(1, |a| {
        a.nest(1, |a| {
            a.attr(1, &[10, 0, 3, 231])?;
            a.attr(2, &[192, 0, 2, 1])
        })?;
        a.nest(2, |a| {
            a.attr_u8(1, 6)?;
            a.attr_u16_be(2, 40000)?;
            a.attr_u16_be(3, 80)
        })
    })
    .unwrap();
    let n = a.len();
    entry(w, seq, pid, fl, &attrs[..n]);
}

pub fn one(f: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let mut w = Writer::new(&mut buf);
    f(&mut w);
    let n = w.len();
    buf.truncate(n);
    buf
}

/// Every forgery, aimed at request `seq` of the socket with port id `target`.
pub fn forgeries(target: u32, seq: u32) -> Vec<Forgery> {
    let mut v = vec![
        Forgery {
            what: "ACK with a wrong sequence number",
            bytes: one(|w| error(w, seq.wrapping_add(7919), target, 0)),
            counted: 1,
        },
        Forgery {
            what: "ACK with the right sequence number",
            bytes: one(|w| error(w, seq, target, 0)),
            counted: 1,
        },
        Forgery {
            what: "ACK claiming nlmsg_pid 0",
            bytes: one(|w| error(w, seq, 0, 0)),
            counted: 1,
        },
        Forgery {
            what: "error ENOENT",
            bytes: one(|w| error(w, seq, target, Errno::ENOENT as i32)),
            counted: 1,
        },
        Forgery {
            what: "DONE",
            bytes: one(|w| {
                w.message(msgtype::DONE, flags::MULTI, seq, target, |w| w.raw(&[0; 4]))
                    .unwrap();
            }),
            counted: 1,
        },
        Forgery {
            what: "DONE with an error",
            bytes: one(|w| {
                let code = -(Errno::EINTR as i32);
                w.message(msgtype::DONE, flags::MULTI, seq, target, |w| {
                    w.raw(&code.to_ne_bytes())
                })
                .unwrap();
            }),
            counted: 1,
        },
        Forgery {
            what: "an entry, then DONE, in one datagram",
            bytes: one(|w| {
                fake_entry(w, seq, target, flags::MULTI);
                w.message(msgtype::DONE, flags::MULTI, seq, target, |w| w.raw(&[0; 4]))
                    .unwrap();
            }),
            counted: 2,
        },
        Forgery {
            what: "a GET reply",
            bytes: one(|w| fake_entry(w, seq, target, 0)),
            counted: 1,
        },
        Forgery {
            what: "garbage attributes",
            bytes: one(|w| {
                entry(
                    w,
                    seq,
                    target,
                    flags::MULTI,
                    &[2, 0, 1, 0, 0xff, 0xff, 0, 0],
                )
            }),
            counted: 1,
        },
        Forgery {
            what: "a stray event (sequence number 0)",
            bytes: one(|w| fake_entry(w, 0, 0, flags::CREATE | flags::EXCL)),
            counted: 1,
        },
        Forgery {
            what: "three bytes",
            bytes: vec![1, 2, 3],
            counted: 1,
        },
    ];
    // nlmsg_len past the end of the datagram, and below the header's size.
    let mut long = one(|w| error(w, seq, target, 0));
    header(&mut long, 4096, msgtype::ERROR, 0, seq, target);
    v.push(Forgery {
        what: "nlmsg_len past the datagram",
        bytes: long,
        counted: 1,
    });
    let mut short = one(|w| error(w, seq, target, 0));
    header(&mut short, 8, msgtype::ERROR, 0, seq, target);
    v.push(Forgery {
        what: "nlmsg_len below the header",
        bytes: short,
        counted: 1,
    });
    // A valid ACK followed by a message whose length runs past the end: the first is
    // counted, then the datagram is dropped as malformed (1 more).
    let mut tail = one(|w| {
        error(w, seq, target, 0);
        error(w, seq, target, 0);
    });
    let second = tail.len() / 2;
    header(&mut tail[second..], 9999, msgtype::ERROR, 0, seq, target);
    v.push(Forgery {
        what: "a good ACK then a bad length",
        bytes: tail,
        counted: 2,
    });
    // Larger than the 64 KiB receive buffer: truncated, and from a user, so only dropped.
    let mut huge = vec![0u8; 70_000];
    header(&mut huge, 70_000, msgtype::ERROR, 0, seq, target);
    v.push(Forgery {
        what: "a datagram larger than the receive buffer",
        bytes: huge,
        counted: 1,
    });
    v
}

/// Sends every forgery for `seq` from `forger` to `target`; returns the count expected.
pub fn forge(forger: &Socket, target: u32, seq: u32) -> u64 {
    let mut counted = 0;
    for f in forgeries(target, seq) {
        forger
            .send_to(target, &f.bytes)
            .unwrap_or_else(|e| panic!("forge {}: {e}", f.what));
        counted += f.counted;
    }
    counted
}
