//! Which program sent the request that caused an event: an event's port id names a netlink
//! socket, and `/proc` tells which process holds it — how `conntrack -E` fills its
//! ` [USERSPACE] portid=N progname=NAME` suffix.
//!
//! The look-up, as conntrack-tools 1.4.7 does it: the socket's inode from
//! `/proc/net/netlink` (the row of protocol 12, `NETLINK_NETFILTER`, with that port id), then
//! the process with `socket:[INODE]` among its descriptors (`/proc/PORTID/fd` first, since a
//! program's first netlink socket usually has its process id as port id, then every
//! process), and its name from `/proc/PID/stat`. It races with the requester: a process that
//! has exited (or closed the socket) is not found.
//!
//! A look-up reads `/proc/net/netlink` and often walks `/proc`: far too slow for every
//! event of a burst (conntrack-tools does it per event, which is much of why it falls behind
//! a burst from another process). [`Prognames`] therefore remembers its answers, positive or
//! not, for a few port ids, and trusts each for [`Prognames::DEFAULT_FRESHNESS`] before it
//! checks it again (`/proc/net/netlink` once: the same socket still holds the port id, or
//! none does, or another one, which is then looked up). A burst from one requester costs one
//! look-up and a check every 50 ms, and the answers are at most that old.
//!
//! ```no_run
//! let mut names = conntrack_io::Prognames::default();
//! if let Some(name) = names.get(4242) {
//!     println!("progname={name}");
//! }
//! ```

use std::time::{Duration, Instant};

/// Program names by port id, as conntrack-tools 1.4.7 finds them in `/proc`, with the answers
/// remembered for a while: a look-up reads `/proc/net/netlink` and may walk `/proc`, far too
/// slow for every event of a burst, so an answer (found or not) is kept for a few port ids
/// and checked again (one read of `/proc/net/netlink`) only after
/// [`DEFAULT_FRESHNESS`](Prognames::DEFAULT_FRESHNESS).
#[derive(Debug, Clone)]
pub struct Prognames {
    /// The port ids asked for last, most recent first.
    known: Vec<Known>,
    fresh: Duration,
}

/// An answer: port id, the socket's inode (0: no socket had that port id), the name, and
/// when it was last checked.
#[derive(Debug, Clone)]
struct Known {
    portid: u32,
    inode: u64,
    name: Option<String>,
    checked: Instant,
}

impl Default for Prognames {
    fn default() -> Self {
        Prognames::with_freshness(Prognames::DEFAULT_FRESHNESS)
    }
}

impl Prognames {
    /// How long an answer is used before it is checked again.
    pub const DEFAULT_FRESHNESS: Duration = Duration::from_millis(50);

    /// How many port ids are remembered.
    const KEEP: usize = 8;

    /// A cache whose answers are used for `fresh` before they are checked again
    /// (`Duration::ZERO`: checked on every call, as conntrack-tools does).
    pub fn with_freshness(fresh: Duration) -> Self {
        Prognames {
            known: Vec::with_capacity(Prognames::KEEP),
            fresh,
        }
    }

    /// The name of the process holding the `NETLINK_NETFILTER` socket with port id
    /// `portid`, if it is found (an answer at most the freshness old).
    pub fn get(&mut self, portid: u32) -> Option<&str> {
        let now = Instant::now();
        let at = self.known.iter().position(|k| k.portid == portid);
        if let Some(i) = at {
            let fresh = self
                .known
                .get(i)
                .is_some_and(|k| now.saturating_duration_since(k.checked) < self.fresh);
            if !fresh {
                let inode = netlink_inode(portid).unwrap_or(0);
                if let Some(k) = self.known.get_mut(i) {
                    if k.inode != inode {
                        k.inode = inode;
                        k.name = look_up(portid, inode);
                    }
                    k.checked = now;
                }
            }
            // Most recent first.
            if let Some(recent) = self.known.get_mut(..=i) {
                recent.rotate_right(1);
            }
        } else {
            let inode = netlink_inode(portid).unwrap_or(0);
            if self.known.len() >= Prognames::KEEP {
                self.known.pop();
            }
            self.known.insert(
                0,
                Known {
                    portid,
                    inode,
                    name: look_up(portid, inode),
                    checked: now,
                },
            );
        }
        self.known.first().and_then(|k| k.name.as_deref())
    }
}

