//! Tests over replies captured from the kernel (see `tests/src/bin/capture-fixtures.rs`).

use crate::nfnl::{ct_msg, NfMsg, Subsystem};
use crate::nl::{flags, Attr, Attrs, Control, Messages, NlMsg};
use crate::testutil::Fixture;
use crate::Error;

fn walk(attrs: Attrs<'_>, depth: usize, count: &mut usize) -> Result<(), Error> {
    for a in attrs {
        let a = a?;
        *count += 1;
        if a.is_nested() && depth < 8 {
            walk(a.nested(), depth + 1, count)?;
        }
    }
    Ok(())
}

fn only_message(f: &Fixture) -> NlMsg<'_> {
    let mut it = Messages::new(f.bytes());
    let m = it.next().unwrap().unwrap();
    assert!(it.next().is_none());
    m
}

#[test]
fn ack_of_a_create() {
    let f = Fixture::load(include_bytes!("../fixtures/ack_create.bin"));
    let m = only_message(&f);
    let Some(Control::Error(e)) = m.control().unwrap() else {
        panic!("expected NLMSG_ERROR")
    };
    assert!(e.is_ack());
    assert_eq!(m.flags() & flags::CAPPED, flags::CAPPED);
    assert_eq!(e.request().seq, 1);
    assert_eq!(e.request().kind, 0x0100);
    assert!(e.request_payload().is_empty());
}

#[test]
fn eexist_echoes_the_whole_request() {
    let f = Fixture::load(include_bytes!("../fixtures/error_eexist.bin"));
    let m = only_message(&f);
    let Some(Control::Error(e)) = m.control().unwrap() else {
        panic!("expected NLMSG_ERROR")
    };
    assert_eq!(e.errno(), 17);
    assert_eq!(e.request().seq, 10);
    assert_eq!(e.request().len as usize, 16 + e.request_payload().len());
    // The echoed request parses as the nfnetlink message we sent.
    let attrs = Attrs::new(&e.request_payload()[4..]);
    let mut n = 0;
    walk(attrs, 0, &mut n).unwrap();
    assert_eq!(n, 22);
    assert!(e.ext_ack().is_empty());
}

#[test]
fn erange_carries_extended_ack() {
    let f = Fixture::load(include_bytes!("../fixtures/error_extack.bin"));
    let m = only_message(&f);
    assert_ne!(m.flags() & flags::ACK_TLVS, 0);
    let Some(Control::Error(e)) = m.control().unwrap() else {
        panic!("expected NLMSG_ERROR")
    };
    // A wrong-sized NLA_U32 fails policy validation with ERANGE.
    assert_eq!(e.errno(), 34);
    let ext = e.ext_ack();
    assert_eq!(ext.msg, Some("Attribute failed policy validation"));
    // The offset points into the echoed request, at the CTA_TIMEOUT (7) we sent too short.
    let off = ext.offset.unwrap() as usize;
    let request = &f.bytes()[20..20 + e.request().len as usize];
    let bad = Attrs::new(&request[off..]).next().unwrap().unwrap();
    assert_eq!(bad.kind(), 7);
    assert_eq!(bad.payload().len(), 2);
}

#[test]
fn dump_of_four_tcp_entries() {
    let f = Fixture::load(include_bytes!("../fixtures/dump_ipv4_tcp.bin"));
    let mut entries = 0;
    let mut done = false;
    let mut sources = [0u8; 4];
    for m in Messages::new(f.bytes()) {
        let m = m.unwrap();
        assert!(!done, "message after NLMSG_DONE");
        assert!(m.is_multi());
        assert_eq!(m.seq(), 12);
        if let Some(c) = m.control().unwrap() {
            assert!(matches!(c, Control::Done(d) if d.errno() == 0));
            done = true;
            continue;
        }
        let nf = NfMsg::new_checked(m).unwrap();
        assert_eq!(nf.subsystem(), Subsystem::Ctnetlink);
        assert_eq!(nf.msg_num(), ct_msg::NEW);
        assert_eq!(nf.nfgen().family, 2);
        let mut n = 0;
        walk(nf.attrs(), 0, &mut n).unwrap();
        assert!(n > 20);
        let orig: Attr<'_> = nf.attrs().find(1).unwrap().unwrap();
        let ip = orig.nested().find(1).unwrap().unwrap();
        let src: [u8; 4] = ip.nested().find(1).unwrap().unwrap().array().unwrap();
        assert_eq!(src[..3], [10, 0, 0]);
        sources[entries] = src[3];
        let mark = nf.attrs().find(8).unwrap().unwrap();
        assert_eq!(mark.u32_be().unwrap(), 0x42);
        entries += 1;
    }
    assert!(done);
    sources.sort_unstable();
    assert_eq!(sources, [2, 3, 4, 5]);
}

#[test]
fn every_truncation_of_a_dump_fails_cleanly() {
    let f = Fixture::load(include_bytes!("../fixtures/dump_ipv4_tcp.bin"));
    let bytes = f.bytes();
    for cut in 0..bytes.len() {
        for m in Messages::new(&bytes[..cut]) {
            let Ok(m) = m else { break };
            if let Ok(nf) = NfMsg::new_checked(m) {
                let mut n = 0;
                let _ = walk(nf.attrs(), 0, &mut n);
            }
            let _ = m.control();
        }
    }
}
