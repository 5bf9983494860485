//! The values of options, read as conntrack-tools 1.4.7 reads them: addresses with their
//! netmasks, NAT addresses with ports, comma lists of names (`-u`, `-e`, `-o`), protocols.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::tables::STATUS_NAMES;
use super::Fail;
use crate::cat;
use crate::cnum;
use crate::proto::{Proto, HANDLERS};
use crate::text::find;

/// The address, netmask length (-1 none, -2 invalid) of an address argument, as
/// `parse_addr` reads it (the argument cut to 45 bytes).
pub fn parse_addr(arg: &[u8]) -> (Option<IpAddr>, i32) {
    let buf = arg.get(..arg.len().min(45)).unwrap_or(arg);
    let (text, mask) = match find(buf, b'/') {
        Some(slash) => {
            let after = &buf[slash + 1..];
            let (v, used) = cnum::strtoll(after);
            // The C `int` it lands in.
            let m = v as i32;
            let m = if m < 0 || used != after.len() { -2 } else { m };
            (&buf[..slash], m)
        }
        None => (buf, -1),
    };
    match cnum::parse_inetaddr(text) {
        Some(a @ IpAddr::V4(_)) => (Some(a), if mask > 32 { -2 } else { mask }),
        Some(a @ IpAddr::V6(_)) => (Some(a), if mask > 128 { -2 } else { mask }),
        None => (None, mask),
    }
}

/// The netmask of `bits` leading ones for an IPv4 or IPv6 address.
pub fn netmask(v6: bool, bits: i32) -> IpAddr {
    let ones = u32::try_from(bits).unwrap_or(0);
    if v6 {
        let m = u128::MAX
            .checked_shl(128u32.saturating_sub(ones))
            .unwrap_or(0);
        IpAddr::V6(Ipv6Addr::from(m))
    } else {
        let m = u32::MAX
            .checked_shl(32u32.saturating_sub(ones))
            .unwrap_or(0);
        IpAddr::V4(Ipv4Addr::from(m))
    }
}

/// The family number of an address.
pub fn family_of(a: IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => 2,
        IpAddr::V6(_) => 10,
    }
}

/// `split_address_and_port` of a NAT argument: the address and the port, if any.
pub fn split_address_and_port(arg: &[u8]) -> Result<(Vec<u8>, Option<Vec<u8>>), Fail> {
    let mut port_at = None;
    let mut address = None;
    if let Some(lb) = find(arg, b'[') {
        let start = lb + 1;
        match find(&arg[start..], b']') {
            Some(0) => return Err(Fail::param("No IPv6 address specified")),
            None => return Err(Fail::param("No closing ']' around IPv6 address")),
            Some(len) => {
                if let Some(colon) = find(&arg[start + len..], b':') {
                    address = Some(arg[start..start + len].to_vec());
                    port_at = Some(start + len + colon + 1);
                }
            }
        }
    } else if let Some(colon) = find(arg, b':') {
        if find(&arg[colon + 1..], b':').is_none() {
            address = Some(arg[..colon].to_vec());
            port_at = Some(colon + 1);
        }
    }
    let Some(p) = port_at else {
        return Ok((arg.to_vec(), None));
    };
    let port = &arg[p..];
    if port.is_empty() {
        return Err(Fail::param("No port specified after `:'"));
    }
    let valid = port.iter().all(u8::is_ascii_digit)
        && std::str::from_utf8(port)
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_some_and(|v| v <= 65535);
    if !valid {
        return Err(Fail::param(cat!("Invalid port `", port, "'")));
    }
    Ok((address.unwrap_or_default(), Some(port.to_vec())))
}

/// One element of a list: its value is or-ed into `value`; whether it was known. The
/// NAT status names are ignored with a warning.
fn parse_element(s: &[u8], value: &mut u32, names: &[(&str, u32)], err: &mut dyn Write) -> bool {
    for (nat, option) in [("SRC_NAT", "--src-nat"), ("DST_NAT", "--dst-nat")] {
        if cnum::ci_prefix(s, nat) {
            let _ = writeln!(err, "WARNING: ignoring {nat}, use {option} instead");
            return true;
        }
    }
    match names.iter().find(|(n, _)| cnum::ci_prefix(s, n)) {
        Some((_, v)) => {
            *value |= v;
            true
        }
        None => false,
    }
}

fn bad(arg: &[u8]) -> Fail {
    Fail::param(cat!("Bad parameter `", arg, "'"))
}

/// `parse_parameter`: a comma list of names (`-e`, `-o`).
pub fn parse_parameter(
    mut arg: &[u8],
    value: &mut u32,
    names: &[(&str, u32)],
    err: &mut dyn Write,
) -> Result<(), Fail> {
    while let Some(comma) = find(arg, b',') {
        if comma == 0 || !parse_element(&arg[..comma], value, names, err) {
            return Err(bad(arg));
        }
        arg = &arg[comma + 1..];
    }
    if arg.is_empty() || !parse_element(arg, value, names, err) {
        return Err(bad(arg));
    }
    Ok(())
}

