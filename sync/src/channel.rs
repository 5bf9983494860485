//! Dedicated links: conntrackd's `UDP`, `Multicast` and `TCP` channels, each made of the
//! sockets conntrackd makes for it, with its options (`Checksum`, `SndSocketBuffer`,
//! `RcvSocketBuffer`, `Interface`, `IPv4_interface`).
//!
//! - **UDP**: a receiving socket bound to the local address and port, and a sending socket
//!   of its own (an ephemeral port), which sends to the destination address and port.
//!   Datagrams from any other address than the destination are dropped and counted.
//! - **Multicast**: a receiving socket bound to the port on every address, member of the
//!   group on the interface (`IPv4_interface`'s address, or `Interface`'s index for IPv6),
//!   and a sending socket that sends to the group through that interface without looping
//!   its own datagrams back.
//! - **TCP**: each side listens on its address and port and connects to the peer's; a node
//!   sends on the connection it made and receives on the one it accepted (a new connection
//!   replaces the one before). The stream carries the messages back to back, nothing else:
//!   a read may end inside a message, which is kept for the next read. What cannot be sent
//!   (no connection yet, a full socket) waits in an error queue of `ErrorQueueLength`
//!   datagrams, the oldest dropped first; a datagram cut by a broken connection is dropped
//!   whole, so that the next connection starts at a message boundary.
//!
//! The largest datagram is the interface's MTU less 28 bytes (IP and UDP headers) or 40
//! (IP and TCP), as in conntrackd.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, TcpListener, TcpStream, UdpSocket,
};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, connect, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, MsgFlags, SockFlag,
    SockType, SockaddrStorage,
};

use crate::engine::Engine;

/// How a dedicated link carries the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `UDP { }`: unicast datagrams.
    Udp,
    /// `Multicast { }`: datagrams to a group.
    Multicast,
    /// `TCP { }`: a stream each way.
    Tcp,
}

impl Transport {
    /// conntrackd's name in `-s link` (`UDP`, `multicast`, `TCP`).
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Multicast => "multicast",
            Transport::Tcp => "TCP",
        }
    }

    /// The IP and transport header bytes conntrackd takes off the MTU.
    fn header_len(self) -> usize {
        match self {
            Transport::Tcp => 40,
            _ => 28,
        }
    }
}

/// One `UDP`, `Multicast` or `TCP` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    /// The transport.
    pub transport: Transport,
    /// UDP and TCP: the local address to bind (`IPv4_address`/`IPv6_address`); multicast:
    /// the group.
    pub address: IpAddr,
    /// UDP and TCP: the peer's address (`IPv4_Destination_Address`/...).
    pub peer: Option<IpAddr>,
    /// `Port` (UDP, TCP) or `Group` (multicast).
    pub port: u16,
    /// `Interface`: the link's device (MTU, link state, IPv6 multicast and scope).
    pub interface: Option<String>,
    /// `IPv4_interface` (multicast): the address of the interface to join and send on.
    pub ipv4_interface: Option<Ipv4Addr>,
    /// `Checksum on|off` (UDP checksums of sent datagrams; on by default).
    pub checksum: bool,
    /// `SndSocketBuffer` in bytes (0: the system's default).
    pub sndbuf: usize,
    /// `RcvSocketBuffer` in bytes (0: the system's default).
    pub rcvbuf: usize,
    /// `... Default { }`: the link used first.
    pub default: bool,
    /// `TCP { ErrorQueueLength }`: datagrams kept while the connection cannot take them.
    pub error_queue_len: usize,
}

impl ChannelConfig {
    fn base(transport: Transport, address: IpAddr, port: u16) -> ChannelConfig {
        ChannelConfig {
            transport,
            address,
            peer: None,
            port,
            interface: None,
            ipv4_interface: None,
            checksum: true,
            sndbuf: 0,
            rcvbuf: 0,
            default: false,
            error_queue_len: 128,
        }
    }

    /// A UDP link from `local` to `peer` (both with the port).
    pub fn udp(local: SocketAddr, peer: SocketAddr) -> ChannelConfig {
        ChannelConfig {
            peer: Some(peer.ip()),
            ..Self::base(Transport::Udp, local.ip(), local.port())
        }
    }

