//! The attribute tables behind [`ConntrackRepr`](crate::ct::ConntrackRepr) and
//! [`ExpectRepr`](crate::exp::ExpectRepr).
//!
//! Each top-level attribute is one line of an [`attribute_table!`] invocation: its field
//! name, value type and attribute type. From that line come the repr's field, the view's
//! getter, the parse arm, the emit call, the length and the line of `clear`; a new attribute
//! is one new line, and a value type the table cannot read, write or size does not compile
//! (every method of [`AttrValue`] is required). The value types implement [`AttrValue`]
//! beside their own parse and emit code; the integers and strings do it here.
//!
//! [`AttrIndex`] is what both views build when they are made: where each known attribute
//! is, in one pass, so that a getter finds its attribute without walking the message.

use heapless::String;

use crate::ct::attrs::cta;
use crate::ct::unknown::UnknownSink;
use crate::filter::FilterFlags;
use crate::nl::{attr_len, Attr, Attrs, Writer};
use crate::{Error, Result};

/// A value one attribute carries: how it is read from the attribute, read borrowed for a
/// view's getter, written as an attribute of a given type, and how many bytes that takes.
pub(crate) trait AttrValue: Sized {
    /// What a view's getter returns: the value itself, or a string borrowed from the
    /// message.
    type View<'a>;

    /// Reads the value; `None` when the attribute holds nothing this codec knows (the
    /// protocol state of a protocol it does not know). Nested attributes it does not know
    /// go to `unknown`.
    fn parse(a: &Attr<'_>, unknown: &mut impl UnknownSink) -> Result<Option<Self>>;

    /// Reads what a view's getter returns.
    fn view<'a>(a: &Attr<'a>) -> Result<Option<Self::View<'a>>>;

    /// Writes the value as an attribute of type `kind`.
    fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()>;

    /// The bytes [`AttrValue::emit`] writes, header and padding included.
    fn attr_len(&self) -> usize;
}

/// Writes `v` as an attribute of type `kind` if it is present.
#[inline]
pub(crate) fn put<T: AttrValue>(w: &mut Writer<'_>, kind: u16, v: &Option<T>) -> Result<()> {
    match v {
        Some(v) => v.emit(kind, w),
        None => Ok(()),
    }
}

/// The bytes [`put`] writes for `v`.
#[inline]
pub(crate) fn len_of<T: AttrValue>(v: &Option<T>) -> usize {
    v.as_ref().map_or(0, AttrValue::attr_len)
}

/// Wraps what was read in `Some`: the [`AttrValue::parse`] of values that are
/// always known.
#[inline]
pub(crate) fn some<T>(v: Result<T>) -> Result<Option<T>> {
    v.map(Some)
}

/// The integers: one byte for `u8`, big-endian for the others, as every ctnetlink integer
/// but `CTA_FILTER`'s flags and the labels (which have types of their own).
macro_rules! int_value {
    ($($t:ty: $read:ident, $write:ident, $len:expr;)+) => {
        $(
            impl AttrValue for $t {
                type View<'a> = $t;
                #[inline]
                fn parse(a: &Attr<'_>, _: &mut impl UnknownSink) -> Result<Option<Self>> {
                    some(a.$read())
                }
                #[inline]
                fn view<'a>(a: &Attr<'a>) -> Result<Option<$t>> {
                    some(a.$read())
                }
                #[inline]
                fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
                    w.$write(kind, *self)
                }
                #[inline]
                fn attr_len(&self) -> usize {
                    attr_len($len)
                }
            }
        )+
    };
}

int_value! {
    u8: u8, attr_u8, 1;
    u16: u16_be, attr_u16_be, 2;
    u32: u32_be, attr_u32_be, 4;
    u64: u64_be, attr_u64_be, 8;
}

