//! The error type of the socket layer.

use std::fmt;
use std::io;

use conntrack_codec::session::Failure;
use nix::errno::Errno;

/// The result type of the socket layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to the kernel.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A system call failed.
    Sys {
        /// The call, such as `"recvmsg"` or `"setsockopt(SO_RCVBUF)"`.
        call: &'static str,
        /// Its errno.
        errno: Errno,
    },
    /// The socket is non-blocking and nothing is queued (`EAGAIN`).
    WouldBlock,
    /// The kernel refused the request.
    Kernel(KernelError),
    /// The kernel sent bytes the codec cannot read.
    Codec {
        /// What is wrong with them.
        error: conntrack_codec::Error,
        /// The offset of the malformed message in its datagram, when known.
        offset: Option<usize>,
    },
    /// The caller's request could not be built (the build closure failed, the send buffer is
    /// too small, or the closure did not write exactly one message with the given sequence
    /// number).
    Build(conntrack_codec::Error),
    /// A datagram from the kernel did not fit the receive buffer (`MSG_TRUNC`): the messages
    /// past the end of the buffer were lost. Open the socket with a larger
    /// [`recv_buffer`](crate::Builder::recv_buffer).
    Truncated {
        /// The datagram's real size.
        size: usize,
        /// The receive buffer's size.
        capacity: usize,
    },
    /// The dump was interrupted (`NLM_F_DUMP_INTR`): the table changed during the walk, so
    /// entries may be missing or repeated. Returned by
    /// [`DumpSummary::consistent`](crate::DumpSummary::consistent).
    DumpInterrupted,
    /// The socket's receive queue overran (`ENOBUFS`) and the kernel dropped messages for it:
    /// events, or the awaited answer to a request.
    Overrun,
    /// The awaited answer never arrived, and the kernel reported no overrun: it was dropped
    /// by an attached socket filter, or by an overrun that `NETLINK_NO_ENOBUFS` kept silent.
    NoAnswer,
}

/// A refusal by the kernel: the errno, and what the extended acknowledgement says.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    /// The errno (`EEXIST`, `ENOENT`, `EINVAL`, ...).
    pub errno: Errno,
    /// The kernel's explanation (`NLMSGERR_ATTR_MSG`), with `NETLINK_EXT_ACK` on.
    pub message: Option<Box<str>>,
    /// The byte offset of the offending attribute in the request message
    /// (`NLMSGERR_ATTR_OFFS`).
    pub offset: Option<u32>,
    /// The type of a required attribute that was missing (`NLMSGERR_ATTR_MISS_TYPE`).
    pub missing_type: Option<u32>,
    /// The offset of the nest that lacked it (`NLMSGERR_ATTR_MISS_NEST`).
    pub missing_nest: Option<u32>,
}

