//! The sans-IO engine: the internal cache (what this node's kernel has), the external cache
//! (what the peer sent), and FTFW reliability. It is driven by cache events, received
//! datagrams and clock ticks, and hands out datagrams to send; it never touches a socket or
//! reads a clock (times are milliseconds given by the caller).

use std::collections::{HashMap, VecDeque};

use conntrack_codec::ct::ConntrackRepr;
use conntrack_codec::exp::ExpectRepr;
use conntrack_codec::sync::{
    emit_ct_attrs, emit_exp_attrs, flags, seq_after, seq_between, Body, Control, DataKind, Header,
    Messages, NtaWriter, SyncCt, SyncExp, HEADER_LEN, VERSION,
};

use crate::cache::{fill_missing, Key};

/// The engine's settings (conntrackd's `Sync { Mode FTFW { ... } }` and friends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Messages received between two ACKs (`ACKWindowSize`, 300 in conntrackd).
    pub ack_window: u32,
    /// The most control messages kept for resending (`ResendQueueSize` counts them and the
    /// objects in conntrackd; objects are bounded by the cache here).
    pub resend_ctl_max: usize,
    /// The largest datagram to send (conntrackd: the interface MTU minus 28).
    pub max_datagram: usize,
    /// Milliseconds of silence before an ALIVE (or a pending ACK) is sent (1000).
    pub alive_ms: u64,
    /// Milliseconds after which a data message the peer neither acknowledged nor asked for
    /// again is sent again (conntrackd has no such timer; see the crate documentation).
    pub resend_ms: u64,
    /// The largest forward jump of the peer's sequence number accepted without HELLO: a
    /// message further ahead is dropped as forged or stray (counted), unless three in a row
    /// agree, which is taken as the peer's new numbering.
    pub max_gap: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ack_window: 300,
            resend_ctl_max: 131_072,
            max_datagram: 1472,
            alive_ms: 1000,
            resend_ms: 3000,
            max_gap: 1 << 20,
        }
    }
}

/// Counters for `conntrackd -s` and for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams received.
    pub rx_datagrams: u64,
    /// Messages received and accepted (data and control).
    pub rx_messages: u64,
    /// Messages whose framing or header was wrong (dropped, sequence not followed).
    pub rx_malformed: u64,
    /// Data messages whose attributes did not parse (dropped, sequence followed).
    pub rx_bad_payload: u64,
    /// Messages lost on the way in (gaps in the peer's numbering).
    pub rx_lost: u64,
    /// Messages that came too late or twice (before the expected number): dropped.
    pub rx_before: u64,
    /// Messages too far ahead without HELLO: dropped as forged or stray.
    pub rx_out_of_window: u64,
    /// Times the peer started again (HELLO with a new numbering).
    pub rx_hello: u64,
    /// NACKs received, and messages sent again because of them.
    pub rx_nack: u64,
    /// RESYNC requests received.
    pub rx_resync: u64,
    /// Datagrams handed out to send.
    pub tx_datagrams: u64,
    /// Messages handed out to send.
    pub tx_messages: u64,
    /// Data messages sent again (NACK, timer, HELLO).
    pub tx_resent: u64,
    /// NACKs sent.
    pub tx_nack: u64,
    /// Control messages dropped from a full resend queue.
    pub rs_purged: u64,
    /// Entries created, updated, deleted in the external cache by the peer.
    pub ext_new: u64,
    /// See `ext_new`.
    pub ext_upd: u64,
    /// See `ext_new`.
    pub ext_del: u64,
    /// Internal cache events taken in (new or update, destroy).
    pub int_upd: u64,
    /// See `int_upd`.
    pub int_del: u64,
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
    expect: bool,
    attrs: Vec<u8>,
    state: ObjState,
    queue: Queue,
    seq: u32,
    gen: u32,
    epoch: u32,
    created_ms: u64,
    updated_ms: u64,
}

