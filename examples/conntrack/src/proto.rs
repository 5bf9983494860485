//! The per-protocol extensions of conntrack-tools 1.4.7 (`extensions/libct_proto_*.c`):
//! their long options, which command needs or forbids which of them, how each option sets
//! the template, the final check and the help text.

use conntrack_codec::fmt::{dccp_state_name, sctp_state_name, tcp_state_name};

use crate::cat;
use crate::getopt::HasArg;
use crate::model::{Obj, Tmpl};
use crate::parse::{cmd_bit, Fail};

/// A protocol handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// UDP-Lite.
    Udplite,
    /// SCTP.
    Sctp,
    /// DCCP.
    Dccp,
    /// ICMP.
    Icmp,
    /// ICMPv6.
    Icmpv6,
    /// GRE.
    Gre,
    /// Any other protocol (no options).
    Unknown,
}

/// The handlers searched by name or number, in the tool's registration order (the list is
/// searched from the last registered).
pub const HANDLERS: [Proto; 8] = [
    Proto::Gre,
    Proto::Icmpv6,
    Proto::Icmp,
    Proto::Dccp,
    Proto::Sctp,
    Proto::Udplite,
    Proto::Udp,
    Proto::Tcp,
];

/// What an option of a handler sets.
enum Field {
    /// A port or key: 0/1 original source/destination, 2/3 reply, 4/5 mask, 6/7 expected.
    Port(u8),
    /// The TCP, SCTP or DCCP state.
    State,
    /// An SCTP verification tag (0 original, 1 reply).
    Vtag(usize),
    /// The DCCP role.
    Role,
    /// ICMP type (0), code (1) or id (2).
    Icmp(u8),
}

type Opts = &'static [(&'static str, HasArg, i32)];

const R: HasArg = HasArg::Required;
const fn c(ch: char) -> i32 {
    ch as i32
}

const TCP_OPTS: Opts = &[
    ("orig-port-src", R, c('1')),
    ("sport", R, c('1')),
    ("orig-port-dst", R, c('2')),
    ("dport", R, c('2')),
    ("reply-port-src", R, c('3')),
    ("reply-port-dst", R, c('4')),
    ("mask-port-src", R, c('5')),
    ("mask-port-dst", R, c('6')),
    ("state", R, c('7')),
    ("tuple-port-src", R, c('8')),
    ("tuple-port-dst", R, c('9')),
];
const UDP_OPTS: Opts = &[
    ("orig-port-src", R, c('1')),
    ("sport", R, c('1')),
    ("orig-port-dst", R, c('2')),
    ("dport", R, c('2')),
    ("reply-port-src", R, c('3')),
    ("reply-port-dst", R, c('4')),
    ("mask-port-src", R, c('5')),
    ("mask-port-dst", R, c('6')),
    ("tuple-port-src", R, c('7')),
    ("tuple-port-dst", R, c('8')),
];
const UDPLITE_OPTS: Opts = &[
    ("orig-port-src", R, c('1')),
    ("orig-port-dst", R, c('2')),
    ("reply-port-src", R, c('3')),
    ("reply-port-dst", R, c('4')),
    ("mask-port-src", R, c('5')),
    ("mask-port-dst", R, c('6')),
    ("tuple-port-src", R, c('7')),
    ("tuple-port-dst", R, c('8')),
    ("sport", R, c('1')),
    ("dport", R, c('2')),
];
const SCTP_OPTS: Opts = &[
    ("orig-port-src", R, 1),
    ("orig-port-dst", R, 2),
    ("reply-port-src", R, 3),
    ("reply-port-dst", R, 4),
    ("mask-port-src", R, 5),
    ("mask-port-dst", R, 6),
    ("state", R, 7),
    ("tuple-port-src", R, 8),
    ("tuple-port-dst", R, 9),
    ("orig-vtag", R, 10),
    ("reply-vtag", R, 11),
    ("sport", R, 1),
    ("dport", R, 2),
];
const DCCP_OPTS: Opts = &[
    ("orig-port-src", R, 1),
    ("orig-port-dst", R, 2),
    ("reply-port-src", R, 3),
    ("reply-port-dst", R, 4),
    ("mask-port-src", R, 5),
    ("mask-port-dst", R, 6),
    ("state", R, 7),
    ("tuple-port-src", R, 8),
    ("tuple-port-dst", R, 9),
    ("sport", R, 1),
    ("dport", R, 2),
    ("role", R, 10),
];
const ICMP_OPTS: Opts = &[
    ("icmp-type", R, c('1')),
    ("icmp-code", R, c('2')),
    ("icmp-id", R, c('3')),
];
const ICMPV6_OPTS: Opts = &[
    ("icmpv6-type", R, c('1')),
    ("icmpv6-code", R, c('2')),
    ("icmpv6-id", R, c('3')),
];
const GRE_OPTS: Opts = &[
    ("orig-key-src", R, c('1')),
    ("srckey", R, c('1')),
    ("orig-key-dst", R, c('2')),
    ("dstkey", R, c('2')),
    ("reply-key-src", R, c('3')),
    ("reply-key-dst", R, c('4')),
    ("mask-key-src", R, c('5')),
    ("mask-key-dst", R, c('6')),
    ("tuple-key-src", R, c('7')),
    ("tuple-key-dst", R, c('8')),
];

