//! The C library conversions conntrack-tools 1.4.7 applies to its arguments, reproduced so
//! that the same command line means the same thing: `strtoul`/`strtol`/`atoi`/`atol`,
//! `inet_aton`, `inet_pton`, and `strerror` texts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn skip_space(s: &[u8]) -> usize {
    s.iter()
        .take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
        .count()
}

/// `strtoull(s, &end, base)` (base 0 or 10): the value (saturated at `u64::MAX` on
/// overflow, negated modulo 2^64 after a `-`) and the number of bytes consumed (0 when no
/// digit was read).
pub fn strtoull(s: &str, base: u32) -> (u64, usize) {
    let b = s.as_bytes();
    let mut i = skip_space(b);
    let mut neg = false;
    if let Some(&c) = b.get(i) {
        if c == b'+' || c == b'-' {
            neg = c == b'-';
            i += 1;
        }
    }
    let mut radix = base;
    let hex_prefix = b.get(i) == Some(&b'0')
        && matches!(b.get(i + 1), Some(b'x' | b'X'))
        && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
    if (radix == 0 || radix == 16) && hex_prefix {
        radix = 16;
        i += 2;
    } else if radix == 0 {
        radix = if b.get(i) == Some(&b'0') { 8 } else { 10 };
    }
    let start = i;
    let mut val: u64 = 0;
    let mut overflow = false;
    while let Some(d) = b.get(i).and_then(|&c| (c as char).to_digit(radix)) {
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
pub fn strtoll(s: &str) -> (i64, usize) {
    let b = s.as_bytes();
    let mut i = skip_space(b);
    let mut neg = false;
    if let Some(&c) = b.get(i) {
        if c == b'+' || c == b'-' {
            neg = c == b'-';
            i += 1;
        }
    }
    let start = i;
    let mut val: i64 = 0;
    let mut overflow = false;
    while let Some(d) = b.get(i).and_then(|&c| (c as char).to_digit(10)) {
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
pub fn strtoul_u32(s: &str) -> u32 {
    strtoull(s, 0).0 as u32
}

/// `(int) atoi(s)` (glibc: `(int) strtol(s, NULL, 10)`).
pub fn atoi(s: &str) -> i32 {
    strtoll(s).0 as i32
}

/// `atol(s)`.
pub fn atol(s: &str) -> i64 {
    strtoll(s).0
}

/// glibc `inet_aton`: one to four parts (decimal, octal with a leading 0, hex with 0x),
/// the last part filling the remaining bytes; anything after a whitespace is ignored.
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    let mut parts: Vec<u64> = Vec::with_capacity(4);
    let mut i = 0;
    let val = loop {
        let c = *b.get(i)?;
        if !c.is_ascii_digit() {
            return None;
        }
        let mut base = 10u64;
        if c == b'0' {
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
        if b.get(i) == Some(&b'.') {
            if parts.len() >= 3 || val > 0xff {
                return None;
            }
            parts.push(val);
            i += 1;
        } else {
            break val;
        }
    };
    if let Some(&c) = b.get(i) {
        if !c.is_ascii_whitespace() && c != 0x0b {
            return None;
        }
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
pub fn inet_pton6(s: &str) -> Option<Ipv6Addr> {
    // Rust's parser is the RFC 4291 text form inet_pton accepts (with an embedded
    // dotted-quad tail, and no zone index).
    s.parse::<Ipv6Addr>().ok()
}

/// An address as the tool parses one: IPv4 by `inet_aton`, else IPv6 by `inet_pton`.
pub fn parse_inetaddr(s: &str) -> Option<IpAddr> {
    inet_aton(s)
        .map(IpAddr::V4)
        .or_else(|| inet_pton6(s).map(IpAddr::V6))
}

/// The text `strerror(errno)` gives.
pub fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// `strncasecmp(a, b, a.len()) == 0`: `a` is a case-insensitive prefix of `b`.
pub fn ci_prefix(a: &str, b: &str) -> bool {
    a.len() <= b.len() && b.as_bytes()[..a.len()].eq_ignore_ascii_case(a.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aton_forms() {
        assert_eq!(inet_aton("1.2.3.4"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(inet_aton("127.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(inet_aton("0x7f.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(inet_aton("010.0.0.1"), Some(Ipv4Addr::new(8, 0, 0, 1)));
        assert_eq!(inet_aton("1"), Some(Ipv4Addr::new(0, 0, 0, 1)));
        assert_eq!(inet_aton("1.2.3.4 junk"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(inet_aton("1.2.3.256"), None);
        assert_eq!(inet_aton("1.2.3.4.5"), None);
        assert_eq!(inet_aton("08"), None);
        assert_eq!(inet_aton("::1"), None);
        assert_eq!(inet_aton(""), None);
    }

    #[test]
    fn strtoul_forms() {
        assert_eq!(strtoull("0x11", 0), (17, 4));
        assert_eq!(strtoull(" 017", 0), (15, 4));
        assert_eq!(strtoull("-1", 0).0, u64::MAX);
        assert_eq!(strtoull("abc", 0), (0, 0));
        assert_eq!(strtoull("0x", 0), (0, 1));
        assert_eq!(atoi("70000"), 70000);
        assert_eq!(atoi(" 12ab"), 12);
        assert_eq!(atoi("4294967295"), -1);
        assert_eq!(strerror(2), "No such file or directory");
    }
}
