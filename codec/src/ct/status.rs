//! Status bits of an entry (`IPS_*` of `linux/netfilter/nf_conntrack_common.h`).

use core::fmt;

use crate::ct::table::AttrValue;
use crate::ct::unknown::UnknownSink;
use crate::nl::{attr_len, Attr, Writer};
use crate::Result;

/// A set of `IPS_*` status bits; bits this codec does not name are kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Status(pub u32);

impl Status {
    /// An expected connection (created by a helper's expectation).
    pub const EXPECTED: Status = Status(1 << 0);
    /// Packets were seen in both directions.
    pub const SEEN_REPLY: Status = Status(1 << 1);
    /// Never early-expired.
    pub const ASSURED: Status = Status(1 << 2);
    /// In the table (the first packet has left the box).
    pub const CONFIRMED: Status = Status(1 << 3);
    /// Needs source NAT in the original direction.
    pub const SRC_NAT: Status = Status(1 << 4);
    /// Needs destination NAT in the original direction.
    pub const DST_NAT: Status = Status(1 << 5);
    /// TCP sequence numbers need adjusting.
    pub const SEQ_ADJUST: Status = Status(1 << 6);
    /// Source NAT is set up.
    pub const SRC_NAT_DONE: Status = Status(1 << 7);
    /// Destination NAT is set up.
    pub const DST_NAT_DONE: Status = Status(1 << 8);
    /// Being removed.
    pub const DYING: Status = Status(1 << 9);
    /// Its timeout is fixed.
    pub const FIXED_TIMEOUT: Status = Status(1 << 10);
    /// A template, not a real entry.
    pub const TEMPLATE: Status = Status(1 << 11);
    /// A fake untracked entry (obsolete).
    pub const UNTRACKED: Status = Status(1 << 12);
    /// A helper was attached explicitly.
    pub const HELPER: Status = Status(1 << 13);
    /// Offloaded to a flow table.
    pub const OFFLOAD: Status = Status(1 << 14);
    /// Offloaded to hardware.
    pub const HW_OFFLOAD: Status = Status(1 << 15);

    /// `SRC_NAT | DST_NAT`.
    pub const NAT_MASK: Status = Status(Self::SRC_NAT.0 | Self::DST_NAT.0);
    /// `SRC_NAT_DONE | DST_NAT_DONE`.
    pub const NAT_DONE_MASK: Status = Status(Self::SRC_NAT_DONE.0 | Self::DST_NAT_DONE.0);
    /// The bits the kernel will not let userspace change (`IPS_UNCHANGEABLE_MASK`).
    pub const UNCHANGEABLE_MASK: Status = Status(
        Self::NAT_DONE_MASK.0
            | Self::NAT_MASK.0
            | Self::EXPECTED.0
            | Self::CONFIRMED.0
            | Self::DYING.0
            | Self::SEQ_ADJUST.0
            | Self::TEMPLATE.0
            | Self::UNTRACKED.0
            | Self::OFFLOAD.0
            | Self::HW_OFFLOAD.0,
    );

    /// Every named bit with its `IPS_` name (without the prefix), lowest bit first.
    pub const NAMES: [(&'static str, Status); 16] = [
        ("EXPECTED", Self::EXPECTED),
        ("SEEN_REPLY", Self::SEEN_REPLY),
        ("ASSURED", Self::ASSURED),
        ("CONFIRMED", Self::CONFIRMED),
        ("SRC_NAT", Self::SRC_NAT),
        ("DST_NAT", Self::DST_NAT),
        ("SEQ_ADJUST", Self::SEQ_ADJUST),
        ("SRC_NAT_DONE", Self::SRC_NAT_DONE),
        ("DST_NAT_DONE", Self::DST_NAT_DONE),
        ("DYING", Self::DYING),
        ("FIXED_TIMEOUT", Self::FIXED_TIMEOUT),
        ("TEMPLATE", Self::TEMPLATE),
        ("UNTRACKED", Self::UNTRACKED),
        ("HELPER", Self::HELPER),
        ("OFFLOAD", Self::OFFLOAD),
        ("HW_OFFLOAD", Self::HW_OFFLOAD),
    ];

    /// The empty set.
    pub const fn empty() -> Self {
        Status(0)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Status) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any bit of `other` is set.
    pub const fn intersects(self, other: Status) -> bool {
        self.0 & other.0 != 0
    }

    /// The union.
    pub const fn union(self, other: Status) -> Self {
        Status(self.0 | other.0)
    }

    /// The bits of `self` not in `other`.
    pub const fn difference(self, other: Status) -> Self {
        Status(self.0 & !other.0)
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The bit named `name` (`"ASSURED"`, case-insensitive), if there is one.
    pub fn from_name(name: &str) -> Option<Status> {
        Self::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, s)| s)
    }
}

/// A be32 attribute (`CTA_STATUS`, `CTA_STATUS_MASK`).
impl AttrValue for Status {
    type View<'a> = Status;
    #[inline]
    fn parse(a: &Attr<'_>, _: &mut impl UnknownSink) -> Result<Option<Self>> {
        a.u32_be().map(|s| Some(Status(s)))
    }
    #[inline]
    fn view<'a>(a: &Attr<'a>) -> Result<Option<Status>> {
        a.u32_be().map(|s| Some(Status(s)))
    }
    fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        w.attr_u32_be(kind, self.0)
    }
    fn attr_len(&self) -> usize {
        attr_len(4)
    }
}

impl core::ops::BitOr for Status {
    type Output = Status;
    fn bitor(self, rhs: Status) -> Status {
        self.union(rhs)
    }
}

impl core::ops::BitOrAssign for Status {
    fn bitor_assign(&mut self, rhs: Status) {
        self.0 |= rhs.0;
    }
}

impl core::ops::BitAnd for Status {
    type Output = Status;
    fn bitand(self, rhs: Status) -> Status {
        Status(self.0 & rhs.0)
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Status({:#x}: {})", self.0, self)
    }
}

/// Writes the named bits separated by `|`, then any unnamed remainder in hex.
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut rest = self.0;
        for (name, bit) in Self::NAMES {
            if self.contains(bit) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
                rest &= !bit.0;
            }
        }
        if rest != 0 || first {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "{rest:#x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bits() {
        let s = Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED;
        assert_eq!(s.bits(), 0xe);
        assert!(s.contains(Status::ASSURED));
        assert!(!s.contains(Status::DYING));
        assert_eq!(Status::from_name("assured"), Some(Status::ASSURED));
        assert_eq!(Status::from_name("nope"), None);
        for (i, (_, bit)) in Status::NAMES.iter().enumerate() {
            assert_eq!(bit.0, 1 << i);
        }
        assert_eq!(Status::UNCHANGEABLE_MASK.0, 0xdbf9);
    }
}