/// A NUL-terminated string of at most `N` bytes; the view borrows it from the message.
impl<const N: usize> AttrValue for String<N> {
    type View<'a> = &'a str;
    fn parse(a: &Attr<'_>, _: &mut impl UnknownSink) -> Result<Option<Self>> {
        String::try_from(a.c_str()?)
            .map(Some)
            .map_err(|_| Error::CapacityExceeded("string attribute"))
    }
    fn view<'a>(a: &Attr<'a>) -> Result<Option<&'a str>> {
        some(a.c_str())
    }
    fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        w.attr_str(kind, self)
    }
    fn attr_len(&self) -> usize {
        attr_len(self.len().saturating_add(1))
    }
}

/// Implements [`AttrValue`] for nest types that have the usual `parse(nest, unknown)`,
/// `emit(kind, w)` and `buffer_len()`, read by value in views too.
macro_rules! nest_value {
    ($($t:ty),+ $(,)?) => {
        $(
            impl $crate::ct::table::AttrValue for $t {
                type View<'a> = $t;
                #[inline]
                fn parse(
                    a: &$crate::nl::Attr<'_>,
                    unknown: &mut impl $crate::ct::UnknownSink,
                ) -> $crate::Result<Option<Self>> {
                    <$t>::parse(a, unknown).map(Some)
                }
                #[inline]
                fn view<'a>(a: &$crate::nl::Attr<'a>) -> $crate::Result<Option<$t>> {
                    <$t>::parse(a, &mut ()).map(Some)
                }
                #[inline]
                fn emit(&self, kind: u16, w: &mut $crate::nl::Writer<'_>) -> $crate::Result<()> {
                    <$t>::emit(self, kind, w)
                }
                #[inline]
                fn attr_len(&self) -> usize {
                    self.buffer_len()
                }
            }
        )+
    };
}
pub(crate) use nest_value;

/// `CTA_FILTER`: its type's own `emit` writes that one attribute type.
impl AttrValue for FilterFlags {
    type View<'a> = FilterFlags;
    fn parse(a: &Attr<'_>, unknown: &mut impl UnknownSink) -> Result<Option<Self>> {
        some(FilterFlags::parse(a, unknown))
    }
    fn view<'a>(a: &Attr<'a>) -> Result<Option<FilterFlags>> {
        some(FilterFlags::parse(a, &mut ()))
    }
    fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        if kind != cta::FILTER {
            return Err(Error::InvalidValue("attribute type of filter flags"));
        }
        FilterFlags::emit(self, w)
    }
    fn attr_len(&self) -> usize {
        self.buffer_len()
    }
}

/// Whether `kinds` is strictly ascending (the tables list attributes in the order they are
/// written, which is the kernel's).
// Used only in `const` assertions, which rustc 1.88 (the rust-version) does not count as uses.
#[allow(dead_code)]
pub(crate) const fn ascending(kinds: &[u16]) -> bool {
    let mut rest = kinds;
    while let [a, tail @ ..] = rest {
        if let [b, ..] = tail {
            if *a >= *b {
                return false;
            }
        }
        rest = tail;
    }
    true
}

/// The last of `kinds` (0 for none).
// Used only in `const` assertions, which rustc 1.88 (the rust-version) does not count as uses.
#[allow(dead_code)]
pub(crate) const fn last(kinds: &[u16]) -> u16 {
    match kinds {
        [.., k] => *k,
        [] => 0,
    }
}

/// Where the top-level attributes of a message are: one slot per known type (`1..N`), the
/// offset of its last occurrence, found in one pass over the message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttrIndex<const N: usize> {
    offsets: [u32; N],
    unknown: u16,
    in_order: bool,
}

impl<const N: usize> AttrIndex<N> {
    const ABSENT: u32 = u32::MAX;

