//! Test support: fixtures captured from the kernel on a little-endian machine, converted to
//! the byte order of the target the tests run on.
//!
//! The netlink message and attribute headers, error codes, extended-ack values and the few
//! host-order ctnetlink payloads (`CTA_LABELS`, `CTA_LABELS_MASK`, the `CTA_FILTER` flags)
//! were written in the capturing host's order (little-endian). On a big-endian target they
//! must be swapped before parsing, exactly as that target's kernel would have written them.

use byteorder::{ByteOrder, LittleEndian, NativeEndian};

/// `codec/fixtures/NAME.bin`, copied into an array of its size and converted to the
/// target's byte order.
macro_rules! fixture {
    ($name:literal) => {{
        const LE: &[u8] = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/",
            $name,
            ".bin"
        ));
        let mut bytes = [0u8; LE.len()];
        bytes.copy_from_slice(LE);
        $crate::testutil::convert_messages(&mut bytes);
        bytes
    }};
}
pub(crate) use fixture;

fn swap16(b: &mut [u8]) {
    let v = LittleEndian::read_u16(b);
    NativeEndian::write_u16(b, v);
}

fn swap32(b: &mut [u8]) {
    let v = LittleEndian::read_u32(b);
    NativeEndian::write_u32(b, v);
}

fn swap64(b: &mut [u8]) {
    let v = LittleEndian::read_u64(b);
    NativeEndian::write_u64(b, v);
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Which host-order payloads an attribute tree holds.
#[derive(Clone, Copy, PartialEq)]
enum Tree {
    /// A conntrack or expectation message body: labels and filter flags are host order.
    Ctnetlink,
    /// Inside `CTA_FILTER`: every u32 is host order.
    Filter,
    /// Extended-ack attributes: offsets and types are host order.
    ExtAck,
    /// A policy description: every leaf integer is host order.
    Policy,
}

fn convert_attrs(buf: &mut [u8], tree: Tree) {
    let mut pos = 0;
    while pos + 4 <= buf.len() {
        let len = LittleEndian::read_u16(&buf[pos..]) as usize;
        let kind = LittleEndian::read_u16(&buf[pos + 2..]);
        swap16(&mut buf[pos..pos + 2]);
        swap16(&mut buf[pos + 2..pos + 4]);
        if len < 4 || pos + len > buf.len() {
            return;
        }
        let nested = kind & 0x8000 != 0;
        let ty = kind & 0x3fff;
        let payload = &mut buf[pos + 4..pos + len];
        match tree {
            Tree::Ctnetlink if ty == 22 || ty == 23 => {
                for word in payload.chunks_exact_mut(4) {
                    swap32(word);
                }
            }
            Tree::Ctnetlink if ty == 25 => convert_attrs(payload, Tree::Filter),
            Tree::Filter if payload.len() == 4 => swap32(payload),
            Tree::ExtAck if matches!(ty, 2 | 5 | 6) && payload.len() == 4 => swap32(payload),
            Tree::ExtAck if ty == 4 => convert_attrs(payload, Tree::Policy),
            Tree::Policy if nested => convert_attrs(payload, Tree::Policy),
            Tree::Policy if payload.len() == 4 => swap32(payload),
            Tree::Policy if payload.len() == 8 => swap64(payload),
            _ if nested => convert_attrs(payload, tree),
            _ => {}
        }
        pos += align4(len);
    }
}

/// Converts one nfnetlink payload (nfgenmsg, then attributes).
fn convert_nfnl_payload(payload: &mut [u8]) {
    if payload.len() > 4 {
        convert_attrs(&mut payload[4..], Tree::Ctnetlink);
    }
}

/// Converts the header of the message at the start of `buf`; returns its length.
fn convert_header(buf: &mut [u8]) -> (usize, u16, u16) {
    let len = LittleEndian::read_u32(&buf[0..4]) as usize;
    let kind = LittleEndian::read_u16(&buf[4..6]);
    let flags = LittleEndian::read_u16(&buf[6..8]);
    swap32(&mut buf[0..4]);
    swap16(&mut buf[4..6]);
    swap16(&mut buf[6..8]);
    swap32(&mut buf[8..12]);
    swap32(&mut buf[12..16]);
    (len, kind, flags)
}

/// Converts captured messages from little-endian to the target's order, in place.
pub(crate) fn convert_messages(buf: &mut [u8]) {
    let mut pos = 0;
    while pos + 16 <= buf.len() {
        let (len, kind, flags) = convert_header(&mut buf[pos..]);
        let end = (pos + len).min(buf.len());
        if len < 16 {
            return;
        }
        let payload = &mut buf[pos + 16..end];
        match kind {
            2 if payload.len() >= 20 => {
                swap32(&mut payload[0..4]);
                let (req_len, _, _) = convert_header(&mut payload[4..]);
                let capped = flags & 0x100 != 0;
                let echoed = if capped { 16 } else { req_len };
                if !capped && 4 + req_len <= payload.len() {
                    convert_nfnl_payload(&mut payload[20..4 + req_len]);
                }
                let tlv = 4 + align4(echoed);
                if flags & 0x200 != 0 && tlv <= payload.len() {
                    convert_attrs(&mut payload[tlv..], Tree::ExtAck);
                }
            }
            3 if payload.len() >= 4 => {
                swap32(&mut payload[0..4]);
                if flags & 0x200 != 0 {
                    convert_attrs(&mut payload[4..], Tree::ExtAck);
                }
            }
            k if k >= 0x10 => convert_nfnl_payload(payload),
            _ => {}
        }
        pos += align4(len);
    }
}
