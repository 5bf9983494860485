//! The command line of conntrack-tools 1.4.7 (`do_parse`): commands, options, the table of
//! which options each command needs or forbids, and the template they fill in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use conntrack_codec::labels::LabelMap;

use crate::cnum;
use crate::getopt::{GetOpt, Got, HasArg, LongOpt};
use crate::model::{Adr, Bitmask, Tmpl};
use crate::proto::{Proto, HANDLERS};

/// How a command line (or a step of a command) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    /// Exit code 2 with the "Try" line (a parameter problem), or 1.
    pub param: bool,
    /// The message after the `conntrack v1.4.7 (conntrack-tools): ` prefix.
    pub msg: String,
    /// A line printed before it without the prefix (a failed update prints its error twice).
    pub pre: Option<String>,
}

impl Fail {
    /// A parameter problem: exit 2.
    pub fn param(msg: impl Into<String>) -> Fail {
        Fail {
            param: true,
            msg: msg.into(),
            pre: None,
        }
    }

    /// Another problem: exit 1.
    pub fn other(msg: impl Into<String>) -> Fail {
        Fail {
            param: false,
            msg: msg.into(),
            pre: None,
        }
    }
}

/// Command bits, by index (`CT_*_BIT`).
pub mod cmd_bit {
    /// `-L`.
    pub const CT_LIST: usize = 0;
    /// `-I`.
    pub const CT_CREATE: usize = 1;
    /// `-U`.
    pub const CT_UPDATE: usize = 2;
    /// `-D`.
    pub const CT_DELETE: usize = 3;
    /// `-G`.
    pub const CT_GET: usize = 4;
    /// `-F`.
    pub const CT_FLUSH: usize = 5;
    /// `-E`.
    pub const CT_EVENT: usize = 6;
    /// `-V`.
    pub const CT_VERSION: usize = 7;
    /// `-h`.
    pub const CT_HELP: usize = 8;
    /// `-L expect`.
    pub const EXP_LIST: usize = 9;
    /// `-I expect`.
    pub const EXP_CREATE: usize = 10;
    /// `-D expect`.
    pub const EXP_DELETE: usize = 11;
    /// `-G expect`.
    pub const EXP_GET: usize = 12;
    /// `-F expect`.
    pub const EXP_FLUSH: usize = 13;
    /// `-E expect`.
    pub const EXP_EVENT: usize = 14;
    /// `-C`.
    pub const CT_COUNT: usize = 15;
    /// `-C expect`.
    pub const EXP_COUNT: usize = 16;
    /// `-S`.
    pub const CT_STATS: usize = 17;
    /// `-S expect`.
    pub const EXP_STATS: usize = 18;
    /// `-A`.
    pub const CT_ADD: usize = 19;
    /// No command.
    pub const NONE: usize = 20;
}

/// Command masks.
pub mod cmd {
    use super::cmd_bit as b;
    /// `-L`.
    pub const CT_LIST: u32 = 1 << b::CT_LIST;
    /// `-I`.
    pub const CT_CREATE: u32 = 1 << b::CT_CREATE;
    /// `-U`.
    pub const CT_UPDATE: u32 = 1 << b::CT_UPDATE;
    /// `-D`.
    pub const CT_DELETE: u32 = 1 << b::CT_DELETE;
    /// `-G`.
    pub const CT_GET: u32 = 1 << b::CT_GET;
    /// `-F`.
    pub const CT_FLUSH: u32 = 1 << b::CT_FLUSH;
    /// `-E`.
    pub const CT_EVENT: u32 = 1 << b::CT_EVENT;
    /// `-V`.
    pub const CT_VERSION: u32 = 1 << b::CT_VERSION;
    /// `-h`.
    pub const CT_HELP: u32 = 1 << b::CT_HELP;
    /// `-L expect`.
    pub const EXP_LIST: u32 = 1 << b::EXP_LIST;
    /// `-I expect`.
    pub const EXP_CREATE: u32 = 1 << b::EXP_CREATE;
    /// `-D expect`.
    pub const EXP_DELETE: u32 = 1 << b::EXP_DELETE;
    /// `-G expect`.
    pub const EXP_GET: u32 = 1 << b::EXP_GET;
    /// `-F expect`.
    pub const EXP_FLUSH: u32 = 1 << b::EXP_FLUSH;
    /// `-E expect`.
    pub const EXP_EVENT: u32 = 1 << b::EXP_EVENT;
    /// `-C`.
    pub const CT_COUNT: u32 = 1 << b::CT_COUNT;
    /// `-C expect`.
    pub const EXP_COUNT: u32 = 1 << b::EXP_COUNT;
    /// `-S`.
    pub const CT_STATS: u32 = 1 << b::CT_STATS;
    /// `-S expect`.
    pub const EXP_STATS: u32 = 1 << b::EXP_STATS;
    /// `-A`.
    pub const CT_ADD: u32 = 1 << b::CT_ADD;
}

