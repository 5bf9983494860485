//! One expectation: the view and the plain-data repr.

use heapless::String;

use crate::ct::attrs::{expect, expect_nat};
use crate::ct::tuple::opt;
use crate::ct::unknown::{attr_len, sum, UnknownSink, Unknowns, TOP};
use crate::ct::{EventKind, Tuple};
use crate::nfnl::{exp_msg, msg_type, write_typed, NfGenMsg, NfMsg, Subsystem, NFNETLINK_V0};
use crate::nl::{flags, Attr, Attrs, NlMsg, NlMsgHeader, Writer};
use crate::{Error, Result};

/// Expectation flags (`NF_CT_EXPECT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExpectFlags(pub u32);

impl ExpectFlags {
    /// It stays after being used.
    pub const PERMANENT: ExpectFlags = ExpectFlags(0x1);
    /// It is not active yet.
    pub const INACTIVE: ExpectFlags = ExpectFlags(0x2);
    /// It was created from userspace.
    pub const USERSPACE: ExpectFlags = ExpectFlags(0x4);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: ExpectFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// NAT of the expected connection (`CTA_EXPECT_NAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExpectNat {
    /// The direction (`IP_CT_DIR_ORIGINAL` 0 or `IP_CT_DIR_REPLY` 1).
    pub dir: Option<u32>,
    /// The tuple to translate to.
    pub tuple: Option<Tuple>,
}

impl ExpectNat {
    fn parse(nest: &Attr<'_>, unknown: &mut impl UnknownSink) -> Result<Self> {
        let mut n = ExpectNat::default();
        for a in nest.nested() {
            let a = a?;
            match a.kind() {
                expect_nat::DIR => n.dir = Some(a.u32_be()?),
                expect_nat::TUPLE => n.tuple = Some(Tuple::parse(&a, unknown)?),
                _ => unknown.record([expect::NAT, 0], &a),
            }
        }
        Ok(n)
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        w.nest(expect::NAT, |w| {
            opt(w, self.dir, |w, d| w.attr_u32_be(expect_nat::DIR, d))?;
            opt(w, self.tuple.as_ref(), |w, t| t.emit(expect_nat::TUPLE, w))
        })
    }

    fn buffer_len(&self) -> usize {
        attr_len(sum(&[
            self.dir.map_or(0, |_| attr_len(4)),
            self.tuple.as_ref().map_or(0, Tuple::buffer_len),
        ]))
    }
}

/// One expectation as plain data: every `CTA_EXPECT_*` attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExpectRepr {
    /// Address family (nfgenmsg).
    pub family: u8,
    /// `CTA_EXPECT_MASTER`: the original tuple of the master connection.
    pub master: Option<Tuple>,
    /// `CTA_EXPECT_TUPLE`: the expected connection.
    pub tuple: Option<Tuple>,
    /// `CTA_EXPECT_MASK`: which bits of the expected tuple must match.
    pub mask: Option<Tuple>,
    /// `CTA_EXPECT_TIMEOUT` (seconds).
    pub timeout: Option<u32>,
    /// `CTA_EXPECT_ID`.
    pub id: Option<u32>,
    /// `CTA_EXPECT_HELP_NAME`.
    pub helper: Option<String<{ ExpectRepr::NAME_CAP }>>,
    /// `CTA_EXPECT_ZONE`.
    pub zone: Option<u16>,
    /// `CTA_EXPECT_FLAGS`.
    pub flags: Option<ExpectFlags>,
    /// `CTA_EXPECT_CLASS`.
    pub class: Option<u32>,
    /// `CTA_EXPECT_NAT`.
    pub nat: Option<ExpectNat>,
    /// `CTA_EXPECT_FN`: the name of the expectation function (`"sip"`, ...).
    pub func: Option<String<{ ExpectRepr::FN_CAP }>>,
    /// Attributes this codec does not know.
    pub unknown: Unknowns,
}

impl ExpectRepr {
    /// The longest helper name (`NF_CT_HELPER_NAME_LEN` minus the NUL).
    pub const NAME_CAP: usize = 15;
    /// The longest expectation function name kept.
    pub const FN_CAP: usize = 31;

    /// Reads every attribute of an expectation message.
    ///
    /// # Errors
    /// [`Error::UnexpectedMessage`] for another message; a malformed attribute;
    /// [`Error::CapacityExceeded`] for a name longer than this type holds.
    pub fn parse(nf: &NfMsg<'_>) -> Result<Self> {
        check_kind(nf)?;
        Self::parse_attrs(nf.nfgen().family, nf.attr_bytes())
    }

    /// Reads a message received from the kernel.
    ///
    /// # Errors
    /// As [`NfMsg::new_checked`] and [`ExpectRepr::parse`].
    pub fn parse_msg(msg: NlMsg<'_>) -> Result<Self> {
        Self::parse(&NfMsg::new_checked(msg)?)
    }

