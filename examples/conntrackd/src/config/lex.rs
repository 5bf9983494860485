//! The tokens of `conntrackd.conf`, cut as 1.4.7's flex scanner cuts them
//! (`src/read_config_lex.l`): the longest match wins, and between matches of the same
//! length the rule listed first (keywords, then `on`/`off`/`yes`/`no`, numbers, addresses,
//! paths, mode names, words). Every other character is a token of its own. The line count
//! is flex's `yylineno`: the newlines read so far.
//!
//! Its quirks are kept, since they decide which files parse: a hex-looking word (`face`,
//! `bad`, `add`) is an address, not a word; `[o|O]`-style classes also take `|`; a path
//! runs to the next space, quote or newline (a tab does not end it).

/// The keywords, each its own token, exactly as 1.4.7 spells them.
pub const KEYWORDS: &[&str] = &[
    "UNIX",
    "IPv4_address",
    "IPv6_address",
    "IPv4_Destination_Address",
    "IPv6_Destination_Address",
    "IPv4_interface",
    "IPv6_interface",
    "Interface",
    "Multicast",
    "UDP",
    "TCP",
    "HashSize",
    "RefreshTime",
    "CacheTimeout",
    "CommitTimeout",
    "HashLimit",
    "Path",
    "Backlog",
    "Group",
    "Port",
    "LogFile",
    "Syslog",
    "LockFile",
    "General",
    "Sync",
    "Stats",
    "SocketBufferSize",
    "SocketBufferSizeMaxGrown",
    "SocketBufferSizeMaxGrowth",
    "NetlinkBufferSize",
    "NetlinkBufferSizeMaxGrowth",
    "Mode",
    "ResendQueueSize",
    "Checksum",
    "ACKWindowSize",
    "for",
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",
    "CLOSED",
    "LISTEN",
    "SndSocketBuffer",
    "RcvSocketBuffer",
    "Filter",
    "Protocol",
    "Address",
    "State",
    "Accept",
    "Ignore",
    "PurgeTimeout",
    "From",
    "Userspace",
    "Kernelspace",
    "EventIterationLimit",
    "Default",
    "PollSecs",
    "NetlinkOverrunResync",
    "Nice",
    "Scheduler",
    "Type",
    "Priority",
    "NetlinkEventsReliable",
    "DisableInternalCache",
    "DisableExternalCache",
    "Options",
    "TCPWindowTracking",
    "ExpectationSync",
    "ErrorQueueLength",
    "Helper",
    "QueueNum",
    "QueueLen",
    "Policy",
    "ExpectMax",
    "ExpectTimeout",
    "Systemd",
    "StartupResync",
];

/// A token's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A keyword (its canonical spelling; aliases map to the same grammar symbol).
    Key(&'static str),
    /// `on`, `yes` (any case).
    On,
    /// `off`, `no` (any case).
    Off,
    /// Digits, with C's `atoi` value.
    Number(i32),
    /// A sign and digits.
    Signed(i32),
    /// An IPv4 or IPv6 address, maybe with `/cidr` (and hex-looking words).
    Ip,
    /// `/...`.
    PathVal,
    /// `alarm` (or the old `persistent`).
    Alarm,
    /// `ftfw` (or the old `nack`).
    Ftfw,
    /// `notrack`.
    Notrack,
    /// A word.
    Str,
    /// Any other single character (`{`, `}`, ...).
    Char(u8),
    /// The end of the file.
    Eof,
}

/// A token: its kind, its text, and `yylineno` once it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: Kind,
    /// `yytext`.
    pub text: String,
    /// The line flex reports for it.
    pub line: u32,
    /// For `persistent` and `nack`: the rename warning 1.4.7 logs when it reads them.
    pub renamed: Option<&'static str>,
}

/// `[xX]`-style class as 1.4.7 writes them (`[o|O]`: the letter in either case, or `|`).
fn ci(c: u8, want: u8) -> bool {
    c.eq_ignore_ascii_case(&want) || c == b'|'
}

/// Length of a case-insensitive word written with `[x|X]` classes.
fn ci_word(s: &[u8], word: &[u8]) -> usize {
    if s.len() >= word.len() && s.iter().zip(word).all(|(c, w)| ci(*c, *w)) {
        word.len()
    } else {
        0
    }
}

fn digits(s: &[u8]) -> usize {
    s.iter().take_while(|c| c.is_ascii_digit()).count()
}

/// `ip4_part`: `[0-2]*[0-9]*[0-9]+`, i.e. one or more digits (the classes only add
/// leading 0-2s, which are digits too).
fn ip4_part(s: &[u8]) -> usize {
    digits(s)
}

