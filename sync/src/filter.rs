//! conntrackd's `General { Filter { ... } }`: which conntrack entries the daemon replicates.
//!
//! A filter has up to three parts, each with its own logic: `Protocol Accept|Ignore { ... }`
//! (layer-4 protocol numbers), `Address Accept|Ignore { IPv4_address ...; IPv6_address ... }`
//! (hosts and networks) and `State Accept|Ignore { ... for TCP }` (TCP states). An entry is
//! replicated when it passes every part given. conntrackd applies the parts this way, and so
//! does [`Filter::accepts`]:
//!
//! - **Protocol**: the original tuple's protocol is in the set (Accept) or is not (Ignore).
//! - **Address**: the two addresses looked at are the original source and the *reply*
//!   source (the real peers once NAT is undone). With Accept, the entry passes when either
//!   address is in one of the networks or is one of the hosts; with Ignore, it is kept out
//!   when either is. Entries of the other family pass (a filter of IPv4 addresses says
//!   nothing about IPv6 entries).
//! - **State**: only TCP entries that carry a TCP state are judged; anything else passes.
//!
//! With `Filter From Kernelspace`, conntrackd compiles the same description into a
//! classic-BPF program ([`Filter::event_filter`]) and attaches it to its event socket, so the
//! kernel drops unwanted events; dumps and resyncs are still filtered in user space. The
//! kernel program looks at the original tuple's source *and destination* (libnetfilter_conntrack's
//! `NFCT_FILTER_SRC_IPV4`/`DST_IPV4`, both given the same networks): with DNAT, an address
//! filter can judge an event in the kernel differently from its dump entry, as it does in
//! conntrackd.

use std::net::IpAddr;

use conntrack_codec::ct::{ConntrackRepr, ProtoInfo, TcpState};
use conntrack_codec::filter::bpf::{EventFilter, Ipv4Match, Ipv6Match, Logic};

/// Accept (`Accept`, positive) or Ignore (`Ignore`, negative) the values of a part.
pub type FilterLogic = Logic;

/// An address with a prefix length (`IPv4_address 10.0.0.0/8`, `IPv6_address ::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length (32 or 128 for a host).
    pub prefix: u8,
}

impl Network {
    /// A single host.
    pub fn host(addr: IpAddr) -> Network {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Network { addr, prefix }
    }

    /// Whether `a` is in the network (never for the other family).
    pub fn contains(&self, a: IpAddr) -> bool {
        match (self.addr, a) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                Ipv4Match::prefix(n, self.prefix.min(32)).is_ok_and(|m| m.matches(a))
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                Ipv6Match::prefix(n, self.prefix.min(128)).is_ok_and(|m| m.matches(a))
            }
            _ => false,
        }
    }
}

/// A filter as conntrackd's configuration describes it; the default filters nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    /// `Protocol Accept|Ignore { TCP UDP ... }`: protocol numbers.
    pub protocols: Option<(FilterLogic, Vec<u8>)>,
    /// `Address Accept|Ignore { ... }`: hosts and networks of either family.
    pub addresses: Option<(FilterLogic, Vec<Network>)>,
    /// `State Accept|Ignore { ESTABLISHED ... for TCP }`: TCP states.
    pub tcp_states: Option<(FilterLogic, Vec<TcpState>)>,
}

fn passes(logic: FilterLogic, matched: bool) -> bool {
    match logic {
        Logic::Positive => matched,
        Logic::Negative => !matched,
    }
}

impl Filter {
    /// Whether the filter is empty (everything passes).
    pub fn is_empty(&self) -> bool {
        self.protocols.is_none() && self.addresses.is_none() && self.tcp_states.is_none()
    }

