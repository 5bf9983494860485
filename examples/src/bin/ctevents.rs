//! `ctevents`: prints conntrack events as `conntrack -E -o extended,id` prints them (or
//! expectation events as `conntrack -E expect` does), optionally filtered in the kernel by a
//! classic-BPF program, and reports lost events on stderr with their exact count.
//!
//! Run `ctevents --help` for the command line. It needs `CAP_NET_ADMIN`; run it inside a
//! namespace with `ip netns exec NAME ctevents`. The event loop (signals, the requesting
//! program's name, the clock of each line) is the one of `conntrack -E`
//! (`conntrack_cli::events`); this program is its command line and its lines.

use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;

use conntrack_cli::events::{
    run_loop, write_ct_line, write_exp_line, CtItem, Handler, Next, Settings,
};
use conntrack_cli::out::Term;
use conntrack_cli::parse::Fail;
use conntrack_codec::ct::{l4proto, ConntrackRepr};
use conntrack_codec::filter::bpf::{
    ByteSet, EventFilter, Ipv4Match, Ipv6Match, Logic, MarkMatch, MatchSet,
};
use conntrack_codec::fmt::{l4_name, sctp_state_name, tcp_state_name, Output};
use conntrack_io::{compile_filter, Connlabels, Error, Events, ExpEvent, Groups, Lost, Socket};

const USAGE: &str = "\
Usage: ctevents [TABLE] [OPTIONS]

Prints conntrack events as `conntrack -E -o extended,id` prints them, one line each, flushed
line by line. Events caused by a netlink request end in ` [USERSPACE] portid=N` and, when the
requesting process is found in /proc, ` progname=NAME`. Lost events are reported on stderr,
one line with the count and the running total, and the stream goes on: resynchronise with a
dump (`conntrack -L`). SIGINT or SIGTERM end it with a summary on stderr and exit status 0.

TABLE:
  conntrack             conntrack events (the default)
  expect                expectation events, as `conntrack -E expect` prints them

Options:
  -e, --event-mask LIST   NEW, UPDATES, DESTROY or ALL, comma-separated (default ALL)
  -o, --output LIST       extended, id, timestamp, ktimestamp, labels, userspace,
                          comma-separated (default extended,id; labels names the labels from
                          /etc/xtables/connlabel.conf; userspace does nothing, the suffix is
                          always on)
  -b, --buffer-size BYTES receive queue size, 1 to 2147483647 (SO_RCVBUFFORCE, else
                          SO_RCVBUF; the kernel caps it)
      --reliable          NETLINK_BROADCAST_ERROR + NETLINK_NO_ENOBUFS, as conntrackd does
  -h, --help              this text

Filters (conntrack events only; compiled into a BPF program the kernel runs, so unwanted
events are never queued). Each option may be repeated to add to its set; an event must match
every set given. Precede an option with `!` to keep matching events out instead
(`! -s 10.0.0.0/8`); one set cannot mix both forms.
  -p, --proto PROTO       layer-4 protocol: tcp, udp, udplite, icmp, icmpv6, sctp, gre, dccp
                          or a number
  -s, --src ADDR[/LEN]    original source address (IPv4 or IPv6) or network
  -d, --dst ADDR[/LEN]    original destination address or network
  -m, --mark MARK[/MASK]  mark, decimal or 0x hex, with an optional mask
  -w, --zone ZONE         conntrack zone
      --state LIST        TCP states (SCTP states with -p sctp), comma-separated:
                          SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK,
                          TIME_WAIT, CLOSE, SYN_SENT2 / CLOSED, COOKIE_WAIT, COOKIE_ECHOED,
                          ESTABLISHED, SHUTDOWN_SENT, SHUTDOWN_RECD, SHUTDOWN_ACK_SENT,
                          HEARTBEAT_SENT
A set of IPv4 networks does not keep IPv6 events out (and the other way round), and an event
without the attribute a set reads passes that set (an update without protocol state passes
--state). Bad parameters give a one-line message and exit status 2.
";

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Table {
    Conntrack,
    Expect,
}

/// The command line.
struct Args {
    table: Table,
    groups: Groups,
    extended: bool,
    id: bool,
    timestamp: bool,
    ktimestamp: bool,
    labels: bool,
    buffer: Option<usize>,
    reliable: bool,
    filter: Box<EventFilter>,
}

