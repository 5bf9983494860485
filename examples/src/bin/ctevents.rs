//! `ctevents`: prints conntrack events as `conntrack -E -o extended,id` prints them (or
//! expectation events as `conntrack -E expect` does), optionally filtered in the kernel by a
//! classic-BPF program, and reports lost events on stderr with their exact count.
//!
//! Run `ctevents --help` for the command line. It needs `CAP_NET_ADMIN`; run it inside a
//! namespace with `ip netns exec NAME ctevents`.

use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use conntrack_codec::ct::{l4proto, ConntrackRepr};
use conntrack_codec::exp::ExpectRepr;
use conntrack_codec::filter::bpf::{
    ByteSet, EventFilter, Ipv4Match, Ipv6Match, Logic, MarkMatch, MatchSet,
};
use conntrack_codec::fmt::{
    l4_name, sctp_state_name, tcp_state_name, CtLine, ExpLine, Origin, Output, Userspace,
};
use conntrack_codec::labels::LabelMap;
use conntrack_io::{compile_filter, Error, Event, Events, Groups, Socket};

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
  -b, --buffer-size BYTES receive queue size (SO_RCVBUFFORCE, else SO_RCVBUF)
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

/// Events printed, and events lost, for the summary at the end.
static SHOWN: AtomicU64 = AtomicU64::new(0);
static LOST: AtomicU64 = AtomicU64::new(0);

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

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut args = Args {
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
    };
    let mut mask = None;
    let mut state_lists = Vec::new();
    let mut protos = Vec::new();
    let mut logics = Logics::default();
    let mut negate = false;
    let mut first = true;
    while let Some(arg) = it.next() {
        let is_first = std::mem::replace(&mut first, false);
        if arg == "!" {
            if negate {
                return Err("bad parameter `!': given twice".into());
            }
            negate = true;
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
        let filter_option = matches!(
            opt.as_str(),
            "-p" | "--proto"
                | "-s"
                | "--src"
                | "-d"
                | "--dst"
                | "-m"
                | "--mark"
                | "-w"
                | "--zone"
                | "--state"
        );
        if logic == Logic::Negative && !filter_option {
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
            "conntrack" | "expect" if is_first => {
                args.table = if opt == "expect" {
                    Table::Expect
                } else {
                    Table::Conntrack
                };
            }
            "-e" | "--event-mask" => mask = Some(value()?),
            "-o" | "--output" => {
                let list = value()?;
                args.extended = false;
                args.id = false;
                for word in list.split(',') {
                    if abbrev(word, "extended") {
                        args.extended = true;
                    } else if abbrev(word, "timestamp") {
                        args.timestamp = true;
                    } else if abbrev(word, "id") {
                        args.id = true;
                    } else if abbrev(word, "ktimestamp") {
                        args.ktimestamp = true;
                    } else if abbrev(word, "labels") {
                        args.labels = true;
                    } else if !abbrev(word, "userspace") {
                        return Err(bad(word, "not an output option of ctevents"));
                    }
                }
            }
            "-b" | "--buffer-size" => {
                let v = value()?;
                let n = number(&v)
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|&n| n > 0)
                    .ok_or_else(|| bad(&v, "not a size in bytes"))?;
                args.buffer = Some(n);
            }
            "--reliable" => args.reliable = true,
            "-p" | "--proto" => {
                let p = proto(&value()?)?;
                logics.set("-p", logic)?;
                args.filter.l4proto.logic = logic;
                args.filter.l4proto.insert(p);
                protos.push(p);
            }
            "-s" | "--src" => {
                let f = &mut *args.filter;
                let family = network(&value()?, &mut f.ipv4_src, &mut f.ipv6_src, logic)?;
                logics.set(
                    if family == "ipv4" {
                        "-s (IPv4)"
                    } else {
                        "-s (IPv6)"
                    },
                    logic,
                )?;
            }
            "-d" | "--dst" => {
                let f = &mut *args.filter;
                let family = network(&value()?, &mut f.ipv4_dst, &mut f.ipv6_dst, logic)?;
                logics.set(
                    if family == "ipv4" {
                        "-d (IPv4)"
                    } else {
                        "-d (IPv6)"
                    },
                    logic,
                )?;
            }
            "-m" | "--mark" => {
                let v = value()?;
                let parse = |s: &str| {
                    number(s)
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| bad(&v, "not a 32-bit number"))
                };
                let m = match v.split_once('/') {
                    Some((m, mask)) => MarkMatch::masked(parse(m)?, parse(mask)?),
                    None => MarkMatch::exact(parse(&v)?),
                };
                logics.set("-m", logic)?;
                args.filter.mark.logic = logic;
                args.filter
                    .mark
                    .push(m)
                    .map_err(|_| bad(&v, "too many marks"))?;
            }
            "-w" | "--zone" => {
                let v = value()?;
                let z = number(&v)
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or_else(|| bad(&v, "not a zone from 0 to 65535"))?;
                logics.set("-w", logic)?;
                args.filter.zone.logic = logic;
                args.filter
                    .zone
                    .push(z)
                    .map_err(|_| bad(&v, "too many zones"))?;
            }
            "--state" => {
                state_lists.push((value()?, logic));
            }
            _ if opt.starts_with('-') => return Err(format!("unknown option `{opt}'")),
            _ => return Err(bad(&opt, "unexpected argument")),
        }
    }
    if negate {
        return Err("bad parameter `!': no filter option follows".into());
    }
    // States are TCP states, unless the protocol set is SCTP alone.
    let sctp = protos.iter().all(|&p| p == l4proto::SCTP) && !protos.is_empty();
    for (list, logic) in state_lists {
        let set = if sctp {
            &mut args.filter.sctp_state
        } else {
            &mut args.filter.tcp_state
        };
        logics.set("--state", logic)?;
        set.logic = logic;
        states(&list, sctp, set)?;
    }
    if args.table == Table::Expect && !args.filter.is_empty() {
        return Err("bad parameter: filters apply to conntrack events only".into());
    }
    let (new, update, destroy) = match args.table {
        Table::Conntrack => (
            Groups::CONNTRACK_NEW,
            Groups::CONNTRACK_UPDATE,
            Groups::CONNTRACK_DESTROY,
        ),
        Table::Expect => (Groups::EXP_NEW, Groups::EXP_UPDATE, Groups::EXP_DESTROY),
    };
    match mask {
        None => args.groups = new | update | destroy,
        Some(list) => {
            for word in list.split(',') {
                args.groups |= if abbrev(word, "ALL") {
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
        }
    }
    Ok(Parsed::Run(args))
}

/// The program names of requesting sockets, looked up in /proc as conntrack-tools 1.4.7 does:
/// the socket's inode from `/proc/net/netlink` (protocol 12 and the port id), then the
/// process holding `socket:[INODE]` among its descriptors, `/proc/PORTID/fd` first, and its
/// name from `/proc/PID/stat`. The last answer is kept for the same port id and inode.
#[derive(Default)]
struct Prognames {
    last: Option<(u32, u64, Option<String>)>,
}

impl Prognames {
    fn get(&mut self, portid: u32) -> Option<String> {
        let inode = netlink_inode(portid)?;
        if let Some((p, i, name)) = &self.last {
            if *p == portid && *i == inode {
                return name.clone();
            }
        }
        let name = name_by_portid(portid, inode);
        self.last = Some((portid, inode, name.clone()));
        name
    }
}

/// The inode of the `NETLINK_NETFILTER` socket with port id `portid`.
fn netlink_inode(portid: u32) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netlink").ok()?;
    text.lines().skip(1).find_map(|line| {
        // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
        let f: Vec<&str> = line.split_whitespace().collect();
        let protocol: i32 = f.get(1)?.parse().ok()?;
        let pid: u32 = f.get(2)?.parse().ok()?;
        let inode: u64 = f.get(9)?.parse().ok()?;
        (protocol == 12 && pid == portid).then_some(inode)
    })
}

