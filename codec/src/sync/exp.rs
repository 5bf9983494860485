//! Expectations in sync messages: the view [`SyncExp`], the conversion to and from
//! [`ExpectRepr`], and the emitter [`emit_exp`].

use heapless::String;

use crate::ct::Tuple;
use crate::exp::{ExpectFlags, ExpectNat, ExpectRepr};
use crate::sync::attr::{nta_exp, NtaAttr, NtaWriter, VAR_MAX};
use crate::sync::ct::{addrs, at, emit_addrs, emit_data, emit_ports, index, ports};
use crate::sync::header::DataKind;
use crate::{Error, Result};

const SLOTS: usize = nta_exp::MAX as usize;

fn exp_var_max(kind: u16) -> usize {
    match kind {
        nta_exp::HELPER_NAME => ExpectRepr::NAME_CAP.saturating_add(1),
        nta_exp::FN => ExpectRepr::FN_CAP.saturating_add(1),
        _ => VAR_MAX,
    }
}

/// The attribute numbers of one tuple of an expectation message.
struct Group {
    v4: u16,
    v6: u16,
    proto: u16,
    port: u16,
}

const MASTER: Group = Group {
    v4: nta_exp::MASTER_IPV4,
    v6: nta_exp::MASTER_IPV6,
    proto: nta_exp::MASTER_L4PROTO,
    port: nta_exp::MASTER_PORT,
};
const EXPECT: Group = Group {
    v4: nta_exp::EXPECT_IPV4,
    v6: nta_exp::EXPECT_IPV6,
    proto: nta_exp::EXPECT_L4PROTO,
    port: nta_exp::EXPECT_PORT,
};
const MASK: Group = Group {
    v4: nta_exp::MASK_IPV4,
    v6: nta_exp::MASK_IPV6,
    proto: nta_exp::MASK_L4PROTO,
    port: nta_exp::MASK_PORT,
};
// conntrackd sends no IPv6 NAT tuple for expectations: there is no number for it.
const NAT: Group = Group {
    v4: nta_exp::NAT_IPV4,
    v6: u16::MAX,
    proto: nta_exp::NAT_L4PROTO,
    port: nta_exp::NAT_PORT,
};

/// A view of the attributes of an expectation sync message (`EXP_NEW`, `EXP_UPD`,
/// `EXP_DEL`), checked as [`SyncCt`](crate::sync::SyncCt) is.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SyncExp<'a> {
    attrs: &'a [u8],
    idx: [u16; SLOTS],
    unknown: u16,
}

impl<'a> SyncExp<'a> {
    /// Makes a view of a data message's attribute bytes.
    ///
    /// # Errors
    /// A malformed attribute, or one whose size its type does not allow.
    pub fn new_checked(attrs: &'a [u8]) -> Result<Self> {
        let (idx, unknown) = index::<SLOTS>(attrs, nta_exp::size, exp_var_max)?;
        Ok(SyncExp {
            attrs,
            idx,
            unknown,
        })
    }

