//! Socket options and interface facts that conntrackd's dedicated links need and that
//! neither `std` nor `nix` offer: UDP checksums off (`SO_NO_CHECK`), buffer sizes beyond
//! the system limits (`SO_SNDBUFFORCE`, `SO_RCVBUFFORCE`), the outgoing multicast interface,
//! and an interface's MTU and up/running state in the calling thread's network namespace.
//! The unsafe calls behind them live in the crate's one unsafe module.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use nix::libc;

use crate::sys;

fn io_err(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Turns the UDP checksum of sent datagrams off (`true`) or on (`SO_NO_CHECK`; conntrackd's
/// `Checksum off`). IPv6 always has checksums; the kernel ignores the option there.
///
/// # Errors
/// The kernel's refusal.
pub fn set_no_check(sock: &impl AsFd, on: bool) -> io::Result<()> {
    sys::set_int(
        sock.as_fd(),
        libc::SOL_SOCKET,
        libc::SO_NO_CHECK,
        i32::from(on),
    )
    .map_err(io_err)
}

/// Whether the UDP checksum of sent datagrams is off.
///
/// # Errors
/// The kernel's refusal.
pub fn no_check(sock: &impl AsFd) -> io::Result<bool> {
    sys::get_int(sock.as_fd(), libc::SOL_SOCKET, libc::SO_NO_CHECK)
        .map(|v| v != 0)
        .map_err(io_err)
}

/// Sets the send buffer beyond `wmem_max` (`SO_SNDBUFFORCE`, needs `CAP_NET_ADMIN`;
/// conntrackd's `SndSocketBuffer`) and returns the size the kernel reports (twice the
/// request, for its bookkeeping).
///
/// # Errors
/// The kernel's refusal (`EPERM` without the capability).
pub fn force_send_buffer(sock: &impl AsFd, bytes: usize) -> io::Result<usize> {
    let v = i32::try_from(bytes).unwrap_or(i32::MAX);
    sys::set_int(sock.as_fd(), libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, v).map_err(io_err)?;
    sys::get_int(sock.as_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF)
        .map(|v| usize::try_from(v).unwrap_or(0))
        .map_err(io_err)
}

/// Sets the receive buffer beyond `rmem_max` (`SO_RCVBUFFORCE`; conntrackd's
/// `RcvSocketBuffer`) and returns the size the kernel reports.
///
/// # Errors
/// The kernel's refusal.
pub fn force_recv_buffer(sock: &impl AsFd, bytes: usize) -> io::Result<usize> {
    let v = i32::try_from(bytes).unwrap_or(i32::MAX);
    sys::set_int(sock.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, v).map_err(io_err)?;
    sys::get_int(sock.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF)
        .map(|v| usize::try_from(v).unwrap_or(0))
        .map_err(io_err)
}

/// Sends IPv4 multicast through the interface that has address `addr` (`IP_MULTICAST_IF`;
/// conntrackd's `IPv4_interface`).
///
/// # Errors
/// The kernel's refusal (no interface with that address).
pub fn set_multicast_if_v4(sock: &impl AsFd, addr: Ipv4Addr) -> io::Result<()> {
    // The option takes a `struct in_addr`: four bytes in network order, which is what an
    // int holding the octets in memory order is.
    let v = i32::from_ne_bytes(addr.octets());
    sys::set_int(sock.as_fd(), libc::IPPROTO_IP, libc::IP_MULTICAST_IF, v).map_err(io_err)
}

/// Sends IPv6 multicast through interface `ifindex` (`IPV6_MULTICAST_IF`).
///
/// # Errors
/// The kernel's refusal.
pub fn set_multicast_if_v6(sock: &impl AsFd, ifindex: u32) -> io::Result<()> {
    let v = i32::try_from(ifindex).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    sys::set_int(sock.as_fd(), libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, v).map_err(io_err)
}

/// An interface's MTU in the calling thread's network namespace (`SIOCGIFMTU`).
///
/// # Errors
/// No such interface (`ENODEV`).
pub fn interface_mtu(name: &str) -> io::Result<u32> {
    sys::if_mtu(name).map_err(io_err)
}

/// Whether an interface is administratively up and has carrier (`IFF_UP`, `IFF_RUNNING`),
/// in the calling thread's network namespace.
///
/// # Errors
/// No such interface (`ENODEV`).
pub fn interface_state(name: &str) -> io::Result<LinkState> {
    let f = sys::if_flags(name).map_err(io_err)?;
    Ok(LinkState {
        up: f & (libc::IFF_UP as u16) != 0,
        running: f & (libc::IFF_RUNNING as u16) != 0,
    })
}

/// An interface's state, as conntrackd reports it in `-s link`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkState {
    /// `IFF_UP`: administratively up.
    pub up: bool,
    /// `IFF_RUNNING`: has carrier.
    pub running: bool,
}

impl LinkState {
    /// conntrackd's word for it: `RUNNING`, `NO-CARRIER` (up, no carrier) or `DOWN`.
    pub fn as_str(self) -> &'static str {
        match (self.up, self.running) {
            (true, true) => "RUNNING",
            (true, false) => "NO-CARRIER",
            (false, _) => "DOWN",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn checksum_option_round_trips() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(!no_check(&s).unwrap());
        set_no_check(&s, true).unwrap();
        assert!(no_check(&s).unwrap());
        set_no_check(&s, false).unwrap();
        assert!(!no_check(&s).unwrap());
    }

    #[test]
    fn loopback_facts() {
        assert_eq!(interface_mtu("lo").unwrap(), 65536);
        assert!(interface_state("lo").unwrap().up);
        assert_eq!(
            interface_mtu("no-such-if0").unwrap_err().raw_os_error(),
            Some(libc::ENODEV)
        );
        assert!(interface_mtu("").is_err());
        assert!(interface_mtu("a-name-far-too-long-for-ifnamsiz").is_err());
        assert_eq!(
            LinkState {
                up: true,
                running: false
            }
            .as_str(),
            "NO-CARRIER"
        );
    }

    #[test]
    fn forced_buffers_and_multicast_interface() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        // As root the force variants pass the system limits; without the capability the
        // kernel says EPERM, which is what a caller must be told.
        match force_send_buffer(&s, 4 << 20) {
            Ok(n) => assert!(n >= 4 << 20, "{n}"),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM)),
        }
        match force_recv_buffer(&s, 4 << 20) {
            Ok(n) => assert!(n >= 4 << 20, "{n}"),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM)),
        }
        set_multicast_if_v4(&s, Ipv4Addr::LOCALHOST).unwrap();
        assert!(set_multicast_if_v4(&s, Ipv4Addr::new(192, 0, 2, 77)).is_err());
    }
}