    /// A TCP link: listen on `local`, connect to `peer`.
    pub fn tcp(local: SocketAddr, peer: SocketAddr) -> ChannelConfig {
        ChannelConfig {
            peer: Some(peer.ip()),
            ..Self::base(Transport::Tcp, local.ip(), local.port())
        }
    }

    /// A multicast link on `group`:`port` through `interface`.
    pub fn multicast(group: IpAddr, port: u16, interface: &str) -> ChannelConfig {
        ChannelConfig {
            interface: Some(interface.to_string()),
            ..Self::base(Transport::Multicast, group, port)
        }
    }

    /// The same, with `Interface`.
    pub fn on_interface(mut self, name: &str) -> ChannelConfig {
        self.interface = Some(name.to_string());
        self
    }
}

/// A link's traffic counters (`-s link`, `-s network`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_recv: u64,
    /// Datagrams (or stream writes) sent.
    pub packets_sent: u64,
    /// Datagrams (or stream reads) received.
    pub packets_recv: u64,
    /// Sends that failed (the datagram is lost, or waits in the TCP error queue).
    pub error_sent: u64,
    /// Receives that failed, and datagrams from a stranger (dropped).
    pub error_recv: u64,
}

fn sockaddr(ip: IpAddr, port: u16, scope: u32) -> SocketAddr {
    match ip {
        IpAddr::V4(a) => SocketAddr::new(IpAddr::V4(a), port),
        IpAddr::V6(a) => {
            let link_local = a.segments()[0] & 0xffc0 == 0xfe80;
            SocketAddr::V6(SocketAddrV6::new(
                a,
                port,
                0,
                if link_local { scope } else { 0 },
            ))
        }
    }
}

fn family(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

fn new_socket(ip: IpAddr, ty: SockType) -> io::Result<OwnedFd> {
    socket(
        family(ip),
        ty,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(io::Error::from)
}

fn bind_to(fd: &OwnedFd, addr: SocketAddr) -> io::Result<()> {
    setsockopt(fd, sockopt::ReuseAddr, &true).map_err(io::Error::from)?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr)).map_err(io::Error::from)
}

/// The send-side options every transport takes: checksum, send buffer.
fn sender_options(fd: &impl AsFd, cfg: &ChannelConfig) -> io::Result<()> {
    conntrack_io::net::set_no_check(fd, !cfg.checksum)?;
    if cfg.sndbuf > 0 {
        conntrack_io::net::force_send_buffer(fd, cfg.sndbuf)?;
    }
    Ok(())
}

fn receiver_options(fd: &impl AsFd, cfg: &ChannelConfig) -> io::Result<()> {
    if cfg.rcvbuf > 0 {
        conntrack_io::net::force_recv_buffer(fd, cfg.rcvbuf)?;
    }
    Ok(())
}

/// A stream the node sends on (its own connection to the peer's server).
#[derive(Debug)]
enum Client {
    /// Not connected; a connection attempt may be under way on this socket.
    Connecting(OwnedFd),
    Connected(OwnedFd),
    /// Nothing yet (the attempt failed; a new socket is made on the next try).
    Idle,
}

#[derive(Debug)]
struct TcpLink {
    listener: TcpListener,
    server: Option<TcpStream>,
    pending: Vec<u8>,
    client: Client,
    peer: SocketAddr,
    cfg: ChannelConfig,
    /// Datagrams waiting to be written, the first possibly started (`sent_of_first`).
    errorq: VecDeque<Vec<u8>>,
    sent_of_first: usize,
    errorq_full: u64,
}

#[derive(Debug)]
enum Sock {
    Dgram {
        tx: UdpSocket,
        rx: UdpSocket,
        dest: SocketAddr,
        only_from: Option<IpAddr>,
    },
    Tcp(Box<TcpLink>),
}

/// An open dedicated link.
#[derive(Debug)]
pub(crate) struct Channel {
    pub(crate) cfg: ChannelConfig,
    pub(crate) max_datagram: usize,
    sock: Sock,
    pub(crate) stats: LinkStats,
}

