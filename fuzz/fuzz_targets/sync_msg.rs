//! conntrackd's sync messages over arbitrary bytes: the datagram walk, the classification of
//! each message, the conntrack and expectation views and their conversion to the model (the
//! conntrack view's `check` agreeing with the conversion); and
//! for every entry the codec accepts, model -> emit -> parse gives the same model back.
#![no_main]

use conntrack_codec::sync::{emit_ct, emit_exp, Body, Messages, SyncCt, SyncExp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for m in Messages::new(data) {
        let Ok(m) = m else { break };
        let _ = (m.is_hello(), m.is_hello_back(), m.seq());
        let Ok(Body::Data { kind, attrs }) = m.body() else {
            continue;
        };
        let mut out = [0u8; 2048];
        if kind.is_expect() {
            let Ok(v) = SyncExp::new_checked(attrs) else {
                continue;
            };
            let _ = (v.master(), v.expected());
            let Ok(e) = v.to_repr() else { continue };
            if let Ok(n) = emit_exp(&mut out, kind, 0, 1, &e) {
                let again = Messages::new(&out[..n]).next().unwrap().unwrap();
                let Body::Data { attrs, .. } = again.body().unwrap() else {
                    panic!()
                };
                assert_eq!(SyncExp::new_checked(attrs).unwrap().to_repr().unwrap(), e);
            }
        } else {
            let Ok(v) = SyncCt::new_checked(attrs) else {
                continue;
            };
            let _ = (v.family(), v.orig(), v.zone(), v.master());
            // The cheap check takes exactly what the full read takes.
            assert_eq!(v.check().is_ok(), v.to_repr().is_ok());
            let Ok(r) = v.to_repr() else { continue };
            if let Ok(n) = emit_ct(&mut out, kind, 0, 1, &r) {
                let again = Messages::new(&out[..n]).next().unwrap().unwrap();
                let Body::Data { attrs, .. } = again.body().unwrap() else {
                    panic!()
                };
                assert_eq!(SyncCt::new_checked(attrs).unwrap().to_repr().unwrap(), r);
            }
        }
    }
});
