//! The smaller nests of an entry: counters, timestamps, NAT ranges, sequence adjustment,
//! synproxy, helper and security context.

use core::net::IpAddr;

use heapless::{String, Vec};

use crate::ct::attrs::{counters, help, nat, protonat, secctx, timestamp};
use crate::ct::table::{len_of, nest_value, put, AttrValue};
use crate::ct::tuple::{addr_len, put_addr, take, take_header};
use crate::ct::unknown::UnknownSink;
use crate::nl::{attr_len, opt_len, total_len, Attr, Writer};
use crate::{Error, Result};

/// Packet and byte counters of one direction (`CTA_COUNTERS_ORIG`/`_REPLY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Counters {
    /// Packets (from the 64-bit attribute, or the legacy 32-bit one).
    pub packets: Option<u64>,
    /// Bytes (likewise).
    pub bytes: Option<u64>,
}

impl Counters {
    /// Reads a counters nest; zero-length pad attributes are skipped.
    ///
    /// # Errors
    /// A malformed attribute or one of the wrong size.
    #[inline]
    pub fn parse(nest: &Attr<'_>, unknown: &mut impl UnknownSink) -> Result<Self> {
        let mut c = Counters::default();
        for a in nest.nested() {
            let a = a?;
            match a.kind() {
                counters::PACKETS => c.packets = Some(a.u64_be()?),
                counters::BYTES => c.bytes = Some(a.u64_be()?),
                counters::PACKETS32 => c.packets = Some(a.u32_be()?.into()),
                counters::BYTES32 => c.bytes = Some(a.u32_be()?.into()),
                counters::PAD if a.payload().is_empty() => {}
                _ => unknown.record([nest.kind(), 0], &a),
            }
        }
        Ok(c)
    }

    /// Writes the nest of type `kind`, with 64-bit counters.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        w.nest(kind, |w| {
            put(w, counters::PACKETS, &self.packets)?;
            put(w, counters::BYTES, &self.bytes)
        })
    }

    /// The bytes [`Counters::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        attr_len(total_len(&[len_of(&self.packets), len_of(&self.bytes)]))
    }
}

/// Start and stop times of an entry in nanoseconds since the epoch (`CTA_TIMESTAMP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Timestamp {
    /// When the entry was confirmed.
    pub start: Option<u64>,
    /// When it died (destroy events only).
    pub stop: Option<u64>,
}

impl Timestamp {
    /// Reads `CTA_TIMESTAMP`; zero-length pad attributes are skipped.
    ///
    /// # Errors
    /// A malformed attribute or one of the wrong size.
    #[inline]
    pub fn parse(nest: &Attr<'_>, unknown: &mut impl UnknownSink) -> Result<Self> {
        let mut t = Timestamp::default();
        for a in nest.nested() {
            let a = a?;
            match a.kind() {
                timestamp::START => t.start = Some(a.u64_be()?),
                timestamp::STOP => t.stop = Some(a.u64_be()?),
                timestamp::PAD if a.payload().is_empty() => {}
                _ => unknown.record([nest.kind(), 0], &a),
            }
        }
        Ok(t)
    }

    /// Writes the nest of type `kind`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        w.nest(kind, |w| {
            put(w, timestamp::START, &self.start)?;
            put(w, timestamp::STOP, &self.stop)
        })
    }

    /// The bytes [`Timestamp::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        attr_len(total_len(&[len_of(&self.start), len_of(&self.stop)]))
    }
}

/// A NAT range (`CTA_NAT_SRC`/`_DST`): addresses and ports the entry is translated to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NatRange {
    /// The lowest address.
    #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
    pub min_addr: Option<IpAddr>,
    /// The highest address.
    #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
    pub max_addr: Option<IpAddr>,
    /// The lowest port.
    pub min_port: Option<u16>,
    /// The highest port.
    pub max_port: Option<u16>,
}

impl NatRange {
    /// Reads a NAT nest.
    ///
    /// # Errors
    /// A malformed attribute or one of the wrong size.
    pub fn parse(nest: &Attr<'_>, unknown: &mut impl UnknownSink) -> Result<Self> {
        let mut n = NatRange::default();
        for a in nest.nested() {
            let a = a?;
            match a.kind() {
                nat::V4_MINIP => n.min_addr = Some(IpAddr::V4(a.array::<4>()?.into())),
                nat::V4_MAXIP => n.max_addr = Some(IpAddr::V4(a.array::<4>()?.into())),
                nat::V6_MINIP => n.min_addr = Some(IpAddr::V6(a.array::<16>()?.into())),
                nat::V6_MAXIP => n.max_addr = Some(IpAddr::V6(a.array::<16>()?.into())),
                nat::PROTO => {
                    for p in a.nested() {
                        let p = p?;
                        match p.kind() {
                            protonat::PORT_MIN => n.min_port = Some(p.u16_be()?),
                            protonat::PORT_MAX => n.max_port = Some(p.u16_be()?),
                            _ => unknown.record([nest.kind(), nat::PROTO], &p),
                        }
                    }
                }
                _ => unknown.record([nest.kind(), 0], &a),
            }
        }
        Ok(n)
    }