impl KernelError {
    /// Copies a refusal out of the receive buffer.
    pub(crate) fn from_failure(f: &Failure<'_>) -> Self {
        KernelError {
            errno: Errno::from_raw(f.errno),
            message: f.ext_ack.msg.map(Box::from),
            offset: f.ext_ack.offset,
            missing_type: f.ext_ack.missing_type,
            missing_nest: f.ext_ack.missing_nest,
        }
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kernel: {} ({:?})", self.errno.desc(), self.errno)?;
        if let Some(msg) = &self.message {
            write!(f, ": {msg}")?;
        }
        if let Some(offset) = self.offset {
            write!(f, " (attribute at offset {offset} of the request)")?;
        }
        if let Some(kind) = self.missing_type {
            write!(f, " (missing attribute type {kind}")?;
            if let Some(nest) = self.missing_nest {
                write!(f, " in the nest at offset {nest}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl std::error::Error for KernelError {}

impl Error {
    /// A system call failure.
    pub(crate) fn sys(call: &'static str, errno: Errno) -> Self {
        Error::Sys { call, errno }
    }

    /// The errno of a failed system call or of a kernel refusal.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            Error::Kernel(k) => Some(k.errno),
            Error::WouldBlock => Some(Errno::EAGAIN),
            Error::Overrun => Some(Errno::ENOBUFS),
            _ => None,
        }
    }
}

impl Error {
    /// The [`io::ErrorKind`] of this error, as `std::io` callers expect it: the kind of its
    /// errno (so [`Error::WouldBlock`] is [`io::ErrorKind::WouldBlock`]), or
    /// [`io::ErrorKind::InvalidData`] for errors without one.
    pub fn kind(&self) -> io::ErrorKind {
        match self.errno() {
            Some(errno) => io::Error::from(errno).kind(),
            None => io::ErrorKind::InvalidData,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sys { call, errno } => write!(f, "{call}: {} ({errno:?})", errno.desc()),
            Error::WouldBlock => f.write_str("nothing to receive (EAGAIN)"),
            Error::Kernel(k) => k.fmt(f),
            Error::Codec { error, offset } => {
                write!(f, "malformed message from the kernel: {error}")?;
                if let Some(offset) = offset {
                    write!(f, " (at offset {offset} of the datagram)")?;
                }
                Ok(())
            }
            Error::Build(error) => write!(f, "cannot build the request: {error}"),
            Error::Truncated { size, capacity } => write!(
                f,
                "datagram of {size} bytes truncated to the {capacity}-byte receive buffer"
            ),
            Error::DumpInterrupted => f.write_str(
                "dump interrupted (NLM_F_DUMP_INTR): the table changed during the dump, \
                 entries may be missing or repeated",
            ),
            Error::Overrun => f.write_str(
                "receive queue overrun (ENOBUFS): the kernel dropped messages for this socket",
            ),
            Error::NoAnswer => f.write_str("the kernel's answer never arrived"),
        }
    }
}

/// The message of each error says everything, its cause included (the kernel's refusal, the
/// codec's complaint), so `source()` is `None`: an error chain printed link by link (as
/// `anyhow` or `eyre` do) shows each cause once. Match the variant to reach the cause.
impl std::error::Error for Error {}

impl From<conntrack_codec::Error> for Error {
    /// Lets `?` turn a codec error into this one: an impossible request, or a request that
    /// does not fit its buffer, becomes [`Error::Build`]; anything else (a malformed entry
    /// met while reading a view, say) becomes [`Error::Codec`] without an offset.
    fn from(error: conntrack_codec::Error) -> Self {
        use conntrack_codec::Error as E;
        match error {
            E::ImpossibleRequest(_) | E::BufferTooSmall | E::TooLong(_) => Error::Build(error),
            _ => Error::Codec {
                error,
                offset: None,
            },
        }
    }
}

impl From<Error> for io::Error {
    /// Converts for callers that speak `std::io` (such as tokio's `AsyncFd::try_io`), with
    /// the kind given by [`Error::kind`].
    fn from(e: Error) -> Self {
        io::Error::new(e.kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(errno: Errno, message: Option<&str>, offset: Option<u32>) -> Error {
        Error::Kernel(KernelError {
            errno,
            message: message.map(Box::from),
            offset,
            missing_type: None,
            missing_nest: None,
        })
    }

    #[test]
    fn kernel_errors_name_errno_message_and_offset() {
        assert_eq!(
            kernel(Errno::EEXIST, None, None).to_string(),
            "kernel: File exists (EEXIST)"
        );
        assert_eq!(
            kernel(
                Errno::EINVAL,
                Some("Attribute failed policy validation"),
                Some(52)
            )
            .to_string(),
            "kernel: Invalid argument (EINVAL): Attribute failed policy validation \
             (attribute at offset 52 of the request)"
        );
        let missing = Error::Kernel(KernelError {
            errno: Errno::EINVAL,
            message: None,
            offset: None,
            missing_type: Some(1),
            missing_nest: Some(20),
        });
        assert_eq!(
            missing.to_string(),
            "kernel: Invalid argument (EINVAL) (missing attribute type 1 in the nest at offset 20)"
        );
    }

    #[test]
    fn other_errors_display() {
        assert_eq!(
            Error::sys("recvmsg", Errno::EBADF).to_string(),
            "recvmsg: Bad file number (EBADF)"
        );
        assert_eq!(
            Error::Truncated {
                size: 3000,
                capacity: 1024
            }
            .to_string(),
            "datagram of 3000 bytes truncated to the 1024-byte receive buffer"
        );
        let codec = Error::Codec {
            error: conntrack_codec::Error::Truncated("netlink message"),
            offset: Some(36),
        };
        assert_eq!(
            codec.to_string(),
            "malformed message from the kernel: truncated netlink message (at offset 36 of the \
             datagram)"
        );
        // The cause is in the message, once, and not repeated by `source()`.
        assert!(std::error::Error::source(&codec).is_none());
        for e in [
            Error::DumpInterrupted,
            Error::Overrun,
            Error::NoAnswer,
            Error::WouldBlock,
        ] {
            assert!(!e.to_string().is_empty());
        }
    }

    /// The whole chain of an error, as `anyhow`'s `{:#}` prints it.
    fn chain(e: &dyn std::error::Error) -> String {
        let mut out = e.to_string();
        let mut cur = e.source();
        while let Some(s) = cur {
            out.push_str(": ");
            out.push_str(&s.to_string());
            cur = s.source();
        }
        out
    }

    #[test]
    fn chains_say_each_cause_once() {
        let cases = [
            kernel(Errno::ENOENT, Some("no such entry"), Some(20)),
            Error::Build(conntrack_codec::Error::ImpossibleRequest(
                "x marks the spot",
            )),
            Error::Codec {
                error: conntrack_codec::Error::MissingAttribute("CTA_TUPLE_ORIG"),
                offset: None,
            },
        ];
        for e in cases {
            let text = chain(&e);
            for needle in ["No such file", "x marks the spot", "CTA_TUPLE_ORIG"] {
                assert!(text.matches(needle).count() <= 1, "{text}");
            }
            let io = io::Error::from(e.clone());
            assert_eq!(
                chain(&io).matches(&e.to_string()).count(),
                1,
                "{}",
                chain(&io)
            );
        }
    }

    #[test]
    fn codec_errors_convert_by_what_they_mean() {
        fn parse_something() -> Result<()> {
            Err(conntrack_codec::Error::MissingAttribute("CTA_STATUS"))?;
            Ok(())
        }
        assert!(matches!(
            parse_something(),
            Err(Error::Codec { offset: None, .. })
        ));
        let e: Error = conntrack_codec::Error::ImpossibleRequest("no family").into();
        assert!(matches!(e, Error::Build(_)));
        let e: Error = conntrack_codec::Error::BufferTooSmall.into();
        assert!(matches!(e, Error::Build(_)));
    }

    #[test]
    fn converts_to_io_errors_by_errno() {
        let kind = |e: Error| {
            let direct = e.kind();
            let converted = io::Error::from(e).kind();
            assert_eq!(direct, converted);
            converted
        };
        assert_eq!(kind(Error::WouldBlock), io::ErrorKind::WouldBlock);
        assert_eq!(
            kind(kernel(Errno::EEXIST, None, None)),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(
            kind(Error::sys("setns", Errno::EPERM)),
            io::ErrorKind::PermissionDenied
        );
        assert_eq!(kind(Error::DumpInterrupted), io::ErrorKind::InvalidData);
        let e = io::Error::from(kernel(Errno::ENOENT, Some("no such entry"), None));
        assert!(e.to_string().contains("no such entry"), "{e}");
    }
}
