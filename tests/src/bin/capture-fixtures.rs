//! Captures real ctnetlink replies from this machine's kernel as fixture files.
//!
//! Usage: `capture-fixtures OUTDIR`
//!
//! It creates its own throwaway network namespace (never the host's table), makes entries
//! there with CT_NEW requests, and writes each scenario's received datagrams, concatenated
//! exactly as received, to `OUTDIR/<scenario>.bin`.

use std::fs;
use std::path::{Path, PathBuf};

use conntrack_codec::nfnl::{ct_msg, msg_type, NfGenMsg, Subsystem};
use conntrack_codec::nl::{flags, Control, Messages, Writer};
use conntrack_io::Socket;
use conntrack_tests::Netns;

const AF_INET: u8 = 2;
const IPPROTO_TCP: u8 = 6;

/// Sends `req` and collects the reply datagrams until an ACK/error or the end of a dump.
fn exchange(sock: &Socket, req: &[u8]) -> Vec<u8> {
    sock.send(req).expect("send");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let d = sock.recv(&mut buf).expect("recv");
        assert!(!d.truncated, "datagram truncated");
        let bytes = &buf[..d.len];
        out.extend_from_slice(bytes);
        let mut finished = false;
        for m in Messages::new(bytes) {
            let m = m.expect("kernel sent a malformed message");
            if let Ok(Some(Control::Error(_) | Control::Done(_))) = m.control() {
                finished = true;
            }
            if !m.is_multi() && !m.is_control() {
                finished = true;
            }
        }
        if finished {
            return out;
        }
    }
}

/// A CT_NEW request for an IPv4 TCP entry, with an optional deliberately bad timeout size.
fn create_tcp(buf: &mut [u8], seq: u32, i: u8, bad_timeout: bool) -> usize {
    let mut w = Writer::new(buf);
    let kind = msg_type(Subsystem::Ctnetlink, ct_msg::NEW);
    let fl = flags::REQUEST | flags::ACK | flags::CREATE | flags::EXCL;
    w.message(kind, fl, seq, 0, |w| {
        NfGenMsg {
            family: AF_INET,
            version: 0,
            res_id: 0,
        }
        .emit(w)?;
        for (tuple, src, dst, sport, dport) in [
            (1u16, [10, 0, 0, i], [10, 0, 1, 1], 40000u16, 80u16),
            (2u16, [10, 0, 1, 1], [10, 0, 0, i], 80, 40000),
        ] {
            w.nest(tuple, |w| {
                w.nest(1, |w| {
                    w.attr(1, &src)?;
                    w.attr(2, &dst)
                })?;
                w.nest(2, |w| {
                    w.attr_u8(1, IPPROTO_TCP)?;
                    w.attr_u16_be(2, sport)?;
                    w.attr_u16_be(3, dport)
                })
            })?;
        }
        // CTA_PROTOINFO / CTA_PROTOINFO_TCP / STATE = ESTABLISHED (3)
        w.nest(4, |w| w.nest(1, |w| w.attr_u8(1, 3)))?;
        // CTA_STATUS = SEEN_REPLY | ASSURED | CONFIRMED: the kernel answers EBUSY to a
        // create whose status lacks CONFIRMED.
        w.attr_u32_be(3, 0xe)?;
        if bad_timeout {
            w.attr_u16_be(7, 120)?;
        } else {
            w.attr_u32_be(7, 120)?;
        }
        w.attr_u32_be(8, 0x42)
    })
    .expect("build");
    w.len()
}

fn dump_request(buf: &mut [u8], seq: u32, family: u8) -> usize {
    let mut w = Writer::new(buf);
    let kind = msg_type(Subsystem::Ctnetlink, ct_msg::GET);
    w.message(kind, flags::REQUEST | flags::DUMP, seq, 0, |w| {
        NfGenMsg {
            family,
            version: 0,
            res_id: 0,
        }
        .emit(w)
    })
    .expect("build");
    w.len()
}

fn save(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(format!("{name}.bin"));
    fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    println!("{} ({} bytes)", path.display(), bytes.len());
}

fn main() {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            eprintln!("usage: capture-fixtures OUTDIR");
            std::process::exit(2);
        });
    fs::create_dir_all(&dir).expect("create output directory");
    let ns = Netns::new("capture");
    let sock = ns.socket();
    sock.set_ext_ack(true).expect("NETLINK_EXT_ACK");
    let mut req = vec![0u8; 4096];

    let n = create_tcp(&mut req, 1, 2, false);
    save(&dir, "ack_create", &exchange(&sock, &req[..n]));
    for (seq, i) in (2..).zip(3..6) {
        let n = create_tcp(&mut req, seq, i, false);
        exchange(&sock, &req[..n]);
    }
    let n = create_tcp(&mut req, 10, 2, false);
    save(&dir, "error_eexist", &exchange(&sock, &req[..n]));
    let n = create_tcp(&mut req, 11, 9, true);
    save(&dir, "error_extack", &exchange(&sock, &req[..n]));
    let n = dump_request(&mut req, 12, AF_INET);
    save(&dir, "dump_ipv4_tcp", &exchange(&sock, &req[..n]));
}
