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
pub(crate) mod table;
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

/// Defines a `Copy` enum over an integer that keeps values it does not know as `Unknown(n)`,
/// with the names the tools print for its values (`=> "NAME"`, where there is one), and the
/// [`table::AttrValue`] of the integer it is carried as.
macro_rules! enum_with_unknown {
    (
        $(#[$attr:meta])*
        pub enum $name:ident($ty:ty) {
            $( $(#[$vattr:meta])* $variant:ident = $value:expr $(=> $text:literal)? ),+ $(,)?
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

        impl $name {
            /// The name conntrack-tools prints for this value, `None` for a value it has no
            /// name for.
            pub const fn name(self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => $crate::ct::enum_with_unknown!(@name $($text)?), )+
                    $name::Unknown(_) => None,
                }
            }

            /// The value named `name` (ASCII case ignored), as [`Self::name`] spells it.
            pub fn from_name(name: &str) -> Option<Self> {
                [$( $name::$variant ),+]
                    .into_iter()
                    .find(|v| v.name().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            }
        }

        impl $crate::ct::table::AttrValue for $name {
            type View<'a> = $name;
            #[inline]
            fn parse(
                a: &$crate::nl::Attr<'_>,
                unknown: &mut impl $crate::ct::UnknownSink,
            ) -> $crate::Result<Option<Self>> {
                Ok(<$ty as $crate::ct::table::AttrValue>::parse(a, unknown)?.map($name::from))
            }
            #[inline]
            fn view<'a>(a: &$crate::nl::Attr<'a>) -> $crate::Result<Option<$name>> {
                Self::parse(a, &mut ())
            }
            fn emit(&self, kind: u16, w: &mut $crate::nl::Writer<'_>) -> $crate::Result<()> {
                <$ty as $crate::ct::table::AttrValue>::emit(&<$ty>::from(*self), kind, w)
            }
            fn attr_len(&self) -> usize {
                <$ty as $crate::ct::table::AttrValue>::attr_len(&<$ty>::from(*self))
            }
        }
    };
    (@name $text:literal) => { Some($text) };
    (@name) => { None };
}
pub(crate) use enum_with_unknown;
