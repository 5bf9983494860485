//! `conntrackd.conf`, the whole grammar conntrackd 1.4.7 accepts, into a typed [`Config`].
//!
//! [`lex`] cuts the file as 1.4.7's scanner does; [`parse`] walks 1.4.7's grammar
//! (`src/read_config_yy.y`) and applies its semantic actions in the same order, so a file
//! is accepted or refused the same way, with the same message: syntax errors as
//! `parsing config file in line (N), symbol 'TEXT': syntax error`, semantic errors and
//! warnings in 1.4.7's words. Defaults are 1.4.7's (`init_config`).
//!
//! Everything is kept in the model, including what this daemon does not act on yet;
//! [`Config::not_implemented`] names those options so the daemon can say so when it
//! starts, instead of ignoring them silently.

pub mod lex;
mod parse;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use crate::log::Priority;

pub use parse::parse;

/// 1.4.7's defaults.
pub mod defaults {
    /// `LockFile`.
    pub const LOCKFILE: &str = "/var/lock/conntrackd.lock";
    /// `LogFile on`.
    pub const LOGFILE: &str = "/var/log/conntrackd.log";
    /// `Stats { LogFile on }`.
    pub const STATS_LOGFILE: &str = "/var/log/conntrackd-stats.log";
    /// `HashSize`.
    pub const HASHSIZE: u32 = 65536;
    /// `HashLimit`.
    pub const HASHLIMIT: u32 = 262_144;
    /// `CacheTimeout`.
    pub const CACHE_TIMEOUT: u32 = 180;
    /// `PurgeTimeout`.
    pub const PURGE_TIMEOUT: u32 = 60;
    /// `RefreshTime`.
    pub const REFRESH: u32 = 60;
    /// `ResendQueueSize`.
    pub const RESEND_QUEUE_SIZE: u32 = 131_072;
    /// `ACKWindowSize`.
    pub const WINDOW_SIZE: u32 = 300;
    /// `EventIterationLimit`.
    pub const EVENT_ITERATION_LIMIT: u32 = 100;
    /// `NetlinkOverrunResync on` and its default.
    pub const OVERRUN_RESYNC: i32 = 30;
    /// `ErrorQueueLength`.
    pub const ERROR_QUEUE_LENGTH: u32 = 128;
    /// The most dedicated links (`MULTICHANNEL_MAX`).
    pub const MULTICHANNEL_MAX: usize = 4;
    /// The longest `LockFile`/`LogFile` path (`FILENAME_MAXLEN`).
    pub const FILENAME_MAXLEN: usize = 256;
    /// The longest `UNIX { Path }` (1.4.7 says 107: `sun_path` less its NUL).
    pub const UNIX_PATH_MAX: usize = 107;
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// `General { }`.
    pub general: General,
    /// `Sync { }`, when given (sync mode).
    pub sync: Option<Sync>,
    /// `Stats { }`, when given (statistics mode).
    pub stats: Option<Stats>,
    /// `Helper { }`, when given (user-space helpers).
    pub helper: Option<Vec<HelperType>>,
}

/// `General { }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct General {
    /// `HashSize`: buckets of the caches.
    pub hashsize: u32,
    /// `HashLimit`: the most entries a cache holds.
    pub hashlimit: u32,
    /// `LogFile on|off|PATH` (`None`: off).
    pub logfile: Option<PathBuf>,
    /// `Syslog on|off|FACILITY` (`None`: off), as a syslog facility number.
    pub syslog: Option<i32>,
    /// `LockFile`.
    pub lockfile: PathBuf,
    /// `UNIX { Path }` (empty when not given, as in 1.4.7).
    pub unix_path: PathBuf,
    /// `NetlinkBufferSize` (alias `SocketBufferSize`), 0 = the kernel's default.
    pub netlink_buffer_size: u32,
    /// `NetlinkBufferSizeMaxGrowth` (aliases `SocketBufferSizeMaxGrown(th)`).
    pub netlink_buffer_size_max_growth: u32,
    /// `NetlinkOverrunResync`: seconds, or -1 for off.
    pub netlink_overrun_resync: i32,
    /// `NetlinkEventsReliable`.
    pub netlink_events_reliable: bool,
    /// `EventIterationLimit`.
    pub event_iteration_limit: u32,
    /// `PollSecs` (poll the kernel instead of listening to events).
    pub poll_secs: Option<u32>,
    /// `Filter { }`.
    pub filter: Option<Filter>,
    /// `Scheduler { Type; Priority }`.
    pub scheduler: Scheduler,
    /// `Systemd`.
    pub systemd: bool,
}

