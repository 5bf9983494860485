//! Walks every message and attribute of arbitrary input, recursing into nests, and reads
//! every typed value; nothing may panic or loop.
#![no_main]

use conntrack_codec::nfnl::NfMsg;
use conntrack_codec::nl::{Attrs, Messages};
use libfuzzer_sys::fuzz_target;

fn walk(attrs: Attrs<'_>, depth: u32) {
    for attr in attrs {
        let Ok(attr) = attr else { return };
        let _ = (attr.u8(), attr.u16_be(), attr.u32_be(), attr.u64_be());
        let _ = (attr.u32_ne(), attr.c_str(), attr.array::<16>());
        // Recurse whether or not NLA_F_NESTED is set: a payload may be anything.
        if depth < 16 {
            walk(attr.nested(), depth + 1);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    for msg in Messages::new(data) {
        let Ok(msg) = msg else { return };
        let _ = msg.control();
        if let Ok(nf) = NfMsg::new_checked(msg) {
            walk(nf.attrs(), 0);
        }
        walk(Attrs::new(msg.payload()), 0);
    }
});