/// `ip4`: four parts and dots, then an optional `/[0-2]*[0-9]+`.
fn ip4(s: &[u8]) -> usize {
    let mut n = 0;
    for k in 0..4 {
        let p = ip4_part(&s[n..]);
        if p == 0 {
            return 0;
        }
        n += p;
        if k < 3 {
            if s.get(n) != Some(&b'.') {
                return 0;
            }
            n += 1;
        }
    }
    if s.get(n) == Some(&b'/') {
        let d = digits(&s[n + 1..]);
        if d > 0 {
            n += 1 + d;
        }
    }
    n
}

fn hex(s: &[u8]) -> usize {
    s.iter()
        .take_while(|c| c.is_ascii_hexdigit())
        .take(4)
        .count()
}

/// `ip6_part{0,7}`: up to seven hex groups, each followed by an optional `:`, never
/// eating into a `::` (returns every length that can be matched, the longest first).
fn ip6_parts(s: &[u8], max: usize) -> Vec<usize> {
    // Each part: 1-4 hex digits and an optional colon. The regex engine may stop a part
    // anywhere; collect every end position reachable with 0..=max parts.
    let mut ends = vec![0usize];
    let mut frontier = vec![0usize];
    for _ in 0..max {
        let mut next = Vec::new();
        for &at in &frontier {
            let rest = &s[at..];
            for h in 1..=hex(rest) {
                next.push(at + h);
                if rest.get(h) == Some(&b':') {
                    next.push(at + h + 1);
                }
            }
        }
        next.sort_unstable();
        next.dedup();
        if next.is_empty() {
            break;
        }
        ends.extend(&next);
        frontier = next;
    }
    ends.sort_unstable();
    ends.dedup();
    ends
}

/// `ip6_cidr`: `/[0-1]*[0-9]*[0-9]+`, one or more digits after the slash.
fn ip6_cidr(s: &[u8]) -> usize {
    if s.first() == Some(&b'/') {
        let d = digits(&s[1..]);
        if d > 0 {
            return 1 + d;
        }
    }
    0
}

/// `ip6`: `{ip6_part}{0,7}"::"{ip6_part}{0,7}` or `({hex}":"){0,7}{hex}`, each with an
/// optional cidr; the longest.
fn ip6(s: &[u8]) -> usize {
    let mut best = 0;
    for a in ip6_parts(s, 7) {
        if s[a..].starts_with(b"::") {
            let b0 = a + 2;
            for b in ip6_parts(&s[b0..], 7) {
                let end = b0 + b;
                best = best.max(end + ip6_cidr(&s[end..]));
            }
        }
    }
    // form 2: up to seven "hex:" then a final hex group.
    let mut at = 0;
    for k in 0..=7 {
        let h = hex(&s[at..]);
        if h == 0 {
            break;
        }
        // The final group may be any 1..=h digits; the longest is h.
        let end = at + h;
        best = best.max(end + ip6_cidr(&s[end..]));
        if k == 7 || s.get(at + h) != Some(&b':') {
            break;
        }
        at += h + 1;
    }
    best
}

/// `path`: `/[^"\n ]*`.
fn path(s: &[u8]) -> usize {
    if s.first() != Some(&b'/') {
        return 0;
    }
    1 + s[1..]
        .iter()
        .take_while(|c| !matches!(c, b'"' | b'\n' | b' '))
        .count()
}

