//! The command line of conntrack-tools 1.4.7 (`do_parse`): commands, options, the table of
//! which options each command needs or forbids, and the template they fill in.
//!
//! [`do_parse`] runs glibc's `getopt_long` over the arguments and hands each option to the
//! function of its group (commands, addresses, protocol, meta values, output, NAT, labels,
//! protocol options); [`Parser::finish`] then runs the checks 1.4.7 runs after the loop.

pub mod tables;
pub mod values;

use std::io::Write;

use conntrack_io::Connlabels;

use crate::cat;
use crate::cnum;
use crate::getopt::{GetOpt, Got, LongOpt};
use crate::model::{Adr, Bitmask, Tmpl};
use crate::proto::Proto;
use crate::sys::{System, CONNLABEL_CONF, PROTOCOLS};
pub use tables::{cmd, cmd_bit, ev, opt, out};
use tables::{COMMANDS_V_OPTIONS, EVENT_NAMES, GETOPT_STR, OPTFLAGS, ORIGINAL_OPTS, OUTPUT_NAMES};
use values::{family_of, findproto, netmask, parse_addr, split_address_and_port};

/// How a command line (or a step of a command) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    /// Exit code 2 with the "Try" line (a parameter problem), or 1.
    pub param: bool,
    /// The message after the `conntrack v1.4.7 (conntrack-tools): ` prefix (bytes: it may
    /// quote an argument).
    pub msg: Vec<u8>,
}

impl Fail {
    /// A parameter problem: exit 2.
    pub fn param(msg: impl Into<Vec<u8>>) -> Fail {
        Fail {
            param: true,
            msg: msg.into(),
        }
    }

    /// Another problem: exit 1.
    pub fn other(msg: impl Into<Vec<u8>>) -> Fail {
        Fail {
            param: false,
            msg: msg.into(),
        }
    }
}

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
    pub labelmap: Option<Connlabels>,
    /// The protocol handler of the last `-p`.
    pub handler: Option<Proto>,
    /// What the C library's `errno` holds, where 1.4.7 prints it without having set it: a
    /// request the library cannot build fails with whatever errno was left by the last
    /// failing call (a label map that could not be read, a getter of an attribute that is
    /// not set, and `perror` itself). 0 prints as `Success`.
    pub errno: i32,
    /// Whether standard error is open for reading too (a terminal usually is; a pipe or a
    /// file is not). glibc's `perror` duplicates it with `fdopen(fd, "w+")`, which fails
    /// with `EINVAL` on a descriptor open for writing only, leaving that in errno.
    pub stderr_rw: bool,
}

impl Globals {
    /// `labelmap_init`: load the map if it is not loaded, complaining (as `perror`) if it
    /// cannot be. A file without a usable line gives no map and `Success`, as in the
    /// library; a failed load is tried again by the next option that needs the map.
    pub fn labelmap_init(&mut self, sys: &mut dyn System, err: &mut dyn Write) {
        if self.labelmap.is_some() {
            return;
        }
        let errno = match sys.read(CONNLABEL_CONF) {
            Ok(text) => match Connlabels::parse(&text) {
                Some(map) => {
                    self.labelmap = Some(map);
                    return;
                }
                None => 0,
            },
            Err(e) => e.raw_os_error().unwrap_or(nix::libc::EIO),
        };
        let _ = writeln!(err, "nfct_labelmap_new: {}", cnum::strerror(errno));
        self.errno = if self.stderr_rw {
            errno
        } else {
            nix::libc::EINVAL
        };
    }

    fn get_label(&self, name: &[u8]) -> Result<u32, Fail> {
        self.labelmap
            .as_ref()
            .and_then(|m| m.bit(name))
            .ok_or_else(|| Fail::param(cat!("unknown label '", name, "'")))
    }
}

/// `generic_opt_check`: every option the row forbids is absent, every compulsory one is
/// there; `Ok(Err(partial))` when a pair of `coupled` options is incomplete.
///
/// # Errors
/// An option the row forbids, or a compulsory one missing.
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

/// Which object an address option writes to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Ct,
    Exp,
    Mask,
}

