//! The label map of `connlabel.conf`: names for the bits of the connection label bitmap.
//!
//! The file has one label per line, `BIT NAME` (bit 0 to 127); `#` starts a comment line;
//! blank lines are ignored. Reading the file is the caller's business (see `conntrack-io`);
//! this module parses its text into a fixed-capacity table.
//!
//! ```
//! use conntrack_codec::labels::{LabelMap, LabelNames};
//!
//! let map = LabelMap::parse("# labels\n0 eth0-in\n1 eth1-in\n\n42 vpn\n").unwrap();
//! assert_eq!(map.name(42), Some("vpn"));
//! assert_eq!(map.bit("eth1-in"), Some(1));
//! assert_eq!(map.name(3), None);
//! ```

use core::fmt;

use heapless::{String, Vec};

/// Looks up the name of a label bit (what the text formatter needs).
pub trait LabelNames {
    /// The name of label `bit`, if it has one.
    fn name(&self, bit: u16) -> Option<&str>;
}

/// No names: labels are printed by number.
impl LabelNames for () {
    fn name(&self, _bit: u16) -> Option<&str> {
        None
    }
}

/// A bad line of a label map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LabelMapError {
    /// The line, counted from 1.
    pub line: usize,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for LabelMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl core::error::Error for LabelMapError {}

/// Label names by bit, read from the text of a `connlabel.conf`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LabelMap {
    entries: Vec<(u16, String<{ LabelMap::NAME_CAP }>), { LabelMap::CAP }>,
}

impl LabelMap {
    /// The most lines with a label a map holds.
    pub const CAP: usize = 128;
    /// The longest label name.
    pub const NAME_CAP: usize = 32;

    /// Parses the text of a `connlabel.conf`.
    ///
    /// # Errors
    /// The first bad line: no bit number, a bit outside 0..=127, no name, a name longer than
    /// 32 bytes, text after the name, or more than 128 labels.
    pub fn parse(text: &str) -> Result<Self, LabelMapError> {
        let mut map = LabelMap::default();
        for (index, raw) in text.lines().enumerate() {
            let line = index.saturating_add(1);
            let err = |reason| LabelMapError { line, reason };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut words = trimmed.split_whitespace();
            let bit = words
                .next()
                .and_then(|w| w.parse::<u16>().ok())
                .ok_or(err("expected a bit number"))?;
            if bit >= crate::ct::Labels::BITS {
                return Err(err("bit number out of range (0 to 127)"));
            }
            let name = words.next().ok_or(err("expected a name after the bit"))?;
            if words.next().is_some() {
                return Err(err("text after the name"));
            }
            let name = String::try_from(name).map_err(|_| err("name longer than 32 bytes"))?;
            map.entries
                .push((bit, name))
                .map_err(|_| err("more than 128 labels"))?;
        }
        Ok(map)
    }

    /// The bit named `name`, if any.
    pub fn bit(&self, name: &str) -> Option<u16> {
        self.entries
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|&(b, _)| b)
    }

    /// The name of `bit` (the first line that names it).
    pub fn name(&self, bit: u16) -> Option<&str> {
        self.entries
            .iter()
            .find(|(b, _)| *b == bit)
            .map(|(_, n)| n.as_str())
    }

    /// Every `(bit, name)` pair, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &str)> {
        self.entries.iter().map(|(b, n)| (*b, n.as_str()))
    }

    /// Whether the map has no label.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl LabelNames for LabelMap {
    fn name(&self, bit: u16) -> Option<&str> {
        LabelMap::name(self, bit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reports_bad_lines() {
        let m = LabelMap::parse("0 a\n  # c\n\t5\tb \n").unwrap();
        assert_eq!(m.name(5), Some("b"));
        assert_eq!(m.bit("a"), Some(0));
        assert_eq!(
            LabelMap::parse("0 a\nx b\n"),
            Err(LabelMapError {
                line: 2,
                reason: "expected a bit number"
            })
        );
        assert_eq!(LabelMap::parse("128 big").unwrap_err().line, 1);
        assert_eq!(LabelMap::parse("\n\n3").unwrap_err().line, 3);
        assert_eq!(
            LabelMap::parse("1 a b").unwrap_err().reason,
            "text after the name"
        );
        let long = "1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        assert!(LabelMap::parse(long).is_err());
        assert!(LabelMap::parse("").unwrap().is_empty());
    }
}