    /// Writes the nest of type `kind`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        w.nest(kind, |w| {
            put_addr(w, self.min_addr, nat::V4_MINIP, nat::V6_MINIP)?;
            put_addr(w, self.max_addr, nat::V4_MAXIP, nat::V6_MAXIP)?;
            if self.min_port.is_some() || self.max_port.is_some() {
                w.nest(nat::PROTO, |w| {
                    put(w, protonat::PORT_MIN, &self.min_port)?;
                    put(w, protonat::PORT_MAX, &self.max_port)
                })?;
            }
            Ok(())
        })
    }

    /// The bytes [`NatRange::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let ports = if self.min_port.is_some() || self.max_port.is_some() {
            attr_len(total_len(&[len_of(&self.min_port), len_of(&self.max_port)]))
        } else {
            0
        };
        attr_len(total_len(&[
            addr_len(self.min_addr),
            addr_len(self.max_addr),
            ports,
        ]))
    }
}

/// TCP sequence adjustment of one direction (`CTA_SEQ_ADJ_ORIG`/`_REPLY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SeqAdj {
    /// Where the correction starts.
    pub correction_pos: Option<u32>,
    /// Offset before that position.
    pub offset_before: Option<u32>,
    /// Offset after it.
    pub offset_after: Option<u32>,
}

/// Synproxy state (`CTA_SYNPROXY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Synproxy {
    /// Initial sequence number.
    pub isn: Option<u32>,
    /// Initial timestamp.
    pub its: Option<u32>,
    /// Timestamp offset.
    pub tsoff: Option<u32>,
}

/// Reads a nest of up to three be32 attributes numbered 1, 2, 3 (`CTA_SEQADJ_*`,
/// `CTA_SYNPROXY_*`).
#[inline]
fn parse_three_u32(nest: &Attr<'_>, unknown: &mut impl UnknownSink) -> Result<[Option<u32>; 3]> {
    // The kernel's layout, all three in order, read without the general attribute walk.
    let mut b = nest.payload();
    if b.len() == 24 {
        let mut one = |kind| {
            take_header(&mut b, 8, kind)?;
            take::<4>(&mut b).map(u32::from_be_bytes)
        };
        if let (Some(x), Some(y), Some(z)) = (one(1), one(2), one(3)) {
            return Ok([Some(x), Some(y), Some(z)]);
        }
    }
    let mut v = [None; 3];
    for a in nest.nested() {
        let a = a?;
        match (a.kind(), v.as_mut_slice()) {
            (1, [x, _, _]) | (2, [_, x, _]) | (3, [_, _, x]) => *x = Some(a.u32_be()?),
            _ => unknown.record([nest.kind(), 0], &a),
        }
    }
    Ok(v)
}

fn emit_three_u32(kind: u16, v: [Option<u32>; 3], w: &mut Writer<'_>) -> Result<()> {
    w.nest(kind, |w| {
        for (n, x) in (1u16..).zip(&v) {
            put(w, n, x)?;
        }
        Ok(())
    })
}

fn three_u32_len(v: [Option<u32>; 3]) -> usize {
    attr_len(total_len(&v.map(|x| len_of(&x))))
}

impl SeqAdj {
    /// Reads a sequence-adjustment nest.
    ///
    /// # Errors
    /// A malformed attribute or one of the wrong size.
    pub fn parse(nest: &Attr<'_>, unknown: &mut impl UnknownSink) -> Result<Self> {
        let [correction_pos, offset_before, offset_after] = parse_three_u32(nest, unknown)?;
        Ok(SeqAdj {
            correction_pos,
            offset_before,
            offset_after,
        })
    }

    fn fields(&self) -> [Option<u32>; 3] {
        [self.correction_pos, self.offset_before, self.offset_after]
    }

    /// Writes the nest of type `kind`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        emit_three_u32(kind, self.fields(), w)
    }

    /// The bytes [`SeqAdj::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        three_u32_len(self.fields())
    }
}