#[derive(Debug, Clone, Copy)]
enum Item {
    Obj { slot: u32, gen: u32 },
    Ctl(Control),
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hello {
    Say,
    Done,
}

/// The engine; see the module documentation.
#[derive(Debug)]
pub struct Engine {
    cfg: Config,
    slots: Vec<Option<Obj>>,
    free: Vec<u32>,
    index: HashMap<Key, u32>,
    external: HashMap<Key, ExtEntry>,
    tx: VecDeque<Item>,
    rs: VecDeque<(u32, u64, Item)>,
    rs_ctl: usize,
    next_seq: u32,
    hello: Hello,
    say_hello_back: bool,
    seq_set: bool,
    last_recv: u32,
    window_left: u32,
    ack_from: Option<u32>,
    oow_run: (u32, u32),
    next_alive_ms: u64,
    epoch: u32,
    gen: u32,
    scratch: Box<(ConntrackRepr, ConntrackRepr)>,
    stats: Stats,
}

impl Engine {
    /// A new engine whose first message will carry sequence number `first_seq` (conntrackd
    /// uses the time in seconds).
    pub fn new(cfg: Config, first_seq: u32) -> Engine {
        Engine {
            cfg,
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            external: HashMap::new(),
            tx: VecDeque::new(),
            rs: VecDeque::new(),
            rs_ctl: 0,
            next_seq: first_seq,
            hello: Hello::Say,
            say_hello_back: false,
            seq_set: false,
            last_recv: 0,
            window_left: cfg.ack_window.max(1),
            ack_from: None,
            oow_run: (0, 0),
            next_alive_ms: 0,
            epoch: 0,
            gen: 0,
            scratch: Box::default(),
            stats: Stats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.cfg
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

    fn upsert(&mut self, key: Key, expect: bool, now_ms: u64, write: impl FnOnce(&mut Vec<u8>)) {
        let epoch = self.epoch;
        let slot = match self.index.get(&key) {
            Some(&s) => {
                if let Some(o) = self.obj_mut(s) {
                    write(&mut o.attrs);
                    if o.state == ObjState::Dead {
                        o.state = ObjState::New;
                    }
                    o.updated_ms = now_ms;
                    o.epoch = epoch;
                }
                s
            }
            None => {
                let mut attrs = Vec::new();
                write(&mut attrs);
                self.gen = self.gen.wrapping_add(1);
                let obj = Obj {
                    key: key.clone(),
                    expect,
                    attrs,
                    state: ObjState::New,
                    queue: Queue::None,
                    seq: 0,
                    gen: self.gen,
                    epoch,
                    created_ms: now_ms,
                    updated_ms: now_ms,
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
                s
            }
        };
        self.enqueue(slot);
    }

    /// A conntrack entry appeared or changed in the kernel (an event, or a dump entry):
    /// merge it into the internal cache and queue it for the peer.
    ///
    /// # Errors
    /// An entry without an original tuple, addresses or protocol.
    pub fn ct_update(&mut self, entry: &ConntrackRepr, now_ms: u64) -> conntrack_codec::Result<()> {
        let (new, old) = &mut *self.scratch;
        new.clone_from(entry);
        // The key from the entry as it will travel.
        let mut buf = [0u8; 512];
        let len = {
            let mut w = NtaWriter::new(&mut buf);
            emit_ct_attrs(new, &mut w)?;
            w.len()
        };
        let key = Key::ct(&SyncCt::new_checked(&buf[..len])?);
        let mut write_len = len;
        if let Some(o) = self
            .index
            .get(&key)
            .and_then(|&s| self.slots.get(s as usize)?.as_ref())
        {
            if SyncCt::new_checked(&o.attrs)
                .and_then(|v| v.read_into(old))
                .is_ok()
            {
                fill_missing(new, old);
                let mut w = NtaWriter::new(&mut buf);
                emit_ct_attrs(new, &mut w)?;
                write_len = w.len();
            }
        }
        self.stats.int_upd += 1;
        let bytes = &buf[..write_len];
        self.upsert(key, false, now_ms, |v| {
            v.clear();
            v.extend_from_slice(bytes);
        });
        Ok(())
    }

    /// A conntrack entry went away in the kernel: tell the peer (the entry stays, dead, until
    /// the peer acknowledged it).
    ///
    /// # Errors
    /// An entry without an original tuple, addresses or protocol.
    pub fn ct_destroy(&mut self, entry: &ConntrackRepr) -> conntrack_codec::Result<()> {
        let mut buf = [0u8; 512];
        let mut w = NtaWriter::new(&mut buf);
        emit_ct_attrs(entry, &mut w)?;
        let len = w.len();
        let key = Key::ct(&SyncCt::new_checked(&buf[..len])?);
        self.stats.int_del += 1;
        self.kill(&key);
        Ok(())
    }

    fn kill(&mut self, key: &Key) {
        if let Some(&s) = self.index.get(key) {
            let fresh = self
                .obj(s)
                .is_some_and(|o| o.state == ObjState::New && o.queue == Queue::Tx);
            if fresh {
                // Never sent: nothing to tell the peer.
                self.remove_slot(s);
                return;
            }
            if let Some(o) = self.obj_mut(s) {
                o.state = ObjState::Dead;
            }
            self.enqueue(s);
        }
    }

    /// An expectation appeared or changed (with `ExpectationSync`).
    ///
    /// # Errors
    /// An expectation without master or expected tuple.
    pub fn exp_update(&mut self, exp: &ExpectRepr, now_ms: u64) -> conntrack_codec::Result<()> {
        let mut buf = [0u8; 512];
        let mut w = NtaWriter::new(&mut buf);
        emit_exp_attrs(exp, &mut w)?;
        let len = w.len();
        let key = Key::exp(&SyncExp::new_checked(&buf[..len])?);
        let bytes = &buf[..len];
        self.upsert(key, true, now_ms, |v| {
            v.clear();
            v.extend_from_slice(bytes);
        });
        Ok(())
    }

    /// An expectation went away.
    ///
    /// # Errors
    /// An expectation without master or expected tuple.
    pub fn exp_destroy(&mut self, exp: &ExpectRepr) -> conntrack_codec::Result<()> {
        let mut buf = [0u8; 512];
        let mut w = NtaWriter::new(&mut buf);
        emit_exp_attrs(exp, &mut w)?;
        let len = w.len();
        let key = Key::exp(&SyncExp::new_checked(&buf[..len])?);
        self.kill(&key);
        Ok(())
    }

    fn remove_slot(&mut self, s: u32) {
        if let Some(cell) = self.slots.get_mut(s as usize) {
            if let Some(o) = cell.take() {
                self.index.remove(&o.key);
                self.free.push(s);
            }
        }
    }

    /// Starts a resync with the kernel (after lost events): every entry the dump that
    /// follows passes to [`Engine::ct_update`] is kept; [`Engine::end_kernel_resync`] then
    /// deletes the others.
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
            .map(|o| o.key.clone())
            .collect();
        for k in stale {
            self.stats.int_del += 1;
            self.kill(&k);
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
            })
    }

    /// The external cache.
    pub fn external(&self) -> impl Iterator<Item = &ExtEntry> {
        self.external.values()
    }

    /// How many conntrack entries (not expectations) the external cache holds.
    pub fn external_ct_len(&self) -> usize {
        self.external.values().filter(|e| !e.expect).count()
    }

    /// Empties the internal cache (`conntrackd -f internal`); nothing is sent.
    pub fn flush_internal(&mut self) {
        self.slots.clear();
        self.free.clear();
        self.index.clear();
        self.tx.retain(|i| matches!(i, Item::Ctl(_)));
        self.rs.retain(|(_, _, i)| matches!(i, Item::Ctl(_)));
    }

    /// Empties the external cache (`conntrackd -f external`).
    pub fn flush_external(&mut self) {
        self.external.clear();
    }

    /// Asks the peer for its whole internal cache (`conntrackd -n`).
    pub fn request_resync(&mut self) {
        self.push_ctl(flags::RESYNC, 0, 0);
    }

    /// Sends the whole internal cache to the peer (`conntrackd -B`, and the answer to RESYNC).
    pub fn send_bulk(&mut self) {
        let slots: Vec<u32> = self.index.values().copied().collect();
        for s in slots {
            if self.obj(s).is_some_and(|o| o.state != ObjState::Dead) {
                self.enqueue(s);
            }
        }
    }

    fn push_ctl(&mut self, fl: u8, from: u32, to: u32) {
        self.tx.push_back(Item::Ctl(Control {
            flags: fl,
            seq: 0,
            from,
            to,
        }));
    }

    // ---- receiving -----------------------------------------------------------------------

    /// Takes in one datagram from the peer (the caller checked its source address).
    pub fn on_datagram(&mut self, datagram: &[u8], now_ms: u64) {
        self.stats.rx_datagrams += 1;
        for m in Messages::new(datagram) {
            let Ok(m) = m else {
                self.stats.rx_malformed += 1;
                break;
            };
            let Ok(body) = m.body() else {
                self.stats.rx_malformed += 1;
                continue;
            };
            if !self.track(&m.header()) {
                continue;
            }
            self.stats.rx_messages += 1;
            if m.is_hello() {
                self.say_hello_back = true;
            }
            if m.is_hello_back() {
                self.hello = Hello::Done;
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
    }

    /// Follows the peer's numbering; false if the message is to be dropped.
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
            match SyncExp::new_checked(attrs).and_then(|v| v.to_repr().map(|_| Key::exp(&v))) {
                Ok(k) => k,
                Err(_) => {
                    self.stats.rx_bad_payload += 1;
                    return;
                }
            }
        } else {
            let (r, _) = &mut *self.scratch;
            match SyncCt::new_checked(attrs).and_then(|v| v.read_into(r).map(|_| Key::ct(&v))) {
                Ok(k) => k,
                Err(_) => {
                    self.stats.rx_bad_payload += 1;
                    return;
                }
            }
        };
        match kind {
            DataKind::CtDelete | DataKind::ExpDelete => {
                if self.external.remove(&key).is_some() {
                    self.stats.ext_del += 1;
                }
            }
            _ => match self.external.get_mut(&key) {
                Some(e) => {
                    e.attrs.clear();
                    e.attrs.extend_from_slice(attrs);
                    e.updated_ms = now_ms;
                    self.stats.ext_upd += 1;
                }
                None => {
                    self.external.insert(
                        key,
                        ExtEntry {
                            attrs: attrs.to_vec(),
                            expect: kind.is_expect(),
                            created_ms: now_ms,
                            updated_ms: now_ms,
                        },
                    );
                    self.stats.ext_new += 1;
                }
            },
        }
    }

    fn rs_item_valid(&self, seq: u32, item: &Item) -> bool {
        match item {
            Item::Ctl(_) => true,
            Item::Obj { slot, gen } => self
                .obj(*slot)
                .is_some_and(|o| o.gen == *gen && o.queue == Queue::Rs && o.seq == seq),
        }
    }

    fn on_ack(&mut self, from: u32, to: u32) {
        let mut rs = std::mem::take(&mut self.rs);
        let mut dead = Vec::new();
        rs.retain(|(seq, _, item)| {
            let valid = self.rs_item_valid(*seq, item);
            if !valid {
                return false;
            }
            if !seq_between(*seq, from, to) {
                return true;
            }
            match item {
                Item::Ctl(_) => self.rs_ctl = self.rs_ctl.saturating_sub(1),
                Item::Obj { slot, .. } => dead.push(*slot),
            }
            false
        });
        self.rs = rs;
        for s in dead {
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
        let mut rs = std::mem::take(&mut self.rs);
        let mut again = Vec::new();
        rs.retain(|(seq, _, item)| {
            if !self.rs_item_valid(*seq, item) {
                return false;
            }
            if seq_between(*seq, from, to) {
                again.push(*item);
                return false;
            }
            true
        });
        self.rs = rs;
        self.resend(again);
    }

    fn resend(&mut self, items: Vec<Item>) {
        for item in items {
            match item {
                Item::Ctl(c) => {
                    self.rs_ctl = self.rs_ctl.saturating_sub(1);
                    self.tx.push_back(Item::Ctl(c));
                }
                Item::Obj { slot, .. } => {
                    self.stats.tx_resent += 1;
                    if let Some(o) = self.obj_mut(slot) {
                        o.queue = Queue::None;
                    }
                    self.enqueue(slot);
                }
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

    // ---- sending -------------------------------------------------------------------------

    /// Called regularly (every few hundred ms): queues an ALIVE (or the pending ACK) after a
    /// second of silence, and queues again the data messages left unacknowledged too long.
    pub fn on_tick(&mut self, now_ms: u64) {
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
        let mut late = Vec::new();
        let resend_ms = self.cfg.resend_ms;
        let mut rs = std::mem::take(&mut self.rs);
        rs.retain(|&(seq, sent, item)| {
            let valid = self.rs_item_valid(seq, &item);
            if valid && matches!(item, Item::Obj { .. }) && sent + resend_ms <= now_ms {
                late.push(item);
                return false;
            }
            valid
        });
        self.rs = rs;
        self.resend(late);
    }

    /// Whether there is something to send.
    pub fn has_output(&self) -> bool {
        !self.tx.is_empty()
    }

    fn hello_flags(&mut self) -> u8 {
        let mut f = 0;
        if self.hello == Hello::Say {
            f |= flags::HELLO;
        }
        if self.say_hello_back {
            f |= flags::HELLO_BACK;
            self.say_hello_back = false;
        }
        f
    }

    /// Builds the next datagram into `buf` (up to `max_datagram` bytes) and returns its
    /// length, or `None` when there is nothing to send.
    pub fn poll_transmit(&mut self, now_ms: u64, buf: &mut [u8]) -> Option<usize> {
        let limit = self.cfg.max_datagram.min(buf.len());
        let mut pos = 0usize;
        while let Some(item) = self.tx.pop_front() {
            let Some(out) = buf.get_mut(pos..limit) else {
                self.tx.push_front(item);
                break;
            };
            let seq = self.next_seq;
            let written = match item {
                Item::Ctl(mut c) => {
                    c.seq = seq;
                    if c.buffer_len() > out.len() {
                        self.tx.push_front(item);
                        break;
                    }
                    c.flags |= self.peek_hello_flags();
                    c.emit(out).ok()
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
                            continue;
                        }
                        self.tx.push_front(item);
                        break;
                    }
                    let kind = match (o.expect, o.state) {
                        (false, ObjState::New) => DataKind::CtNew,
                        (false, ObjState::Alive) => DataKind::CtUpdate,
                        (false, ObjState::Dead) => DataKind::CtDelete,
                        (true, ObjState::New) => DataKind::ExpNew,
                        (true, ObjState::Alive) => DataKind::ExpUpdate,
                        (true, ObjState::Dead) => DataKind::ExpDelete,
                    };
                    let hdr = Header {
                        version: VERSION,
                        kind: kind.number(),
                        flags: self.peek_hello_flags(),
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
            self.hello_flags();
            pos += n;
            self.next_seq = seq.wrapping_add(1);
            self.stats.tx_messages += 1;
            match item {
                Item::Ctl(c) if c.flags & (flags::ACK | flags::NACK | flags::RESYNC) != 0 => {
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
                Item::Ctl(_) => {}
                Item::Obj { slot, gen } => {
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
        if pos == 0 {
            return None;
        }
        self.stats.tx_datagrams += 1;
        self.next_alive_ms = now_ms + self.cfg.alive_ms;
        Some(pos)
    }

    fn peek_hello_flags(&self) -> u8 {
        let mut f = 0;
        if self.hello == Hello::Say {
            f |= flags::HELLO;
        }
        if self.say_hello_back {
            f |= flags::HELLO_BACK;
        }
        f
    }
}
