//! `ctbench`: the project's side of the yardstick `bench/ctbench.c`, with the same modes and
//! the same one-line output (`MODE COUNT SECONDS RATE`), so that both can be run one after
//! the other on the same table and the same capture and their rates divided
//! (`bench/compare` does that).
//!
//! Run it as root inside a throwaway network namespace (`ip netns exec X ctbench ...`):
//!
//! ```text
//! ctbench fill N          create N IPv4 TCP entries with the bulk path (many per datagram)
//! ctbench fill1 N         the same, one acknowledged request per entry (the C way)
//! ctbench rawfill N       lower bound of fill: pre-built requests sent, answers not parsed
//! ctbench dump            dump the table, every entry read into one reused `ConntrackRepr`
//! ctbench dump-view       the same dump, every field read through the zero-copy view
//! ctbench rawdump         the same dump, messages counted, not parsed
//! ctbench capture FILE    the same dump, raw netlink bytes written to FILE
//! ctbench parse FILE K    read every message of FILE into one reused `ConntrackRepr`
//!                         (as the yardstick's `nfct_nlmsg_parse` into one reused object)
//! ctbench parse-view FILE K  every field of every message through the zero-copy view
//! ctbench format FILE K   format every entry of FILE as `conntrack -L` does, K rounds
//! ctbench build N         build N create messages
//! ctbench events N        receive the N new-entry events of a bulk create of N entries
//! ctbench flush           flush the table
//! ```
//!
//! `fill` and `events` read `CTBENCH_WINDOW` (requests in flight), `CTBENCH_TXBUF` (bytes of
//! requests per datagram) and `CTBENCH_RCVBUF` (the kernel's receive queue) when set; `fill`
//! reads `CTBENCH_ACKS=each` to acknowledge every request instead of one per datagram
//! ([`Acks`]); `rawfill` reads `CTBENCH_NOACK=1` to leave `NLM_F_ACK` off.

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::ControlFlow;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use conntrack_codec::ct::{
    request, Conntrack, ConntrackRepr, ProtoInfo, Status, TcpFlags, TcpInfo, TcpState, Tuple,
};
use conntrack_codec::filter::DumpFilter;
use conntrack_codec::fmt::{CtLine, Origin, Output};
use conntrack_codec::nfnl::NfMsg;
use conntrack_codec::nl::{flags, msgtype, Messages, NlMsg, Writer};
use conntrack_io::{Acks, Error, Event, Events, Groups, Socket};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn report(mode: &str, n: u64, secs: f64) {
    let rate = if secs > 0.0 { n as f64 / secs } else { 0.0 };
    println!("{mode} {n} {secs:.6} {rate:.0}");
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Entry `i` of the benchmark table: what the yardstick's `set_tuple` makes.
fn set_entry(e: &mut ConntrackRepr, i: u32) {
    let src = Ipv4Addr::from(0x0a00_0000 | (i >> 16));
    let dst = Ipv4Addr::from(0x0b00_0000 | (i & 0xffff));
    let sport = u16::try_from(1024 + i % 60000).unwrap_or(0);
    let orig = Tuple::tcp(IpAddr::V4(src), IpAddr::V4(dst), sport, 80);
    e.family = 2;
    e.orig = Some(orig);
    e.reply = Some(orig.inverted());
    e.protoinfo = Some(ProtoInfo::Tcp(TcpInfo {
        state: Some(TcpState::Established),
        ..TcpInfo::default()
    }));
    e.timeout = Some(600);
    e.mark = Some(i);
    e.status = Some(Status::SEEN_REPLY | Status::ASSURED);
}

fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// Folds a number into a running digest (one addition: the digest only has to depend on
/// every field, not to be a good hash).
fn mix(h: u64, v: u64) -> u64 {
    h.wrapping_add(v)
}

fn addr_bits(a: Option<IpAddr>) -> u64 {
    match a {
        Some(IpAddr::V4(a)) => u64::from(u32::from(a)),
        Some(IpAddr::V6(a)) => {
            let v = u128::from(a);
            (v as u64) ^ ((v >> 64) as u64)
        }
        None => 0,
    }
}

/// Every field of a tuple, packed into one number.
fn tuple_bits(t: &Tuple) -> u64 {
    let ports = u64::from(t.src_port.unwrap_or(0)) | u64::from(t.dst_port.unwrap_or(0)) << 16;
    let icmp = u64::from(t.icmp_id.unwrap_or(0))
        | u64::from(t.icmp_type.unwrap_or(0)) << 16
        | u64::from(t.icmp_code.unwrap_or(0)) << 24
        | u64::from(t.icmpv6_id.unwrap_or(0)) << 32
        | u64::from(t.icmpv6_type.unwrap_or(0)) << 48
        | u64::from(t.icmpv6_code.unwrap_or(0)) << 56;
    let rest = u64::from(t.proto.unwrap_or(0)) | u64::from(t.zone.unwrap_or(0)) << 8;
    addr_bits(t.src) ^ addr_bits(t.dst).rotate_left(32) ^ (ports | rest << 32) ^ icmp
}

fn opt<T: Into<u64>>(v: Option<T>) -> u64 {
    v.map_or(0, Into::into)
}

/// Extracts every field `nfct_nlmsg_parse` extracts from one entry (tuples, status,
/// timeout, mark, counters, protocol info, zone, id, use, labels, timestamps, secmark,
/// helper, security context, sequence adjustment, synproxy) and folds each into a digest,
/// so that nothing can be optimized away.
fn digest(v: &Conntrack<'_>) -> conntrack_codec::Result<u64> {
    let mut h = u64::from(v.family());
    if let Some(t) = v.orig()? {
        h = mix(h, tuple_bits(&t));
    }
    if let Some(t) = v.reply()? {
        h = mix(h, tuple_bits(&t));
    }
    if let Some(t) = v.master()? {
        h = mix(h, tuple_bits(&t));
    }
    h = mix(h, opt(v.status()?.map(|s| s.0)));
    h = mix(h, opt(v.timeout()?) << 32 | opt(v.mark()?));
    h = mix(h, opt(v.use_count()?) << 32 | opt(v.id()?));
    h = mix(h, opt(v.zone()?) << 32 | opt(v.secmark()?));
    if let Some(c) = v.counters_orig()? {
        h = mix(h, opt(c.packets) ^ opt(c.bytes).rotate_left(32));
    }
    if let Some(c) = v.counters_reply()? {
        h = mix(h, opt(c.packets) ^ opt(c.bytes).rotate_left(32));
    }
    match v.protoinfo()? {
        Some(ProtoInfo::Tcp(t)) => {
            let flags =
                |f: Option<TcpFlags>| f.map_or(0, |f| u64::from(f.flags) << 8 | u64::from(f.mask));
            h = mix(
                h,
                opt(t.state.map(u8::from))
                    | opt(t.wscale_orig) << 8
                    | opt(t.wscale_reply) << 16
                    | flags(t.flags_orig) << 24
                    | flags(t.flags_reply) << 40,
            );
        }
        Some(ProtoInfo::Sctp(s)) => {
            h = mix(
                h,
                opt(s.state.map(u8::from)) ^ opt(s.vtag_orig) << 8 ^ opt(s.vtag_reply) << 32,
            );
        }
        Some(ProtoInfo::Dccp(d)) => {
            h = mix(
                h,
                opt(d.state.map(u8::from)) ^ opt(d.role.map(u8::from)) << 8 ^ opt(d.handshake_seq),
            );
        }
        None => {}
    }
    if let Some(t) = v.timestamp()? {
        h = mix(h, opt(t.start) ^ opt(t.stop));
    }
    if let Some(l) = v.labels()? {
        h = mix(h, u64::from(l.0[0] ^ l.0[1] ^ l.0[2] ^ l.0[3]));
    }
    h = mix(h, v.helper_name()?.map_or(0, |n| n.len() as u64));
    h = mix(h, v.secctx()?.map_or(0, |n| n.len() as u64));
    for s in [v.seq_adj_orig()?, v.seq_adj_reply()?]
        .into_iter()
        .flatten()
    {
        h = mix(
            h,
            opt(s.correction_pos) ^ opt(s.offset_before) << 16 ^ opt(s.offset_after) << 32,
        );
    }
    if let Some(s) = v.synproxy()? {
        h = mix(h, opt(s.isn) ^ opt(s.its) << 16 ^ opt(s.tsoff) << 32);
    }
    Ok(h)
}

/// A conntrack data message (not `DONE`, `ERROR` or another control message).
fn is_data(m: &NlMsg<'_>) -> bool {
    m.kind() >= msgtype::MIN_TYPE
}

fn read_capture(path: &str) -> Res<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("{path}: {e}").into())
}

