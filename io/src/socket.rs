//! The `NETLINK_NETFILTER` socket: opening, options, and raw datagrams.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use conntrack_codec::nl::socket::{
    NETLINK_ADD_MEMBERSHIP, NETLINK_BROADCAST_ERROR, NETLINK_CAP_ACK, NETLINK_DROP_MEMBERSHIP,
    NETLINK_EXT_ACK, NETLINK_NO_ENOBUFS, SOL_NETLINK,
};
use conntrack_codec::session::SeqCounter;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::libc;
use nix::sys::socket::{
    bind, getsockname, getsockopt, recvmsg, sendto, setsockopt, socket, sockopt, AddressFamily,
    MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

use crate::error::{Error, Result};
use crate::filtering::KernelFilters;
use crate::sys;

/// One classic-BPF instruction (`struct sock_filter`), for [`Socket::attach_filter`].
pub type SockFilter = libc::sock_filter;

/// What one `recvmsg` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    /// Bytes stored in the caller's buffer.
    pub len: usize,
    /// The datagram's real size (larger than `len` when truncated).
    pub size: usize,
    /// Whether the datagram did not fit the buffer (`MSG_TRUNC`).
    pub truncated: bool,
    /// The sender's port id from the sender address (0 is the kernel; `u32::MAX` if the
    /// kernel gave no address).
    pub sender: u32,
    /// The multicast groups it was sent to, as a bit mask (0 for a unicast datagram).
    pub groups: u32,
}

/// What [`Socket::set_rcvbuf_report`] obtained.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RcvBuf {
    /// The size asked for.
    pub requested: usize,
    /// The effective size of the receive queue, as `SO_RCVBUF` reads it back (the kernel
    /// doubles the size it is given, for its bookkeeping).
    pub effective: usize,
    /// Whether `SO_RCVBUFFORCE` was accepted. `false`: it was refused (`EPERM`, no
    /// `CAP_NET_ADMIN` in the initial user namespace) and `SO_RCVBUF` was used instead, which
    /// caps the size at `net.core.rmem_max`.
    pub forced: bool,
}

/// How to open a [`Socket`]: buffer sizes and the acknowledgement options.
///
/// ```no_run
/// let sock = conntrack_io::Socket::builder()
///     .recv_buffer(128 * 1024)
///     .open_in_netns("/var/run/netns/test")?;
/// # Ok::<(), conntrack_io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Builder {
    recv_buffer: usize,
    send_buffer: usize,
    ext_ack: bool,
    cap_ack: bool,
}

impl Builder {
    /// The default receive buffer: twice the 32 KiB the kernel puts in one dump datagram.
    pub const DEFAULT_RECV_BUFFER: usize = 64 * 1024;
    /// The default send buffer: room for a few hundred requests per bulk datagram.
    pub const DEFAULT_SEND_BUFFER: usize = 64 * 1024;

    /// The defaults: 64 KiB buffers, `NETLINK_EXT_ACK` on, `NETLINK_CAP_ACK` off (the
    /// kernel's default; [`Socket::bulk`] turns it on for its own duration).
    pub const fn new() -> Self {
        Builder {
            recv_buffer: Self::DEFAULT_RECV_BUFFER,
            send_buffer: Self::DEFAULT_SEND_BUFFER,
            ext_ack: true,
            cap_ack: false,
        }
    }

    /// Sets the size of the receive buffer, allocated once when the socket opens. Every
    /// reply is parsed in place there; a datagram larger than it is reported as
    /// [`Error::Truncated`].
    pub const fn recv_buffer(mut self, bytes: usize) -> Self {
        self.recv_buffer = bytes;
        self
    }

    /// Sets the size of the send buffer, allocated once when the socket opens: the largest
    /// request, and how many bulk requests share one datagram.
    pub const fn send_buffer(mut self, bytes: usize) -> Self {
        self.send_buffer = bytes;
        self
    }

    /// Whether to ask for extended acknowledgements (`NETLINK_EXT_ACK`, default on): the
    /// kernel's error message and the offending attribute's offset.
    pub const fn ext_ack(mut self, on: bool) -> Self {
        self.ext_ack = on;
        self
    }

    /// Whether to cap error messages (`NETLINK_CAP_ACK`, default off): the kernel then does
    /// not echo the whole request in an error, so errors stay small, like ACKs.
    pub const fn cap_ack(mut self, on: bool) -> Self {
        self.cap_ack = on;
        self
    }