enum Parsed {
    Help,
    Run(Args),
}

/// The sets given on the command line, and whether each was negated.
#[derive(Default)]
struct Logics {
    seen: Vec<(&'static str, Logic)>,
}

impl Logics {
    /// Records the logic of one option of set `set`; one set cannot mix both.
    fn set(&mut self, set: &'static str, logic: Logic) -> Result<(), String> {
        match self.seen.iter().find(|(s, _)| *s == set) {
            Some((_, l)) if *l != logic => Err(format!(
                "bad parameter: `{set}' is given both with and without `!'"
            )),
            Some(_) => Ok(()),
            None => {
                self.seen.push((set, logic));
                Ok(())
            }
        }
    }
}

fn bad(value: &str, why: &str) -> String {
    format!("bad parameter `{value}': {why}")
}

/// Whether `word` is a case-insensitive prefix of `name` (conntrack's list matching).
fn abbrev(word: &str, name: &str) -> bool {
    !word.is_empty()
        && word.len() <= name.len()
        && name.as_bytes()[..word.len()].eq_ignore_ascii_case(word.as_bytes())
}

fn number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn proto(s: &str) -> Result<u8, String> {
    const NAMED: [u8; 8] = [
        l4proto::TCP,
        l4proto::UDP,
        l4proto::UDPLITE,
        l4proto::ICMP,
        l4proto::ICMPV6,
        l4proto::SCTP,
        l4proto::GRE,
        l4proto::DCCP,
    ];
    if let Some(p) = NAMED.iter().find(|&&p| l4_name(p).eq_ignore_ascii_case(s)) {
        return Ok(*p);
    }
    s.parse::<u8>()
        .map_err(|_| bad(s, "not a protocol name or a number from 0 to 255"))
}

/// `ADDR[/LEN]` into the IPv4 or IPv6 set.
fn network(
    s: &str,
    v4: &mut MatchSet<Ipv4Match, 64>,
    v6: &mut MatchSet<Ipv6Match, 64>,
    logic: Logic,
) -> Result<&'static str, String> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (
            a,
            Some(l.parse::<u8>().map_err(|_| bad(s, "bad prefix length"))?),
        ),
        None => (s, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad(s, "not an address"))?;
    let full = |_| bad(s, "too many networks");
    match addr {
        IpAddr::V4(a) => {
            let m = Ipv4Match::prefix(a, len.unwrap_or(32))
                .map_err(|_| bad(s, "prefix length over 32"))?;
            v4.logic = logic;
            v4.push(m).map_err(full)?;
            Ok("ipv4")
        }
        IpAddr::V6(a) => {
            let m = Ipv6Match::prefix(a, len.unwrap_or(128))
                .map_err(|_| bad(s, "prefix length over 128"))?;
            v6.logic = logic;
            v6.push(m).map_err(full)?;
            Ok("ipv6")
        }
    }
}

fn states(list: &str, sctp: bool, set: &mut ByteSet) -> Result<(), String> {
    for word in list.split(',') {
        let name = |s: u8| {
            if sctp {
                sctp_state_name(s)
            } else {
                tcp_state_name(s)
            }
        };
        // 0 is NONE, not a state a connection is in.
        let state = (1..=9u8)
            .find(|&s| name(s).eq_ignore_ascii_case(word))
            .ok_or_else(|| {
                bad(
                    word,
                    if sctp {
                        "not an SCTP state"
                    } else {
                        "not a TCP state"
                    },
                )
            })?;
        set.insert(state);
    }
    Ok(())
}

/// What the options read so far add up to, before the checks at the end.
struct Parser {
    args: Args,
    mask: Option<String>,
    state_lists: Vec<(String, Logic)>,
    protos: Vec<u8>,
    logics: Logics,
}

/// The filter options, which `!` may negate.
const FILTER_OPTIONS: &[&str] = &[
    "-p", "--proto", "-s", "--src", "-d", "--dst", "-m", "--mark", "-w", "--zone", "--state",
];