fn open(txbuf: usize) -> Res<Socket> {
    let rx = env_usize("CTBENCH_RXBUF", conntrack_io::Builder::DEFAULT_RECV_BUFFER);
    Ok(Socket::builder()
        .send_buffer(txbuf)
        .recv_buffer(rx)
        .open()?)
}

/// Sizes the kernel's queues for bulk work: the receive queue for `window` answers, and the
/// send queue for one datagram of `txbuf` bytes.
fn size_queues(sock: &Socket, window: usize, txbuf: usize) -> Res<()> {
    let rcv = env_usize("CTBENCH_RCVBUF", (window * 1024).max(1 << 20));
    sock.set_rcvbuf(rcv)?;
    let snd = txbuf * 2 + 4096;
    nix::sys::socket::setsockopt(&sock.as_fd(), nix::sys::socket::sockopt::SndBufForce, &snd)?;
    Ok(())
}

/// `CTBENCH_ACKS=each` acknowledges every request; the default, one per datagram.
fn acks() -> Acks {
    match std::env::var("CTBENCH_ACKS").as_deref() {
        Ok("each") => Acks::EachRequest,
        _ => Acks::PerDatagram,
    }
}

fn fill(n: usize) -> Res<()> {
    let window = env_usize("CTBENCH_WINDOW", 1024);
    let txbuf = env_usize("CTBENCH_TXBUF", 64 * 1024);
    let mut sock = open(txbuf)?;
    size_queues(&sock, window, txbuf)?;
    let mut entry = ConntrackRepr::default();
    let mut failed = 0u64;
    let mut first_error = None;
    let t0 = Instant::now();
    let acks = acks();
    let summary = sock.bulk_with_acks(
        n,
        window,
        acks,
        |i, w, seq| {
            set_entry(&mut entry, index(i));
            request::create(w, seq, &entry).map(drop)
        },
        |_, r| match r {
            Ok(()) => {}
            Err(Error::Kernel(k)) if k.errno == conntrack_io::Errno::EEXIST => {}
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        },
    )?;
    let secs = t0.elapsed().as_secs_f64();
    report("fill", summary.succeeded as u64, secs);
    eprintln!(
        "fill: {} datagrams, window {window}, {txbuf} bytes of requests per datagram, {acks:?}",
        summary.datagrams
    );
    if let Some(e) = first_error {
        return Err(format!("{failed} creates failed, the first with: {e}").into());
    }
    Ok(())
}