impl Default for General {
    fn default() -> General {
        General {
            hashsize: defaults::HASHSIZE,
            hashlimit: defaults::HASHLIMIT,
            logfile: None,
            syslog: None,
            lockfile: PathBuf::from(defaults::LOCKFILE),
            unix_path: PathBuf::new(),
            netlink_buffer_size: 0,
            netlink_buffer_size_max_growth: 0,
            netlink_overrun_resync: defaults::OVERRUN_RESYNC,
            netlink_events_reliable: false,
            event_iteration_limit: defaults::EVENT_ITERATION_LIMIT,
            poll_secs: None,
            filter: None,
            scheduler: Scheduler::default(),
            // Debian's 1.4.7 is built with systemd support, which turns it on by default.
            systemd: true,
        }
    }
}

/// `Scheduler { }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scheduler {
    /// `Type rr|fifo` (`None`: the default, SCHED_RR at the top priority).
    pub policy: Option<SchedPolicy>,
    /// `Priority` (0..=99).
    pub priority: i32,
}

/// A scheduling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedPolicy {
    /// `rr`.
    RoundRobin,
    /// `fifo`.
    Fifo,
}

/// `Filter [From Userspace|Kernelspace] { }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    /// `From Kernelspace` (the kernel applies it through a BPF filter).
    pub kernelspace: bool,
    /// `Protocol Accept|Ignore { ... }`: protocol numbers.
    pub protocol: Option<(Logic, Vec<u8>)>,
    /// `Address Accept|Ignore { ... }`.
    pub address: Option<(Logic, Vec<Network>)>,
    /// `State Accept|Ignore { ... for TCP }`: TCP states (`TCP_CONNTRACK_*`).
    pub state: Option<(Logic, Vec<u8>)>,
}

/// Accept (positive) or Ignore (negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logic {
    /// `Accept`.
    Accept,
    /// `Ignore`.
    Ignore,
}

/// An address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

/// Which synchronization mode a `Mode` section named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// `Mode FTFW`: reliable.
    Ftfw,
    /// `Mode ALARM`: periodic refresh.
    Alarm,
    /// `Mode NOTRACK`: no sequence tracking.
    Notrack,
}

/// `Sync { }`. As in 1.4.7 the timers and switches are global: a `Mode` section only
/// groups them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sync {
    /// The `Mode` sections given, in order (1.4.7 picks FTFW, then ALARM, then NOTRACK;
    /// none means FTFW).
    pub modes: Vec<SyncMode>,
    /// `Multicast`, `UDP` and `TCP` sections, in order.
    pub channels: Vec<Channel>,
    /// `RefreshTime`.
    pub refresh: u32,
    /// `CacheTimeout`.
    pub cache_timeout: u32,
    /// `CommitTimeout` (0: estimated from the entry's age).
    pub commit_timeout: u32,
    /// `PurgeTimeout`.
    pub purge_timeout: u32,
    /// `ResendQueueSize`.
    pub resend_queue_size: u32,
    /// `ACKWindowSize`.
    pub window_size: u32,
    /// `DisableInternalCache`.
    pub disable_internal_cache: bool,
    /// `DisableExternalCache`.
    pub disable_external_cache: bool,
    /// `StartupResync`.
    pub startup_resync: bool,
    /// `Options { TCPWindowTracking }`.
    pub tcp_window_tracking: bool,
    /// `Options { ExpectationSync }`.
    pub expectation_sync: ExpectSync,
    /// `TCP { ErrorQueueLength }` (one value for all channels, as in 1.4.7).
    pub error_queue_length: u32,
}