impl Parser {
    /// `-o`: the output flags (the default `extended,id` is replaced).
    fn output(&mut self, list: &str) -> Result<(), String> {
        let a = &mut self.args;
        a.extended = false;
        a.id = false;
        for word in list.split(',') {
            if abbrev(word, "extended") {
                a.extended = true;
            } else if abbrev(word, "timestamp") {
                a.timestamp = true;
            } else if abbrev(word, "id") {
                a.id = true;
            } else if abbrev(word, "ktimestamp") {
                a.ktimestamp = true;
            } else if abbrev(word, "labels") {
                a.labels = true;
            } else if !abbrev(word, "userspace") {
                return Err(bad(word, "not an output option of ctevents"));
            }
        }
        Ok(())
    }

    /// `-b`: a size the kernel's `int` can hold.
    fn buffer(&mut self, v: &str) -> Result<(), String> {
        let n = number(v)
            .filter(|&n| n > 0 && i32::try_from(n).is_ok())
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| bad(v, "not a size from 1 to 2147483647 bytes"))?;
        self.args.buffer = Some(n);
        Ok(())
    }

    /// `-s` or `-d` into the IPv4 or IPv6 set of that side.
    fn address(&mut self, src: bool, v: &str, logic: Logic) -> Result<(), String> {
        let f = &mut *self.args.filter;
        let (v4, v6) = if src {
            (&mut f.ipv4_src, &mut f.ipv6_src)
        } else {
            (&mut f.ipv4_dst, &mut f.ipv6_dst)
        };
        let family = network(v, v4, v6, logic)?;
        let set = match (src, family) {
            (true, "ipv4") => "-s (IPv4)",
            (true, _) => "-s (IPv6)",
            (false, "ipv4") => "-d (IPv4)",
            (false, _) => "-d (IPv6)",
        };
        self.logics.set(set, logic)
    }

    /// `-m`: a mark, with an optional mask.
    fn mark(&mut self, v: &str, logic: Logic) -> Result<(), String> {
        let parse = |s: &str| {
            number(s)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad(v, "not a 32-bit number"))
        };
        let m = match v.split_once('/') {
            Some((m, mask)) => MarkMatch::masked(parse(m)?, parse(mask)?),
            None => MarkMatch::exact(parse(v)?),
        };
        self.logics.set("-m", logic)?;
        let set = &mut self.args.filter.mark;
        set.logic = logic;
        set.push(m).map_err(|_| bad(v, "too many marks"))
    }

    /// `-w`: a zone.
    fn zone(&mut self, v: &str, logic: Logic) -> Result<(), String> {
        let z = number(v)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| bad(v, "not a zone from 0 to 65535"))?;
        self.logics.set("-w", logic)?;
        let set = &mut self.args.filter.zone;
        set.logic = logic;
        set.push(z).map_err(|_| bad(v, "too many zones"))
    }

    /// A filter option and its value.
    fn filter(&mut self, opt: &str, v: String, logic: Logic) -> Result<(), String> {
        match opt {
            "-p" | "--proto" => {
                let p = proto(&v)?;
                self.logics.set("-p", logic)?;
                self.args.filter.l4proto.logic = logic;
                self.args.filter.l4proto.insert(p);
                self.protos.push(p);
                Ok(())
            }
            "-s" | "--src" => self.address(true, &v, logic),
            "-d" | "--dst" => self.address(false, &v, logic),
            "-m" | "--mark" => self.mark(&v, logic),
            "-w" | "--zone" => self.zone(&v, logic),
            _ => {
                self.state_lists.push((v, logic));
                Ok(())
            }
        }
    }

    /// The checks and the sets that need every option: states (TCP, or SCTP when the
    /// protocol set is SCTP alone), filters only on conntrack events, the event groups.
    fn finish(mut self) -> Result<Args, String> {
        let sctp = !self.protos.is_empty() && self.protos.iter().all(|&p| p == l4proto::SCTP);
        for (list, logic) in std::mem::take(&mut self.state_lists) {
            let set = if sctp {
                &mut self.args.filter.sctp_state
            } else {
                &mut self.args.filter.tcp_state
            };
            self.logics.set("--state", logic)?;
            set.logic = logic;
            states(&list, sctp, set)?;
        }
        let a = &mut self.args;
        if a.table == Table::Expect && !a.filter.is_empty() {
            return Err("bad parameter: filters apply to conntrack events only".into());
        }
        a.groups = groups(a.table, self.mask.as_deref())?;
        Ok(self.args)
    }
}