fn fill1(n: usize) -> Res<()> {
    let mut sock = Socket::open()?;
    let mut entry = ConntrackRepr::default();
    let mut ok = 0u64;
    let t0 = Instant::now();
    for i in 0..n {
        set_entry(&mut entry, index(i));
        match sock.create(&entry) {
            Ok(()) => ok += 1,
            Err(Error::Kernel(k)) if k.errno == conntrack_io::Errno::EEXIST => {}
            Err(e) => return Err(e.into()),
        }
    }
    report("fill1", ok, t0.elapsed().as_secs_f64());
    Ok(())
}

/// The lower bound of `fill`: every request is built before the clock starts, datagrams
/// go out back to back with `sendmsg`, and the answers are only drained (counted by their
/// size, never parsed). What is left is the kernel's own cost per create.
fn rawfill(n: usize) -> Res<()> {
    let window = env_usize("CTBENCH_WINDOW", 1024);
    let txbuf = env_usize("CTBENCH_TXBUF", 64 * 1024);
    let ack = std::env::var("CTBENCH_NOACK").map_or(true, |v| v != "1");
    let sock = open(txbuf)?;
    size_queues(&sock, window, txbuf)?;
    sock.set_cap_ack(true)?;
    sock.set_nonblocking(true)?;
    // Build every datagram first.
    let mut entry = ConntrackRepr::default();
    let mut datagrams: Vec<(Vec<u8>, usize)> = Vec::new();
    let mut buf = vec![0u8; txbuf];
    let mut used = 0;
    let mut in_buf = 0;
    for i in 0..n {
        set_entry(&mut entry, index(i));
        loop {
            let mut w = Writer::new(&mut buf[used..]);
            match request::create(&mut w, index(i), &entry) {
                Ok(r) => {
                    if !ack {
                        let fl = flags::REQUEST | flags::CREATE | flags::EXCL;
                        buf[used + r.start + 6..used + r.start + 8]
                            .copy_from_slice(&fl.to_ne_bytes());
                    }
                    used += r.len();
                    in_buf += 1;
                    break;
                }
                Err(_) if used > 0 => {
                    datagrams.push((buf[..used].to_vec(), in_buf));
                    used = 0;
                    in_buf = 0;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    if used > 0 {
        datagrams.push((buf[..used].to_vec(), in_buf));
    }
    let mut rx = vec![0u8; 64 * 1024];
    let mut answers = 0usize;
    let mut errors = 0usize;
    let t0 = Instant::now();
    for (d, _) in &datagrams {
        sock.send(d)?;
        // Drain whatever is queued, without parsing beyond the message type.
        loop {
            match sock.recv(&mut rx) {
                Ok(d) => {
                    for m in Messages::new(&rx[..d.len]).flatten() {
                        answers += 1;
                        if m.payload().get(..4).is_some_and(|c| c != [0, 0, 0, 0]) {
                            errors += 1;
                        }
                    }
                }
                Err(Error::WouldBlock) => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    report("rawfill", (n - errors) as u64, secs);
    eprintln!(
        "rawfill: {} datagrams, {answers} answers, {errors} errors, ack {ack}",
        datagrams.len()
    );
    Ok(())
}

/// The dump, every field of every entry read through the zero-copy view's getters.
fn dump_view() -> Res<()> {
    let mut sock = open(64 * 1024)?;
    let mut n = 0u64;
    let mut h = 0u64;
    let mut bad = None;
    let t0 = Instant::now();
    let summary = sock.list(&DumpFilter::default(), |v| match digest(&v) {
        Ok(d) => {
            h = h.wrapping_add(d);
            n += 1;
            ControlFlow::Continue(())
        }
        Err(e) => {
            bad = Some(e);
            ControlFlow::Break(())
        }
    })?;
    let secs = t0.elapsed().as_secs_f64();
    if let Some(e) = bad {
        return Err(e.into());
    }
    report("dump-view", n, secs);
    if summary.interrupted {
        eprintln!("dump: interrupted (the table changed during the walk)");
    }
    black_box(h);
    Ok(())
}

/// The dump, every entry read into one reused [`ConntrackRepr`] straight from the message:
/// what the C library does for each entry of its dump (`nfct_nlmsg_parse` into a
/// `struct nf_conntrack`).
fn dump() -> Res<()> {
    let mut sock = open(64 * 1024)?;
    let mut n = 0u64;
    let mut h = 0u64;
    let mut bad = None;
    let mut e = ConntrackRepr::default();
    let t0 = Instant::now();
    let summary = sock.dump(
        |w, seq| request::dump(w, seq, &DumpFilter::default()).map(drop),
        |nf| match e.parse_into(&nf) {
            Ok(()) => {
                black_box(&e);
                h = h.wrapping_add(u64::from(e.mark.unwrap_or(0)));
                h = h.wrapping_add(e.orig.map_or(0, |t| u64::from(t.src_port.unwrap_or(0))));
                n += 1;
                ControlFlow::Continue(())
            }
            Err(e) => {
                bad = Some(e);
                ControlFlow::Break(())
            }
        },
    )?;
    let secs = t0.elapsed().as_secs_f64();
    if let Some(e) = bad {
        return Err(e.into());
    }
    report("dump", n, secs);
    if summary.interrupted {
        eprintln!("dump: interrupted (the table changed during the walk)");
    }
    black_box(h);
    Ok(())
}

/// The dump with nothing but `recvmsg` and the message walk: the kernel's limit.
fn rawdump(capture: Option<&str>) -> Res<()> {
    let sock = open(64 * 1024)?;
    let mut file = match capture {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
        None => None,
    };
    let mut req = [0u8; 64];
    let len = {
        let mut w = Writer::new(&mut req);
        request::dump(&mut w, 1, &DumpFilter::default())?;
        w.len()
    };
    // The yardstick's buffer: libmnl's MNL_SOCKET_DUMP_SIZE.
    let mut buf = vec![0u8; 32 * 1024];
    let mut n = 0u64;
    let t0 = Instant::now();
    sock.send(&req[..len])?;
    'outer: loop {
        let d = sock.recv(&mut buf)?;
        if let Some(f) = file.as_mut() {
            f.write_all(&buf[..d.len])?;
        }
        for m in Messages::new(&buf[..d.len]) {
            let m = m?;
            if m.kind() == msgtype::DONE {
                break 'outer;
            }
            if m.kind() == msgtype::ERROR {
                return Err("dump failed".into());
            }
            n += 1;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    if let Some(mut f) = file {
        f.flush()?;
    }
    report(
        if capture.is_some() {
            "capture"
        } else {
            "rawdump"
        },
        n,
        secs,
    );
    Ok(())
}

/// Every field of every message of the capture read through the zero-copy view's getters.
fn parse_view(path: &str, rounds: usize) -> Res<()> {
    let data = read_capture(path)?;
    let mut n = 0u64;
    let mut h = 0u64;
    let t0 = Instant::now();
    for _ in 0..rounds {
        for m in Messages::new(black_box(&data)) {
            let m = m?;
            if !is_data(&m) {
                continue;
            }
            h = h.wrapping_add(digest(&Conntrack::parse(m)?)?);
            n += 1;
        }
    }
    report("parse-view", n, t0.elapsed().as_secs_f64());
    black_box(h);
    Ok(())
}

/// Every message of the capture read into one reused [`ConntrackRepr`] (every attribute
/// decoded into plain data): the analogue of the yardstick's `nfct_nlmsg_parse` into one
/// reused `struct nf_conntrack`.
fn parse(path: &str, rounds: usize) -> Res<()> {
    let data = read_capture(path)?;
    let mut n = 0u64;
    let mut h = 0u64;
    let mut e = ConntrackRepr::default();
    let t0 = Instant::now();
    for _ in 0..rounds {
        for m in Messages::new(black_box(&data)) {
            let m = m?;
            if !is_data(&m) {
                continue;
            }
            e.parse_into(&NfMsg::new_checked(m)?)?;
            black_box(&e);
            h = h.wrapping_add(u64::from(e.mark.unwrap_or(0)));
            h = h.wrapping_add(e.orig.map_or(0, |t| u64::from(t.src_port.unwrap_or(0))));
            n += 1;
        }
    }
    report("parse", n, t0.elapsed().as_secs_f64());
    black_box(h);
    Ok(())
}

/// A `fmt::Write` that throws the text away, counting its bytes.
struct Sink(u64);

impl std::fmt::Write for Sink {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += s.len() as u64;
        black_box(s);
        Ok(())
    }
}

fn format(path: &str, rounds: usize) -> Res<()> {
    let data = read_capture(path)?;
    let out = Output {
        now: conntrack_io::clock::now_secs(),
        ..Output::default()
    };
    let mut sink = Sink(0);
    let mut n = 0u64;
    let mut entry = ConntrackRepr::default();
    let t0 = Instant::now();
    for _ in 0..rounds {
        for m in Messages::new(black_box(&data)) {
            let m = m?;
            if !is_data(&m) {
                continue;
            }
            entry.parse_into(&NfMsg::new_checked(m)?)?;
            writeln!(sink, "{}", CtLine::new(&entry, Origin::Dump, &out, &()))?;
            n += 1;
        }
    }
    report("format", n, t0.elapsed().as_secs_f64());
    eprintln!("format: {} bytes", sink.0);
    Ok(())
}

fn build(n: usize) -> Res<()> {
    let mut buf = vec![0u8; 8192];
    let mut entry = ConntrackRepr::default();
    let mut bytes = 0usize;
    let t0 = Instant::now();
    for i in 0..n {
        set_entry(&mut entry, index(i));
        let mut w = Writer::new(black_box(&mut buf));
        let r = request::create(&mut w, index(i), &entry)?;
        bytes += r.len();
    }
    report("build", n as u64, t0.elapsed().as_secs_f64());
    eprintln!("built {bytes} bytes");
    Ok(())
}

/// Receives the new-entry events of a bulk create of `n` entries on an event stream
/// ([`Events`]) in a thread, extracting every field of each; reports how many arrived and
/// how many the kernel dropped (the stream's loss reports, from the drop counter).
fn events(n: usize) -> Res<()> {
    let window = env_usize("CTBENCH_WINDOW", 1024);
    let txbuf = env_usize("CTBENCH_TXBUF", 64 * 1024);
    let mut stream = Events::open(Groups::CONNTRACK_NEW)?;
    stream.set_rcvbuf(env_usize("CTBENCH_EVBUF", 32 << 20))?;
    stream.set_nonblocking(true)?;
    // The drop counter is read when the queue runs empty and on an overrun report.
    stream.set_drop_check(0);
    let mut sock = open(txbuf)?;
    size_queues(&sock, window, txbuf)?;
    let done = AtomicBool::new(false);
    let t0 = Instant::now();
    let (received, lost, last, h) = std::thread::scope(|s| {
        let receiver = s.spawn(|| receive_events(&mut stream, n, &done));
        let mut entry = ConntrackRepr::default();
        let created = sock.bulk_with_acks(
            n,
            window,
            acks(),
            |i, w, seq| {
                set_entry(&mut entry, index(i));
                request::create(w, seq, &entry).map(drop)
            },
            |_, _| {},
        );
        done.store(true, Ordering::Release);
        let got = receiver.join().unwrap_or(Ok((0, 0, t0, 0)));
        created?;
        got
    })?;
    let secs = last.duration_since(t0).as_secs_f64();
    report("events", received, secs);
    eprintln!("events: {n} created, {received} received, {lost} lost");
    black_box(h);
    Ok(())
}

/// The receiving side of [`events`]: returns events received, events lost, the time of the
/// last event, and a digest.
fn receive_events(
    stream: &mut Events,
    n: usize,
    done: &AtomicBool,
) -> Res<(u64, u64, Instant, u64)> {
    let (mut received, mut lost, mut h) = (0u64, 0u64, 0u64);
    let mut last = Instant::now();
    let mut idle_since: Option<Instant> = None;
    while received + lost < n as u64 {
        match stream.try_next()? {
            Some(Event::Conntrack(e)) => {
                idle_since = None;
                h = h.wrapping_add(digest(&e.entry)?);
                received += 1;
                last = Instant::now();
            }
            Some(Event::Lost(l)) => lost += l.count,
            Some(_) => {}
            None => {
                // Once the creates are done, a quiet queue means the rest was lost.
                if done.load(Ordering::Acquire) {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_millis(200) {
                        break;
                    }
                }
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }
    Ok((received, lost, last, h))
}

fn flush() -> Res<()> {
    let mut sock = Socket::open()?;
    let t0 = Instant::now();
    sock.flush(&DumpFilter::default())?;
    report("flush", 0, t0.elapsed().as_secs_f64());
    Ok(())
}

const USAGE: &str = "usage: ctbench fill N | fill1 N | rawfill N | dump | dump-view | rawdump \
                     | capture FILE \
                     | parse FILE K | parse-view FILE K | format FILE K | build N | events N | flush";

fn run(args: &[String]) -> Res<()> {
    let num = |i: usize| -> Res<usize> {
        let s: &String = args.get(i).ok_or(USAGE)?;
        s.parse().map_err(|_| format!("not a number: {s}").into())
    };
    let arg = |i: usize| -> Res<&str> { Ok(args.get(i).ok_or(USAGE)?.as_str()) };
    match args.get(1).map(String::as_str) {
        Some("fill") => fill(num(2)?),
        Some("fill1") => fill1(num(2)?),
        Some("rawfill") => rawfill(num(2)?),
        Some("dump") => dump(),
        Some("dump-view") => dump_view(),
        Some("rawdump") => rawdump(None),
        Some("capture") => rawdump(Some(arg(2)?)),
        Some("parse") => parse(arg(2)?, num(3)?),
        Some("parse-view") => parse_view(arg(2)?, num(3)?),
        Some("format") => format(arg(2)?, num(3)?),
        Some("build") => build(num(2)?),
        Some("events") => events(num(2)?),
        Some("flush") => flush(),
        _ => Err(USAGE.into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ctbench: {e}");
            ExitCode::from(1)
        }
    }
}