    /// Walks `attrs` once, checking the framing of each attribute. A zero-length attribute
    /// of type `pad` (if given) is padding and is not noted.
    ///
    /// # Errors
    /// The first framing error; [`Error::TooLong`] past 4 GiB.
    #[inline]
    pub(crate) fn build(attrs: &[u8], pad: Option<u16>) -> Result<Self> {
        let mut index = AttrIndex {
            offsets: [Self::ABSENT; N],
            unknown: 0,
            in_order: true,
        };
        let mut previous = 0u16;
        let mut it = Attrs::new(attrs);
        loop {
            let offset = attrs.len().saturating_sub(it.remaining().len());
            let Some(a) = it.next() else { break };
            let a = a?;
            let kind = a.kind();
            if Some(kind) == pad && a.payload().is_empty() {
                continue;
            }
            match index.offsets.get_mut(usize::from(kind)) {
                Some(slot) if kind != 0 => {
                    *slot = u32::try_from(offset).map_err(|_| Error::TooLong("message"))?;
                    index.in_order &= kind > previous;
                    previous = kind;
                }
                _ => {
                    index.unknown = index.unknown.saturating_add(1);
                    index.in_order = false;
                }
            }
        }
        Ok(index)
    }

    /// The attribute of type `kind` in `attrs` (the bytes the index was built from).
    #[inline]
    pub(crate) fn get<'a>(&self, attrs: &'a [u8], kind: u16) -> Option<Attr<'a>> {
        let offset = *self.offsets.get(usize::from(kind))?;
        if offset == Self::ABSENT {
            return None;
        }
        let rest = attrs.get(usize::try_from(offset).ok()?..)?;
        Attrs::new(rest).next()?.ok()
    }

    /// How many attributes have types outside the index.
    #[inline]
    pub(crate) const fn unknown(&self) -> u16 {
        self.unknown
    }

    /// Whether every attribute has a known type and they came in strictly ascending order
    /// (no repeats): reading them in the table's order is then reading them in wire order.
    #[inline]
    pub(crate) const fn in_order(&self) -> bool {
        self.in_order
    }
}