/// The event groups of `-e LIST` (all of them without it).
fn groups(table: Table, mask: Option<&str>) -> Result<Groups, String> {
    let (new, update, destroy) = match table {
        Table::Conntrack => (
            Groups::CONNTRACK_NEW,
            Groups::CONNTRACK_UPDATE,
            Groups::CONNTRACK_DESTROY,
        ),
        Table::Expect => (Groups::EXP_NEW, Groups::EXP_UPDATE, Groups::EXP_DESTROY),
    };
    let Some(list) = mask else {
        return Ok(new | update | destroy);
    };
    let mut groups = Groups::NONE;
    for word in list.split(',') {
        groups |= if abbrev(word, "ALL") {
            new | update | destroy
        } else if abbrev(word, "NEW") {
            new
        } else if abbrev(word, "UPDATES") {
            update
        } else if abbrev(word, "DESTROY") {
            destroy
        } else {
            return Err(bad(word, "not NEW, UPDATES, DESTROY or ALL"));
        };
    }
    Ok(groups)
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut p = Parser {
        args: Args {
            table: Table::Conntrack,
            groups: Groups::NONE,
            extended: true,
            id: true,
            timestamp: false,
            ktimestamp: false,
            labels: false,
            buffer: None,
            reliable: false,
            filter: Box::default(),
        },
        mask: None,
        state_lists: Vec::new(),
        protos: Vec::new(),
        logics: Logics::default(),
    };
    let mut negate = false;
    let mut first = true;
    while let Some(arg) = it.next() {
        let is_first = std::mem::replace(&mut first, false);
        if arg == "!" {
            if std::mem::replace(&mut negate, true) {
                return Err("bad parameter `!': given twice".into());
            }
            continue;
        }
        let logic = if std::mem::take(&mut negate) {
            Logic::Negative
        } else {
            Logic::Positive
        };
        let (opt, inline) = match arg.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let is_filter = FILTER_OPTIONS.contains(&opt.as_str());
        if logic == Logic::Negative && !is_filter {
            return Err(format!(
                "bad parameter `{arg}': `!' goes before a filter option"
            ));
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("option `{opt}' needs a value"))
        };
        match opt.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "conntrack" if is_first => p.args.table = Table::Conntrack,
            "expect" if is_first => p.args.table = Table::Expect,
            "-e" | "--event-mask" => p.mask = Some(value()?),
            "-o" | "--output" => p.output(&value()?)?,
            "-b" | "--buffer-size" => p.buffer(&value()?)?,
            "--reliable" => p.args.reliable = true,
            _ if is_filter => p.filter(&opt, value()?, logic)?,
            _ if opt.starts_with('-') => return Err(format!("unknown option `{opt}'")),
            _ => return Err(bad(&opt, "unexpected argument")),
        }
    }
    if negate {
        return Err("bad parameter `!': no filter option follows".into());
    }
    p.finish().map(Parsed::Run)
}

fn open(args: &Args) -> Result<Events, Error> {
    let sock = Socket::open()?;
    // The filter goes on before the subscription, so that no unwanted event slips in.
    if !args.filter.is_empty() {
        sock.attach_filter(&compile_filter(&args.filter)?)?;
    }
    let events = Events::subscribe(sock, args.groups)?;
    if let Some(bytes) = args.buffer {
        let got = events.socket().set_rcvbuf_report(bytes)?;
        let how = if got.forced {
            ""
        } else {
            " (SO_RCVBUFFORCE refused: SO_RCVBUF, capped at net.core.rmem_max)"
        };
        eprintln!("ctevents: receive queue of {} bytes{how}", got.effective);
    }
    if args.reliable {
        events.set_reliable(true)?;
    }
    Ok(events)
}

/// The lines of `ctevents`: `conntrack -E`'s, and its loss reports.
struct Lines {
    labels: Option<Connlabels>,
}

impl Handler for Lines {
    fn conntrack(&mut self, item: CtItem<'_, '_>, line: &mut String) -> Next {
        let labels = self.labels.as_ref();
        match ConntrackRepr::try_from(&item.event.entry) {
            Ok(entry) => {
                let (kind, out) = (item.event.kind, item.out);
                write_ct_line(line, &entry, kind, out, labels, item.userspace);
                Next::Print
            }
            Err(e) => {
                eprintln!("ctevents: malformed event: {e}");
                Next::Skip
            }
        }
    }