/// The name of the holder of socket `inode` (0: none), its port id first.
fn look_up(portid: u32, inode: u64) -> Option<String> {
    if inode == 0 {
        return None;
    }
    holder_name(u64::from(portid), inode).or_else(|| {
        std::fs::read_dir("/proc")
            .ok()?
            .filter_map(|d| d.ok()?.file_name().to_str()?.parse::<u64>().ok())
            .filter(|&pid| pid > 1 && pid != u64::from(portid))
            .find_map(|pid| holder_name(pid, inode))
    })
}

/// The inode of the `NETLINK_NETFILTER` socket (protocol 12) with port id `portid`.
fn netlink_inode(portid: u32) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netlink").ok()?;
    inode_in(&text, portid)
}

/// The inode column of the row of protocol 12 and port id `portid` of a
/// `/proc/net/netlink` text (`sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode`).
fn inode_in(text: &str, portid: u32) -> Option<u64> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let proto: i32 = f.get(1)?.parse().ok()?;
        let pid: u32 = f.get(2)?.parse().ok()?;
        let inode: u64 = f.get(9)?.parse().ok()?;
        (proto == 12 && pid == portid).then_some(inode)
    })
}

/// The name of process `pid` (from `/proc/PID/stat`) if it holds socket `inode`.
fn holder_name(pid: u64, inode: u64) -> Option<String> {
    let target = format!("socket:[{inode}]");
    let holds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(Result::ok)
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str()));
    if !holds {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    name_in_stat(&stat)
}

/// The command name of a `/proc/PID/stat` text: `PID (COMM) STATE ...`, the name running
/// to the first `)` (as the tool reads it).
fn name_in_stat(stat: &str) -> Option<String> {
    let (_, rest) = stat.split_once('(')?;
    Some(rest.split(')').next()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_names() {
        let netlink = "sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n\
                       0000000000000000 0   4242       00000000 0        0        0     2        0        777\n\
                       0000000000000000 12  4242       00000007 0        0        0     2        3        999\n";
        assert_eq!(inode_in(netlink, 4242), Some(999));
        assert_eq!(inode_in(netlink, 1), None);
        assert_eq!(
            name_in_stat("123 (conntrack) S 1 2 3").as_deref(),
            Some("conntrack")
        );
        assert_eq!(name_in_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_found_by_its_own_socket() {
        // An unprivileged process can open and bind a NETLINK_NETFILTER socket; its port id
        // is then in /proc/net/netlink (when /proc is mounted).
        let Ok(sock) = crate::Socket::open() else {
            eprintln!("not run: no NETLINK_NETFILTER socket here (an emulator?)");
            return;
        };
        if std::fs::read_to_string("/proc/net/netlink").is_err() {
            eprintln!("not run: no /proc/net/netlink here");
            return;
        }
        let mut names = Prognames::default();
        let me = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| name_in_stat(&s));
        assert_eq!(names.get(sock.portid()).map(str::to_string), me);
        // Remembered, and found again when checked.
        assert_eq!(names.get(sock.portid()).map(str::to_string), me);
        let mut unfresh = Prognames::with_freshness(Duration::ZERO);
        assert_eq!(unfresh.get(sock.portid()).map(str::to_string), me);
        assert_eq!(unfresh.get(sock.portid()).map(str::to_string), me);
        // A closed socket is no longer found once the answer is checked again.
        let portid = sock.portid();
        drop(sock);
        assert_eq!(unfresh.get(portid), None);
    }

    #[test]
    fn answers_are_kept_for_a_few_port_ids_most_recent_first() {
        // Port ids no socket has: the kernel's automatic ones are process ids, or count
        // down from -4096, so -1 to -20 are taken only by a process that binds them.
        let mut names = Prognames::with_freshness(Duration::from_secs(3600));
        for p in 0..20u32 {
            assert_eq!(names.get(u32::MAX - p), None);
        }
        assert_eq!(names.known.len(), Prognames::KEEP);
        assert_eq!(names.known.first().map(|k| k.portid), Some(u32::MAX - 19));
        let _ = names.get(u32::MAX - 15);
        assert_eq!(names.known.first().map(|k| k.portid), Some(u32::MAX - 15));
        assert_eq!(names.known.len(), Prognames::KEEP);
    }
}
