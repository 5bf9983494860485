//! The decoding behind `ctdecode`: one line of text per netlink message.

use std::io::Write;

use conntrack_codec::ct::{ConntrackRepr, EventKind, ExpStatsCpu, StatsCpu, StatsGlobal};
use conntrack_codec::exp::{Expect, ExpectRepr};
use conntrack_codec::fmt::{CtLine, ExpLine, ExpStatsCpuLine, Origin, Output, StatsCpuLine};
use conntrack_codec::nfnl::{ct_msg, exp_msg, NfMsg, Subsystem};
use conntrack_codec::nl::{Control, Messages, NlMsg};

use crate::errno_text;

/// One line for `msg`: a conntrack entry or event as conntrack-tools prints it with `out`,
/// an expectation likewise, and a short form for ACKs, errors, DONE and statistics.
///
/// # Errors
/// The codec's error for a malformed message.
pub fn describe(msg: &NlMsg<'_>, out: &Output) -> Result<String, conntrack_codec::Error> {
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

/// Why [`decode`] stopped.
#[derive(Debug)]
pub enum DecodeError {
    /// A message could not be read.
    Malformed {
        /// Its offset in the input.
        offset: usize,
        /// What is wrong.
        error: conntrack_codec::Error,
    },
    /// Writing the output failed.
    Write(std::io::Error),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Malformed { offset, error } => {
                write!(f, "malformed message at offset {offset}: {error}")
            }
            DecodeError::Write(e) => write!(f, "cannot write: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Writes one line per message of `input` (netlink bytes as received) to `sink`; stops at
/// the first malformed message. Returns the number of messages decoded.
///
/// # Errors
/// [`DecodeError::Malformed`] naming the offset of the first malformed message;
/// [`DecodeError::Write`] if `sink` fails.
pub fn decode(input: &[u8], out: &Output, sink: &mut impl Write) -> Result<usize, DecodeError> {
    let mut it = Messages::new(input);
    let mut n = 0;
    loop {
        let offset = it.offset();
        let Some(msg) = it.next() else { return Ok(n) };
        let line = msg
            .and_then(|m| describe(&m, out))
            .map_err(|error| DecodeError::Malformed { offset, error })?;
        writeln!(sink, "{line}").map_err(DecodeError::Write)?;
        n += 1;
    }
}