/// The most bytes one read takes (conntrackd's receive buffer is 64 KiB too).
const READ_MAX: usize = 65536;

impl Channel {
    /// Opens the sockets of a link in the calling thread's network namespace.
    ///
    /// # Errors
    /// A socket that cannot be made, bound, or given its options; an unknown interface.
    pub(crate) fn open(cfg: ChannelConfig) -> io::Result<Channel> {
        let (ifindex, mtu) = match &cfg.interface {
            Some(name) => (
                nix::net::if_::if_nametoindex(name.as_str()).map_err(io::Error::from)?,
                conntrack_io::net::interface_mtu(name)? as usize,
            ),
            None => (0, 1500),
        };
        let max_datagram = mtu.saturating_sub(cfg.transport.header_len()).max(64);
        let sock = match cfg.transport {
            Transport::Udp => {
                let peer = cfg
                    .peer
                    .ok_or_else(|| io::Error::other("UDP link without a destination address"))?;
                let rx = new_socket(cfg.address, SockType::Datagram)?;
                receiver_options(&rx, &cfg)?;
                bind_to(&rx, sockaddr(cfg.address, cfg.port, ifindex))?;
                let tx = new_socket(peer, SockType::Datagram)?;
                sender_options(&tx, &cfg)?;
                Sock::Dgram {
                    tx: UdpSocket::from(tx),
                    rx: UdpSocket::from(rx),
                    dest: sockaddr(peer, cfg.port, ifindex),
                    only_from: Some(peer),
                }
            }
            Transport::Multicast => {
                let group = cfg.address;
                let any = match group {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                };
                let rx = new_socket(group, SockType::Datagram)?;
                receiver_options(&rx, &cfg)?;
                bind_to(&rx, SocketAddr::new(any, cfg.port))?;
                let rx = UdpSocket::from(rx);
                let tx = new_socket(group, SockType::Datagram)?;
                sender_options(&tx, &cfg)?;
                let tx = UdpSocket::from(tx);
                match group {
                    IpAddr::V4(g) => {
                        let ifa = cfg.ipv4_interface.unwrap_or(Ipv4Addr::UNSPECIFIED);
                        rx.join_multicast_v4(&g, &ifa)?;
                        tx.set_multicast_loop_v4(false)?;
                        conntrack_io::net::set_multicast_if_v4(&tx, ifa)?;
                    }
                    IpAddr::V6(g) => {
                        rx.join_multicast_v6(&g, ifindex)?;
                        tx.set_multicast_loop_v6(false)?;
                        conntrack_io::net::set_multicast_if_v6(&tx, ifindex)?;
                    }
                }
                Sock::Dgram {
                    tx,
                    rx,
                    dest: sockaddr(group, cfg.port, ifindex),
                    only_from: None,
                }
            }
            Transport::Tcp => {
                let peer = cfg
                    .peer
                    .ok_or_else(|| io::Error::other("TCP link without a destination address"))?;
                let l = new_socket(cfg.address, SockType::Stream)?;
                setsockopt(&l, sockopt::KeepAlive, &true).map_err(io::Error::from)?;
                receiver_options(&l, &cfg)?;
                bind_to(&l, sockaddr(cfg.address, cfg.port, ifindex))?;
                listen(&l, Backlog::new(1).map_err(io::Error::from)?).map_err(io::Error::from)?;
                Sock::Tcp(Box::new(TcpLink {
                    listener: TcpListener::from(l),
                    server: None,
                    pending: Vec::new(),
                    client: Client::Idle,
                    peer: sockaddr(peer, cfg.port, ifindex),
                    cfg: cfg.clone(),
                    errorq: VecDeque::new(),
                    sent_of_first: 0,
                    errorq_full: 0,
                }))
            }
        };
        let mut ch = Channel {
            cfg,
            max_datagram,
            sock,
            stats: LinkStats::default(),
        };
        ch.tick();
        Ok(ch)
    }

