//! Captures real ctnetlink replies from this machine's kernel as fixture files.
//!
//! Usage: `capture-fixtures OUTDIR` (as root; needs `ip`, `nft` and `ping`).
//!
//! Every scenario creates its own throwaway network namespace (never the host's table), makes
//! entries there with CT_NEW/EXP_NEW requests or with real traffic on `lo`, and writes the
//! datagrams it received, concatenated exactly as received, to `OUTDIR/<name>.bin`. Each file
//! is parsed back with the codec (every message, every attribute, recursively) before it is
//! written, and a one-line summary is printed; kernel behaviour worth knowing is printed as
//! `note:` lines at the end (`codec/fixtures/README.md` records them).
//!
//! Real traffic comes from this same program, re-run inside the namespace as
//! `capture-fixtures --traffic SPEC...` (see [`traffic_main`]): it opens TCP, UDP and FTP-like
//! connections on `lo`, prints `ready`, and holds them open until its stdin closes.

use std::collections::BTreeSet;
use std::ffi::{c_int, c_long, c_void};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use conntrack_codec::nfnl::{ct_msg, exp_msg, groups, msg_type, split_type, NfGenMsg, NfMsg};
use conntrack_codec::nfnl::{Subsystem, NFNETLINK_V0, NFNETLINK_V1};
use conntrack_codec::nl::{
    flags, socket as nlsock, Attrs, Control, Messages, NlMsg, Writer, NLA_F_NESTED,
    NLA_F_NET_BYTEORDER,
};
use conntrack_codec::Result as CResult;
use conntrack_io::Socket;
use conntrack_tests::Netns;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_DCCP: u8 = 33;
const IPPROTO_GRE: u8 = 47;
const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_SCTP: u8 = 132;
const IPPROTO_UDPLITE: u8 = 136;

/// `IPS_SEEN_REPLY | IPS_ASSURED | IPS_CONFIRMED`: the kernel answers EBUSY to a create whose
/// status lacks CONFIRMED.
const STATUS_ESTABLISHED: u32 = 0xe;

/// Top-level conntrack attributes (`enum ctattr_type`).
mod cta {
    pub const TUPLE_ORIG: u16 = 1;
    pub const TUPLE_REPLY: u16 = 2;
    pub const STATUS: u16 = 3;
    pub const PROTOINFO: u16 = 4;
    pub const HELP: u16 = 5;
    pub const NAT_SRC: u16 = 6;
    pub const TIMEOUT: u16 = 7;
    pub const MARK: u16 = 8;
    pub const NAT_DST: u16 = 13;
    pub const SEQ_ADJ_ORIG: u16 = 15;
    pub const SEQ_ADJ_REPLY: u16 = 16;
    pub const SECMARK: u16 = 17;
    pub const ZONE: u16 = 18;
    pub const MARK_MASK: u16 = 21;
    pub const LABELS: u16 = 22;
    pub const LABELS_MASK: u16 = 23;
    pub const SYNPROXY: u16 = 24;
    pub const FILTER: u16 = 25;
}

/// `enum ctattr_tuple`, `ctattr_ip`, `ctattr_l4proto`.
mod tup {
    pub const IP: u16 = 1;
    pub const PROTO: u16 = 2;
    pub const ZONE: u16 = 3;
    pub const V4_SRC: u16 = 1;
    pub const V4_DST: u16 = 2;
    pub const V6_SRC: u16 = 3;
    pub const V6_DST: u16 = 4;
    pub const NUM: u16 = 1;
    pub const SRC_PORT: u16 = 2;
    pub const DST_PORT: u16 = 3;
    pub const ICMP_ID: u16 = 4;
    pub const ICMP_TYPE: u16 = 5;
    pub const ICMP_CODE: u16 = 6;
    pub const ICMPV6_ID: u16 = 7;
    pub const ICMPV6_TYPE: u16 = 8;
    pub const ICMPV6_CODE: u16 = 9;
}

/// Protocol info, NAT, seq adjust, help, synproxy nests.
mod sub {
    pub const PROTOINFO_TCP: u16 = 1;
    pub const PROTOINFO_DCCP: u16 = 2;
    pub const PROTOINFO_SCTP: u16 = 3;
    pub const TCP_STATE: u16 = 1;
    pub const TCP_WSCALE_ORIG: u16 = 2;
    pub const TCP_WSCALE_REPLY: u16 = 3;
    pub const TCP_FLAGS_ORIG: u16 = 4;
    pub const TCP_FLAGS_REPLY: u16 = 5;
    pub const SCTP_STATE: u16 = 1;
    pub const SCTP_VTAG_ORIG: u16 = 2;
    pub const SCTP_VTAG_REPLY: u16 = 3;
    pub const DCCP_STATE: u16 = 1;
    pub const DCCP_ROLE: u16 = 2;
    pub const DCCP_HANDSHAKE_SEQ: u16 = 3;
    pub const NAT_V4_MINIP: u16 = 1;
    pub const NAT_V4_MAXIP: u16 = 2;
    pub const NAT_PROTO: u16 = 3;
    pub const NAT_V6_MINIP: u16 = 4;
    pub const NAT_V6_MAXIP: u16 = 5;
    pub const PROTONAT_PORT_MIN: u16 = 1;
    pub const PROTONAT_PORT_MAX: u16 = 2;
    pub const SEQADJ_CORRECTION_POS: u16 = 1;
    pub const SEQADJ_OFFSET_BEFORE: u16 = 2;
    pub const SEQADJ_OFFSET_AFTER: u16 = 3;
    pub const HELP_NAME: u16 = 1;
    pub const SYNPROXY_ISN: u16 = 1;
    pub const SYNPROXY_ITS: u16 = 2;
    pub const SYNPROXY_TSOFF: u16 = 3;
    pub const FILTER_ORIG_FLAGS: u16 = 1;
    pub const FILTER_REPLY_FLAGS: u16 = 2;
}

/// Expectation attributes (`enum ctattr_expect`, `ctattr_expect_nat`).
mod exa {
    pub const MASTER: u16 = 1;
    pub const TUPLE: u16 = 2;
    pub const MASK: u16 = 3;
    pub const TIMEOUT: u16 = 4;
    pub const HELP_NAME: u16 = 6;
    pub const ZONE: u16 = 7;
    pub const FLAGS: u16 = 8;
    pub const CLASS: u16 = 9;
    pub const NAT: u16 = 10;
    pub const FN: u16 = 11;
    pub const NAT_DIR: u16 = 1;
    pub const NAT_TUPLE: u16 = 2;
}

// ---------------------------------------------------------------------------------------------
// Socket options that neither conntrack_io nor std wrap.

mod sockopt {
    use super::{c_int, c_long, c_void, io, AsRawFd, Duration, Socket};

    const SOL_SOCKET: c_int = 1;
    const SO_RCVTIMEO: c_int = 20;

    extern "C" {
        fn setsockopt(
            fd: c_int,
            level: c_int,
            name: c_int,
            value: *const c_void,
            len: u32,
        ) -> c_int;
    }

