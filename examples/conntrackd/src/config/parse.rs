//! 1.4.7's grammar, walked top-down. Every rule of `read_config_yy.y` is here with its
//! semantic action; a token that cannot continue a valid prefix is the syntax error bison
//! reports (its LALR tables detect the error on the same token).

use std::net::IpAddr;
use std::path::PathBuf;

use super::lex::{tokens, Kind, Token};
use super::*;
use crate::log::{self, Priority};

/// Reads a configuration file's bytes. `iface_index` answers `if_nametoindex` (1.4.7
/// resolves `Interface` names while it reads the file, and warns about unknown ones);
/// `protocol` answers `getprotobyname`.
pub fn parse(
    src: &[u8],
    iface_index: &dyn Fn(&str) -> Option<u32>,
    protocol: &dyn Fn(&str) -> Option<u8>,
) -> Loaded {
    let toks = tokens(src);
    let mut p = Parser {
        toks,
        pos: 0,
        said: Vec::new(),
        conf: Config::default(),
        sync: None,
        stats_seen: false,
        sync_seen: false,
        channel_type: None,
        cur: Channel::new(),
        stack: Vec::new(),
        iface_index,
        protocol,
        stats_syslog: None,
    };
    let ok = p.file().is_ok();
    let Parser {
        mut said,
        mut conf,
        sync,
        ..
    } = p;
    if !ok {
        return Loaded { said, config: None };
    }
    if let Some(mut s) = sync {
        defaults_sync(&mut s);
        conf.sync = Some(s);
    }
    let g = &mut conf.general;
    if g.hashsize == 0 {
        g.hashsize = defaults::HASHSIZE;
    }
    if g.hashlimit == 0 {
        g.hashlimit = defaults::HASHLIMIT;
    }
    if g.event_iteration_limit == 0 {
        g.event_iteration_limit = defaults::EVENT_ITERATION_LIMIT;
    }
    if g.netlink_overrun_resync == 0 {
        g.netlink_overrun_resync = defaults::OVERRUN_RESYNC;
    }
    // evaluate(): CommitTimeout has no meaning without the external cache.
    if let Some(s) = conf.sync.as_mut() {
        if s.disable_external_cache && s.commit_timeout != 0 {
            said.push((
                Priority::Warning,
                "`CommitTimeout' can't be combined with `DisableExternalCache', ignoring this option. Fix your configuration file.".into(),
            ));
            s.commit_timeout = 0;
        }
    }
    Loaded {
        said,
        config: Some(conf),
    }
}

fn defaults_sync(s: &mut Sync) {
    if s.cache_timeout == 0 {
        s.cache_timeout = defaults::CACHE_TIMEOUT;
    }
    if s.purge_timeout == 0 {
        s.purge_timeout = defaults::PURGE_TIMEOUT;
    }
    if s.refresh == 0 {
        s.refresh = defaults::REFRESH;
    }
    if s.resend_queue_size == 0 {
        s.resend_queue_size = defaults::RESEND_QUEUE_SIZE;
    }
    if s.window_size == 0 {
        s.window_size = defaults::WINDOW_SIZE;
    }
    if s.error_queue_length == 0 {
        s.error_queue_length = defaults::ERROR_QUEUE_LENGTH;
    }
}

/// Why reading stopped: the error line was already logged.
struct Stop;

type R<T = ()> = Result<T, Stop>;

/// What the helper grammar pushes on 1.4.7's symbol stack.
#[derive(Debug, Clone)]
enum Symbol {
    QueueNum(i32),
    QueueLen(i32),
    PolicyLeaf(HelperPolicy),
    PolicyRoot(HelperPolicy),
}

struct Parser<'a> {
    toks: Vec<Token>,
    pos: usize,
    said: Vec<(Priority, String)>,
    conf: Config,
    /// Sync settings are global in 1.4.7 (also set from outside a `Sync` section's end).
    sync: Option<Sync>,
    stats_seen: bool,
    sync_seen: bool,
    /// The transport of the first dedicated link (1.4.7 refuses to mix them).
    channel_type: Option<ChannelKind>,
    /// The dedicated link being read (1.4.7 writes options into the next free slot).
    cur: Channel,
    stack: Vec<Symbol>,
    iface_index: &'a dyn Fn(&str) -> Option<u32>,
    protocol: &'a dyn Fn(&str) -> Option<u8>,
    stats_syslog: Option<i32>,
}

/// The user-space helpers Debian's 1.4.7 ships, with the layer-4 protocols each handles;
/// each has one expectation policy, named after it.
const HELPERS: &[(&str, &[u8])] = &[
    ("amanda", &[17]),
    ("dhcpv6", &[17]),
    ("ftp", &[6]),
    ("mdns", &[17]),
    ("rpc", &[6, 17]),
    ("sane", &[6]),
    ("slp", &[17]),
    ("ssdp", &[17]),
    ("tftp", &[17]),
    ("tns", &[6]),
];