impl Default for Sync {
    fn default() -> Sync {
        Sync {
            modes: Vec::new(),
            channels: Vec::new(),
            refresh: defaults::REFRESH,
            cache_timeout: defaults::CACHE_TIMEOUT,
            commit_timeout: 0,
            purge_timeout: defaults::PURGE_TIMEOUT,
            resend_queue_size: defaults::RESEND_QUEUE_SIZE,
            window_size: defaults::WINDOW_SIZE,
            disable_internal_cache: false,
            disable_external_cache: false,
            startup_resync: false,
            tcp_window_tracking: false,
            expectation_sync: ExpectSync::Off,
            error_queue_length: defaults::ERROR_QUEUE_LENGTH,
        }
    }
}

impl Sync {
    /// The mode in force: FTFW, then ALARM, then NOTRACK, as 1.4.7 picks them.
    pub fn mode(&self) -> SyncMode {
        for m in [SyncMode::Ftfw, SyncMode::Alarm, SyncMode::Notrack] {
            if self.modes.contains(&m) {
                return m;
            }
        }
        SyncMode::Ftfw
    }

    /// The default channel: the last `... Default { }` section, else the first.
    pub fn default_channel(&self) -> Option<&Channel> {
        self.channels
            .iter()
            .rev()
            .find(|c| c.default)
            .or(self.channels.first())
    }
}

/// `Options { ExpectationSync on|off|{ helpers } }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ExpectSync {
    /// Off.
    #[default]
    Off,
    /// `on`: every expectation.
    All,
    /// `{ ftp sip ... }`: those of these helpers.
    Helpers(Vec<String>),
}

/// The transport of a dedicated link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// `Multicast { }`.
    Multicast,
    /// `UDP { }`.
    Udp,
    /// `TCP { }`.
    Tcp,
}

/// One `Multicast`, `UDP` or `TCP` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// Its transport.
    pub kind: ChannelKind,
    /// `... Default { }`.
    pub default: bool,
    /// `IPv4_address`/`IPv6_address`: the multicast group, or the local address to bind.
    pub address: Option<IpAddr>,
    /// `IPv4_Destination_Address`/`IPv6_Destination_Address` (UDP, TCP).
    pub destination: Option<IpAddr>,
    /// `IPv4_interface` (multicast).
    pub ipv4_interface: Option<Ipv4Addr>,
    /// `Interface`.
    pub interface: Option<String>,
    /// `Port` (UDP, TCP) or `Group` (multicast).
    pub port: u16,
    /// `SndSocketBuffer`.
    pub sndbuf: u32,
    /// `RcvSocketBuffer`.
    pub rcvbuf: u32,
    /// `Checksum` (on unless turned off).
    pub checksum: bool,
}

impl Channel {
    fn new() -> Channel {
        Channel {
            kind: ChannelKind::Udp,
            default: false,
            address: None,
            destination: None,
            ipv4_interface: None,
            interface: None,
            port: 0,
            sndbuf: 0,
            rcvbuf: 0,
            checksum: true,
        }
    }

    /// The IPv6 scope/interface index given by `Interface`, resolved when parsed.
    pub fn is_ipv6(&self) -> bool {
        matches!(self.address, Some(IpAddr::V6(_)))
            || matches!(self.destination, Some(IpAddr::V6(_)))
    }
}

/// `Stats { }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stats {
    /// `LogFile on|off|PATH`.
    pub logfile: Option<PathBuf>,
    /// `Syslog on|off|FACILITY`.
    pub syslog: Option<i32>,
}

