//! Shared pieces of the fuzz targets: a message synthesiser, a non-allocating text sink,
//! "call every getter" helpers with the view/repr agreement checks, the `arbitrary` input
//! types that map onto the codec's plain-data types, and a classic-BPF checker and
//! interpreter for the filter compiler's programs.
//!
//! Nothing here is fuzzed by itself; the targets in `fuzz_targets/` use it.

pub mod arb;
/// The classic-BPF checker and interpreter of the codec's property tests.
#[path = "../../codec/tests/bpf_vm/mod.rs"]
pub mod bpf;

use core::fmt::{self, Write};

use conntrack_codec::ct::{Conntrack, ConntrackRepr, UnknownAttr, Unknowns};
use conntrack_codec::exp::{Expect, ExpectRepr};
use conntrack_codec::nl::NlMsgHeader;

/// A netlink message `kind`/`flags` whose payload is nfgenmsg (`family`, version 0,
/// `res_id`) followed by `attrs`: lets a target treat its whole input as the attributes of
/// a well-framed message, so that mutations need not keep `nlmsg_len` right.
pub fn synth(kind: u16, flags: u16, family: u8, res_id: u16, attrs: &[u8]) -> Vec<u8> {
    let len = NlMsgHeader::LEN + 4 + attrs.len();
    let mut v = vec![0u8; NlMsgHeader::LEN];
    NlMsgHeader {
        len: u32::try_from(len).unwrap_or(u32::MAX),
        kind,
        flags,
        seq: 1,
        pid: 0,
    }
    .emit(&mut v)
    .expect("16-byte header");
    v.extend_from_slice(&[family, 0]);
    v.extend_from_slice(&res_id.to_be_bytes());
    v.extend_from_slice(attrs);
    v
}

/// A `fmt::Write` that stores nothing: it counts bytes, and fails once `fail_after` bytes
/// were written (never, with `usize::MAX`), to exercise the formatters' error paths.
#[derive(Debug)]
pub struct Sink {
    /// Bytes written.
    pub len: usize,
    /// Lines written (newlines seen).
    pub newlines: usize,
    fail_after: usize,
}

impl Sink {
    /// A sink that never fails.
    pub fn new() -> Self {
        Self::failing_after(usize::MAX)
    }

    /// A sink that fails on the write that would take it past `n` bytes.
    pub fn failing_after(n: usize) -> Self {
        Sink {
            len: 0,
            newlines: 0,
            fail_after: n,
        }
    }
}

impl Default for Sink {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for Sink {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let len = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        if len > self.fail_after {
            return Err(fmt::Error);
        }
        self.len = len;
        self.newlines += s.bytes().filter(|&b| b == b'\n').count();
        Ok(())
    }
}

/// What a repr's `emit` writes back of `u`: the top-level unknown attributes it kept (not
/// those found inside nests, nor the count of those that did not fit).
pub fn emitted_unknowns(u: &Unknowns) -> Unknowns {
    let mut out = Unknowns::default();
    for k in u.kept.iter().filter(|k| k.path == [0, 0]) {
        out.kept
            .push(UnknownAttr::clone(k))
            .expect("at most as many as before");
    }
    out
}

