//! The conntrack data model: every ctnetlink conntrack attribute, read through a zero-copy
//! view ([`Conntrack`]) or held as plain data ([`ConntrackRepr`]), and the request builders.
//!
//! Contract: once a view is made by its checked constructor, no getter panics; getters
//! return `Ok(None)` for an absent attribute and `Err` for a malformed one.

pub mod attrs;
mod entry;
mod labels;
mod misc;
mod protoinfo;
pub mod request;
mod stats;
mod status;
pub(crate) mod tuple;
pub(crate) mod unknown;

pub use entry::{Conntrack, ConntrackRepr, EventKind};
pub use labels::Labels;
pub use misc::{Counters, Helper, NatRange, SecCtx, SeqAdj, Synproxy, Timestamp};
pub use protoinfo::{
    DccpInfo, DccpRole, DccpState, ProtoInfo, SctpInfo, SctpState, TcpFlags, TcpInfo, TcpState,
};
pub use stats::{ExpStatsCpu, StatsCpu, StatsGlobal};
pub use status::Status;
pub use tuple::{l4proto, Tuple};
pub use unknown::{UnknownAttr, UnknownSink, Unknowns};

/// Address families of nfgenmsg.
pub mod family {
    /// All families (dumps and flushes).
    pub const UNSPEC: u8 = 0;
    /// IPv4 (`AF_INET`).
    pub const INET: u8 = 2;
    /// IPv6 (`AF_INET6`).
    pub const INET6: u8 = 10;
}

/// Defines a `Copy` enum over an integer that keeps values it does not know as `Unknown(n)`.
macro_rules! enum_with_unknown {
    (
        $(#[$attr:meta])*
        pub enum $name:ident($ty:ty) {
            $( $(#[$vattr:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub enum $name {
            $( $(#[$vattr])* $variant, )+
            /// A value this codec does not know, kept as received.
            Unknown($ty),
        }

        impl From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}
pub(crate) use enum_with_unknown;
