//! The tables of conntrack-tools 1.4.7's command line: command and option bits, which
//! command takes which option, the long options, and the names of `-u`, `-e` and `-o`.

use crate::getopt::{HasArg, LongOpt};

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

/// The long names of the option bits, for the messages of the option check.
pub const OPTFLAGS: [&str; 29] = [
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
pub const COMMANDS_V_OPTIONS: [[u8; 29]; 21] = [
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

/// The short options.
pub const GETOPT_STR: &str =
    ":L::I::U::D::G::E::F::A::hVs:d:r:q:p:t:u:e:a:z[:]:{:}:m:i:f:o:n::g::c:b:C::Sj::w:l:<:>::(:):";

/// The names of `-u`, with their values.
pub const STATUS_NAMES: &[(&str, u32)] = &[
    ("ASSURED", 1 << 2),
    ("SEEN_REPLY", 1 << 1),
    ("UNSET", 0),
    ("FIXED_TIMEOUT", 1 << 10),
    ("EXPECTED", 1),
    ("OFFLOAD", 1 << 14),
    ("HW_OFFLOAD", 1 << 15),
];
/// The names of `-e`.
pub const EVENT_NAMES: &[(&str, u32)] = &[("ALL", 7), ("NEW", 1), ("UPDATES", 2), ("DESTROY", 4)];
/// The names of `-o`.
pub const OUTPUT_NAMES: &[(&str, u32)] = &[
    ("xml", out::XML),
    ("extended", out::EXT),
    ("timestamp", out::TMS),
    ("id", out::ID),
    ("ktimestamp", out::KTMS),
    ("labels", out::CL),
    ("userspace", 0),
    ("save", out::SAVE),
];
