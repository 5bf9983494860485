//! `NTA_*` attributes: their numbers and sizes, the iterator and the writer.
//!
//! Unlike netlink attributes, the header is big-endian (`nta_len`, then `nta_attr`);
//! `nta_len` counts the 4-byte header and the payload, not the padding, and the next
//! attribute starts at the length rounded up to 4.

use crate::{Error, Result};

/// Defines the attribute numbers of one message kind and the payload size conntrackd
/// requires of each (`Some(n)`: exactly n bytes; `None`: variable, bounded by `max`).
macro_rules! nta_table {
    ($(#[$m:meta])* pub mod $name:ident { $( $(#[$vm:meta])* $attr:ident = $num:expr, $size:expr; )+ }) => {
        $(#[$m])*
        pub mod $name {
            $( $(#[$vm])* pub const $attr: u16 = $num; )+
            /// One past the highest number (`NTA_MAX`): a receiver refuses a message with a
            /// number at or over it.
            pub const MAX: u16 = {
                let mut m = 0;
                $( if $num + 1 > m { m = $num + 1; } )+
                m
            };
            /// The payload size a number requires: `Some(Some(n))` exactly n bytes,
            /// `Some(None)` variable, `None` an unknown number.
            pub const fn size(kind: u16) -> Option<Option<usize>> {
                match kind {
                    $( $num => Some($size), )+
                    _ => None,
                }
            }
        }
    };
}

nta_table! {
    /// Attributes of conntrack messages (`enum nta_attr`). Sizes and byte order as a
    /// conntrackd 1.4.7 on a little-endian machine sends them.
    pub mod nta {
        /// IPv4 original source and destination (8 bytes, network order).
        IPV4 = 0, Some(8);
        /// IPv6 original source and destination (32 bytes).
        IPV6 = 1, Some(32);
        /// The L4 protocol number (u8).
        L4PROTO = 2, Some(1);
        /// Original source and destination ports (two be16).
        PORT = 3, Some(4);
        /// The TCP state (u8).
        TCP_STATE = 4, Some(1);
        /// `IPS_*` status bits (be32).
        STATUS = 5, Some(4);
        /// Seconds to live (be32).
        TIMEOUT = 6, Some(4);
        /// The mark (be32).
        MARK = 7, Some(4);
        /// The master's IPv4 addresses (8 bytes).
        MASTER_IPV4 = 8, Some(8);
        /// The master's IPv6 addresses (32 bytes).
        MASTER_IPV6 = 9, Some(32);
        /// The master's L4 protocol (u8).
        MASTER_L4PROTO = 10, Some(1);
        /// The master's ports (two be16).
        MASTER_PORT = 11, Some(4);
        /// Source NAT address: the reply tuple's destination (4 bytes, network order).
        SNAT_IPV4 = 12, Some(4);
        /// Destination NAT address: the reply tuple's source (4 bytes).
        DNAT_IPV4 = 13, Some(4);
        /// Source NAT port: the reply tuple's destination port, 2 bytes **byte-swapped** by
        /// a little-endian sender, as [`ICMP_ID`]: port 5000 travels as `88 13`.
        SPAT_PORT = 14, Some(2);
        /// Destination NAT port: the reply tuple's source port, byte-swapped as
        /// [`SPAT_PORT`].
        DPAT_PORT = 15, Some(2);
        /// Sequence adjustment, original then reply: position, before, after (6 be32).
        NAT_SEQ_ADJ = 16, Some(24);
        /// The SCTP state (u8).
        SCTP_STATE = 17, Some(1);
        /// SCTP verification tag, original direction (be32).
        SCTP_VTAG_ORIG = 18, Some(4);
        /// SCTP verification tag, reply direction (be32).
        SCTP_VTAG_REPL = 19, Some(4);
        /// The DCCP state (u8).
        DCCP_STATE = 20, Some(1);
        /// The DCCP role (u8).
        DCCP_ROLE = 21, Some(1);
        /// ICMP/ICMPv6 type (u8).
        ICMP_TYPE = 22, Some(1);
        /// ICMP/ICMPv6 code (u8).
        ICMP_CODE = 23, Some(1);
        /// ICMP/ICMPv6 identifier: 2 bytes, **byte-swapped** by a little-endian sender
        /// (conntrackd applies `htons` to a value already in network order): identifier
        /// 0x1234 travels as `34 12`.
        ICMP_ID = 24, Some(2);
        /// TCP window scale, original direction (u8).
        TCP_WSCALE_ORIG = 25, Some(1);
        /// TCP window scale, reply direction (u8).
        TCP_WSCALE_REPL = 26, Some(1);
        /// The helper's name, NUL-terminated (at most 16 bytes with the header for a
        /// conntrackd receiver, `NFCT_HELPER_NAME_MAX`).
        HELPER_NAME = 27, None;
        /// Labels: be32 words, bit b of word i is label 32*i+b (4 words on Linux).
        LABELS = 28, None;
        /// IPv6 source NAT address (16 bytes).
        SNAT_IPV6 = 29, Some(16);
        /// IPv6 destination NAT address (16 bytes).
        DNAT_IPV6 = 30, Some(16);
        /// Synproxy: its, isn, tsoff (3 be32, in that order).
        SYNPROXY = 31, Some(12);
        /// The zone (be16).
        ZONE = 32, Some(2);
    }
}

nta_table! {
    /// Attributes of expectation messages (`enum nta_exp_attr`).
    pub mod nta_exp {
        /// The master's IPv4 addresses (8 bytes).
        MASTER_IPV4 = 0, Some(8);
        /// The master's IPv6 addresses (32 bytes).
        MASTER_IPV6 = 1, Some(32);
        /// The master's L4 protocol (u8).
        MASTER_L4PROTO = 2, Some(1);
        /// The master's ports (two be16).
        MASTER_PORT = 3, Some(4);
        /// The expected tuple's IPv4 addresses.
        EXPECT_IPV4 = 4, Some(8);
        /// The expected tuple's IPv6 addresses.
        EXPECT_IPV6 = 5, Some(32);
        /// The expected tuple's L4 protocol.
        EXPECT_L4PROTO = 6, Some(1);
        /// The expected tuple's ports.
        EXPECT_PORT = 7, Some(4);
        /// The mask's IPv4 addresses.
        MASK_IPV4 = 8, Some(8);
        /// The mask's IPv6 addresses.
        MASK_IPV6 = 9, Some(32);
        /// The mask's L4 protocol.
        MASK_L4PROTO = 10, Some(1);
        /// The mask's ports.
        MASK_PORT = 11, Some(4);
        /// Seconds to live (be32).
        TIMEOUT = 12, Some(4);
        /// `NF_CT_EXPECT_*` flags (be32).
        FLAGS = 13, Some(4);
        /// The class (be32).
        CLASS = 14, Some(4);
        /// The NAT tuple's IPv4 addresses.
        NAT_IPV4 = 15, Some(8);
        /// The NAT tuple's ports.
        NAT_PORT = 16, Some(4);
        /// The NAT tuple's L4 protocol.
        NAT_L4PROTO = 17, Some(1);
        /// The NAT direction (be32).
        NAT_DIR = 18, Some(4);
        /// The helper's name, NUL-terminated.
        HELPER_NAME = 19, None;
        /// The expectation function's name, NUL-terminated (at most 32 bytes with the header).
        FN = 20, None;
    }
}

/// The most payload bytes of a variable attribute a conntrackd receiver takes: labels up to
/// 1024 words (`NTA_LABELS_MAX_SIZE`), names far less.
pub(crate) const VAR_MAX: usize = 4096;

/// The attribute header length.
const NTA_HDR: usize = 4;

/// Rounds up to 4.
fn align4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

/// One attribute: type and payload (padding excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NtaAttr<'a> {
    kind: u16,
    payload: &'a [u8],
}

impl<'a> NtaAttr<'a> {
    /// The type number.
    pub const fn kind(&self) -> u16 {
        self.kind
    }

    /// The payload, padding excluded.
    pub const fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The payload as an array of exactly `N` bytes.
    ///
    /// # Errors
    /// [`Error::AttributeSize`] for another length.
    pub fn array<const N: usize>(&self) -> Result<[u8; N]> {
        self.payload.try_into().map_err(|_| Error::AttributeSize {
            kind: self.kind,
            len: self.payload.len(),
        })
    }

    /// The payload as one byte.
    ///
    /// # Errors
    /// [`Error::AttributeSize`] for another length.
    pub fn u8(&self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// The payload as a be16.
    ///
    /// # Errors
    /// [`Error::AttributeSize`] for another length.
    pub fn u16_be(&self) -> Result<u16> {
        self.array().map(u16::from_be_bytes)
    }

    /// The payload as a be32.
    ///
    /// # Errors
    /// [`Error::AttributeSize`] for another length.
    pub fn u32_be(&self) -> Result<u32> {
        self.array().map(u32::from_be_bytes)
    }

    /// The payload as a NUL-terminated UTF-8 string (the NUL and anything after it dropped).
    ///
    /// # Errors
    /// [`Error::InvalidString`] without a NUL or with invalid UTF-8.
    pub fn c_str(&self) -> Result<&'a str> {
        let end = self
            .payload
            .iter()
            .position(|&b| b == 0)
            .ok_or(Error::InvalidString("sync attribute without NUL"))?;
        let s = self
            .payload
            .get(..end)
            .ok_or(Error::InvalidString("sync attribute"))?;
        core::str::from_utf8(s).map_err(|_| Error::InvalidString("sync attribute not UTF-8"))
    }
}

/// Iterator over the attributes of a data message; checks each length as conntrackd does
/// (`nta_len` at least 4 and within the message) and stops for good after an error. A tail
/// of fewer than 5 bytes is ignored, as conntrackd's receiver ignores it.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NtaAttrs<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> NtaAttrs<'a> {
    /// Walks `attrs` (a data message's bytes after its header).
    pub const fn new(attrs: &'a [u8]) -> Self {
        NtaAttrs {
            rest: attrs,
            done: false,
        }
    }

    /// How many bytes are left to walk.
    pub(crate) const fn rest_len(&self) -> usize {
        self.rest.len()
    }

    fn step(&mut self) -> Result<NtaAttr<'a>> {
        let (hdr, _) = self
            .rest
            .split_first_chunk::<NTA_HDR>()
            .ok_or(Error::Truncated("sync attribute"))?;
        let len = usize::from(u16::from_be_bytes([hdr[0], hdr[1]]));
        let kind = u16::from_be_bytes([hdr[2], hdr[3]]);
        if len < NTA_HDR {
            return Err(Error::InvalidLength("sync attribute"));
        }
        let payload = self
            .rest
            .get(NTA_HDR..len)
            .ok_or(Error::Truncated("sync attribute"))?;
        let next = align4(len).ok_or(Error::InvalidLength("sync attribute"))?;
        self.rest = self.rest.get(next..).unwrap_or(&[]);
        Ok(NtaAttr { kind, payload })
    }
}

impl<'a> Iterator for NtaAttrs<'a> {
    type Item = Result<NtaAttr<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        // conntrackd's loop runs while more than a bare header remains.
        if self.done || self.rest.len() <= NTA_HDR {
            return None;
        }
        let r = self.step();
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }
}