    fn expect(&mut self, event: &ExpEvent<'_>, out: &Output, line: &mut String) -> Next {
        match write_exp_line(line, event, out) {
            Ok(()) => Next::Print,
            Err(e) => {
                eprintln!("ctevents: malformed event: {e}");
                Next::Skip
            }
        }
    }

    fn lost(&mut self, report: Option<&Lost>, _overruns: u64, err: &mut dyn Write) -> Next {
        // The drop counter says how many; the overruns that come with them add nothing.
        if let Some(lost) = report {
            let at_least = if lost.exact { "" } else { "at least " };
            let events = if lost.count == 1 { "event" } else { "events" };
            let _ = writeln!(
                err,
                "ctevents: {at_least}{} {events} lost ({} in total); resynchronise with a dump",
                lost.count, lost.total
            );
        }
        Next::Skip
    }

    fn error(&mut self, error: &Error, err: &mut dyn Write) -> Next {
        match error {
            Error::Codec { .. } | Error::Truncated { .. } => {
                let _ = writeln!(err, "ctevents: {error}");
                Next::Skip
            }
            e => Next::Stop(Fail::other(e.to_string())),
        }
    }
}

fn main() -> ExitCode {
    conntrack_cli::signals::default_sigpipe();
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Run(args)) => args,
        Err(msg) => {
            eprintln!("ctevents: {msg}");
            return ExitCode::from(2);
        }
    };
    let events = match open(&args) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ctevents: {e}");
            return ExitCode::from(1);
        }
    };
    // As conntrack-tools: labels are printed only with `-o labels` and a label map, read as
    // libnetfilter_conntrack reads it.
    let labels = if args.labels {
        match Connlabels::load(conntrack_io::DEFAULT_CONNLABEL_CONF) {
            Ok(Some(map)) => Some(map),
            Ok(None) => {
                eprintln!("ctevents: no labels printed: no label in the label map");
                None
            }
            Err(e) => {
                eprintln!("ctevents: no labels printed: {e}");
                None
            }
        }
    } else {
        None
    };
    let what = match args.table {
        Table::Conntrack => "flow events",
        Table::Expect => "expectation events",
    };
    let settings = Settings {
        out: Output {
            extended: args.extended,
            id: args.id,
            ktimestamp: args.ktimestamp,
            labels: labels.is_some(),
            ..Output::default()
        },
        xml: None,
        timestamp: args.timestamp,
        summary: Box::new(move |shown, lost| {
            let lost = if lost > 0 {
                format!(" ({lost} lost)")
            } else {
                String::new()
            };
            format!("ctevents: {shown} {what} have been shown{lost}.")
        }),
    };
    let mut lines = Lines { labels };
    match run_loop(events, settings, Term::process(), &mut lines) {
        Ok((_, fail)) => {
            eprintln!("ctevents: {}", String::from_utf8_lossy(&fail.msg));
            ExitCode::from(1)
        }
        Err((_, e)) => {
            eprintln!("ctevents: cannot catch signals: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn sizes_that_do_not_fit_an_int_are_refused() {
        for size in ["2147483648", "4294967295", "0", "0x80000000", "-1"] {
            let e = parse(&["-b", size]).err().expect("refused");
            assert!(e.contains("not a size from 1 to 2147483647 bytes"), "{e}");
        }
        match parse(&["-b", "2147483647"]) {
            Ok(Parsed::Run(a)) => assert_eq!(a.buffer, Some(2_147_483_647)),
            _ => panic!("2147483647 fits"),
        }
    }

    #[test]
    fn filters_and_their_negation() {
        let Ok(Parsed::Run(a)) = parse(&["-p", "sctp", "--state", "ESTABLISHED", "!", "-w", "3"])
        else {
            panic!("parses");
        };
        assert!(a.filter.sctp_state.contains(4));
        assert_eq!(a.filter.zone.logic, Logic::Negative);
        assert!(parse(&["-p", "tcp", "!", "-p", "udp"]).is_err());
        assert!(parse(&["expect", "-p", "tcp"]).is_err());
        assert!(parse(&["!", "-b", "1"]).is_err());
    }
}