const PORT_FLAGS: &[&str] = &[
    "sport",
    "dport",
    "reply-port-src",
    "reply-port-dst",
    "mask-port-src",
    "mask-port-dst",
    "state",
    "tuple-port-src",
    "tuple-port-dst",
];
const UDP_FLAGS: &[&str] = &[
    "sport",
    "dport",
    "reply-port-src",
    "reply-port-dst",
    "mask-port-src",
    "mask-port-dst",
    "tuple-port-src",
    "tuple-port-dst",
];
const SCTP_FLAGS: &[&str] = &[
    "sport",
    "dport",
    "reply-port-src",
    "reply-port-dst",
    "mask-port-src",
    "mask-port-dst",
    "state",
    "tuple-port-src",
    "tuple-port-dst",
    "orig-vtag",
    "reply-vtag",
];
const DCCP_FLAGS: &[&str] = &[
    "sport",
    "dport",
    "reply-port-src",
    "reply-port-dst",
    "mask-port-src",
    "mask-port-dst",
    "state",
    "tuple-port-src",
    "tuple-port-dst",
    "role",
];
const ICMP_FLAGS: &[&str] = &["icmp-type", "icmp-code", "icmp-id"];
const ICMPV6_FLAGS: &[&str] = &["icmpv6-type", "icmpv6-code", "icmpv6-id"];
const GRE_FLAGS: &[&str] = &[
    "srckey",
    "dstkey",
    "reply-key-src",
    "reply-key-dst",
    "mask-key-src",
    "mask-key-dst",
    "tuple-key-src",
    "tuple-key-dst",
];

