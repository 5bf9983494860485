//! The sans-IO engine: the internal cache (what this node's kernel has), the external cache
//! (what the peer sent), and the synchronization mode — FTFW, NOTRACK or ALARM, with
//! conntrackd 1.4.7's semantics. It is driven by cache events, received datagrams and clock
//! ticks, and hands out datagrams to send and entries to put into the kernel; it never
//! touches a socket or reads a clock (times are milliseconds given by the caller).
//!
//! # The three modes
//! - **FTFW** (`Mode FTFW`): reliable. Every message carries a sequence number; the receiver
//!   acknowledges windows of messages (ACK), asks for gaps again (NACK), and the sender keeps
//!   what is not acknowledged in a resend queue. ALIVE keeps the link warm; HELLO and
//!   HELLO_BACK tell a restart. See the crate documentation for what this engine does beyond
//!   conntrackd's FTFW to lose nothing.
//! - **NOTRACK** (`Mode NOTRACK`): best effort. Entries are sent once; sequence numbers are
//!   only watched to count losses. RESYNC requests (`-n` on the peer) and ALIVE work as in
//!   FTFW; nothing is ever sent again unless asked.
//! - **ALARM** (`Mode ALARM`): best effort with refreshes. Every entry of the internal cache
//!   is sent again at a random moment within `RefreshTime` seconds of its last change, for
//!   ever; the receiver forgets an external entry that no message refreshed for
//!   `CacheTimeout` seconds. No control message is sent or honoured (conntrackd's ALARM has
//!   none: `-n` and `-B` do nothing).
//!
//! # Caches
//! With `DisableInternalCache` the engine keeps no internal cache: every event goes out at
//! once ([`Engine::ct_event`]), and a bulk send or a peer's RESYNC asks the shell to dump the
//! kernel ([`Engine::take_kernel_bulk`]). With `DisableExternalCache` received entries are
//! not kept but handed to the shell to put into the kernel at once
//! ([`Engine::poll_inject`]). Both caches refuse new entries beyond `HashLimit`, counting
//! them (`no space left in cache`).

use std::collections::{HashMap, VecDeque};

use conntrack_codec::ct::{ConntrackRepr, EventKind, ProtoInfo};
use conntrack_codec::exp::ExpectRepr;
use conntrack_codec::sync::{
    emit_ct_attrs, emit_exp_attrs, flags, nta, seq_after, seq_between, Body, Control, DataKind,
    Header, Messages, NtaWriter, SyncCt, SyncExp, ACK_LEN, HEADER_LEN, VERSION,
};

use crate::cache::{fill_missing, Key, KeyBuild, KeyHasher};
use crate::filter::Filter;

/// The synchronization mode (`Sync { Mode FTFW|NOTRACK|ALARM { } }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Reliable: sequence tracking, ACK, NACK, resend queue.
    #[default]
    Ftfw,
    /// Best effort: each change sent once.
    Notrack,
    /// Best effort with periodic refreshes of every entry.
    Alarm,
}

/// Which expectations are replicated (`Options { ExpectationSync on|off|{ ... } }`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ExpectSync {
    /// None.
    #[default]
    Off,
    /// Every one (`on`).
    All,
    /// Those whose helper's name starts with one of these, case ignored (`{ ftp sip }`:
    /// `sip` also takes `sip-5060`, as conntrackd does).
    Helpers(Vec<String>),
}

impl ExpectSync {
    /// Whether expectations are replicated at all.
    pub fn enabled(&self) -> bool {
        !matches!(self, ExpectSync::Off)
    }

    /// Whether an expectation of helper `name` is replicated. With a list, an expectation
    /// without a helper name is not.
    pub fn accepts(&self, name: Option<&str>) -> bool {
        match self {
            ExpectSync::Off => false,
            ExpectSync::All => true,
            ExpectSync::Helpers(list) => name.is_some_and(|n| {
                list.iter().any(|h| {
                    n.as_bytes()
                        .get(..h.len())
                        .is_some_and(|p| p.eq_ignore_ascii_case(h.as_bytes()))
                })
            }),
        }
    }
}

/// The engine's settings (conntrackd's `Sync { ... }` and the parts of `General` the
/// engine applies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The mode.
    pub mode: Mode,
    /// Messages received between two ACKs (`ACKWindowSize`, 300 in conntrackd).
    pub ack_window: u32,
    /// The most control messages kept for resending (`ResendQueueSize` counts them and the
    /// objects in conntrackd; objects are bounded by the cache here).
    pub resend_ctl_max: usize,
    /// The largest datagram to send (conntrackd: the interface MTU minus the IP and UDP or
    /// TCP headers).
    pub max_datagram: usize,
    /// Milliseconds of silence before an ALIVE (or a pending ACK) is sent (1000; FTFW and
    /// NOTRACK).
    pub alive_ms: u64,
    /// Milliseconds after which a data message the peer neither acknowledged nor asked for
    /// again is sent again (FTFW; conntrackd has no such timer; see the crate documentation).
    pub resend_ms: u64,
    /// The largest forward jump of the peer's sequence number accepted without HELLO (FTFW):
    /// a message further ahead is dropped as forged or stray (counted), unless three in a
    /// row agree, which is taken as the peer's new numbering.
    pub max_gap: u32,
    /// `RefreshTime` (ALARM): an entry is sent again within this many seconds.
    pub refresh_s: u32,
    /// `CacheTimeout` (ALARM): an external entry not refreshed for this many seconds goes.
    pub cache_timeout_s: u32,
    /// `HashLimit`: the most entries each cache holds (conntrack entries and expectations
    /// counted apart, an internal entry deleted but not yet acknowledged included, as in
    /// 1.4.7's hash tables).
    pub hash_limit: usize,
    /// Keep an internal cache (`DisableInternalCache off`).
    pub internal_cache: bool,
    /// Keep an external cache (`DisableExternalCache off`).
    pub external_cache: bool,
    /// `Options { ExpectationSync }`.
    pub expectations: ExpectSync,
    /// `General { Filter }`.
    pub filter: Filter,
    /// `Options { TCPWindowTracking }`: TCP window scales are sent (conntrackd leaves them
    /// out otherwise).
    pub tcp_window_tracking: bool,
    /// `Filter From Kernelspace`: events arrive filtered by the kernel, only dumps are
    /// filtered here.
    pub filter_kernelspace: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Ftfw,
            ack_window: 300,
            resend_ctl_max: 131_072,
            max_datagram: 1472,
            alive_ms: 1000,
            resend_ms: 3000,
            max_gap: 1 << 20,
            refresh_s: 60,
            cache_timeout_s: 180,
            hash_limit: 262_144,
            internal_cache: true,
            external_cache: true,
            expectations: ExpectSync::Off,
            filter: Filter::default(),
            tcp_window_tracking: false,
            filter_kernelspace: false,
        }
    }
}

/// Who caused a kernel event (conntrackd's "origin").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The kernel or another process: replicated.
    Kernel,
    /// This node's own commit: kept in the internal cache, not sent back.
    Commit,
    /// This node's own injection of a peer's entry (`DisableExternalCache`): ignored.
    Inject,
}

/// Counters for `conntrackd -s` (network, sequence tracking) and for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams (or stream reads) received.
    pub rx_datagrams: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Messages received and accepted (data and control).
    pub rx_messages: u64,
    /// Malformed messages, all reasons together (`Malformed messages`).
    pub rx_malformed: u64,
    /// Another protocol version (`Wrong protocol version`).
    pub rx_bad_version: u64,
    /// A header the mode refuses: unknown flags or type, a backwards range (`Malformed
    /// header`).
    pub rx_bad_header: u64,
    /// Data messages whose attributes did not parse (dropped, sequence followed;
    /// `Malformed payload`).
    pub rx_bad_payload: u64,
    /// A data type out of range (`Bad message type`).
    pub rx_bad_type: u64,
    /// Fewer bytes left than a header (`Truncated message`).
    pub rx_truncated: u64,
    /// A length under the minimum or past the end (`Bad message size`).
    pub rx_bad_size: u64,
    /// Messages lost on the way in (gaps in the peer's numbering; `Packets lost`).
    pub rx_lost: u64,
    /// Messages that came too late or twice (before the expected number; `Packets before`).
    /// FTFW drops them; NOTRACK and ALARM apply them, as conntrackd does.
    pub rx_before: u64,
    /// Messages too far ahead without HELLO: dropped as forged or stray (FTFW).
    pub rx_out_of_window: u64,
    /// Times the peer started again (HELLO with a new numbering).
    pub rx_hello: u64,
    /// NACKs received.
    pub rx_nack: u64,
    /// RESYNC requests received.
    pub rx_resync: u64,
    /// Datagrams handed out to send.
    pub tx_datagrams: u64,
    /// Bytes handed out to send.
    pub tx_bytes: u64,
    /// Messages handed out to send.
    pub tx_messages: u64,
    /// Messages that could not be built (`send: Malformed messages`): an entry larger than
    /// a datagram.
    pub tx_malformed: u64,
    /// Data messages sent again (NACK, timer, HELLO; ALARM refreshes are not counted here).
    pub tx_resent: u64,
    /// ALARM refreshes sent.
    pub tx_refresh: u64,
    /// NACKs sent.
    pub tx_nack: u64,
    /// RESYNC requests sent on the engine's own account (FTFW): after losses the peer may
    /// no longer be able to send again (it forgets its resend queue whenever a HELLO
    /// arrives, and nothing can ask for what it sent before the first message heard).
    pub tx_resync_recover: u64,
    /// Control messages dropped from a full resend queue.
    pub rs_purged: u64,
    /// Entries created, updated, deleted in the external cache by the peer.
    pub ext_new: u64,
    /// See `ext_new`.
    pub ext_upd: u64,
    /// See `ext_new`.
    pub ext_del: u64,
    /// External entries that expired (ALARM `CacheTimeout`).
    pub ext_expired: u64,
    /// Internal cache events taken in (new or update, destroy).
    pub int_upd: u64,
    /// See `int_upd`.
    pub int_del: u64,
    /// Events and dump entries the filter kept out.
    pub filtered: u64,
    /// Entries handed to the shell to put into the kernel (`DisableExternalCache`).
    pub injected: u64,
    /// Entries dropped because the inject queue was full (`DisableExternalCache` with a
    /// shell that does not keep up).
    pub inject_dropped: u64,
}