    /// Opens a socket in the caller's network namespace.
    ///
    /// # Errors
    /// [`Error::Sys`] from `socket`, `bind`, `getsockname` or `setsockopt`.
    pub fn open(&self) -> Result<Socket> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )
        .map_err(|e| Error::sys("socket", e))?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(|e| Error::sys("bind", e))?;
        let local: NetlinkAddr =
            getsockname(fd.as_raw_fd()).map_err(|e| Error::sys("getsockname", e))?;
        let sock = Socket::new(fd, local.pid(), self.recv_buffer, self.send_buffer);
        sock.set_ext_ack(self.ext_ack)?;
        sock.set_cap_ack(self.cap_ack)?;
        Ok(sock)
    }

    /// Opens a socket inside the network namespace at `path` (such as `/var/run/netns/NAME`
    /// or `/proc/PID/ns/net`); the calling thread's own namespace is left unchanged.
    ///
    /// # Errors
    /// [`Error::Sys`] from opening the path, from `setns` (needs `CAP_SYS_ADMIN`), or from
    /// opening the socket.
    pub fn open_in_netns(&self, path: impl AsRef<Path>) -> Result<Socket> {
        let ns = std::fs::File::open(path).map_err(|e| Error::sys("open", io_errno(&e)))?;
        self.open_in_netns_fd(ns.as_fd())
    }

    /// Opens a socket inside the network namespace that `ns` refers to.
    ///
    /// A short-lived thread enters the namespace and opens the socket there; a socket keeps
    /// the namespace it was created in.
    ///
    /// # Errors
    /// [`Error::Sys`] from `setns` (needs `CAP_SYS_ADMIN`), or from opening the socket.
    pub fn open_in_netns_fd(&self, ns: BorrowedFd<'_>) -> Result<Socket> {
        let ns = ns
            .try_clone_to_owned()
            .map_err(|e| Error::sys("dup", io_errno(&e)))?;
        let builder = *self;
        std::thread::scope(|scope| {
            let opened = scope
                .spawn(move || {
                    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(|e| Error::sys("setns", e))?;
                    builder.open()
                })
                .join();
            opened.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

/// Whether the network namespace `ns` is the calling thread's.
fn same_netns(ns: &OwnedFd) -> bool {
    use std::os::unix::fs::MetadataExt;
    let theirs = ns
        .try_clone()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata());
    let ours = std::fs::metadata("/proc/thread-self/ns/net");
    match (theirs, ours) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The errno of an `io::Error` from the standard library.
fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

/// A `NETLINK_NETFILTER` socket bound to an automatic port id, with its receive and send
/// buffers.
///
/// The request operations ([`execute`](Socket::execute), [`request`](Socket::request),
/// [`dump`](Socket::dump), [`bulk`](Socket::bulk)) live in this type too; see the crate
/// documentation.
#[derive(Debug)]
pub struct Socket {
    pub(crate) fd: OwnedFd,
    portid: u32,
    pub(crate) seqs: SeqCounter,
    pub(crate) rx: Box<[u8]>,
    pub(crate) tx: Box<[u8]>,
    pub(crate) foreign: u64,
    pub(crate) overruns: u64,
    pub(crate) kernel_filters: KernelFilters,
    /// A second socket in the same network namespace, opened on first need, for the
    /// requests made while a dump runs on this one.
    helper: Option<Box<Socket>>,
}

impl Socket {
    /// A socket over `fd`, bound to `portid`, with its buffers allocated.
    fn new(fd: OwnedFd, portid: u32, recv_buffer: usize, send_buffer: usize) -> Socket {
        Socket {
            fd,
            portid,
            seqs: SeqCounter::default(),
            rx: vec![0; recv_buffer].into_boxed_slice(),
            tx: vec![0; send_buffer].into_boxed_slice(),
            foreign: 0,
            overruns: 0,
            kernel_filters: KernelFilters::default(),
            helper: None,
        }
    }

    /// A socket over any datagram descriptor (a bound Unix datagram socket), with the
    /// default buffers: lets unit tests feed datagrams no kernel would send.
    #[cfg(test)]
    pub(crate) fn over(fd: OwnedFd) -> Socket {
        Socket::new(
            fd,
            1,
            Builder::DEFAULT_RECV_BUFFER,
            Builder::DEFAULT_SEND_BUFFER,
        )
    }

    /// A [`Builder`] with the defaults, to choose buffer sizes and options.
    pub const fn builder() -> Builder {
        Builder::new()
    }

    /// Opens a socket with the defaults in the caller's network namespace.
    ///
    /// # Errors
    /// See [`Builder::open`].
    pub fn open() -> Result<Self> {
        Builder::new().open()
    }

    /// Opens a socket with the defaults inside the network namespace at `path`.
    ///
    /// # Errors
    /// See [`Builder::open_in_netns`].
    pub fn open_in_netns(path: impl AsRef<Path>) -> Result<Self> {
        Builder::new().open_in_netns(path)
    }

    /// Opens a socket with the defaults inside the network namespace that `ns` refers to.
    ///
    /// # Errors
    /// See [`Builder::open_in_netns_fd`].
    pub fn open_in_netns_fd(ns: BorrowedFd<'_>) -> Result<Self> {
        Builder::new().open_in_netns_fd(ns)
    }

    /// The port id the kernel assigned to this socket.
    pub fn portid(&self) -> u32 {
        self.portid
    }

    /// The sequence number the next request will carry (each request takes one, a bulk
    /// operation one per request): for matching requests with what a capture (`nlmon`)
    /// shows, or for checking that nothing was sent.
    pub fn next_seq(&self) -> u32 {
        self.seqs.peek()
    }

    /// The size of the receive buffer in bytes.
    pub fn recv_buffer_len(&self) -> usize {
        self.rx.len()
    }

    /// The size of the send buffer in bytes.
    pub fn send_buffer_len(&self) -> usize {
        self.tx.len()
    }

    /// Sets which filter fields the socket leaves to the kernel (the default is
    /// [`KernelFilters::Auto`]); see [`crate::filtering`].
    pub fn set_kernel_filters(&mut self, policy: KernelFilters) {
        self.kernel_filters = policy;
    }

    /// Which filter fields the socket leaves to the kernel.
    pub fn kernel_filters(&self) -> KernelFilters {
        self.kernel_filters
    }

    /// Takes the second socket of this one, in the same network namespace, opening it the
    /// first time (with this socket's buffer sizes and filter policy); give it back with
    /// [`put_helper`](Socket::put_helper) so that it is kept for the next call.
    ///
    /// # Errors
    /// [`Error::Sys`] from `ioctl(SIOCGSKNS)` (Linux 4.9+), from entering the namespace, or
    /// from opening the socket.
    pub(crate) fn take_helper(&mut self) -> Result<Box<Socket>> {
        if let Some(h) = self.helper.take() {
            return Ok(h);
        }
        let ns = sys::netns_of(self.fd.as_fd()).map_err(|e| Error::sys("ioctl(SIOCGSKNS)", e))?;
        let builder = Builder::new()
            .recv_buffer(self.rx.len())
            .send_buffer(self.tx.len());
        let mut sock = if same_netns(&ns) {
            builder.open()?
        } else {
            builder.open_in_netns_fd(ns.as_fd())?
        };
        sock.kernel_filters = self.kernel_filters;
        Ok(Box::new(sock))
    }

    /// Keeps `helper` as this socket's second socket.
    pub(crate) fn put_helper(&mut self, helper: Box<Socket>) {
        self.helper = Some(helper);
    }

    /// How many messages were dropped because they did not come from the kernel or answered
    /// nothing being waited for (forged replies, stray events, late answers).
    pub fn foreign_dropped(&self) -> u64 {
        self.foreign
    }

    /// How many times the kernel reported a receive queue overrun (`ENOBUFS`) to a request
    /// operation of this socket: each time, one or more messages were lost.
    pub fn overruns(&self) -> u64 {
        self.overruns
    }

    /// How many messages the kernel could not queue to this socket since it was opened,
    /// because its receive queue was full: the socket's drop counter (`SO_MEMINFO`, the
    /// `Drops` column of `/proc/net/netlink`). For a socket subscribed to events, it is the
    /// exact number of events lost.
    ///
    /// # Errors
    /// [`Error::Sys`] from `getsockopt`.
    pub fn drops(&self) -> Result<u32> {
        sys::drops(self.fd.as_fd()).map_err(|e| Error::sys("getsockopt(SO_MEMINFO)", e))
    }

    /// Switches between blocking and non-blocking mode (`O_NONBLOCK`).
    ///
    /// It affects [`recv`](Socket::recv), which then returns [`Error::WouldBlock`] when
    /// nothing is queued. The request operations work the same in both modes.
    ///
    /// # Errors
    /// [`Error::Sys`] from `fcntl`.
    pub fn set_nonblocking(&self, on: bool) -> Result<()> {
        let bits = fcntl(self.fd.as_fd(), FcntlArg::F_GETFL)
            .map_err(|e| Error::sys("fcntl(F_GETFL)", e))?;
        let mut flags = OFlag::from_bits_retain(bits);
        flags.set(OFlag::O_NONBLOCK, on);
        fcntl(self.fd.as_fd(), FcntlArg::F_SETFL(flags))
            .map_err(|e| Error::sys("fcntl(F_SETFL)", e))?;
        Ok(())
    }

    /// Sizes the kernel's receive queue for this socket and returns the effective size.
    ///
    /// It tries `SO_RCVBUFFORCE` first, which may exceed `net.core.rmem_max` but needs
    /// `CAP_NET_ADMIN`, and falls back to `SO_RCVBUF` (capped at `rmem_max`) when that is
    /// refused. The kernel doubles the value for its bookkeeping; the size returned is what
    /// [`rcvbuf`](Socket::rcvbuf) reads back, so compare it with what was asked: it is
    /// smaller when the kernel capped the request.
    ///
    /// The option is a C `int`: a request above `i32::MAX` is clamped to it (never
    /// truncated: 2 GiB asked must not become 2 KiB), and the kernel then caps it at
    /// `INT_MAX / 2` before doubling, so the largest queue is just under 2 GiB.
    ///
    /// # Errors
    /// [`Error::Sys`] from `setsockopt` or `getsockopt`.
    pub fn set_rcvbuf(&self, bytes: usize) -> Result<usize> {
        self.set_rcvbuf_report(bytes).map(|r| r.effective)
    }

    /// Sizes the kernel's receive queue as [`set_rcvbuf`](Socket::set_rcvbuf) does, and
    /// reports how: the effective size, and whether `SO_RCVBUFFORCE` was accepted or refused
    /// (then `SO_RCVBUF` was used, and the size is capped at `net.core.rmem_max`).
    ///
    /// `SO_RCVBUFFORCE` needs `CAP_NET_ADMIN` in the initial user namespace: a process that
    /// holds it only in a user namespace of its own (a container's root) is refused, even
    /// though it may send requests and join the event groups of its network namespace.
    ///
    /// ```no_run
    /// let sock = conntrack_io::Socket::open()?;
    /// let got = sock.set_rcvbuf_report(32 << 20)?;
    /// if !got.forced {
    ///     eprintln!("receive queue capped by net.core.rmem_max: {} bytes", got.effective);
    /// }
    /// # Ok::<(), conntrack_io::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Sys`] from `setsockopt` or `getsockopt`.
    pub fn set_rcvbuf_report(&self, bytes: usize) -> Result<RcvBuf> {
        let requested = bytes;
        // Clamped, never truncated: see `set_rcvbuf`.
        let bytes = bytes.min(usize::try_from(i32::MAX).unwrap_or(usize::MAX));
        let forced = match setsockopt(&self.fd, sockopt::RcvBufForce, &bytes) {
            Ok(()) => true,
            Err(Errno::EPERM) => {
                setsockopt(&self.fd, sockopt::RcvBuf, &bytes)
                    .map_err(|e| Error::sys("setsockopt(SO_RCVBUF)", e))?;
                false
            }
            Err(e) => return Err(Error::sys("setsockopt(SO_RCVBUFFORCE)", e)),
        };
        Ok(RcvBuf {
            requested,
            effective: self.rcvbuf()?,
            forced,
        })
    }

    /// The effective size of the kernel's receive queue for this socket (`SO_RCVBUF`).
    ///
    /// # Errors
    /// [`Error::Sys`] from `getsockopt`.
    pub fn rcvbuf(&self) -> Result<usize> {
        getsockopt(&self.fd, sockopt::RcvBuf).map_err(|e| Error::sys("getsockopt(SO_RCVBUF)", e))
    }

    fn set_flag(&self, call: &'static str, name: i32, on: bool) -> Result<()> {
        sys::set_int(self.fd.as_fd(), SOL_NETLINK, name, i32::from(on))
            .map_err(|e| Error::sys(call, e))
    }

    fn flag(&self, call: &'static str, name: i32) -> Result<bool> {
        sys::get_int(self.fd.as_fd(), SOL_NETLINK, name)
            .map(|v| v != 0)
            .map_err(|e| Error::sys(call, e))
    }

    /// Turns extended acknowledgements on or off (`NETLINK_EXT_ACK`): errors then carry the
    /// kernel's explanation and the offset of the offending attribute.
    ///
    /// # Errors
    /// [`Error::Sys`] from `setsockopt`.
    pub fn set_ext_ack(&self, on: bool) -> Result<()> {
        self.set_flag("setsockopt(NETLINK_EXT_ACK)", NETLINK_EXT_ACK, on)
    }

    /// Whether extended acknowledgements are on.
    ///
    /// # Errors
    /// [`Error::Sys`] from `getsockopt`.
    pub fn ext_ack(&self) -> Result<bool> {
        self.flag("getsockopt(NETLINK_EXT_ACK)", NETLINK_EXT_ACK)
    }

    /// Turns capped errors on or off (`NETLINK_CAP_ACK`): with it, an error echoes only the
    /// request's header, so it is as small as an ACK (36 bytes plus extended-ack
    /// attributes).
    ///
    /// # Errors
    /// [`Error::Sys`] from `setsockopt`.
    pub fn set_cap_ack(&self, on: bool) -> Result<()> {
        self.set_flag("setsockopt(NETLINK_CAP_ACK)", NETLINK_CAP_ACK, on)
    }

    /// Whether capped errors are on.
    ///
    /// # Errors
    /// [`Error::Sys`] from `getsockopt`.
    pub fn cap_ack(&self) -> Result<bool> {
        self.flag("getsockopt(NETLINK_CAP_ACK)", NETLINK_CAP_ACK)
    }

    /// Turns `NETLINK_NO_ENOBUFS` on or off: with it, the kernel no longer reports receive
    /// queue overruns, so lost messages go unnoticed. Request operations then report a
    /// dropped answer as [`Error::NoAnswer`] instead of [`Error::Overrun`].
    ///
    /// # Errors
    /// [`Error::Sys`] from `setsockopt`.
    pub fn set_no_enobufs(&self, on: bool) -> Result<()> {
        self.set_flag("setsockopt(NETLINK_NO_ENOBUFS)", NETLINK_NO_ENOBUFS, on)
    }

    /// Whether `NETLINK_NO_ENOBUFS` is on.
    ///
    /// # Errors
    /// [`Error::Sys`] from `getsockopt`.
    pub fn no_enobufs(&self) -> Result<bool> {
        self.flag("getsockopt(NETLINK_NO_ENOBUFS)", NETLINK_NO_ENOBUFS)
    }

    /// Turns `NETLINK_BROADCAST_ERROR` on or off: with it, a multicast delivery that fails
    /// for this socket fails for the kernel's sender too, so conntrack keeps destroy events
    /// it could not deliver and retries them (conntrackd's reliable mode, together with
    /// `NETLINK_NO_ENOBUFS`).
    ///
    /// # Errors
    /// [`Error::Sys`] from `setsockopt`.
    pub fn set_broadcast_error(&self, on: bool) -> Result<()> {
        self.set_flag(
            "setsockopt(NETLINK_BROADCAST_ERROR)",
            NETLINK_BROADCAST_ERROR,
            on,
        )
    }

    /// Whether `NETLINK_BROADCAST_ERROR` is on.
    ///
    /// # Errors
    /// [`Error::Sys`] from `getsockopt`.
    pub fn broadcast_error(&self) -> Result<bool> {
        self.flag(
            "getsockopt(NETLINK_BROADCAST_ERROR)",
            NETLINK_BROADCAST_ERROR,
        )
    }

    /// Subscribes to a multicast group (`NETLINK_ADD_MEMBERSHIP`), such as
    /// [`groups::CONNTRACK_NEW`](conntrack_codec::nfnl::groups::CONNTRACK_NEW).
    ///
    /// # Errors
    /// [`Error::Sys`] from `setsockopt` (`EINVAL` for an unknown group, `EPERM` without
    /// the privilege the group needs).
    pub fn join_group(&self, group: u32) -> Result<()> {
        let group = i32::try_from(group).map_err(|_| Error::sys("join_group", Errno::EINVAL))?;
        sys::set_int(self.fd.as_fd(), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
            .map_err(|e| Error::sys("setsockopt(NETLINK_ADD_MEMBERSHIP)", e))
    }

    /// Unsubscribes from a multicast group (`NETLINK_DROP_MEMBERSHIP`).
    ///
    /// # Errors
    /// [`Error::Sys`] from `setsockopt`.
    pub fn leave_group(&self, group: u32) -> Result<()> {
        let group = i32::try_from(group).map_err(|_| Error::sys("leave_group", Errno::EINVAL))?;
        sys::set_int(self.fd.as_fd(), SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, group)
            .map_err(|e| Error::sys("setsockopt(NETLINK_DROP_MEMBERSHIP)", e))
    }

    /// Attaches a classic-BPF socket filter (`SO_ATTACH_FILTER`), replacing any earlier one.
    ///
    /// The filter sees every datagram queued to the socket, answers to requests included: a
    /// program that drops them makes request operations fail with [`Error::NoAnswer`].
    ///
    /// # Errors
    /// [`Error::Sys`] from `setsockopt`: `EINVAL` for an empty, invalid or too long program
    /// (the kernel's limit is 4096 instructions).
    pub fn attach_filter(&self, program: &[SockFilter]) -> Result<()> {
        sys::attach_filter(self.fd.as_fd(), program)
            .map_err(|e| Error::sys("setsockopt(SO_ATTACH_FILTER)", e))
    }

    /// Detaches the socket filter (`SO_DETACH_FILTER`).
    ///
    /// # Errors
    /// [`Error::Sys`] from `setsockopt`: `ENOENT` if no filter is attached.
    pub fn detach_filter(&self) -> Result<()> {
        sys::set_int(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_DETACH_FILTER, 0)
            .map_err(|e| Error::sys("setsockopt(SO_DETACH_FILTER)", e))
    }

    /// Sends one datagram (one or more messages) to the kernel.
    ///
    /// # Errors
    /// [`Error::Sys`] from `sendto`.
    pub fn send(&self, bytes: &[u8]) -> Result<()> {
        self.send_to(0, bytes)
    }

    /// Sends one datagram to the socket with port id `portid` (0 is the kernel). Sending to
    /// another process's socket needs `CAP_NET_ADMIN`; it is what a forger does, and what
    /// the tests do to prove that forged answers are ignored.
    ///
    /// # Errors
    /// [`Error::Sys`] from `sendto` (`EMSGSIZE` if the datagram exceeds the socket's send
    /// buffer, `ECONNREFUSED` if no socket has that port id).
    pub fn send_to(&self, portid: u32, bytes: &[u8]) -> Result<()> {
        let to = NetlinkAddr::new(portid, 0);
        loop {
            match sendto(self.fd.as_raw_fd(), bytes, &to, MsgFlags::empty()) {
                Ok(sent) if sent == bytes.len() => return Ok(()),
                // Netlink datagrams go whole or not at all; a short count is not recoverable.
                Ok(_) => return Err(Error::sys("sendto", Errno::EMSGSIZE)),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("sendto", e)),
            }
        }
    }

    /// Receives one datagram into `buf`, reporting truncation and the sender; it blocks
    /// unless the socket is in non-blocking mode.
    ///
    /// # Errors
    /// [`Error::WouldBlock`] in non-blocking mode when nothing is queued; [`Error::Overrun`]
    /// when the socket's receive queue overran since the last receive (`ENOBUFS`: messages
    /// were lost; the next receive carries on with what is queued); [`Error::Sys`] from
    /// `recvmsg`.
    pub fn recv(&self, buf: &mut [u8]) -> Result<Datagram> {
        recv_datagram(self.fd.as_fd(), buf, MsgFlags::empty())
    }
}

/// Receives one datagram from `fd` into `buf` (`flags` may add `MSG_DONTWAIT`).
pub(crate) fn recv_datagram(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: MsgFlags,
) -> Result<Datagram> {
    let capacity = buf.len();
    loop {
        let mut iov = [IoSliceMut::new(buf)];
        // MSG_TRUNC makes netlink return the datagram's real size.
        match recvmsg::<NetlinkAddr>(fd.as_raw_fd(), &mut iov, None, flags | MsgFlags::MSG_TRUNC) {
            Ok(msg) => {
                let size = msg.bytes;
                return Ok(Datagram {
                    len: size.min(capacity),
                    size,
                    truncated: msg.flags.contains(MsgFlags::MSG_TRUNC) || size > capacity,
                    sender: msg.address.map_or(u32::MAX, |a| a.pid()),
                    groups: msg.address.map_or(0, |a| a.groups()),
                });
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Err(Error::WouldBlock),
            Err(Errno::ENOBUFS) => return Err(Error::Overrun),
            Err(e) => return Err(Error::sys("recvmsg", e)),
        }
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