impl Synproxy {
    /// Reads `CTA_SYNPROXY`.
    ///
    /// # Errors
    /// A malformed attribute or one of the wrong size.
    pub fn parse(nest: &Attr<'_>, unknown: &mut impl UnknownSink) -> Result<Self> {
        let [isn, its, tsoff] = parse_three_u32(nest, unknown)?;
        Ok(Synproxy { isn, its, tsoff })
    }

    fn fields(&self) -> [Option<u32>; 3] {
        [self.isn, self.its, self.tsoff]
    }

    /// Writes the nest of type `kind`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        emit_three_u32(kind, self.fields(), w)
    }

    /// The bytes [`Synproxy::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        three_u32_len(self.fields())
    }
}

/// The helper of an entry (`CTA_HELP`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Helper {
    /// Its name (`ftp`, `sip`, ...; at most 15 bytes).
    pub name: String<{ Helper::NAME_CAP }>,
    /// Helper-private data (userspace helpers), if sent.
    pub info: Option<Vec<u8, { Helper::INFO_CAP }>>,
}

impl Helper {
    /// The longest name (`NF_CT_HELPER_NAME_LEN` minus the NUL).
    pub const NAME_CAP: usize = 15;
    /// The most bytes of private data kept.
    pub const INFO_CAP: usize = 64;

    /// A helper with only a name.
    ///
    /// # Errors
    /// [`Error::CapacityExceeded`] if `name` is longer than 15 bytes.
    pub fn named(name: &str) -> Result<Self> {
        Ok(Helper {
            name: String::try_from(name).map_err(|_| Error::CapacityExceeded("helper name"))?,
            info: None,
        })
    }

    /// Reads `CTA_HELP`.
    ///
    /// # Errors
    /// A malformed attribute; [`Error::CapacityExceeded`] for a name or data too long.
    pub fn parse(nest: &Attr<'_>, unknown: &mut impl UnknownSink) -> Result<Self> {
        let mut h = Helper::default();
        for a in nest.nested() {
            let a = a?;
            match a.kind() {
                help::NAME => {
                    h.name = String::try_from(a.c_str()?)
                        .map_err(|_| Error::CapacityExceeded("helper name"))?;
                }
                help::INFO => {
                    h.info = Some(
                        Vec::from_slice(a.payload())
                            .map_err(|_| Error::CapacityExceeded("helper info"))?,
                    );
                }
                _ => unknown.record([nest.kind(), 0], &a),
            }
        }
        Ok(h)
    }

    /// Writes the nest of type `kind`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        w.nest(kind, |w| {
            w.attr_str(help::NAME, &self.name)?;
            match &self.info {
                Some(info) => w.attr(help::INFO, info),
                None => Ok(()),
            }
        })
    }

    /// The bytes [`Helper::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let info = opt_len(&self.info, |i| attr_len(i.len()));
        attr_len(total_len(&[self.name.attr_len(), info]))
    }
}

/// The security context of an entry (`CTA_SECCTX`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SecCtx {
    /// The context's name.
    pub name: String<{ SecCtx::CAP }>,
}

impl SecCtx {
    /// The longest context kept.
    pub const CAP: usize = 128;

    /// Reads `CTA_SECCTX`.
    ///
    /// # Errors
    /// A malformed attribute; [`Error::CapacityExceeded`] for a name too long.
    pub fn parse(nest: &Attr<'_>, unknown: &mut impl UnknownSink) -> Result<Self> {
        let mut s = SecCtx::default();
        for a in nest.nested() {
            let a = a?;
            match a.kind() {
                secctx::NAME => {
                    s.name = String::try_from(a.c_str()?)
                        .map_err(|_| Error::CapacityExceeded("security context"))?;
                }
                _ => unknown.record([nest.kind(), 0], &a),
            }
        }
        Ok(s)
    }

    /// Writes the nest of type `kind`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        w.nest(kind, |w| w.attr_str(secctx::NAME, &self.name))
    }

    /// The bytes [`SecCtx::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        attr_len(self.name.attr_len())
    }
}

nest_value!(Counters, Timestamp, NatRange, SeqAdj, Synproxy, Helper);

/// Views borrow the context's name from the message.
impl AttrValue for SecCtx {
    type View<'a> = &'a str;
    fn parse(a: &Attr<'_>, unknown: &mut impl UnknownSink) -> Result<Option<Self>> {
        SecCtx::parse(a, unknown).map(Some)
    }
    fn view<'a>(a: &Attr<'a>) -> Result<Option<&'a str>> {
        a.nested()
            .find_last(secctx::NAME)?
            .map(|n| n.c_str())
            .transpose()
    }
    fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        SecCtx::emit(self, kind, w)
    }
    fn attr_len(&self) -> usize {
        self.buffer_len()
    }
}
