//! The netlink layer: message headers, attributes, control messages and the writer.
//!
//! Everything here is zero-copy over `&[u8]` and follows one contract: **no function in this
//! module panics, whatever bytes it is given**. Views are created with a checked constructor;
//! after that every getter either returns a value or an [`Error`](crate::Error). Iterators
//! stop for good after the first error they report.
//!
//! Byte order: the netlink message header and the attribute header are in the host's order;
//! payload integers of ctnetlink are big-endian (without `NLA_F_NET_BYTEORDER` being set).

mod attr;
mod control;
mod msg;
mod writer;

pub use attr::{Attr, Attrs, NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_TYPE_MASK};
pub use control::{Control, DoneMsg, ErrorMsg, ExtAck};
pub use msg::{Messages, NlMsg, NlMsgHeader};
pub use writer::{opt, Writer};

/// Netlink message alignment (`NLMSG_ALIGNTO`, also `NLA_ALIGNTO`).
pub const ALIGNTO: usize = 4;

/// Rounds `len` up to the netlink alignment, or `None` if that overflows.
#[inline]
pub const fn align(len: usize) -> Option<usize> {
    match len.checked_add(ALIGNTO - 1) {
        Some(v) => Some(v & !(ALIGNTO - 1)),
        None => None,
    }
}

/// The bytes one attribute with a `payload`-byte payload takes, header and padding included
/// (`NLA_ALIGN(NLA_HDRLEN + payload)`); `usize::MAX` if that overflows, so that a sum of
/// such lengths saturates instead of wrapping.
///
/// ```
/// assert_eq!(conntrack_codec::nl::attr_len(1), 8);
/// assert_eq!(conntrack_codec::nl::attr_len(16), 20);
/// ```
#[inline]
pub const fn attr_len(payload: usize) -> usize {
    match align(payload.saturating_add(attr::HDRLEN)) {
        Some(n) => n,
        None => usize::MAX,
    }
}

/// The length of an optional attribute: `len(v)` if it is present, 0 if not.
#[inline]
pub fn opt_len<T>(v: &Option<T>, len: impl FnOnce(&T) -> usize) -> usize {
    v.as_ref().map_or(0, len)
}

/// The sum of attribute lengths, saturating (a nest's payload, a message's attributes).
#[inline]
pub fn total_len(lens: &[usize]) -> usize {
    lens.iter().fold(0usize, |n, l| n.saturating_add(*l))
}

/// Netlink message types below [`NLMSG_MIN_TYPE`] are control messages.
pub mod msgtype {
    /// `NLMSG_NOOP`: nothing, to be ignored.
    pub const NOOP: u16 = 1;
    /// `NLMSG_ERROR`: an error or, with errno 0, an acknowledgement.
    pub const ERROR: u16 = 2;
    /// `NLMSG_DONE`: the end of a multipart message (a dump).
    pub const DONE: u16 = 3;
    /// `NLMSG_OVERRUN`: data lost.
    pub const OVERRUN: u16 = 4;
    /// The first type that belongs to a protocol rather than to netlink itself.
    pub const MIN_TYPE: u16 = 0x10;
}
pub use msgtype::MIN_TYPE as NLMSG_MIN_TYPE;

/// Flags of the netlink message header (`NLM_F_*`).
pub mod flags {
    /// It is a request message.
    pub const REQUEST: u16 = 0x01;
    /// A multipart message, ended by `NLMSG_DONE`.
    pub const MULTI: u16 = 0x02;
    /// Reply with an acknowledgement, on success too.
    pub const ACK: u16 = 0x04;
    /// Echo this request.
    pub const ECHO: u16 = 0x08;
    /// The dump was inconsistent because the table changed during it.
    pub const DUMP_INTR: u16 = 0x10;
    /// The dump was filtered as requested.
    pub const DUMP_FILTERED: u16 = 0x20;
    /// GET: specify the tree root.
    pub const ROOT: u16 = 0x100;
    /// GET: return all matching entries.
    pub const MATCH: u16 = 0x200;
    /// GET: atomic (unused by ctnetlink).
    pub const ATOMIC: u16 = 0x400;
    /// GET: a full dump (`ROOT | MATCH`).
    pub const DUMP: u16 = ROOT | MATCH;
    /// NEW: replace an existing object.
    pub const REPLACE: u16 = 0x100;
    /// NEW: fail if the object exists.
    pub const EXCL: u16 = 0x200;
    /// NEW: create if it does not exist.
    pub const CREATE: u16 = 0x400;
    /// NEW: add to the end of a list.
    pub const APPEND: u16 = 0x800;
    /// ERROR/ACK: the echoed request is only its header.
    pub const CAPPED: u16 = 0x100;
    /// ERROR/ACK: extended-ack attributes follow.
    pub const ACK_TLVS: u16 = 0x200;
}

/// Extended-ack attribute types (`NLMSGERR_ATTR_*`).
pub mod errattr {
    /// A NUL-terminated error message.
    pub const MSG: u16 = 1;
    /// A u32 offset of the offending attribute in the request.
    pub const OFFS: u16 = 2;
    /// An arbitrary cookie.
    pub const COOKIE: u16 = 3;
    /// The policy of the offending attribute.
    pub const POLICY: u16 = 4;
    /// The type of a missing required attribute.
    pub const MISS_TYPE: u16 = 5;
    /// The offset of the nest where an attribute was missing.
    pub const MISS_NEST: u16 = 6;
}

/// Netlink socket protocol numbers and socket options used with them.
pub mod socket {
    /// `NETLINK_NETFILTER`, the protocol of nfnetlink sockets.
    pub const NETLINK_NETFILTER: i32 = 12;
    /// `SOL_NETLINK`, the level of netlink socket options.
    pub const SOL_NETLINK: i32 = 270;
    /// `NETLINK_ADD_MEMBERSHIP`.
    pub const NETLINK_ADD_MEMBERSHIP: i32 = 1;
    /// `NETLINK_DROP_MEMBERSHIP`.
    pub const NETLINK_DROP_MEMBERSHIP: i32 = 2;
    /// `NETLINK_BROADCAST_ERROR`.
    pub const NETLINK_BROADCAST_ERROR: i32 = 4;
    /// `NETLINK_NO_ENOBUFS`.
    pub const NETLINK_NO_ENOBUFS: i32 = 5;
    /// `NETLINK_CAP_ACK`.
    pub const NETLINK_CAP_ACK: i32 = 10;
    /// `NETLINK_EXT_ACK`.
    pub const NETLINK_EXT_ACK: i32 = 11;
    /// `NETLINK_GET_STRICT_CHK`.
    pub const NETLINK_GET_STRICT_CHK: i32 = 12;
}
