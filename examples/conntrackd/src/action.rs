//! The requests a client sends over the UNIX control socket: conntrackd 1.4.7's numbers
//! (`include/conntrackd.h`), one native-endian `int` per connection.

/// One request of the control protocol, with 1.4.7's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `-F ct`: flush the kernel's conntrack table.
    CtFlushMaster,
    /// `-R ct`: resync the internal cache with the kernel's conntrack table.
    CtResyncMaster,
    /// `-i` / `-i ct`: the internal cache.
    CtDumpInternal,
    /// `-e` / `-e ct`: the external cache.
    CtDumpExternal,
    /// `-c ct`: commit the external cache to the kernel.
    CtCommit,
    /// Flush both caches (1.4.7's client never sends it: `-f` sends `AllFlushCache`).
    CtFlushCache,
    /// `-k`: stop the daemon.
    Kill,
    /// `-s` / `-s ct`: the general statistics.
    Stats,
    /// `-B`: send a bulk of the internal cache to the peer.
    SendBulk,
    /// `-n`: ask the peer for a resync.
    RequestDump,
    /// `-i -x`: the internal cache in XML.
    CtDumpIntXml,
    /// `-e -x`: the external cache in XML.
    CtDumpExtXml,
    /// `-t`: flush the kernel table after `PurgeTimeout` seconds.
    ResetTimers,
    /// Unused in 1.4.7.
    DebugInfo,
    /// `-s network`.
    StatsNetwork,
    /// `-s cache`.
    StatsCache,
    /// `-s runtime`.
    StatsRuntime,
    /// `-s link` (and the deprecated `-s multicast`).
    StatsLink,
    /// `-s rsqueue`.
    StatsRsqueue,
    /// `-f internal`.
    CtFlushIntCache,
    /// `-f external`.
    CtFlushExtCache,
    /// `-s process`.
    StatsProcess,
    /// `-s queue`.
    StatsQueue,
    /// `-s expect`.
    ExpStats,
    /// `-F expect`.
    ExpFlushMaster,
    /// `-R expect`.
    ExpResyncMaster,
    /// `-i expect`.
    ExpDumpInternal,
    /// `-e expect`.
    ExpDumpExternal,
    /// `-c expect`.
    ExpCommit,
    /// `-F`: both kernel tables.
    AllFlushMaster,
    /// `-R`: both kernel tables.
    AllResyncMaster,
    /// `-f`: both caches.
    AllFlushCache,
    /// `-c`: both tables.
    AllCommit,
    /// `-i expect -x`.
    ExpDumpIntXml,
    /// `-e expect -x`.
    ExpDumpExtXml,
}

/// Every action with its number, in 1.4.7's order.
const TABLE: [(Action, i32); 35] = [
    (Action::CtFlushMaster, 0),
    (Action::CtResyncMaster, 1),
    (Action::CtDumpInternal, 16),
    (Action::CtDumpExternal, 17),
    (Action::CtCommit, 18),
    (Action::CtFlushCache, 19),
    (Action::Kill, 20),
    (Action::Stats, 21),
    (Action::SendBulk, 22),
    (Action::RequestDump, 23),
    (Action::CtDumpIntXml, 24),
    (Action::CtDumpExtXml, 25),
    (Action::ResetTimers, 26),
    (Action::DebugInfo, 27),
    (Action::StatsNetwork, 28),
    (Action::StatsCache, 29),
    (Action::StatsRuntime, 30),
    (Action::StatsLink, 31),
    (Action::StatsRsqueue, 32),
    (Action::CtFlushIntCache, 33),
    (Action::CtFlushExtCache, 34),
    (Action::StatsProcess, 35),
    (Action::StatsQueue, 36),
    (Action::ExpStats, 37),
    (Action::ExpFlushMaster, 38),
    (Action::ExpResyncMaster, 39),
    (Action::ExpDumpInternal, 40),
    (Action::ExpDumpExternal, 41),
    (Action::ExpCommit, 42),
    (Action::AllFlushMaster, 43),
    (Action::AllResyncMaster, 44),
    (Action::AllFlushCache, 45),
    (Action::AllCommit, 46),
    (Action::ExpDumpIntXml, 47),
    (Action::ExpDumpExtXml, 48),
];

impl Action {
    /// The number on the wire.
    pub fn code(self) -> i32 {
        TABLE
            .iter()
            .find(|(a, _)| *a == self)
            .map(|(_, c)| *c)
            .unwrap_or(-1)
    }

    /// The action of a number, if 1.4.7 has one.
    pub fn from_code(code: i32) -> Option<Action> {
        TABLE.iter().find(|(_, c)| *c == code).map(|(a, _)| *a)
    }

    /// The request as the client sends it: the number as a native-endian `int`.
    pub fn to_wire(self) -> [u8; 4] {
        self.code().to_ne_bytes()
    }

    /// Reads a request from the four bytes a client sent.
    pub fn from_wire(bytes: [u8; 4]) -> Result<Action, i32> {
        let code = i32::from_ne_bytes(bytes);
        Action::from_code(code).ok_or(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        for (a, c) in TABLE {
            assert_eq!(a.code(), c);
            assert_eq!(Action::from_code(c), Some(a));
            assert_eq!(Action::from_wire(a.to_wire()), Ok(a));
        }
        let mut codes: Vec<i32> = TABLE.iter().map(|(_, c)| *c).collect();
        codes.dedup();
        assert_eq!(codes.len(), TABLE.len());
        assert_eq!(Action::from_code(2), None);
        assert_eq!(Action::from_wire(99i32.to_ne_bytes()), Err(99));
    }
}