/// `Helper { Type NAME inet|inet6 tcp|udp { ... } }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperType {
    /// The helper's name.
    pub name: String,
    /// `inet` (2) or `inet6` (10).
    pub l3proto: u8,
    /// `tcp` (6) or `udp` (17).
    pub l4proto: u8,
    /// `QueueNum`.
    pub queue_num: Option<i32>,
    /// `QueueLen`.
    pub queue_len: Option<i32>,
    /// `Policy NAME { ExpectMax; ExpectTimeout }`.
    pub policies: Vec<HelperPolicy>,
}

/// One `Policy` of a helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperPolicy {
    /// Its name.
    pub name: String,
    /// `ExpectMax`.
    pub expect_max: i32,
    /// `ExpectTimeout`.
    pub expect_timeout: i32,
}

/// What reading the file said (warnings, in order) and what it ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The lines 1.4.7 logs while reading (warnings, and the one error that ends it).
    pub said: Vec<(Priority, String)>,
    /// The configuration, or `None` when an error ended the reading (exit status 1).
    pub config: Option<Config>,
}

impl Config {
    /// The interface of the default dedicated link (empty without one).
    pub fn default_device(&self) -> String {
        self.sync
            .as_ref()
            .and_then(|s| s.default_channel())
            .and_then(|c| c.interface.clone())
            .unwrap_or_default()
    }

    /// The options this daemon parses but does not act on yet, one phrase each.
    pub fn not_implemented(&self) -> Vec<String> {
        let mut v = Vec::new();
        let g = &self.general;
        if g.poll_secs.is_some() {
            v.push("General { PollSecs }".to_string());
        }
        if g.event_iteration_limit != defaults::EVENT_ITERATION_LIMIT {
            v.push("General { EventIterationLimit }".to_string());
        }
        if self.helper.is_some() {
            v.push("Helper { } (user-space helpers)".to_string());
        }
        v
    }
}

/// `inet_aton`'s reading of an IPv4 address (also `a`, `a.b`, `a.b.c`, octal and hex
/// parts). The lexer only hands over dotted quads of digits, so this is the decimal/octal
/// case: each part a number, leading `0` meaning octal.
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut vals = Vec::new();
    for p in &parts {
        let v = if let Some(h) = p.strip_prefix("0x").or(p.strip_prefix("0X")) {
            u32::from_str_radix(h, 16).ok()?
        } else if p.len() > 1 && p.starts_with('0') {
            u32::from_str_radix(&p[1..], 8).ok()?
        } else {
            p.parse::<u32>().ok()?
        };
        vals.push(v);
    }
    let n = vals.len();
    let last = *vals.last()?;
    for v in &vals[..n - 1] {
        if *v > 255 {
            return None;
        }
    }
    let max_last: u64 = 1u64 << (8 * (5 - n as u64).min(4));
    if u64::from(last) >= max_last {
        return None;
    }
    let mut addr: u32 = 0;
    for (k, v) in vals[..n - 1].iter().enumerate() {
        addr |= v << (24 - 8 * k as u32);
    }
    addr |= last;
    Some(Ipv4Addr::from(addr))
}

/// `inet_pton(AF_INET6, ...)`.
pub fn inet_pton6(s: &str) -> Option<Ipv6Addr> {
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aton() {
        assert_eq!(inet_aton("10.0.0.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("010.0.0.1"), Some(Ipv4Addr::new(8, 0, 0, 1)));
        assert_eq!(inet_aton("300.0.0.1"), None);
        assert_eq!(inet_aton("1.2.3.256"), None);
        assert_eq!(inet_aton("09.0.0.1"), None);
    }

    #[test]
    fn mode_precedence() {
        let mut s = Sync::default();
        assert_eq!(s.mode(), SyncMode::Ftfw);
        s.modes = vec![SyncMode::Notrack, SyncMode::Alarm];
        assert_eq!(s.mode(), SyncMode::Alarm);
    }
}