/// Defines a repr from a table of its top-level attributes, with the getters of its view.
///
/// ```text
/// attribute_table! {
///     /// Docs of the repr.
///     #[derive(...)]
///     pub struct Repr for View, checked by CHECK (, pad PAD_KIND)? {
///         /// Docs of the field and the getter.
///         field: ValueType (as GetterType)? = KIND,
///         ...
///     }
/// }
/// ```
///
/// It defines the struct (`family`, one `Option<ValueType>` per line, `unknown`) and:
/// `Repr::ATTRIBUTES` (the types, in table order, which must be ascending); the private
/// `clear`, `read_attrs` (the parse arms) and `read_indexed` (the same through a view's
/// [`AttrIndex`]); the public `emit_attrs`, `attrs_len`, `parse`, `parse_msg`,
/// `parse_attrs`, `parse_into`, `read_view`, `buffer_len` and `emit`, and
/// `TryFrom<&View>`; and one getter per line on `View`, returning `GetterType` (by default
/// `ValueType`). `View` must have `attrs: &[u8]`, `index: AttrIndex<_>`, `fn family(&self)`
/// and `fn attr(&self, u16) -> Option<Attr<'a>>`; `CHECK(&NfMsg) -> Result<()>` refuses the
/// messages that do not carry a `Repr`.
macro_rules! attribute_table {
    (
        $(#[$sattr:meta])*
        pub struct $repr:ident for $view:ident, checked by $check:path $(, pad $pad:path)? {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $ty:ty $(as $vty:ty)? = $kind:path
            ),+ $(,)?
        }
    ) => {
        $(#[$sattr])*
        pub struct $repr {
            /// Address family (nfgenmsg).
            pub family: u8,
            $(
                $(#[doc = $doc])*
                pub $field: Option<$ty>,
            )+
            /// Attributes this codec does not know.
            pub unknown: $crate::ct::Unknowns,
        }

        impl $repr {
            /// The attribute types this type holds, in the order
            #[doc = concat!("[`", stringify!($repr), "::emit_attrs`]")]
            /// writes them.
            pub const ATTRIBUTES: &'static [u16] = &[$($kind),+];

            /// Empties every field and sets the family.
            fn clear(&mut self, family: u8) {
                self.family = family;
                $( self.$field = None; )+
                self.unknown.kept.clear();
                self.unknown.overflow = 0;
            }

            /// Reads the attributes in `attrs` into `self`, over what it holds; the last of
            /// repeated attributes wins.
            #[inline]
            fn read_attrs(&mut self, attrs: &[u8]) -> $crate::Result<()> {
                let u = &mut self.unknown;
                for a in $crate::nl::Attrs::new(attrs) {
                    let a = a?;
                    match a.kind() {
                        $( $pad if a.payload().is_empty() => {} )?
                        $(
                            $kind => {
                                self.$field =
                                    <$ty as $crate::ct::table::AttrValue>::parse(&a, u)?;
                            }
                        )+
                        _ => u.record($crate::ct::unknown::TOP, &a),
                    }
                }
                Ok(())
            }

            /// [`Self::read_attrs`] through the index a view built of `attrs`: when the
            /// attributes came in table order, without walking them again.
            #[inline]
            fn read_indexed<const N: usize>(
                &mut self,
                attrs: &[u8],
                index: &$crate::ct::table::AttrIndex<N>,
            ) -> $crate::Result<()> {
                if !index.in_order() {
                    return self.read_attrs(attrs);
                }
                let u = &mut self.unknown;
                $(
                    if let Some(a) = index.get(attrs, $kind) {
                        self.$field = <$ty as $crate::ct::table::AttrValue>::parse(&a, u)?;
                    }
                )+
                Ok(())
            }

            /// Writes every present attribute, in ascending type order, then the top-level
            /// unknown ones; nothing else (no message header, no nfgenmsg).
            ///
            /// # Errors
            /// [`Error::BufferTooSmall`](crate::Error::BufferTooSmall);
            /// [`Error::TooLong`](crate::Error::TooLong) for a nest over 64 KiB.
            pub fn emit_attrs(&self, w: &mut $crate::nl::Writer<'_>) -> $crate::Result<()> {
                $( $crate::ct::table::put(w, $kind, &self.$field)?; )+
                self.unknown.emit_top_level(w)
            }

            /// The bytes
            #[doc = concat!("[`", stringify!($repr), "::emit_attrs`]")]
            /// writes.
            pub fn attrs_len(&self) -> usize {
                $crate::nl::total_len(&[
                    $( $crate::ct::table::len_of(&self.$field), )+
                    self.unknown.top_level_len(),
                ])
            }
        }

        impl $repr {
            /// Reads every attribute of a message.
            ///
            /// # Errors
            /// [`Error::UnexpectedMessage`](crate::Error::UnexpectedMessage) for a message
            #[doc = concat!("that does not carry a `", stringify!($repr), "`;")]
            /// any malformed attribute; [`Error::CapacityExceeded`](crate::Error::CapacityExceeded)
            /// for a string or data longer than this type holds.
            pub fn parse(nf: &$crate::nfnl::NfMsg<'_>) -> $crate::Result<Self> {
                $check(nf)?;
                Self::parse_attrs(nf.nfgen().family, nf.attr_bytes())
            }

            /// Reads a message received from the kernel (a dump entry, a GET reply, an
            /// event).
            ///
            /// # Errors
            /// As [`NfMsg::new_checked`](crate::nfnl::NfMsg::new_checked) and
            #[doc = concat!("[`", stringify!($repr), "::parse`].")]
            pub fn parse_msg(msg: $crate::nl::NlMsg<'_>) -> $crate::Result<Self> {
                Self::parse(&$crate::nfnl::NfMsg::new_checked(msg)?)
            }

            /// Reads the attributes in `attrs` (what follows nfgenmsg), of family `family`.
            ///
            /// # Errors
            #[doc = concat!("As [`", stringify!($repr), "::parse`].")]
            pub fn parse_attrs(family: u8, attrs: &[u8]) -> $crate::Result<Self> {
                let mut r = $repr {
                    family,
                    ..$repr::default()
                };
                r.read_attrs(attrs)?;
                Ok(r)
            }

            /// Reads a message into `self`, replacing everything it held: what
            #[doc = concat!("[`", stringify!($repr), "::parse`]")]
            /// returns, without making and moving a new value (this type is large), for
            /// loops that read many entries into one, as a dump does.
            ///
            /// # Errors
            #[doc = concat!("As [`", stringify!($repr), "::parse`];")]
            /// `self` then holds what was read before the error.
            pub fn parse_into(&mut self, nf: &$crate::nfnl::NfMsg<'_>) -> $crate::Result<()> {
                $check(nf)?;
                self.clear(nf.nfgen().family);
                self.read_attrs(nf.attr_bytes())
            }

            /// Reads what a view shows into `self`, replacing everything it held: what
            /// `try_from(view)` returns, into an existing value. The attributes are found
            /// through the view's index, not by walking the message again.
            ///
            /// # Errors
            #[doc = concat!("As [`", stringify!($repr), "::parse`];")]
            /// `self` then holds what was read before the error.
            pub fn read_view(&mut self, view: &$view<'_>) -> $crate::Result<()> {
                self.clear(view.family());
                self.read_indexed(view.attrs, &view.index)
            }

            /// The bytes of a whole message
            #[doc = concat!("[`", stringify!($repr), "::emit`]")]
            /// writes.
            pub fn buffer_len(&self) -> usize {
                $crate::nl::total_len(&[
                    $crate::nl::NlMsgHeader::LEN,
                    $crate::nfnl::NfGenMsg::LEN,
                    self.attrs_len(),
                ])
            }

            /// Writes a whole message carrying this value: header (`kind`, `flags`, `seq`,
            /// port id 0), nfgenmsg (`family`, version 0), attributes.
            ///
            /// # Errors
            #[doc = concat!("As [`", stringify!($repr), "::emit_attrs`];")]
            /// the writer is left as it was.
            pub fn emit(
                &self,
                w: &mut $crate::nl::Writer<'_>,
                kind: u16,
                flags: u16,
                seq: u32,
            ) -> $crate::Result<core::ops::Range<usize>> {
                let nfgen = $crate::nfnl::NfGenMsg {
                    family: self.family,
                    version: $crate::nfnl::NFNETLINK_V0,
                    res_id: 0,
                };
                $crate::nfnl::write_typed(w, kind, flags, seq, nfgen, |w| self.emit_attrs(w))
            }
        }

        /// Reads through the view's index
        #[doc = concat!("(see [`", stringify!($repr), "::read_view`]).")]
        impl<'a> TryFrom<&$view<'a>> for $repr {
            type Error = $crate::Error;

            fn try_from(view: &$view<'a>) -> $crate::Result<Self> {
                let mut r = $repr {
                    family: view.family(),
                    ..$repr::default()
                };
                r.read_indexed(view.attrs, &view.index)?;
                Ok(r)
            }
        }

        const _: () = assert!(
            $crate::ct::table::ascending($repr::ATTRIBUTES),
            "the table must list attributes in ascending type order"
        );

        impl<'a> $view<'a> {
            $(
                $(#[doc = $doc])*
                ///
                /// # Errors
                /// A malformed or wrong-sized attribute.
                #[inline]
                pub fn $field(
                    &self,
                ) -> $crate::Result<Option<$crate::ct::table::attribute_table!(@view $ty $(, $vty)?)>> {
                    match self.attr($kind) {
                        Some(a) => <$ty as $crate::ct::table::AttrValue>::view(&a),
                        None => Ok(None),
                    }
                }
            )+
        }
    };
    (@view $ty:ty) => { $ty };
    (@view $ty:ty, $vty:ty) => { $vty };
}
pub(crate) use attribute_table;