/// Option bits (`CT_OPT_*`).
pub mod opt {
    /// `-s`.
    pub const ORIG_SRC: u32 = 1 << 0;
    /// `-d`.
    pub const ORIG_DST: u32 = 1 << 1;
    /// `-s` or `-d`.
    pub const ORIG: u32 = ORIG_SRC | ORIG_DST;
    /// `-r`.
    pub const REPL_SRC: u32 = 1 << 2;
    /// `-q`.
    pub const REPL_DST: u32 = 1 << 3;
    /// `-r` or `-q`.
    pub const REPL: u32 = REPL_SRC | REPL_DST;
    /// `-p`.
    pub const PROTO: u32 = 1 << 4;
    /// `-t`.
    pub const TIMEOUT: u32 = 1 << 5;
    /// `-u`.
    pub const STATUS: u32 = 1 << 6;
    /// `-z`.
    pub const ZERO: u32 = 1 << 7;
    /// `-e`.
    pub const EVENT_MASK: u32 = 1 << 8;
    /// `--tuple-src`.
    pub const EXP_SRC: u32 = 1 << 9;
    /// `--tuple-dst`.
    pub const EXP_DST: u32 = 1 << 10;
    /// `--mask-src`.
    pub const MASK_SRC: u32 = 1 << 11;
    /// `--mask-dst`.
    pub const MASK_DST: u32 = 1 << 12;
    /// `-m`.
    pub const MARK: u32 = 1 << 14;
    /// `--id`.
    pub const ID: u32 = 1 << 15;
    /// `-f`.
    pub const FAMILY: u32 = 1 << 16;
    /// `-n`.
    pub const SRC_NAT: u32 = 1 << 17;
    /// `-g`.
    pub const DST_NAT: u32 = 1 << 18;
    /// `-o`.
    pub const OUTPUT: u32 = 1 << 19;
    /// `-c`.
    pub const SECMARK: u32 = 1 << 20;
    /// `-b`.
    pub const BUFFERSIZE: u32 = 1 << 21;
    /// `-j`.
    pub const ANY_NAT: u32 = 1 << 22;
    /// `-w`.
    pub const ZONE: u32 = 1 << 23;
    /// `-l`.
    pub const LABEL: u32 = 1 << 24;
    /// `--label-add`.
    pub const ADD_LABEL: u32 = 1 << 25;
    /// `--label-del`.
    pub const DEL_LABEL: u32 = 1 << 26;
    /// `--orig-zone`.
    pub const ORIG_ZONE: u32 = 1 << 27;
    /// `--reply-zone`.
    pub const REPL_ZONE: u32 = 1 << 28;
    /// The options that make `-L`, `-D` and `-E` compare entries with the template.
    pub const COMPARISON: u32 =
        PROTO | ORIG | REPL | MARK | SECMARK | STATUS | ID | ZONE | LABEL | ORIG_ZONE | REPL_ZONE;
}

/// Output flags (`_O_*`).
pub mod out {
    /// `xml`.
    pub const XML: u32 = 1 << 0;
    /// `extended`.
    pub const EXT: u32 = 1 << 1;
    /// `timestamp`.
    pub const TMS: u32 = 1 << 2;
    /// `id`.
    pub const ID: u32 = 1 << 3;
    /// `ktimestamp`.
    pub const KTMS: u32 = 1 << 4;
    /// `labels`.
    pub const CL: u32 = 1 << 5;
    /// `save`.
    pub const SAVE: u32 = 1 << 6;
}

/// Event mask bits.
pub mod ev {
    /// `NEW`.
    pub const NEW: u32 = 1;
    /// `UPDATES`.
    pub const UPD: u32 = 2;
    /// `DESTROY`.
    pub const DEL: u32 = 4;
}

const OPTFLAGS: [&str; 29] = [
    "src",
    "dst",
    "reply-src",
    "reply-dst",
    "protonum",
    "timeout",
    "status",
    "zero",
    "event-mask",
    "tuple-src",
    "tuple-dst",
    "mask-src",
    "mask-dst",
    "nat-range",
    "mark",
    "id",
    "family",
    "src-nat",
    "dst-nat",
    "output",
    "secmark",
    "buffer-size",
    "any-nat",
    "zone",
    "label",
    "label-add",
    "label-del",
    "orig-zone",
    "reply-zone",
];

/// Which options each command allows: 0 illegal, 1 compulsory, 2 optional, 3 see the
/// address pairs. Columns: s d r q p t u z e [ ] { } a m i f n g o c b j w l < > ( ).
const COMMANDS_V_OPTIONS: [[u8; 29]; 21] = [
    [
        2, 2, 2, 2, 2, 0, 2, 2, 0, 0, 0, 2, 2, 0, 2, 0, 2, 2, 2, 2, 2, 0, 2, 2, 2, 0, 0, 2, 2,
    ],
    [
        3, 3, 3, 3, 1, 1, 2, 0, 0, 0, 0, 0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 0, 0, 2, 0, 2, 0, 2, 2,
    ],
    [
        2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 0, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 2, 0, 0,
    ],
    [
        2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 0, 2, 2, 2, 2, 2, 2, 0, 0, 0, 2, 2, 0, 0, 2, 2,
    ],
    [
        3, 3, 3, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0,
    ],
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ],
    [
        2, 2, 2, 2, 2, 0, 0, 0, 2, 0, 0, 2, 2, 0, 2, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 2, 2,
    ],
    [0; 29],
    [
        0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ],
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ],
    [
        1, 1, 2, 2, 1, 1, 2, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ],
    [
        1, 1, 2, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ],
    [
        1, 1, 2, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ],
    [0; 29],
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ],
    [0; 29],
    [0; 29],
    [0; 29],
    [0; 29],
    [
        3, 3, 3, 3, 1, 1, 2, 0, 0, 0, 0, 0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 0, 0, 2, 0, 2, 0, 2, 2,
    ],
    // No command: the tool reads past its table; the byte it finds allows `--reply-zone`.
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    ],
];

