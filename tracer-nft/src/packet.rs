//! The packet the evaluator is asked about: where it is (hook, interfaces), its addresses,
//! protocol and ports, and the state the kernel would have for it (conntrack, mark, whether
//! the destination is the node's own).

use std::net::IpAddr;

use super::{Family, Hook};

/// A packet as the ruleset sees it at one hook, after any DNAT (addresses are the ones the
/// filter chains compare).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Where it is: [`Hook::Input`] for traffic to the node, [`Hook::Forward`] for routed
    /// traffic.
    pub hook: Hook,
    /// Input interface name (required at prerouting, input and forward).
    pub iif: Option<String>,
    /// Output interface name (required at forward, output and postrouting).
    pub oif: Option<String>,
    /// Source address; its family picks the tables (ip or ip6, plus inet).
    pub saddr: IpAddr,
    /// Destination address.
    pub daddr: IpAddr,
    /// IP protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6, ...).
    pub l4proto: u8,
    /// Source port (TCP, UDP, SCTP, DCCP, UDP-Lite).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Its conntrack state.
    pub ct_state: CtState,
    /// ICMP or ICMPv6 type, for ICMP packets.
    pub icmp_type: Option<u8>,
    /// The packet mark when it reaches the first chain.
    pub mark: u32,
    /// True when the destination is one of the node's addresses (`fib daddr type local`).
    pub daddr_is_local: bool,
}

impl Packet {
    /// The first packet of a new connection arriving on `iif` at `hook`: no output interface,
    /// no mark, not ICMP, and addressed to the node exactly when the hook is
    /// [`Hook::Input`]. Set the other fields with struct update syntax.
    pub fn new_connection(
        hook: Hook,
        iif: &str,
        saddr: IpAddr,
        daddr: IpAddr,
        l4proto: u8,
        sport: u16,
        dport: u16,
    ) -> Self {
        Packet {
            hook,
            iif: Some(iif.to_string()),
            oif: None,
            saddr,
            daddr,
            l4proto,
            sport,
            dport,
            ct_state: CtState::New,
            icmp_type: None,
            mark: 0,
            daddr_is_local: hook == Hook::Input,
        }
    }

    /// The packet's IP family, by its addresses: [`Family::Ip`] or [`Family::Ip6`].
    pub fn ip_family(&self) -> Family {
        if self.saddr.is_ipv4() {
            Family::Ip
        } else {
            Family::Ip6
        }
    }

    /// Whether `family` is the IP family the packet is not of: `ip` for an IPv6 packet, `ip6`
    /// for an IPv4 one; never `inet` or a non-IP family.
    pub(crate) fn is_other_family(&self, family: Family) -> bool {
        matches!(family, Family::Ip | Family::Ip6) && family != self.ip_family()
    }
}

/// A packet's conntrack state (`ct state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtState {
    /// The first packet of a connection.
    New,
    /// A packet of a connection that has seen traffic both ways.
    Established,
    /// A packet related to a known connection (ICMP errors, FTP data).
    Related,
    /// A packet conntrack could not place.
    Invalid,
    /// A packet exempted from tracking (`notrack`).
    Untracked,
}