/// Which rows of the command table a protocol defines (the rest are all 0).
fn row(p: Proto, cmd: usize) -> &'static [u8] {
    use cmd_bit::*;
    let cmd = if cmd == CT_ADD { CT_CREATE } else { cmd };
    match p {
        Proto::Tcp => match cmd {
            CT_LIST | CT_UPDATE | CT_DELETE | CT_EVENT => &[2, 2, 2, 2, 0, 0, 2, 0, 0],
            CT_CREATE => &[3, 3, 3, 3, 0, 0, 1, 0, 0],
            CT_GET => &[3, 3, 3, 3, 0, 0, 2, 0, 0],
            EXP_CREATE => &[1, 1, 0, 0, 1, 1, 0, 1, 1],
            EXP_DELETE | EXP_GET => &[1, 1, 1, 1, 0, 0, 0, 0, 0],
            _ => &[],
        },
        Proto::Udp | Proto::Udplite => match cmd {
            CT_LIST | CT_UPDATE | CT_DELETE | CT_EVENT => &[2, 2, 2, 2, 0, 0, 0, 0],
            CT_CREATE | CT_GET => &[3, 3, 3, 3, 0, 0, 0, 0],
            EXP_CREATE => &[1, 1, 0, 0, 1, 1, 1, 1],
            EXP_DELETE | EXP_GET => &[1, 1, 1, 1, 0, 0, 0, 0],
            _ => &[],
        },
        Proto::Sctp => match cmd {
            CT_LIST | CT_DELETE | CT_EVENT => &[2, 2, 2, 2, 0, 0, 2, 0, 0, 0, 0],
            CT_UPDATE => &[2, 2, 2, 2, 0, 0, 2, 0, 0, 2, 2],
            CT_CREATE => &[3, 3, 3, 3, 0, 0, 1, 0, 0, 1, 1],
            CT_GET => &[3, 3, 3, 3, 0, 0, 2, 0, 0, 2, 2],
            EXP_CREATE => &[1, 1, 0, 0, 1, 1, 0, 1, 1, 1, 1],
            EXP_DELETE | EXP_GET => &[1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
            _ => &[],
        },
        Proto::Dccp => match cmd {
            CT_LIST | CT_UPDATE | CT_DELETE | CT_EVENT => &[2, 2, 2, 2, 0, 0, 2, 0, 0, 0],
            CT_CREATE => &[3, 3, 3, 3, 0, 0, 1, 0, 0, 1],
            CT_GET => &[3, 3, 3, 3, 0, 0, 2, 0, 0, 0],
            EXP_CREATE => &[1, 1, 0, 0, 1, 1, 0, 1, 1, 1],
            EXP_DELETE | EXP_GET => &[1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
            _ => &[],
        },
        Proto::Icmp | Proto::Icmpv6 => match cmd {
            CT_LIST | CT_UPDATE | CT_DELETE | CT_EVENT => &[2, 2, 2],
            CT_CREATE | CT_GET => &[1, 1, 2],
            _ => &[],
        },
        Proto::Gre => match cmd {
            CT_LIST | CT_UPDATE | CT_DELETE | CT_EVENT => &[2, 2, 2, 2, 0, 0, 0, 0],
            CT_CREATE | CT_GET => &[3, 3, 3, 3, 0, 0, 0, 0],
            EXP_CREATE => &[1, 1, 1, 1, 1, 1, 1, 1],
            EXP_DELETE | EXP_GET => &[1, 1, 1, 1, 0, 0, 0, 0],
            _ => &[],
        },
        Proto::Unknown => &[],
    }
}

impl Proto {
    /// The handler's name (`unknown` for protocols without one).
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Udplite => "udplite",
            Proto::Sctp => "sctp",
            Proto::Dccp => "dccp",
            Proto::Icmp => "icmp",
            Proto::Icmpv6 => "icmpv6",
            Proto::Gre => "gre",
            Proto::Unknown => "unknown",
        }
    }

    /// The protocol number the handler stands for.
    pub fn num(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Udplite => 136,
            Proto::Sctp => 132,
            Proto::Dccp => 33,
            Proto::Icmp => 1,
            Proto::Icmpv6 => 58,
            Proto::Gre => 47,
            Proto::Unknown => 0,
        }
    }

    /// The handler's long options: name, argument, code.
    pub fn opts(self) -> &'static [(&'static str, HasArg, i32)] {
        match self {
            Proto::Tcp => TCP_OPTS,
            Proto::Udp => UDP_OPTS,
            Proto::Udplite => UDPLITE_OPTS,
            Proto::Sctp => SCTP_OPTS,
            Proto::Dccp => DCCP_OPTS,
            Proto::Icmp => ICMP_OPTS,
            Proto::Icmpv6 => ICMPV6_OPTS,
            Proto::Gre => GRE_OPTS,
            Proto::Unknown => &[],
        }
    }

    fn flag_names(self) -> &'static [&'static str] {
        match self {
            Proto::Tcp => PORT_FLAGS,
            Proto::Udp | Proto::Udplite => UDP_FLAGS,
            Proto::Sctp => SCTP_FLAGS,
            Proto::Dccp => DCCP_FLAGS,
            Proto::Icmp => ICMP_FLAGS,
            Proto::Icmpv6 => ICMPV6_FLAGS,
            Proto::Gre => GRE_FLAGS,
            Proto::Unknown => &[],
        }
    }

    /// The `Proto `x' help:` lines.
    pub fn help(self) -> &'static str {
        const PORTS: &str = "  --orig-port-src\t\toriginal source port\n  --orig-port-dst\t\toriginal destination port\n  --reply-port-src\t\treply source port\n  --reply-port-dst\t\treply destination port\n  --mask-port-src\t\tmask source port\n  --mask-port-dst\t\tmask destination port\n  --tuple-port-src\t\texpectation tuple src port\n  --tuple-port-src\t\texpectation tuple dst port\n";
        match self {
            Proto::Tcp => concat!(
                "  --orig-port-src\t\toriginal source port\n  --orig-port-dst\t\toriginal destination port\n  --reply-port-src\t\treply source port\n  --reply-port-dst\t\treply destination port\n  --mask-port-src\t\tmask source port\n  --mask-port-dst\t\tmask destination port\n  --tuple-port-src\t\texpectation tuple src port\n  --tuple-port-src\t\texpectation tuple dst port\n",
                "  --state\t\t\tTCP state, fe. ESTABLISHED\n"
            ),
            Proto::Udp | Proto::Udplite => PORTS,
            Proto::Sctp => concat!(
                "  --orig-port-src\t\toriginal source port\n  --orig-port-dst\t\toriginal destination port\n  --reply-port-src\t\treply source port\n  --reply-port-dst\t\treply destination port\n  --mask-port-src\t\tmask source port\n  --mask-port-dst\t\tmask destination port\n  --tuple-port-src\t\texpectation tuple src port\n  --tuple-port-src\t\texpectation tuple dst port\n",
                "  --state\t\t\tSCTP state, fe. ESTABLISHED\n",
                "  --orig-vtag\t\toriginal verification tag\n",
                "  --reply-vtag\t\treply verification tag\n"
            ),
            Proto::Dccp => concat!(
                "  --orig-port-src\t\toriginal source port\n  --orig-port-dst\t\toriginal destination port\n  --reply-port-src\t\treply source port\n  --reply-port-dst\t\treply destination port\n  --mask-port-src\t\tmask source port\n  --mask-port-dst\t\tmask destination port\n  --tuple-port-src\t\texpectation tuple src port\n  --tuple-port-src\t\texpectation tuple dst port\n",
                "  --state\t\t\tDCCP state, fe. RESPOND\n"
            ),
            Proto::Icmp => "  --icmp-type\t\t\ticmp type\n  --icmp-code\t\t\ticmp code\n  --icmp-id\t\t\ticmp id\n",
            Proto::Icmpv6 => "  --icmpv6-type\t\t\ticmpv6 type\n  --icmpv6-code\t\t\ticmpv6 code\n  --icmpv6-id\t\t\ticmpv6 id\n",
            Proto::Gre => "  --orig-key-src\t\toriginal source key\n  --orig-key-dst\t\toriginal destination key\n  --reply-key-src\t\treply source key\n  --reply-key-dst\t\treply destination key\n  --mask-key-src\t\tmask source key\n  --mask-key-dst\t\tmask destination key\n  --tuple-key-src\t\texpectation tuple src key\n  --tuple-key-src\t\texpectation tuple dst key\n",
            Proto::Unknown => "  no options (unsupported)\n",
        }
    }

    /// The flag bit an option code sets, and whether the handler knows the code.
    fn flag_of(self, code: i32) -> Option<u32> {
        let index = match self {
            Proto::Sctp | Proto::Dccp => code - 1,
            _ => code - c('1'),
        };
        let n = i32::try_from(self.flag_names().len()).unwrap_or(0);
        (0..n).contains(&index).then(|| 1u32 << index)
    }

    /// Parses one of the handler's options (by code) into the template. A code this handler
    /// does not have does nothing, as in the tool.
    pub fn parse(
        self,
        code: i32,
        arg: &[u8],
        tmpl: &mut Tmpl,
        flags: &mut u32,
        deferred: &mut Option<Fail>,
    ) -> Result<(), Fail> {
        let Some(bit) = self.flag_of(code) else {
            return Ok(());
        };
        let index = bit.trailing_zeros() as u8;
        let num = self.num();
        let opt = self
            .flag_names()
            .get(usize::from(index))
            .copied()
            .unwrap_or("");
        match self.field(index) {
            Field::Icmp(i) => {
                let ct = &mut tmpl.ct;
                match i {
                    0 => ct.set_icmp_type(num_u8(arg, opt, deferred)),
                    1 => ct.set_icmp_code(num_u8(arg, opt, deferred)),
                    _ => ct.set_icmp_id(num_u16(arg, opt, false, deferred)),
                }
                ct.orig.l4 = Some(num);
                if ct.repl.l3.is_some() {
                    ct.repl.l4 = Some(num);
                }
            }
            Field::Port(slot) => {
                let port = num_u16(arg, opt, self == Proto::Gre, deferred);
                let (obj, reply): (&mut Obj, bool) = match slot {
                    0 | 1 => (&mut tmpl.ct, false),
                    2 | 3 => (&mut tmpl.ct, true),
                    4 | 5 => (&mut tmpl.mask, false),
                    _ => (&mut tmpl.exptuple, false),
                };
                let t = if reply { &mut obj.repl } else { &mut obj.orig };
                if slot % 2 == 0 {
                    t.sport = Some(port);
                } else {
                    t.dport = Some(port);
                }
                // The TCP, SCTP and DCCP extensions set the expected tuple's protocol to the
                // port in network byte order, converted to a byte.
                let buggy = slot >= 6 && matches!(self, Proto::Tcp | Proto::Sctp | Proto::Dccp);
                t.l4 = Some(if buggy {
                    (port.to_be() & 0xff) as u8
                } else {
                    num
                });
            }
            Field::State => match self {
                Proto::Tcp => {
                    let state = match state_number(tcp_state_name, 10, arg) {
                        Some(i) => i,
                        None if arg == b"LISTEN" => 9,
                        None => return Err(Fail::param(cat!("unknown TCP state `", arg, "'"))),
                    };
                    tmpl.ct.tcp_state = Some(state);
                }
                // 1.4.7's table stops before the HEARTBEAT states.
                Proto::Sctp => match state_number(sctp_state_name, 8, arg) {
                    Some(i) => tmpl.ct.sctp_state = Some(i),
                    // conntrack 1.4.7 reads past its table of names here and crashes.
                    None => return Err(Fail::param(cat!("unknown SCTP state `", arg, "'"))),
                },
                _ => match state_number(dccp_state_name, 10, arg) {
                    Some(i) => tmpl.ct.dccp_state = Some(i),
                    None => return Err(Fail::param(cat!("Unknown DCCP state `", arg, "'"))),
                },
            },
            Field::Vtag(dir) => {
                // 1.4.7 converts the tag to network order twice: the kernel gets it with its
                // bytes in host order.
                let v = num_u32(arg, opt, deferred);
                tmpl.ct.vtag[dir] = Some(u32::from_be_bytes(v.to_ne_bytes()));
            }
            Field::Role => {
                let role = if crate::cnum::ci_prefix(arg, "client") {
                    0
                } else if crate::cnum::ci_prefix(arg, "server") {
                    1
                } else {
                    return Err(Fail::param(cat!("Unknown DCCP role `", arg, "'")));
                };
                tmpl.ct.dccp_role = Some(role);
            }
        }
        *flags |= bit;
        Ok(())
    }

    fn field(self, index: u8) -> Field {
        match self {
            Proto::Icmp | Proto::Icmpv6 => Field::Icmp(index),
            Proto::Tcp | Proto::Sctp | Proto::Dccp => match index {
                0..=5 => Field::Port(index),
                6 => Field::State,
                7 => Field::Port(6),
                8 => Field::Port(7),
                9 if self == Proto::Dccp => Field::Role,
                9 => Field::Vtag(0),
                _ => Field::Vtag(1),
            },
            _ => Field::Port(index),
        }
    }

    /// The handler's check of its options against the command, then what it sets: the
    /// window tracking flags every TCP template gets (reading the TCP state, which, when
    /// unset, leaves `ENODATA` in `errno`), and for protocols without a handler the reply
    /// tuple's protocol, when the reply tuple has a family and no protocol yet.
    pub fn final_check(
        self,
        flags: u32,
        cmd: usize,
        ct: &mut Obj,
        errno: &mut i32,
    ) -> Result<(), Fail> {
        if self == Proto::Unknown {
            if ct.repl.l3.is_some() && ct.orig.l4.is_some() && ct.repl.l4.is_none() {
                ct.repl.l4 = ct.orig.l4;
            }
            return Ok(());
        }
        let names = self.flag_names();
        let table = row(self, cmd);
        let coupled: Option<[u32; 2]> = match self {
            Proto::Icmp | Proto::Icmpv6 => None,
            _ => Some([0b11, 0b1100]),
        };
        let ok = crate::parse::generic_opt_check(flags, names.len(), table, names, coupled)?;
        if let Err(partial) = ok {
            let reply = match self {
                Proto::Dccp => "you have to specify `--reply-port-src' and `--report-port-dst'",
                Proto::Gre => "you have to specify `--reply-src-key' and `--reply-dst-key'",
                _ => "you have to specify `--reply-src-port' and `--reply-dst-port'",
            };
            let orig = match self {
                Proto::Gre => "you have to specify `--srckey' and `--dstkey'",
                _ => "you have to specify `--sport' and `--dport'",
            };
            return Err(Fail::param(if partial == 1 { reply } else { orig }));
        }
        if self == Proto::Tcp {
            if ct.tcp_state.is_none() {
                *errno = nix::libc::ENODATA;
            }
            // BE_LIBERAL | SACK_PERM, and CLOSE_INIT from TIME_WAIT on.
            let mut f = 0x08 | 0x02;
            if ct.tcp_state.unwrap_or(0) >= 7 {
                f |= 0x04;
            }
            ct.tcp_flags = [Some((f, f)), Some((f, f))];
        }
        Ok(())
    }
}