const fn lo(name: &'static str, has_arg: HasArg, val: char) -> LongOpt {
    LongOpt {
        name,
        has_arg,
        val: val as i32,
    }
}

use HasArg::{No, Optional as Opt, Required as Req};

/// The tool's long options, in its order.
pub const ORIGINAL_OPTS: &[LongOpt] = &[
    lo("dump", Opt, 'L'),
    lo("create", Opt, 'I'),
    lo("add", Opt, 'A'),
    lo("delete", Opt, 'D'),
    lo("update", Opt, 'U'),
    lo("get", Opt, 'G'),
    lo("flush", Opt, 'F'),
    lo("event", Opt, 'E'),
    lo("counter", Opt, 'C'),
    lo("stats", No, 'S'),
    lo("version", No, 'V'),
    lo("help", No, 'h'),
    lo("orig-src", Req, 's'),
    lo("src", Req, 's'),
    lo("orig-dst", Req, 'd'),
    lo("dst", Req, 'd'),
    lo("reply-src", Req, 'r'),
    lo("reply-dst", Req, 'q'),
    lo("protonum", Req, 'p'),
    lo("timeout", Req, 't'),
    lo("status", Req, 'u'),
    lo("zero", No, 'z'),
    lo("event-mask", Req, 'e'),
    lo("tuple-src", Req, '['),
    lo("tuple-dst", Req, ']'),
    lo("mask-src", Req, '{'),
    lo("mask-dst", Req, '}'),
    lo("nat-range", Req, 'a'),
    lo("mark", Req, 'm'),
    lo("secmark", Req, 'c'),
    lo("id", Opt, 'i'),
    lo("family", Req, 'f'),
    lo("src-nat", Opt, 'n'),
    lo("dst-nat", Opt, 'g'),
    lo("output", Req, 'o'),
    lo("buffer-size", Req, 'b'),
    lo("any-nat", Opt, 'j'),
    lo("zone", Req, 'w'),
    lo("label", Req, 'l'),
    lo("label-add", Req, '<'),
    lo("label-del", Opt, '>'),
    lo("orig-zone", Req, '('),
    lo("reply-zone", Req, ')'),
];

/// The code of `--labelmap`, an option of ours that conntrack-tools does not have. It is
/// only considered when no option of the tool matches, so it changes nothing the tool
/// accepts.
pub const OPT_LABELMAP: i32 = 0x10000;

/// Our own options.
pub const EXTENSION_OPTS: &[LongOpt] = &[LongOpt {
    name: "labelmap",
    has_arg: Req,
    val: OPT_LABELMAP,
}];

/// The short options.
pub const GETOPT_STR: &str =
    ":L::I::U::D::G::E::F::A::hVs:d:r:q:p:t:u:e:a:z[:]:{:}:m:i:f:o:n::g::c:b:C::Sj::w:l:<:>::(:):";

/// The table a command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// The conntrack table.
    Conntrack,
    /// Expectations.
    Expect,
    /// The dying list.
    Dying,
    /// The unconfirmed list.
    Unconfirmed,
}

/// One parsed command (`struct ct_cmd`).
#[derive(Debug, Clone)]
pub struct Cmd {
    /// The command mask (one bit), 0 for none.
    pub command: u32,
    /// The option bits.
    pub options: u32,
    /// The address family (`AF_INET`, `AF_INET6`, 0).
    pub family: u8,
    /// The table.
    pub table: Table,
    /// The `-p` protocol number.
    pub protonum: u8,
    /// The `-e` mask.
    pub event_mask: u32,
    /// `-b`.
    pub buffer_size: i64,
    /// The template.
    pub tmpl: Tmpl,
}

/// What lives across the commands of one run, as the globals of conntrack-tools do.
#[derive(Debug, Default)]
pub struct Globals {
    /// `-o` flags (they accumulate across the lines of `-R`).
    pub output_mask: u32,
    /// The label map, once loaded.
    pub labelmap: Option<LabelMap>,
    /// Where to load it from (`--labelmap`, else the fixed path).
    pub labelmap_path: Option<String>,
    /// The protocol handler of the last `-p`.
    pub handler: Option<Proto>,
}

impl Globals {
    /// `labelmap_init`: load the map if it is not loaded, complaining (as `perror`) if it
    /// cannot be.
    pub fn labelmap_init(&mut self) {
        if self.labelmap.is_some() {
            return;
        }
        let path = self
            .labelmap_path
            .clone()
            .unwrap_or_else(|| conntrack_io::DEFAULT_CONNLABEL_CONF.to_string());
        match std::fs::read_to_string(&path) {
            Ok(text) => match LabelMap::parse(&text) {
                Ok(m) => self.labelmap = Some(m),
                Err(e) => eprintln!("nfct_labelmap_new: {path}: {e}"),
            },
            Err(e) => {
                let errno = e.raw_os_error().unwrap_or(nix::libc::EIO);
                eprintln!("nfct_labelmap_new: {}", cnum::strerror(errno));
            }
        }
    }

    fn get_label(&self, name: &str) -> Result<u32, Fail> {
        self.labelmap
            .as_ref()
            .and_then(|m| m.bit(name))
            .map(u32::from)
            .ok_or_else(|| Fail::param(format!("unknown label '{name}'")))
    }
}

