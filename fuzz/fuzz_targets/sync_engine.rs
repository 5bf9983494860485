//! The sync engine fed arbitrary datagrams between real ones: it must never panic, and what
//! it then sends must be well-formed sync messages.
#![no_main]

use conntrack_codec::sync::Messages;
use conntrack_sync::{Config, Engine};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut e = Engine::new(Config::default(), u32::MAX - 3);
    let mut now = 0;
    // Split the input into datagrams at each 0xff 0x00 pair, ticking the clock between them.
    for d in data.split(|&b| b == 0xfe) {
        now += 700;
        e.on_datagram(d, now);
        e.on_tick(now);
        let mut buf = [0u8; 1500];
        while let Some(n) = e.poll_transmit(now, &mut buf) {
            for m in Messages::new(&buf[..n]) {
                m.unwrap().body().unwrap();
            }
        }
    }
    let _ = (e.stats(), e.internal().count(), e.external().count());
});