/// `parse_parameter_mask` of `-u`: names into `status`, `!NAME` into `mask`, and
/// `UNREPLIED` as "SEEN_REPLY must be clear".
pub fn parse_status(
    mut arg: &[u8],
    status: &mut u32,
    mask: &mut u32,
    err: &mut dyn Write,
) -> Result<(), Fail> {
    const SEEN_REPLY: u32 = 1 << 1;
    loop {
        let comma = find(arg, b',');
        if comma == Some(0) {
            return Err(bad(arg));
        }
        let negated = arg.first() == Some(&b'!');
        if negated {
            arg = &arg[1..];
        }
        let end = comma.map(|c| c - usize::from(negated));
        if end == Some(0) {
            return Err(bad(arg));
        }
        let element = &arg[..end.unwrap_or(arg.len())];
        if !negated && crate::text::starts_with(arg, b"UNREPLIED") {
            *mask |= SEEN_REPLY;
        } else {
            let target = if negated { &mut *mask } else { &mut *status };
            if element.is_empty() || !parse_element(element, target, STATUS_NAMES, err) {
                return Err(bad(arg));
            }
        }
        match end {
            Some(e) => arg = &arg[e + 1..],
            None => return Ok(()),
        }
    }
}

/// One line of `/etc/protocols`: the name, the number, the aliases.
pub type ProtocolLine = (Vec<u8>, u8, Vec<Vec<u8>>);

/// The lines of `/etc/protocols` (`getprotobyname` and `getprotobynumber` read them).
pub fn protocols(text: &[u8]) -> Vec<ProtocolLine> {
    text.split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = line.split(|&b| b == b'#').next().unwrap_or_default();
            let mut words = line
                .split(|b| b.is_ascii_whitespace())
                .filter(|w| !w.is_empty());
            let name = words.next()?.to_vec();
            let num = std::str::from_utf8(words.next()?)
                .ok()?
                .parse::<u8>()
                .ok()?;
            Some((name, num, words.map(<[u8]>::to_vec).collect()))
        })
        .collect()
}

/// `findproto`: a handler by name (any case), a protocol by its `/etc/protocols` name or
/// alias (no handler), or by number (with the handler of that number, if any).
pub fn findproto(name: &[u8], protocols: &[ProtocolLine]) -> Option<(Proto, u8)> {
    if let Some(h) = HANDLERS
        .iter()
        .find(|h| h.name().as_bytes().eq_ignore_ascii_case(name))
    {
        return Some((*h, h.num()));
    }
    if let Some((_, n, _)) = protocols
        .iter()
        .find(|(n, _, aliases)| n == name || aliases.iter().any(|a| a == name))
    {
        return Some((Proto::Unknown, *n));
    }
    let (v, used) = cnum::strtoull(name, 0);
    if used == 0 || used != name.len() || v > 255 {
        return None;
    }
    let n = v as u8;
    Some(
        HANDLERS
            .iter()
            .find(|h| h.num() == n)
            .map_or((Proto::Unknown, n), |h| (*h, n)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_masks() {
        assert_eq!(
            parse_addr(b"10.0.0.0/8"),
            (Some("10.0.0.0".parse().unwrap()), 8)
        );
        assert_eq!(parse_addr(b"1.2.3.4/33").1, -2);
        assert_eq!(parse_addr(b"1.2.3.4/-1").1, -2);
        assert_eq!(parse_addr(b"::1/129").1, -2);
        assert_eq!(parse_addr(b"\xff").0, None);
        assert_eq!(netmask(false, 8), "255.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(netmask(true, 0), "::".parse::<IpAddr>().unwrap());
        assert_eq!(
            netmask(true, 65),
            "ffff:ffff:ffff:ffff:8000::".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn nat_ports() {
        assert_eq!(
            split_address_and_port(b"[2001::9]:53").unwrap(),
            (b"2001::9".to_vec(), Some(b"53".to_vec()))
        );
        assert_eq!(
            split_address_and_port(b"::1").unwrap(),
            (b"::1".to_vec(), None)
        );
        assert_eq!(
            split_address_and_port(b"1.2.3.4:65536").unwrap_err().msg,
            b"Invalid port `65536'"
        );
    }

    #[test]
    fn status_lists() {
        let (mut status, mut mask) = (0, 0);
        parse_status(
            b"ASSURED,!SEEN_REPLY",
            &mut status,
            &mut mask,
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!((status, mask), (4, 2));
        let (mut status, mut mask) = (0, 0);
        parse_status(b"UNREPLIED", &mut status, &mut mask, &mut Vec::new()).unwrap();
        assert_eq!((status, mask), (0, 2));
        let e = parse_status(b"!,ASSURED", &mut status, &mut mask, &mut Vec::new()).unwrap_err();
        assert_eq!(e.msg, b"Bad parameter `,ASSURED'");
        let mut warnings = Vec::new();
        parse_status(b"SRC_NAT", &mut status, &mut mask, &mut warnings).unwrap();
        assert_eq!(
            warnings,
            b"WARNING: ignoring SRC_NAT, use --src-nat instead\n"
        );
    }

    #[test]
    fn protocols_by_name_alias_and_number() {
        let table = protocols(b"# c\nesp\t50\tIPSEC-ESP\t# comment\nipv6-icmp 58 IPv6-ICMP\n");
        assert_eq!(findproto(b"esp", &table), Some((Proto::Unknown, 50)));
        assert_eq!(findproto(b"IPSEC-ESP", &table), Some((Proto::Unknown, 50)));
        assert_eq!(findproto(b"ESP", &table), None);
        assert_eq!(findproto(b"ipv6-icmp", &table), Some((Proto::Unknown, 58)));
        assert_eq!(findproto(b"TCP", &table), Some((Proto::Tcp, 6)));
        assert_eq!(findproto(b"0x6", &table), Some((Proto::Tcp, 6)));
        assert_eq!(findproto(b"300", &table), None);
    }
}