/// `generic_opt_check`: every option the row forbids is absent, every compulsory one is
/// there; `Ok(Err(partial))` when a pair of `coupled` options is incomplete.
pub fn generic_opt_check(
    options: u32,
    num: usize,
    row: &[u8],
    names: &[&str],
    coupled: Option<[u32; 2]>,
) -> Result<Result<(), i32>, Fail> {
    let mut special = false;
    for i in 0..num {
        let set = row.get(i).copied().unwrap_or(0);
        let name = names.get(i).copied().unwrap_or("");
        if options & (1 << i) == 0 {
            if set == 1 {
                return Err(Fail::param(format!(
                    "You need to supply the `--{name}' option for this command"
                )));
            }
        } else if set == 0 {
            return Err(Fail::param(format!(
                "Illegal option `--{name}' with this command"
            )));
        }
        if set == 3 {
            special = true;
        }
    }
    let Some(coupled) = coupled.filter(|_| special) else {
        return Ok(Ok(()));
    };
    let mut partial = -1;
    for (i, c) in coupled.iter().enumerate() {
        if options & c == *c {
            return Ok(Ok(()));
        }
        if options & c != 0 && partial < 0 {
            partial = i as i32;
        }
    }
    Ok(Err(partial))
}

/// The address, netmask length (-1 none, -2 invalid) of an address argument, as
/// `parse_addr` reads it (the argument cut to 45 bytes).
fn parse_addr(arg: &str) -> (Option<IpAddr>, i32) {
    let bytes = arg.as_bytes();
    let buf = String::from_utf8_lossy(&bytes[..bytes.len().min(45)]).into_owned();
    let (text, mask) = match buf.find('/') {
        Some(slash) => {
            let after = &buf[slash + 1..];
            let (v, used) = cnum::strtoll(after);
            let used = if used == 0 { 0 } else { used };
            let mut m = v as i32;
            if m < 0 || used != after.len() {
                m = -2;
            }
            (&buf[..slash], m)
        }
        None => (&buf[..], -1),
    };
    match cnum::parse_inetaddr(text) {
        Some(IpAddr::V4(a)) => (Some(IpAddr::V4(a)), if mask > 32 { -2 } else { mask }),
        Some(IpAddr::V6(a)) => (Some(IpAddr::V6(a)), if mask > 128 { -2 } else { mask }),
        None => (None, mask),
    }
}

fn netmask(v6: bool, bits: i32) -> IpAddr {
    let mut b = bits;
    let mut words = [0u32; 4];
    for w in words.iter_mut().take(if v6 { 4 } else { 1 }) {
        if b >= 32 {
            *w = u32::MAX;
            b -= 32;
        } else if b > 0 {
            *w = u32::MAX << (32 - b);
            b = 0;
        }
    }
    if v6 {
        let mut o = [0u8; 16];
        for (i, w) in words.iter().enumerate() {
            o[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
        }
        IpAddr::V6(Ipv6Addr::from(o))
    } else {
        IpAddr::V4(Ipv4Addr::from(words[0]))
    }
}

fn family_of(a: IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => 2,
        IpAddr::V6(_) => 10,
    }
}

fn set_family(family: &mut u8, new: u8) -> Result<(), Fail> {
    if *family == 0 {
        *family = new;
    } else if *family != new {
        return Err(Fail::param("mismatched address family"));
    }
    Ok(())
}

/// Which object an address option writes to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Ct,
    Exp,
    Mask,
}

fn opt_type(c: char) -> u32 {
    match c {
        's' => opt::ORIG_SRC,
        'd' => opt::ORIG_DST,
        'r' => opt::REPL_SRC,
        'q' => opt::REPL_DST,
        '{' => opt::MASK_SRC,
        '}' => opt::MASK_DST,
        '[' => opt::EXP_SRC,
        ']' => opt::EXP_DST,
        'n' => opt::SRC_NAT,
        'g' => opt::DST_NAT,
        'm' => opt::MARK,
        'c' => opt::SECMARK,
        'i' => opt::ID,
        'j' => opt::ANY_NAT,
        'w' => opt::ZONE,
        'l' => opt::LABEL,
        '<' => opt::ADD_LABEL,
        '>' => opt::DEL_LABEL,
        '(' => opt::ORIG_ZONE,
        ')' => opt::REPL_ZONE,
        _ => 0,
    }
}

fn mask_opt(c: char) -> Option<char> {
    match c {
        's' | '[' => Some('{'),
        'd' | ']' => Some('}'),
        _ => None,
    }
}

/// The first long option of the current table with this value (`get_long_opt`).
fn long_name(c: char) -> &'static str {
    ORIGINAL_OPTS
        .iter()
        .find(|o| o.val == c as i32)
        .map_or("unknown", |o| o.name)
}

