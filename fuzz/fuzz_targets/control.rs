//! Netlink control messages over arbitrary bytes: `Control`, `ErrorMsg`, `DoneMsg` and
//! `ExtAck`, with the invariants their documentation states.
//!
//! The input is read as received netlink bytes, as the payload of a well-framed
//! `NLMSG_ERROR` and `NLMSG_DONE` (flags from the input: capped, with extended ack), and as
//! extended-ack attributes alone.
#![no_main]

use conntrack_codec::nl::NlMsgHeader;
use conntrack_codec::nl::{flags, msgtype, Control, DoneMsg, ErrorMsg, ExtAck, Messages, NlMsg};
use libfuzzer_sys::fuzz_target;

fn check(msg: NlMsg<'_>) {
    let bytes = msg.bytes();
    let within = |s: &[u8]| {
        let (start, end) = (
            bytes.as_ptr() as usize,
            bytes.as_ptr() as usize + bytes.len(),
        );
        let p = s.as_ptr() as usize;
        s.is_empty() || (p >= start && p + s.len() <= end)
    };
    let ext_within = |e: &ExtAck<'_>| {
        assert!(e.msg.is_none_or(|m| within(m.as_bytes())));
        assert!(e.cookie.is_none_or(within));
    };
    let control = msg.control();
    match (msg.kind(), &control) {
        (k, Ok(None)) => assert!(k >= msgtype::MIN_TYPE),
        (msgtype::NOOP, c) => assert_eq!(c, &Ok(Some(Control::Noop))),
        (msgtype::OVERRUN, c) => assert_eq!(c, &Ok(Some(Control::Overrun))),
        (msgtype::ERROR, c) => {
            assert_eq!(c, &ErrorMsg::parse(&msg).map(|e| Some(Control::Error(e))))
        }
        (msgtype::DONE, c) => assert_eq!(c, &DoneMsg::parse(&msg).map(|d| Some(Control::Done(d)))),
        (k, c) => {
            assert!(k < msgtype::MIN_TYPE);
            assert_eq!(c, &Ok(Some(Control::Unknown(k))));
        }
    }
    match ErrorMsg::parse(&msg) {
        Ok(e) => {
            assert_eq!(msg.kind(), msgtype::ERROR);
            assert_eq!(e.is_ack(), e.code() == 0);
            assert_eq!(e.errno(), e.code().saturating_neg());
            assert!(within(e.request_payload()));
            if msg.flags() & flags::CAPPED != 0 {
                assert!(e.request_payload().is_empty());
            } else {
                assert_eq!(
                    e.request_payload().len() + NlMsgHeader::LEN,
                    e.request().len as usize
                );
            }
            if msg.flags() & flags::ACK_TLVS == 0 {
                assert!(e.ext_ack().is_empty());
            }
            ext_within(e.ext_ack());
        }
        Err(_) => assert!(msg.kind() != msgtype::ERROR || control.is_err()),
    }
    match DoneMsg::parse(&msg) {
        Ok(d) => {
            assert_eq!(msg.kind(), msgtype::DONE);
            assert_eq!(d.errno(), d.code().saturating_neg());
            if msg.payload().is_empty() {
                assert_eq!(d.code(), 0);
            }
            ext_within(d.ext_ack());
        }
        Err(_) => assert!(msg.kind() != msgtype::DONE || control.is_err()),
    }
}

fuzz_target!(|data: &[u8]| {
    for msg in Messages::new(data) {
        let Ok(msg) = msg else { break };
        check(msg);
    }
    if let Ok(e) = ExtAck::parse(data) {
        let _ = e.is_empty();
    }
    let fl = match data.first() {
        Some(b) => u16::from(*b & 0x3) << 8,
        None => 0,
    };
    for kind in [msgtype::ERROR, msgtype::DONE] {
        let mut bytes = vec![0u8; NlMsgHeader::LEN];
        NlMsgHeader {
            len: u32::try_from(NlMsgHeader::LEN + data.len()).unwrap_or(u32::MAX),
            kind,
            flags: fl,
            seq: 1,
            pid: 0,
        }
        .emit(&mut bytes)
        .expect("16 bytes");
        bytes.extend_from_slice(data);
        check(NlMsg::new_checked(&bytes).expect("well framed"));
    }
});
