//! The only unsafe code of the crate: socket options that `nix` does not wrap (the netlink
//! options, and classic-BPF socket filters), the `ioctl` that names a socket's network
//! namespace, the real-time scheduling of a receive thread, and (feature `tokio`) the
//! registration of an event socket with tokio.
//!
//! Each call passes the kernel a pointer to a live local value together with that value's
//! exact size, which is all `setsockopt`/`getsockopt` read or write; the descriptor is
//! borrowed, so it stays open for the duration of the call.
#![allow(unsafe_code)]

use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::libc;

/// `size_of::<T>()` as a `socklen_t` (every type passed here is a few bytes long).
fn len_of<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
}

/// Sets an `int` socket option.
pub(crate) fn set_int(fd: BorrowedFd<'_>, level: i32, name: i32, value: i32) -> Result<(), Errno> {
    // SAFETY: the pointer is to a live local `c_int` and the length is its size; the kernel
    // only reads it during the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast::<libc::c_void>(),
            len_of::<i32>(),
        )
    };
    Errno::result(rc).map(drop)
}

/// Reads an `int` socket option.
pub(crate) fn get_int(fd: BorrowedFd<'_>, level: i32, name: i32) -> Result<i32, Errno> {
    let mut value: i32 = 0;
    let mut len = len_of::<i32>();
    // SAFETY: the pointers are to a live local `c_int` and a live local length holding its
    // size; the kernel writes at most that many bytes and updates the length.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut i32).cast::<libc::c_void>(),
            &mut len,
        )
    };
    Errno::result(rc).map(|_| value)
}