/// `nfct_set_addr_opt`: the option's bit, its address attribute, its layer-3 attribute.
fn set_addr_opt(c: char, tmpl: &mut Tmpl, which: Which, a: IpAddr, options: &mut u32) {
    *options |= opt_type(c);
    let l3 = family_of(a);
    let obj = match which {
        Which::Ct => &mut tmpl.ct,
        Which::Exp => &mut tmpl.exptuple,
        Which::Mask => &mut tmpl.mask,
    };
    match c {
        's' | '{' | '[' => {
            obj.orig.src = Some(Adr::Ip(a));
            obj.orig.l3 = Some(l3);
        }
        'd' | '}' | ']' => {
            obj.orig.dst = Some(Adr::Ip(a));
            obj.orig.l3 = Some(l3);
        }
        'r' => {
            obj.repl.src = Some(Adr::Ip(a));
            obj.repl.l3 = Some(l3);
        }
        'q' => {
            obj.repl.dst = Some(Adr::Ip(a));
            obj.repl.l3 = Some(l3);
        }
        'n' => {
            obj.snat = Some(a);
            obj.orig.l3 = Some(l3);
        }
        'g' => {
            obj.dnat = Some(a);
            obj.orig.l3 = Some(l3);
        }
        // `--any-nat` has no entry in the tool's tables: it writes over the original
        // source address.
        _ => obj.orig.src = Some(Adr::Garbage),
    }
}

/// `nfct_parse_addr_from_opt`.
fn addr_from_opt(
    c: char,
    arg: &str,
    tmpl: &mut Tmpl,
    which: Which,
    with_mask: bool,
    family: &mut u8,
    options: &mut u32,
) -> Result<IpAddr, Fail> {
    let (addr, mask) = parse_addr(arg);
    let Some(addr) = addr else {
        return Err(Fail::param(format!("Invalid IP address `{arg}'")));
    };
    set_family(family, family_of(addr))?;
    let maskopt = mask_opt(c);
    if mask != -1 && maskopt.is_none() {
        return Err(Fail::param(format!(
            "CIDR notation unavailable for `--{}'",
            long_name(c)
        )));
    } else if mask == -2 {
        return Err(Fail::param("Invalid netmask"));
    }
    set_addr_opt(c, tmpl, which, addr, options);
    let Some(maskopt) = maskopt.filter(|_| mask != -1 && with_mask) else {
        return Ok(addr);
    };
    let v6 = addr.is_ipv6();
    if mask == if v6 { 128 } else { 32 } {
        return Ok(addr);
    }
    set_addr_opt(maskopt, tmpl, Which::Mask, netmask(v6, mask), options);
    Ok(addr)
}

/// `split_address_and_port` of a NAT argument.
fn split_address_and_port(arg: &str) -> Result<(String, Option<String>), Fail> {
    let mut port_at = None;
    let mut address = None;
    if let Some(lb) = arg.find('[') {
        let start = lb + 1;
        match arg[start..].find(']') {
            Some(0) => return Err(Fail::param("No IPv6 address specified")),
            None => return Err(Fail::param("No closing ']' around IPv6 address")),
            Some(len) => {
                if let Some(colon) = arg[start + len..].find(':') {
                    address = Some(arg[start..start + len].to_string());
                    port_at = Some(start + len + colon + 1);
                }
            }
        }
    } else if let Some(colon) = arg.find(':') {
        if !arg[colon + 1..].contains(':') {
            address = Some(arg[..colon].to_string());
            port_at = Some(colon + 1);
        }
    }
    match port_at {
        Some(p) => {
            let port = &arg[p..];
            if port.is_empty() {
                return Err(Fail::param("No port specified after `:'"));
            }
            let valid = port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u32>().is_ok_and(|v| v <= 65535);
            if !valid {
                return Err(Fail::param(format!("Invalid port `{port}'")));
            }
            Ok((address.unwrap_or_default(), Some(port.to_string())))
        }
        None => Ok((arg.to_string(), None)),
    }
}

/// The element names of `-u`, `-e` and `-o`, with their values.
const STATUS_NAMES: &[(&str, u32)] = &[
    ("ASSURED", 1 << 2),
    ("SEEN_REPLY", 1 << 1),
    ("UNSET", 0),
    ("FIXED_TIMEOUT", 1 << 10),
    ("EXPECTED", 1),
    ("OFFLOAD", 1 << 14),
    ("HW_OFFLOAD", 1 << 15),
];
const EVENT_NAMES: &[(&str, u32)] = &[("ALL", 7), ("NEW", 1), ("UPDATES", 2), ("DESTROY", 4)];
const OUTPUT_NAMES: &[(&str, u32)] = &[
    ("xml", out::XML),
    ("extended", out::EXT),
    ("timestamp", out::TMS),
    ("id", out::ID),
    ("ktimestamp", out::KTMS),
    ("labels", out::CL),
    ("userspace", 0),
    ("save", out::SAVE),
];

fn do_parse_parameter(s: &str, value: &mut u32, names: &[(&str, u32)]) -> bool {
    if cnum::ci_prefix(s, "SRC_NAT") {
        eprintln!("WARNING: ignoring SRC_NAT, use --src-nat instead");
        return true;
    }
    if cnum::ci_prefix(s, "DST_NAT") {
        eprintln!("WARNING: ignoring DST_NAT, use --dst-nat instead");
        return true;
    }
    match names.iter().find(|(n, _)| cnum::ci_prefix(s, n)) {
        Some((_, v)) => {
            *value |= v;
            true
        }
        None => false,
    }
}

fn bad(arg: &str) -> Fail {
    Fail::param(format!("Bad parameter `{arg}'"))
}

fn parse_parameter(mut arg: &str, value: &mut u32, names: &[(&str, u32)]) -> Result<(), Fail> {
    while let Some(comma) = arg.find(',') {
        if comma == 0 || !do_parse_parameter(&arg[..comma], value, names) {
            return Err(bad(arg));
        }
        arg = &arg[comma + 1..];
    }
    if arg.is_empty() || !do_parse_parameter(arg, value, names) {
        return Err(bad(arg));
    }
    Ok(())
}