    /// Reads the attributes after nfgenmsg.
    ///
    /// # Errors
    /// As [`ExpectRepr::parse`].
    pub fn parse_attrs(family: u8, attrs: &[u8]) -> Result<Self> {
        let mut r = ExpectRepr {
            family,
            ..ExpectRepr::default()
        };
        let u = &mut r.unknown;
        for a in Attrs::new(attrs) {
            let a = a?;
            match a.kind() {
                expect::MASTER => r.master = Some(Tuple::parse(&a, u)?),
                expect::TUPLE => r.tuple = Some(Tuple::parse(&a, u)?),
                expect::MASK => r.mask = Some(Tuple::parse(&a, u)?),
                expect::TIMEOUT => r.timeout = Some(a.u32_be()?),
                expect::ID => r.id = Some(a.u32_be()?),
                expect::HELP_NAME => r.helper = Some(name(&a, "expectation helper name")?),
                expect::ZONE => r.zone = Some(a.u16_be()?),
                expect::FLAGS => r.flags = Some(ExpectFlags(a.u32_be()?)),
                expect::CLASS => r.class = Some(a.u32_be()?),
                expect::NAT => r.nat = Some(ExpectNat::parse(&a, u)?),
                expect::FN => r.func = Some(name(&a, "expectation function name")?),
                _ => u.record(TOP, &a),
            }
        }
        Ok(r)
    }

    /// Writes every present attribute in ascending type order, then the top-level unknown
    /// ones.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn emit_attrs(&self, w: &mut Writer<'_>) -> Result<()> {
        opt(w, self.master.as_ref(), |w, t| t.emit(expect::MASTER, w))?;
        opt(w, self.tuple.as_ref(), |w, t| t.emit(expect::TUPLE, w))?;
        opt(w, self.mask.as_ref(), |w, t| t.emit(expect::MASK, w))?;
        opt(w, self.timeout, |w, v| w.attr_u32_be(expect::TIMEOUT, v))?;
        opt(w, self.id, |w, v| w.attr_u32_be(expect::ID, v))?;
        opt(w, self.helper.as_ref(), |w, v| {
            w.attr_str(expect::HELP_NAME, v)
        })?;
        opt(w, self.zone, |w, v| w.attr_u16_be(expect::ZONE, v))?;
        opt(w, self.flags, |w, v| w.attr_u32_be(expect::FLAGS, v.0))?;
        opt(w, self.class, |w, v| w.attr_u32_be(expect::CLASS, v))?;
        opt(w, self.nat.as_ref(), |w, n| n.emit(w))?;
        opt(w, self.func.as_ref(), |w, v| w.attr_str(expect::FN, v))?;
        self.unknown.emit_top_level(w)
    }

    /// The bytes [`ExpectRepr::emit_attrs`] writes.
    pub fn attrs_len(&self) -> usize {
        let s = |v: &Option<String<{ Self::FN_CAP }>>| {
            v.as_ref()
                .map_or(0, |s| attr_len(s.len().saturating_add(1)))
        };
        sum(&[
            self.master.as_ref().map_or(0, Tuple::buffer_len),
            self.tuple.as_ref().map_or(0, Tuple::buffer_len),
            self.mask.as_ref().map_or(0, Tuple::buffer_len),
            self.timeout.map_or(0, |_| attr_len(4)),
            self.id.map_or(0, |_| attr_len(4)),
            self.helper
                .as_ref()
                .map_or(0, |h| attr_len(h.len().saturating_add(1))),
            self.zone.map_or(0, |_| attr_len(2)),
            self.flags.map_or(0, |_| attr_len(4)),
            self.class.map_or(0, |_| attr_len(4)),
            self.nat.as_ref().map_or(0, ExpectNat::buffer_len),
            s(&self.func),
            self.unknown.top_level_len(),
        ])
    }

    /// The bytes of a whole message [`ExpectRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        sum(&[NlMsgHeader::LEN, NfGenMsg::LEN, self.attrs_len()])
    }

    /// Writes a whole expectation message: header (`kind`, `flags`, `seq`), nfgenmsg,
    /// attributes.
    ///
    /// # Errors
    /// As [`ExpectRepr::emit_attrs`]; the writer is left as it was.
    pub fn emit(
        &self,
        w: &mut Writer<'_>,
        kind: u16,
        flags: u16,
        seq: u32,
    ) -> Result<core::ops::Range<usize>> {
        let nfgen = NfGenMsg {
            family: self.family,
            version: NFNETLINK_V0,
            res_id: 0,
        };
        write_typed(w, kind, flags, seq, nfgen, |w| self.emit_attrs(w))
    }
}

fn name<const N: usize>(a: &Attr<'_>, what: &'static str) -> Result<String<N>> {
    String::try_from(a.c_str()?).map_err(|_| Error::CapacityExceeded(what))
}

fn check_kind(nf: &NfMsg<'_>) -> Result<()> {
    if nf.subsystem() != Subsystem::CtnetlinkExp
        || !matches!(nf.msg_num(), exp_msg::NEW | exp_msg::DELETE)
    {
        return Err(Error::UnexpectedMessage("not an expectation"));
    }
    Ok(())
}