/// The option bit of an option character.
fn opt_type(c: u8) -> u32 {
    match c {
        b's' => opt::ORIG_SRC,
        b'd' => opt::ORIG_DST,
        b'r' => opt::REPL_SRC,
        b'q' => opt::REPL_DST,
        b'{' => opt::MASK_SRC,
        b'}' => opt::MASK_DST,
        b'[' => opt::EXP_SRC,
        b']' => opt::EXP_DST,
        b'n' => opt::SRC_NAT,
        b'g' => opt::DST_NAT,
        b'm' => opt::MARK,
        b'c' => opt::SECMARK,
        b'i' => opt::ID,
        b'j' => opt::ANY_NAT,
        b'w' => opt::ZONE,
        b'l' => opt::LABEL,
        b'<' => opt::ADD_LABEL,
        b'>' => opt::DEL_LABEL,
        b'(' => opt::ORIG_ZONE,
        b')' => opt::REPL_ZONE,
        _ => 0,
    }
}

/// The netmask option of an address option.
fn mask_opt(c: u8) -> Option<u8> {
    match c {
        b's' | b'[' => Some(b'{'),
        b'd' | b']' => Some(b'}'),
        _ => None,
    }
}

/// The first long option of the tool with this value (`get_long_opt`).
fn long_name(c: u8) -> &'static str {
    ORIGINAL_OPTS
        .iter()
        .find(|o| o.val == i32::from(c))
        .map_or("unknown", |o| o.name)
}

fn set_family(family: &mut u8, new: u8) -> Result<(), Fail> {
    if *family == 0 {
        *family = new;
    } else if *family != new {
        return Err(Fail::param("mismatched address family"));
    }
    Ok(())
}

/// `nfct_set_addr_opt`: the option's bit, its address attribute, its layer-3 attribute.
fn set_addr_opt(c: u8, tmpl: &mut Tmpl, which: Which, a: std::net::IpAddr, options: &mut u32) {
    *options |= opt_type(c);
    let l3 = family_of(a);
    let obj = match which {
        Which::Ct => &mut tmpl.ct,
        Which::Exp => &mut tmpl.exptuple,
        Which::Mask => &mut tmpl.mask,
    };
    match c {
        b's' | b'{' | b'[' => {
            obj.orig.src = Some(Adr::Ip(a));
            obj.orig.l3 = Some(l3);
        }
        b'd' | b'}' | b']' => {
            obj.orig.dst = Some(Adr::Ip(a));
            obj.orig.l3 = Some(l3);
        }
        b'r' => {
            obj.repl.src = Some(Adr::Ip(a));
            obj.repl.l3 = Some(l3);
        }
        b'q' => {
            obj.repl.dst = Some(Adr::Ip(a));
            obj.repl.l3 = Some(l3);
        }
        b'n' => {
            obj.snat = Some(a);
            obj.orig.l3 = Some(l3);
        }
        b'g' => {
            obj.dnat = Some(a);
            obj.orig.l3 = Some(l3);
        }
        // `--any-nat` has no entry in the tool's tables: it writes over the original
        // source address.
        _ => obj.orig.src = Some(Adr::Garbage),
    }
}

/// A table name given to a command (`check_type`), as a unique prefix.
fn check_type(go: &mut GetOpt, attached: Option<Vec<u8>>) -> Result<Table, Fail> {
    let Some(t) = go.optional_arg(attached) else {
        return Ok(Table::Conntrack);
    };
    let is = |name: &str| crate::text::starts_with(name.as_bytes(), &t);
    if is("expect") {
        Ok(Table::Expect)
    } else if is("conntrack") {
        Ok(Table::Conntrack)
    } else if is("dying") {
        Ok(Table::Dying)
    } else if is("unconfirmed") {
        Ok(Table::Unconfirmed)
    } else {
        Err(Fail::param(cat!("unknown type `", t, "'")))
    }
}

/// The state of one `do_parse`: the template and the bookkeeping of the options seen.
pub struct Parser<'a> {
    g: &'a mut Globals,
    sys: &'a mut dyn System,
    err: &'a mut dyn Write,
    tmpl: Tmpl,
    table: Table,
    event_mask: u32,
    l4flags: u32,
    status: u32,
    status_mask: u32,
    protonum: u8,
    family: u8,
    buffer_size: i64,
    command: u32,
    options: u32,
    /// Our checks of values 1.4.7 takes silently: reported after the tool's own checks.
    deferred: Option<Fail>,
    longopts: Vec<LongOpt>,
    offset: i32,
}