fn parse_status(mut arg: &str, status: &mut u32, mask: &mut u32) -> Result<(), Fail> {
    const SEEN_REPLY: u32 = 1 << 1;
    while let Some(mut comma) = arg.find(',') {
        if comma == 0 {
            return Err(bad(arg));
        }
        let negated = arg.starts_with('!');
        if negated {
            arg = &arg[1..];
            comma -= 1;
        }
        if comma == 0 {
            return Err(bad(arg));
        }
        if !negated && arg.starts_with("UNREPLIED") {
            *mask |= SEEN_REPLY;
            arg = &arg[comma + 1..];
            continue;
        }
        let target = if negated { &mut *mask } else { &mut *status };
        if !do_parse_parameter(&arg[..comma], target, STATUS_NAMES) {
            return Err(bad(arg));
        }
        arg = &arg[comma + 1..];
    }
    let negated = arg.starts_with('!');
    if negated {
        arg = &arg[1..];
    }
    if !negated && arg.starts_with("UNREPLIED") {
        *mask |= SEEN_REPLY;
        return Ok(());
    }
    let target = if negated { mask } else { status };
    if arg.is_empty() || !do_parse_parameter(arg, target, STATUS_NAMES) {
        return Err(bad(arg));
    }
    Ok(())
}

/// `getprotobyname`/`getprotobynumber` over `/etc/protocols`.
pub fn protocols() -> Vec<(String, u8, Vec<String>)> {
    let Ok(text) = std::fs::read_to_string("/etc/protocols") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let l = l.split('#').next().unwrap_or("");
            let mut w = l.split_whitespace();
            let name = w.next()?.to_string();
            let num = w.next()?.parse::<u8>().ok()?;
            Some((name, num, w.map(str::to_string).collect()))
        })
        .collect()
}

/// `findproto`: a handler by name, a protocol by `/etc/protocols` name (no handler), or by
/// number.
fn findproto(name: &str) -> Option<(Proto, u8)> {
    if let Some(h) = HANDLERS
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case(name))
    {
        return Some((*h, h.num()));
    }
    if let Some((_, n, _)) = protocols()
        .into_iter()
        .find(|(n, _, aliases)| n == name || aliases.iter().any(|a| a == name))
    {
        return Some((Proto::Unknown, n));
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

fn check_type(g: &mut GetOpt, attached: Option<String>) -> Result<Table, Fail> {
    let Some(t) = g.optional_arg(attached) else {
        return Ok(Table::Conntrack);
    };
    let is = |name: &str| name.starts_with(t.as_str());
    if is("expect") {
        Ok(Table::Expect)
    } else if is("conntrack") {
        Ok(Table::Conntrack)
    } else if is("dying") {
        Ok(Table::Dying)
    } else if is("unconfirmed") {
        Ok(Table::Unconfirmed)
    } else {
        Err(Fail::param(format!("unknown type `{t}'")))
    }
}

fn add_command(command: &mut u32, new: u32) -> Result<(), Fail> {
    if *command != 0 {
        return Err(Fail::param("Invalid commands combination"));
    }
    *command |= new;
    Ok(())
}

/// A zone, read as 1.4.7 does (`strtoul`, truncated to 16 bits); a value that is not a
/// whole number from 0 to 65535 is refused once the tool's own checks have passed.
fn zone(arg: &str, name: &str, deferred: &mut Option<Fail>) -> u16 {
    let ok = crate::proto::strict_u64(arg, true).is_some_and(|v| v <= 0xffff);
    if !ok && deferred.is_none() {
        *deferred = Some(Fail::param(format!(
            "Invalid value `{arg}' for `--{name}' (0 to 65535)"
        )));
    }
    cnum::strtoull(arg, 0).0 as u16
}

/// Looks for `--labelmap FILE` before the real parse, so that label names given before it
/// are read with it.
pub fn prescan_labelmap(argv: &[String]) -> Option<String> {
    let mut found = None;
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        let Some(body) = a.strip_prefix("--") else {
            continue;
        };
        let (name, value) = match body.find('=') {
            Some(eq) => (&body[..eq], Some(body[eq + 1..].to_string())),
            None => (body, None),
        };
        if name.len() > "label".len() && "labelmap".starts_with(name) {
            found = value.or_else(|| it.next().cloned());
        }
    }
    found
}