/// The state among the first `count` whose name (as the codec prints it) is `name`.
fn state_number(name_of: fn(u8) -> &'static str, count: u8, name: &[u8]) -> Option<u8> {
    (0..count).find(|&s| name_of(s).as_bytes() == name)
}

/// Reads a number as 1.4.7 does (`atoi`, or `strtoul` for GRE keys) and, when it is not a
/// whole number in range, records a parameter error to report once the tool's own checks
/// have passed (1.4.7 takes such values silently, truncated).
fn checked(arg: &[u8], opt: &str, max: u64, base0: bool, deferred: &mut Option<Fail>) -> u64 {
    let c_value = if base0 {
        crate::cnum::strtoull(arg, 0).0
    } else {
        crate::cnum::atoi(arg) as i64 as u64
    };
    if strict_u64(arg, base0).is_none_or(|v| v > max) && deferred.is_none() {
        *deferred = Some(Fail::param(cat!(
            "Invalid value `",
            arg,
            "' for `--",
            opt,
            "' (0 to ",
            max.to_string(),
            ")"
        )));
    }
    c_value
}

fn num_u16(arg: &[u8], opt: &str, base0: bool, deferred: &mut Option<Fail>) -> u16 {
    checked(arg, opt, 0xffff, base0, deferred) as u16
}

