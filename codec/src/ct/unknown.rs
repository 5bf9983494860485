//! Attributes this codec does not know: kept with where they were found, never rejected.

use heapless::Vec;

use crate::nl::{attr_len, Attr, Writer};
use crate::Result;

/// One attribute this codec does not know, kept as received.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnknownAttr {
    /// Where it was found: the types of the enclosing nests, outermost first, 0 where
    /// there is none (`[0, 0]` at the top level of the message, `[1, 2]` inside
    /// `CTA_TUPLE_ORIG` / `CTA_TUPLE_PROTO`).
    pub path: [u16; 2],
    /// Its type as received, `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER` kept if they were set
    /// (and written back with them).
    pub raw_kind: u16,
    /// Its payload, up to [`UnknownAttr::CAP`] bytes.
    pub payload: Vec<u8, { UnknownAttr::CAP }>,
}

impl UnknownAttr {
    /// The most payload bytes kept per unknown attribute.
    pub const CAP: usize = 64;
}

/// The unknown attributes of one entry: up to [`Unknowns::CAP`] kept, the rest counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Unknowns {
    /// The attributes kept.
    pub kept: Vec<UnknownAttr, { Unknowns::CAP }>,
    /// How many more were seen than could be kept (too many, or a payload too long).
    pub overflow: u16,
}

impl Unknowns {
    /// The most unknown attributes kept per entry.
    pub const CAP: usize = 4;

    /// Whether no unknown attribute was seen.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.overflow == 0
    }

    /// How many unknown attributes were seen in all.
    pub fn count(&self) -> usize {
        self.kept.len().saturating_add(usize::from(self.overflow))
    }

    /// Records `attr`, found at `path` (see [`UnknownAttr::path`]).
    pub fn record(&mut self, path: [u16; 2], attr: &Attr<'_>) {
        let kept = Vec::from_slice(attr.payload())
            .ok()
            .map(|payload| UnknownAttr {
                path,
                raw_kind: attr.raw_kind(),
                payload,
            })
            .and_then(|u| self.kept.push(u).ok());
        if kept.is_none() {
            self.overflow = self.overflow.saturating_add(1);
        }
    }

    /// Writes back the kept attributes found at the top level of the message.
    ///
    /// # Errors
    /// [`crate::Error::BufferTooSmall`].
    pub fn emit_top_level(&self, w: &mut Writer<'_>) -> Result<()> {
        for u in self.kept.iter().filter(|u| u.path == TOP) {
            w.attr(u.raw_kind, &u.payload)?;
        }
        Ok(())
    }

    /// The bytes [`Unknowns::emit_top_level`] writes.
    pub fn top_level_len(&self) -> usize {
        self.kept
            .iter()
            .filter(|u| u.path == TOP)
            .fold(0usize, |n, u| n.saturating_add(attr_len(u.payload.len())))
    }
}

/// Where parsers put attributes they do not know.
pub trait UnknownSink {
    /// Records `attr`, found at `path` (see [`UnknownAttr::path`]).
    fn record(&mut self, path: [u16; 2], attr: &Attr<'_>);
}

/// Keeps them (up to its capacity).
impl UnknownSink for Unknowns {
    fn record(&mut self, path: [u16; 2], attr: &Attr<'_>) {
        Unknowns::record(self, path, attr);
    }
}

/// Ignores them (the views, which keep the raw bytes anyway).
impl UnknownSink for () {
    fn record(&mut self, _path: [u16; 2], _attr: &Attr<'_>) {}
}

/// The path of the top level of a message.
pub const TOP: [u16; 2] = [0, 0];