/// `do_parse`: one command line (the program name first) into a command. `sys` gives the
/// files the tool reads while parsing (the label map, `/etc/protocols`) and the
/// environment; warnings go to `err`.
///
/// # Errors
/// The failure to report, as the tool would.
pub fn do_parse(
    argv: Vec<Vec<u8>>,
    g: &mut Globals,
    sys: &mut dyn System,
    err: &mut dyn Write,
) -> Result<Cmd, Fail> {
    let mut go = GetOpt::new(argv, !sys.posixly_correct());
    let mut p = Parser {
        g,
        sys,
        err,
        tmpl: Tmpl::default(),
        table: Table::Conntrack,
        event_mask: 0,
        l4flags: 0,
        status: 0,
        status_mask: 0,
        protonum: 0,
        family: 0,
        buffer_size: 0,
        command: 0,
        options: 0,
        deferred: None,
        longopts: ORIGINAL_OPTS.to_vec(),
        offset: 0,
    };
    while let Some(got) = go.next(GETOPT_STR, &p.longopts) {
        match got {
            Got::Opt(c, arg) => p.option(&mut go, c, arg)?,
            Got::MissingArg => {
                return Err(Fail::param(cat!(
                    "option `",
                    go.prev(),
                    "' requires an argument"
                )))
            }
            Got::Unknown => return Err(Fail::param(cat!("unknown option `", go.prev(), "'"))),
        }
    }
    p.finish()
}