fn num_u8(arg: &[u8], opt: &str, deferred: &mut Option<Fail>) -> u8 {
    checked(arg, opt, 0xff, false, deferred) as u8
}

fn num_u32(arg: &[u8], opt: &str, deferred: &mut Option<Fail>) -> u32 {
    checked(arg, opt, 0xffff_ffff, false, deferred) as u32
}

/// A whole-string unsigned number: decimal, or with `base0` also `0x` hex and `0` octal.
pub fn strict_u64(arg: &[u8], base0: bool) -> Option<u64> {
    if !arg.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let (v, used) = crate::cnum::strtoull(arg, if base0 { 0 } else { 10 });
    (used == arg.len() && v != u64::MAX).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_out_of_range_are_deferred_errors() {
        let mut deferred = None;
        assert_eq!(
            num_u16(b"70000", "sport", false, &mut deferred),
            70000u32 as u16
        );
        let f = deferred.expect("refused");
        assert_eq!(f.msg, b"Invalid value `70000' for `--sport' (0 to 65535)");
        let mut deferred = None;
        assert_eq!(num_u16(b"0x10", "srckey", true, &mut deferred), 16);
        assert!(deferred.is_none());
        assert_eq!(strict_u64(b"12a", false), None);
        assert_eq!(strict_u64(b"\xff", false), None);
    }

    #[test]
    fn unknown_protocols_give_the_reply_their_protocol() {
        let mut ct = Obj::default();
        ct.orig.l4 = Some(200);
        ct.repl.l3 = Some(2);
        let mut errno = 0;
        Proto::Unknown
            .final_check(0, cmd_bit::CT_CREATE, &mut ct, &mut errno)
            .unwrap();
        assert_eq!(ct.repl.l4, Some(200));
        // Without a reply family the library leaves it alone.
        let mut ct = Obj::default();
        ct.orig.l4 = Some(2);
        Proto::Unknown
            .final_check(0, cmd_bit::CT_CREATE, &mut ct, &mut errno)
            .unwrap();
        assert_eq!(ct.repl.l4, None);
    }

    #[test]
    fn tcp_without_a_state_leaves_enodata() {
        let mut ct = Obj::default();
        let mut errno = 0;
        Proto::Tcp
            .final_check(0, cmd_bit::CT_LIST, &mut ct, &mut errno)
            .unwrap();
        assert_eq!(errno, nix::libc::ENODATA);
        assert_eq!(ct.tcp_flags[0], Some((0x0a, 0x0a)));
    }

    #[test]
    fn icmp_options_set_the_reply_too() {
        let mut tmpl = Tmpl::default();
        tmpl.ct.orig.l3 = Some(2);
        let (mut flags, mut deferred) = (0, None);
        let h = Proto::Icmp;
        h.parse(c('1'), b"13", &mut tmpl, &mut flags, &mut deferred)
            .unwrap();
        h.parse(c('3'), b"77", &mut tmpl, &mut flags, &mut deferred)
            .unwrap();
        assert_eq!(tmpl.ct.repl_icmp, (14, 0, 77));
        // Before the family is known, the reply type is one the kernel refuses.
        let mut tmpl = Tmpl::default();
        h.parse(c('1'), b"8", &mut tmpl, &mut flags, &mut deferred)
            .unwrap();
        assert_eq!(tmpl.ct.repl_icmp.0, 255);
    }
}