    /// The attribute of number `kind`, if present.
    pub fn attr(&self, kind: u16) -> Option<NtaAttr<'a>> {
        at(self.attrs, &self.idx, kind)
    }

    /// How many attributes have numbers this codec does not know.
    pub const fn unknown_count(&self) -> u16 {
        self.unknown
    }

    fn tuple(&self, g: &Group) -> Result<Option<Tuple>> {
        let Some(a) = self.attr(g.v4).or_else(|| self.attr(g.v6)) else {
            return Ok(None);
        };
        let (src, dst) = addrs(&a)?;
        let mut t = Tuple {
            src: Some(src),
            dst: Some(dst),
            ..Tuple::default()
        };
        // conntrackd writes the master's protocol in every group; a group without one is
        // read as having it (what the emitter writes back).
        t.proto = match self.attr(g.proto) {
            Some(a) => Some(a.u8()?),
            None if g.v4 != MASTER.v4 => self.attr(MASTER.proto).map(|a| a.u8()).transpose()?,
            None => None,
        };
        if let Some(p) = self.attr(g.port) {
            let (s, d) = ports(&p)?;
            (t.src_port, t.dst_port) = (Some(s), Some(d));
        }
        Ok(Some(t))
    }

    /// The master's original tuple.
    ///
    /// # Errors
    /// A malformed attribute.
    pub fn master(&self) -> Result<Option<Tuple>> {
        self.tuple(&MASTER)
    }

    /// The expected tuple.
    ///
    /// # Errors
    /// A malformed attribute.
    pub fn expected(&self) -> Result<Option<Tuple>> {
        self.tuple(&EXPECT)
    }

    /// The expectation as an [`ExpectRepr`] (family from the master's addresses).
    ///
    /// # Errors
    /// [`Error::MissingAttribute`] without master or expected tuple;
    /// [`Error::CapacityExceeded`] for a name longer than [`ExpectRepr`] holds.
    pub fn to_repr(&self) -> Result<ExpectRepr> {
        let master = self
            .master()?
            .ok_or(Error::MissingAttribute("sync expectation master"))?;
        let tuple = self
            .expected()?
            .ok_or(Error::MissingAttribute("sync expected tuple"))?;
        let u32_of = |k| self.attr(k).map(|a| a.u32_be()).transpose();
        let name = |k, what| -> Result<Option<String<{ ExpectRepr::FN_CAP }>>> {
            self.attr(k)
                .map(|a| String::try_from(a.c_str()?).map_err(|_| Error::CapacityExceeded(what)))
                .transpose()
        };
        let helper = match self.attr(nta_exp::HELPER_NAME) {
            Some(a) => Some(
                String::try_from(a.c_str()?)
                    .map_err(|_| Error::CapacityExceeded("expectation helper name"))?,
            ),
            None => None,
        };
        let nat_tuple = self.tuple(&NAT)?;
        let nat_dir = u32_of(nta_exp::NAT_DIR)?;
        Ok(ExpectRepr {
            family: master.family().unwrap_or(0),
            master: Some(master),
            tuple: Some(tuple),
            mask: self.tuple(&MASK)?,
            timeout: u32_of(nta_exp::TIMEOUT)?,
            // conntrackd always writes the flags, and a direction with a NAT tuple: a
            // message without them reads as the zeros the emitter writes back.
            flags: Some(ExpectFlags(u32_of(nta_exp::FLAGS)?.unwrap_or(0))),
            class: u32_of(nta_exp::CLASS)?,
            nat: (nat_tuple.is_some() || nat_dir.is_some()).then_some(ExpectNat {
                dir: Some(nat_dir.unwrap_or(0)),
                tuple: nat_tuple,
            }),
            helper,
            func: name(nta_exp::FN, "expectation function name")?,
            ..ExpectRepr::default()
        })
    }
}

fn emit_group(w: &mut NtaWriter<'_>, g: &Group, t: &Tuple, ports_of: Option<u8>) -> Result<()> {
    if let (Some(s), Some(d)) = (t.src, t.dst) {
        if g.v6 == u16::MAX && s.is_ipv6() {
            return Ok(());
        }
        emit_addrs(w, g.v4, g.v6, s, d)?;
    }
    // conntrackd writes the master's protocol number in every group.
    if let Some(p) = t.proto.or(ports_of) {
        w.u8(g.proto, p)?;
    }
    if let (Some(s), Some(d)) = (t.src_port, t.dst_port) {
        emit_ports(w, g.port, s, d)?;
    }
    Ok(())
}

/// Writes the attributes of `e` in conntrackd's `exp2msg` order: master, expected tuple,
/// mask, timeout, flags, class, NAT, helper, function.
///
/// # Errors
/// [`Error::MissingAttribute`] without master or expected tuple; [`Error::BufferTooSmall`].
pub fn emit_exp_attrs(e: &ExpectRepr, w: &mut NtaWriter<'_>) -> Result<()> {
    let master = e
        .master
        .as_ref()
        .ok_or(Error::MissingAttribute("expectation master"))?;
    let tuple = e
        .tuple
        .as_ref()
        .ok_or(Error::MissingAttribute("expected tuple"))?;
    let proto = master.proto;
    emit_group(w, &MASTER, master, proto)?;
    emit_group(w, &EXPECT, tuple, proto)?;
    if let Some(m) = &e.mask {
        emit_group(w, &MASK, m, proto)?;
    }
    if let Some(v) = e.timeout {
        w.u32_be(nta_exp::TIMEOUT, v)?;
    }
    w.u32_be(nta_exp::FLAGS, e.flags.unwrap_or_default().0)?;
    if let Some(v) = e.class {
        w.u32_be(nta_exp::CLASS, v)?;
    }
    if let Some(n) = &e.nat {
        if let Some(t) = &n.tuple {
            emit_group(w, &NAT, t, proto)?;
        }
        w.u32_be(nta_exp::NAT_DIR, n.dir.unwrap_or(0))?;
    }
    if let Some(h) = &e.helper {
        w.c_str(nta_exp::HELPER_NAME, h)?;
    }
    if let Some(f) = &e.func {
        w.c_str(nta_exp::FN, f)?;
    }
    Ok(())
}

/// Writes a whole expectation message at the start of `buf`; returns its length.
///
/// # Errors
/// As [`emit_exp_attrs`]; [`Error::TooLong`].
pub fn emit_exp(
    buf: &mut [u8],
    kind: DataKind,
    flags: u8,
    seq: u32,
    e: &ExpectRepr,
) -> Result<usize> {
    emit_data(buf, kind, flags, seq, |w| emit_exp_attrs(e, w))
}
