//! Connection labels (`CTA_LABELS`, `CTA_LABELS_MASK`): a 128-bit bitmap.

use byteorder::{ByteOrder, NativeEndian};

use crate::nl::{Attr, Writer};
use crate::{Error, Result};

/// The label bitmap of an entry: bit `n` is label `n` of `connlabel.conf`.
///
/// On the wire it is an array of host-order 32-bit words (bit `n` is bit `n % 32` of word
/// `n / 32`); the kernel accepts any multiple of 4 bytes up to 16, and sends 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Labels(pub [u32; 4]);

impl Labels {
    /// The number of labels (`NF_CT_LABELS_MAX_SIZE * 8`).
    pub const BITS: u16 = 128;
    /// Bytes on the wire.
    pub const LEN: usize = 16;

    /// Whether label `bit` is set (false for `bit >= 128`).
    pub fn contains(&self, bit: u16) -> bool {
        let word = usize::from(bit / 32);
        self.0
            .get(word)
            .is_some_and(|w| w & (1u32 << (bit % 32)) != 0)
    }

    /// Sets label `bit`.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if `bit >= 128`.
    pub fn insert(&mut self, bit: u16) -> Result<()> {
        let word = self
            .0
            .get_mut(usize::from(bit / 32))
            .ok_or(Error::InvalidValue("label bit (0..128)"))?;
        *word |= 1u32 << (bit % 32);
        Ok(())
    }

    /// Clears label `bit` (nothing happens for `bit >= 128`).
    pub fn remove(&mut self, bit: u16) {
        if let Some(word) = self.0.get_mut(usize::from(bit / 32)) {
            *word &= !(1u32 << (bit % 32));
        }
    }

    /// Whether no label is set.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// The set labels, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..Self::BITS).filter(|b| self.contains(*b))
    }

    /// Reads the bitmap; shorter payloads (a multiple of 4 bytes) leave the rest clear.
    ///
    /// # Errors
    /// [`Error::AttributeSize`] for a payload longer than 16 bytes or not a multiple of 4.
    #[inline]
    pub fn parse(a: &Attr<'_>) -> Result<Self> {
        let p = a.payload();
        if p.len() > Self::LEN || !p.len().is_multiple_of(4) {
            return Err(Error::AttributeSize {
                kind: a.kind(),
                len: p.len(),
            });
        }
        let mut l = Labels::default();
        for (word, bytes) in l.0.iter_mut().zip(p.chunks_exact(4)) {
            *word = NativeEndian::read_u32(bytes);
        }
        Ok(l)
    }

    /// The 16 bytes on the wire.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        for (chunk, word) in b.chunks_exact_mut(4).zip(self.0) {
            NativeEndian::write_u32(chunk, word);
        }
        b
    }

    /// Writes the bitmap as an attribute of type `kind`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn emit(&self, kind: u16, w: &mut Writer<'_>) -> Result<()> {
        w.attr(kind, &self.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits() {
        let mut l = Labels::default();
        l.insert(0).unwrap();
        l.insert(33).unwrap();
        l.insert(127).unwrap();
        assert!(l.insert(128).is_err());
        assert!(l.contains(33) && !l.contains(32) && !l.contains(200));
        let mut set = [0u16; 4];
        let n = l.iter().zip(set.iter_mut()).map(|(b, s)| *s = b).count();
        assert_eq!(set[..n], [0, 33, 127]);
        l.remove(33);
        assert!(!l.contains(33));
        let bytes = l.to_bytes();
        assert_eq!(Labels::parse(&Attr::new(22, &bytes)).unwrap(), l);
        assert_eq!(
            Labels::parse(&Attr::new(22, &bytes[..4])).unwrap().0,
            [1, 0, 0, 0]
        );
        assert!(Labels::parse(&Attr::new(22, &bytes[..5])).is_err());
    }
}