    /// The descriptors to wait on for input.
    pub(crate) fn fds(&self) -> Vec<BorrowedFd<'_>> {
        match &self.sock {
            Sock::Dgram { rx, .. } => vec![rx.as_fd()],
            Sock::Tcp(t) => {
                let mut v = vec![t.listener.as_fd()];
                if let Some(s) = &t.server {
                    v.push(s.as_fd());
                }
                v
            }
        }
    }

    /// The options as the kernel has them now: (UDP checksums on, send buffer, receive
    /// buffer), for `-s link` and tests (for TCP, the send buffer of the connection made,
    /// 0 while there is none).
    pub(crate) fn socket_options(&self) -> (bool, usize, usize) {
        let sz = |r: nix::Result<usize>| r.unwrap_or(0);
        match &self.sock {
            Sock::Dgram { tx, rx, .. } => (
                !conntrack_io::net::no_check(tx).unwrap_or(false),
                sz(nix::sys::socket::getsockopt(tx, sockopt::SndBuf)),
                sz(nix::sys::socket::getsockopt(rx, sockopt::RcvBuf)),
            ),
            Sock::Tcp(t) => {
                let snd = match &t.client {
                    Client::Connected(fd) | Client::Connecting(fd) => {
                        sz(nix::sys::socket::getsockopt(fd, sockopt::SndBuf))
                    }
                    Client::Idle => 0,
                };
                (
                    self.cfg.checksum,
                    snd,
                    sz(nix::sys::socket::getsockopt(&t.listener, sockopt::RcvBuf)),
                )
            }
        }
    }

    /// The TCP error queue's length and the datagrams it dropped (0, 0 for datagrams).
    pub(crate) fn errorq(&self) -> (usize, u64) {
        match &self.sock {
            Sock::Tcp(t) => (t.errorq.len(), t.errorq_full),
            Sock::Dgram { .. } => (0, 0),
        }
    }

    /// Whether the TCP connections are up: (the one accepted, the one made).
    pub(crate) fn tcp_state(&self) -> Option<(bool, bool)> {
        match &self.sock {
            Sock::Tcp(t) => Some((t.server.is_some(), matches!(t.client, Client::Connected(_)))),
            Sock::Dgram { .. } => None,
        }
    }

    /// Housekeeping: TCP accepts and connection attempts, and the error queue.
    pub(crate) fn tick(&mut self) {
        let Sock::Tcp(t) = &mut self.sock else { return };
        while let Ok((s, _)) = t.listener.accept() {
            if s.set_nonblocking(true).is_ok() {
                // A new connection replaces the old one; what was half-read of the old
                // stream means nothing in the new one.
                t.server = Some(s);
                t.pending.clear();
            }
        }
        t.connect_step(&mut self.stats);
        t.flush(&mut self.stats);
    }

    /// Sends one datagram; false if it was lost (FTFW recovers it). TCP queues it.
    pub(crate) fn send(&mut self, d: &[u8]) -> bool {
        match &mut self.sock {
            Sock::Dgram { tx, dest, .. } => match tx.send_to(d, *dest) {
                Ok(n) => {
                    self.stats.bytes_sent += n as u64;
                    self.stats.packets_sent += 1;
                    true
                }
                Err(_) => {
                    self.stats.error_sent += 1;
                    false
                }
            },
            Sock::Tcp(t) => {
                let limit = self.cfg.error_queue_len.max(1);
                if t.errorq.len() >= limit {
                    // Full: the oldest datagram not yet started goes.
                    let victim = if t.sent_of_first > 0 { 1 } else { 0 };
                    if t.errorq.len() > victim {
                        t.errorq.remove(victim);
                        t.errorq_full += 1;
                    }
                }
                t.errorq.push_back(d.to_vec());
                t.connect_step(&mut self.stats);
                t.flush(&mut self.stats);
                true
            }
        }
    }

    /// Reads what is waiting and hands it to the engine; returns how many messages the
    /// engine accepted from this link (for the multichannel switch).
    pub(crate) fn read(&mut self, engine: &mut Engine, buf: &mut [u8], now_ms: u64) -> u64 {
        let before = engine.stats().rx_messages;
        match &mut self.sock {
            Sock::Dgram { rx, only_from, .. } => {
                for _ in 0..1024 {
                    match rx.recv_from(buf) {
                        Ok((n, from)) => {
                            if only_from.is_some_and(|p| p != from.ip()) {
                                self.stats.error_recv += 1;
                                continue;
                            }
                            self.stats.bytes_recv += n as u64;
                            self.stats.packets_recv += 1;
                            if let Some(d) = buf.get(..n) {
                                engine.on_datagram(d, now_ms);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => {
                            self.stats.error_recv += 1;
                            break;
                        }
                    }
                }
            }
            Sock::Tcp(t) => {
                let Some(s) = t.server.as_mut() else {
                    return 0;
                };
                for _ in 0..1024 {
                    let keep = t.pending.len();
                    let room = READ_MAX.min(buf.len());
                    if keep >= room {
                        // A message longer than a read: the stream is broken.
                        t.pending.clear();
                        t.server = None;
                        self.stats.error_recv += 1;
                        break;
                    }
                    buf[..keep].copy_from_slice(&t.pending);
                    match s.read(&mut buf[keep..room]) {
                        Ok(0) => {
                            // The peer closed: wait for its next connection.
                            t.server = None;
                            t.pending.clear();
                            break;
                        }
                        Ok(n) => {
                            self.stats.bytes_recv += n as u64;
                            self.stats.packets_recv += 1;
                            let total = keep + n;
                            let tail = engine.on_stream(&buf[..total], now_ms);
                            t.pending.clear();
                            t.pending.extend_from_slice(&buf[total - tail..total]);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => {
                            self.stats.error_recv += 1;
                            t.server = None;
                            t.pending.clear();
                            break;
                        }
                    }
                }
            }
        }
        engine.stats().rx_messages - before
    }
}

impl TcpLink {
    /// Moves the connection attempt on: a new socket when idle, `connect` again while it is
    /// under way (as conntrackd does on each send).
    fn connect_step(&mut self, stats: &mut LinkStats) {
        let fd = match std::mem::replace(&mut self.client, Client::Idle) {
            Client::Connected(fd) => {
                self.client = Client::Connected(fd);
                return;
            }
            Client::Connecting(fd) => fd,
            Client::Idle => match new_socket(self.peer.ip(), SockType::Stream)
                .and_then(|fd| sender_options(&fd, &self.cfg).map(|()| fd))
            {
                Ok(fd) => fd,
                Err(_) => {
                    stats.error_sent += 1;
                    return;
                }
            },
        };
        match connect(fd.as_raw_fd(), &SockaddrStorage::from(self.peer)) {
            Ok(()) | Err(Errno::EISCONN) => {
                self.sent_of_first = 0;
                self.client = Client::Connected(fd);
            }
            Err(Errno::EINPROGRESS | Errno::EALREADY | Errno::EINTR) => {
                self.client = Client::Connecting(fd);
            }
            Err(_) => {
                // Refused or unreachable: a new socket next time.
                self.client = Client::Idle;
            }
        }
    }

    /// Writes what the error queue holds, as far as the connection takes it.
    fn flush(&mut self, stats: &mut LinkStats) {
        while let Some(front) = self.errorq.front() {
            let Client::Connected(fd) = &self.client else {
                return;
            };
            let rest = front.get(self.sent_of_first..).unwrap_or(&[]);
            match nix::sys::socket::send(
                fd.as_raw_fd(),
                rest,
                MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(n) => {
                    stats.bytes_sent += n as u64;
                    if n == rest.len() {
                        stats.packets_sent += 1;
                        self.errorq.pop_front();
                        self.sent_of_first = 0;
                    } else {
                        self.sent_of_first += n;
                        return;
                    }
                }
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => continue,
                Err(_) => {
                    // Broken: a datagram cut in the middle cannot be finished on another
                    // connection; the rest waits for the next one.
                    stats.error_sent += 1;
                    if self.sent_of_first > 0 {
                        self.errorq.pop_front();
                        self.sent_of_first = 0;
                    }
                    self.client = Client::Idle;
                    return;
                }
            }
        }
    }
}