fn name_by_portid(portid: u32, inode: u64) -> Option<String> {
    // Most programs' first netlink socket has their process id as port id.
    if let Some(name) = name_if_holds(u64::from(portid), inode) {
        return Some(name);
    }
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .filter(|&pid| pid > 1 && pid != u64::from(portid))
        .find_map(|pid| name_if_holds(pid, inode))
}

/// The name of process `pid` if one of its descriptors is socket `inode`.
fn name_if_holds(pid: u64, inode: u64) -> Option<String> {
    let target = format!("socket:[{inode}]");
    let holds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(Result::ok)
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str()));
    if !holds {
        return None;
    }
    // `PID (COMM) STATE ...`: the name runs to the first `)`.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.split_once('(')?;
    let name = rest.split(')').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// Waits for SIGINT or SIGTERM on a thread of its own, then ends the program: once the
/// handlers are installed it says so on `ready`.
fn on_signal_exit(table: Table, ready: std::sync::mpsc::Sender<std::io::Result<()>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    rt.block_on(async {
        let (mut int, mut term) = match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(i), Ok(t)) => (i, t),
            (Err(e), _) | (_, Err(e)) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        std::future::poll_fn(|cx| {
            if int.poll_recv(cx).is_ready() || term.poll_recv(cx).is_ready() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
    });
    // Every line is flushed while the lock is held: taking it waits for the line being
    // written, if any, and keeps the main thread from starting another.
    let _stdout = std::io::stdout().lock();
    let what = match table {
        Table::Conntrack => "flow events",
        Table::Expect => "expectation events",
    };
    let lost = LOST.load(Ordering::Relaxed);
    let lost = if lost > 0 {
        format!(" ({lost} lost)")
    } else {
        String::new()
    };
    eprintln!(
        "ctevents: {} {what} have been shown{lost}.",
        SHOWN.load(Ordering::Relaxed)
    );
    std::process::exit(0);
}

fn open(args: &Args) -> Result<Events, Error> {
    let sock = Socket::open()?;
    // The filter goes on before the subscription, so that no unwanted event slips in.
    if !args.filter.is_empty() {
        sock.attach_filter(&compile_filter(&args.filter)?)?;
    }
    let events = Events::subscribe(sock, args.groups)?;
    if let Some(bytes) = args.buffer {
        let got = events.set_rcvbuf(bytes)?;
        eprintln!("ctevents: receive queue of {got} bytes");
    }
    if args.reliable {
        events.set_reliable(true)?;
    }
    Ok(events)
}

fn main() -> ExitCode {
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
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let table = args.table;
    std::thread::spawn(move || on_signal_exit(table, ready_tx));
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("ctevents: cannot catch signals: {e}");
            return ExitCode::from(1);
        }
        Err(_) => {
            eprintln!("ctevents: cannot catch signals");
            return ExitCode::from(1);
        }
    }
    let mut events = match open(&args) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ctevents: {e}");
            return ExitCode::from(1);
        }
    };
    // As conntrack-tools: labels are printed only with `-o labels` and a label map.
    let labels: Option<LabelMap> = if args.labels {
        match conntrack_io::load_label_map(conntrack_io::DEFAULT_CONNLABEL_CONF) {
            Ok(map) => Some(map),
            Err(e) => {
                eprintln!("ctevents: no labels printed: {e}");
                None
            }
        }
    } else {
        None
    };
    let mut prognames = Prognames::default();
    let mut line = String::new();
    loop {
        line.clear();
        let mut out = Output {
            extended: args.extended,
            id: args.id,
            ktimestamp: args.ktimestamp,
            labels: labels.is_some(),
            ..conntrack_examples::output_now()
        };
        if args.timestamp {
            out.event_time = Some(conntrack_examples::now_micros());
        }
        let printed = match events.next() {
            Ok(Some(Event::Conntrack(ev))) => match ConntrackRepr::try_from(&ev.entry) {
                Ok(entry) => {
                    let progname = (ev.portid != 0).then(|| prognames.get(ev.portid));
                    let userspace = progname.as_ref().map(|p| Userspace {
                        portid: ev.portid,
                        progname: p.as_deref(),
                    });
                    let origin = Origin::Event(ev.kind);
                    let l = match &labels {
                        Some(map) => CtLine::new(&entry, origin, &out, map)
                            .userspace(userspace)
                            .to_string(),
                        None => CtLine::new(&entry, origin, &out, &())
                            .userspace(userspace)
                            .to_string(),
                    };
                    line.push_str(&l);
                    true
                }
                Err(e) => {
                    eprintln!("ctevents: malformed event: {e}");
                    false
                }
            },
            Ok(Some(Event::Expect(ev))) => match ExpectRepr::try_from(&ev.exp) {
                Ok(exp) => {
                    line.push_str(&ExpLine::new(&exp, Some(ev.kind), &out).to_string());
                    true
                }
                Err(e) => {
                    eprintln!("ctevents: malformed event: {e}");
                    false
                }
            },
            Ok(Some(Event::Lost(lost))) => {
                LOST.store(lost.total, Ordering::Relaxed);
                let at_least = if lost.exact { "" } else { "at least " };
                let events = if lost.count == 1 { "event" } else { "events" };
                eprintln!(
                    "ctevents: {at_least}{} {events} lost ({} in total); resynchronise with a dump",
                    lost.count, lost.total
                );
                false
            }
            Ok(None) => false,
            Err(e @ (Error::Codec { .. } | Error::Truncated { .. })) => {
                eprintln!("ctevents: {e}");
                false
            }
            Err(e) => {
                eprintln!("ctevents: {e}");
                return ExitCode::from(1);
            }
        };
        if printed {
            let stdout = std::io::stdout();
            let mut stdout = stdout.lock();
            if writeln!(stdout, "{line}")
                .and_then(|()| stdout.flush())
                .is_err()
            {
                // The reader went away (a closed pipe): nothing more to do.
                return ExitCode::SUCCESS;
            }
            SHOWN.fetch_add(1, Ordering::Relaxed);
        }
    }
}
