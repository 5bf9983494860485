//! The C library conversions conntrack-tools 1.4.7 applies to its arguments, reproduced so
//! that the same command line means the same thing: `strtoul`/`strtol`/`atoi`/`atol`,
//! `inet_aton`, `inet_pton`. They read bytes, as the C functions do: an argument need not be
//! UTF-8.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn skip_space(s: &[u8]) -> usize {
    s.iter()
        .take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
        .count()
}

/// A sign, if one is at `i`: whether it is `-`, and the index after it.
fn sign(b: &[u8], i: usize) -> (bool, usize) {
    match b.get(i) {
        Some(b'-') => (true, i + 1),
        Some(b'+') => (false, i + 1),
        _ => (false, i),
    }
}

/// `strtoull(s, &end, base)` (base 0 or 10): the value (saturated at `u64::MAX` on
/// overflow, negated modulo 2^64 after a `-`) and the number of bytes consumed (0 when no
/// digit was read).
pub fn strtoull(s: &[u8], base: u32) -> (u64, usize) {
    let (neg, mut i) = sign(s, skip_space(s));
    let mut radix = base;
    let hex_prefix = s.get(i) == Some(&b'0')
        && matches!(s.get(i + 1), Some(b'x' | b'X'))
        && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
    if (radix == 0 || radix == 16) && hex_prefix {
        radix = 16;
        i += 2;
    } else if radix == 0 {
        radix = if s.get(i) == Some(&b'0') { 8 } else { 10 };
    }
    let start = i;
    let mut val: u64 = 0;
    let mut overflow = false;
    while let Some(d) = s.get(i).and_then(|&c| char::from(c).to_digit(radix)) {
        match val
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
        {
            Some(v) => val = v,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start {
        return (0, 0);
    }
    if overflow {
        return (u64::MAX, i);
    }
    (if neg { val.wrapping_neg() } else { val }, i)
}

/// `strtoll(s, &end, 10)`: saturated at the `i64` bounds, with the bytes consumed.
pub fn strtoll(s: &[u8]) -> (i64, usize) {
    let (neg, mut i) = sign(s, skip_space(s));
    let start = i;
    let mut val: i64 = 0;
    let mut overflow = false;
    while let Some(d) = s.get(i).and_then(|&c| char::from(c).to_digit(10)) {
        let next = val.checked_mul(10).and_then(|v| {
            if neg {
                v.checked_sub(i64::from(d))
            } else {
                v.checked_add(i64::from(d))
            }
        });
        match next {
            Some(v) => val = v,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start {
        return (0, 0);
    }
    if overflow {
        return (if neg { i64::MIN } else { i64::MAX }, i);
    }
    (val, i)
}

/// `(uint32_t) strtoul(s, NULL, 0)`.
pub fn strtoul_u32(s: &[u8]) -> u32 {
    strtoull(s, 0).0 as u32
}

/// `(int) atoi(s)` (glibc: `(int) strtol(s, NULL, 10)`).
pub fn atoi(s: &[u8]) -> i32 {
    strtoll(s).0 as i32
}

/// `atol(s)`.
pub fn atol(s: &[u8]) -> i64 {
    strtoll(s).0
}

/// One part of an `inet_aton` address (decimal, octal after a 0, hex after 0x) from `i`:
/// the value and the index after it.
fn aton_part(b: &[u8], mut i: usize) -> Option<(u64, usize)> {
    if !b.get(i)?.is_ascii_digit() {
        return None;
    }
    let mut base = 10u64;
    if b.get(i) == Some(&b'0') {
        i += 1;
        base = 8;
        if matches!(b.get(i), Some(b'x' | b'X')) {
            base = 16;
            i += 1;
        }
    }
    let mut val: u64 = 0;
    while let Some(&c) = b.get(i) {
        let d = match c {
            b'0'..=b'9' => u64::from(c - b'0'),
            b'a'..=b'f' if base == 16 => u64::from(c - b'a' + 10),
            b'A'..=b'F' if base == 16 => u64::from(c - b'A' + 10),
            _ => break,
        };
        if base == 8 && d >= 8 {
            return None;
        }
        val = val.checked_mul(base)?.checked_add(d)?;
        if val > 0xffff_ffff {
            return None;
        }
        i += 1;
    }
    Some((val, i))
}

/// glibc `inet_aton`: one to four parts, the last one filling the remaining bytes; anything
/// after a whitespace is ignored.
pub fn inet_aton(b: &[u8]) -> Option<Ipv4Addr> {
    let mut parts: Vec<u64> = Vec::with_capacity(4);
    let mut i = 0;
    let val = loop {
        let (val, next) = aton_part(b, i)?;
        i = next;
        if b.get(i) != Some(&b'.') {
            break val;
        }
        if parts.len() >= 3 || val > 0xff {
            return None;
        }
        parts.push(val);
        i += 1;
    };
    if b.get(i)
        .is_some_and(|&c| !c.is_ascii_whitespace() && c != 0x0b)
    {
        return None;
    }
    let max = match parts.len() {
        0 => 0xffff_ffff,
        1 => 0x00ff_ffff,
        2 => 0xffff,
        _ => 0xff,
    };
    if val > max {
        return None;
    }
    let mut addr: u64 = 0;
    for (n, p) in parts.iter().enumerate() {
        addr |= p << (24 - 8 * n);
    }
    Some(Ipv4Addr::from(u32::try_from(addr | val).ok()?))
}

/// glibc `inet_pton(AF_INET6, ...)`.
pub fn inet_pton6(b: &[u8]) -> Option<Ipv6Addr> {
    // Rust's parser takes the RFC 4291 text form inet_pton accepts (with an embedded
    // dotted-quad tail, and no zone index); text that is not UTF-8 is no address.
    std::str::from_utf8(b).ok()?.parse::<Ipv6Addr>().ok()
}

/// An address as the tool parses one: IPv4 by `inet_aton`, else IPv6 by `inet_pton`.
pub fn parse_inetaddr(b: &[u8]) -> Option<IpAddr> {
    inet_aton(b)
        .map(IpAddr::V4)
        .or_else(|| inet_pton6(b).map(IpAddr::V6))
}

/// `strncasecmp(a, b, strlen(a)) == 0`: `a` is a case-insensitive prefix of `b`.
pub fn ci_prefix(a: &[u8], b: &str) -> bool {
    b.as_bytes()
        .get(..a.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(a))
}

/// The text of errno `e` as `strerror` gives it.
pub fn strerror(e: i32) -> String {
    conntrack_io::strerror(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aton_forms() {
        assert_eq!(inet_aton(b"1.2.3.4"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(inet_aton(b"127.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(inet_aton(b"0x7f.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(inet_aton(b"010.0.0.1"), Some(Ipv4Addr::new(8, 0, 0, 1)));
        assert_eq!(inet_aton(b"1"), Some(Ipv4Addr::new(0, 0, 0, 1)));
        assert_eq!(inet_aton(b"1.2.3.4 junk"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(inet_aton(b"1.2.3.256"), None);
        assert_eq!(inet_aton(b"1.2.3.4.5"), None);
        assert_eq!(inet_aton(b"08"), None);
        assert_eq!(inet_aton(b"::1"), None);
        assert_eq!(inet_aton(b""), None);
        assert_eq!(inet_aton(b"1.2.3.\xff"), None);
        assert_eq!(inet_pton6(b"::\xff"), None);
    }

    #[test]
    fn strtoul_forms() {
        assert_eq!(strtoull(b"0x11", 0), (17, 4));
        assert_eq!(strtoull(b" 017", 0), (15, 4));
        assert_eq!(strtoull(b"-1", 0).0, u64::MAX);
        assert_eq!(strtoull(b"abc", 0), (0, 0));
        assert_eq!(strtoull(b"0x", 0), (0, 1));
        assert_eq!(strtoull(b"99999999999999999999", 10), (u64::MAX, 20));
        assert_eq!(atoi(b"70000"), 70000);
        assert_eq!(atoi(b" 12ab"), 12);
        assert_eq!(atoi(b"4294967295"), -1);
        assert_eq!(atol(b"-9223372036854775809"), i64::MIN);
        assert!(ci_prefix(b"assu", "ASSURED"));
        assert!(!ci_prefix(b"assured!", "ASSURED"));
    }
}