/// A cache's counters, for `conntrackd -s cache` (conntrackd's names in the comments).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries held, dead ones waiting for an acknowledgement included (`total entries`).
    pub objects: u64,
    /// Live entries (`active objects`).
    pub active: u64,
    /// Entries added (`creation OK`).
    pub add_ok: u64,
    /// Entries not added (`creation failed`).
    pub add_fail: u64,
    /// Of which for lack of room (`no space left in cache`, `HashLimit`).
    pub add_fail_enospc: u64,
    /// Entries changed (`update OK`).
    pub upd_ok: u64,
    /// Changes not made (`update failed`).
    pub upd_fail: u64,
    /// Of which to entries not in the cache (`entry not found`).
    pub upd_fail_enoent: u64,
    /// Entries deleted (`deletion created`).
    pub del_ok: u64,
    /// Deletions not made (`deletion failed`).
    pub del_fail: u64,
    /// Of which of entries not in the cache (`entry not found`).
    pub del_fail_enoent: u64,
}

/// One of the four caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheId {
    /// This node's conntrack entries.
    InternalCt,
    /// This node's expectations.
    InternalExp,
    /// The peer's conntrack entries.
    ExternalCt,
    /// The peer's expectations.
    ExternalExp,
}

impl CacheId {
    fn index(self) -> usize {
        self as usize
    }
}

/// A queue's counters, for `conntrackd -s queue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    /// conntrackd's name for it (`txqueue`, `rsqueue`).
    pub name: &'static str,
    /// Elements in it now.
    pub current: u64,
    /// The most it holds.
    pub max: u64,
    /// Elements refused because it was full (`not enough space errors`).
    pub full: u64,
}

/// An element of the resend queue, for `conntrackd -s rsqueue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsEntry {
    /// A control message (ACK, NACK, RESYNC) waiting to be acknowledged.
    Control {
        /// Its sequence number.
        seq: u32,
        /// Its flags.
        flags: u8,
    },
    /// An entry's message waiting to be acknowledged.
    Object {
        /// Its sequence number.
        seq: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjState {
    New,
    Alive,
    Dead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    None,
    Tx,
    Rs,
}

#[derive(Debug)]
struct Obj {
    key: Key,
    /// The kernel's id of the entry (`CTA_ID`; 0 unknown), for listings.
    id: u32,
    expect: bool,
    attrs: Vec<u8>,
    state: ObjState,
    queue: Queue,
    seq: u32,
    gen: u32,
    epoch: u32,
    created_ms: u64,
    updated_ms: u64,
    refresh_ms: u64,
}

#[derive(Debug, Clone, Copy)]
enum Item {
    Obj {
        slot: u32,
        gen: u32,
    },
    Ctl(Control),
    /// The next message of the direct queue (no internal cache).
    Direct,
}

/// An entry of the external cache.
#[derive(Debug)]
pub struct ExtEntry {
    /// The `NTA_*` attributes the peer sent last.
    pub attrs: Vec<u8>,
    /// Whether it is an expectation.
    pub expect: bool,
    /// When it arrived first (ms).
    pub created_ms: u64,
    /// When it was last updated (ms).
    pub updated_ms: u64,
    key: Key,
}

/// An entry of the internal cache, for dumps.
#[derive(Debug, Clone, Copy)]
pub struct IntEntry<'a> {
    /// Its `NTA_*` attributes.
    pub attrs: &'a [u8],
    /// Whether it is an expectation.
    pub expect: bool,
    /// When it appeared (ms).
    pub created_ms: u64,
    /// When it last changed (ms).
    pub updated_ms: u64,
    /// The kernel's id of the entry, when the kernel gave one (listings show it).
    pub id: Option<u32>,
}

/// An entry for the kernel (`DisableExternalCache`): what the peer said and its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inject<'a> {
    /// New, changed or deleted, conntrack entry or expectation.
    pub kind: DataKind,
    /// The `NTA_*` attributes (checked: they parse).
    pub attrs: &'a [u8],
}

/// A queue of encoded messages in one buffer (kind, length, attributes), so that queueing
/// allocates nothing once the buffer has grown.
#[derive(Debug, Default)]
struct Fifo {
    buf: Vec<u8>,
    head: usize,
    len: usize,
}

impl Fifo {
    const MAX_BYTES: usize = 64 << 20;

    fn push(&mut self, kind: u8, attrs: &[u8]) -> bool {
        let Ok(n) = u16::try_from(attrs.len()) else {
            return false;
        };
        if self.buf.len() + attrs.len() + 3 > Self::MAX_BYTES {
            return false;
        }
        let [a, b] = n.to_le_bytes();
        self.buf.extend_from_slice(&[kind, a, b]);
        self.buf.extend_from_slice(attrs);
        self.len += 1;
        true
    }

    fn front(&self) -> Option<(u8, &[u8])> {
        let h = self.buf.get(self.head..self.head + 3)?;
        let n = usize::from(u16::from_le_bytes([h[1], h[2]]));
        let attrs = self.buf.get(self.head + 3..self.head + 3 + n)?;
        Some((h[0], attrs))
    }

