//! Listing and event printing allocate nothing per entry: a dump whose every entry is
//! written as `conntrack -L` prints it (from the zero-copy view, in every output style, into
//! a reused buffer), with and without reading ahead on a second thread, and the event
//! stream printed as `conntrack -E` prints it. A counting global allocator proves it,
//! counting on every thread (the read-ahead dump has a thread of its own): this binary holds
//! one test only. No timing is asserted here.

use std::io::Write;
use std::ops::ControlFlow;

use conntrack_codec::filter::DumpFilter;
use conntrack_codec::fmt::{CtLine, Origin, Output, Style};
use conntrack_codec::labels::LabelMap;
use conntrack_io::{Event, Events, Groups, Socket};
use conntrack_tests::alloc::{allocations_everywhere, Counting};
use conntrack_tests::{bulk_create, Netns};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The output buffer: written to until it nears its capacity, then emptied (as the
/// `conntrack` program's buffered standard output is), so it never grows.
struct Text(Vec<u8>);

impl Text {
    fn line(&mut self, line: impl std::fmt::Display) {
        if self.0.len() > 60_000 {
            self.0.clear();
        }
        writeln!(self.0, "{line}").expect("write");
        assert!(self.0.capacity() == 1 << 16, "the buffer grew");
    }
}

/// Every style and option the lines have, a label map included.
fn outputs() -> [Output; 3] {
    let text = Output {
        extended: true,
        id: true,
        ktimestamp: true,
        labels: true,
        now: 2_000_000_000,
        utc_offset: 3600,
        ..Output::default()
    };
    [
        text,
        Output {
            style: Style::Save,
            ..text
        },
        Output {
            style: Style::Xml,
            ..text
        },
    ]
}

/// Lists the table, writing every entry in every style; the entries listed and the
/// allocations made on every thread.
fn list(sock: &mut Socket, map: &LabelMap, text: &mut Text, read_ahead: bool) -> (u64, u64) {
    sock.set_read_ahead(read_ahead);
    let outputs = outputs();
    let (n, allocs) = allocations_everywhere(|| {
        let mut n = 0u64;
        let summary = sock
            .list(&DumpFilter::default(), |v| {
                for out in &outputs {
                    text.line(CtLine::from_view(&v, Origin::Dump, out, map).expect("line"));
                }
                n += 1;
                ControlFlow::Continue(())
            })
            .expect("dump");
        assert!(!summary.interrupted);
        n
    });
    sock.set_read_ahead(false);
    (n, allocs)
}

#[test]
fn listing_and_event_lines_allocate_nothing_per_entry() {
    const SMALL: u32 = 1000;
    const LARGE: u32 = 20_000;
    const EVENTS: u32 = 5000;
    let ns = Netns::new("fmt-alloc");
    let mut sock = ns.socket();
    let map = LabelMap::parse("0 zero\n5 five\n64 sixty-four\n").expect("label map");
    let mut text = Text(Vec::with_capacity(1 << 16));

    bulk_create(&mut sock, 0, SMALL);
    let (small, small_allocs) = list(&mut sock, &map, &mut text, false);
    let (_, small_ahead) = list(&mut sock, &map, &mut text, true);
    bulk_create(&mut sock, SMALL, LARGE);
    let (large, large_allocs) = list(&mut sock, &map, &mut text, false);
    let (_, large_ahead) = list(&mut sock, &map, &mut text, true);
    eprintln!(
        "listing {small} and {large} entries: {small_allocs} and {large_allocs} allocations; \
         reading ahead: {small_ahead} and {large_ahead} (the thread and its buffers, per dump)"
    );
    assert_eq!((small, large), (u64::from(SMALL), u64::from(LARGE)));
    assert_eq!((small_allocs, large_allocs), (0, 0));
    assert_eq!(
        small_ahead, large_ahead,
        "reading ahead allocates per entry"
    );

    // Events, printed as `conntrack -E` prints them.
    let mut events = Events::open_in_netns(ns.path(), Groups::CONNTRACK_NEW).expect("events");
    events.set_rcvbuf(16 << 20).expect("rcvbuf");
    events.set_nonblocking(true).expect("nonblocking");
    // Warm up: keep the measurement to steady state.
    bulk_create(&mut sock, LARGE, LARGE + 10);
    while events.try_next().expect("event").is_some() {}
    bulk_create(&mut sock, LARGE + 10, LARGE + 10 + EVENTS);
    let outputs = outputs();
    let ((received, lost), allocs) = allocations_everywhere(|| {
        let (mut received, mut lost) = (0u64, 0u64);
        while let Some(e) = events.try_next().expect("event") {
            match e {
                Event::Conntrack(e) => {
                    for out in &outputs {
                        let origin = Origin::Event(e.kind);
                        text.line(CtLine::from_view(&e.entry, origin, out, &map).expect("line"));
                    }
                    received += 1;
                }
                Event::Lost(l) => lost += l.count,
                _ => {}
            }
        }
        (received, lost)
    });
    eprintln!("{received} events printed, {lost} lost: {allocs} allocations");
    assert_eq!((received, lost), (u64::from(EVENTS), 0));
    assert_eq!(allocs, 0);
}
