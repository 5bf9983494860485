//! The text formatter over everything that parses: `CtLine` in every `Style` with the
//! options, origin, userspace suffix and label map the input chooses, `ExpLine`, and the
//! `conntrack -S` lines, written into a sink that never allocates. Writing into a sink that
//! never fails must succeed; writing into one that fails part-way must not panic. Lines are
//! made from the zero-copy views and from the reprs: when the repr of a message parses, the
//! view's line must parse too and be the same text.
//!
//! Input: a 16-byte prefix of options (see `Options::read`), optionally a `connlabel.conf`
//! text, then netlink bytes as received.
#![no_main]

use core::fmt::Write;

use conntrack_codec::ct::{Conntrack, ConntrackRepr, EventKind, ExpStatsCpu, StatsCpu};
use conntrack_codec::exp::{Expect, ExpectRepr};
use conntrack_codec::fmt::{
    CtLine, ExpLine, ExpStatsCpuLine, Origin, Output, StatsCpuLine, Style, Userspace,
};
use conntrack_codec::labels::LabelMap;
use conntrack_codec::nfnl::NfMsg;
use conntrack_codec::nl::Messages;
use conntrack_fuzz::Sink;
use libfuzzer_sys::fuzz_target;

const PREFIX: usize = 16;

struct Options {
    out: Output,
    origin: Origin,
    userspace: Option<u32>,
    progname: bool,
    fail_after: usize,
}

impl Options {
    /// Byte 0: style; 1: option bits; 2: origin and where a second sink fails; 3: length
    /// of the label map text; 4..12: now (LE); 12..16: UTC offset (LE).
    fn read(p: &[u8; PREFIX]) -> (Options, bool, usize) {
        let bit = |n: u8| p[1] & (1 << n) != 0;
        let now = u64::from_le_bytes(p[4..12].try_into().expect("8 bytes"));
        let offset = i32::from_le_bytes(p[12..16].try_into().expect("4 bytes"));
        let out = Output {
            style: [Style::Default, Style::Save, Style::Xml][usize::from(p[0] % 3)],
            extended: bit(0),
            id: bit(1),
            ktimestamp: bit(2),
            labels: bit(3),
            event_time: bit(4).then_some((now, u32::from_le_bytes([p[3], p[2], p[0], 0]))),
            now,
            utc_offset: offset,
        };
        let origin = match p[2] % 5 {
            0 => Origin::Dump,
            1 => Origin::Delete,
            2 => Origin::Event(EventKind::New),
            3 => Origin::Event(EventKind::Update),
            _ => Origin::Event(EventKind::Destroy),
        };
        let opts = Options {
            out,
            origin,
            userspace: bit(5).then_some(offset as u32),
            progname: bit(6),
            fail_after: usize::from(p[2] >> 3) * 7,
        };
        (opts, bit(7), usize::from(p[3]))
    }
}

fn render(d: &dyn core::fmt::Display, fail_after: usize) {
    let mut sink = Sink::new();
    write!(sink, "{d}").expect("formatting into a sink that never fails");
    let mut failing = Sink::failing_after(fail_after);
    let _ = write!(failing, "{d}");
}

fuzz_target!(|data: &[u8]| {
    let mut prefix = [0u8; PREFIX];
    let n = data.len().min(PREFIX);
    prefix[..n].copy_from_slice(&data[..n]);
    let rest = &data[n..];
    let (opts, with_map, map_len) = Options::read(&prefix);
    let (map, rest) = if with_map {
        let (text, rest) = rest.split_at(map_len.min(rest.len()));
        let map = core::str::from_utf8(text)
            .ok()
            .and_then(|t| LabelMap::parse(t).ok())
            .unwrap_or_default();
        (map, rest)
    } else {
        (LabelMap::default(), rest)
    };
    let progname = core::str::from_utf8(rest.get(..8).unwrap_or_default()).ok();
    let userspace = opts.userspace.map(|portid| Userspace {
        portid,
        progname: progname.filter(|_| opts.progname),
    });
    for msg in Messages::new(rest) {
        let Ok(msg) = msg else { break };
        let Ok(nf) = NfMsg::new_checked(msg) else {
            continue;
        };
        let repr = ConntrackRepr::parse(&nf);
        let view = Conntrack::new_checked(nf);
        for style in [Style::Default, Style::Save, Style::Xml] {
            let out = Output { style, ..opts.out };
            let from_view = view
                .as_ref()
                .ok()
                .map(|v| CtLine::from_view(v, opts.origin, &out, &map));
            if let Some(Ok(line)) = &from_view {
                render(line, opts.fail_after);
            }
            if let Ok(r) = &repr {
                let line = CtLine::new(r, opts.origin, &out, &map).userspace(userspace);
                render(&line, opts.fail_after);
                render(&CtLine::new(r, opts.origin, &out, &()), opts.fail_after);
                let Some(Ok(from_view)) = from_view else {
                    let error = from_view.map(|r| r.err());
                    panic!("the repr parses, the view's line does not: {error:?}");
                };
                assert_eq!(
                    from_view.userspace(userspace).to_string(),
                    line.to_string(),
                    "the view's line and the repr's differ"
                );
            }
        }
        let event = match opts.origin {
            Origin::Event(k) => Some(k),
            _ => None,
        };
        let repr = ExpectRepr::parse(&nf);
        let view = Expect::new_checked(nf);
        for style in [Style::Default, Style::Save, Style::Xml] {
            let out = Output { style, ..opts.out };
            let from_view = view
                .as_ref()
                .ok()
                .map(|v| ExpLine::from_view(v, event, &out));
            if let Some(Ok(line)) = &from_view {
                render(line, opts.fail_after);
            }
            if let Ok(e) = &repr {
                let line = ExpLine::new(e, event, &out);
                render(&line, opts.fail_after);
                let Some(Ok(from_view)) = from_view else {
                    panic!("the repr parses, the view's line does not");
                };
                assert_eq!(from_view.to_string(), line.to_string());
            }
        }
        if let Ok(s) = StatsCpu::parse(&nf) {
            render(&StatsCpuLine(&s), opts.fail_after);
        }
        if let Ok(s) = ExpStatsCpu::parse(&nf) {
            render(&ExpStatsCpuLine(&s), opts.fail_after);
        }
    }
});