    /// Whether conntrackd would replicate `entry` (see the module documentation).
    pub fn accepts(&self, entry: &ConntrackRepr) -> bool {
        let orig = entry.orig.unwrap_or_default();
        if let Some((logic, protos)) = &self.protocols {
            let p = orig.proto.unwrap_or(0);
            if !passes(*logic, protos.contains(&p)) {
                return false;
            }
        }
        if let Some((logic, nets)) = &self.addresses {
            let src = orig.src;
            let reply_src = entry.reply.and_then(|r| r.src).or(orig.dst);
            let family_v4 = src.is_some_and(|a| a.is_ipv4());
            // Only the networks of the entry's family take part: a host set of the
            // other family is empty for it, and an empty set matches nothing.
            let same = |n: &&Network| n.addr.is_ipv4() == family_v4;
            let hit = nets.iter().filter(same).any(|n| {
                src.is_some_and(|a| n.contains(a)) || reply_src.is_some_and(|a| n.contains(a))
            });
            if src.is_some() && !passes(*logic, hit) {
                return false;
            }
        }
        if let Some((logic, states)) = &self.tcp_states {
            if orig.proto == Some(conntrack_codec::ct::l4proto::TCP) {
                if let Some(ProtoInfo::Tcp(t)) = &entry.protoinfo {
                    if let Some(s) = t.state {
                        if !passes(*logic, states.contains(&s)) {
                            return false;
                        }
                    }
                }
            }
        }
        true
    }

