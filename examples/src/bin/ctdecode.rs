//! `ctdecode [FILE]`: prints the netlink messages in FILE (or stdin), one line each.
//!
//! The input is raw bytes as received from a `NETLINK_NETFILTER` socket: one or more
//! messages, concatenated. A conntrack entry prints as `conntrack -L -o extended,id`
//! prints it, an event with its `[NEW]`/`[UPDATE]`/`[DESTROY]` prefix, an expectation as
//! `conntrack -L expect` does; ACKs, errors, DONE and statistics get a short readable form.
//! Malformed input gives one error line naming its offset and exit status 1.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use conntrack_codec::ct::{ConntrackRepr, EventKind, ExpStatsCpu, StatsCpu, StatsGlobal};
use conntrack_codec::exp::{Expect, ExpectRepr};
use conntrack_codec::fmt::{CtLine, ExpLine, ExpStatsCpuLine, Origin, StatsCpuLine};
use conntrack_codec::nfnl::{ct_msg, exp_msg, NfMsg, Subsystem};
use conntrack_codec::nl::{Control, Messages, NlMsg};
use conntrack_examples::{errno_text, output_now};

const USAGE: &str = "usage: ctdecode [FILE]   (reads stdin when FILE is absent or -)";

fn describe(
    msg: &NlMsg<'_>,
    out: &conntrack_codec::fmt::Output,
) -> Result<String, conntrack_codec::Error> {
    if let Some(c) = msg.control()? {
        return Ok(match c {
            Control::Error(e) if e.is_ack() => format!("ACK seq={}", e.request().seq),
            Control::Error(e) => {
                let mut s = format!("ERROR seq={} {}", e.request().seq, errno_text(e.errno()));
                if let Some(m) = e.ext_ack().msg {
                    s.push_str(&format!(": {m}"));
                }
                if let Some(o) = e.ext_ack().offset {
                    s.push_str(&format!(" (attribute at offset {o})"));
                }
                s
            }
            Control::Done(d) if d.errno() == 0 => format!("DONE seq={}", msg.seq()),
            Control::Done(d) => format!("DONE seq={} {}", msg.seq(), errno_text(d.errno())),
            Control::Noop => "NOOP".to_string(),
            Control::Overrun => "OVERRUN".to_string(),
            Control::Unknown(t) => format!("control message type {t}"),
        });
    }
    let nf = NfMsg::new_checked(*msg)?;
    let event = |k: Option<EventKind>| if msg.is_multi() { None } else { k };
    match (nf.subsystem(), nf.msg_num()) {
        (Subsystem::Ctnetlink, ct_msg::NEW | ct_msg::DELETE) => {
            let entry = ConntrackRepr::parse(&nf)?;
            let origin = match event(conntrack_codec::ct::EventKind::of(msg)) {
                Some(k) => Origin::Event(k),
                None => Origin::Dump,
            };
            Ok(CtLine::new(&entry, origin, out, &()).to_string())
        }
        (Subsystem::Ctnetlink, ct_msg::GET_STATS_CPU) => {
            Ok(StatsCpuLine(&StatsCpu::parse(&nf)?).to_string())
        }
        (Subsystem::Ctnetlink, ct_msg::GET_STATS) => {
            let s = StatsGlobal::parse(&nf)?;
            Ok(format!(
                "STATS entries={} max={}",
                s.entries.map_or("-".into(), |v| v.to_string()),
                s.max_entries.map_or("-".into(), |v| v.to_string())
            ))
        }
        (Subsystem::CtnetlinkExp, exp_msg::NEW | exp_msg::DELETE) => {
            let view = Expect::new_checked(nf)?;
            let exp = ExpectRepr::try_from(&view)?;
            Ok(ExpLine::new(&exp, event(view.event_kind()), out).to_string())
        }
        // The kernel sends expectation statistics as CTNETLINK message 3.
        (Subsystem::CtnetlinkExp | Subsystem::Ctnetlink, exp_msg::GET_STATS_CPU) => {
            Ok(ExpStatsCpuLine(&ExpStatsCpu::parse(&nf)?).to_string())
        }
        (sub, n) => Ok(format!(
            "nfnetlink subsystem {} message {n} family {} ({} bytes)",
            sub.id(),
            nf.nfgen().family,
            msg.bytes().len()
        )),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut input = Vec::new();
    let read = match args.as_slice() {
        [] => io::stdin().read_to_end(&mut input).map(|_| ()),
        [a] if a == "-" => io::stdin().read_to_end(&mut input).map(|_| ()),
        [a] if a == "-h" || a == "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [path] => std::fs::read(path).map(|b| input = b),
        _ => {
            eprintln!("ctdecode: too many arguments\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = read {
        eprintln!("ctdecode: cannot read input: {e}");
        return ExitCode::from(2);
    }
    let out = conntrack_codec::fmt::Output {
        extended: true,
        id: true,
        ..output_now()
    };
    let stdout = io::stdout();
    let mut stdout = stdout.lock();
    let mut it = Messages::new(&input);
    loop {
        let offset = it.offset();
        let Some(msg) = it.next() else { break };
        let line = msg.and_then(|m| describe(&m, &out));
        match line {
            Ok(line) => {
                if writeln!(stdout, "{line}").is_err() {
                    return ExitCode::from(1);
                }
            }
            Err(e) => {
                let _ = stdout.flush();
                eprintln!("ctdecode: malformed message at offset {offset}: {e}");
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}
