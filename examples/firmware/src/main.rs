//! The codec inside a bare-metal image (Cortex-M4F, `thumbv7em-none-eabihf`).
//!
//! The program builds a conntrack create request into a static buffer, reads it back, and
//! walks a dump reply captured from the kernel, decoding every entry. What it found is kept
//! in the statics below, where a debugger (or a test harness reading RAM) can see it; the
//! statics also keep the optimizer from dropping the work.
//!
//! Build (from this folder): `cargo build --release` (the target is set in `.cargo/config.toml`).

#![no_std]
#![no_main]
#![deny(unsafe_code)]

use core::hint::black_box;
use core::net::{IpAddr, Ipv4Addr};
use core::sync::atomic::{AtomicU32, Ordering};

use conntrack_codec::ct::{
    request, Conntrack, ConntrackRepr, ProtoInfo, Status, TcpInfo, TcpState, Tuple,
};
use conntrack_codec::nl::{Control, Messages, NlMsg, Writer};
use cortex_m_rt::entry;
use panic_halt as _;

/// A dump reply of 4 IPv4 TCP entries and its `NLMSG_DONE`, captured from the kernel
/// (`codec/fixtures/dump_ipv4_tcp.bin`).
///
/// The capture was made on a little-endian machine, and netlink and attribute headers travel
/// in the host's byte order. `thumbv7em` is little-endian too, so these are exactly the
/// bytes this target's kernel would send; a big-endian target would have to swap the header
/// fields first (as the codec's fixture tests do).
static DUMP: &[u8] = include_bytes!("../../../codec/fixtures/dump_ipv4_tcp.bin");

/// Length of the create request written into the static buffer (0 if it failed).
static REQUEST_LEN: AtomicU32 = AtomicU32::new(0);
/// 1 if the request, read back through the view, has the tuples and timeout it was given.
static REQUEST_OK: AtomicU32 = AtomicU32::new(0);
/// Conntrack entries decoded from the dump.
static ENTRIES: AtomicU32 = AtomicU32::new(0);
/// 1 once the dump's `NLMSG_DONE` was seen.
static DONE: AtomicU32 = AtomicU32::new(0);
/// Messages the codec refused (expected 0).
static ERRORS: AtomicU32 = AtomicU32::new(0);
/// A checksum over the decoded entries: ports, mark, timeout, status, id, TCP state.
static CHECKSUM: AtomicU32 = AtomicU32::new(0);

#[entry]
fn main() -> ! {
    // cortex-m-rt turns a `static mut` declared first in the entry function into a
    // `&'static mut` that only this function sees: a static buffer without `unsafe`.
    static mut REQUEST: [u8; 512] = [0; 512];

    let len = build_create(REQUEST);
    REQUEST_LEN.store(len, Ordering::Relaxed);

    // Hide the capture's contents from the optimizer: the walk must run on the device.
    walk_dump(black_box(DUMP));

    #[cfg(feature = "semihosting")]
    report();

    loop {
        core::hint::spin_loop();
    }
}

/// Writes a create request (`CT_NEW`, `CREATE|EXCL|ACK`) for one TCP entry into `buf`,
/// checks it by reading it back, and returns its length.
#[inline(never)] // a symbol of its own, for the size breakdown
fn build_create(buf: &mut [u8]) -> u32 {
    let orig = Tuple::tcp(
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
        40000,
        443,
    );
    let entry = ConntrackRepr {
        family: 2,
        orig: Some(orig),
        reply: Some(orig.inverted()),
        status: Some(Status::SEEN_REPLY | Status::ASSURED),
        protoinfo: Some(ProtoInfo::Tcp(TcpInfo {
            state: Some(TcpState::Established),
            ..TcpInfo::default()
        })),
        timeout: Some(120),
        mark: Some(black_box(0x42)),
        ..ConntrackRepr::default()
    };
    let mut w = Writer::new(buf);
    if request::create(&mut w, 1, &entry).is_err() {
        return 0;
    }
    let bytes = w.into_written();
    let ok = NlMsg::new_checked(bytes)
        .and_then(Conntrack::parse)
        .and_then(|v| Ok(v.orig()? == entry.orig && v.timeout()? == entry.timeout))
        .unwrap_or(false);
    REQUEST_OK.store(u32::from(ok), Ordering::Relaxed);
    u32::try_from(black_box(bytes).len()).unwrap_or(u32::MAX)
}

/// Decodes every message of a dump datagram, folding each entry into the statics.
#[inline(never)] // a symbol of its own, for the size breakdown
fn walk_dump(datagram: &[u8]) {
    let (mut entries, mut errors, mut sum) = (0u32, 0u32, 0u32);
    for msg in Messages::new(datagram) {
        let Ok(msg) = msg else {
            errors = errors.wrapping_add(1);
            break;
        };
        match Control::parse(&msg) {
            Ok(None) => {}
            Ok(Some(Control::Done(_))) => DONE.store(1, Ordering::Relaxed),
            Ok(Some(_)) | Err(_) => errors = errors.wrapping_add(1),
        }
        if msg.is_control() {
            continue;
        }
        match ConntrackRepr::parse_msg(msg) {
            Ok(ct) => {
                entries = entries.wrapping_add(1);
                sum = fold(sum, &ct);
            }
            Err(_) => errors = errors.wrapping_add(1),
        }
    }
    ENTRIES.store(entries, Ordering::Relaxed);
    ERRORS.store(errors, Ordering::Relaxed);
    CHECKSUM.store(sum, Ordering::Relaxed);
}

/// A cheap, order-dependent checksum of the fields a firewall would look at.
fn fold(sum: u32, ct: &ConntrackRepr) -> u32 {
    let orig = ct.orig.unwrap_or_default();
    let state = match ct.protoinfo {
        Some(ProtoInfo::Tcp(TcpInfo { state: Some(s), .. })) => u32::from(u8::from(s)),
        _ => 0xff,
    };
    [
        u32::from(orig.src_port.unwrap_or(0)),
        u32::from(orig.dst_port.unwrap_or(0)),
        ct.mark.unwrap_or(0),
        ct.timeout.unwrap_or(0),
        ct.status.map_or(0, |s| s.0),
        ct.id.unwrap_or(0),
        state,
    ]
    .into_iter()
    .fold(sum, |acc, v| acc.rotate_left(5) ^ v)
}

/// Prints what the program found and exits the emulator: with success if the request read
/// back as written and the dump gave its 4 entries and its `NLMSG_DONE` without an error.
#[cfg(feature = "semihosting")]
fn report() {
    use cortex_m_semihosting::{debug, hprintln};

    let load = |s: &AtomicU32| s.load(Ordering::Relaxed);
    let (len, ok) = (load(&REQUEST_LEN), load(&REQUEST_OK) == 1);
    let (entries, done, errors) = (load(&ENTRIES), load(&DONE) == 1, load(&ERRORS));
    hprintln!(
        "create request: {} bytes, reads back as written: {}",
        len,
        ok
    );
    hprintln!(
        "dump: {} entries, done: {}, errors: {}, checksum {:#010x}",
        entries,
        done,
        errors,
        load(&CHECKSUM)
    );
    let pass = len > 0 && ok && entries == 4 && done && errors == 0;
    debug::exit(if pass {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
}
