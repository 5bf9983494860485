//! One expectation: the view and the plain-data repr.

use heapless::String;

use crate::ct::attrs::{expect, expect_nat};
use crate::ct::table::{self, attribute_table, len_of, put, some, AttrIndex, AttrValue};
use crate::ct::unknown::UnknownSink;
use crate::ct::{EventKind, Tuple};
use crate::nfnl::{exp_msg, msg_type, NfMsg, Subsystem};
use crate::nl::{attr_len, flags, total_len, Attr, Attrs, NlMsg, Writer};
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

/// `CTA_EXPECT_NAT`.
impl AttrValue for ExpectNat {
    type View<'a> = ExpectNat;
    fn parse(nest: &Attr<'_>, unknown: &mut impl UnknownSink) -> Result<Option<Self>> {
        let mut n = ExpectNat::default();
        for a in nest.nested() {
            let a = a?;
            match a.kind() {
                expect_nat::DIR => n.dir = Some(a.u32_be()?),
                expect_nat::TUPLE => n.tuple = Some(Tuple::parse(&a, unknown)?),
                _ => unknown.record([expect::NAT, 0], &a),
            }
        }
        Ok(Some(n))
    }

    fn view<'a>(a: &Attr<'a>) -> Result<Option<ExpectNat>> {
        Self::parse(a, &mut ())
    }

    fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        w.nest(kind, |w| {
            put(w, expect_nat::DIR, &self.dir)?;
            put(w, expect_nat::TUPLE, &self.tuple)
        })
    }

    fn attr_len(&self) -> usize {
        attr_len(total_len(&[len_of(&self.dir), len_of(&self.tuple)]))
    }
}

/// A be32 attribute (`CTA_EXPECT_FLAGS`).
impl AttrValue for ExpectFlags {
    type View<'a> = ExpectFlags;
    fn parse(a: &Attr<'_>, _: &mut impl UnknownSink) -> Result<Option<Self>> {
        some(a.u32_be().map(ExpectFlags))
    }
    fn view<'a>(a: &Attr<'a>) -> Result<Option<ExpectFlags>> {
        some(a.u32_be().map(ExpectFlags))
    }
    fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        w.attr_u32_be(kind, self.0)
    }
    fn attr_len(&self) -> usize {
        attr_len(4)
    }
}

attribute_table! {
    /// One expectation as plain data: every `CTA_EXPECT_*` attribute, one line each in the
    /// table that also makes the getters of the view [`Expect`].
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    #[cfg_attr(feature = "defmt", derive(defmt::Format))]
    pub struct ExpectRepr for Expect, checked by check_kind {
        /// The original tuple of the master connection (`CTA_EXPECT_MASTER`).
        master: Tuple = expect::MASTER,
        /// The expected connection (`CTA_EXPECT_TUPLE`).
        tuple: Tuple = expect::TUPLE,
        /// Which bits of the expected tuple must match (`CTA_EXPECT_MASK`).
        mask: Tuple = expect::MASK,
        /// Seconds until it expires (`CTA_EXPECT_TIMEOUT`).
        timeout: u32 = expect::TIMEOUT,
        /// Its id (`CTA_EXPECT_ID`).
        id: u32 = expect::ID,
        /// The helper's name (`CTA_EXPECT_HELP_NAME`; the view borrows it).
        helper: String<{ ExpectRepr::NAME_CAP }> as &'a str = expect::HELP_NAME,
        /// The zone (`CTA_EXPECT_ZONE`).
        zone: u16 = expect::ZONE,
        /// The flags (`CTA_EXPECT_FLAGS`).
        flags: ExpectFlags = expect::FLAGS,
        /// The class (`CTA_EXPECT_CLASS`).
        class: u32 = expect::CLASS,
        /// The NAT of the expected connection (`CTA_EXPECT_NAT`).
        nat: ExpectNat = expect::NAT,
        /// The name of the expectation function, `"sip"` and the like (`CTA_EXPECT_FN`;
        /// the view borrows it).
        func: String<{ ExpectRepr::FN_CAP }> as &'a str = expect::FN,
    }
}

impl ExpectRepr {
    /// The longest helper name (`NF_CT_HELPER_NAME_LEN` minus the NUL).
    pub const NAME_CAP: usize = 15;
    /// The longest expectation function name kept.
    pub const FN_CAP: usize = 31;
}

fn check_kind(nf: &NfMsg<'_>) -> Result<()> {
    if nf.subsystem() != Subsystem::CtnetlinkExp
        || !matches!(nf.msg_num(), exp_msg::NEW | exp_msg::DELETE)
    {
        return Err(Error::UnexpectedMessage("not an expectation"));
    }
    Ok(())
}

/// The slots of the view's index: `CTA_EXPECT_*` 1 to 11 (slot 0 unused).
const SLOTS: usize = expect::FN as usize + 1;

const _: () = assert!(table::last(ExpectRepr::ATTRIBUTES) == expect::FN);

/// A zero-copy view of one expectation message (a dump entry, a GET reply or an event).
///
/// Made like [`Conntrack`](crate::ct::Conntrack): one pass that checks the framing and notes
/// where each attribute is; getters decode on demand and read the last of repeated
/// attributes.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    nf: NfMsg<'a>,
    attrs: &'a [u8],
    index: AttrIndex<SLOTS>,
}

/// Logs the message; the attribute index is left out.
#[cfg(feature = "defmt")]
impl defmt::Format for Expect<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Expect {{ nf: {} }}", self.nf);
    }
}

impl<'a> Expect<'a> {
    /// Makes a view of an expectation `NEW`/`DELETE` message, checking the framing of its
    /// top-level attributes.
    ///
    /// # Errors
    /// [`Error::UnexpectedMessage`] for another message; a framing error.
    pub fn new_checked(nf: NfMsg<'a>) -> Result<Self> {
        check_kind(&nf)?;
        let attrs = nf.attr_bytes();
        let index = AttrIndex::build(attrs, None)?;
        Ok(Expect { nf, attrs, index })
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
        if usize::from(kind) < SLOTS && kind != 0 {
            return self.index.get(self.attrs, kind);
        }
        Attrs::new(self.attrs).find_last(kind).ok().flatten()
    }
}