    /// Sets a socket option to the bytes of `value`.
    fn set(sock: &Socket, level: c_int, name: c_int, value: &[u8]) -> io::Result<()> {
        let len = u32::try_from(value.len()).map_err(io::Error::other)?;
        // SAFETY: `value` is a live, initialised byte slice of exactly `len` bytes, which is
        // all setsockopt reads; the fd belongs to `sock`, borrowed for the whole call.
        let rc = unsafe { setsockopt(sock.as_raw_fd(), level, name, value.as_ptr().cast(), len) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Sets an `int` option.
    pub fn set_int(sock: &Socket, level: c_int, name: c_int, v: c_int) -> io::Result<()> {
        set(sock, level, name, &v.to_ne_bytes())
    }

    /// Joins a netlink multicast group (`NETLINK_ADD_MEMBERSHIP`).
    pub fn join(sock: &Socket, group: u32) -> io::Result<()> {
        let group = c_int::try_from(group).map_err(io::Error::other)?;
        set_int(
            sock,
            conntrack_codec::nl::socket::SOL_NETLINK,
            conntrack_codec::nl::socket::NETLINK_ADD_MEMBERSHIP,
            group,
        )
    }

    /// Makes `recv` fail with `WouldBlock` after `t` without a datagram (`SO_RCVTIMEO`).
    pub fn rcv_timeout(sock: &Socket, t: Duration) -> io::Result<()> {
        let secs = c_long::try_from(t.as_secs()).map_err(io::Error::other)?;
        let usecs = c_long::from(i32::try_from(t.subsec_micros()).map_err(io::Error::other)?);
        let mut tv = Vec::with_capacity(2 * std::mem::size_of::<c_long>());
        tv.extend_from_slice(&secs.to_ne_bytes());
        tv.extend_from_slice(&usecs.to_ne_bytes());
        set(sock, SOL_SOCKET, SO_RCVTIMEO, &tv)
    }
}

/// How long a request may wait for its reply before the tool gives up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a read waits for one more event or one more unexpected reply.
const QUIET: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------------------------
// Tuples and requests.

/// The layer-4 part of a tuple.
#[derive(Debug, Clone, Copy)]
enum L4 {
    /// A protocol with ports (TCP, UDP, UDPlite, SCTP, DCCP) or GRE keys.
    Ports(u8, u16, u16),
    /// ICMP id, type, code.
    Icmp(u16, u8, u8),
    /// ICMPv6 id, type, code.
    Icmpv6(u16, u8, u8),
    /// Only a protocol number.
    Bare(u8),
}

/// A conntrack tuple, with an optional `CTA_TUPLE_ZONE`.
#[derive(Debug, Clone, Copy)]
struct Tuple {
    src: IpAddr,
    dst: IpAddr,
    l4: L4,
    zone: Option<u16>,
}

impl Tuple {
    fn new(src: IpAddr, dst: IpAddr, l4: L4) -> Tuple {
        Tuple {
            src,
            dst,
            l4,
            zone: None,
        }
    }

    fn family(&self) -> u8 {
        match self.src {
            IpAddr::V4(_) => AF_INET,
            IpAddr::V6(_) => AF_INET6,
        }
    }

    /// The tuple of the other direction, as the kernel would invert it.
    fn reply(&self) -> Tuple {
        let l4 = match self.l4 {
            L4::Ports(p, s, d) => L4::Ports(p, d, s),
            L4::Icmp(id, 8, c) => L4::Icmp(id, 0, c),
            L4::Icmp(id, t, c) => L4::Icmp(id, t, c),
            L4::Icmpv6(id, 128, c) => L4::Icmpv6(id, 129, c),
            L4::Icmpv6(id, t, c) => L4::Icmpv6(id, t, c),
            L4::Bare(p) => L4::Bare(p),
        };
        Tuple {
            src: self.dst,
            dst: self.src,
            l4,
            zone: None,
        }
    }

    fn with_zone(mut self, zone: u16) -> Tuple {
        self.zone = Some(zone);
        self
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// `2001:db8::<a>:<b>` (documentation prefix; these entries never see traffic).
fn v6(a: u16, b: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, a, b))
}

fn put_addr(w: &mut Writer<'_>, v4kind: u16, v6kind: u16, a: IpAddr) -> CResult<()> {
    match a {
        IpAddr::V4(a) => w.attr(v4kind, &a.octets()),
        IpAddr::V6(a) => w.attr(v6kind, &a.octets()),
    }
}

fn put_l4(w: &mut Writer<'_>, l4: L4) -> CResult<()> {
    match l4 {
        L4::Ports(p, s, d) => {
            w.attr_u8(tup::NUM, p)?;
            w.attr_u16_be(tup::SRC_PORT, s)?;
            w.attr_u16_be(tup::DST_PORT, d)
        }
        L4::Icmp(id, t, c) => {
            w.attr_u8(tup::NUM, IPPROTO_ICMP)?;
            w.attr_u16_be(tup::ICMP_ID, id)?;
            w.attr_u8(tup::ICMP_TYPE, t)?;
            w.attr_u8(tup::ICMP_CODE, c)
        }
        L4::Icmpv6(id, t, c) => {
            w.attr_u8(tup::NUM, IPPROTO_ICMPV6)?;
            w.attr_u16_be(tup::ICMPV6_ID, id)?;
            w.attr_u8(tup::ICMPV6_TYPE, t)?;
            w.attr_u8(tup::ICMPV6_CODE, c)
        }
        L4::Bare(p) => w.attr_u8(tup::NUM, p),
    }
}

/// Writes a tuple nest of type `kind` (`CTA_TUPLE_ORIG`, `CTA_EXPECT_MASTER`, ...).
fn put_tuple(w: &mut Writer<'_>, kind: u16, t: &Tuple) -> CResult<()> {
    w.nest(kind, |w| {
        w.nest(tup::IP, |w| {
            put_addr(w, tup::V4_SRC, tup::V6_SRC, t.src)?;
            put_addr(w, tup::V4_DST, tup::V6_DST, t.dst)
        })?;
        w.nest(tup::PROTO, |w| put_l4(w, t.l4))?;
        if let Some(z) = t.zone {
            w.attr_u16_be(tup::ZONE, z)?;
        }
        Ok(())
    })
}

/// Writes `CTA_TUPLE_ORIG` and `CTA_TUPLE_REPLY`.
fn put_tuples(w: &mut Writer<'_>, orig: &Tuple, reply: &Tuple) -> CResult<()> {
    put_tuple(w, cta::TUPLE_ORIG, orig)?;
    put_tuple(w, cta::TUPLE_REPLY, reply)
}

/// Writes a nest of type `kind` WITHOUT `NLA_F_NESTED` (as old userspace did).
fn nest_unflagged<F>(w: &mut Writer<'_>, kind: u16, body: F) -> CResult<()>
where
    F: FnOnce(&mut Writer<'_>) -> CResult<()>,
{
    let mut tmp = vec![0u8; 4096];
    let mut inner = Writer::new(&mut tmp);
    body(&mut inner)?;
    w.attr(kind, inner.written())
}

/// `CTA_PROTOINFO_TCP` with state, window scales and flags (`struct nf_ct_tcp_flags`).
fn put_tcp_info(w: &mut Writer<'_>, state: u8) -> CResult<()> {
    w.nest(cta::PROTOINFO, |w| {
        w.nest(sub::PROTOINFO_TCP, |w| {
            w.attr_u8(sub::TCP_STATE, state)?;
            w.attr_u8(sub::TCP_WSCALE_ORIG, 7)?;
            w.attr_u8(sub::TCP_WSCALE_REPLY, 9)?;
            // WINDOW_SCALE | SACK_PERM | BE_LIBERAL, mask the same.
            w.attr(sub::TCP_FLAGS_ORIG, &[0x0b, 0x0b])?;
            // WINDOW_SCALE | SACK_PERM.
            w.attr(sub::TCP_FLAGS_REPLY, &[0x03, 0x03])
        })
    })
}

/// Builds one request message.
fn build<F>(kind: u16, fl: u16, seq: u32, nfgen: NfGenMsg, body: F) -> Vec<u8>
where
    F: FnOnce(&mut Writer<'_>) -> CResult<()>,
{
    let mut buf = vec![0u8; 16384];
    let n = {
        let mut w = Writer::new(&mut buf);
        w.message(kind, fl, seq, 0, |w| {
            nfgen.emit(w)?;
            body(w)
        })
        .expect("build request");
        w.len()
    };
    buf.truncate(n);
    buf
}

fn nfgen(family: u8) -> NfGenMsg {
    NfGenMsg {
        family,
        version: NFNETLINK_V0,
        res_id: 0,
    }
}

const CREATE: u16 = flags::REQUEST | flags::ACK | flags::CREATE | flags::EXCL;
const UPDATE: u16 = flags::REQUEST | flags::ACK;
const DUMP: u16 = flags::REQUEST | flags::DUMP;

fn ct(msg: u8) -> u16 {
    msg_type(Subsystem::Ctnetlink, msg)
}

fn exp(msg: u8) -> u16 {
    msg_type(Subsystem::CtnetlinkExp, msg)
}

// ---------------------------------------------------------------------------------------------
// Replies.

/// The datagrams one request got back.
struct Reply {
    dgrams: Vec<Vec<u8>>,
}

impl Reply {
    /// The code of the last NLMSG_ERROR (0 for an ACK), if any.
    fn code(&self) -> Option<i32> {
        let mut code = None;
        for d in &self.dgrams {
            for m in Messages::new(d).flatten() {
                if let Ok(Some(Control::Error(e))) = m.control() {
                    code = Some(e.code());
                }
            }
        }
        code
    }

    /// How many protocol (non-control) messages the reply holds.
    fn entries(&self) -> usize {
        self.dgrams
            .iter()
            .map(|d| {
                Messages::new(d)
                    .flatten()
                    .filter(|m| !m.is_control())
                    .count()
            })
            .sum()
    }

    /// Whether any nfnetlink message of the reply has a top-level attribute `kind`.
    fn has_attr(&self, kind: u16) -> bool {
        self.dgrams.iter().any(|d| {
            Messages::new(d).flatten().any(|m| {
                NfMsg::new_checked(m)
                    .ok()
                    .and_then(|nf| nf.attrs().find(kind).ok().flatten())
                    .is_some()
            })
        })
    }

    fn is_ack(&self) -> bool {
        self.code() == Some(0)
    }

    /// "ACK", "ERANGE (34) 'Attribute failed policy validation' at 44", or "N messages".
    fn describe(&self) -> String {
        let mut out = String::new();
        for d in &self.dgrams {
            for m in Messages::new(d).flatten() {
                match m.control() {
                    Ok(Some(Control::Error(e))) if e.is_ack() => out.push_str("ACK"),
                    Ok(Some(Control::Error(e))) => {
                        let _ = write!(out, "{} ({})", errno_name(e.errno()), e.errno());
                        let ext = e.ext_ack();
                        if let Some(msg) = ext.msg {
                            let _ = write!(out, " \"{msg}\"");
                        }
                        if let Some(off) = ext.offset {
                            let _ = write!(out, " offset {off}");
                        }
                        if let Some(t) = ext.missing_type {
                            let _ = write!(out, " missing type {t}");
                        }
                    }
                    _ => {}
                }
            }
        }
        if out.is_empty() {
            let n: usize = self.dgrams.iter().map(|d| Messages::new(d).count()).sum();
            out = format!("{n} messages, no ACK/error");
        }
        out
    }
}

fn errno_name(e: i32) -> &'static str {
    match e {
        0 => "OK",
        1 => "EPERM",
        2 => "ENOENT",
        11 => "EAGAIN",
        12 => "ENOMEM",
        16 => "EBUSY",
        17 => "EEXIST",
        19 => "ENODEV",
        22 => "EINVAL",
        28 => "ENOSPC",
        34 => "ERANGE",
        61 => "ENODATA",
        71 => "EPROTO",
        90 => "EMSGSIZE",
        93 => "EPROTONOSUPPORT",
        95 => "EOPNOTSUPP",
        97 => "EAFNOSUPPORT",
        105 => "ENOBUFS",
        _ => "E?",
    }
}

/// Receives one datagram, or `None` after the socket's receive timeout.
fn recv(sock: &Socket) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 1 << 16];
    match sock.recv(&mut buf) {
        Ok(d) => {
            assert!(!d.truncated, "datagram truncated ({} bytes)", d.size);
            assert_eq!(d.sender, 0, "datagram not from the kernel");
            buf.truncate(d.len);
            Some(buf)
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        Err(e) => panic!("recv: {e}"),
    }
}

/// Sends `req` (one or more messages) and collects the reply datagrams: until `finals`
/// ACKs/errors/DONEs arrived, or, for a request that asks for neither an ACK nor a dump, until
/// its one reply message arrived (then one more short read makes sure nothing else follows).
fn exchange_n(sock: &Socket, req: &[u8], finals: usize) -> Reply {
    let first = Messages::new(req)
        .next()
        .expect("empty request")
        .expect("malformed request");
    let mut seqs: BTreeSet<u32> = Messages::new(req).flatten().map(|m| m.seq()).collect();
    if first.flags() & flags::ECHO != 0 {
        // The echoed event is built like any event, with seq 0.
        seqs.insert(0);
    }
    let single = first.flags() & (flags::ACK | flags::DUMP) == 0;
    sock.send(req).expect("send");
    let mut dgrams = Vec::new();
    let mut seen = 0;
    while seen < finals {
        let d = recv(sock).unwrap_or_else(|| panic!("no reply within {REPLY_TIMEOUT:?}"));
        for m in Messages::new(&d) {
            let m = m.expect("kernel sent a malformed message");
            assert!(
                seqs.contains(&m.seq()),
                "reply with a foreign seq {}",
                m.seq()
            );
            match m.control() {
                Ok(Some(Control::Error(_) | Control::Done(_))) => seen += 1,
                Ok(_) if single && !m.is_control() => seen += 1,
                _ => {}
            }
        }
        dgrams.push(d);
    }
    if single {
        sockopt::rcv_timeout(sock, QUIET).expect("SO_RCVTIMEO");
        if let Some(extra) = recv(sock) {
            dgrams.push(extra);
        }
        sockopt::rcv_timeout(sock, REPLY_TIMEOUT).expect("SO_RCVTIMEO");
    }
    Reply { dgrams }
}

fn exchange(sock: &Socket, req: &[u8]) -> Reply {
    exchange_n(sock, req, 1)
}

/// Reads datagrams (events) until the socket stays quiet for [`QUIET`].
fn drain(sock: &Socket) -> Vec<Vec<u8>> {
    sockopt::rcv_timeout(sock, QUIET).expect("SO_RCVTIMEO");
    let mut out = Vec::new();
    while let Some(d) = recv(sock) {
        out.push(d);
    }
    out
}

fn open_socket(ns: &Netns) -> Socket {
    let sock = ns.socket();
    sock.set_ext_ack(true).expect("NETLINK_EXT_ACK");
    sockopt::rcv_timeout(&sock, REPLY_TIMEOUT).expect("SO_RCVTIMEO");
    sock
}

/// A socket subscribed to `groups` (event listener).
fn listener(ns: &Netns, groups: &[u32]) -> Socket {
    let sock = open_socket(ns);
    for &g in groups {
        sockopt::join(&sock, g).expect("NETLINK_ADD_MEMBERSHIP");
    }
    sock
}

// ---------------------------------------------------------------------------------------------
// A namespace with a request socket.

struct Lab {
    ns: Netns,
    sock: Socket,
    seq: u32,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let ns = Netns::new(tag);
        let sock = open_socket(&ns);
        Lab { ns, sock, seq: 100 }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq += 1;
        self.seq
    }

    /// Sends one request built from `kind`, `fl`, `family` and `body`.
    fn req<F>(&mut self, kind: u16, fl: u16, g: NfGenMsg, body: F) -> Reply
    where
        F: FnOnce(&mut Writer<'_>) -> CResult<()>,
    {
        let seq = self.next_seq();
        let req = build(kind, fl, seq, g, body);
        exchange(&self.sock, &req)
    }

    /// CT_NEW with CREATE|EXCL|ACK: `orig`, its inverse as reply tuple, then `body`.
    fn create<F>(&mut self, orig: &Tuple, body: F) -> Reply
    where
        F: FnOnce(&mut Writer<'_>) -> CResult<()>,
    {
        let reply = orig.reply();
        self.create2(orig, &reply, body)
    }

    /// CT_NEW with CREATE|EXCL|ACK and explicit tuples.
    fn create2<F>(&mut self, orig: &Tuple, reply: &Tuple, body: F) -> Reply
    where
        F: FnOnce(&mut Writer<'_>) -> CResult<()>,
    {
        self.req(ct(ct_msg::NEW), CREATE, nfgen(orig.family()), |w| {
            put_tuples(w, orig, reply)?;
            body(w)
        })
    }

    /// Creates an entry and insists on an ACK.
    fn must_create<F>(&mut self, orig: &Tuple, body: F)
    where
        F: FnOnce(&mut Writer<'_>) -> CResult<()>,
    {
        let r = self.create(orig, body);
        assert!(r.is_ack(), "create {orig:?}: {}", r.describe());
    }

    /// A plain dump (`NLM_F_DUMP`, no attributes).
    fn dump(&mut self, kind: u16, family: u8) -> Reply {
        self.req(kind, DUMP, nfgen(family), |_| Ok(()))
    }

    /// Runs `nft -f -` with `ruleset` inside the namespace.
    fn nft(&self, ruleset: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", self.ns.name(), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run nft (is nftables installed?)");
        child
            .stdin
            .take()
            .expect("nft stdin")
            .write_all(ruleset.as_bytes())
            .expect("write ruleset");
        let out = child.wait_with_output().expect("wait for nft");
        assert!(
            out.status.success(),
            "nft in {}: {}",
            self.ns.name(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Two pings to `addr` inside the namespace.
    fn ping(&self, addr: &str) {
        self.ns
            .run("ping", &["-c", "2", "-i", "0.1", "-W", "1", "-q", addr]);
    }

    /// Starts the traffic helper inside the namespace with `specs`.
    fn traffic(&self, specs: &[&str]) -> Traffic {
        Traffic::start(&self.ns, specs)
    }
}

/// An nftables ruleset that makes every packet on `lo` go through conntrack.
const RULES_CT: &str = "table inet t {
  chain out { type filter hook output priority 0; ct state new,established,related accept; }
  chain in { type filter hook input priority 0; ct state established,related,new accept; }
}
";

// ---------------------------------------------------------------------------------------------
// The traffic helper (this program, re-run inside a namespace).

/// A running traffic helper; its connections stay open until [`Traffic::stop`].
struct Traffic {
    child: Child,
}

impl Traffic {
    fn start(ns: &Netns, specs: &[&str]) -> Traffic {
        let exe = std::env::current_exe().expect("own path");
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(exe)
            .arg("--traffic")
            .args(specs)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start traffic helper");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("helper stdout"))
            .read_line(&mut line)
            .expect("read helper");
        assert_eq!(line.trim(), "ready", "traffic helper {specs:?} failed");
        Traffic { child }
    }

    /// Closes the helper's connections and waits for it.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().expect("wait for traffic helper");
        assert!(status.success(), "traffic helper: {status}");
    }
}

/// `--traffic SPEC...`: runs inside a namespace; each SPEC is one of
/// - `tcp=LISTEN>CONNECT`: a listener on LISTEN, a client to CONNECT (the same address unless
///   NAT redirects it), one request/response each way;
/// - `udp=LISTEN>CONNECT`: the same with one datagram each way;
/// - `ftp-pasv=ADDR` / `ftp-epsv=ADDR`: a control connection to ADDR (port 21) where the server
///   answers `PASV` with `227 ... (h1,h2,h3,h4,p1,p2)` / `EPSV` with `229 ... (|||port|)`.
///
/// It prints `ready` once every exchange is done, then holds the sockets open until stdin
/// reaches EOF.
fn traffic_main(specs: &[String]) {
    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::new();
    for spec in specs {
        let (kind, rest) = spec.split_once('=').expect("SPEC is KIND=...");
        let (listen, connect) = rest.split_once('>').unwrap_or((rest, rest));
        let listen: SocketAddr = listen.parse().expect("listen address");
        let connect: SocketAddr = connect.parse().expect("connect address");
        match kind {
            "tcp" => {
                let l = TcpListener::bind(listen).expect("tcp bind");
                let mut c = TcpStream::connect(connect).expect("tcp connect");
                let (mut s, _) = l.accept().expect("accept");
                c.write_all(b"hello\n").expect("client write");
                let mut buf = [0u8; 6];
                s.read_exact(&mut buf).expect("server read");
                s.write_all(b"world\n").expect("server write");
                c.read_exact(&mut buf).expect("client read");
                keep.extend([
                    Box::new(l) as Box<dyn std::any::Any>,
                    Box::new(c),
                    Box::new(s),
                ]);
            }
            "udp" => {
                let s = UdpSocket::bind(listen).expect("udp bind");
                let any: SocketAddr = match connect {
                    SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("addr"),
                    SocketAddr::V6(_) => "[::]:0".parse().expect("addr"),
                };
                let c = UdpSocket::bind(any).expect("udp client bind");
                c.set_read_timeout(Some(Duration::from_secs(2)))
                    .expect("timeout");
                s.set_read_timeout(Some(Duration::from_secs(2)))
                    .expect("timeout");
                c.send_to(b"ping", connect).expect("udp send");
                let mut buf = [0u8; 16];
                let (_, from) = s.recv_from(&mut buf).expect("udp server recv");
                s.send_to(b"pong", from).expect("udp reply");
                c.recv_from(&mut buf).expect("udp client recv");
                keep.extend([Box::new(s) as Box<dyn std::any::Any>, Box::new(c)]);
            }
            "ftp-pasv" | "ftp-epsv" => {
                let l = TcpListener::bind(listen).expect("ftp bind");
                let mut c = TcpStream::connect(connect).expect("ftp connect");
                let (mut s, _) = l.accept().expect("ftp accept");
                let mut line = vec![0u8; 128];
                s.write_all(b"220 capture-fixtures\r\n").expect("greeting");
                let n = c.read(&mut line).expect("read greeting");
                assert!(n > 0);
                let port: u16 = 50000;
                let (cmd, answer) = match (kind, listen.ip()) {
                    ("ftp-pasv", IpAddr::V4(ip)) => {
                        let [a, b, cc, d] = ip.octets();
                        let [p1, p2] = port.to_be_bytes();
                        (
                            "PASV\r\n",
                            format!("227 Entering Passive Mode ({a},{b},{cc},{d},{p1},{p2})\r\n"),
                        )
                    }
                    _ => (
                        "EPSV\r\n",
                        format!("229 Entering Extended Passive Mode (|||{port}|)\r\n"),
                    ),
                };
                c.write_all(cmd.as_bytes()).expect("send command");
                let n = s.read(&mut line).expect("server read command");
                assert!(n > 0);
                s.write_all(answer.as_bytes()).expect("send answer");
                let n = c.read(&mut line).expect("client read answer");
                assert!(n > 0);
                keep.extend([
                    Box::new(l) as Box<dyn std::any::Any>,
                    Box::new(c),
                    Box::new(s),
                ]);
            }
            other => panic!("unknown traffic kind {other}"),
        }
    }
    println!("ready");
    io::stdout().flush().expect("flush");
    let mut sink = Vec::new();
    let _ = io::stdin().read_to_end(&mut sink);
    drop(keep);
}

// ---------------------------------------------------------------------------------------------
// Verification: every captured datagram must parse, message by message, attribute by
// attribute; what was seen is summarised.

/// Where an attribute sits, for the known-nest table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    CtTop,
    ExpTop,
    Tuple,
    ProtoInfo,
    Nat,
    ExpNat,
    Counters,
    Timestamp,
    Dccp,
    Other,
}

/// The child node of `kind` under `node` if that attribute is a nest by the uapi grammar.
fn nest_child(node: Node, kind: u16) -> Option<Node> {
    match (node, kind) {
        (Node::CtTop, 1 | 2 | 14) => Some(Node::Tuple),
        (Node::CtTop, 4) => Some(Node::ProtoInfo),
        (Node::CtTop, 6 | 13) => Some(Node::Nat),
        (Node::CtTop, 9 | 10) => Some(Node::Counters),
        (Node::CtTop, 20) => Some(Node::Timestamp),
        (Node::CtTop, 5 | 15 | 16 | 19 | 24 | 25) => Some(Node::Other),
        (Node::ExpTop, 1..=3) => Some(Node::Tuple),
        (Node::ExpTop, 10) => Some(Node::ExpNat),
        (Node::ExpNat, 2) => Some(Node::Tuple),
        (Node::Tuple, 1 | 2) => Some(Node::Other),
        (Node::ProtoInfo, 2) => Some(Node::Dccp),
        (Node::ProtoInfo, 1 | 3) => Some(Node::Other),
        (Node::Nat, 3) => Some(Node::Other),
        _ => None,
    }
}

/// What the walk saw in one file.
#[derive(Default)]
struct Seen {
    attrs: usize,
    unflagged_nests: BTreeSet<String>,
    flagged_leaves: BTreeSet<String>,
    net_byteorder: BTreeSet<String>,
    pads: BTreeSet<String>,
    empty: BTreeSet<String>,
}

fn walk(attrs: Attrs<'_>, node: Node, path: &str, seen: &mut Seen) -> CResult<()> {
    for a in attrs {
        let a = a?;
        seen.attrs += 1;
        let here = format!("{path}/{}", a.kind());
        if a.raw_kind() & NLA_F_NET_BYTEORDER != 0 {
            seen.net_byteorder.insert(here.clone());
        }
        if a.payload().is_empty() {
            seen.empty.insert(here.clone());
        }
        let pad = matches!(
            (node, a.kind()),
            (Node::Counters, 5) | (Node::Timestamp, 3) | (Node::Dccp, 4)
        );
        if pad {
            seen.pads
                .insert(format!("{here} ({} bytes)", a.payload().len()));
        }
        match nest_child(node, a.kind()) {
            Some(child) => {
                if a.raw_kind() & NLA_F_NESTED == 0 {
                    seen.unflagged_nests.insert(here.clone());
                }
                walk(a.nested(), child, &here, seen)?;
            }
            None if a.is_nested() => {
                seen.flagged_leaves.insert(here.clone());
                walk(a.nested(), Node::Other, &here, seen)?;
            }
            None => {}
        }
    }
    Ok(())
}

fn top_node(kind: u16) -> (Node, &'static str) {
    match split_type(kind) {
        (Subsystem::Ctnetlink, ct_msg::GET_STATS_CPU | ct_msg::GET_STATS) => (Node::Other, "ct"),
        (Subsystem::Ctnetlink, _) => (Node::CtTop, "ct"),
        (Subsystem::CtnetlinkExp, exp_msg::GET_STATS_CPU) => (Node::Other, "exp"),
        (Subsystem::CtnetlinkExp, _) => (Node::ExpTop, "exp"),
        (Subsystem::Unknown(_), _) => (Node::Other, "?"),
    }
}

fn msg_name(kind: u16) -> String {
    let (subsys, msg) = split_type(kind);
    let name = match (subsys, msg) {
        (Subsystem::Ctnetlink, 0) => "CT_NEW",
        (Subsystem::Ctnetlink, 1) => "CT_GET",
        (Subsystem::Ctnetlink, 2) => "CT_DELETE",
        (Subsystem::Ctnetlink, 3) => "CT_GET_CTRZERO",
        (Subsystem::Ctnetlink, 4) => "CT_GET_STATS_CPU",
        (Subsystem::Ctnetlink, 5) => "CT_GET_STATS",
        (Subsystem::Ctnetlink, 6) => "CT_GET_DYING",
        (Subsystem::Ctnetlink, 7) => "CT_GET_UNCONFIRMED",
        (Subsystem::CtnetlinkExp, 0) => "EXP_NEW",
        (Subsystem::CtnetlinkExp, 1) => "EXP_GET",
        (Subsystem::CtnetlinkExp, 2) => "EXP_DELETE",
        (Subsystem::CtnetlinkExp, 3) => "EXP_GET_STATS_CPU",
        _ => return format!("type 0x{kind:04x}"),
    };
    name.to_owned()
}

/// Parses every message of every datagram, asserting that nothing fails; returns a summary.
///
/// `flat` walks the protocol messages' attributes without the ctnetlink nest table (for the
/// expectation statistics, which the kernel sends with a conntrack message type).
fn verify(name: &str, dgrams: &[Vec<u8>], flat: bool) -> String {
    let mut labels: Vec<(String, usize)> = Vec::new();
    let mut seqs = BTreeSet::new();
    let mut pids = BTreeSet::new();
    let mut seen = Seen::default();
    let mut echoed = Seen::default();
    let mut msgs = 0;
    for (i, d) in dgrams.iter().enumerate() {
        let mut it = Messages::new(d);
        for m in it.by_ref() {
            let m = m.unwrap_or_else(|e| panic!("{name}: datagram {i}: {e}"));
            msgs += 1;
            seqs.insert(m.seq());
            pids.insert(m.pid());
            let label = label(name, &m, flat, &mut seen, &mut echoed);
            match labels.last_mut() {
                Some((l, n)) if *l == label => *n += 1,
                _ => labels.push((label, 1)),
            }
        }
        assert_eq!(
            it.offset(),
            d.len(),
            "{name}: datagram {i} has trailing bytes"
        );
    }
    let sizes: Vec<usize> = dgrams.iter().map(Vec::len).collect();
    let mut s = format!("{} datagrams {sizes:?}, {msgs} messages: ", dgrams.len());
    let parts: Vec<String> = labels
        .iter()
        .map(|(l, n)| {
            if *n == 1 {
                l.clone()
            } else {
                format!("{n}x {l}")
            }
        })
        .collect();
    s.push_str(&parts.join(", "));
    let _ = write!(s, "; seq {seqs:?}; pid {pids:?}; {} attrs", seen.attrs);
    describe_seen(&mut s, "", &seen);
    describe_seen(&mut s, "echoed request: ", &echoed);
    s
}

fn describe_seen(s: &mut String, prefix: &str, seen: &Seen) {
    if !seen.unflagged_nests.is_empty() {
        let _ = write!(
            s,
            "; {prefix}nests WITHOUT NLA_F_NESTED {:?}",
            seen.unflagged_nests
        );
    }
    if !seen.flagged_leaves.is_empty() {
        let _ = write!(
            s,
            "; {prefix}unexpected NLA_F_NESTED {:?}",
            seen.flagged_leaves
        );
    }
    if !seen.net_byteorder.is_empty() {
        let _ = write!(
            s,
            "; {prefix}NLA_F_NET_BYTEORDER on {:?}",
            seen.net_byteorder
        );
    }
    if !seen.pads.is_empty() {
        let _ = write!(s, "; {prefix}pads {:?}", seen.pads);
    }
    if !seen.empty.is_empty() {
        let _ = write!(s, "; {prefix}empty attrs {:?}", seen.empty);
    }
}

/// A short label for one message; walks its attributes (asserting they parse).
fn label(name: &str, m: &NlMsg<'_>, flat: bool, seen: &mut Seen, echoed: &mut Seen) -> String {
    let ctl = m
        .control()
        .unwrap_or_else(|e| panic!("{name}: control message: {e}"));
    let fl = m.flags();
    match ctl {
        Some(Control::Error(e)) => {
            let mut l = if e.is_ack() {
                "ACK".to_owned()
            } else {
                format!("ERROR {}", errno_name(e.errno()))
            };
            let _ = write!(
                l,
                " f=0x{fl:x} (echo {} {}B",
                msg_name(e.request().kind),
                e.request().len
            );
            if fl & flags::CAPPED != 0 {
                l.push_str(", capped");
            }
            l.push(')');
            let ext = e.ext_ack();
            if let Some(msg) = ext.msg {
                let _ = write!(l, " msg \"{msg}\"");
            }
            if let Some(off) = ext.offset {
                let _ = write!(l, " offs {off}");
            }
            if let Some(t) = ext.missing_type {
                let _ = write!(l, " miss_type {t}");
            }
            if let Some(n) = ext.missing_nest {
                let _ = write!(l, " miss_nest {n}");
            }
            let p = e.request_payload();
            if p.len() > NfGenMsg::LEN {
                // The echo of our own (maybe deliberately malformed) request: walked for the
                // record, not asserted.
                let (node, _) = top_node(e.request().kind);
                if let Err(err) = walk(Attrs::new(&p[NfGenMsg::LEN..]), node, "", echoed) {
                    let _ = write!(l, " [echoed request does not parse: {err}]");
                }
            }
            l
        }
        Some(Control::Done(d)) => format!("DONE({}) f=0x{fl:x} {}B", d.code(), m.bytes().len()),
        Some(other) => format!("{other:?}"),
        None => {
            let nf = NfMsg::new_checked(*m).unwrap_or_else(|e| panic!("{name}: nfgenmsg: {e}"));
            let (mut node, sub) = top_node(m.kind());
            if flat {
                node = Node::Other;
            }
            walk(nf.attrs(), node, sub, seen).unwrap_or_else(|e| panic!("{name}: attrs: {e}"));
            let g = nf.nfgen();
            let mut l = format!(
                "{} f=0x{fl:x} fam={} v={}",
                msg_name(m.kind()),
                g.family,
                g.version
            );
            if g.res_id != 0 {
                let _ = write!(l, " res_id={}", g.res_id);
            }
            l
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Output.

struct Out {
    dir: PathBuf,
    names: BTreeSet<String>,
    total: usize,
    notes: Vec<String>,
}

impl Out {
    fn save(&mut self, name: &str, dgrams: &[Vec<u8>]) {
        self.save_as(name, dgrams, false);
    }

    fn save_as(&mut self, name: &str, dgrams: &[Vec<u8>], flat: bool) {
        assert!(self.names.insert(name.to_owned()), "{name} saved twice");
        let bytes = dgrams.concat();
        let path = self.dir.join(format!("{name}.bin"));
        fs::write(&path, &bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        let summary = verify(name, dgrams, flat);
        self.total += bytes.len();
        println!("{name}.bin: {} B, {summary}", bytes.len());
    }

    fn save_reply(&mut self, name: &str, r: &Reply) {
        self.save(name, &r.dgrams);
    }

    fn note(&mut self, s: String) {
        println!("note: {s}");
        self.notes.push(s);
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

/// The original four fixtures (their seqs and contents are what codec tests expect).
fn legacy(out: &mut Out) {
    /// A CT_NEW request for an IPv4 TCP entry, with an optional deliberately bad timeout size.
    fn create_tcp(seq: u32, i: u8, bad_timeout: bool) -> Vec<u8> {
        build(ct(ct_msg::NEW), CREATE, seq, nfgen(AF_INET), |w| {
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
            w.attr_u32_be(cta::STATUS, STATUS_ESTABLISHED)?;
            if bad_timeout {
                w.attr_u16_be(cta::TIMEOUT, 120)?;
            } else {
                w.attr_u32_be(cta::TIMEOUT, 120)?;
            }
            w.attr_u32_be(cta::MARK, 0x42)
        })
    }

    let ns = Netns::new("legacy");
    let sock = open_socket(&ns);
    out.save_reply("ack_create", &exchange(&sock, &create_tcp(1, 2, false)));
    for (seq, i) in (2..).zip(3..6) {
        let r = exchange(&sock, &create_tcp(seq, i, false));
        assert!(r.is_ack(), "create: {}", r.describe());
    }
    out.save_reply("error_eexist", &exchange(&sock, &create_tcp(10, 2, false)));
    out.save_reply("error_extack", &exchange(&sock, &create_tcp(11, 9, true)));
    let dump = build(ct(ct_msg::GET), DUMP, 12, nfgen(AF_INET), |_| Ok(()));
    out.save_reply("dump_ipv4_tcp", &exchange(&sock, &dump));
}

/// One namespace per layer-4 protocol: two entries per family, dumped per family.
fn protocols(out: &mut Out) {
    struct Kind {
        name: &'static str,
        v4: fn(u16) -> Tuple,
        v6: fn(u16) -> Tuple,
        extra: fn(&mut Writer<'_>) -> CResult<()>,
    }
    fn std_attrs(w: &mut Writer<'_>) -> CResult<()> {
        w.attr_u32_be(cta::STATUS, STATUS_ESTABLISHED)?;
        w.attr_u32_be(cta::TIMEOUT, 300)
    }
    let kinds = [
        Kind {
            name: "tcp_wscale",
            v4: |i| {
                Tuple::new(
                    v4(192, 0, 2, 1),
                    v4(198, 51, 100, 1),
                    L4::Ports(IPPROTO_TCP, 40000 + i, 443),
                )
            },
            v6: |i| Tuple::new(v6(1, 1), v6(2, 1), L4::Ports(IPPROTO_TCP, 40000 + i, 443)),
            extra: |w| {
                std_attrs(w)?;
                put_tcp_info(w, 3)
            },
        },
        Kind {
            name: "udp",
            v4: |i| {
                Tuple::new(
                    v4(192, 0, 2, 1),
                    v4(198, 51, 100, 53),
                    L4::Ports(IPPROTO_UDP, 50000 + i, 53),
                )
            },
            v6: |i| Tuple::new(v6(1, 1), v6(2, 53), L4::Ports(IPPROTO_UDP, 50000 + i, 53)),
            extra: std_attrs,
        },
        Kind {
            name: "udplite",
            v4: |i| {
                Tuple::new(
                    v4(192, 0, 2, 1),
                    v4(198, 51, 100, 2),
                    L4::Ports(IPPROTO_UDPLITE, 51000 + i, 5004),
                )
            },
            v6: |i| {
                Tuple::new(
                    v6(1, 1),
                    v6(2, 2),
                    L4::Ports(IPPROTO_UDPLITE, 51000 + i, 5004),
                )
            },
            extra: std_attrs,
        },
        Kind {
            name: "icmp",
            v4: |i| {
                Tuple::new(
                    v4(192, 0, 2, 1),
                    v4(198, 51, 100, 3),
                    L4::Icmp(0x1200 + i, 8, 0),
                )
            },
            v6: |i| Tuple::new(v6(1, 1), v6(2, 3), L4::Icmpv6(0x1200 + i, 128, 0)),
            // No CTA_STATUS: what the kernel sets on its own.
            extra: |w| w.attr_u32_be(cta::TIMEOUT, 30),
        },
        Kind {
            name: "sctp",
            v4: |i| {
                Tuple::new(
                    v4(192, 0, 2, 1),
                    v4(198, 51, 100, 4),
                    L4::Ports(IPPROTO_SCTP, 5000 + i, 36412),
                )
            },
            v6: |i| Tuple::new(v6(1, 1), v6(2, 4), L4::Ports(IPPROTO_SCTP, 5000 + i, 36412)),
            extra: |w| {
                std_attrs(w)?;
                w.nest(cta::PROTOINFO, |w| {
                    w.nest(sub::PROTOINFO_SCTP, |w| {
                        w.attr_u8(sub::SCTP_STATE, 4)?; // ESTABLISHED
                        w.attr_u32_be(sub::SCTP_VTAG_ORIG, 0x1122_3344)?;
                        w.attr_u32_be(sub::SCTP_VTAG_REPLY, 0x5566_7788)
                    })
                })
            },
        },
        Kind {
            name: "gre",
            v4: |i| {
                Tuple::new(
                    v4(192, 0, 2, 1),
                    v4(198, 51, 100, 5),
                    L4::Ports(IPPROTO_GRE, 0x1000 + i, 0x2000),
                )
            },
            v6: |i| {
                Tuple::new(
                    v6(1, 1),
                    v6(2, 5),
                    L4::Ports(IPPROTO_GRE, 0x1000 + i, 0x2000),
                )
            },
            extra: std_attrs,
        },
        Kind {
            name: "generic99",
            v4: |i| {
                Tuple::new(
                    v4(192, 0, 2, 10 + i as u8),
                    v4(198, 51, 100, 6),
                    L4::Bare(99),
                )
            },
            v6: |i| Tuple::new(v6(1, 10 + i), v6(2, 6), L4::Bare(99)),
            extra: std_attrs,
        },
        Kind {
            name: "dccp",
            v4: |i| {
                Tuple::new(
                    v4(192, 0, 2, 1),
                    v4(198, 51, 100, 7),
                    L4::Ports(IPPROTO_DCCP, 6000 + i, 5001),
                )
            },
            v6: |i| Tuple::new(v6(1, 1), v6(2, 7), L4::Ports(IPPROTO_DCCP, 6000 + i, 5001)),
            extra: |w| {
                std_attrs(w)?;
                w.nest(cta::PROTOINFO, |w| {
                    w.nest(sub::PROTOINFO_DCCP, |w| {
                        w.attr_u8(sub::DCCP_STATE, 4)?; // OPEN
                        w.attr_u8(sub::DCCP_ROLE, 0)?; // CLIENT
                        w.attr_u64_be(sub::DCCP_HANDSHAKE_SEQ, 0x0102_0304)
                    })
                })
            },
        },
    ];
    for k in &kinds {
        let mut lab = Lab::new(k.name);
        for (fam, make) in [("ipv4", k.v4), ("ipv6", k.v6)] {
            let mut replies = Vec::new();
            for i in 0..2 {
                let r = lab.create(&make(i), k.extra);
                replies.push(r.describe());
                if k.name == "dccp" && i == 0 {
                    out.save_reply(&format!("reply_create_{fam}_dccp"), &r);
                }
            }
            out.note(format!("create {fam} {}: {}", k.name, replies.join(" / ")));
        }
        let d4 = lab.dump(ct(ct_msg::GET), AF_INET);
        out.save_reply(&format!("dump_ipv4_{}", k.name), &d4);
        let d6 = lab.dump(ct(ct_msg::GET), AF_INET6);
        let v6name = match k.name {
            "icmp" => "icmpv6",
            n => n,
        };
        out.save_reply(&format!("dump_ipv6_{v6name}"), &d6);
    }
}

fn tcp4(i: u16) -> Tuple {
    Tuple::new(
        v4(192, 0, 2, 1),
        v4(198, 51, 100, 80),
        L4::Ports(IPPROTO_TCP, 30000 + i, 80),
    )
}

fn tcp6(i: u16) -> Tuple {
    Tuple::new(v6(1, 1), v6(2, 80), L4::Ports(IPPROTO_TCP, 30000 + i, 80))
}

fn est(w: &mut Writer<'_>) -> CResult<()> {
    w.attr_u32_be(cta::STATUS, STATUS_ESTABLISHED)?;
    w.attr_u32_be(cta::TIMEOUT, 300)?;
    put_tcp_info(w, 3)
}

/// Zones, labels, helpers, NAT by request, seq adjustment, synproxy, secmark.
fn features(out: &mut Out) {
    // Zones.
    {
        let mut lab = Lab::new("zone");
        let r = lab.create(&tcp4(1), |w| {
            est(w)?;
            w.attr_u16_be(cta::ZONE, 7)
        });
        out.note(format!("create with CTA_ZONE 7: {}", r.describe()));
        let orig = tcp4(2).with_zone(5);
        let r = lab.create2(&orig, &tcp4(2).reply(), est);
        out.note(format!(
            "create with orig CTA_TUPLE_ZONE 5 only: {}",
            r.describe()
        ));
        let reply = tcp4(3).reply().with_zone(6);
        let r = lab.create2(&tcp4(3), &reply, est);
        out.note(format!(
            "create with reply CTA_TUPLE_ZONE 6 only: {}",
            r.describe()
        ));
        let r = lab.create2(&tcp4(4).with_zone(8), &tcp4(4).reply().with_zone(9), est);
        out.note(format!(
            "create with orig zone 8 and reply zone 9: {}",
            r.describe()
        ));
        let r = lab.create(&tcp6(1), |w| {
            est(w)?;
            w.attr_u16_be(cta::ZONE, 7)
        });
        out.note(format!("create ipv6 with CTA_ZONE 7: {}", r.describe()));
        out.save_reply("dump_zone", &lab.dump(ct(ct_msg::GET), AF_UNSPEC));
        let r = lab.req(ct(ct_msg::GET), DUMP, nfgen(AF_UNSPEC), |w| {
            w.attr_u16_be(cta::ZONE, 7)
        });
        out.save_reply("dump_zone_filter7", &r);
        // Delete without the zone: zone 0, so "not found".
        let r = lab.req(ct(ct_msg::DELETE), UPDATE, nfgen(AF_INET), |w| {
            put_tuple(w, cta::TUPLE_ORIG, &tcp4(1))
        });
        out.save_reply("error_delete_zone_missing", &r);
        let r = lab.req(ct(ct_msg::DELETE), UPDATE, nfgen(AF_INET), |w| {
            put_tuple(w, cta::TUPLE_ORIG, &tcp4(1))?;
            w.attr_u16_be(cta::ZONE, 7)
        });
        out.note(format!("delete with CTA_ZONE 7: {}", r.describe()));
    }
    // Labels.
    {
        let labels = |w: &mut Writer<'_>, kind: u16, words: [u32; 4]| {
            let mut b = Vec::new();
            for word in words {
                b.extend_from_slice(&word.to_ne_bytes());
            }
            w.attr(kind, &b)
        };
        let mut lab = Lab::new("nolabel");
        let r = lab.create(&tcp4(1), |w| {
            est(w)?;
            labels(w, cta::LABELS, [0x2, 0, 0, 0])
        });
        out.save_reply("reply_create_labels_norule", &r);
        let d = lab.dump(ct(ct_msg::GET), AF_UNSPEC);
        out.note(format!(
            "labels without a `ct label` rule in the namespace: create {}, dump shows CTA_LABELS: {}",
            r.describe(),
            d.has_attr(cta::LABELS)
        ));
        let r = lab.req(ct(ct_msg::NEW), UPDATE, nfgen(AF_INET), |w| {
            put_tuple(w, cta::TUPLE_ORIG, &tcp4(1))?;
            labels(w, cta::LABELS, [0x4, 0, 0, 0])
        });
        out.save_reply("reply_update_labels_norule", &r);

        let mut lab = Lab::new("labels");
        lab.nft("table inet l {\n  chain c {\n    type filter hook output priority 0;\n    ct label set 1\n  }\n}\n");
        // Bits 1, 33 and 127 (host-order u32 words).
        let r = lab.create(&tcp4(1), |w| {
            est(w)?;
            labels(w, cta::LABELS, [0x2, 0x2, 0, 0x8000_0000])
        });
        out.save_reply("ack_create_labels", &r);
        let r = lab.create(&tcp6(1), |w| {
            est(w)?;
            labels(w, cta::LABELS, [0x1, 0, 0x100, 0])
        });
        out.note(format!("create ipv6 with labels: {}", r.describe()));
        // Update: set bit 64, clear bit 1, keep the rest (mask selects bits 1 and 64).
        let r = lab.req(ct(ct_msg::NEW), UPDATE, nfgen(AF_INET), |w| {
            put_tuple(w, cta::TUPLE_ORIG, &tcp4(1))?;
            labels(w, cta::LABELS, [0, 0, 0x1, 0])?;
            labels(w, cta::LABELS_MASK, [0x2, 0, 0x1, 0])
        });
        out.note(format!(
            "update labels with CTA_LABELS_MASK: {}",
            r.describe()
        ));
        let r = lab.create(&tcp4(2), |w| {
            est(w)?;
            labels(w, cta::LABELS, [0x1, 0, 0, 0])?;
            labels(w, cta::LABELS_MASK, [0x1, 0, 0, 0])
        });
        out.note(format!("create with CTA_LABELS_MASK: {}", r.describe()));
        out.save_reply("dump_labels", &lab.dump(ct(ct_msg::GET), AF_UNSPEC));
        let r = lab.create(&tcp4(3), |w| {
            est(w)?;
            w.attr(cta::LABELS, &[0xffu8; 32])
        });
        out.save_reply("error_labels_too_long", &r);
    }
    // Helpers.
    {
        let mut lab = Lab::new("helper");
        let ftp4 = Tuple::new(
            v4(192, 0, 2, 1),
            v4(198, 51, 100, 21),
            L4::Ports(IPPROTO_TCP, 40021, 21),
        );
        let ftp6 = Tuple::new(v6(1, 1), v6(2, 21), L4::Ports(IPPROTO_TCP, 40021, 21));
        for (name, t) in [("ipv4", ftp4), ("ipv6", ftp6)] {
            let r = lab.create(&t, |w| {
                est(w)?;
                w.nest(cta::HELP, |w| w.attr_str(sub::HELP_NAME, "ftp"))
            });
            out.note(format!("create {name} with CTA_HELP ftp: {}", r.describe()));
        }
        let tftp = Tuple::new(
            v4(192, 0, 2, 1),
            v4(198, 51, 100, 69),
            L4::Ports(IPPROTO_UDP, 40069, 69),
        );
        let r = lab.create(&tftp, |w| {
            w.attr_u32_be(cta::STATUS, STATUS_ESTABLISHED)?;
            w.attr_u32_be(cta::TIMEOUT, 300)?;
            w.nest(cta::HELP, |w| w.attr_str(sub::HELP_NAME, "tftp"))
        });
        out.note(format!("create udp with CTA_HELP tftp: {}", r.describe()));
        let sip = Tuple::new(
            v4(192, 0, 2, 1),
            v4(198, 51, 100, 60),
            L4::Ports(IPPROTO_UDP, 5060, 5060),
        );
        let r = lab.create(&sip, |w| {
            w.attr_u32_be(cta::STATUS, STATUS_ESTABLISHED)?;
            w.attr_u32_be(cta::TIMEOUT, 300)?;
            w.nest(cta::HELP, |w| w.attr_str(sub::HELP_NAME, "sip"))
        });
        out.note(format!("create udp with CTA_HELP sip: {}", r.describe()));
        out.save_reply("dump_helper", &lab.dump(ct(ct_msg::GET), AF_UNSPEC));
        let r = lab.create(&tcp4(5), |w| {
            est(w)?;
            w.nest(cta::HELP, |w| w.attr_str(sub::HELP_NAME, "nosuch"))
        });
        out.save_reply("error_helper_unknown", &r);
        let r = lab.create(&tcp4(6), |w| {
            est(w)?;
            w.nest(cta::HELP, |w| w.attr_str(sub::HELP_NAME, "tftp"))
        });
        out.save_reply("error_helper_wrong_proto", &r);
        // Changing the helper of an entry that has one.
        let r = lab.req(ct(ct_msg::NEW), UPDATE, nfgen(AF_INET), |w| {
            put_tuple(w, cta::TUPLE_ORIG, &ftp4)?;
            w.nest(cta::HELP, |w| w.attr_str(sub::HELP_NAME, "irc"))
        });
        out.save_reply("error_helper_change", &r);
    }
    // NAT by request.
    nat_request(out, true);
    nat_request(out, false);
    // Seq adjust, synproxy, secmark.
    {
        let mut lab = Lab::new("seqadj");
        let r = lab.create(&tcp4(1), |w| {
            est(w)?;
            for (kind, pos, before, after) in [
                (cta::SEQ_ADJ_ORIG, 1000u32, 0u32, 10u32),
                (cta::SEQ_ADJ_REPLY, 2000, 0, 0xffff_fff6),
            ] {
                w.nest(kind, |w| {
                    w.attr_u32_be(sub::SEQADJ_CORRECTION_POS, pos)?;
                    w.attr_u32_be(sub::SEQADJ_OFFSET_BEFORE, before)?;
                    w.attr_u32_be(sub::SEQADJ_OFFSET_AFTER, after)
                })?;
            }
            Ok(())
        });
        out.save_reply("ack_create_seqadj", &r);
        out.save_reply("dump_seqadj", &lab.dump(ct(ct_msg::GET), AF_UNSPEC));

        let mut lab = Lab::new("synproxy");
        let r = lab.create(&tcp4(1), |w| {
            est(w)?;
            w.nest(cta::SYNPROXY, |w| {
                w.attr_u32_be(sub::SYNPROXY_ISN, 0x1000_0000)?;
                w.attr_u32_be(sub::SYNPROXY_ITS, 0x2000_0000)?;
                w.attr_u32_be(sub::SYNPROXY_TSOFF, 0x30)
            })
        });
        out.save_reply("ack_create_synproxy", &r);
        out.save_reply("dump_synproxy", &lab.dump(ct(ct_msg::GET), AF_UNSPEC));

        let mut lab = Lab::new("secmark");
        let r = lab.create(&tcp4(1), |w| {
            est(w)?;
            w.attr_u32_be(cta::SECMARK, 5)
        });
        out.note(format!("create with CTA_SECMARK 5: {}", r.describe()));
        let d = lab.dump(ct(ct_msg::GET), AF_UNSPEC);
        let has = d.has_attr(cta::SECMARK) || d.has_attr(19);
        out.note(format!(
            "dump after CTA_SECMARK create shows CTA_SECMARK/CTA_SECCTX: {has}"
        ));
    }
}

/// CT_NEW with CTA_NAT_SRC / CTA_NAT_DST, with or without nat chains loaded.
fn nat_request(out: &mut Out, hooks: bool) {
    let tag = if hooks { "natreq" } else { "natnohooks" };
    let mut lab = Lab::new(tag);
    if hooks {
        lab.nft(
            "table ip nat {
  chain pre { type nat hook prerouting priority -100; }
  chain post { type nat hook postrouting priority 100; }
}
table ip6 nat {
  chain pre { type nat hook prerouting priority -100; }
  chain post { type nat hook postrouting priority 100; }
}
",
        );
    }
    let nat_v4 = |w: &mut Writer<'_>, kind: u16, ip: Ipv4Addr, port: u16| {
        w.nest(kind, |w| {
            w.attr(sub::NAT_V4_MINIP, &ip.octets())?;
            w.attr(sub::NAT_V4_MAXIP, &ip.octets())?;
            w.nest(sub::NAT_PROTO, |w| {
                w.attr_u16_be(sub::PROTONAT_PORT_MIN, port)?;
                w.attr_u16_be(sub::PROTONAT_PORT_MAX, port)
            })
        })
    };
    let r_src = lab.create(&tcp4(1), |w| {
        est(w)?;
        nat_v4(w, cta::NAT_SRC, Ipv4Addr::new(203, 0, 113, 1), 1000)
    });
    let r_dst = lab.create(&tcp4(2), |w| {
        est(w)?;
        nat_v4(w, cta::NAT_DST, Ipv4Addr::new(203, 0, 113, 2), 8080)
    });
    let r_both = lab.create(&tcp4(3), |w| {
        est(w)?;
        nat_v4(w, cta::NAT_SRC, Ipv4Addr::new(203, 0, 113, 1), 1001)?;
        nat_v4(w, cta::NAT_DST, Ipv4Addr::new(203, 0, 113, 2), 8081)
    });
    let r_v6 = lab.create(&tcp6(1), |w| {
        est(w)?;
        w.nest(cta::NAT_SRC, |w| {
            let ip = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0x99, 1).octets();
            w.attr(sub::NAT_V6_MINIP, &ip)?;
            w.attr(sub::NAT_V6_MAXIP, &ip)
        })
    });
    if hooks {
        out.save_reply("reply_create_nat_src", &r_src);
        out.save_reply("reply_create_nat_dst", &r_dst);
        out.save_reply("reply_create_nat_ipv6", &r_v6);
        out.note(format!(
            "create with NAT_SRC and NAT_DST: {}",
            r_both.describe()
        ));
        out.save_reply("dump_nat_request", &lab.dump(ct(ct_msg::GET), AF_UNSPEC));
    } else {
        out.save_reply("reply_create_nat_src_nohooks", &r_src);
        out.note(format!(
            "NAT by request without nat chains: src {} / dst {} / both {} / ipv6 {}",
            r_src.describe(),
            r_dst.describe(),
            r_both.describe(),
            r_v6.describe()
        ));
    }
}

/// NAT made by real traffic: DNAT and SNAT rules on lo.
fn nat_traffic(out: &mut Out) {
    let lab = Lab::new("nattraffic");
    lab.nft(RULES_CT);
    lab.nft(
        "table ip nat {
  chain out { type nat hook output priority -100; tcp dport 8080 dnat to 127.0.0.1:8081; udp dport 8090 dnat to 127.0.0.1:8091; }
  chain post { type nat hook postrouting priority 100; tcp dport 8082 snat to 127.0.0.5:40000-40010; }
}
table ip6 nat {
  chain out { type nat hook output priority -100; tcp dport 8080 dnat to [::1]:8081; }
  chain post { type nat hook postrouting priority 100; }
}
",
    );
    let t = lab.traffic(&[
        "tcp=127.0.0.1:8081>127.0.0.1:8080",
        "tcp=127.0.0.1:8082>127.0.0.1:8082",
        "udp=127.0.0.1:8091>127.0.0.1:8090",
        "tcp=[::1]:8081>[::1]:8080",
    ]);
    let mut lab = lab;
    out.save_reply("dump_nat_traffic", &lab.dump(ct(ct_msg::GET), AF_UNSPEC));
    t.stop();
}

/// Traffic that every family and protocol sees: ping, TCP, UDP on 127.0.0.1 and ::1.
const TRAFFIC: [&str; 4] = [
    "tcp=127.0.0.1:5001>127.0.0.1:5001",
    "tcp=[::1]:5001>[::1]:5001",
    "udp=127.0.0.1:5002>127.0.0.1:5002",
    "udp=[::1]:5002>[::1]:5002",
];

/// Real traffic with conntrack rules, without and with accounting and timestamps.
fn traffic(out: &mut Out) {
    {
        let mut lab = Lab::new("traffic");
        lab.nft(RULES_CT);
        lab.ping("127.0.0.1");
        lab.ping("::1");
        let t = lab.traffic(&TRAFFIC);
        out.save_reply("dump_traffic", &lab.dump(ct(ct_msg::GET), AF_UNSPEC));
        t.stop();
    }
    {
        let mut lab = Lab::new("acct");
        lab.ns.sysctl("net.netfilter.nf_conntrack_acct", "1");
        lab.ns.sysctl("net.netfilter.nf_conntrack_timestamp", "1");
        lab.nft(RULES_CT);
        let events = listener(
            &lab.ns,
            &[
                groups::CONNTRACK_NEW,
                groups::CONNTRACK_UPDATE,
                groups::CONNTRACK_DESTROY,
            ],
        );
        lab.ping("127.0.0.1");
        lab.ping("::1");
        let t = lab.traffic(&TRAFFIC);
        out.save_reply("dump_acct_tstamp", &lab.dump(ct(ct_msg::GET), AF_UNSPEC));
        out.save_reply(
            "dump_ctrzero",
            &lab.dump(ct(ct_msg::GET_CTRZERO), AF_UNSPEC),
        );
        out.save_reply("dump_after_ctrzero", &lab.dump(ct(ct_msg::GET), AF_UNSPEC));
        t.stop();
        // The TCP connections close (FIN exchange); then a flush destroys everything.
        std::thread::sleep(Duration::from_millis(200));
        let r = lab.req(ct(ct_msg::DELETE), UPDATE, nfgen(AF_UNSPEC), |_| Ok(()));
        assert!(r.is_ack(), "flush: {}", r.describe());
        out.save("events_traffic", &drain(&events));
    }
}

/// Events from CT_NEW-driven create, update, delete; and NLM_F_ECHO.
fn events(out: &mut Out) {
    let mut lab = Lab::new("events");
    let ev = listener(
        &lab.ns,
        &[
            groups::CONNTRACK_NEW,
            groups::CONNTRACK_UPDATE,
            groups::CONNTRACK_DESTROY,
        ],
    );
    lab.must_create(&tcp4(1), |w| {
        est(w)?;
        w.attr_u32_be(cta::MARK, 0x42)
    });
    let r = lab.req(ct(ct_msg::NEW), UPDATE, nfgen(AF_INET), |w| {
        put_tuple(w, cta::TUPLE_ORIG, &tcp4(1))?;
        w.attr_u32_be(cta::MARK, 0x43)
    });
    assert!(r.is_ack(), "update: {}", r.describe());
    let r = lab.req(ct(ct_msg::NEW), UPDATE, nfgen(AF_INET), |w| {
        put_tuple(w, cta::TUPLE_ORIG, &tcp4(1))?;
        w.attr_u32_be(cta::MARK, 0x100)?;
        w.attr_u32_be(cta::MARK_MASK, 0xff00)
    });
    out.note(format!("update with CTA_MARK_MASK: {}", r.describe()));
    let r = lab.req(ct(ct_msg::NEW), UPDATE, nfgen(AF_INET), |w| {
        put_tuple(w, cta::TUPLE_ORIG, &tcp4(1))?;
        w.attr_u32_be(cta::TIMEOUT, 1000)
    });
    out.note(format!("update timeout: {}", r.describe()));
    let r = lab.req(ct(ct_msg::DELETE), UPDATE, nfgen(AF_INET), |w| {
        put_tuple(w, cta::TUPLE_ORIG, &tcp4(1))
    });
    assert!(r.is_ack(), "delete: {}", r.describe());
    let udp6 = Tuple::new(v6(1, 1), v6(2, 53), L4::Ports(IPPROTO_UDP, 50000, 53));
    lab.must_create(&udp6, |w| {
        w.attr_u32_be(cta::STATUS, STATUS_ESTABLISHED)?;
        w.attr_u32_be(cta::TIMEOUT, 30)
    });
    let r = lab.req(ct(ct_msg::DELETE), UPDATE, nfgen(AF_UNSPEC), |_| Ok(()));
    assert!(r.is_ack(), "flush: {}", r.describe());
    out.save("events_ct", &drain(&ev));

    // NLM_F_ECHO: the requester gets the event too.
    let r = lab.req(ct(ct_msg::NEW), CREATE | flags::ECHO, nfgen(AF_INET), |w| {
        put_tuples(w, &tcp4(2), &tcp4(2).reply())?;
        est(w)
    });
    out.save_reply("echo_create", &r);
    drain(&ev);
    drop(ev);
    // The same without any listener in the namespace.
    let mut quiet = Lab::new("echo");
    let r = quiet.req(ct(ct_msg::NEW), CREATE | flags::ECHO, nfgen(AF_INET), |w| {
        put_tuples(w, &tcp4(2), &tcp4(2).reply())?;
        est(w)
    });
    out.save_reply("echo_create_nolistener", &r);
}

/// Statistics, special lists, GET by tuple, delete and flush.
fn stats(out: &mut Out) {
    let mut lab = Lab::new("stats");
    for i in 0..3 {
        lab.must_create(&tcp4(i), est);
    }
    lab.must_create(&tcp6(0), est);
    out.save_reply("stats_cpu", &lab.dump(ct(ct_msg::GET_STATS_CPU), AF_UNSPEC));
    out.save_reply(
        "stats",
        &lab.req(
            ct(ct_msg::GET_STATS),
            flags::REQUEST,
            nfgen(AF_UNSPEC),
            |_| Ok(()),
        ),
    );
    out.save_reply(
        "stats_ack",
        &lab.req(ct(ct_msg::GET_STATS), UPDATE, nfgen(AF_UNSPEC), |_| Ok(())),
    );
    let r = lab.dump(exp(exp_msg::GET_STATS_CPU), AF_UNSPEC);
    let kinds: BTreeSet<String> = r
        .dgrams
        .iter()
        .flat_map(|d| {
            Messages::new(d)
                .flatten()
                .map(|m| format!("0x{:04x}", m.kind()))
        })
        .collect();
    out.note(format!("EXP_GET_STATS_CPU reply nlmsg_types: {kinds:?}"));
    out.save_as("exp_stats_cpu", &r.dgrams, true);
    out.save_reply("dump_dying", &lab.dump(ct(ct_msg::GET_DYING), AF_UNSPEC));
    out.save_reply(
        "dump_unconfirmed",
        &lab.dump(ct(ct_msg::GET_UNCONFIRMED), AF_UNSPEC),
    );
    let get = |lab: &mut Lab, fl: u16, t: &Tuple| {
        lab.req(ct(ct_msg::GET), fl, nfgen(t.family()), |w| {
            put_tuple(w, cta::TUPLE_ORIG, t)
        })
    };
    out.save_reply("get_ipv4_tcp", &get(&mut lab, flags::REQUEST, &tcp4(0)));
    out.save_reply("get_ipv4_tcp_ack", &get(&mut lab, UPDATE, &tcp4(0)));
    out.save_reply("get_ipv6_tcp", &get(&mut lab, flags::REQUEST, &tcp6(0)));
    let r = lab.req(ct(ct_msg::GET), flags::REQUEST, nfgen(AF_INET), |w| {
        put_tuple(w, cta::TUPLE_REPLY, &tcp4(0).reply())
    });
    out.note(format!("GET by reply tuple: {}", r.describe()));
    out.save_reply(
        "error_get_enoent",
        &get(&mut lab, flags::REQUEST, &tcp4(99)),
    );
    let r = lab.req(ct(ct_msg::NEW), UPDATE, nfgen(AF_INET), |w| {
        put_tuple(w, cta::TUPLE_ORIG, &tcp4(0))?;
        w.attr_u32_be(cta::MARK, 7)
    });
    out.save_reply("ack_update", &r);
    let del = |lab: &mut Lab, t: &Tuple| {
        lab.req(ct(ct_msg::DELETE), UPDATE, nfgen(t.family()), |w| {
            put_tuple(w, cta::TUPLE_ORIG, t)
        })
    };
    out.save_reply("ack_delete", &del(&mut lab, &tcp4(0)));
    out.save_reply("error_delete_enoent", &del(&mut lab, &tcp4(0)));
    // Flush of one family (nfgenmsg version 1), then of everything (version 0, family 0).
    let r = lab.req(
        ct(ct_msg::DELETE),
        UPDATE,
        NfGenMsg {
            family: AF_INET,
            version: NFNETLINK_V1,
            res_id: 0,
        },
        |_| Ok(()),
    );
    out.save_reply("ack_flush_ipv4_v1", &r);
    let n = lab.dump(ct(ct_msg::GET), AF_UNSPEC).entries();
    out.note(format!(
        "after a v1 AF_INET flush, {n} entries are left (1 IPv6 expected)"
    ));
    let r = lab.req(ct(ct_msg::DELETE), UPDATE, nfgen(AF_UNSPEC), |_| Ok(()));
    out.save_reply("ack_flush", &r);
    // A mark-filtered dump.
    lab.must_create(&tcp4(10), |w| {
        est(w)?;
        w.attr_u32_be(cta::MARK, 0x11)
    });
    lab.must_create(&tcp4(11), |w| {
        est(w)?;
        w.attr_u32_be(cta::MARK, 0x22)
    });
    lab.must_create(&tcp4(12), |w| {
        w.attr_u32_be(cta::STATUS, 0x8)?; // CONFIRMED only: not ASSURED
        w.attr_u32_be(cta::TIMEOUT, 300)?;
        w.attr_u32_be(cta::MARK, 0x22)
    });
    let r = lab.req(ct(ct_msg::GET), DUMP, nfgen(AF_UNSPEC), |w| {
        w.attr_u32_be(cta::MARK, 0x22)?;
        w.attr_u32_be(cta::MARK_MASK, 0xff)
    });
    out.save_reply("dump_filter_mark", &r);
    // A CTA_FILTER dump: match the original tuple's layer-4 protocol and destination port.
    let r = lab.req(ct(ct_msg::GET), DUMP, nfgen(AF_INET), |w| {
        w.nest(cta::TUPLE_ORIG, |w| {
            w.nest(tup::PROTO, |w| {
                w.attr_u8(tup::NUM, IPPROTO_TCP)?;
                w.attr_u16_be(tup::DST_PORT, 80)
            })
        })?;
        w.nest(cta::FILTER, |w| {
            // CTA_FILTER_F_CTA_PROTO_NUM (1 << 3) | CTA_FILTER_F_CTA_PROTO_DST_PORT (1 << 5)
            w.attr_u32_ne(sub::FILTER_ORIG_FLAGS, (1 << 3) | (1 << 5))?;
            w.attr_u32_ne(sub::FILTER_REPLY_FLAGS, 0)
        })
    });
    out.save_reply("dump_filter_tuple", &r);
    // The same with the ICMP code flag (1 << 7) instead of PROTO_NUM.
    let r = lab.req(ct(ct_msg::GET), DUMP, nfgen(AF_INET), |w| {
        w.nest(cta::TUPLE_ORIG, |w| {
            w.nest(tup::PROTO, |w| {
                w.attr_u8(tup::NUM, IPPROTO_TCP)?;
                w.attr_u16_be(tup::DST_PORT, 80)
            })
        })?;
        w.nest(cta::FILTER, |w| {
            w.attr_u32_ne(sub::FILTER_ORIG_FLAGS, (1 << 5) | (1 << 7))?;
            w.attr_u32_ne(sub::FILTER_REPLY_FLAGS, 0)
        })
    });
    out.save_reply("error_dump_filter_icmp_flag", &r);
    // Status filter: CTA_STATUS with CTA_STATUS_MASK (ASSURED).
    let r = lab.req(ct(ct_msg::GET), DUMP, nfgen(AF_UNSPEC), |w| {
        w.attr_u32_be(cta::STATUS, 0x4)?;
        w.attr_u32_be(26, 0x4)
    });
    out.save_reply("dump_filter_status", &r);
}

/// The expectation tuple and mask for a data connection `client -> server:port`.
fn put_expect(w: &mut Writer<'_>, client: IpAddr, server: IpAddr, port: u16) -> CResult<()> {
    put_tuple(
        w,
        exa::TUPLE,
        &Tuple::new(client, server, L4::Ports(IPPROTO_TCP, 0, port)),
    )?;
    let ones = match client {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::BROADCAST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from([0xff; 16])),
    };
    put_tuple(
        w,
        exa::MASK,
        &Tuple::new(ones, ones, L4::Ports(IPPROTO_TCP, 0, 0xffff)),
    )
}

/// Expectations: made by the kernel's FTP helper from real traffic, and made by request.
fn expectations(out: &mut Out) {
    {
        let mut lab = Lab::new("ftp");
        lab.nft(
            "table inet t {
  ct helper ftp-std { type \"ftp\" protocol tcp; }
  chain out { type filter hook output priority 0; tcp dport 21 ct helper set \"ftp-std\"; ct state new,established,related accept; }
  chain in { type filter hook input priority 0; ct state established,related,new accept; }
}
",
        );
        let ev = listener(&lab.ns, &[1, 2, 3, 4, 5, 6]);
        let t = lab.traffic(&["ftp-pasv=127.0.0.1:21", "ftp-epsv=[::1]:21"]);
        out.save_reply("dump_exp_ftp", &lab.dump(exp(exp_msg::GET), AF_UNSPEC));
        out.save_reply("dump_ftp_masters", &lab.dump(ct(ct_msg::GET), AF_UNSPEC));
        let r = lab.req(exp(exp_msg::DELETE), UPDATE, nfgen(AF_UNSPEC), |_| Ok(()));
        out.save_reply("ack_exp_flush", &r);
        t.stop();
        out.save("events_ftp", &drain(&ev));
    }
    {
        let mut lab = Lab::new("expreq");
        let ev = listener(
            &lab.ns,
            &[groups::EXP_NEW, groups::EXP_UPDATE, groups::EXP_DESTROY],
        );
        let c4 = v4(192, 0, 2, 1);
        let s4 = v4(198, 51, 100, 21);
        let c6 = v6(1, 1);
        let s6 = v6(2, 21);
        let m4 = Tuple::new(c4, s4, L4::Ports(IPPROTO_TCP, 40021, 21));
        let m6 = Tuple::new(c6, s6, L4::Ports(IPPROTO_TCP, 40021, 21));
        let nohelp = Tuple::new(c4, s4, L4::Ports(IPPROTO_TCP, 40022, 21));
        for m in [m4, m6] {
            lab.must_create(&m, |w| {
                est(w)?;
                w.nest(cta::HELP, |w| w.attr_str(sub::HELP_NAME, "ftp"))
            });
        }
        lab.must_create(&nohelp, est);
        // The ftp helper allows one expectation per master (a second one evicts the first),
        // so every variant below gets a master of its own.
        let mx = |i: u16| Tuple::new(c4, s4, L4::Ports(IPPROTO_TCP, 40100 + i, 21));
        for i in 1..14 {
            lab.must_create(&mx(i), |w| {
                est(w)?;
                w.nest(cta::HELP, |w| w.attr_str(sub::HELP_NAME, "ftp"))
            });
        }
        let new_exp = |lab: &mut Lab,
                       master: &Tuple,
                       port: u16,
                       extra: &dyn Fn(&mut Writer<'_>) -> CResult<()>| {
            let (client, server) = (master.src, master.dst);
            lab.req(exp(exp_msg::NEW), CREATE, nfgen(master.family()), |w| {
                put_tuple(w, exa::MASTER, master)?;
                put_expect(w, client, server, port)?;
                w.attr_u32_be(exa::TIMEOUT, 300)?;
                extra(w)
            })
        };
        let help = |w: &mut Writer<'_>| w.attr_str(exa::HELP_NAME, "ftp");
        out.save_reply("ack_exp_create", &new_exp(&mut lab, &m4, 50000, &help));
        let r = new_exp(&mut lab, &m6, 50000, &help);
        out.note(format!("EXP_NEW ipv6: {}", r.describe()));
        let r = new_exp(&mut lab, &m4, 50000, &help);
        out.save_reply("error_exp_eexist", &r);
        let r = new_exp(&mut lab, &mx(1), 50001, &|_| Ok(()));
        out.note(format!(
            "EXP_NEW without HELP_NAME (master has ftp): {}",
            r.describe()
        ));
        let r = new_exp(&mut lab, &mx(2), 50002, &|w| {
            help(w)?;
            w.attr_u32_be(exa::CLASS, 0)
        });
        out.note(format!("EXP_NEW with CLASS 0: {}", r.describe()));
        let r = new_exp(&mut lab, &mx(3), 50003, &|w| {
            help(w)?;
            w.attr_u32_be(exa::CLASS, 1)
        });
        out.save_reply("error_exp_class", &r);
        // NF_CT_EXPECT_PERMANENT (1) | NF_CT_EXPECT_INACTIVE (2) | NF_CT_EXPECT_USERSPACE (4).
        let r = new_exp(&mut lab, &mx(4), 50004, &|w| {
            help(w)?;
            w.attr_u32_be(exa::FLAGS, 0x3)
        });
        out.note(format!(
            "EXP_NEW with FLAGS PERMANENT|INACTIVE: {}",
            r.describe()
        ));
        let r = new_exp(&mut lab, &mx(5), 50005, &|w| {
            help(w)?;
            w.attr_u32_be(exa::FLAGS, 0x4)
        });
        out.note(format!("EXP_NEW with FLAGS USERSPACE: {}", r.describe()));
        let r = new_exp(&mut lab, &mx(6), 50006, &|w| {
            help(w)?;
            w.attr_str(exa::FN, "nat-follow-master")
        });
        out.note(format!(
            "EXP_NEW with FN nat-follow-master: {}",
            r.describe()
        ));
        let r = new_exp(&mut lab, &mx(7), 50007, &|w| {
            help(w)?;
            w.attr_str(exa::FN, "nosuch")
        });
        out.save_reply("error_exp_fn_unknown", &r);
        let r = new_exp(&mut lab, &mx(8), 50008, &|w| {
            help(w)?;
            w.nest(exa::NAT, |w| {
                w.attr_u32_be(exa::NAT_DIR, 1)?;
                put_tuple(
                    w,
                    exa::NAT_TUPLE,
                    &Tuple::new(v4(203, 0, 113, 9), s4, L4::Ports(IPPROTO_TCP, 0, 60000)),
                )
            })
        });
        out.note(format!("EXP_NEW with NAT (dir 1): {}", r.describe()));
        let r = new_exp(&mut lab, &mx(9), 50009, &|w| {
            help(w)?;
            w.attr_u16_be(exa::ZONE, 0)
        });
        out.note(format!("EXP_NEW with ZONE 0: {}", r.describe()));
        let r = new_exp(&mut lab, &nohelp, 50010, &|_| Ok(()));
        out.save_reply("error_exp_master_nohelper", &r);
        let r = new_exp(&mut lab, &nohelp, 50011, &help);
        out.note(format!(
            "EXP_NEW with HELP_NAME ftp on a helper-less master: {}",
            r.describe()
        ));
        let missing = Tuple::new(c4, s4, L4::Ports(IPPROTO_TCP, 49999, 21));
        let r = new_exp(&mut lab, &missing, 50012, &help);
        out.save_reply("error_exp_master_enoent", &r);
        let r = new_exp(&mut lab, &mx(13), 50013, &|w| {
            w.attr_str(exa::HELP_NAME, "nosuch")
        });
        out.save_reply("reply_exp_create_helper_unknown", &r);

        out.save_reply("dump_exp_request", &lab.dump(exp(exp_msg::GET), AF_UNSPEC));
        let exp_tuple = Tuple::new(c4, s4, L4::Ports(IPPROTO_TCP, 0, 50000));
        let r = lab.req(exp(exp_msg::GET), flags::REQUEST, nfgen(AF_INET), |w| {
            put_tuple(w, exa::TUPLE, &exp_tuple)
        });
        out.save_reply("get_exp", &r);
        let r = lab.req(exp(exp_msg::GET), flags::REQUEST, nfgen(AF_INET), |w| {
            put_tuple(w, exa::MASTER, &m4)
        });
        out.note(format!("EXP_GET by master: {}", r.describe()));
        let r = lab.req(exp(exp_msg::NEW), UPDATE, nfgen(AF_INET), |w| {
            put_tuple(w, exa::MASTER, &m4)?;
            put_expect(w, c4, s4, 50000)?;
            w.attr_u32_be(exa::TIMEOUT, 100)
        });
        out.save_reply("reply_exp_update", &r);
        let del = |lab: &mut Lab| {
            lab.req(exp(exp_msg::DELETE), UPDATE, nfgen(AF_INET), |w| {
                put_tuple(w, exa::TUPLE, &exp_tuple)
            })
        };
        out.save_reply("ack_exp_delete", &del(&mut lab));
        out.save_reply("error_exp_delete_enoent", &del(&mut lab));
        let r = lab.req(exp(exp_msg::DELETE), UPDATE, nfgen(AF_UNSPEC), |w| {
            w.attr_str(exa::HELP_NAME, "ftp")
        });
        out.note(format!("EXP_DELETE by HELP_NAME ftp: {}", r.describe()));
        out.save("events_exp", &drain(&ev));
        let d = lab.dump(exp(exp_msg::GET), AF_UNSPEC);
        out.note(format!(
            "expectations left after delete by helper name: {}",
            d.describe()
        ));
        // Deleting the master removes its expectations.
    }
}

/// Requests the kernel refuses, each recorded with its errno and extended ack.
fn errors(out: &mut Out) {
    let mut lab = Lab::new("errors");
    lab.must_create(&tcp4(0), est);
    let r = lab.create(&tcp4(1), |w| {
        w.attr_u32_be(cta::STATUS, 0x6)?; // SEEN_REPLY | ASSURED, no CONFIRMED
        w.attr_u32_be(cta::TIMEOUT, 300)
    });
    out.save_reply("error_create_unconfirmed_status", &r);
    let r = lab.create(&tcp4(2), |w| w.attr_u32_be(cta::TIMEOUT, 300));
    out.note(format!("create without CTA_STATUS: {}", r.describe()));
    let r = lab.create(&tcp4(3), |_| Ok(()));
    out.note(format!(
        "create without CTA_STATUS and CTA_TIMEOUT: {}",
        r.describe()
    ));
    let r = lab.req(ct(ct_msg::NEW), CREATE, nfgen(AF_INET), |w| {
        put_tuple(w, cta::TUPLE_ORIG, &tcp4(4))?;
        est(w)
    });
    out.save_reply("error_create_no_reply_tuple", &r);
    let r = lab.req(ct(ct_msg::NEW), CREATE, nfgen(AF_INET), |w| {
        put_tuple(w, cta::TUPLE_ORIG, &tcp4(5))?;
        put_tuple(w, cta::TUPLE_REPLY, &tcp4(5).reply())
    });
    out.note(format!("create with only the two tuples: {}", r.describe()));
    let r = lab.req(ct(ct_msg::NEW), CREATE, nfgen(AF_INET), |w| {
        w.nest(cta::TUPLE_ORIG, |w| {
            w.nest(tup::IP, |w| {
                w.attr(tup::V4_SRC, &[192, 0, 2, 1])?;
                w.attr(tup::V4_DST, &[198, 51, 100, 80])
            })
        })?;
        put_tuple(w, cta::TUPLE_REPLY, &tcp4(6).reply())?;
        est(w)
    });
    out.save_reply("error_tuple_no_proto", &r);
    let r = lab.req(ct(ct_msg::NEW), CREATE, nfgen(AF_INET), |w| {
        w.nest(cta::TUPLE_ORIG, |w| {
            w.nest(tup::PROTO, |w| put_l4(w, L4::Ports(IPPROTO_TCP, 30007, 80)))
        })?;
        put_tuple(w, cta::TUPLE_REPLY, &tcp4(7).reply())?;
        est(w)
    });
    out.save_reply("error_tuple_no_ip", &r);
    let r = lab.req(ct(ct_msg::NEW), CREATE, nfgen(AF_INET), |w| {
        w.nest(cta::TUPLE_ORIG, |w| {
            w.nest(tup::IP, |w| {
                w.attr(tup::V4_SRC, &[192, 0, 2, 1])?;
                w.attr(tup::V4_DST, &[198, 51, 100, 80])
            })?;
            w.nest(tup::PROTO, |w| {
                w.attr_u16_be(tup::SRC_PORT, 30008)?;
                w.attr_u16_be(tup::DST_PORT, 80)
            })
        })?;
        put_tuple(w, cta::TUPLE_REPLY, &tcp4(8).reply())?;
        est(w)
    });
    out.save_reply("error_proto_no_num", &r);
    let r = lab.req(ct(ct_msg::NEW), CREATE, nfgen(AF_INET), |w| {
        w.nest(cta::TUPLE_ORIG, |w| {
            w.nest(tup::IP, |w| {
                w.attr(tup::V4_SRC, &[192, 0, 2])?;
                w.attr(tup::V4_DST, &[198, 51, 100, 80])
            })?;
            w.nest(tup::PROTO, |w| put_l4(w, L4::Ports(IPPROTO_TCP, 30009, 80)))
        })?;
        put_tuple(w, cta::TUPLE_REPLY, &tcp4(9).reply())?;
        est(w)
    });
    out.save_reply("error_ip_short", &r);
    let r = lab.req(ct(ct_msg::NEW), CREATE, nfgen(AF_INET6), |w| {
        put_tuples(w, &tcp4(10), &tcp4(10).reply())?;
        est(w)
    });
    out.save_reply("error_family_mismatch", &r);
    let mixed = Tuple::new(
        v4(192, 0, 2, 1),
        v6(2, 80),
        L4::Ports(IPPROTO_TCP, 30011, 80),
    );
    let r = lab.create(&mixed, est);
    out.save_reply("error_tuple_mixed_families", &r);
    let r = lab.req(ct(8), UPDATE, nfgen(AF_INET), |_| Ok(()));
    out.save_reply("error_unknown_msg_type", &r);
    let r = lab.req(
        msg_type(Subsystem::Ctnetlink, 0x1f),
        UPDATE,
        nfgen(AF_INET),
        |_| Ok(()),
    );
    out.note(format!("ctnetlink message type 0x1f: {}", r.describe()));
    let r = lab.req(ct(ct_msg::NEW), UPDATE, nfgen(AF_INET), |w| {
        put_tuple(w, cta::TUPLE_ORIG, &tcp4(12))?;
        w.attr_u32_be(cta::MARK, 1)
    });
    out.save_reply("error_update_enoent", &r);
    let r = lab.req(ct(ct_msg::NEW), UPDATE, nfgen(AF_INET), |w| {
        put_tuple(w, cta::TUPLE_ORIG, &tcp4(0))?;
        w.attr_u32_be(cta::STATUS, 0x8) // clears SEEN_REPLY and ASSURED
    });
    out.save_reply("error_update_status", &r);
    let r = lab.req(ct(ct_msg::NEW), UPDATE, nfgen(AF_INET), |w| {
        put_tuple(w, cta::TUPLE_ORIG, &tcp4(0))?;
        w.attr_u32_be(cta::STATUS, 0xe | 0x10) // adds SRC_NAT
    });
    out.note(format!("update status adding SRC_NAT: {}", r.describe()));
    let r = lab.req(ct(ct_msg::NEW), UPDATE, nfgen(AF_INET), |w| {
        put_tuple(w, cta::TUPLE_ORIG, &tcp4(0))?;
        w.attr_u32_be(cta::STATUS, 0xe | 0x400) // adds FIXED_TIMEOUT
    });
    out.note(format!(
        "update status adding FIXED_TIMEOUT: {}",
        r.describe()
    ));
    let r = lab.create(&tcp4(13), |w| {
        est(w)?;
        w.attr_u32_be(cta::ZONE, 7)
    });
    out.save_reply("reply_create_zone_u32", &r);
    let d = lab.req(ct(ct_msg::GET), flags::REQUEST, nfgen(AF_INET), |w| {
        put_tuple(w, cta::TUPLE_ORIG, &tcp4(13))
    });
    out.note(format!(
        "entry created with a 4-byte CTA_ZONE (be32 7): GET without zone finds it: {}; CTA_ZONE in it: {}",
        d.entries() == 1,
        d.has_attr(cta::ZONE)
    ));
    let r = lab.create(&tcp4(14), |w| {
        est(w)?;
        w.nest(cta::HELP, |w| {
            w.attr_str(sub::HELP_NAME, "x".repeat(40).as_str())
        })
    });
    out.save_reply("error_helper_name_too_long", &r);
    let r = lab.create(&tcp4(15), |w| {
        est(w)?;
        w.attr_u32_be(60, 1)
    });
    out.save_reply("reply_create_unknown_attr", &r);
    let r = lab.req(ct(ct_msg::NEW), CREATE, nfgen(AF_INET), |w| {
        nest_unflagged(w, cta::TUPLE_ORIG, |w| {
            nest_unflagged(w, tup::IP, |w| {
                w.attr(tup::V4_SRC, &[192, 0, 2, 1])?;
                w.attr(tup::V4_DST, &[198, 51, 100, 80])
            })?;
            nest_unflagged(w, tup::PROTO, |w| {
                put_l4(w, L4::Ports(IPPROTO_TCP, 30016, 80))
            })
        })?;
        put_tuple(w, cta::TUPLE_REPLY, &tcp4(16).reply())?;
        est(w)
    });
    out.save_reply("reply_create_unflagged_nests", &r);
    let r = lab.req(ct(ct_msg::NEW), CREATE, nfgen(AF_INET), |w| {
        put_tuples(w, &tcp4(17), &tcp4(17).reply())?;
        w.attr_u32_be(cta::STATUS, STATUS_ESTABLISHED)?;
        w.attr_u32_be(cta::TIMEOUT, 300)?;
        w.nest(cta::PROTOINFO, |w| {
            w.nest(sub::PROTOINFO_TCP, |w| w.attr_u8(sub::TCP_STATE, 200))
        })
    });
    out.save_reply("error_tcp_state_invalid", &r);
    let r = lab.req(ct(ct_msg::GET), DUMP, nfgen(AF_INET), |w| {
        w.nest(cta::FILTER, |w| {
            w.attr_u32_ne(sub::FILTER_ORIG_FLAGS, 0x8000_0000)
        })
    });
    out.save_reply("error_dump_filter_flags", &r);
    let r = lab.req(ct(ct_msg::GET), DUMP, nfgen(AF_INET), |w| {
        w.attr_u32_be(cta::STATUS, STATUS_ESTABLISHED)
    });
    out.note(format!(
        "dump with CTA_STATUS but no CTA_STATUS_MASK: {} entries of {}",
        r.entries(),
        lab.dump(ct(ct_msg::GET), AF_INET).entries()
    ));
    let before = lab.dump(ct(ct_msg::GET), AF_UNSPEC).entries();
    let r = lab.req(ct(ct_msg::DELETE), UPDATE, nfgen(AF_INET), |w| {
        w.attr_u32_be(12, 0x1234_5678) // CTA_ID alone
    });
    let after = lab.dump(ct(ct_msg::GET), AF_UNSPEC).entries();
    out.save_reply("ack_delete_id_only", &r);
    out.note(format!(
        "delete with CTA_ID alone (no tuple): {}; entries before {before}, after {after}",
        r.describe()
    ));
    lab.must_create(&tcp4(0), est);
    let r = lab.req(ct(ct_msg::GET), flags::REQUEST, nfgen(AF_INET), |_| Ok(()));
    out.save_reply("error_get_no_tuple", &r);
    // A top-level nest attribute too short to hold an attribute.
    let r = lab.req(ct(ct_msg::NEW), CREATE, nfgen(AF_INET), |w| {
        w.attr(cta::TUPLE_ORIG, &[1, 2])?;
        put_tuple(w, cta::TUPLE_REPLY, &tcp4(23).reply())?;
        est(w)
    });
    out.save_reply("error_tuple_orig_short", &r);
    // Four bytes after the last attribute that do not form one (nla_len 0xcdab).
    let r = lab.create(&tcp4(24), |w| {
        est(w)?;
        w.raw(&[0xab, 0xcd])
    });
    out.save_reply("reply_create_trailing_bytes", &r);
    // A message without nfgenmsg.
    let seq = lab.next_seq();
    let mut req = build(ct(ct_msg::GET), UPDATE, seq, nfgen(AF_INET), |_| Ok(()));
    req.truncate(16);
    req[..4].copy_from_slice(&16u32.to_ne_bytes());
    let r = exchange(&lab.sock, &req);
    out.save_reply("reply_get_no_nfgenmsg", &r);
    // Expectation string attributes are validated at the top level (NLA_NUL_STRING).
    let master = Tuple::new(
        v4(192, 0, 2, 1),
        v4(198, 51, 100, 21),
        L4::Ports(IPPROTO_TCP, 40021, 21),
    );
    lab.must_create(&master, |w| {
        est(w)?;
        w.nest(cta::HELP, |w| w.attr_str(sub::HELP_NAME, "ftp"))
    });
    let exp_with = |lab: &mut Lab, port: u16, name: &[u8]| {
        lab.req(exp(exp_msg::NEW), CREATE, nfgen(AF_INET), |w| {
            put_tuple(w, exa::MASTER, &master)?;
            put_expect(w, master.src, master.dst, port)?;
            w.attr_u32_be(exa::TIMEOUT, 300)?;
            w.attr(exa::HELP_NAME, name)
        })
    };
    out.save_reply(
        "error_exp_helper_name_no_nul",
        &exp_with(&mut lab, 50000, b"ftp"),
    );
    let long = [b'x'; 40];
    let mut long_nul = long.to_vec();
    long_nul.push(0);
    out.save_reply(
        "error_exp_helper_name_too_long",
        &exp_with(&mut lab, 50001, &long_nul),
    );
    // Two creates in one datagram: how the ACKs come back.
    let a = build(ct(ct_msg::NEW), CREATE, 9001, nfgen(AF_INET), |w| {
        put_tuples(w, &tcp4(20), &tcp4(20).reply())?;
        est(w)
    });
    let b = build(ct(ct_msg::NEW), CREATE, 9002, nfgen(AF_INET), |w| {
        put_tuples(w, &tcp4(20), &tcp4(20).reply())?;
        est(w)
    });
    let r = exchange_n(&lab.sock, &[a, b].concat(), 2);
    out.save_reply("batch_two_creates", &r);
    // NETLINK_CAP_ACK: errors no longer echo the request's payload.
    sockopt::set_int(&lab.sock, nlsock::SOL_NETLINK, nlsock::NETLINK_CAP_ACK, 1).expect("CAP_ACK");
    let r = lab.create(&tcp4(0), est);
    out.save_reply("error_eexist_cap_ack", &r);
    let r = lab.create(&tcp4(21), |w| {
        est(w)?;
        w.attr_u16_be(cta::TIMEOUT, 1)
    });
    out.save_reply("error_extack_cap_ack", &r);
    sockopt::set_int(&lab.sock, nlsock::SOL_NETLINK, nlsock::NETLINK_CAP_ACK, 0).expect("CAP_ACK");
    // Without NETLINK_EXT_ACK.
    lab.sock.set_ext_ack(false).expect("EXT_ACK off");
    let r = lab.create(&tcp4(22), |w| {
        est(w)?;
        w.attr_u16_be(cta::TIMEOUT, 1)
    });
    out.save_reply("error_no_ext_ack", &r);
}

/// 2000 IPv4 TCP entries: a dump that spans many datagrams.
fn big_dump(out: &mut Out) {
    let mut lab = Lab::new("big");
    for i in 0..2000u16 {
        let t = Tuple::new(
            v4(192, 0, 2, 1 + (i / 250) as u8),
            v4(198, 51, 100, 1),
            L4::Ports(IPPROTO_TCP, 20000 + i, 443),
        );
        lab.must_create(&t, est);
    }
    out.save_reply("dump_ipv4_tcp_2000", &lab.dump(ct(ct_msg::GET), AF_INET));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--traffic") {
        traffic_main(&args[2..]);
        return;
    }
    let dir: PathBuf = args.get(1).map(PathBuf::from).unwrap_or_else(|| {
        eprintln!("usage: capture-fixtures OUTDIR");
        std::process::exit(2);
    });
    fs::create_dir_all(&dir).expect("create output directory");
    let mut out = Out {
        dir,
        names: BTreeSet::new(),
        total: 0,
        notes: Vec::new(),
    };
    legacy(&mut out);
    protocols(&mut out);
    features(&mut out);
    nat_traffic(&mut out);
    traffic(&mut out);
    events(&mut out);
    stats(&mut out);
    expectations(&mut out);
    errors(&mut out);
    big_dump(&mut out);
    println!(
        "{} files, {} bytes in {}",
        out.names.len(),
        out.total,
        Path::new(&out.dir).display()
    );
    println!("notes:");
    for n in &out.notes {
        println!("  {n}");
    }
}