/// Attaches a classic-BPF program (`SO_ATTACH_FILTER`), replacing any filter attached before.
pub(crate) fn attach_filter(
    fd: BorrowedFd<'_>,
    program: &[libc::sock_filter],
) -> Result<(), Errno> {
    let len = u16::try_from(program.len()).map_err(|_| Errno::EINVAL)?;
    let fprog = libc::sock_fprog {
        len,
        // The kernel copies the program and never writes through this pointer.
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` is a live local `sock_fprog` and the length is its size; its `filter`
    // points to `len` initialised instructions borrowed from `program` for the whole call,
    // and the kernel copies them before returning.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&fprog as *const libc::sock_fprog).cast::<libc::c_void>(),
            len_of::<libc::sock_fprog>(),
        )
    };
    Errno::result(rc).map(drop)
}

/// `SO_MEMINFO`: 55 in asm-generic and on most architectures; sparc numbers it 0x39.
#[cfg(not(any(target_arch = "sparc", target_arch = "sparc64")))]
const SO_MEMINFO: i32 = 55;
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
const SO_MEMINFO: i32 = 0x39;

/// The number of `SO_MEMINFO` values this crate knows (`SK_MEMINFO_VARS`).
const SK_MEMINFO_VARS: usize = 9;

/// Reads the socket's drop counter (`sk_drops`, `SK_MEMINFO_DROPS` of `SO_MEMINFO`).
pub(crate) fn drops(fd: BorrowedFd<'_>) -> Result<u32, Errno> {
    let mut info = [0u32; SK_MEMINFO_VARS];
    let mut len = len_of::<[u32; SK_MEMINFO_VARS]>();
    // SAFETY: the pointers are to a live local `u32` array and a live local length holding
    // its size; the kernel writes at most that many bytes and updates the length.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_MEMINFO,
            info.as_mut_ptr().cast::<libc::c_void>(),
            &mut len,
        )
    };
    Errno::result(rc)?;
    let index = usize::try_from(libc::SK_MEMINFO_DROPS).map_err(|_| Errno::EINVAL)?;
    let written = usize::try_from(len).unwrap_or(0) / size_of::<u32>();
    match info.get(index) {
        Some(&drops) if index < written => Ok(drops),
        _ => Err(Errno::EOPNOTSUPP),
    }
}

/// `struct ifreq` as the kernel reads it: the name, then a union whose first bytes hold the
/// answer (`ifr_mtu`, an `int`; `ifr_flags`, a `short`). 40 bytes, the size on 64-bit
/// targets and more than the 32 bytes of 32-bit ones.
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    data: [u8; 24],
}

/// `SIOCGIFMTU` or `SIOCGIFFLAGS` on a throwaway datagram socket of the calling thread's
/// network namespace; returns the first four bytes of the answer.
fn if_ioctl(name: &str, request: libc::c_ulong) -> Result<[u8; 4], Errno> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= 16 || bytes.contains(&0) {
        return Err(Errno::ENODEV);
    }
    let mut req = IfReq {
        name: [0; 16],
        data: [0; 24],
    };
    if let Some(dst) = req.name.get_mut(..bytes.len()) {
        dst.copy_from_slice(bytes);
    }
    let fd = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // The request constants are `c_ulong`; `ioctl` takes an `int` on musl.
    #[allow(clippy::unnecessary_cast, clippy::cast_possible_truncation)]
    let request = request as libc::Ioctl;
    // SAFETY: `req` is a live local of at least `sizeof(struct ifreq)` bytes holding a
    // NUL-terminated name; the kernel reads and writes only within it during the call, and
    // `fd` stays open for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request, &mut req as *mut IfReq) };
    Errno::result(rc)?;
    let mut out = [0u8; 4];
    out.copy_from_slice(req.data.get(..4).ok_or(Errno::EINVAL)?);
    Ok(out)
}

/// An interface's MTU (`SIOCGIFMTU`).
pub(crate) fn if_mtu(name: &str) -> Result<u32, Errno> {
    let b = if_ioctl(name, libc::SIOCGIFMTU)?;
    u32::try_from(i32::from_ne_bytes(b)).map_err(|_| Errno::EINVAL)
}

/// An interface's flags (`SIOCGIFFLAGS`: `IFF_UP`, `IFF_RUNNING`, ...).
pub(crate) fn if_flags(name: &str) -> Result<u16, Errno> {
    let b = if_ioctl(name, libc::SIOCGIFFLAGS)?;
    Ok(u16::from_ne_bytes([b[0], b[1]]))
}

/// The network namespace of a socket (`SIOCGSKNS`, Linux 4.9+), as a new descriptor
/// (close-on-exec).
pub(crate) fn netns_of(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    // SAFETY: `SIOCGSKNS` takes no argument; it only reads the socket the borrowed,
    // open descriptor refers to, and returns a new descriptor or -1.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGSKNS as _) };
    let raw = Errno::result(rc)?;
    // SAFETY: the kernel just created `raw` for this call; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Puts the calling thread under `SCHED_FIFO` at `priority` (`pthread_setschedparam`, which
/// changes this thread alone, with glibc and musl alike).
pub(crate) fn set_fifo(priority: i32) -> Result<(), Errno> {
    // SAFETY: `sched_param` is a plain C struct (musl's has more fields than glibc's) for
    // which all-zero bytes are a valid value.
    let mut param: libc::sched_param = unsafe { std::mem::zeroed() };
    param.sched_priority = priority;
    // SAFETY: `pthread_self` names the calling thread, which is alive; the pointer is to a
    // live local `sched_param` that the call only reads.
    let rc = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::from_raw(rc))
    }
}

/// Sets the calling thread's scheduling policy and priority (`sched_setscheduler` on
/// itself: the whole process when it has one thread).
pub(crate) fn set_scheduler(policy: i32, priority: i32) -> Result<(), Errno> {
    // SAFETY: `sched_param` is a plain C struct (musl's has more fields than glibc's) for
    // which all-zero bytes are a valid value.
    let mut param: libc::sched_param = unsafe { std::mem::zeroed() };
    param.sched_priority = priority;
    // SAFETY: pid 0 names the calling thread; the pointer is to a live local the call only
    // reads.
    let rc = unsafe { libc::sched_setscheduler(0, policy, &param) };
    Errno::result(rc).map(drop)
}

/// The calling thread's scheduling policy and priority.
pub(crate) fn scheduler() -> Result<(i32, i32), Errno> {
    // SAFETY: pid 0 names the calling thread; no pointer is passed.
    let policy = Errno::result(unsafe { libc::sched_getscheduler(0) })?;
    // SAFETY: as above; all-zero bytes are a valid `sched_param`.
    let mut param: libc::sched_param = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 names the calling thread; the pointer is to a live local the call
    // writes.
    Errno::result(unsafe { libc::sched_getparam(0, &mut param) })?;
    Ok((policy, param.sched_priority))
}

/// Registers `events` with the current tokio reactor for readability.
///
/// # Panics
/// Inside a tokio runtime without I/O enabled (tokio's own check).
#[cfg(feature = "tokio")]
pub(crate) fn register_readable(
    events: crate::events::Events,
) -> Result<tokio::io::unix::AsyncFd<crate::events::Events>, std::io::Error> {
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;
    // SAFETY: `Events` owns its socket's descriptor (an `OwnedFd` it never replaces nor
    // closes early), and its `as_raw_fd` always returns that descriptor; the `AsyncFd`
    // owns the `Events`, so the descriptor stays open and the same until the `AsyncFd` is
    // dropped or `into_inner` gives the `Events` back.
    unsafe { AsyncFd::register_with_interest(events, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}
