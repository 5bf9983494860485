//! The sync engine fed arbitrary datagrams between real ones, in every mode and with each
//! cache option, as datagrams and as a stream cut anywhere: it must never panic, and what
//! it then sends must be well-formed sync messages.
#![no_main]

use conntrack_codec::sync::Messages;
use conntrack_sync::{Config, Engine, ExpectSync, Mode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&opts, data)) = data.split_first() else {
        return;
    };
    let cfg = Config {
        mode: match opts % 3 {
            0 => Mode::Ftfw,
            1 => Mode::Notrack,
            _ => Mode::Alarm,
        },
        internal_cache: opts & 0x04 == 0,
        external_cache: opts & 0x08 == 0,
        hash_limit: if opts & 0x10 != 0 { 4 } else { 1 << 16 },
        expectations: ExpectSync::All,
        refresh_s: 1,
        cache_timeout_s: 2,
        ..Config::default()
    };
    let stream = opts & 0x20 != 0;
    let mut e = Engine::new(cfg, u32::MAX - 3);
    let mut now = 0;
    let mut pending: Vec<u8> = Vec::new();
    // Split the input into datagrams (or stream reads) at each 0xfe, ticking the clock
    // between them.
    for d in data.split(|&b| b == 0xfe) {
        now += 700;
        if stream {
            pending.extend_from_slice(d);
            let tail = e.on_stream(&pending, now);
            assert!(tail <= pending.len());
            pending.drain(..pending.len() - tail);
        } else {
            e.on_datagram(d, now);
        }
        while let Some(i) = e.poll_inject() {
            let _ = (i.kind, i.attrs.len());
            e.pop_inject();
        }
        if e.take_kernel_bulk() {
            e.send_bulk();
        }
        e.on_tick(now);
        let mut buf = [0u8; 1500];
        while let Some(n) = e.poll_transmit(now, &mut buf) {
            for m in Messages::new(&buf[..n]) {
                m.unwrap().body().unwrap();
            }
        }
    }
    let _ = (e.stats(), e.internal().count(), e.external().count());
    let _ = e.rs_queue().count();
});