/// `string`: `[a-zA-Z][a-zA-Z0-9.\-_]*`.
fn string(s: &[u8]) -> usize {
    match s.first() {
        Some(c) if c.is_ascii_alphabetic() => {
            1 + s[1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
                .count()
        }
        _ => 0,
    }
}

/// C's `atoi`: leading sign and digits, wrapped to `int` as `(int)strtol` does on a
/// 64-bit machine (saturating at the `long` range first).
pub fn atoi(text: &str) -> i32 {
    let b = text.as_bytes();
    let (neg, rest) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let mut v: i64 = 0;
    let mut sat = false;
    for c in rest.iter().take_while(|c| c.is_ascii_digit()) {
        match v
            .checked_mul(10)
            .and_then(|x| x.checked_add(i64::from(c - b'0')))
        {
            Some(x) => v = x,
            None => {
                sat = true;
                break;
            }
        }
    }
    let v = match (sat, neg) {
        (true, false) => i64::MAX,
        (true, true) => i64::MIN,
        (false, true) => -v,
        (false, false) => v,
    };
    v as i32
}

/// Cuts `src` into tokens; the last one is [`Kind::Eof`].
pub fn tokens(src: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut line: u32 = 1;
    let mut i = 0;
    while i < src.len() {
        let s = &src[i..];
        let c = s[0];
        // Blanks, newlines and comments produce no token.
        if c == b' ' || c == b'\t' {
            i += s.iter().take_while(|c| **c == b' ' || **c == b'\t').count();
            continue;
        }
        if c == b'\n' || c == b'\r' {
            if c == b'\n' {
                line += 1;
            }
            i += 1;
            continue;
        }
        // Candidates in rule order; the longest wins, the first among equals.
        let mut best: (usize, Kind) = (0, Kind::Char(c));
        let mut offer = |len: usize, kind: Kind| {
            if len > best.0 {
                best = (len, kind);
            }
        };
        if c == b'#' {
            // `#.*$`: up to the newline. It competes like any rule (a `#` can start nothing
            // else), so it is simply skipped.
            i += s.iter().take_while(|c| **c != b'\n').count();
            continue;
        }
        for kw in KEYWORDS {
            if s.starts_with(kw.as_bytes()) {
                offer(kw.len(), Kind::Key(kw));
            }
        }
        let on = ci_word(s, b"on").max(ci_word(s, b"yes"));
        offer(on, Kind::On);
        let off = ci_word(s, b"off").max(ci_word(s, b"no"));
        offer(off, Kind::Off);
        let d = digits(s);
        offer(d, Kind::Number(0));
        if matches!(c, b'-' | b'+') {
            let d = digits(&s[1..]);
            if d > 0 {
                offer(1 + d, Kind::Signed(0));
            }
        }
        offer(ip4(s), Kind::Ip);
        offer(ip6(s), Kind::Ip);
        offer(path(s), Kind::PathVal);
        offer(ci_word(s, b"alarm"), Kind::Alarm);
        let persistent = if s.len() >= 10
            && s[..9].iter().zip(b"persisten").all(|(c, w)| ci(*c, *w))
            && matches!(s[9], b'T' | b'|')
        {
            10
        } else {
            0
        };
        offer(persistent, Kind::Alarm);
        offer(ci_word(s, b"ftfw"), Kind::Ftfw);
        offer(ci_word(s, b"nack"), Kind::Ftfw);
        offer(ci_word(s, b"notrack"), Kind::Notrack);
        offer(string(s), Kind::Str);
        let (len, mut kind) = best;
        let len = len.max(1);
        let text = String::from_utf8_lossy(&s[..len]).into_owned();
        match &mut kind {
            Kind::Number(v) | Kind::Signed(v) => *v = atoi(&text),
            _ => {}
        }
        let renamed = match kind {
            Kind::Alarm if persistent == len && len == 10 => Some(
                "Now `persistent' mode is called `alarm'. Please, update your conntrackd.conf file.",
            ),
            Kind::Ftfw if ci_word(s, b"nack") == len && len == 4 => Some(
                "Now `nack' mode is called `ftfw'. Please, update your conntrackd.conf file.\n",
            ),
            _ => None,
        };
        // A path may span a tab, a comment never a newline; count what the token ate.
        line += u32::try_from(s[..len].iter().filter(|c| **c == b'\n').count()).unwrap_or(0);
        out.push(Token {
            kind,
            text,
            line,
            renamed,
        });
        i += len;
    }
    out.push(Token {
        kind: Kind::Eof,
        text: String::new(),
        line,
        renamed: None,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<(Kind, String)> {
        tokens(s.as_bytes())
            .into_iter()
            .map(|t| (t.kind, t.text))
            .collect()
    }

    #[test]
    fn longest_match_and_rule_order() {
        let k = kinds("HashSize HashSizeX on none 10.0.0.1/24 face 1234 12345 -5 /a/b\tc");
        let got: Vec<Kind> = k.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            got,
            vec![
                Kind::Key("HashSize"),
                Kind::Str,
                Kind::On,
                Kind::Str,
                Kind::Ip,
                Kind::Ip,
                Kind::Number(1234),
                Kind::Number(12345),
                Kind::Signed(-5),
                Kind::PathVal,
                Kind::Eof
            ]
        );
        assert_eq!(k[9].1, "/a/b\tc");
    }

    #[test]
    fn ipv6_forms() {
        assert_eq!(kinds("fe80::1/64")[0], (Kind::Ip, "fe80::1/64".into()));
        assert_eq!(kinds("1:2:3:4:5:6:7:8:9")[0].1, "1:2:3:4:5:6:7:8");
        assert_eq!(kinds("::")[0].1, "::");
    }

    #[test]
    fn modes_and_lines() {
        let t = tokens(b"a\n\n  FTFW nack\n{ # x }\n}");
        assert_eq!(t[1].kind, Kind::Ftfw);
        assert_eq!(t[1].line, 3);
        assert!(t[2].renamed.is_some());
        assert_eq!(t[3].kind, Kind::Char(b'{'));
        assert_eq!(t[4].line, 5);
        assert_eq!(t.last().map(|t| t.line), Some(5));
    }

    #[test]
    fn atoi_like_c() {
        assert_eq!(atoi("99999999999"), 99999999999i64 as i32);
        assert_eq!(atoi("-12"), -12);
        assert_eq!(atoi("999999999999999999999"), -1);
    }
}