/// Calls every getter of a conntrack view; if the repr of the same message parses, checks
/// that each getter agrees with it.
pub fn ct_every_getter(v: &Conntrack<'_>, repr: Option<&ConntrackRepr>) {
    let orig = v.orig();
    let reply = v.reply();
    let master = v.master();
    let status = v.status();
    let status_mask = v.status_mask();
    let timeout = v.timeout();
    let mark = v.mark();
    let mark_mask = v.mark_mask();
    let use_count = v.use_count();
    let id = v.id();
    let secmark = v.secmark();
    let zone = v.zone();
    let ts_event = v.timestamp_event();
    let protoinfo = v.protoinfo();
    let c_orig = v.counters_orig();
    let c_reply = v.counters_reply();
    let timestamp = v.timestamp();
    let nat_src = v.nat_src();
    let nat_dst = v.nat_dst();
    let seq_orig = v.seq_adj_orig();
    let seq_reply = v.seq_adj_reply();
    let synproxy = v.synproxy();
    let helper = v.helper();
    let helper_name = v.helper_name();
    let helper_info = v.helper_info();
    let secctx = v.secctx();
    let labels = v.labels();
    let labels_mask = v.labels_mask();
    let filter = v.filter();
    let _ = (v.event_kind(), v.family(), v.nf(), v.unknown_count());
    let unknown = v.unknown().count();
    for a in v.attrs().flatten() {
        let _ = v.attr(a.kind());
    }
    let Some(r) = repr else { return };
    assert_eq!(orig, Ok(r.orig));
    assert_eq!(reply, Ok(r.reply));
    assert_eq!(master, Ok(r.master));
    assert_eq!(status, Ok(r.status));
    assert_eq!(status_mask, Ok(r.status_mask));
    assert_eq!(timeout, Ok(r.timeout));
    assert_eq!(mark, Ok(r.mark));
    assert_eq!(mark_mask, Ok(r.mark_mask));
    assert_eq!(use_count, Ok(r.use_count));
    assert_eq!(id, Ok(r.id));
    assert_eq!(secmark, Ok(r.secmark));
    assert_eq!(zone, Ok(r.zone));
    assert_eq!(ts_event, Ok(r.timestamp_event));
    assert_eq!(protoinfo, Ok(r.protoinfo));
    assert_eq!(c_orig, Ok(r.counters_orig));
    assert_eq!(c_reply, Ok(r.counters_reply));
    assert_eq!(timestamp, Ok(r.timestamp));
    assert_eq!(nat_src, Ok(r.nat_src));
    assert_eq!(nat_dst, Ok(r.nat_dst));
    assert_eq!(seq_orig, Ok(r.seq_adj_orig));
    assert_eq!(seq_reply, Ok(r.seq_adj_reply));
    assert_eq!(synproxy, Ok(r.synproxy));
    assert_eq!(labels, Ok(r.labels));
    assert_eq!(labels_mask, Ok(r.labels_mask));
    assert_eq!(filter, Ok(r.filter));
    // An empty name in the repr comes from an absent name attribute or from "\0".
    let name_agrees = |view: Result<Option<&str>, conntrack_codec::Error>, repr: &str| {
        view == Ok(Some(repr)) || (repr.is_empty() && view == Ok(None))
    };
    assert_eq!(helper, Ok(r.helper.clone()));
    match &r.helper {
        Some(h) => {
            assert!(
                name_agrees(helper_name, &h.name),
                "{helper_name:?} vs {:?}",
                h.name
            );
            assert_eq!(helper_info, Ok(h.info.as_deref()));
        }
        None => {
            assert_eq!(helper_name, Ok(None));
            assert_eq!(helper_info, Ok(None));
        }
    }
    match &r.secctx {
        Some(s) => assert!(name_agrees(secctx, &s.name), "{secctx:?} vs {:?}", s.name),
        None => assert_eq!(secctx, Ok(None)),
    }
    // Top-level unknowns the repr kept are unknown to the view too.
    let top = r.unknown.kept.iter().filter(|k| k.path == [0, 0]).count();
    assert!(
        unknown >= top,
        "view sees {unknown} unknown, repr kept {top}"
    );
}

/// Calls every getter of an expectation view; if the repr parses, checks they agree.
pub fn exp_every_getter(v: &Expect<'_>, repr: Option<&ExpectRepr>) {
    let master = v.master();
    let tuple = v.tuple();
    let mask = v.mask();
    let timeout = v.timeout();
    let id = v.id();
    let helper = v.helper();
    let zone = v.zone();
    let flags = v.flags();
    let class = v.class();
    let nat = v.nat();
    let func = v.func();
    let _ = (v.event_kind(), v.family(), v.nf());
    for a in v.nf().attrs().flatten() {
        let _ = v.attr(a.kind());
    }
    let Some(r) = repr else { return };
    assert_eq!(master, Ok(r.master));
    assert_eq!(tuple, Ok(r.tuple));
    assert_eq!(mask, Ok(r.mask));
    assert_eq!(timeout, Ok(r.timeout));
    assert_eq!(id, Ok(r.id));
    assert_eq!(helper, Ok(r.helper.as_deref()));
    assert_eq!(zone, Ok(r.zone));
    assert_eq!(flags, Ok(r.flags));
    assert_eq!(class, Ok(r.class));
    assert_eq!(nat, Ok(r.nat));
    assert_eq!(func, Ok(r.func.as_deref()));
}