/// `do_parse`: one command line (the program name first) into a command.
pub fn do_parse(argv: Vec<String>, g: &mut Globals) -> Result<Cmd, Fail> {
    let mut tmpl = Tmpl::default();
    let mut table = Table::Conntrack;
    let (mut event_mask, mut l4flags, mut status) = (0u32, 0u32, 0u32);
    let (mut protonum, mut family) = (0u8, 0u8);
    let mut buffer_size = 0i64;
    let (mut command, mut options) = (0u32, 0u32);
    let mut status_mask = 0u32;
    // Our checks of values 1.4.7 takes silently: reported after the tool's own checks.
    let mut deferred: Option<Fail> = None;
    let mut longopts: Vec<LongOpt> = ORIGINAL_OPTS.to_vec();
    let mut offset = 0;
    let mut go = GetOpt::new(argv);

    while let Some(got) = go.next(GETOPT_STR, &longopts, EXTENSION_OPTS) {
        let (c, arg) = match got {
            Got::Opt(c, a) => (c, a),
            Got::MissingArg => {
                return Err(Fail::param(format!(
                    "option `{}' requires an argument",
                    go.prev()
                )))
            }
            Got::Unknown => return Err(Fail::param(format!("unknown option `{}'", go.prev()))),
        };
        let a = arg.clone().unwrap_or_default();
        if c == OPT_LABELMAP {
            continue;
        }
        let ch = if (0..256).contains(&c) {
            c as u8 as char
        } else {
            '\0'
        };
        match ch {
            'L' => {
                table = check_type(&mut go, arg)?;
                let new = match table {
                    Table::Expect => cmd::EXP_LIST,
                    _ => cmd::CT_LIST,
                };
                add_command(&mut command, new)?;
            }
            'I' | 'D' | 'G' | 'F' | 'E' | 'V' | 'h' | 'C' | 'S' | 'U' | 'A' => {
                table = check_type(&mut go, arg)?;
                if matches!(table, Table::Dying | Table::Unconfirmed) {
                    return Err(Fail::param(
                        "Can't do that command with tables `dying' and `unconfirmed'",
                    ));
                }
                let exp = table == Table::Expect;
                let new = match (ch, exp) {
                    ('I', false) => cmd::CT_CREATE,
                    ('I', true) => cmd::EXP_CREATE,
                    ('D', false) => cmd::CT_DELETE,
                    ('D', true) => cmd::EXP_DELETE,
                    ('G', false) => cmd::CT_GET,
                    ('G', true) => cmd::EXP_GET,
                    ('F', false) => cmd::CT_FLUSH,
                    ('F', true) => cmd::EXP_FLUSH,
                    ('E', false) => cmd::CT_EVENT,
                    ('E', true) => cmd::EXP_EVENT,
                    ('V', _) => cmd::CT_VERSION,
                    ('h', _) => cmd::CT_HELP,
                    ('C', false) => cmd::CT_COUNT,
                    ('C', true) => cmd::EXP_COUNT,
                    ('S', false) => cmd::CT_STATS,
                    ('S', true) => cmd::EXP_STATS,
                    ('U', false) => cmd::CT_UPDATE,
                    ('A', false) => cmd::CT_ADD,
                    _ => 0,
                };
                if new == 0 {
                    return Err(Fail::param(format!(
                        "Can't do --{} on {}",
                        long_name(ch),
                        if exp { "expectations" } else { "conntrack" }
                    )));
                }
                add_command(&mut command, new)?;
            }
            's' | 'd' | 'r' | 'q' => {
                addr_from_opt(
                    ch,
                    &a,
                    &mut tmpl,
                    Which::Ct,
                    true,
                    &mut family,
                    &mut options,
                )?;
            }
            '[' | ']' => {
                addr_from_opt(
                    ch,
                    &a,
                    &mut tmpl,
                    Which::Exp,
                    true,
                    &mut family,
                    &mut options,
                )?;
            }
            '{' | '}' => {
                addr_from_opt(
                    ch,
                    &a,
                    &mut tmpl,
                    Which::Mask,
                    false,
                    &mut family,
                    &mut options,
                )?;
            }
            'p' => {
                options |= opt::PROTO;
                let (h, n) = findproto(&a)
                    .ok_or_else(|| Fail::param(format!("`{a}' unsupported protocol")))?;
                g.handler = Some(h);
                protonum = n;
                offset += 256;
                longopts.extend(h.opts().iter().map(|(name, has_arg, code)| LongOpt {
                    name,
                    has_arg: *has_arg,
                    val: offset + code,
                }));
                tmpl.ct.orig.l4 = Some(n);
            }
            't' => {
                options |= opt::TIMEOUT;
                let t = cnum::atol(&a) as u32;
                tmpl.ct.timeout = Some(t);
                tmpl.exp_timeout = Some(t);
            }
            'u' => {
                options |= opt::STATUS;
                parse_status(&a, &mut status, &mut status_mask)?;
                tmpl.ct.status = Some(status);
                if status_mask == 0 {
                    status_mask = status;
                }
                // 1.4.7 stores the status in the mark's value too (fixed in 1.4.8).
                tmpl.mark.0 = status;
                tmpl.filter_status_kernel = Some((status, status_mask));
            }
            'e' => {
                options |= opt::EVENT_MASK;
                parse_parameter(&a, &mut event_mask, EVENT_NAMES)?;
            }
            'o' => {
                options |= opt::OUTPUT;
                parse_parameter(&a, &mut g.output_mask, OUTPUT_NAMES)?;
                if g.output_mask & out::CL != 0 {
                    g.labelmap_init();
                }
                let others = out::EXT | out::TMS | out::ID | out::KTMS | out::CL | out::XML;
                if g.output_mask & out::SAVE != 0 && g.output_mask & others != 0 {
                    return Err(Fail::other(
                        "cannot combine save output with any other output type, use -o save only",
                    ));
                }
            }
            'z' => options |= opt::ZERO,
            'n' | 'g' | 'j' => {
                options |= opt_type(ch);
                if let Some(nat) = go.optional_arg(arg) {
                    let (address, port) = split_address_and_port(&nat)?;
                    let ad = addr_from_opt(
                        ch,
                        &address,
                        &mut tmpl,
                        Which::Ct,
                        false,
                        &mut family,
                        &mut options,
                    )?;
                    let port = port.map(|p| cnum::atoi(&p) as u16);
                    let ct = &mut tmpl.ct;
                    if ch != 'n' {
                        ct.dnat = Some(ad);
                        if port.is_some() {
                            ct.dnat_port = port;
                        }
                    }
                    if ch != 'g' {
                        ct.snat = Some(ad);
                        if port.is_some() {
                            ct.snat_port = port;
                        }
                    }
                }
            }
            'w' => {
                options |= opt::ZONE;
                tmpl.ct.zone = Some(zone(&a, "zone", &mut deferred));
            }
            '(' => {
                options |= opt::ORIG_ZONE;
                tmpl.ct.orig.zone = Some(zone(&a, "orig-zone", &mut deferred));
            }
            ')' => {
                options |= opt::REPL_ZONE;
                tmpl.ct.repl.zone = Some(zone(&a, "reply-zone", &mut deferred));
            }
            'i' => {
                options |= opt::ID;
                let Some(v) = arg.as_deref() else {
                    // conntrack 1.4.7 crashes on `--id` without a value.
                    return Err(Fail::param("option `--id' requires an argument"));
                };
                tmpl.ct.id = Some(cnum::strtoul_u32(v));
            }
            'c' => {
                options |= opt::SECMARK;
                tmpl.ct.secmark = Some(cnum::strtoul_u32(&a));
            }
            'm' => {
                options |= opt::MARK;
                let (v, used) = cnum::strtoull(&a, 0);
                let rest = &a[used..];
                let m = match rest.strip_prefix('/') {
                    Some(m) => cnum::strtoull(m, 0).0 as u32,
                    None => u32::MAX,
                };
                tmpl.mark = (v as u32, m);
                tmpl.filter_mark_kernel = Some(tmpl.mark);
            }
            'l' | '<' | '>' => {
                options |= opt_type(ch);
                g.labelmap_init();
                if options & (opt::DEL_LABEL | opt::ADD_LABEL) == opt::DEL_LABEL | opt::ADD_LABEL {
                    return Err(Fail::other(
                        "cannot use --label-add and --label-del at the same time",
                    ));
                }
                let names = if ch == '>' {
                    match go.optional_arg(arg) {
                        Some(n) => n,
                        None => continue,
                    }
                } else {
                    a.clone()
                };
                let mut max = 0;
                for n in names.split(',') {
                    max = max.max(g.get_label(n)?);
                }
                let mut b = Bitmask::new(max);
                for n in names.split(',') {
                    b.set(g.get_label(n)?);
                }
                let current = if ch == 'l' {
                    &mut tmpl.label
                } else {
                    &mut tmpl.label_modify
                };
                *current = Some(match current.take() {
                    None => b,
                    Some(cur) => {
                        let (mut big, small) = if b.maxbit() > cur.maxbit() {
                            (b, cur)
                        } else {
                            (cur, b)
                        };
                        for i in 0..=small.maxbit() {
                            if small.test(i) {
                                big.set(i);
                            }
                        }
                        big
                    }
                });
            }
            'a' => eprintln!("WARNING: ignoring -{ch}, deprecated option."),
            'f' => {
                options |= opt::FAMILY;
                if a.starts_with("ipv4") {
                    set_family(&mut family, 2)?;
                } else if a.starts_with("ipv6") {
                    set_family(&mut family, 10)?;
                } else {
                    return Err(Fail::param(format!("`{a}' unsupported protocol")));
                }
            }
            'b' => {
                buffer_size = cnum::atol(&a);
                options |= opt::BUFFERSIZE;
            }
            _ => {
                if let Some(h) = g.handler {
                    h.parse(c & 0xff, &a, &mut tmpl, &mut l4flags, &mut deferred)?;
                }
            }
        }
    }

    if family == 0
        && !matches!(
            command,
            cmd::CT_LIST
                | cmd::CT_UPDATE
                | cmd::CT_DELETE
                | cmd::CT_GET
                | cmd::CT_FLUSH
                | cmd::CT_EVENT
        )
    {
        family = 2;
    }
    if options & opt::ANY_NAT != 0 && options & (opt::SRC_NAT | opt::DST_NAT) != 0 {
        return Err(Fail::param(
            "cannot specify `--src-nat' or `--dst-nat' with `--any-nat'",
        ));
    }
    let cmd = if command == 0 {
        cmd_bit::NONE
    } else {
        command.trailing_zeros() as usize
    };
    let row = COMMANDS_V_OPTIONS.get(cmd).map_or(&[][..], |r| &r[..]);
    let coupled = Some([opt::ORIG, opt::REPL]);
    if let Err(partial) = generic_opt_check(options, 29, row, &OPTFLAGS, coupled)? {
        return Err(Fail::param(if partial == 1 {
            "you have to specify `--reply-src' and `--reply-dst'"
        } else {
            "you have to specify `--src' and `--dst'"
        }));
    }
    if command & cmd::CT_HELP == 0 {
        if let Some(h) = g.handler {
            h.final_check(l4flags, cmd, &mut tmpl.ct)?;
        }
    }
    if let Some(f) = deferred {
        return Err(f);
    }
    Ok(Cmd {
        command,
        options,
        family,
        table,
        protonum,
        event_mask,
        buffer_size,
        tmpl,
    })
}
