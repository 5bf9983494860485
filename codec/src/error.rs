//! The one error type of the codec.

use core::fmt;

/// Everything that can go wrong while reading or writing ctnetlink bytes.
///
/// It is small and `Copy`, so it travels through `no_std` code for free. The
/// `&'static str` fields name the structure or field concerned.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The input ends before a header, or before the length that a header declares.
    Truncated(&'static str),
    /// A length field is smaller than the header it belongs to.
    InvalidLength(&'static str),
    /// An attribute's payload does not have the size its type requires.
    AttributeSize {
        /// The attribute type, flags masked off.
        kind: u16,
        /// The payload length found.
        len: usize,
    },
    /// A string attribute has no NUL terminator, is not UTF-8, or exceeds its bound.
    InvalidString(&'static str),
    /// An attribute the message needs is absent.
    MissingAttribute(&'static str),
    /// A field holds a value outside the range it allows.
    InvalidValue(&'static str),
    /// The output buffer has no room for what is being written.
    BufferTooSmall,
    /// A length or count does not fit the field that must carry it.
    TooLong(&'static str),
    /// A fixed-capacity container (string, list) cannot hold what was found.
    CapacityExceeded(&'static str),
    /// The message is not of the kind this parser reads.
    UnexpectedMessage(&'static str),
    /// A request that cannot mean anything or that the kernel would refuse: a dump or
    /// flush filter ([`DumpFilter::check`](crate::filter::DumpFilter::check)) or an entry
    /// key ([`Key::check`](crate::ct::request::Key::check)). Nothing was written.
    ImpossibleRequest(&'static str),
}

/// The codec's result type.
pub type Result<T> = core::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated(what) => write!(f, "truncated {what}"),
            Error::InvalidLength(what) => write!(f, "invalid length in {what}"),
            Error::AttributeSize { kind, len } => {
                write!(f, "attribute type {kind} has a payload of {len} bytes, which its type does not allow")
            }
            Error::InvalidString(what) => write!(f, "invalid string in {what}"),
            Error::MissingAttribute(what) => write!(f, "missing attribute {what}"),
            Error::InvalidValue(what) => write!(f, "invalid value for {what}"),
            Error::BufferTooSmall => f.write_str("output buffer too small"),
            Error::TooLong(what) => write!(f, "{what} too long for its length field"),
            Error::CapacityExceeded(what) => write!(f, "{what} exceeds its fixed capacity"),
            Error::UnexpectedMessage(what) => write!(f, "unexpected message: {what}"),
            Error::ImpossibleRequest(what) => write!(f, "impossible request: {what}"),
        }
    }
}

impl core::error::Error for Error {}