    fn pop(&mut self) {
        if let Some((_, a)) = self.front() {
            self.head += 3 + a.len();
            self.len -= 1;
        }
        if self.head >= self.buf.len() {
            self.buf.clear();
            self.head = 0;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hello {
    Say,
    Done,
}

/// Milliseconds after the last data message FTFW sends an ALIVE to show where the
/// numbering stands (a "tail probe").
const TAIL_PROBE_MS: u64 = 50;

/// While FTFW waits for the peer's HELLO_BACK with messages to send, how often it says
/// HELLO again (an ALIVE carrying HELLO).
const HELLO_PROBE_MS: u64 = 200;

/// How long after the handshake a loss in the peer's numbering may still concern messages
/// the peer forgot on our last HELLO (which may still be on its way when the answer comes).
const HELLO_GRACE_MS: u64 = 1000;

/// How often ALARM looks for refreshes due and external entries expired (each look walks
/// both caches once: a few milliseconds for 100,000 entries).
const ALARM_SCAN_EVERY_MS: u64 = 200;

/// The engine; see the module documentation.
#[derive(Debug)]
pub struct Engine {
    cfg: Config,
    keys: KeyHasher,
    slots: Vec<Option<Obj>>,
    free: Vec<u32>,
    index: HashMap<Key, u32, KeyBuild>,
    live: [u64; 2],
    held: [u64; 2],
    ext: Vec<Option<ExtEntry>>,
    ext_free: Vec<u32>,
    ext_index: HashMap<Key, u32, KeyBuild>,
    ext_live: [u64; 2],
    tx: VecDeque<Item>,
    rs: VecDeque<(u32, u64, Item)>,
    rs_ctl: usize,
    direct: Fifo,
    inject: Fifo,
    kernel_bulk: bool,
    purge_at: Option<u64>,
    next_seq: u32,
    hello: Hello,
    say_hello_back: bool,
    /// FTFW: a probe (ALIVE with HELLO) is due while the handshake is not done.
    probe_due: bool,
    last_probe_ms: u64,
    /// FTFW: the peer may have lost for good messages we missed (it forgets its resend
    /// queue on each HELLO, and what it sent before we heard it cannot be asked for): ask
    /// it for its whole table once the handshake is done.
    peer_risk: bool,
    /// FTFW: the end of the time after the handshake in which a gap is such a loss.
    grace_end: Option<u64>,
    /// FTFW: the peer's last number when the grace ended; a gap right after it is one too
    /// (the end of a burst lost, seen late).
    horizon: Option<u32>,
    seq_set: bool,
    last_recv: u32,
    window_left: u32,
    ack_from: Option<u32>,
    oow_run: (u32, u32),
    next_alive_ms: u64,
    next_scan_ms: u64,
    epoch: u32,
    gen: u32,
    rng: u64,
    scratch: Box<(ConntrackRepr, ConntrackRepr)>,
    stats: Stats,
    caches: [CacheStats; 4],
}

/// Writes the attributes of `entry` into `buf` as they are sent; returns the length.
/// Without `TCPWindowTracking` the window scales are left out, as conntrackd leaves them
/// out.
fn emit_ct_as_sent(
    entry: &ConntrackRepr,
    buf: &mut [u8],
    window_tracking: bool,
) -> conntrack_codec::Result<usize> {
    let len = {
        let mut w = NtaWriter::new(buf);
        emit_ct_attrs(entry, &mut w)?;
        w.len()
    };
    let wscale = matches!(
        entry.protoinfo,
        Some(ProtoInfo::Tcp(t)) if t.wscale_orig.is_some() || t.wscale_reply.is_some()
    );
    if window_tracking || !wscale {
        return Ok(len);
    }
    Ok(drop_attrs(
        buf,
        len,
        &[nta::TCP_WSCALE_ORIG, nta::TCP_WSCALE_REPL],
    ))
}

/// Takes the attributes of types `drop` out of the `len` bytes of attributes at the start of
/// `buf` (moving the others forward); returns the new length. The bytes were written by
/// the codec, so they walk; a malformed tail is left as it is.
fn drop_attrs(buf: &mut [u8], len: usize, drop: &[u16]) -> usize {
    let (mut read, mut write) = (0usize, 0usize);
    while let Some(h) = buf.get(read..read + 4) {
        let n = usize::from(u16::from_be_bytes([h[0], h[1]]));
        let kind = u16::from_be_bytes([h[2], h[3]]);
        let step = (n + 3) & !3;
        if n < 4 || read + n > len {
            break;
        }
        let step = step.min(len - read);
        if !drop.contains(&kind) {
            buf.copy_within(read..read + step, write);
            write += step;
        }
        read += step;
    }
    if read < len {
        buf.copy_within(read..len, write);
        write += len - read;
    }
    write
}

fn data_kind(expect: bool, state: ObjState) -> DataKind {
    match (expect, state) {
        (false, ObjState::New) => DataKind::CtNew,
        (false, ObjState::Alive) => DataKind::CtUpdate,
        (false, ObjState::Dead) => DataKind::CtDelete,
        (true, ObjState::New) => DataKind::ExpNew,
        (true, ObjState::Alive) => DataKind::ExpUpdate,
        (true, ObjState::Dead) => DataKind::ExpDelete,
    }
}

fn event_kind(expect: bool, kind: EventKind) -> DataKind {
    match (expect, kind) {
        (false, EventKind::New) => DataKind::CtNew,
        (false, EventKind::Update) => DataKind::CtUpdate,
        (false, EventKind::Destroy) => DataKind::CtDelete,
        (true, EventKind::New) => DataKind::ExpNew,
        (true, EventKind::Update) => DataKind::ExpUpdate,
        (true, EventKind::Destroy) => DataKind::ExpDelete,
    }
}

/// What to do with an event or a dump entry once it is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Apply {
    /// An event: send it if the kernel caused it.
    Event(EventKind, Origin),
    /// The first dump: keep, send nothing.
    Populate,
    /// A resync dump: keep, send it (new or update).
    Resync,
}

impl Engine {
    /// A new engine whose first message will carry sequence number `first_seq` (conntrackd
    /// uses the time in seconds).
    pub fn new(cfg: Config, first_seq: u32) -> Engine {
        let window = cfg.ack_window.max(1);
        Engine {
            cfg,
            keys: KeyHasher::new(),
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::with_hasher(KeyBuild),
            live: [0; 2],
            held: [0; 2],
            ext: Vec::new(),
            ext_free: Vec::new(),
            ext_index: HashMap::with_hasher(KeyBuild),
            ext_live: [0; 2],
            tx: VecDeque::new(),
            rs: VecDeque::new(),
            rs_ctl: 0,
            direct: Fifo::default(),
            inject: Fifo::default(),
            kernel_bulk: false,
            purge_at: None,
            next_seq: first_seq,
            hello: Hello::Say,
            say_hello_back: false,
            probe_due: false,
            last_probe_ms: 0,
            peer_risk: false,
            grace_end: None,
            horizon: None,
            seq_set: false,
            last_recv: 0,
            window_left: window,
            ack_from: None,
            oow_run: (0, 0),
            next_alive_ms: 0,
            next_scan_ms: 0,
            epoch: 0,
            gen: 0,
            rng: u64::from(first_seq) | 0x9e37_79b9_0000_0001,
            scratch: Box::default(),
            stats: Stats::default(),
            caches: [CacheStats::default(); 4],
        }
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// A cache's counters.
    pub fn cache_stats(&self, id: CacheId) -> CacheStats {
        let mut c = self.caches[id.index()];
        match id {
            CacheId::InternalCt | CacheId::InternalExp => {
                let e = usize::from(id == CacheId::InternalExp);
                c.active = self.live[e];
                c.objects = self.held[e];
            }
            CacheId::ExternalCt | CacheId::ExternalExp => {
                let e = usize::from(id == CacheId::ExternalExp);
                c.active = self.ext_live[e];
                c.objects = self.ext_live[e];
            }
        }
        c
    }

    /// The transmit and resend queues' counters (`conntrackd -s queue`).
    pub fn queues(&self) -> [QueueStats; 2] {
        [
            QueueStats {
                name: "txqueue",
                current: self
                    .tx
                    .iter()
                    .filter(|i| match i {
                        Item::Obj { slot, gen } => self
                            .obj(*slot)
                            .is_some_and(|o| o.gen == *gen && o.queue == Queue::Tx),
                        _ => true,
                    })
                    .count() as u64,
                max: i32::MAX as u64,
                full: 0,
            },
            QueueStats {
                name: "rsqueue",
                current: self.rs_queue().count() as u64,
                max: self.cfg.resend_ctl_max as u64,
                full: self.stats.rs_purged,
            },
        ]
    }

    /// The resend queue, oldest first (`conntrackd -s rsqueue`); empty outside FTFW.
    pub fn rs_queue(&self) -> impl Iterator<Item = RsEntry> + '_ {
        self.rs
            .iter()
            .filter(|(seq, _, item)| self.rs_item_valid(*seq, item))
            .map(|(seq, _, item)| match item {
                Item::Ctl(c) => RsEntry::Control {
                    seq: *seq,
                    flags: c.flags,
                },
                _ => RsEntry::Object { seq: *seq },
            })
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    fn rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// When an ALARM entry is due again: within `RefreshTime` seconds plus a fraction, as
    /// conntrackd draws it.
    fn refresh_delay_ms(&mut self) -> u64 {
        let secs = self.rand() % u64::from(self.cfg.refresh_s.max(1)) + 1;
        let frac = (self.rand() % 5 + 1) * 200;
        secs * 1000 + frac
    }

    // ---- the internal cache -------------------------------------------------------------

    fn obj(&self, slot: u32) -> Option<&Obj> {
        self.slots.get(slot as usize)?.as_ref()
    }

    fn obj_mut(&mut self, slot: u32) -> Option<&mut Obj> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    fn enqueue(&mut self, slot: u32) {
        let Some(o) = self.obj_mut(slot) else { return };
        if o.queue == Queue::Tx {
            return;
        }
        o.queue = Queue::Tx;
        let gen = o.gen;
        self.tx.push_back(Item::Obj { slot, gen });
    }

    fn set_state(&mut self, slot: u32, state: ObjState) {
        let Some(o) = self.obj_mut(slot) else { return };
        let (was, e) = (o.state, usize::from(o.expect));
        o.state = state;
        match (was == ObjState::Dead, state == ObjState::Dead) {
            (false, true) => self.live[e] = self.live[e].saturating_sub(1),
            (true, false) => self.live[e] += 1,
            _ => {}
        }
    }

    /// Writes the attributes of `entry` into `buf` as they are sent; returns the length.
    /// Without `TCPWindowTracking` the window scales are left out, as conntrackd leaves
    /// them out.
    fn emit_ct(&self, entry: &ConntrackRepr, buf: &mut [u8]) -> conntrack_codec::Result<usize> {
        emit_ct_as_sent(entry, buf, self.cfg.tcp_window_tracking)
    }

    /// Encodes `entry` into `buf`; returns the length and the key.
    fn encode_ct(
        &self,
        entry: &ConntrackRepr,
        buf: &mut [u8],
    ) -> conntrack_codec::Result<(usize, Key)> {
        let len = self.emit_ct(entry, buf)?;
        let key = self
            .keys
            .ct(&SyncCt::new_checked(buf.get(..len).unwrap_or(&[]))?);
        Ok((len, key))
    }

    fn encode_exp(
        &self,
        exp: &ExpectRepr,
        buf: &mut [u8],
    ) -> conntrack_codec::Result<(usize, Key)> {
        let len = {
            let mut w = NtaWriter::new(buf);
            emit_exp_attrs(exp, &mut w)?;
            w.len()
        };
        let key = self
            .keys
            .exp(&SyncExp::new_checked(buf.get(..len).unwrap_or(&[]))?);
        Ok((len, key))
    }

    /// Adds or replaces an internal entry; returns its slot, or `None` when the cache is
    /// full. `fresh` (a NEW event) makes a replaced entry new again.
    #[allow(clippy::too_many_arguments)]
    fn store(
        &mut self,
        key: Key,
        expect: bool,
        bytes: &[u8],
        now_ms: u64,
        fresh: bool,
        id: Option<u32>,
    ) -> Option<u32> {
        let epoch = self.epoch;
        let cid = if expect {
            CacheId::InternalExp
        } else {
            CacheId::InternalCt
        };
        if let Some(&s) = self.index.get(&key) {
            let alarm = self.cfg.mode == Mode::Alarm;
            let delay = if alarm { self.refresh_delay_ms() } else { 0 };
            let was_dead = self.obj(s).is_some_and(|o| o.state == ObjState::Dead);
            if let Some(o) = self.obj_mut(s) {
                o.attrs.clear();
                o.attrs.extend_from_slice(bytes);
                o.updated_ms = now_ms;
                o.epoch = epoch;
                if let Some(id) = id {
                    o.id = id;
                }
                if alarm {
                    o.refresh_ms = now_ms + delay;
                }
            }
            if fresh || was_dead {
                self.set_state(s, ObjState::New);
            }
            self.caches[cid.index()].upd_ok += 1;
            return Some(s);
        }
        // As 1.4.7's hash tables: one per cache and kind, counting the entries it holds,
        // dead ones waiting for their acknowledgement included.
        if self.held[usize::from(expect)] as usize >= self.cfg.hash_limit {
            let c = &mut self.caches[cid.index()];
            c.add_fail += 1;
            c.add_fail_enospc += 1;
            return None;
        }
        self.gen = self.gen.wrapping_add(1);
        let refresh_ms = if self.cfg.mode == Mode::Alarm {
            now_ms + self.refresh_delay_ms()
        } else {
            0
        };
        let obj = Obj {
            key,
            id: id.unwrap_or(0),
            expect,
            attrs: bytes.to_vec(),
            state: ObjState::New,
            queue: Queue::None,
            seq: 0,
            gen: self.gen,
            epoch,
            created_ms: now_ms,
            updated_ms: now_ms,
            refresh_ms,
        };
        let s = match self.free.pop() {
            Some(s) => {
                if let Some(cell) = self.slots.get_mut(s as usize) {
                    *cell = Some(obj);
                }
                s
            }
            None => {
                self.slots.push(Some(obj));
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(key, s);
        self.live[usize::from(expect)] += 1;
        self.held[usize::from(expect)] += 1;
        self.caches[cid.index()].add_ok += 1;
        Some(s)
    }

    /// A conntrack event from the kernel (`New`, `Update`, `Destroy`), as conntrackd's
    /// internal cache takes it: the filter first (unless the kernel filtered already); a new
    /// entry replaces any old one of the same tuple; an update is merged into the entry
    /// (events carry only what changed); a destroyed entry is kept, dead, until the peer
    /// acknowledged its deletion. Only events the kernel or another process caused are
    /// sent ([`Origin::Kernel`]); those of this node's commits are only kept, and those of
    /// its injections ignored.
    ///
    /// # Errors
    /// An entry without an original tuple, addresses or protocol.
    pub fn ct_event(
        &mut self,
        kind: EventKind,
        entry: &ConntrackRepr,
        origin: Origin,
        now_ms: u64,
    ) -> conntrack_codec::Result<()> {
        if !self.cfg.filter_kernelspace && !self.cfg.filter.accepts(entry) {
            self.stats.filtered += 1;
            return Ok(());
        }
        self.ct_apply(entry, Apply::Event(kind, origin), now_ms)
    }

    /// An entry of the first dump of the table: kept in the internal cache (if it passes
    /// the filter), not sent; the peer gets it when it asks (`-n`, `StartupResync`) or on a
    /// bulk send (`-B`), as with conntrackd.
    ///
    /// # Errors
    /// As [`Engine::ct_event`].
    pub fn ct_populate(
        &mut self,
        entry: &ConntrackRepr,
        now_ms: u64,
    ) -> conntrack_codec::Result<()> {
        if !self.cfg.filter.accepts(entry) {
            self.stats.filtered += 1;
            return Ok(());
        }
        self.ct_apply(entry, Apply::Populate, now_ms)
    }

    /// An entry of a resync dump (after lost events, or `-R`): kept and sent (as new or as
    /// an update); see [`Engine::begin_kernel_resync`].
    ///
    /// # Errors
    /// As [`Engine::ct_event`].
    pub fn ct_resync(&mut self, entry: &ConntrackRepr, now_ms: u64) -> conntrack_codec::Result<()> {
        if !self.cfg.filter.accepts(entry) {
            self.stats.filtered += 1;
            return Ok(());
        }
        self.ct_apply(entry, Apply::Resync, now_ms)
    }

    /// A conntrack entry appeared or changed in the kernel: [`Engine::ct_event`] with an
    /// update caused by the kernel.
    ///
    /// # Errors
    /// As [`Engine::ct_event`].
    pub fn ct_update(&mut self, entry: &ConntrackRepr, now_ms: u64) -> conntrack_codec::Result<()> {
        self.ct_event(EventKind::Update, entry, Origin::Kernel, now_ms)
    }

    /// A conntrack entry went away in the kernel: [`Engine::ct_event`] with a destroy
    /// caused by the kernel.
    ///
    /// # Errors
    /// As [`Engine::ct_event`].
    pub fn ct_destroy(&mut self, entry: &ConntrackRepr) -> conntrack_codec::Result<()> {
        self.ct_event(EventKind::Destroy, entry, Origin::Kernel, 0)
    }

    fn ct_apply(
        &mut self,
        entry: &ConntrackRepr,
        how: Apply,
        now_ms: u64,
    ) -> conntrack_codec::Result<()> {
        let mut buf = [0u8; 512];
        let (len, key) = self.encode_ct(entry, &mut buf)?;
        if let Apply::Event(_, Origin::Inject) = how {
            return Ok(());
        }
        if !self.cfg.internal_cache {
            if let Apply::Event(kind, Origin::Kernel) = how {
                self.send_direct(event_kind(false, kind), buf.get(..len).unwrap_or(&[]));
            }
            return Ok(());
        }
        let mut write_len = len;
        let kind = match how {
            Apply::Event(k, _) => k,
            _ => EventKind::Update,
        };
        if kind == EventKind::Destroy {
            self.stats.int_del += 1;
            let send = matches!(how, Apply::Event(_, Origin::Kernel));
            self.kill(CacheId::InternalCt, &key, send);
            return Ok(());
        }
        self.stats.int_upd += 1;
        if kind == EventKind::Update {
            // Fill what the event left out from the entry it updates.
            let (new, old) = &mut *self.scratch;
            let existing = self
                .index
                .get(&key)
                .and_then(|&s| self.slots.get(s as usize)?.as_ref());
            if let Some(o) = existing {
                if SyncCt::new_checked(&o.attrs)
                    .and_then(|v| v.read_into(old))
                    .is_ok()
                {
                    new.clone_from(entry);
                    fill_missing(new, old);
                    write_len = emit_ct_as_sent(new, &mut buf, self.cfg.tcp_window_tracking)?;
                }
            }
        }
        let fresh = kind == EventKind::New;
        let bytes = buf.get(..write_len).unwrap_or(&[]);
        if how == Apply::Resync {
            // An entry the peer has already (sent before, unchanged since): nothing to send.
            let same = self
                .index
                .get(&key)
                .and_then(|&s| self.obj(s))
                .is_some_and(|o| o.state == ObjState::Alive && o.attrs == bytes);
            if same {
                let epoch = self.epoch;
                if let Some(o) = self.index.get(&key).copied().and_then(|s| self.obj_mut(s)) {
                    o.epoch = epoch;
                }
                return Ok(());
            }
        }
        let Some(slot) = self.store(key, false, bytes, now_ms, fresh, entry.id) else {
            return Ok(());
        };
        match how {
            Apply::Event(_, Origin::Kernel) | Apply::Resync => self.enqueue(slot),
            _ => {}
        }
        Ok(())
    }

    /// Marks an internal entry dead and, if `send`, queues its deletion; an entry never
    /// sent, or one not to be told, goes at once.
    fn kill(&mut self, cid: CacheId, key: &Key, send: bool) {
        let Some(&s) = self.index.get(key) else {
            let c = &mut self.caches[cid.index()];
            c.del_fail += 1;
            c.del_fail_enoent += 1;
            return;
        };
        let Some((state, queue)) = self.obj(s).map(|o| (o.state, o.queue)) else {
            return;
        };
        if state == ObjState::Dead {
            return;
        }
        self.caches[cid.index()].del_ok += 1;
        let never_sent = state == ObjState::New && queue != Queue::Rs;
        if !send || never_sent {
            self.remove_slot(s);
            return;
        }
        self.set_state(s, ObjState::Dead);
        self.enqueue(s);
    }

    /// An expectation event (with `ExpectationSync`): kept and sent as conntrackd does, if
    /// its helper is one replicated and its master is in the internal cache.
    ///
    /// # Errors
    /// An expectation without master or expected tuple.
    pub fn exp_event(
        &mut self,
        kind: EventKind,
        exp: &ExpectRepr,
        origin: Origin,
        now_ms: u64,
    ) -> conntrack_codec::Result<()> {
        if !self.exp_accepts(exp) {
            self.stats.filtered += 1;
            return Ok(());
        }
        self.exp_apply(exp, Apply::Event(kind, origin), now_ms)
    }

    /// An expectation of the first dump: kept, not sent.
    ///
    /// # Errors
    /// As [`Engine::exp_event`].
    pub fn exp_populate(&mut self, exp: &ExpectRepr, now_ms: u64) -> conntrack_codec::Result<()> {
        if !self.exp_accepts(exp) {
            self.stats.filtered += 1;
            return Ok(());
        }
        self.exp_apply(exp, Apply::Populate, now_ms)
    }

    /// An expectation of a resync dump: kept and sent.
    ///
    /// # Errors
    /// As [`Engine::exp_event`].
    pub fn exp_resync(&mut self, exp: &ExpectRepr, now_ms: u64) -> conntrack_codec::Result<()> {
        if !self.exp_accepts(exp) {
            self.stats.filtered += 1;
            return Ok(());
        }
        self.exp_apply(exp, Apply::Resync, now_ms)
    }

    /// An expectation appeared or changed (kernel-caused update).
    ///
    /// # Errors
    /// As [`Engine::exp_event`].
    pub fn exp_update(&mut self, exp: &ExpectRepr, now_ms: u64) -> conntrack_codec::Result<()> {
        self.exp_event(EventKind::Update, exp, Origin::Kernel, now_ms)
    }

    /// An expectation went away (kernel-caused).
    ///
    /// # Errors
    /// As [`Engine::exp_event`].
    pub fn exp_destroy(&mut self, exp: &ExpectRepr) -> conntrack_codec::Result<()> {
        self.exp_event(EventKind::Destroy, exp, Origin::Kernel, 0)
    }

    fn exp_accepts(&mut self, exp: &ExpectRepr) -> bool {
        if !self.cfg.expectations.accepts(exp.helper.as_deref()) {
            return false;
        }
        if !self.cfg.internal_cache {
            return true;
        }
        // The master must be one of ours (conntrackd's ct_filter_master).
        let Some(master) = exp.master else {
            return false;
        };
        let m = ConntrackRepr {
            family: exp.family,
            orig: Some(master),
            zone: exp.zone,
            ..ConntrackRepr::default()
        };
        let mut buf = [0u8; 256];
        match self.encode_ct(&m, &mut buf) {
            Ok((_, key)) => self
                .index
                .get(&key)
                .and_then(|&s| self.obj(s))
                .is_some_and(|o| o.state != ObjState::Dead),
            Err(_) => false,
        }
    }

    fn exp_apply(
        &mut self,
        exp: &ExpectRepr,
        how: Apply,
        now_ms: u64,
    ) -> conntrack_codec::Result<()> {
        let mut buf = [0u8; 512];
        let (len, key) = self.encode_exp(exp, &mut buf)?;
        let bytes = buf.get(..len).unwrap_or(&[]);
        if let Apply::Event(_, Origin::Inject) = how {
            return Ok(());
        }
        if !self.cfg.internal_cache {
            if let Apply::Event(kind, Origin::Kernel) = how {
                self.send_direct(event_kind(true, kind), bytes);
            }
            return Ok(());
        }
        let kind = match how {
            Apply::Event(k, _) => k,
            _ => EventKind::Update,
        };
        if kind == EventKind::Destroy {
            let send = matches!(how, Apply::Event(_, Origin::Kernel));
            self.kill(CacheId::InternalExp, &key, send);
            return Ok(());
        }
        let Some(slot) = self.store(key, true, bytes, now_ms, kind == EventKind::New, exp.id)
        else {
            return Ok(());
        };
        match how {
            Apply::Event(_, Origin::Kernel) | Apply::Resync => self.enqueue(slot),
            _ => {}
        }
        Ok(())
    }

    fn send_direct(&mut self, kind: DataKind, attrs: &[u8]) {
        if self.direct.push(kind.number(), attrs) {
            self.tx.push_back(Item::Direct);
        } else {
            self.stats.tx_malformed += 1;
        }
    }

    fn remove_slot(&mut self, s: u32) {
        if let Some(cell) = self.slots.get_mut(s as usize) {
            if let Some(o) = cell.take() {
                self.index.remove(&o.key);
                self.free.push(s);
                let h = &mut self.held[usize::from(o.expect)];
                *h = h.saturating_sub(1);
                if o.state != ObjState::Dead {
                    let e = usize::from(o.expect);
                    self.live[e] = self.live[e].saturating_sub(1);
                }
            }
        }
    }

    /// Starts a resync with the kernel (after lost events): every entry the dump that
    /// follows passes to [`Engine::ct_resync`] is kept and sent; [`Engine::end_kernel_resync`]
    /// then deletes the others (and tells the peer).
    pub fn begin_kernel_resync(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// Ends a resync with the kernel: conntrack entries the dump did not show are gone.
    pub fn end_kernel_resync(&mut self) {
        let stale: Vec<Key> = self
            .slots
            .iter()
            .flatten()
            .filter(|o| !o.expect && o.epoch != self.epoch && o.state != ObjState::Dead)
            .map(|o| o.key)
            .collect();
        for k in stale {
            self.stats.int_del += 1;
            self.kill(CacheId::InternalCt, &k, true);
        }
    }

    /// The internal cache's live entries.
    pub fn internal(&self) -> impl Iterator<Item = IntEntry<'_>> {
        self.slots
            .iter()
            .flatten()
            .filter(|o| o.state != ObjState::Dead)
            .map(|o| IntEntry {
                attrs: &o.attrs,
                expect: o.expect,
                created_ms: o.created_ms,
                updated_ms: o.updated_ms,
                id: (o.id != 0).then_some(o.id),
            })
    }

    /// The external cache.
    pub fn external(&self) -> impl Iterator<Item = &ExtEntry> {
        self.ext.iter().flatten()
    }

    /// How many conntrack entries (not expectations) the external cache holds.
    pub fn external_ct_len(&self) -> usize {
        self.ext_live[0] as usize
    }

    /// How many expectations the external cache holds.
    pub fn external_exp_len(&self) -> usize {
        self.ext_live[1] as usize
    }

    /// Empties the internal cache (`conntrackd -f internal`); nothing is sent.
    pub fn flush_internal(&mut self) {
        self.slots.clear();
        self.free.clear();
        self.index.clear();
        self.live = [0; 2];
        self.held = [0; 2];
        self.tx.retain(|i| !matches!(i, Item::Obj { .. }));
        self.rs.retain(|(_, _, i)| !matches!(i, Item::Obj { .. }));
    }

    /// Empties the internal cache's conntrack entries, keeping its expectations (what
    /// conntrackd's scheduled purge does).
    pub fn flush_internal_ct(&mut self) {
        let ct: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.as_ref().filter(|o| !o.expect).map(|_| i as u32))
            .collect();
        for s in ct {
            self.remove_slot(s);
        }
    }

    /// Empties the external cache (`conntrackd -f external`).
    pub fn flush_external(&mut self) {
        self.ext.clear();
        self.ext_free.clear();
        self.ext_index.clear();
        self.ext_live = [0; 2];
    }

    /// Asks the peer for its whole internal cache (`conntrackd -n`; nothing in ALARM, as
    /// with conntrackd).
    pub fn request_resync(&mut self) {
        if self.cfg.mode != Mode::Alarm {
            self.push_ctl(flags::RESYNC, 0, 0);
        }
    }

    /// Queues the whole internal cache for the peer (`conntrackd -B`, or the peer's
    /// RESYNC); without an internal cache, asks the shell for a kernel dump instead
    /// ([`Engine::take_kernel_bulk`]). Nothing in ALARM, as with conntrackd.
    pub fn send_bulk(&mut self) {
        if self.cfg.mode == Mode::Alarm {
            return;
        }
        if !self.cfg.internal_cache {
            self.kernel_bulk = true;
            return;
        }
        let live: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                o.as_ref()
                    .filter(|o| o.state != ObjState::Dead)
                    .map(|_| i as u32)
            })
            .collect();
        for s in live {
            if let Some(o) = self.obj_mut(s) {
                if o.queue == Queue::Rs {
                    o.queue = Queue::None;
                }
            }
            self.enqueue(s);
        }
    }

    /// Whether the shell must dump the kernel and pass every entry to
    /// [`Engine::bulk_entry`] (a bulk send without an internal cache); true once per
    /// request.
    pub fn take_kernel_bulk(&mut self) -> bool {
        std::mem::take(&mut self.kernel_bulk)
    }

    /// An entry of the kernel dump a bulk send without internal cache asked for: sent as
    /// new (if it passes the filter).
    ///
    /// # Errors
    /// As [`Engine::ct_event`].
    pub fn bulk_entry(&mut self, entry: &ConntrackRepr) -> conntrack_codec::Result<()> {
        if !self.cfg.filter.accepts(entry) {
            self.stats.filtered += 1;
            return Ok(());
        }
        let mut buf = [0u8; 512];
        let (len, _) = self.encode_ct(entry, &mut buf)?;
        self.send_direct(DataKind::CtNew, buf.get(..len).unwrap_or(&[]));
        Ok(())
    }

    /// Schedules the purge of `conntrackd -t`: after `after_s` seconds (`PurgeTimeout`)
    /// [`Engine::take_purge`] says it is due; a pending one is kept (as conntrackd keeps its
    /// alarm).
    pub fn schedule_purge(&mut self, now_ms: u64, after_s: u32) {
        if self.purge_at.is_none() {
            self.purge_at = Some(now_ms + u64::from(after_s) * 1000);
        }
    }

    /// Cancels a scheduled purge (a commit or a flush does, in conntrackd).
    pub fn cancel_purge(&mut self) {
        self.purge_at = None;
    }

    /// Whether a purge is scheduled.
    pub fn purge_pending(&self) -> bool {
        self.purge_at.is_some()
    }

    /// Whether the scheduled purge is due now; true once. The shell then deletes the
    /// kernel's entries that pass the filter and calls [`Engine::flush_internal_ct`].
    pub fn take_purge(&mut self, now_ms: u64) -> bool {
        if self.purge_at.is_some_and(|t| now_ms >= t) {
            self.purge_at = None;
            return true;
        }
        false
    }

    /// The next entry received for the kernel (`DisableExternalCache`); call
    /// [`Engine::pop_inject`] once it is handled.
    pub fn poll_inject(&self) -> Option<Inject<'_>> {
        let (k, attrs) = self.inject.front()?;
        Some(Inject {
            kind: DataKind::from_number(k)?,
            attrs,
        })
    }

    /// Drops the entry [`Engine::poll_inject`] returned.
    pub fn pop_inject(&mut self) {
        self.inject.pop();
    }

    /// Counts the outcome of an injection (the shell calls it): for `-s cache`.
    pub fn count_inject(&mut self, kind: DataKind, ok: bool, not_found: bool) {
        let cid = if kind.is_expect() {
            CacheId::ExternalExp
        } else {
            CacheId::ExternalCt
        };
        let c = &mut self.caches[cid.index()];
        match (kind, ok) {
            (DataKind::CtNew | DataKind::ExpNew, true) => c.add_ok += 1,
            (DataKind::CtNew | DataKind::ExpNew, false) => c.add_fail += 1,
            (DataKind::CtUpdate | DataKind::ExpUpdate, true) => c.upd_ok += 1,
            (DataKind::CtUpdate | DataKind::ExpUpdate, false) => {
                c.upd_fail += 1;
                c.upd_fail_enoent += u64::from(not_found);
            }
            (_, true) => c.del_ok += 1,
            (_, false) => {
                c.del_fail += 1;
                c.del_fail_enoent += u64::from(not_found);
            }
        }
    }

    fn push_ctl(&mut self, flags: u8, from: u32, to: u32) {
        self.tx.push_back(Item::Ctl(Control {
            flags,
            seq: 0,
            from,
            to,
        }));
    }

    // ---- receiving -------------------------------------------------------------------------

    /// Takes in one datagram from the peer (or one read of a stream, whole messages only:
    /// see [`Engine::on_stream`]).
    pub fn on_datagram(&mut self, datagram: &[u8], now_ms: u64) {
        self.stats.rx_datagrams += 1;
        self.stats.rx_bytes += datagram.len() as u64;
        let _ = self.walk(datagram, now_ms, false);
    }

    /// Takes in bytes read from a stream channel (TCP): whole messages are handled, and the
    /// length of the incomplete message at the end is returned, for the caller to keep and
    /// put in front of the next read (conntrackd's framing over TCP: messages back to back,
    /// nothing else).
    pub fn on_stream(&mut self, bytes: &[u8], now_ms: u64) -> usize {
        self.stats.rx_datagrams += 1;
        self.stats.rx_bytes += bytes.len() as u64;
        self.walk(bytes, now_ms, true)
    }

    /// Walks the messages of `bytes`; with `stream`, an incomplete message at the end is
    /// not an error and its length is returned.
    fn walk(&mut self, bytes: &[u8], now_ms: u64, stream: bool) -> usize {
        let mut rest = bytes;
        while !rest.is_empty() {
            let Ok(h) = Header::parse(rest) else {
                if stream {
                    return rest.len();
                }
                self.stats.rx_malformed += 1;
                self.stats.rx_truncated += 1;
                return 0;
            };
            let len = usize::from(h.len);
            if len == 0 {
                self.stats.rx_malformed += 1;
                self.stats.rx_bad_size += 1;
                return 0;
            }
            if len > rest.len() {
                if stream && len <= 65535 {
                    return rest.len();
                }
                self.stats.rx_malformed += 1;
                self.stats.rx_bad_size += 1;
                return 0;
            }
            let min = if h.has_range() { ACK_LEN } else { HEADER_LEN };
            if len < min {
                self.stats.rx_malformed += 1;
                self.stats.rx_bad_size += 1;
                return 0;
            }
            let (msg, tail) = rest.split_at(len);
            rest = tail;
            // One message, length-checked: the codec's walk over it alone.
            if let Some(Ok(m)) = Messages::new(msg).next() {
                self.on_message(&m, now_ms);
            }
        }
        0
    }

    fn on_message(&mut self, m: &conntrack_codec::sync::Message<'_>, now_ms: u64) {
        let h = m.header();
        if h.version != VERSION {
            self.stats.rx_malformed += 1;
            self.stats.rx_bad_version += 1;
            return;
        }
        let body = match m.body() {
            Ok(b) => b,
            Err(_) => {
                self.stats.rx_malformed += 1;
                self.stats.rx_bad_header += 1;
                return;
            }
        };
        match self.cfg.mode {
            Mode::Ftfw => {
                let first = !self.seq_set;
                if !self.track(&h) {
                    return;
                }
                self.stats.rx_messages += 1;
                if m.is_hello() {
                    // Answered at once (an ALIVE, if nothing else goes first), so that
                    // the peer's handshake ends soon.
                    if !self.say_hello_back {
                        self.next_alive_ms = now_ms;
                    }
                    self.say_hello_back = true;
                }
                if m.is_hello_back() && self.hello == Hello::Say {
                    self.hello = Hello::Done;
                    self.grace_end = Some(now_ms + HELLO_GRACE_MS);
                }
                if first
                    && !m.is_hello_back()
                    && matches!(
                        body,
                        Body::Data { .. } | Body::Ack { .. } | Body::Nack { .. }
                    )
                {
                    // The peer was talking before its first message that reached us:
                    // what it sent before cannot be asked for again.
                    self.peer_risk = true;
                }
                match body {
                    Body::Data { kind, attrs } => self.apply(kind, attrs, now_ms),
                    Body::Ack { from, to } => self.on_ack(from, to),
                    Body::Nack { from, to } => self.on_nack(from, to),
                    Body::Resync => {
                        self.stats.rx_resync += 1;
                        self.send_bulk();
                    }
                    Body::Alive => {}
                }
            }
            Mode::Notrack => {
                // Data, RESYNC and ALIVE are taken; ACK and NACK are a bad header here.
                let ok = matches!(body, Body::Data { .. } | Body::Resync | Body::Alive);
                if !ok {
                    self.stats.rx_malformed += 1;
                    self.stats.rx_bad_header += 1;
                    return;
                }
                self.watch_seq(h.seq);
                self.stats.rx_messages += 1;
                match body {
                    Body::Data { kind, attrs } => self.apply(kind, attrs, now_ms),
                    Body::Resync => {
                        self.stats.rx_resync += 1;
                        self.send_bulk_notrack();
                    }
                    _ => {}
                }
            }
            Mode::Alarm => {
                // Any flag makes it a control message, which ALARM ignores.
                self.stats.rx_messages += 1;
                if h.flags != 0 {
                    return;
                }
                self.watch_seq(h.seq);
                if let Body::Data { kind, attrs } = body {
                    self.apply(kind, attrs, now_ms);
                }
            }
        }
    }

    fn send_bulk_notrack(&mut self) {
        // NOTRACK answers a RESYNC with the cache (or a kernel dump without one).
        let mode = self.cfg.mode;
        self.cfg.mode = Mode::Notrack;
        self.send_bulk();
        self.cfg.mode = mode;
    }

    /// NOTRACK and ALARM: the numbering is only watched, for the loss counters.
    fn watch_seq(&mut self, seq: u32) {
        if self.seq_set {
            let expected = self.last_recv.wrapping_add(1);
            if seq_after(seq, expected) {
                self.stats.rx_lost += u64::from(seq.wrapping_sub(expected));
            } else if seq != expected {
                self.stats.rx_before += 1;
            }
        }
        self.seq_set = true;
        self.last_recv = seq;
    }

    /// Follows the peer's numbering (FTFW); false if the message is to be dropped.
    fn track(&mut self, h: &Header) -> bool {
        let seq = h.seq;
        let expected = self.last_recv.wrapping_add(1);
        let ahead = seq_after(seq, expected) && seq.wrapping_sub(expected) <= self.cfg.max_gap;
        if !self.seq_set || (h.flags & flags::HELLO != 0 && seq != expected && !ahead) {
            // First contact, or a HELLO that does not continue the numbering: the peer
            // started again and counts from here (as conntrackd takes it); whatever it had
            // not acknowledged is sent again. A HELLO ahead of the numbering is followed as
            // any message, so that the gap before it is asked for again (conntrackd skips
            // it and acknowledges it as received: entries are lost for good).
            if self.seq_set {
                self.stats.rx_hello += 1;
                self.requeue_unacked();
            }
            self.seq_set = true;
            self.oow_run = (0, 0);
            self.ack_from = None;
            self.window_left = self.cfg.ack_window.max(1);
            return self.in_sync(seq);
        }
        if seq == expected {
            return self.in_sync(seq);
        }
        if seq_after(seq, expected) {
            if seq.wrapping_sub(expected) > self.cfg.max_gap {
                // Too far ahead: forged or stray, unless the next ones follow it.
                let (prev, run) = self.oow_run;
                self.oow_run = if run > 0 && seq == prev.wrapping_add(1) {
                    (seq, run + 1)
                } else {
                    (seq, 1)
                };
                if self.oow_run.1 < 3 {
                    self.stats.rx_out_of_window += 1;
                    return false;
                }
                // Three in a row: the peer's new numbering; ask for everything.
                self.oow_run = (0, 0);
                self.push_ctl(flags::RESYNC, 0, 0);
                self.ack_from = None;
                return self.in_sync(seq);
            }
            self.stats.rx_lost += u64::from(seq.wrapping_sub(expected));
            // conntrackd forgets its resend queue on each HELLO it receives: a gap in what
            // it sent before our last HELLO reached it cannot be filled by a NACK.
            if self.hello == Hello::Say
                || self.grace_end.is_some()
                || self.horizon == Some(self.last_recv)
            {
                self.peer_risk = true;
            }
            if let Some(from) = self.ack_from.take() {
                self.push_ctl(flags::ACK, from, expected.wrapping_sub(1));
            }
            self.push_ctl(flags::NACK, expected, seq.wrapping_sub(1));
            self.stats.tx_nack += 1;
            self.ack_from = Some(seq);
            self.window_left = self.cfg.ack_window.max(1).saturating_sub(1);
            self.last_recv = seq;
            return true;
        }
        self.stats.rx_before += 1;
        false
    }

    /// Takes `seq` as the next in order; ACKs a full window.
    fn in_sync(&mut self, seq: u32) -> bool {
        self.last_recv = seq;
        self.horizon = None;
        if self.ack_from.is_none() {
            self.ack_from = Some(seq);
        }
        self.window_left = self.window_left.saturating_sub(1);
        if self.window_left == 0 {
            let from = self.ack_from.take().unwrap_or(seq);
            self.push_ctl(flags::ACK, from, seq);
            self.window_left = self.cfg.ack_window.max(1);
        }
        true
    }

    fn apply(&mut self, kind: DataKind, attrs: &[u8], now_ms: u64) {
        let key = if kind.is_expect() {
            match SyncExp::new_checked(attrs).and_then(|v| v.to_repr().map(|_| self.keys.exp(&v))) {
                Ok(k) => k,
                Err(_) => {
                    self.stats.rx_malformed += 1;
                    self.stats.rx_bad_payload += 1;
                    return;
                }
            }
        } else {
            let (r, _) = &mut *self.scratch;
            match SyncCt::new_checked(attrs).and_then(|v| v.read_into(r).map(|_| v)) {
                Ok(v) => self.keys.ct(&v),
                Err(_) => {
                    self.stats.rx_malformed += 1;
                    self.stats.rx_bad_payload += 1;
                    return;
                }
            }
        };
        if !self.cfg.external_cache {
            if self.inject.push(kind.number(), attrs) {
                self.stats.injected += 1;
            } else {
                self.stats.inject_dropped += 1;
            }
            return;
        }
        let e = usize::from(kind.is_expect());
        let cid = if kind.is_expect() {
            CacheId::ExternalExp
        } else {
            CacheId::ExternalCt
        };
        match kind {
            DataKind::CtDelete | DataKind::ExpDelete => match self.ext_index.remove(&key) {
                Some(s) => {
                    if let Some(cell) = self.ext.get_mut(s as usize) {
                        *cell = None;
                    }
                    self.ext_free.push(s);
                    self.ext_live[e] = self.ext_live[e].saturating_sub(1);
                    self.stats.ext_del += 1;
                    self.caches[cid.index()].del_ok += 1;
                }
                None => {
                    let c = &mut self.caches[cid.index()];
                    c.del_fail += 1;
                    c.del_fail_enoent += 1;
                }
            },
            _ => {
                let slot = self.ext_index.get(&key).copied();
                match slot.and_then(|s| self.ext.get_mut(s as usize)?.as_mut()) {
                    Some(x) => {
                        x.attrs.clear();
                        x.attrs.extend_from_slice(attrs);
                        x.updated_ms = now_ms;
                        self.stats.ext_upd += 1;
                        self.caches[cid.index()].upd_ok += 1;
                    }
                    None => {
                        if self.ext_live[e] as usize >= self.cfg.hash_limit {
                            let c = &mut self.caches[cid.index()];
                            c.add_fail += 1;
                            c.add_fail_enospc += 1;
                            return;
                        }
                        let entry = ExtEntry {
                            attrs: attrs.to_vec(),
                            expect: kind.is_expect(),
                            created_ms: now_ms,
                            updated_ms: now_ms,
                            key,
                        };
                        let s = match self.ext_free.pop() {
                            Some(s) => {
                                if let Some(cell) = self.ext.get_mut(s as usize) {
                                    *cell = Some(entry);
                                }
                                s
                            }
                            None => {
                                self.ext.push(Some(entry));
                                (self.ext.len() - 1) as u32
                            }
                        };
                        self.ext_index.insert(key, s);
                        self.ext_live[e] += 1;
                        self.stats.ext_new += 1;
                        self.caches[cid.index()].add_ok += 1;
                    }
                }
            }
        }
    }

    fn rs_item_valid(&self, seq: u32, item: &Item) -> bool {
        match item {
            Item::Ctl(_) | Item::Direct => true,
            Item::Obj { slot, gen } => self
                .obj(*slot)
                .is_some_and(|o| o.gen == *gen && o.queue == Queue::Rs && o.seq == seq),
        }
    }

    /// Takes out the front of the resend queue up to (not including) the first valid item
    /// for which `stop` holds; invalid items are dropped on the way. The queue is in the
    /// order messages were sent: by sequence number and by time.
    fn rs_front(&mut self, stop: impl Fn(u32, u64) -> bool) -> Vec<(u32, u64, Item)> {
        let mut out = Vec::new();
        while let Some(&(seq, sent, item)) = self.rs.front() {
            if !self.rs_item_valid(seq, &item) {
                if matches!(item, Item::Ctl(_)) {
                    self.rs_ctl = self.rs_ctl.saturating_sub(1);
                }
                self.rs.pop_front();
                continue;
            }
            if stop(seq, sent) {
                break;
            }
            self.rs.pop_front();
            out.push((seq, sent, item));
        }
        out
    }

    /// Puts back at the front of the resend queue what [`Engine::rs_front`] took and the
    /// caller keeps, in the same order.
    fn rs_put_back(&mut self, kept: Vec<(u32, u64, Item)>) {
        for x in kept.into_iter().rev() {
            self.rs.push_front(x);
        }
    }

    fn on_ack(&mut self, from: u32, to: u32) {
        let front = self.rs_front(|seq, _| seq_after(seq, to));
        let mut kept = Vec::new();
        let mut done = Vec::new();
        for (seq, sent, item) in front {
            if !seq_between(seq, from, to) {
                kept.push((seq, sent, item));
                continue;
            }
            match item {
                Item::Ctl(_) => self.rs_ctl = self.rs_ctl.saturating_sub(1),
                Item::Obj { slot, .. } => done.push(slot),
                Item::Direct => {}
            }
        }
        self.rs_put_back(kept);
        for s in done {
            let state = self.obj(s).map(|o| o.state);
            match state {
                Some(ObjState::Dead) => self.remove_slot(s),
                Some(_) => {
                    if let Some(o) = self.obj_mut(s) {
                        o.queue = Queue::None;
                    }
                }
                None => {}
            }
        }
    }

    fn on_nack(&mut self, from: u32, to: u32) {
        self.stats.rx_nack += 1;
        let front = self.rs_front(|seq, _| seq_after(seq, to));
        let mut kept = Vec::new();
        let mut again = Vec::new();
        for (seq, sent, item) in front {
            if seq_between(seq, from, to) {
                again.push(item);
            } else {
                kept.push((seq, sent, item));
            }
        }
        self.rs_put_back(kept);
        self.resend(again);
    }

    fn resend(&mut self, items: Vec<Item>) {
        for item in items {
            match item {
                Item::Ctl(mut c) => {
                    self.rs_ctl = self.rs_ctl.saturating_sub(1);
                    c.flags &= !(flags::HELLO | flags::HELLO_BACK);
                    self.tx.push_back(Item::Ctl(c));
                }
                Item::Obj { slot, .. } => {
                    self.stats.tx_resent += 1;
                    if let Some(o) = self.obj_mut(slot) {
                        o.queue = Queue::None;
                    }
                    self.enqueue(slot);
                }
                Item::Direct => {}
            }
        }
    }

    /// Sends again every data message not acknowledged yet (the peer started again).
    fn requeue_unacked(&mut self) {
        let rs = std::mem::take(&mut self.rs);
        let mut again = Vec::new();
        for (seq, _, item) in rs {
            if matches!(item, Item::Obj { .. }) && self.rs_item_valid(seq, &item) {
                again.push(item);
            }
        }
        self.rs_ctl = 0;
        self.resend(again);
    }

    // ---- timers ----------------------------------------------------------------------------

    /// Called regularly (every few hundred ms at most): FTFW queues an ALIVE (or the pending
    /// ACK) after a second of silence and queues again the data messages left
    /// unacknowledged too long; NOTRACK queues an ALIVE after a second of silence; ALARM
    /// queues the entries whose refresh is due and forgets the external entries not
    /// refreshed for `CacheTimeout`.
    pub fn on_tick(&mut self, now_ms: u64) {
        match self.cfg.mode {
            Mode::Ftfw => self.tick_ftfw(now_ms),
            Mode::Notrack => {
                if now_ms >= self.next_alive_ms && self.tx.is_empty() {
                    self.push_ctl(flags::ALIVE, 0, 0);
                    self.next_alive_ms = now_ms + self.cfg.alive_ms;
                }
            }
            Mode::Alarm => {
                if now_ms >= self.next_scan_ms {
                    self.next_scan_ms = now_ms + ALARM_SCAN_EVERY_MS;
                    self.tick_alarm(now_ms);
                }
            }
        }
    }

    fn tick_ftfw(&mut self, now_ms: u64) {
        if self.hello == Hello::Say {
            // Nothing but HELLOs goes out before the peer answered one: conntrackd does not
            // look for gaps before a message that says HELLO (and acknowledges them), so
            // data sent now could be lost for good. The HELLO is said again soon while
            // something waits, else once a second.
            let every = if self.tx.is_empty() {
                self.cfg.alive_ms
            } else {
                HELLO_PROBE_MS
            };
            if now_ms >= self.next_alive_ms || now_ms >= self.last_probe_ms + every {
                self.probe_due = true;
            }
            return;
        }
        if let Some(end) = self.grace_end {
            if now_ms >= end {
                self.grace_end = None;
                self.horizon = self.seq_set.then_some(self.last_recv);
            }
        }
        if self.peer_risk {
            // Whatever the peer forgot, it sends again with its whole table; a RESYNC sent
            // now reaches it after our last HELLO.
            self.peer_risk = false;
            self.stats.tx_resync_recover += 1;
            self.push_ctl(flags::RESYNC, 0, 0);
        }
        if now_ms >= self.next_alive_ms && self.tx.is_empty() {
            match self.ack_from {
                Some(from) if self.seq_set => {
                    self.push_ctl(flags::ACK, from, self.last_recv);
                    self.ack_from = None;
                }
                _ => self.push_ctl(flags::ALIVE, 0, 0),
            }
            self.next_alive_ms = now_ms + self.cfg.alive_ms;
        }
        // Data messages unacknowledged for resend_ms go again; the queue is in sending
        // order, so only its front can be due.
        let resend_ms = self.cfg.resend_ms;
        let front = self.rs_front(|_, sent| sent + resend_ms > now_ms);
        let mut kept = Vec::new();
        let mut late = Vec::new();
        for (seq, sent, item) in front {
            if matches!(item, Item::Obj { .. }) {
                late.push(item);
            } else {
                kept.push((seq, sent, item));
            }
        }
        self.rs_put_back(kept);
        self.resend(late);
    }

    fn tick_alarm(&mut self, now_ms: u64) {
        // Refreshes due: queue them (as updates) and draw the next moment.
        let due: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                o.as_ref()
                    .filter(|o| o.state != ObjState::Dead && o.refresh_ms <= now_ms)
                    .map(|_| i as u32)
            })
            .collect();
        for s in due {
            let delay = self.refresh_delay_ms();
            if let Some(o) = self.obj_mut(s) {
                o.refresh_ms = now_ms + delay;
                if o.queue == Queue::Tx {
                    continue;
                }
            }
            self.stats.tx_refresh += 1;
            self.enqueue(s);
        }
        // External entries no message refreshed for CacheTimeout: gone.
        let timeout = u64::from(self.cfg.cache_timeout_s) * 1000;
        let expired: Vec<u32> = self
            .ext
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                e.as_ref()
                    .filter(|e| e.updated_ms + timeout <= now_ms)
                    .map(|_| i as u32)
            })
            .collect();
        for s in expired {
            if let Some(e) = self.ext.get_mut(s as usize).and_then(Option::take) {
                self.ext_index.remove(&e.key);
                self.ext_free.push(s);
                let x = usize::from(e.expect);
                self.ext_live[x] = self.ext_live[x].saturating_sub(1);
                self.stats.ext_expired += 1;
            }
        }
    }

    /// When [`Engine::on_tick`] next has something to do (milliseconds, on the clock of
    /// the `now_ms` given to the engine): an ALIVE or a pending acknowledgement, a HELLO
    /// said again, a message to send again, a refresh, a purge. A caller that sleeps until
    /// then, or until a datagram or an event arrives, misses nothing; `None` when no timer
    /// runs. With output waiting ([`Engine::has_output`]) it is now.
    pub fn next_timer(&self) -> Option<u64> {
        let mut t = self.purge_at;
        let mut at = |x: u64| t = Some(t.map_or(x, |y| y.min(x)));
        match self.cfg.mode {
            Mode::Ftfw if self.holding() => {
                let every = if self.tx.is_empty() {
                    self.cfg.alive_ms
                } else {
                    HELLO_PROBE_MS
                };
                at(self.next_alive_ms.min(self.last_probe_ms + every));
            }
            Mode::Ftfw => {
                at(self.next_alive_ms);
                if let Some(g) = self.grace_end {
                    at(g);
                }
                if self.peer_risk {
                    at(0);
                }
                // The oldest data message waiting for its acknowledgement (control
                // messages are only sent again when NACKed).
                let due = self
                    .rs
                    .iter()
                    .find(|(seq, _, item)| {
                        matches!(item, Item::Obj { .. }) && self.rs_item_valid(*seq, item)
                    })
                    .map(|(_, sent, _)| sent + self.cfg.resend_ms);
                if let Some(d) = due {
                    at(d);
                }
            }
            Mode::Notrack => at(self.next_alive_ms),
            Mode::Alarm => at(self.next_scan_ms),
        }
        if self.has_output() {
            at(0);
        }
        t
    }

    // ---- sending ---------------------------------------------------------------------------

    /// Whether there is something to send.
    pub fn has_output(&self) -> bool {
        if self.holding() {
            return self.probe_due;
        }
        !self.tx.is_empty()
    }

    /// FTFW before the handshake: only HELLOs go out.
    fn holding(&self) -> bool {
        self.cfg.mode == Mode::Ftfw && self.hello == Hello::Say
    }

    /// How many messages wait to be sent.
    pub fn tx_len(&self) -> usize {
        self.tx.len()
    }

    fn hello_flags(&self) -> u8 {
        if self.cfg.mode != Mode::Ftfw {
            return 0;
        }
        let mut f = 0;
        if self.hello == Hello::Say {
            f |= flags::HELLO;
        }
        if self.say_hello_back {
            f |= flags::HELLO_BACK;
        }
        f
    }

    /// Builds the next datagram into `buf` (up to `max_datagram` bytes) and returns its
    /// length, or `None` when there is nothing to send.
    pub fn poll_transmit(&mut self, now_ms: u64, buf: &mut [u8]) -> Option<usize> {
        if self.holding() {
            return self.transmit_probe(now_ms, buf);
        }
        let limit = self.cfg.max_datagram.min(buf.len());
        let mut pos = 0usize;
        let mut data_sent = false;
        while let Some(mut item) = self.tx.pop_front() {
            let Some(out) = buf.get_mut(pos..limit) else {
                self.tx.push_front(item);
                break;
            };
            let seq = self.next_seq;
            let hello = self.hello_flags();
            let written = match item {
                Item::Ctl(mut c) => {
                    c.seq = seq;
                    if c.buffer_len() > out.len() {
                        self.tx.push_front(item);
                        break;
                    }
                    c.flags |= hello;
                    let n = c.emit(out).ok();
                    // Kept as sent (for `-s rsqueue`); a resend drops the HELLO flags.
                    item = Item::Ctl(c);
                    n
                }
                Item::Direct => {
                    let Some((k, attrs)) = self.direct.front() else {
                        continue;
                    };
                    let len = HEADER_LEN + attrs.len();
                    if len > out.len() {
                        if pos == 0 {
                            self.direct.pop();
                            self.stats.tx_malformed += 1;
                            continue;
                        }
                        self.tx.push_front(item);
                        break;
                    }
                    let hdr = Header {
                        version: VERSION,
                        kind: k,
                        flags: hello,
                        len: len as u16,
                        seq,
                    };
                    let ok = hdr.emit(out).is_ok();
                    if let Some(dst) = out.get_mut(HEADER_LEN..len) {
                        dst.copy_from_slice(attrs);
                    }
                    self.direct.pop();
                    ok.then_some(len)
                }
                Item::Obj { slot, gen } => {
                    let Some(o) = self
                        .obj(slot)
                        .filter(|o| o.gen == gen && o.queue == Queue::Tx)
                    else {
                        continue;
                    };
                    let len = HEADER_LEN + o.attrs.len();
                    if len > out.len() {
                        if pos == 0 {
                            // Larger than a datagram: cannot be sent at all.
                            self.stats.tx_malformed += 1;
                            if let Some(o) = self.obj_mut(slot) {
                                o.queue = Queue::None;
                            }
                            continue;
                        }
                        self.tx.push_front(item);
                        break;
                    }
                    let hdr = Header {
                        version: VERSION,
                        kind: data_kind(o.expect, o.state).number(),
                        flags: hello,
                        len: len as u16,
                        seq,
                    };
                    let ok = hdr.emit(out).is_ok();
                    if let Some(dst) = out.get_mut(HEADER_LEN..len) {
                        dst.copy_from_slice(&o.attrs);
                    }
                    ok.then_some(len)
                }
            };
            let Some(n) = written else { continue };
            self.say_hello_back = false;
            pos += n;
            self.next_seq = seq.wrapping_add(1);
            self.stats.tx_messages += 1;
            data_sent |= !matches!(item, Item::Ctl(_));
            self.sent(item, seq, now_ms);
        }
        if pos == 0 {
            return None;
        }
        self.stats.tx_datagrams += 1;
        self.stats.tx_bytes += pos as u64;
        // FTFW: shortly after the last data, an ALIVE (or the pending ACK) tells the peer
        // the last number sent, so that losing the end of a burst is noticed (and NACKed)
        // at once rather than a second later.
        let probe = self.cfg.mode == Mode::Ftfw && data_sent;
        self.next_alive_ms = now_ms
            + if probe {
                TAIL_PROBE_MS
            } else {
                self.cfg.alive_ms
            };
        Some(pos)
    }

    /// FTFW before the handshake: the due HELLO, as an ALIVE (with HELLO_BACK if the peer
    /// said HELLO too).
    fn transmit_probe(&mut self, now_ms: u64, buf: &mut [u8]) -> Option<usize> {
        if !self.probe_due {
            return None;
        }
        let c = Control {
            flags: flags::ALIVE | self.hello_flags(),
            seq: self.next_seq,
            from: 0,
            to: 0,
        };
        let n = c.emit(buf).ok()?;
        self.probe_due = false;
        self.say_hello_back = false;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.last_probe_ms = now_ms;
        self.next_alive_ms = now_ms + self.cfg.alive_ms;
        self.stats.tx_messages += 1;
        self.stats.tx_datagrams += 1;
        self.stats.tx_bytes += n as u64;
        Some(n)
    }

    /// Bookkeeping once `item` went out with number `seq`.
    fn sent(&mut self, item: Item, seq: u32, now_ms: u64) {
        let ftfw = self.cfg.mode == Mode::Ftfw;
        if ftfw && matches!(item, Item::Ctl(c) if c.flags & flags::RESYNC != 0) {
            // The peer sends its whole table after this, and after every HELLO of ours
            // (which went before): nothing is left to recover.
            self.peer_risk = false;
            self.grace_end = None;
            self.horizon = None;
        }
        match item {
            Item::Ctl(c) if ftfw && c.flags & (flags::ACK | flags::NACK | flags::RESYNC) != 0 => {
                let c = Control { seq, ..c };
                self.rs.push_back((seq, now_ms, Item::Ctl(c)));
                self.rs_ctl += 1;
                while self.rs_ctl > self.cfg.resend_ctl_max {
                    match self
                        .rs
                        .iter()
                        .position(|(_, _, i)| matches!(i, Item::Ctl(_)))
                    {
                        Some(p) => {
                            self.rs.remove(p);
                            self.rs_ctl -= 1;
                            self.stats.rs_purged += 1;
                        }
                        None => break,
                    }
                }
            }
            Item::Ctl(_) | Item::Direct => {}
            Item::Obj { slot, gen } => {
                let dead = self.obj(slot).is_some_and(|o| o.state == ObjState::Dead);
                if !ftfw {
                    // Sent once: nothing waits for an acknowledgement.
                    if dead {
                        self.remove_slot(slot);
                        return;
                    }
                    if let Some(o) = self.obj_mut(slot) {
                        o.queue = Queue::None;
                        o.state = ObjState::Alive;
                    }
                    return;
                }
                if let Some(o) = self.obj_mut(slot) {
                    o.queue = Queue::Rs;
                    o.seq = seq;
                    if o.state == ObjState::New {
                        o.state = ObjState::Alive;
                    }
                }
                self.rs.push_back((seq, now_ms, Item::Obj { slot, gen }));
            }
        }
    }
}