impl core::iter::FusedIterator for NtaAttrs<'_> {}

/// Writes attributes into a caller's buffer; with no buffer (`measure`) it only counts.
#[derive(Debug)]
pub struct NtaWriter<'b> {
    buf: &'b mut [u8],
    pos: usize,
    measure: bool,
}

/// Logs the bytes written so far and the buffer's capacity (not the unwritten rest).
#[cfg(feature = "defmt")]
impl defmt::Format for NtaWriter<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        let written = self.buf.get(..self.pos).unwrap_or(&[]);
        defmt::write!(
            f,
            "NtaWriter {{ written: {=[u8]}, capacity: {=usize}, measure: {=bool} }}",
            written,
            self.buf.len(),
            self.measure
        );
    }
}

impl<'b> NtaWriter<'b> {
    /// A writer that fills `buf` from its start.
    pub fn new(buf: &'b mut [u8]) -> Self {
        NtaWriter {
            buf,
            pos: 0,
            measure: false,
        }
    }

    /// A writer that writes nothing and only counts the bytes (for `buffer_len`).
    pub fn measure() -> NtaWriter<'static> {
        NtaWriter {
            buf: &mut [],
            pos: 0,
            measure: true,
        }
    }

    /// The bytes written (or counted) so far.
    pub const fn len(&self) -> usize {
        self.pos
    }

    /// Whether nothing was written.
    pub const fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Moves the position forward by `n` bytes and returns them (zeroed), or `None` when
    /// measuring.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn reserve(&mut self, n: usize) -> Result<Option<&mut [u8]>> {
        let end = self.pos.checked_add(n).ok_or(Error::BufferTooSmall)?;
        let start = self.pos;
        if self.measure {
            self.pos = end;
            return Ok(None);
        }
        let out = self.buf.get_mut(start..end).ok_or(Error::BufferTooSmall)?;
        out.fill(0);
        self.pos = end;
        Ok(Some(out))
    }

    /// Writes one attribute (header, payload, zeroed padding).
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`]; [`Error::TooLong`] for a payload over 64 KiB.
    pub fn attr(&mut self, kind: u16, payload: &[u8]) -> Result<()> {
        self.attr_with(kind, payload.len(), |out| out.copy_from_slice(payload))
    }

    /// Writes one attribute of `len` payload bytes filled in by `fill`.
    ///
    /// # Errors
    /// As [`NtaWriter::attr`].
    pub fn attr_with(&mut self, kind: u16, len: usize, fill: impl FnOnce(&mut [u8])) -> Result<()> {
        let nta_len = len
            .checked_add(NTA_HDR)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or(Error::TooLong("sync attribute"))?;
        let total = align4(usize::from(nta_len)).ok_or(Error::TooLong("sync attribute"))?;
        if let Some(out) = self.reserve(total)? {
            let (hdr, rest) = out
                .split_first_chunk_mut::<NTA_HDR>()
                .ok_or(Error::BufferTooSmall)?;
            let [a, b] = nta_len.to_be_bytes();
            let [c, d] = kind.to_be_bytes();
            *hdr = [a, b, c, d];
            fill(rest.get_mut(..len).ok_or(Error::BufferTooSmall)?);
        }
        Ok(())
    }

    /// Writes a u8 attribute.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn u8(&mut self, kind: u16, v: u8) -> Result<()> {
        self.attr(kind, &[v])
    }

    /// Writes a be16 attribute.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn u16_be(&mut self, kind: u16, v: u16) -> Result<()> {
        self.attr(kind, &v.to_be_bytes())
    }

    /// Writes a be32 attribute.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn u32_be(&mut self, kind: u16, v: u32) -> Result<()> {
        self.attr(kind, &v.to_be_bytes())
    }

    /// Writes a NUL-terminated string attribute.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn c_str(&mut self, kind: u16, s: &str) -> Result<()> {
        let n = s.len();
        self.attr_with(kind, n.saturating_add(1), |out| {
            if let Some(head) = out.get_mut(..n) {
                head.copy_from_slice(s.as_bytes());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_pads_with_zeros_and_iterator_reads_back() {
        let mut buf = [0xa5u8; 32];
        let mut w = NtaWriter::new(&mut buf);
        w.u8(nta::L4PROTO, 6).unwrap();
        w.c_str(nta::HELPER_NAME, "ftp").unwrap();
        w.u16_be(nta::ZONE, 7).unwrap();
        assert_eq!(w.len(), 8 + 8 + 8);
        assert_eq!(&buf[..8], &[0, 5, 0, 2, 6, 0, 0, 0]);
        assert_eq!(&buf[8..16], &[0, 8, 0, 27, b'f', b't', b'p', 0]);
        let got: Vec<_, 3> = NtaAttrs::new(&buf[..24]).map(|a| a.unwrap()).collect();
        assert_eq!(got[0].u8(), Ok(6));
        assert_eq!(got[1].c_str(), Ok("ftp"));
        assert_eq!(got[2].u16_be(), Ok(7));
        let mut m = NtaWriter::measure();
        m.c_str(nta::HELPER_NAME, "ftp").unwrap();
        assert_eq!(m.len(), 8);
        let mut small = [0u8; 6];
        assert_eq!(
            NtaWriter::new(&mut small).u32_be(nta::MARK, 1),
            Err(Error::BufferTooSmall)
        );
    }

    use heapless::Vec;

    #[test]
    fn iterator_stops_on_bad_lengths() {
        // nta_len 2 (under the header), then a good one that must not be reached.
        let bad = [0, 2, 0, 5, 0, 5, 0, 2, 6, 0, 0, 0];
        let mut it = NtaAttrs::new(&bad);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
        // Longer than the message.
        let long = [0, 9, 0, 5, 1, 2, 3, 4];
        assert!(NtaAttrs::new(&long).next().unwrap().is_err());
        // A four-byte tail is ignored.
        assert!(NtaAttrs::new(&[0, 4, 0, 1]).next().is_none());
        assert_eq!(nta::MAX, 33);
        assert_eq!(nta_exp::MAX, 21);
        assert_eq!(nta::size(nta::ICMP_ID), Some(Some(2)));
        assert_eq!(nta::size(nta::LABELS), Some(None));
        assert_eq!(nta::size(40), None);
    }
}
