//! `CTA_FILTER`: which fields of the original and reply tuples a filtered dump compares.

use crate::ct::attrs::{cta, filter};
use crate::ct::unknown::UnknownSink;
use crate::nl::{attr_len, opt, opt_len, total_len, Attr, Writer};
use crate::Result;

/// `CTA_FILTER_F_*`: the tuple fields a filtered dump compares (host-order u32 on the wire).
pub mod filter_flags {
    /// Source address.
    pub const IP_SRC: u32 = 1 << 0;
    /// Destination address.
    pub const IP_DST: u32 = 1 << 1;
    /// Tuple zone.
    pub const TUPLE_ZONE: u32 = 1 << 2;
    /// L4 protocol number.
    pub const PROTO_NUM: u32 = 1 << 3;
    /// Source port.
    pub const PROTO_SRC_PORT: u32 = 1 << 4;
    /// Destination port.
    pub const PROTO_DST_PORT: u32 = 1 << 5;
    /// ICMP type.
    pub const PROTO_ICMP_TYPE: u32 = 1 << 6;
    /// ICMP code.
    pub const PROTO_ICMP_CODE: u32 = 1 << 7;
    /// ICMP id.
    pub const PROTO_ICMP_ID: u32 = 1 << 8;
    /// ICMPv6 type.
    pub const PROTO_ICMPV6_TYPE: u32 = 1 << 9;
    /// ICMPv6 code.
    pub const PROTO_ICMPV6_CODE: u32 = 1 << 10;
    /// ICMPv6 id.
    pub const PROTO_ICMPV6_ID: u32 = 1 << 11;
    /// Every field.
    pub const ALL: u32 = (1 << 12) - 1;
}

/// The `CTA_FILTER` nest: flags for the original and reply tuples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FilterFlags {
    /// Fields of `CTA_TUPLE_ORIG` to compare.
    pub orig: Option<u32>,
    /// Fields of `CTA_TUPLE_REPLY` to compare.
    pub reply: Option<u32>,
}

impl FilterFlags {
    /// Reads `CTA_FILTER`.
    ///
    /// # Errors
    /// A malformed attribute or one of the wrong size.
    pub fn parse(nest: &Attr<'_>, unknown: &mut impl UnknownSink) -> Result<Self> {
        let mut f = FilterFlags::default();
        for a in nest.nested() {
            let a = a?;
            match a.kind() {
                filter::ORIG_FLAGS => f.orig = Some(a.u32_ne()?),
                filter::REPLY_FLAGS => f.reply = Some(a.u32_ne()?),
                _ => unknown.record([cta::FILTER, 0], &a),
            }
        }
        Ok(f)
    }

    /// Writes `CTA_FILTER`.
    ///
    /// # Errors
    /// [`crate::Error::BufferTooSmall`].
    pub fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        w.nest(cta::FILTER, |w| {
            opt(w, self.orig, |w, v| w.attr_u32_ne(filter::ORIG_FLAGS, v))?;
            opt(w, self.reply, |w, v| w.attr_u32_ne(filter::REPLY_FLAGS, v))
        })
    }

    /// The bytes [`FilterFlags::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let n = |v: &Option<u32>| opt_len(v, |_| attr_len(4));
        attr_len(total_len(&[n(&self.orig), n(&self.reply)]))
    }
}

/// What a dump, a counter-zeroing dump or a flush selects in the kernel.
///
/// Every field narrows the selection; the default selects everything. The kernel compares
/// the tuples field by field as the flags say (see [`filter_flags`]); it needs a family for
/// tuple filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DumpFilter {
    /// Address family, 0 for all (a family-specific flush is sent with nfgenmsg version 1).
    pub family: u8,
    /// Mark value and mask: entries with `mark & mask == value`.
    pub mark: Option<(u32, u32)>,
    /// Status value and mask: entries with `status & mask == value`.
    pub status: Option<(crate::ct::Status, crate::ct::Status)>,
    /// Zone.
    pub zone: Option<u16>,
    /// Original tuple and the fields of it to compare.
    pub orig: Option<(crate::ct::Tuple, u32)>,
    /// Reply tuple and the fields of it to compare.
    pub reply: Option<(crate::ct::Tuple, u32)>,
}

impl DumpFilter {
    /// Everything of one family.
    pub fn family(family: u8) -> Self {
        DumpFilter {
            family,
            ..DumpFilter::default()
        }
    }

    /// Whether the filter selects everything of its family (no attribute to send).
    pub fn is_plain(&self) -> bool {
        self.mark.is_none()
            && self.status.is_none()
            && self.zone.is_none()
            && self.orig.is_none()
            && self.reply.is_none()
    }

    /// Writes the filter's attributes (after nfgenmsg).
    ///
    /// # Errors
    /// [`crate::Error::BufferTooSmall`].
    pub fn emit_attrs(&self, w: &mut Writer<'_>) -> Result<()> {
        opt(w, self.orig.as_ref(), |w, (t, _)| {
            t.emit(cta::TUPLE_ORIG, w)
        })?;
        opt(w, self.reply.as_ref(), |w, (t, _)| {
            t.emit(cta::TUPLE_REPLY, w)
        })?;
        if let Some((value, mask)) = self.status {
            w.attr_u32_be(cta::STATUS, value.0)?;
            w.attr_u32_be(cta::STATUS_MASK, mask.0)?;
        }
        if let Some((value, mask)) = self.mark {
            w.attr_u32_be(cta::MARK, value)?;
            w.attr_u32_be(cta::MARK_MASK, mask)?;
        }
        opt(w, self.zone, |w, z| w.attr_u16_be(cta::ZONE, z))?;
        if self.orig.is_some() || self.reply.is_some() {
            FilterFlags {
                orig: self.orig.map(|(_, f)| f),
                reply: self.reply.map(|(_, f)| f),
            }
            .emit(w)?;
        }
        Ok(())
    }
}
