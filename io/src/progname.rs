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
//! ```no_run
//! let mut names = conntrack_io::Prognames::default();
//! if let Some(name) = names.get(4242) {
//!     println!("progname={name}");
//! }
//! ```

/// Program names by port id, remembering the last answer (a burst of events from one
/// requester costs one look-up).
#[derive(Debug, Default, Clone)]
pub struct Prognames {
    /// The last port id looked up, its socket's inode, and the answer.
    last: Option<(u32, u64, Option<String>)>,
}

impl Prognames {
    /// The name of the process holding the `NETLINK_NETFILTER` socket with port id
    /// `portid`, if it is found.
    pub fn get(&mut self, portid: u32) -> Option<String> {
        let inode = netlink_inode(portid)?;
        if let Some((p, i, name)) = &self.last {
            if *p == portid && *i == inode {
                return name.clone();
            }
        }
        let name = holder_name(u64::from(portid), inode).or_else(|| {
            std::fs::read_dir("/proc")
                .ok()?
                .filter_map(|d| d.ok()?.file_name().to_str()?.parse::<u64>().ok())
                .filter(|&pid| pid > 1 && pid != u64::from(portid))
                .find_map(|pid| holder_name(pid, inode))
        });
        self.last = Some((portid, inode, name.clone()));
        name
    }
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
        let name = Prognames::default().get(sock.portid());
        let me = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| name_in_stat(&s));
        assert_eq!(name, me);
    }
}
