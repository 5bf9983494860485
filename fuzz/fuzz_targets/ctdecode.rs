//! `ctdecode` as a whole: `conntrack_examples::decode::decode` over arbitrary bytes, with
//! the options the binary uses (`-o extended,id`). It must return, never panic; on success
//! it wrote one line per message, and on failure it names an offset inside the input at
//! which the message iterator also fails.
#![no_main]

use conntrack_codec::fmt::Output;
use conntrack_codec::nl::Messages;
use conntrack_examples::decode::{decode, DecodeError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let out = Output {
        extended: true,
        id: true,
        now: 1_700_000_000,
        ..Output::default()
    };
    let mut text = Vec::new();
    let messages = Messages::new(data).take_while(Result::is_ok).count();
    match decode(data, &out, &mut text) {
        Ok(n) => {
            assert_eq!(n, messages);
            assert!(text.iter().filter(|&&b| b == b'\n').count() >= n);
        }
        Err(DecodeError::Malformed { offset, .. }) => {
            assert!(offset < data.len(), "offset {offset} of {}", data.len());
        }
        Err(DecodeError::Write(e)) => panic!("writing to a Vec failed: {e}"),
    }
    assert!(std::str::from_utf8(&text).is_ok());
});