impl Parser<'_> {
    /// One option, handed to the function of its group.
    fn option(&mut self, go: &mut GetOpt, c: i32, arg: Option<Vec<u8>>) -> Result<(), Fail> {
        let Some(ch) = u8::try_from(c).ok() else {
            return self.proto_option(c, arg);
        };
        match ch {
            b'L' | b'I' | b'D' | b'G' | b'F' | b'E' | b'V' | b'h' | b'C' | b'S' | b'U' | b'A' => {
                self.command(ch, go, arg)
            }
            b's' | b'd' | b'r' | b'q' | b'[' | b']' | b'{' | b'}' => {
                let a = arg.unwrap_or_default();
                let which = match ch {
                    b'[' | b']' => Which::Exp,
                    b'{' | b'}' => Which::Mask,
                    _ => Which::Ct,
                };
                self.address(ch, &a, which, which != Which::Mask).map(drop)
            }
            b'p' => self.protocol(&arg.unwrap_or_default()),
            b't' | b'u' | b'm' | b'c' | b'i' | b'w' | b'(' | b')' => self.meta(ch, arg),
            b'e' | b'o' | b'z' | b'a' | b'f' | b'b' => self.output(ch, &arg.unwrap_or_default()),
            b'n' | b'g' | b'j' => self.nat(ch, go, arg),
            b'l' | b'<' | b'>' => self.label(ch, go, arg),
            _ => self.proto_option(c, arg),
        }
    }

    /// The commands, with their optional table.
    fn command(&mut self, ch: u8, go: &mut GetOpt, arg: Option<Vec<u8>>) -> Result<(), Fail> {
        self.table = check_type(go, arg)?;
        let exp = self.table == Table::Expect;
        let new = match (ch, exp) {
            (b'L', false) => cmd::CT_LIST,
            (b'L', true) => cmd::EXP_LIST,
            _ if matches!(self.table, Table::Dying | Table::Unconfirmed) => {
                return Err(Fail::param(
                    "Can't do that command with tables `dying' and `unconfirmed'",
                ))
            }
            (b'I', false) => cmd::CT_CREATE,
            (b'I', true) => cmd::EXP_CREATE,
            (b'D', false) => cmd::CT_DELETE,
            (b'D', true) => cmd::EXP_DELETE,
            (b'G', false) => cmd::CT_GET,
            (b'G', true) => cmd::EXP_GET,
            (b'F', false) => cmd::CT_FLUSH,
            (b'F', true) => cmd::EXP_FLUSH,
            (b'E', false) => cmd::CT_EVENT,
            (b'E', true) => cmd::EXP_EVENT,
            (b'V', _) => cmd::CT_VERSION,
            (b'h', _) => cmd::CT_HELP,
            (b'C', false) => cmd::CT_COUNT,
            (b'C', true) => cmd::EXP_COUNT,
            (b'S', false) => cmd::CT_STATS,
            (b'S', true) => cmd::EXP_STATS,
            (b'U', false) => cmd::CT_UPDATE,
            (b'A', false) => cmd::CT_ADD,
            _ => {
                return Err(Fail::param(format!(
                    "Can't do --{} on {}",
                    long_name(ch),
                    if exp { "expectations" } else { "conntrack" }
                )))
            }
        };
        if self.command != 0 {
            return Err(Fail::param("Invalid commands combination"));
        }
        self.command = new;
        Ok(())
    }

    /// `nfct_parse_addr_from_opt`: an address option (with its netmask, if `with_mask`).
    fn address(
        &mut self,
        c: u8,
        arg: &[u8],
        which: Which,
        with_mask: bool,
    ) -> Result<std::net::IpAddr, Fail> {
        let (addr, mask) = parse_addr(arg);
        let Some(addr) = addr else {
            return Err(Fail::param(cat!("Invalid IP address `", arg, "'")));
        };
        set_family(&mut self.family, family_of(addr))?;
        let maskopt = mask_opt(c);
        if mask != -1 && maskopt.is_none() {
            return Err(Fail::param(format!(
                "CIDR notation unavailable for `--{}'",
                long_name(c)
            )));
        } else if mask == -2 {
            return Err(Fail::param("Invalid netmask"));
        }
        set_addr_opt(c, &mut self.tmpl, which, addr, &mut self.options);
        let Some(maskopt) = maskopt.filter(|_| mask != -1 && with_mask) else {
            return Ok(addr);
        };
        let v6 = addr.is_ipv6();
        if mask == if v6 { 128 } else { 32 } {
            return Ok(addr);
        }
        let m = netmask(v6, mask);
        set_addr_opt(maskopt, &mut self.tmpl, Which::Mask, m, &mut self.options);
        Ok(addr)
    }

    /// `-p`: the protocol, its handler, and the handler's options from now on.
    fn protocol(&mut self, arg: &[u8]) -> Result<(), Fail> {
        self.options |= opt::PROTO;
        let protocols = values::protocols(&self.sys.read(PROTOCOLS).unwrap_or_default());
        let (h, n) = findproto(arg, &protocols)
            .ok_or_else(|| Fail::param(cat!("`", arg, "' unsupported protocol")))?;
        self.g.handler = Some(h);
        self.protonum = n;
        self.offset += 256;
        let offset = self.offset;
        self.longopts
            .extend(h.opts().iter().map(|(name, has_arg, code)| LongOpt {
                name,
                has_arg: *has_arg,
                val: offset + code,
            }));
        self.tmpl.ct.orig.l4 = Some(n);
        Ok(())
    }

    /// A zone, read as 1.4.7 does (`strtoul`, truncated to 16 bits); a value that is not a
    /// whole number from 0 to 65535 is refused once the tool's own checks have passed.
    fn zone(&mut self, arg: &[u8], name: &str) -> u16 {
        let ok = crate::proto::strict_u64(arg, true).is_some_and(|v| v <= 0xffff);
        if !ok && self.deferred.is_none() {
            self.deferred = Some(Fail::param(cat!(
                "Invalid value `",
                arg,
                "' for `--",
                name,
                "' (0 to 65535)"
            )));
        }
        cnum::strtoull(arg, 0).0 as u16
    }

    /// The meta values: timeout, status, mark, secmark, id, zones.
    fn meta(&mut self, ch: u8, arg: Option<Vec<u8>>) -> Result<(), Fail> {
        self.options |= match ch {
            b't' => opt::TIMEOUT,
            b'u' => opt::STATUS,
            other => opt_type(other),
        };
        if ch == b'i' && arg.is_none() {
            // conntrack 1.4.7 crashes on `--id` without a value.
            return Err(Fail::param("option `--id' requires an argument"));
        }
        let a = arg.unwrap_or_default();
        let t = &mut self.tmpl;
        match ch {
            b't' => {
                let v = cnum::atol(&a) as u32;
                t.ct.timeout = Some(v);
                t.exp_timeout = Some(v);
            }
            b'u' => {
                values::parse_status(&a, &mut self.status, &mut self.status_mask, self.err)?;
                t.ct.status = Some(self.status);
                if self.status_mask == 0 {
                    self.status_mask = self.status;
                }
                // 1.4.7 stores the status in the mark's value too (fixed in 1.4.8).
                t.mark.0 = self.status;
                t.filter_status_kernel = Some((self.status, self.status_mask));
            }
            b'm' => {
                let (v, used) = cnum::strtoull(&a, 0);
                let m = match a.get(used..).and_then(|r| r.strip_prefix(b"/")) {
                    Some(m) => cnum::strtoull(m, 0).0 as u32,
                    None => u32::MAX,
                };
                t.mark = (v as u32, m);
                t.filter_mark_kernel = Some(t.mark);
            }
            b'c' => t.ct.secmark = Some(cnum::strtoul_u32(&a)),
            b'i' => t.ct.id = Some(cnum::strtoul_u32(&a)),
            b'w' => self.tmpl.ct.zone = Some(self.zone(&a, "zone")),
            b'(' => self.tmpl.ct.orig.zone = Some(self.zone(&a, "orig-zone")),
            _ => self.tmpl.ct.repl.zone = Some(self.zone(&a, "reply-zone")),
        }
        Ok(())
    }

    /// The options about what is shown and how: event mask, output, zero, buffer size,
    /// family, and the deprecated `-a`.
    fn output(&mut self, ch: u8, a: &[u8]) -> Result<(), Fail> {
        match ch {
            b'e' => {
                self.options |= opt::EVENT_MASK;
                values::parse_parameter(a, &mut self.event_mask, EVENT_NAMES, self.err)?;
            }
            b'o' => {
                self.options |= opt::OUTPUT;
                values::parse_parameter(a, &mut self.g.output_mask, OUTPUT_NAMES, self.err)?;
                if self.g.output_mask & out::CL != 0 {
                    self.g.labelmap_init(self.sys, self.err);
                }
                let others = out::EXT | out::TMS | out::ID | out::KTMS | out::CL | out::XML;
                if self.g.output_mask & out::SAVE != 0 && self.g.output_mask & others != 0 {
                    return Err(Fail::other(
                        "cannot combine save output with any other output type, use -o save only",
                    ));
                }
            }
            b'z' => self.options |= opt::ZERO,
            b'a' => {
                let _ = writeln!(self.err, "WARNING: ignoring -a, deprecated option.");
            }
            b'f' => {
                self.options |= opt::FAMILY;
                if crate::text::starts_with(a, b"ipv4") {
                    set_family(&mut self.family, 2)?;
                } else if crate::text::starts_with(a, b"ipv6") {
                    set_family(&mut self.family, 10)?;
                } else {
                    return Err(Fail::param(cat!("`", a, "' unsupported protocol")));
                }
            }
            _ => {
                self.buffer_size = cnum::atol(a);
                self.options |= opt::BUFFERSIZE;
            }
        }
        Ok(())
    }

    /// `-n`, `-g`, `-j`: the NAT filters, with an optional address and port.
    fn nat(&mut self, ch: u8, go: &mut GetOpt, arg: Option<Vec<u8>>) -> Result<(), Fail> {
        self.options |= opt_type(ch);
        let Some(nat) = go.optional_arg(arg) else {
            return Ok(());
        };
        let (address, port) = split_address_and_port(&nat)?;
        let ad = self.address(ch, &address, Which::Ct, false)?;
        let port = port.map(|p| cnum::atoi(&p) as u16);
        let ct = &mut self.tmpl.ct;
        if ch != b'n' {
            ct.dnat = Some(ad);
            if port.is_some() {
                ct.dnat_port = port;
            }
        }
        if ch != b'g' {
            ct.snat = Some(ad);
            if port.is_some() {
                ct.snat_port = port;
            }
        }
        Ok(())
    }

    /// `-l`, `--label-add`, `--label-del`: label names into bitmasks.
    fn label(&mut self, ch: u8, go: &mut GetOpt, arg: Option<Vec<u8>>) -> Result<(), Fail> {
        self.options |= opt_type(ch);
        self.g.labelmap_init(self.sys, self.err);
        if self.options & (opt::DEL_LABEL | opt::ADD_LABEL) == opt::DEL_LABEL | opt::ADD_LABEL {
            return Err(Fail::other(
                "cannot use --label-add and --label-del at the same time",
            ));
        }
        let names = if ch == b'>' {
            match go.optional_arg(arg) {
                Some(n) => n,
                None => return Ok(()),
            }
        } else {
            arg.unwrap_or_default()
        };
        let mut max = 0;
        for n in names.split(|&b| b == b',') {
            max = max.max(self.g.get_label(n)?);
        }
        let mut b = Bitmask::new(max);
        for n in names.split(|&b| b == b',') {
            b.set(self.g.get_label(n)?);
        }
        let current = if ch == b'l' {
            &mut self.tmpl.label
        } else {
            &mut self.tmpl.label_modify
        };
        *current = Some(match current.take() {
            None => b,
            Some(cur) => cur.merged(b),
        });
        Ok(())
    }

    /// An option of the protocol handler (its codes are offset past the tool's own).
    fn proto_option(&mut self, c: i32, arg: Option<Vec<u8>>) -> Result<(), Fail> {
        if let Some(h) = self.g.handler {
            let a = arg.unwrap_or_default();
            h.parse(
                c & 0xff,
                &a,
                &mut self.tmpl,
                &mut self.l4flags,
                &mut self.deferred,
            )?;
        }
        Ok(())
    }

    /// The checks after the options: the default family, `--any-nat` with the others, the
    /// table of options per command, the handler's check, and our deferred checks.
    ///
    /// # Errors
    /// The first check that fails.
    pub fn finish(mut self) -> Result<Cmd, Fail> {
        let default_family = !matches!(
            self.command,
            cmd::CT_LIST
                | cmd::CT_UPDATE
                | cmd::CT_DELETE
                | cmd::CT_GET
                | cmd::CT_FLUSH
                | cmd::CT_EVENT
        );
        if self.family == 0 && default_family {
            self.family = 2;
        }
        if self.options & opt::ANY_NAT != 0 && self.options & (opt::SRC_NAT | opt::DST_NAT) != 0 {
            return Err(Fail::param(
                "cannot specify `--src-nat' or `--dst-nat' with `--any-nat'",
            ));
        }
        let cmd = if self.command == 0 {
            cmd_bit::NONE
        } else {
            self.command.trailing_zeros() as usize
        };
        let row = COMMANDS_V_OPTIONS.get(cmd).map_or(&[][..], |r| &r[..]);
        let coupled = Some([opt::ORIG, opt::REPL]);
        if let Err(partial) = generic_opt_check(self.options, 29, row, &OPTFLAGS, coupled)? {
            return Err(Fail::param(if partial == 1 {
                "you have to specify `--reply-src' and `--reply-dst'"
            } else {
                "you have to specify `--src' and `--dst'"
            }));
        }
        if self.command & cmd::CT_HELP == 0 {
            if let Some(h) = self.g.handler {
                h.final_check(self.l4flags, cmd, &mut self.tmpl.ct, &mut self.g.errno)?;
            }
        }
        if let Some(f) = self.deferred {
            return Err(f);
        }
        Ok(Cmd {
            command: self.command,
            options: self.options,
            family: self.family,
            table: self.table,
            protonum: self.protonum,
            event_mask: self.event_mask,
            buffer_size: self.buffer_size,
            tmpl: self.tmpl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Files;

    fn parse(line: &str) -> Result<Cmd, Fail> {
        let mut argv = vec![b"conntrack".to_vec()];
        argv.extend(line.split_whitespace().map(|w| w.as_bytes().to_vec()));
        let mut files = Files::default();
        files.add(CONNLABEL_CONF, b"0 zero\n5 five\n64 big\n");
        do_parse(argv, &mut Globals::default(), &mut files, &mut Vec::new())
    }

    fn msg(line: &str) -> String {
        String::from_utf8(parse(line).unwrap_err().msg).unwrap()
    }

    #[test]
    fn commands_and_tables() {
        let c = parse("-L expect").unwrap();
        assert_eq!((c.command, c.table), (cmd::EXP_LIST, Table::Expect));
        let c = parse("-L dy").unwrap();
        assert_eq!((c.command, c.table), (cmd::CT_LIST, Table::Dying));
        assert_eq!(msg("-L -D"), "Invalid commands combination");
        assert_eq!(
            msg("-D dying"),
            "Can't do that command with tables `dying' and `unconfirmed'"
        );
        assert_eq!(msg("-U expect"), "Can't do --update on expectations");
        assert_eq!(msg("-L foo"), "unknown type `foo'");
    }

    #[test]
    fn the_option_table_is_checked_after_the_loop() {
        assert_eq!(
            msg("-L -t 5"),
            "Illegal option `--timeout' with this command"
        );
        assert_eq!(
            msg("-I -s 1.1.1.1 -d 2.2.2.2 -p tcp"),
            "You need to supply the `--timeout' option for this command"
        );
        assert_eq!(
            msg("-I -s 1.1.1.1 -t 5 -p udp"),
            "you have to specify `--src' and `--dst'"
        );
        let e = parse("-L -s 1.1.1.1 -f ipv6").unwrap_err();
        assert!(e.param);
        assert_eq!(e.msg, b"mismatched address family");
    }

    #[test]
    fn addresses_netmasks_and_families() {
        let c = parse("-L -s 10.0.0.0/8").unwrap();
        assert_eq!(c.family, 2);
        assert_eq!(c.options & opt::MASK_SRC, opt::MASK_SRC);
        assert_eq!(
            c.tmpl.mask.orig.src,
            Some(Adr::Ip("255.0.0.0".parse().unwrap()))
        );
        assert_eq!(
            msg("-L -r 1.2.3.4/24"),
            "CIDR notation unavailable for `--reply-src'"
        );
        assert_eq!(msg("-L -s 1.2.3.4/33"), "Invalid netmask");
        assert_eq!(
            parse("-I -s 1.1.1.1 -d 2.2.2.2 -p 200 -t 1")
                .unwrap()
                .family,
            2
        );
        assert_eq!(parse("-L").unwrap().family, 0);
    }

    #[test]
    fn values_are_read_as_c_reads_them() {
        let c = parse("-L -m 0x100/0xf00 -u ASSURED,!SEEN_REPLY").unwrap();
        assert_eq!(
            c.tmpl.mark,
            (4, 0xf00),
            "-u overwrites the mark's value (1.4.7)"
        );
        assert_eq!(c.tmpl.filter_mark_kernel, Some((0x100, 0xf00)));
        assert_eq!(c.tmpl.filter_status_kernel, Some((4, 2)));
        let c = parse("-L -w 0x10 --orig-zone 7").unwrap();
        assert_eq!((c.tmpl.ct.zone, c.tmpl.ct.orig.zone), (Some(16), Some(7)));
        assert_eq!(
            msg("-L -w 70000"),
            "Invalid value `70000' for `--zone' (0 to 65535)"
        );
        assert_eq!(msg("-D --id"), "option `--id' requires an argument");
    }

    #[test]
    fn labels_by_name() {
        let c = parse("-L -l zero -l five,big").unwrap();
        let l = c.tmpl.label.unwrap();
        assert!(l.test(0) && l.test(5) && l.test(64) && !l.test(1));
        assert_eq!(msg("-L -l nosuch"), "unknown label 'nosuch'");
        assert_eq!(
            msg("-U --label-add zero --label-del five"),
            "cannot use --label-add and --label-del at the same time"
        );
    }

    #[test]
    fn arguments_are_echoed_as_bytes() {
        let mut argv = vec![b"conntrack".to_vec(), b"-L".to_vec(), b"-s".to_vec()];
        argv.push(b"\xff\xfe".to_vec());
        let e = do_parse(
            argv,
            &mut Globals::default(),
            &mut Files::default(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(e.msg, b"Invalid IP address `\xff\xfe'");
    }
}