impl Parser<'_> {
    fn peek(&self) -> &Token {
        let last = self.toks.len().saturating_sub(1);
        &self.toks[self.pos.min(last)]
    }

    fn kind(&self) -> Kind {
        self.peek().kind
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if let Some(w) = t.renamed {
            self.said.push((Priority::Warning, w.to_string()));
        }
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn warn(&mut self, msg: String) {
        self.said.push((Priority::Warning, msg));
    }

    fn fail<T>(&mut self, msg: String) -> R<T> {
        self.said.push((Priority::Error, msg));
        Err(Stop)
    }

    fn syntax<T>(&mut self) -> R<T> {
        let t = self.peek().clone();
        let msg = format!(
            "parsing config file in line ({}), symbol '{}': syntax error",
            t.line, t.text
        );
        self.fail(msg)
    }

    fn is_key(&self, k: &str) -> bool {
        matches!(self.kind(), Kind::Key(x) if x == k)
    }

    fn is_any_key(&self, ks: &[&str]) -> bool {
        ks.iter().any(|k| self.is_key(k))
    }

    fn expect_char(&mut self, c: u8) -> R {
        if self.kind() == Kind::Char(c) {
            self.bump();
            Ok(())
        } else {
            self.syntax()
        }
    }

    fn number(&mut self) -> R<i32> {
        match self.kind() {
            Kind::Number(v) => {
                self.bump();
                Ok(v)
            }
            _ => self.syntax(),
        }
    }

    fn on_off(&mut self) -> R<bool> {
        match self.kind() {
            Kind::On => {
                self.bump();
                Ok(true)
            }
            Kind::Off => {
                self.bump();
                Ok(false)
            }
            _ => self.syntax(),
        }
    }

    fn text_of(&mut self, kind: Kind) -> R<String> {
        if self.kind() == kind {
            Ok(self.bump().text)
        } else {
            self.syntax()
        }
    }

    /// `configfile: | lines`.
    fn file(&mut self) -> R {
        loop {
            match self.kind() {
                Kind::Eof => return Ok(()),
                Kind::Key("General") => self.general()?,
                Kind::Key("Sync") => self.sync_section()?,
                Kind::Key("Stats") => self.stats()?,
                Kind::Key("Helper") => self.helper()?,
                _ => return self.syntax(),
            }
        }
    }

    // ---- General -------------------------------------------------------------------

    fn general(&mut self) -> R {
        self.bump();
        self.expect_char(b'{')?;
        while self.kind() != Kind::Char(b'}') {
            self.general_line()?;
        }
        self.bump();
        Ok(())
    }

    fn general_line(&mut self) -> R {
        let Kind::Key(k) = self.kind() else {
            return self.syntax();
        };
        match k {
            "HashSize" => {
                self.bump();
                self.conf.general.hashsize = self.number()? as u32;
            }
            "HashLimit" => {
                self.bump();
                self.conf.general.hashlimit = self.number()? as u32;
            }
            "LogFile" => {
                self.bump();
                self.conf.general.logfile = self.logfile(defaults::LOGFILE, "LogFile")?.or(self
                    .conf
                    .general
                    .logfile
                    .take());
            }
            "Syslog" => {
                self.bump();
                self.syslog(false)?;
            }
            "LockFile" => {
                self.bump();
                let p = self.text_of(Kind::PathVal)?;
                if p.len() > defaults::FILENAME_MAXLEN {
                    return self.fail(format!(
                        "LockFile path is longer than {} characters",
                        defaults::FILENAME_MAXLEN
                    ));
                }
                self.conf.general.lockfile =
                    PathBuf::from(truncate(&p, defaults::FILENAME_MAXLEN - 1));
            }
            "UNIX" => {
                self.bump();
                self.expect_char(b'{')?;
                loop {
                    match self.kind() {
                        Kind::Key("Path") => {
                            self.bump();
                            let p = self.text_of(Kind::PathVal)?;
                            if p.len() > defaults::UNIX_PATH_MAX {
                                return self.fail(format!(
                                    "Path is longer than {} characters",
                                    defaults::UNIX_PATH_MAX
                                ));
                            }
                            self.conf.general.unix_path =
                                PathBuf::from(truncate(&p, defaults::UNIX_PATH_MAX));
                        }
                        Kind::Key("Backlog") => {
                            self.bump();
                            self.number()?;
                            self.warn("deprecated unix backlog configuration, ignoring.".into());
                        }
                        Kind::Char(b'}') => {
                            self.bump();
                            break;
                        }
                        _ => return self.syntax(),
                    }
                }
            }
            "NetlinkBufferSize" | "SocketBufferSize" => {
                self.bump();
                self.conf.general.netlink_buffer_size = self.number()? as u32;
            }
            "NetlinkBufferSizeMaxGrowth"
            | "SocketBufferSizeMaxGrown"
            | "SocketBufferSizeMaxGrowth" => {
                self.bump();
                self.conf.general.netlink_buffer_size_max_growth = self.number()? as u32;
            }
            "EventIterationLimit" => {
                self.bump();
                self.conf.general.event_iteration_limit = self.number()? as u32;
            }
            "PollSecs" => {
                self.bump();
                let v = self.number()?;
                self.conf.general.poll_secs = Some(v as u32);
                if v == 0 {
                    return self.fail("`PollSecs' clause must be > 0".into());
                }
            }
            "Filter" => self.filter()?,
            "NetlinkOverrunResync" => {
                self.bump();
                self.conf.general.netlink_overrun_resync = match self.kind() {
                    Kind::On => {
                        self.bump();
                        defaults::OVERRUN_RESYNC
                    }
                    Kind::Off => {
                        self.bump();
                        -1
                    }
                    Kind::Number(v) => {
                        self.bump();
                        v
                    }
                    _ => return self.syntax(),
                };
            }
            "NetlinkEventsReliable" => {
                self.bump();
                self.conf.general.netlink_events_reliable = self.on_off()?;
            }
            "Nice" => {
                self.bump();
                match self.kind() {
                    Kind::Signed(_) => {
                        self.bump();
                    }
                    _ => return self.syntax(),
                }
                self.warn("deprecated nice configuration, ignoring. The nice value can be set externally with nice(1) and renice(1).".into());
            }
            "Scheduler" => {
                self.bump();
                self.expect_char(b'{')?;
                loop {
                    match self.kind() {
                        Kind::Key("Type") => {
                            self.bump();
                            let t = self.text_of(Kind::Str)?;
                            self.conf.general.scheduler.policy =
                                Some(match t.to_ascii_lowercase().as_str() {
                                    "rr" => SchedPolicy::RoundRobin,
                                    "fifo" => SchedPolicy::Fifo,
                                    _ => return self.fail(format!("unknown scheduler `{t}'")),
                                });
                        }
                        Kind::Key("Priority") => {
                            self.bump();
                            let v = self.number()?;
                            self.conf.general.scheduler.priority = v;
                            if !(0..=99).contains(&v) {
                                return self.fail("`Priority' must be [0, 99]\n".into());
                            }
                        }
                        Kind::Char(b'}') => {
                            self.bump();
                            break;
                        }
                        _ => return self.syntax(),
                    }
                }
            }
            "Systemd" => {
                self.bump();
                self.conf.general.systemd = self.on_off()?;
            }
            _ => return self.syntax(),
        }
        Ok(())
    }

    /// `LogFile on|off|PATH`: `Some(path)` to set, `None` to leave as it was.
    fn logfile(&mut self, default: &str, what: &str) -> R<Option<PathBuf>> {
        match self.kind() {
            Kind::On => {
                self.bump();
                Ok(Some(PathBuf::from(default)))
            }
            Kind::Off => {
                self.bump();
                Ok(None)
            }
            Kind::PathVal => {
                let p = self.bump().text;
                if p.len() > defaults::FILENAME_MAXLEN {
                    return self.fail(format!(
                        "{what} path is longer than {} characters",
                        defaults::FILENAME_MAXLEN
                    ));
                }
                Ok(Some(PathBuf::from(truncate(
                    &p,
                    defaults::FILENAME_MAXLEN - 1,
                ))))
            }
            _ => self.syntax(),
        }
    }

    /// `Syslog on|off|FACILITY`, in `General` or in `Stats`.
    fn syslog(&mut self, stats: bool) -> R {
        let value = match self.kind() {
            Kind::On => {
                self.bump();
                Some(nix::libc::LOG_DAEMON)
            }
            Kind::Off => {
                self.bump();
                None
            }
            Kind::Str => {
                let name = self.bump().text;
                match log::facility(&name) {
                    Some(f) => {
                        let other = if stats {
                            self.conf.general.syslog
                        } else {
                            self.stats_syslog
                        };
                        if other.is_some() && other != Some(f) {
                            self.warn(
                                "conflicting Syslog facility values, defaulting to General".into(),
                            );
                        }
                        Some(f)
                    }
                    None => {
                        let dot = if stats { "." } else { "" };
                        self.warn(format!(
                            "'{name}' is not a known syslog facility, ignoring{dot}"
                        ));
                        return Ok(());
                    }
                }
            }
            _ => return self.syntax(),
        };
        if stats {
            self.stats_syslog = value;
        } else {
            self.conf.general.syslog = value;
        }
        Ok(())
    }

    // ---- Filter --------------------------------------------------------------------

    fn filter(&mut self) -> R {
        self.bump();
        let mut f = Filter::default();
        match self.kind() {
            Kind::Char(b'{') => {}
            Kind::Key("From") => {
                self.bump();
                match self.kind() {
                    Kind::Key("Userspace") => {
                        self.bump();
                    }
                    Kind::Key("Kernelspace") => {
                        self.bump();
                        f.kernelspace = true;
                    }
                    _ => return self.syntax(),
                }
            }
            _ => return self.syntax(),
        }
        // Items before this section's end may add to an earlier Filter (1.4.7 keeps one).
        let mut cur = self.conf.general.filter.take().unwrap_or_default();
        cur.kernelspace = f.kernelspace;
        self.expect_char(b'{')?;
        loop {
            match self.kind() {
                Kind::Key("Protocol") => {
                    self.bump();
                    let logic = self.logic()?;
                    self.expect_char(b'{')?;
                    let mut list = cur.protocol.take().map(|(_, l)| l).unwrap_or_default();
                    loop {
                        match self.kind() {
                            Kind::Str => {
                                let name = self.bump().text;
                                match (self.protocol)(&name) {
                                    Some(n) => list.push(n),
                                    None => self.warn(format!(
                                        "getprotobyname() cannot find protocol `{name}' in /etc/protocols"
                                    )),
                                }
                            }
                            Kind::Key("TCP") => {
                                self.bump();
                                list.push(6);
                            }
                            Kind::Key("UDP") => {
                                self.bump();
                                list.push(17);
                            }
                            Kind::Char(b'}') => {
                                self.bump();
                                break;
                            }
                            _ => return self.syntax(),
                        }
                    }
                    cur.protocol = Some((logic, list));
                }
                Kind::Key("Address") => {
                    self.bump();
                    let logic = self.logic()?;
                    self.expect_char(b'{')?;
                    let mut list = cur.address.take().map(|(_, l)| l).unwrap_or_default();
                    loop {
                        match self.kind() {
                            Kind::Key("IPv4_address") => {
                                self.bump();
                                let t = self.text_of(Kind::Ip)?;
                                self.filter_addr(&t, false, &mut list);
                            }
                            Kind::Key("IPv6_address") => {
                                self.bump();
                                let t = self.text_of(Kind::Ip)?;
                                self.filter_addr(&t, true, &mut list);
                            }
                            Kind::Char(b'}') => {
                                self.bump();
                                break;
                            }
                            _ => return self.syntax(),
                        }
                    }
                    cur.address = Some((logic, list));
                }
                Kind::Key("State") => {
                    self.bump();
                    let logic = self.logic()?;
                    self.expect_char(b'{')?;
                    let mut list = cur.state.take().map(|(_, l)| l).unwrap_or_default();
                    loop {
                        // filter_state_item: tcp_states T_FOR T_TCP
                        match self.kind() {
                            Kind::Char(b'}') => {
                                self.bump();
                                break;
                            }
                            _ => {
                                while let Some(s) = self.tcp_state() {
                                    self.bump();
                                    list.push(s);
                                }
                                if !self.is_key("for") {
                                    return self.syntax();
                                }
                                self.bump();
                                if !self.is_key("TCP") {
                                    return self.syntax();
                                }
                                self.bump();
                            }
                        }
                    }
                    cur.state = Some((logic, list));
                }
                Kind::Char(b'}') => {
                    self.bump();
                    break;
                }
                _ => return self.syntax(),
            }
        }
        self.conf.general.filter = Some(cur);
        Ok(())
    }

    fn tcp_state(&self) -> Option<u8> {
        // TCP_CONNTRACK_* numbers.
        Some(match self.kind() {
            Kind::Key("SYN_SENT") => 1,
            Kind::Key("SYN_RECV") => 2,
            Kind::Key("ESTABLISHED") => 3,
            Kind::Key("FIN_WAIT") => 4,
            Kind::Key("CLOSE_WAIT") => 5,
            Kind::Key("LAST_ACK") => 6,
            Kind::Key("TIME_WAIT") => 7,
            Kind::Key("CLOSE") | Kind::Key("CLOSED") => 8,
            Kind::Key("LISTEN") => 9,
            _ => return None,
        })
    }

    fn logic(&mut self) -> R<Logic> {
        match self.kind() {
            Kind::Key("Accept") => {
                self.bump();
                Ok(Logic::Accept)
            }
            Kind::Key("Ignore") => {
                self.bump();
                Ok(Logic::Ignore)
            }
            _ => self.syntax(),
        }
    }

    fn filter_addr(&mut self, text: &str, v6: bool, list: &mut Vec<Network>) {
        let (addr_s, cidr) = match text.split_once('/') {
            Some((a, c)) => (a, Some(lex::atoi(c))),
            None => (text, None),
        };
        let max = if v6 { 128 } else { 32 };
        if let Some(c) = cidr {
            if c > max || c < 0 {
                self.warn(format!("{addr_s}/{c} is not a valid network, ignoring"));
                return;
            }
        }
        let addr = if v6 {
            inet_pton6(addr_s).map(IpAddr::V6)
        } else {
            inet_aton(addr_s).map(IpAddr::V4)
        };
        let Some(addr) = addr else {
            let fam = if v6 { "IPv6" } else { "IPv4" };
            self.warn(format!("{addr_s} is not a valid {fam}, ignoring"));
            return;
        };
        let prefix = cidr.unwrap_or(max) as u8;
        let net = Network { addr, prefix };
        // 1.4.7 says nothing of a repeated address (its pool takes it silently).
        if list.contains(&net) {
            return;
        }
        list.push(net);
    }

    // ---- Sync ----------------------------------------------------------------------

    fn sync_mut(&mut self) -> &mut Sync {
        self.sync.get_or_insert_with(|| Sync {
            refresh: 0,
            cache_timeout: 0,
            purge_timeout: 0,
            resend_queue_size: 0,
            window_size: 0,
            error_queue_length: 0,
            ..Sync::default()
        })
    }

    fn sync_section(&mut self) -> R {
        self.bump();
        self.sync_mut();
        self.expect_char(b'{')?;
        loop {
            let Kind::Key(k) = self.kind() else {
                if self.kind() == Kind::Char(b'}') {
                    self.bump();
                    break;
                }
                return self.syntax();
            };
            match k {
                "RefreshTime" | "CacheTimeout" | "CommitTimeout" | "PurgeTimeout" => {
                    self.timer()?
                }
                "Multicast" => self.channel(ChannelKind::Multicast)?,
                "UDP" => self.channel(ChannelKind::Udp)?,
                "TCP" => self.channel(ChannelKind::Tcp)?,
                "Mode" => self.mode()?,
                "Options" => self.options()?,
                _ => return self.syntax(),
            }
        }
        if self.stats_seen {
            return self
                .fail("cannot use both `Stats' and `Sync' clauses in conntrackd.conf".into());
        }
        self.sync_seen = true;
        Ok(())
    }

    /// `RefreshTime`, `CacheTimeout`, `CommitTimeout`, `PurgeTimeout` and a number.
    fn timer(&mut self) -> R {
        let Kind::Key(k) = self.bump().kind else {
            return self.syntax();
        };
        let v = self.number()? as u32;
        let s = self.sync_mut();
        match k {
            "RefreshTime" => s.refresh = v,
            "CacheTimeout" => s.cache_timeout = v,
            "CommitTimeout" => s.commit_timeout = v,
            _ => s.purge_timeout = v,
        }
        Ok(())
    }

    fn mode(&mut self) -> R {
        self.bump();
        let mode = match self.kind() {
            Kind::Alarm => SyncMode::Alarm,
            Kind::Ftfw => SyncMode::Ftfw,
            Kind::Notrack => SyncMode::Notrack,
            _ => return self.syntax(),
        };
        self.bump();
        self.expect_char(b'{')?;
        let allowed: &[&str] = match mode {
            SyncMode::Alarm => &[
                "RefreshTime",
                "CacheTimeout",
                "CommitTimeout",
                "PurgeTimeout",
            ],
            SyncMode::Ftfw => &[
                "ResendQueueSize",
                "CommitTimeout",
                "PurgeTimeout",
                "ACKWindowSize",
                "DisableExternalCache",
                "StartupResync",
            ],
            SyncMode::Notrack => &[
                "CommitTimeout",
                "PurgeTimeout",
                "DisableInternalCache",
                "DisableExternalCache",
                "StartupResync",
            ],
        };
        loop {
            if self.kind() == Kind::Char(b'}') {
                self.bump();
                break;
            }
            if !self.is_any_key(allowed) {
                return self.syntax();
            }
            let Kind::Key(k) = self.kind() else {
                return self.syntax();
            };
            match k {
                "RefreshTime" | "CacheTimeout" | "CommitTimeout" | "PurgeTimeout" => {
                    self.timer()?
                }
                "ResendQueueSize" => {
                    self.bump();
                    let v = self.number()? as u32;
                    self.sync_mut().resend_queue_size = v;
                }
                "ACKWindowSize" => {
                    self.bump();
                    let v = self.number()? as u32;
                    self.sync_mut().window_size = v;
                }
                "DisableExternalCache" => {
                    self.bump();
                    let v = self.on_off()?;
                    self.sync_mut().disable_external_cache = v;
                }
                "DisableInternalCache" => {
                    self.bump();
                    let v = self.on_off()?;
                    self.sync_mut().disable_internal_cache = v;
                }
                _ => {
                    self.bump();
                    let v = self.on_off()?;
                    self.sync_mut().startup_resync = v;
                }
            }
        }
        self.sync_mut().modes.push(mode);
        Ok(())
    }

    fn options(&mut self) -> R {
        self.bump();
        self.expect_char(b'{')?;
        loop {
            match self.kind() {
                Kind::Key("TCPWindowTracking") => {
                    self.bump();
                    let v = self.on_off()?;
                    self.sync_mut().tcp_window_tracking = v;
                }
                Kind::Key("ExpectationSync") => {
                    self.bump();
                    let v = match self.kind() {
                        Kind::On => {
                            self.bump();
                            ExpectSync::All
                        }
                        Kind::Off => {
                            self.bump();
                            ExpectSync::Off
                        }
                        Kind::Char(b'{') => {
                            self.bump();
                            let mut names = Vec::new();
                            loop {
                                match self.kind() {
                                    Kind::Str => names.push(self.bump().text),
                                    Kind::Char(b'}') => {
                                        self.bump();
                                        break;
                                    }
                                    _ => return self.syntax(),
                                }
                            }
                            ExpectSync::Helpers(names)
                        }
                        _ => return self.syntax(),
                    };
                    self.sync_mut().expectation_sync = v;
                }
                Kind::Char(b'}') => {
                    self.bump();
                    return Ok(());
                }
                _ => return self.syntax(),
            }
        }
    }

    fn max_links(&mut self) -> R {
        if self.sync_mut().channels.len() >= defaults::MULTICHANNEL_MAX {
            return self.fail(format!(
                "too many dedicated links in the configuration file (Maximum: {})",
                defaults::MULTICHANNEL_MAX
            ));
        }
        Ok(())
    }

    fn channel(&mut self, kind: ChannelKind) -> R {
        self.bump();
        let mut default = false;
        if self.is_key("Default") {
            self.bump();
            default = true;
        }
        self.expect_char(b'{')?;
        loop {
            if self.kind() == Kind::Char(b'}') {
                self.bump();
                break;
            }
            self.channel_option(kind)?;
        }
        if self.channel_type.is_some() && self.channel_type != Some(kind) {
            let name = match kind {
                ChannelKind::Multicast => "Multicast",
                ChannelKind::Udp => "UDP",
                ChannelKind::Tcp => "TCP",
            };
            return self.fail(format!(
                "cannot use `{name}' with other dedicated link protocols!"
            ));
        }
        self.channel_type = Some(kind);
        let mut ch = std::mem::replace(&mut self.cur, Channel::new());
        ch.kind = kind;
        ch.default = default;
        self.sync_mut().channels.push(ch);
        Ok(())
    }

    fn channel_option(&mut self, kind: ChannelKind) -> R {
        let mcast = kind == ChannelKind::Multicast;
        let Kind::Key(k) = self.kind() else {
            return self.syntax();
        };
        let ok = match k {
            "IPv4_address" | "IPv6_address" | "Interface" | "SndSocketBuffer"
            | "RcvSocketBuffer" | "Checksum" => true,
            "IPv4_interface" | "IPv6_interface" | "Group" => mcast,
            "IPv4_Destination_Address" | "IPv6_Destination_Address" | "Port" => !mcast,
            "ErrorQueueLength" => kind == ChannelKind::Tcp,
            _ => false,
        };
        if !ok {
            return self.syntax();
        }
        self.bump();
        match k {
            "IPv4_address" | "IPv4_Destination_Address" | "IPv4_interface" => {
                let t = self.text_of(Kind::Ip)?;
                self.max_links()?;
                let Some(a) = inet_aton(&t) else {
                    self.warn(format!("{t} is not a valid IPv4 address"));
                    return Ok(());
                };
                match k {
                    "IPv4_address" => {
                        if mcast && matches!(self.cur.address, Some(IpAddr::V6(_))) {
                            self.warn("your multicast address is IPv4 but is binded to an IPv6 interface? Surely, this is not what you want".into());
                            return Ok(());
                        }
                        self.cur.address = Some(IpAddr::V4(a));
                    }
                    "IPv4_interface" => {
                        self.cur.ipv4_interface = Some(a);
                        if matches!(self.cur.address, Some(IpAddr::V6(_))) {
                            self.warn("your multicast interface is IPv4 but is binded to an IPv6 interface? Surely, this is not what you want".into());
                        }
                    }
                    _ => self.cur.destination = Some(IpAddr::V4(a)),
                }
            }
            "IPv6_address" | "IPv6_Destination_Address" => {
                let t = self.text_of(Kind::Ip)?;
                self.max_links()?;
                let Some(a) = inet_pton6(&t) else {
                    self.warn(format!("{t} is not a valid IPv6 address"));
                    return Ok(());
                };
                if k == "IPv6_Destination_Address" {
                    self.cur.destination = Some(IpAddr::V6(a));
                    return Ok(());
                }
                if mcast {
                    if matches!(self.cur.address, Some(IpAddr::V4(_))) {
                        self.warn("your multicast address is IPv6 but is binded to an IPv4 interface? Surely this is not what you want".into());
                        return Ok(());
                    }
                    self.cur.address = Some(IpAddr::V6(a));
                    // 1.4.7 looks the *address* up as an interface name here when an
                    // interface was named before: it always warns.
                    if self.cur.interface.is_some() && (self.iface_index)(&t).is_none() {
                        self.warn(format!("{t} is an invalid interface"));
                    }
                } else {
                    self.cur.address = Some(IpAddr::V6(a));
                }
            }
            "IPv6_interface" => {
                self.text_of(Kind::Ip)?;
                self.warn("`IPv6_interface' not required, ignoring".into());
            }
            "Interface" => {
                let name = self.text_of(Kind::Str)?;
                self.max_links()?;
                self.cur.interface = Some(name.chars().take(15).collect());
                if (self.iface_index)(&name).is_none() {
                    self.warn(format!("{name} is an invalid interface"));
                }
            }
            "Port" | "Group" => {
                let v = self.number()?;
                self.max_links()?;
                self.cur.port = v as u16;
            }
            "SndSocketBuffer" => {
                let v = self.number()?;
                self.max_links()?;
                self.cur.sndbuf = v as u32;
            }
            "RcvSocketBuffer" => {
                let v = self.number()?;
                self.max_links()?;
                self.cur.rcvbuf = v as u32;
            }
            "Checksum" => {
                let v = self.on_off()?;
                self.max_links()?;
                self.cur.checksum = v;
            }
            _ => {
                // ErrorQueueLength
                let v = self.number()?;
                self.max_links()?;
                self.sync_mut().error_queue_length = v as u32;
            }
        }
        Ok(())
    }

    // ---- Stats ---------------------------------------------------------------------

    fn stats(&mut self) -> R {
        self.bump();
        self.expect_char(b'{')?;
        let mut st = self.conf.stats.take().unwrap_or_default();
        loop {
            match self.kind() {
                Kind::Key("LogFile") => {
                    self.bump();
                    if let Some(p) = self.logfile(defaults::STATS_LOGFILE, "stats LogFile")? {
                        st.logfile = Some(p);
                    }
                }
                Kind::Key("Syslog") => {
                    self.bump();
                    self.syslog(true)?;
                }
                Kind::Char(b'}') => {
                    self.bump();
                    break;
                }
                _ => return self.syntax(),
            }
        }
        if self.sync_seen {
            return self
                .fail("cannot use both `Stats' and `Sync' clauses in conntrackd.conf".into());
        }
        self.stats_seen = true;
        st.syslog = self.stats_syslog;
        self.conf.stats = Some(st);
        Ok(())
    }

    // ---- Helper --------------------------------------------------------------------

    fn helper(&mut self) -> R {
        self.bump();
        self.expect_char(b'{')?;
        let mut list = self.conf.helper.take().unwrap_or_default();
        loop {
            if self.kind() == Kind::Char(b'}') {
                self.bump();
                break;
            }
            self.helper_type(&mut list)?;
        }
        self.conf.helper = Some(list);
        Ok(())
    }

    fn helper_type(&mut self, list: &mut Vec<HelperType>) -> R {
        match self.kind() {
            Kind::Key("Type") => {
                self.bump();
                let name = self.text_of(Kind::Str)?;
                let l3 = self.text_of(Kind::Str)?;
                let l4 = self.text_of(Kind::Str)?;
                self.expect_char(b'{')?;
                loop {
                    if self.kind() == Kind::Char(b'}') {
                        self.bump();
                        break;
                    }
                    self.helper_type(list)?;
                }
                let l3proto = match l3.as_str() {
                    "inet" => 2,
                    "inet6" => 10,
                    _ => return self.fail("unknown layer 3 protocol".into()),
                };
                let l4proto = match l4.as_str() {
                    "tcp" => 6,
                    "udp" => 17,
                    _ => return self.fail("unknown layer 4 protocol".into()),
                };
                let known = HELPERS
                    .iter()
                    .any(|(n, protos)| *n == name && protos.contains(&l4proto));
                if !known {
                    return self.fail(format!("Unknown `{name}' helper"));
                }
                let mut h = HelperType {
                    name: name.clone(),
                    l3proto,
                    l4proto,
                    queue_num: None,
                    queue_len: None,
                    policies: Vec::new(),
                };
                while let Some(sym) = self.stack.pop() {
                    match sym {
                        Symbol::QueueNum(v) => h.queue_num = Some(v),
                        Symbol::QueueLen(v) => h.queue_len = Some(v),
                        Symbol::PolicyRoot(pol) => {
                            if pol.name != name {
                                return self.fail(format!(
                                    "Unknown policy `{}' in helper configuration",
                                    pol.name
                                ));
                            }
                            h.policies.push(pol);
                        }
                        Symbol::PolicyLeaf(_) => {
                            return self.fail("Unexpected symbol parsing helper policy".into())
                        }
                    }
                }
                list.push(h);
            }
            Kind::Key("QueueNum") => {
                self.bump();
                let v = self.number()?;
                self.stack.push(Symbol::QueueNum(v));
            }
            Kind::Key("QueueLen") => {
                self.bump();
                let v = self.number()?;
                self.stack.push(Symbol::QueueLen(v));
            }
            Kind::Key("Policy") => {
                self.bump();
                let name = self.text_of(Kind::Str)?;
                self.expect_char(b'{')?;
                loop {
                    let max = match self.kind() {
                        Kind::Key("ExpectMax") => true,
                        Kind::Key("ExpectTimeout") => false,
                        Kind::Char(b'}') => {
                            self.bump();
                            break;
                        }
                        _ => return self.syntax(),
                    };
                    self.bump();
                    let v = self.number()?;
                    let mut leaf = match self.stack.last() {
                        Some(Symbol::PolicyLeaf(_)) => match self.stack.pop() {
                            Some(Symbol::PolicyLeaf(p)) => p,
                            _ => unreachable_leaf(),
                        },
                        _ => HelperPolicy {
                            name: String::new(),
                            expect_max: 0,
                            expect_timeout: 0,
                        },
                    };
                    if max {
                        leaf.expect_max = v;
                    } else {
                        leaf.expect_timeout = v;
                    }
                    self.stack.push(Symbol::PolicyLeaf(leaf));
                }
                let mut leaf = match self.stack.last() {
                    Some(Symbol::PolicyLeaf(_)) => match self.stack.pop() {
                        Some(Symbol::PolicyLeaf(p)) => p,
                        _ => unreachable_leaf(),
                    },
                    _ => return self.fail(
                        "Helper policy configuration empty, fix your configuration file, please"
                            .into(),
                    ),
                };
                if name.len() > 16 {
                    return self.fail("Helper Policy is longer than 16 characters".into());
                }
                leaf.name = name;
                self.stack.push(Symbol::PolicyRoot(leaf));
            }
            _ => return self.syntax(),
        }
        Ok(())
    }
}

