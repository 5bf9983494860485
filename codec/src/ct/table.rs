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

/// Reads `a` as a `T`, wrapped in `Some`: the [`AttrValue::parse`] of values that are
/// always known.
#[inline]
pub(crate) fn some<T>(v: Result<T>) -> Result<Option<T>> {
    v.map(Some)
}

/// `u8`: a one-byte attribute.
impl AttrValue for u8 {
    type View<'a> = u8;
    #[inline]
    fn parse(a: &Attr<'_>, _: &mut impl UnknownSink) -> Result<Option<Self>> {
        some(a.u8())
    }
    #[inline]
    fn view<'a>(a: &Attr<'a>) -> Result<Option<u8>> {
        some(a.u8())
    }
    #[inline]
    fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        w.attr_u8(kind, *self)
    }
    #[inline]
    fn attr_len(&self) -> usize {
        attr_len(1)
    }
}

/// `u16`: big-endian, as every 16-bit ctnetlink integer (zones, ports, ids).
impl AttrValue for u16 {
    type View<'a> = u16;
    #[inline]
    fn parse(a: &Attr<'_>, _: &mut impl UnknownSink) -> Result<Option<Self>> {
        some(a.u16_be())
    }
    #[inline]
    fn view<'a>(a: &Attr<'a>) -> Result<Option<u16>> {
        some(a.u16_be())
    }
    #[inline]
    fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        w.attr_u16_be(kind, *self)
    }
    #[inline]
    fn attr_len(&self) -> usize {
        attr_len(2)
    }
}

/// `u32`: big-endian (the host-order exceptions, `CTA_FILTER`'s flags and the labels,
/// have their own types).
impl AttrValue for u32 {
    type View<'a> = u32;
    #[inline]
    fn parse(a: &Attr<'_>, _: &mut impl UnknownSink) -> Result<Option<Self>> {
        some(a.u32_be())
    }
    #[inline]
    fn view<'a>(a: &Attr<'a>) -> Result<Option<u32>> {
        some(a.u32_be())
    }
    #[inline]
    fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        w.attr_u32_be(kind, *self)
    }
    #[inline]
    fn attr_len(&self) -> usize {
        attr_len(4)
    }
}

/// `u64`: big-endian.
impl AttrValue for u64 {
    type View<'a> = u64;
    #[inline]
    fn parse(a: &Attr<'_>, _: &mut impl UnknownSink) -> Result<Option<Self>> {
        some(a.u64_be())
    }
    #[inline]
    fn view<'a>(a: &Attr<'a>) -> Result<Option<u64>> {
        some(a.u64_be())
    }
    #[inline]
    fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        w.attr_u64_be(kind, *self)
    }
    #[inline]
    fn attr_len(&self) -> usize {
        attr_len(8)
    }
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
///     pub struct Repr for View (pad: PAD_KIND)? {
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
/// [`AttrIndex`]); the public `emit_attrs` and `attrs_len`; and one getter per line on
/// `View` (which must have `fn attr(&self, u16) -> Option<Attr<'a>>`), returning
/// `GetterType` (by default `ValueType`).
macro_rules! attribute_table {
    (
        $(#[$sattr:meta])*
        pub struct $repr:ident for $view:ident $((pad: $pad:path))? {
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