    /// The kernel-side program's description, as conntrackd builds it for
    /// `Filter From Kernelspace`: protocols, TCP states, and the networks as both source and
    /// destination sets of their family.
    ///
    /// # Errors
    /// More networks of one family than an [`EventFilter`] holds (64), or a prefix longer
    /// than the address.
    pub fn event_filter(&self) -> conntrack_codec::Result<EventFilter> {
        let mut f = EventFilter::new();
        if let Some((logic, protos)) = &self.protocols {
            f.l4proto.logic = *logic;
            for p in protos {
                f.l4proto.insert(*p);
            }
        }
        if let Some((logic, states)) = &self.tcp_states {
            f.tcp_state.logic = *logic;
            for s in states {
                f.tcp_state.insert(*s);
            }
        }
        if let Some((logic, nets)) = &self.addresses {
            for set in [&mut f.ipv4_src, &mut f.ipv4_dst] {
                set.logic = *logic;
            }
            for set in [&mut f.ipv6_src, &mut f.ipv6_dst] {
                set.logic = *logic;
            }
            for n in nets {
                match n.addr {
                    IpAddr::V4(a) => {
                        let m = Ipv4Match::prefix(a, n.prefix)?;
                        f.ipv4_src.push(m)?;
                        f.ipv4_dst.push(m)?;
                    }
                    IpAddr::V6(a) => {
                        let m = Ipv6Match::prefix(a, n.prefix)?;
                        f.ipv6_src.push(m)?;
                        f.ipv6_dst.push(m)?;
                    }
                }
            }
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_codec::ct::{l4proto, Status, TcpInfo, Tuple};
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn tcp(src: [u8; 4], dst: [u8; 4], reply_src: [u8; 4], state: TcpState) -> ConntrackRepr {
        let orig = Tuple::tcp(
            IpAddr::V4(Ipv4Addr::from(src)),
            IpAddr::V4(Ipv4Addr::from(dst)),
            1000,
            80,
        );
        let mut reply = orig.inverted();
        reply.src = Some(IpAddr::V4(Ipv4Addr::from(reply_src)));
        ConntrackRepr {
            family: 2,
            orig: Some(orig),
            reply: Some(reply),
            status: Some(Status::CONFIRMED),
            protoinfo: Some(ProtoInfo::Tcp(TcpInfo {
                state: Some(state),
                ..TcpInfo::default()
            })),
            ..ConntrackRepr::default()
        }
    }

    #[test]
    fn empty_filter_accepts_everything() {
        let f = Filter::default();
        assert!(f.is_empty());
        assert!(f.accepts(&tcp(
            [1, 1, 1, 1],
            [2, 2, 2, 2],
            [2, 2, 2, 2],
            TcpState::SynSent
        )));
        assert!(f.accepts(&ConntrackRepr::default()));
    }

    #[test]
    fn protocol_accept_and_ignore() {
        let e = tcp(
            [1, 1, 1, 1],
            [2, 2, 2, 2],
            [2, 2, 2, 2],
            TcpState::Established,
        );
        let mut f = Filter {
            protocols: Some((Logic::Positive, vec![l4proto::UDP])),
            ..Filter::default()
        };
        assert!(!f.accepts(&e));
        f.protocols = Some((Logic::Positive, vec![l4proto::UDP, l4proto::TCP]));
        assert!(f.accepts(&e));
        f.protocols = Some((Logic::Negative, vec![l4proto::TCP]));
        assert!(!f.accepts(&e));
        f.protocols = Some((Logic::Negative, vec![l4proto::UDP]));
        assert!(f.accepts(&e));
    }

    #[test]
    fn address_uses_original_source_and_reply_source() {
        // 10.0.0.5 -> 192.0.2.1, DNAT'ed to 172.16.0.9 (the reply comes from there).
        let e = tcp(
            [10, 0, 0, 5],
            [192, 0, 2, 1],
            [172, 16, 0, 9],
            TcpState::Established,
        );
        let accept = |nets: Vec<Network>| Filter {
            addresses: Some((Logic::Positive, nets)),
            ..Filter::default()
        };
        let ignore = |nets: Vec<Network>| Filter {
            addresses: Some((Logic::Negative, nets)),
            ..Filter::default()
        };
        let host = |a: [u8; 4]| Network::host(IpAddr::V4(Ipv4Addr::from(a)));
        let net = |a: [u8; 4], p| Network {
            addr: IpAddr::V4(Ipv4Addr::from(a)),
            prefix: p,
        };
        assert!(accept(vec![host([10, 0, 0, 5])]).accepts(&e));
        assert!(accept(vec![host([172, 16, 0, 9])]).accepts(&e));
        // The original destination is not looked at.
        assert!(!accept(vec![host([192, 0, 2, 1])]).accepts(&e));
        assert!(accept(vec![net([172, 16, 0, 0], 12)]).accepts(&e));
        assert!(accept(vec![host([9, 9, 9, 9]), net([10, 0, 0, 0], 8)]).accepts(&e));
        assert!(!accept(vec![net([11, 0, 0, 0], 8)]).accepts(&e));
        assert!(!ignore(vec![net([10, 0, 0, 0], 24)]).accepts(&e));
        assert!(!ignore(vec![host([172, 16, 0, 9])]).accepts(&e));
        assert!(ignore(vec![host([192, 0, 2, 1])]).accepts(&e));
        // IPv6 networks say nothing about IPv4 entries.
        let v6 = Network::host(IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert!(!accept(vec![v6]).accepts(&e));
        assert!(ignore(vec![v6]).accepts(&e));
    }

    #[test]
    fn state_only_judges_tcp_with_a_state() {
        let f = Filter {
            tcp_states: Some((Logic::Positive, vec![TcpState::Established])),
            ..Filter::default()
        };
        assert!(f.accepts(&tcp([1; 4], [2; 4], [2; 4], TcpState::Established)));
        assert!(!f.accepts(&tcp([1; 4], [2; 4], [2; 4], TcpState::SynSent)));
        let mut udp = tcp([1; 4], [2; 4], [2; 4], TcpState::SynSent);
        udp.orig.as_mut().unwrap().proto = Some(l4proto::UDP);
        udp.protoinfo = None;
        assert!(f.accepts(&udp));
        let mut no_state = tcp([1; 4], [2; 4], [2; 4], TcpState::SynSent);
        no_state.protoinfo = None;
        assert!(f.accepts(&no_state));
    }

    #[test]
    fn kernel_description_mirrors_the_filter() {
        let f = Filter {
            protocols: Some((Logic::Positive, vec![l4proto::TCP])),
            addresses: Some((
                Logic::Negative,
                vec![
                    Network {
                        addr: "10.0.0.0".parse().unwrap(),
                        prefix: 8,
                    },
                    Network::host("::1".parse().unwrap()),
                ],
            )),
            tcp_states: Some((Logic::Positive, vec![TcpState::Established])),
        };
        let e = f.event_filter().unwrap();
        assert!(e.l4proto.contains(l4proto::TCP));
        assert_eq!(e.l4proto.logic, Logic::Positive);
        assert!(e.tcp_state.contains(TcpState::Established));
        assert_eq!((e.ipv4_src.len(), e.ipv4_dst.len()), (1, 1));
        assert_eq!((e.ipv6_src.len(), e.ipv6_dst.len()), (1, 1));
        assert_eq!(e.ipv4_dst.logic, Logic::Negative);
        let mut prog = vec![conntrack_codec::filter::bpf::BpfInsn::default(); 4096];
        assert!(e.compile(&mut prog).unwrap() > 10);
    }
}