/// The top of the stack was just seen to be a leaf.
fn unreachable_leaf() -> HelperPolicy {
    HelperPolicy {
        name: String::new(),
        expect_max: 0,
        expect_timeout: 0,
    }
}

/// At most `max` bytes (on a character boundary), as `snprintf` into a fixed buffer.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lo(name: &str) -> Option<u32> {
        (name == "lo").then_some(1)
    }

    fn proto(name: &str) -> Option<u8> {
        match name {
            "tcp" => Some(6),
            "udp" => Some(17),
            "icmp" => Some(1),
            _ => None,
        }
    }

    fn load(s: &str) -> Loaded {
        parse(s.as_bytes(), &lo, &proto)
    }

    #[test]
    fn a_pair_config() {
        let l = load(
            "General {\n HashSize 8192\n HashLimit 65535\n LogFile /tmp/x.log\n Syslog local3\n LockFile /tmp/l\n UNIX { Path /tmp/s\n Backlog 20 }\n NetlinkBufferSize 2097152\n NetlinkBufferSizeMaxGrowth 8388608\n}\nSync {\n Mode FTFW { ResendQueueSize 10 DisableExternalCache off }\n UDP Default {\n IPv4_address 10.0.0.1\n IPv4_Destination_Address 10.0.0.2\n Port 3780\n Interface lo\n Checksum on\n }\n}\n",
        );
        assert_eq!(
            l.said,
            vec![(
                Priority::Warning,
                "deprecated unix backlog configuration, ignoring.".into()
            )]
        );
        let c = l.config.expect("parses");
        assert_eq!(c.general.hashsize, 8192);
        assert_eq!(c.general.syslog, Some(nix::libc::LOG_LOCAL3));
        assert_eq!(c.general.unix_path, PathBuf::from("/tmp/s"));
        let s = c.sync.clone().expect("sync");
        assert_eq!(s.mode(), SyncMode::Ftfw);
        assert_eq!(s.resend_queue_size, 10);
        assert_eq!(s.window_size, 300);
        let ch = s.default_channel().expect("channel");
        assert_eq!(ch.port, 3780);
        assert_eq!(ch.destination, Some("10.0.0.2".parse().expect("ip")));
        assert!(c.not_implemented().is_empty());
    }

    #[test]
    fn what_is_not_acted_on_is_named() {
        let l = load(
            "General { EventIterationLimit 5 PollSecs 3 Filter { } }\nSync { Mode ALARM { } TCP { Port 1 SndSocketBuffer 5 Checksum off } TCP { Port 2 } Options { ExpectationSync on TCPWindowTracking on } }",
        );
        let c = l.config.expect("parses");
        let n = c.not_implemented();
        for want in ["General { PollSecs }", "General { EventIterationLimit }"] {
            assert!(n.iter().any(|x| x == want), "{want} missing from {n:?}");
        }
        // The sync engine acts on the filter, every mode, link and option.
        assert_eq!(n.len(), 2, "{n:?}");
    }

    #[test]
    fn syntax_errors_name_the_token_and_line() {
        let l = load("General {\n  HashSize 100\n  Bogus 1\n}\n");
        assert_eq!(l.config, None);
        assert_eq!(
            l.said,
            vec![(
                Priority::Error,
                "parsing config file in line (3), symbol 'Bogus': syntax error".into()
            )]
        );
        let eof = load("General {\n");
        assert_eq!(
            eof.said[0].1,
            "parsing config file in line (2), symbol '': syntax error"
        );
    }

    #[test]
    fn mixing_links_and_modes() {
        let l = load("Sync { UDP { Port 1 } TCP { Port 2 } }");
        assert_eq!(
            l.said[0].1,
            "cannot use `TCP' with other dedicated link protocols!"
        );
        let l = load("Stats { } Sync { }");
        assert_eq!(
            l.said[0].1,
            "cannot use both `Stats' and `Sync' clauses in conntrackd.conf"
        );
        let l = load(
            "Sync { UDP { Port 1 } UDP { Port 1 } UDP { Port 1 } UDP { Port 1 } UDP { Port 1 } }",
        );
        assert_eq!(
            l.said[0].1,
            "too many dedicated links in the configuration file (Maximum: 4)"
        );
    }

    #[test]
    fn filters_and_helpers() {
        let l = load(
            "General { Filter From Kernelspace { Protocol Accept { TCP udp bogus } Address Ignore { IPv4_address 127.0.0.1 IPv4_address 10.0.0.0/8 IPv4_address 127.0.0.1 } State Accept { ESTABLISHED CLOSED for TCP } } }\nHelper { Type ftp inet tcp { QueueNum 5 Policy ftp { ExpectMax 1 ExpectTimeout 300 } } }",
        );
        let c = l.config.expect("parses");
        let f = c.general.filter.expect("filter");
        assert!(f.kernelspace);
        assert_eq!(f.protocol, Some((Logic::Accept, vec![6, 17])));
        assert_eq!(f.address.as_ref().map(|a| a.1.len()), Some(2));
        assert_eq!(f.state, Some((Logic::Accept, vec![3, 8])));
        assert_eq!(l.said.len(), 1, "{:?}", l.said);
        let h = &c.helper.expect("helper")[0];
        assert_eq!(h.queue_num, Some(5));
        assert_eq!(h.policies[0].expect_timeout, 300);
        assert_eq!(
            load("Helper { Type nope inet tcp { } }").said[0].1,
            "Unknown `nope' helper"
        );
    }
}