/// A zero-copy view of one expectation message (a dump entry, a GET reply or an event).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Expect<'a> {
    nf: NfMsg<'a>,
}

impl<'a> Expect<'a> {
    /// Makes a view of an expectation `NEW`/`DELETE` message, checking the framing of its
    /// top-level attributes.
    ///
    /// # Errors
    /// [`Error::UnexpectedMessage`] for another message; a framing error.
    pub fn new_checked(nf: NfMsg<'a>) -> Result<Self> {
        check_kind(&nf)?;
        for a in nf.attrs() {
            a?;
        }
        Ok(Expect { nf })
    }

    /// Makes a view of a netlink message.
    ///
    /// # Errors
    /// As [`NfMsg::new_checked`] and [`Expect::new_checked`].
    pub fn parse(msg: NlMsg<'a>) -> Result<Self> {
        Self::new_checked(NfMsg::new_checked(msg)?)
    }

    /// The nfnetlink message.
    pub const fn nf(&self) -> &NfMsg<'a> {
        &self.nf
    }

    /// The address family.
    pub const fn family(&self) -> u8 {
        self.nf.nfgen().family
    }

    /// What the message announces if it is an event: `New` for `EXP_NEW`, `Destroy` for
    /// `EXP_DELETE`.
    pub fn event_kind(&self) -> Option<EventKind> {
        let msg = self.nf.msg();
        if msg.kind() == msg_type(Subsystem::CtnetlinkExp, exp_msg::DELETE) {
            Some(EventKind::Destroy)
        } else if msg.flags() & (flags::CREATE | flags::EXCL) != 0 {
            Some(EventKind::New)
        } else {
            Some(EventKind::Update)
        }
    }

    /// The top-level attribute of type `kind`; if it occurs more than once, the last one
    /// (as [`ExpectRepr::parse`] and the kernel read it).
    pub fn attr(&self, kind: u16) -> Option<Attr<'a>> {
        self.nf
            .attrs()
            .filter_map(|a| a.ok())
            .filter(|a| a.kind() == kind)
            .last()
    }

    fn get<T>(&self, kind: u16, f: impl FnOnce(&Attr<'a>) -> Result<T>) -> Result<Option<T>> {
        self.attr(kind).as_ref().map(f).transpose()
    }

    /// The master's tuple.
    ///
    /// # Errors
    /// A malformed nest.
    pub fn master(&self) -> Result<Option<Tuple>> {
        self.get(expect::MASTER, |a| Tuple::parse(a, &mut ()))
    }

    /// The expected tuple.
    ///
    /// # Errors
    /// A malformed nest.
    pub fn tuple(&self) -> Result<Option<Tuple>> {
        self.get(expect::TUPLE, |a| Tuple::parse(a, &mut ()))
    }

    /// The mask.
    ///
    /// # Errors
    /// A malformed nest.
    pub fn mask(&self) -> Result<Option<Tuple>> {
        self.get(expect::MASK, |a| Tuple::parse(a, &mut ()))
    }

    /// Seconds until it expires.
    ///
    /// # Errors
    /// A wrong-sized attribute.
    pub fn timeout(&self) -> Result<Option<u32>> {
        self.get(expect::TIMEOUT, Attr::u32_be)
    }

    /// Its id.
    ///
    /// # Errors
    /// A wrong-sized attribute.
    pub fn id(&self) -> Result<Option<u32>> {
        self.get(expect::ID, Attr::u32_be)
    }

    /// The helper's name, borrowed.
    ///
    /// # Errors
    /// A malformed string.
    pub fn helper(&self) -> Result<Option<&'a str>> {
        self.get(expect::HELP_NAME, Attr::c_str)
    }

    /// The zone.
    ///
    /// # Errors
    /// A wrong-sized attribute.
    pub fn zone(&self) -> Result<Option<u16>> {
        self.get(expect::ZONE, Attr::u16_be)
    }

    /// The flags.
    ///
    /// # Errors
    /// A wrong-sized attribute.
    pub fn flags(&self) -> Result<Option<ExpectFlags>> {
        self.get(expect::FLAGS, |a| a.u32_be().map(ExpectFlags))
    }

    /// The class.
    ///
    /// # Errors
    /// A wrong-sized attribute.
    pub fn class(&self) -> Result<Option<u32>> {
        self.get(expect::CLASS, Attr::u32_be)
    }

    /// The NAT of the expected connection.
    ///
    /// # Errors
    /// A malformed nest.
    pub fn nat(&self) -> Result<Option<ExpectNat>> {
        self.get(expect::NAT, |a| ExpectNat::parse(a, &mut ()))
    }

    /// The expectation function's name, borrowed.
    ///
    /// # Errors
    /// A malformed string.
    pub fn func(&self) -> Result<Option<&'a str>> {
        self.get(expect::FN, Attr::c_str)
    }
}

impl<'a> TryFrom<&Expect<'a>> for ExpectRepr {
    type Error = Error;

    fn try_from(view: &Expect<'a>) -> Result<Self> {
        ExpectRepr::parse(view.nf())
    }
}
