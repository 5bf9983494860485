//! The `NETLINK_NETFILTER` socket.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::sys::socket::{
    bind, getsockname, recvmsg, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};

/// What one `recvmsg` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    /// Bytes stored in the caller's buffer.
    pub len: usize,
    /// The datagram's real size (larger than `len` when truncated).
    pub size: usize,
    /// Whether the datagram did not fit the buffer (`MSG_TRUNC`).
    pub truncated: bool,
    /// The sender's port id (0 is the kernel).
    pub sender: u32,
}

/// A blocking `NETLINK_NETFILTER` socket bound to an automatic port id.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
    portid: u32,
}

impl Socket {
    /// Opens a socket in the caller's network namespace and binds it.
    ///
    /// # Errors
    /// The errno of `socket`, `bind` or `getsockname`.
    pub fn open() -> io::Result<Self> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        let local: NetlinkAddr = getsockname(fd.as_raw_fd())?;
        Ok(Socket {
            fd,
            portid: local.pid(),
        })
    }

    /// Opens a socket inside the network namespace at `path` (such as `/var/run/netns/NAME`
    /// or `/proc/PID/ns/net`); the calling thread's own namespace is left unchanged.
    ///
    /// # Errors
    /// Opening the path, `setns` (needs `CAP_SYS_ADMIN`), or opening the socket.
    pub fn open_in_netns(path: impl AsRef<std::path::Path>) -> io::Result<Self> {
        let ns = std::fs::File::open(path)?;
        Self::open_in_netns_fd(ns.as_fd())
    }

    /// Opens a socket inside the network namespace that `ns` refers to.
    ///
    /// A short-lived thread enters the namespace and opens the socket there; a socket keeps
    /// the namespace it was created in.
    ///
    /// # Errors
    /// `setns` (needs `CAP_SYS_ADMIN`), or opening the socket.
    pub fn open_in_netns_fd(ns: BorrowedFd<'_>) -> io::Result<Self> {
        let ns = ns.try_clone_to_owned()?;
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
                    Socket::open()
                })
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
        })
    }

    /// Asks the kernel for extended acknowledgements (`NETLINK_EXT_ACK`): error messages
    /// then carry the kernel's explanation and the offset of the offending attribute.
    ///
    /// # Errors
    /// The errno of `setsockopt`.
    pub fn set_ext_ack(&self, on: bool) -> io::Result<()> {
        crate::sys::set_int(
            self.fd.as_fd(),
            conntrack_codec::nl::socket::SOL_NETLINK,
            conntrack_codec::nl::socket::NETLINK_EXT_ACK,
            i32::from(on),
        )
    }

    /// The port id the kernel assigned to this socket.
    pub fn portid(&self) -> u32 {
        self.portid
    }

    /// Sends one datagram (one or more messages) to the kernel.
    ///
    /// # Errors
    /// The errno of `sendto`; [`io::ErrorKind::WriteZero`] if the kernel took only part.
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let sent = sendto(
            self.fd.as_raw_fd(),
            bytes,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        if sent != bytes.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "netlink datagram sent only in part",
            ));
        }
        Ok(())
    }

    /// Receives one datagram into `buf`, reporting truncation and the sender.
    ///
    /// # Errors
    /// The errno of `recvmsg` (`ENOBUFS` when the socket's receive buffer overran).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Datagram> {
        let cap = buf.len();
        let mut iov = [io::IoSliceMut::new(buf)];
        let msg = recvmsg::<NetlinkAddr>(self.fd.as_raw_fd(), &mut iov, None, MsgFlags::MSG_TRUNC)?;
        let size = msg.bytes;
        let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC) || size > cap;
        Ok(Datagram {
            len: size.min(cap),
            size,
            truncated,
            sender: msg.address.map(|a| a.pid()).unwrap_or(u32::MAX),
        })
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
