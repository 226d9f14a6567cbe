//! The matches of the rules firewalld generates, as conditions on a described packet: what
//! `_rich_rule_family_fragment`, `_rule_addr_fragment`, `build_policy_ports_rules` and their
//! siblings in firewalld's nftables backend turn an element into. Each answers yes, no, or
//! unknown with the reason (a MAC address, an ipset whose members are not known, an ICMP code
//! the packet description lacks): the judge never guesses.

use std::fmt;
use std::net::IpAddr;

use super::super::check::{parse_cidr, port_bounds, source_cidr};
use super::super::icmp::icmp_type;
use super::super::ipset::Membership;
use super::Config;
use crate::model::nft::Packet;

/// A three-valued answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tri {
    Yes,
    No,
    Unknown(String),
}

/// What an address match names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// An address or network as written.
    Net(String),
    /// An ipset's members.
    Ipset(String),
    /// A MAC address (`ether saddr`).
    Mac(String),
}

/// One match of a generated rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// `meta nfproto ipv4|ipv6` (true: IPv6).
    Family(bool),
    /// `ip[6] saddr [!=] ADDR`.
    Saddr { addr: Addr, invert: bool },
    /// `ip[6] daddr [!=] ADDR`.
    Daddr { addr: Addr, invert: bool },
    /// `meta l4proto NAME` (a name or number as firewalld writes it).
    Protocol(String),
    /// `PROTO dport PORT[-PORT]`.
    Dport { proto: String, port: String },
    /// `PROTO sport PORT[-PORT]`.
    Sport { proto: String, port: String },
    /// `icmp[v6] type NAME` by firewalld's ICMP type name, in one family (true: IPv6).
    Icmp { name: String, v6: bool },
    /// `iifname PATTERN` (`eth+` is a wildcard).
    Iif(String),
    /// `oifname PATTERN`.
    Oif(String),
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let not = |i: &bool| if *i { "!= " } else { "" };
        let a = |a: &Addr| match a {
            Addr::Net(s) | Addr::Mac(s) => s.clone(),
            Addr::Ipset(s) => format!("@{s}"),
        };
        match self {
            Cond::Family(v6) => write!(f, "nfproto {}", if *v6 { "ipv6" } else { "ipv4" }),
            Cond::Saddr { addr, invert } => write!(f, "saddr {}{}", not(invert), a(addr)),
            Cond::Daddr { addr, invert } => write!(f, "daddr {}{}", not(invert), a(addr)),
            Cond::Protocol(p) => write!(f, "l4proto {p}"),
            Cond::Dport { proto, port } => write!(f, "{proto} dport {port}"),
            Cond::Sport { proto, port } => write!(f, "{proto} sport {port}"),
            Cond::Icmp { name, v6 } => write!(f, "icmp{} {name}", if *v6 { "v6" } else { "" }),
            Cond::Iif(i) => write!(f, "iifname {i}"),
            Cond::Oif(o) => write!(f, "oifname {o}"),
        }
    }
}

/// Whether an interface name matches a firewalld interface (`eth+` matches every name starting
/// with `eth`, `+` every name).
pub fn iface_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('+') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

fn proto_number(name: &str) -> Option<u8> {
    name.parse::<u8>()
        .ok()
        .or_else(|| tracer_common::protocols::number(name))
}

/// Whether `ip` is matched by `addr`.
pub fn addr_matches(cfg: &Config, addr: &Addr, ip: IpAddr) -> Tri {
    match addr {
        Addr::Net(s) => {
            // firewalld matches IPv4 sources with `ip saddr`, IPv6 ones with `ip6 saddr`: a
            // packet of the other family does not match (nor its inversion).
            match source_cidr(s) {
                Some(c) if c.contains(ip) => Tri::Yes,
                Some(_) => Tri::No,
                None => Tri::Unknown(format!("{s:?} is not an address this model reads")),
            }
        }
        Addr::Ipset(name) => match cfg.ipsets.get(name) {
            None => Tri::Unknown(format!("ipset {name} is not defined")),
            Some(set) => match set.contains(ip) {
                Membership::In => Tri::Yes,
                Membership::Out => Tri::No,
                Membership::Unknown(why) => Tri::Unknown(why),
            },
        },
        Addr::Mac(m) => Tri::Unknown(format!(
            "the rule matches MAC address {m}, which a packet description does not carry"
        )),
    }
}

/// The family an address match applies to (`ip` or `ip6` in the generated rule); `None` for
/// a MAC address. An inverted match still requires the packet to be of that family.
fn addr_family(cfg: &Config, addr: &Addr) -> Option<bool> {
    match addr {
        Addr::Net(s) => parse_cidr(s).map(|(ip, _)| ip.is_ipv6()),
        Addr::Ipset(name) => cfg.ipsets.get(name).map(|s| s.family == "inet6"),
        Addr::Mac(_) => None,
    }
}

fn port_in(port: &str, value: u16) -> Tri {
    match port_bounds(port) {
        Some((lo, hi)) => {
            if lo <= value && value <= hi {
                Tri::Yes
            } else {
                Tri::No
            }
        }
        None => Tri::Unknown(format!(
            "port {port:?} is a service name this model does not resolve"
        )),
    }
}

impl Cond {
    /// Whether `pkt` meets this condition.
    pub fn test(&self, cfg: &Config, pkt: &Packet) -> Tri {
        let v6 = pkt.saddr.is_ipv6();
        let yes = |b: bool| if b { Tri::Yes } else { Tri::No };
        match self {
            Cond::Family(f) => yes(*f == v6),
            Cond::Saddr { addr, invert } | Cond::Daddr { addr, invert } => {
                let ip = if matches!(self, Cond::Saddr { .. }) {
                    pkt.saddr
                } else {
                    pkt.daddr
                };
                if addr_family(cfg, addr).is_some_and(|f| f != v6) {
                    return Tri::No;
                }
                match (addr_matches(cfg, addr, ip), invert) {
                    (Tri::Yes, false) | (Tri::No, true) => Tri::Yes,
                    (Tri::No, false) | (Tri::Yes, true) => Tri::No,
                    (u, _) => u,
                }
            }
            Cond::Protocol(p) => match proto_number(p) {
                Some(n) => yes(n == pkt.l4proto),
                None => Tri::Unknown(format!("protocol {p:?} is not in the protocol table")),
            },
            Cond::Dport { proto, port } | Cond::Sport { proto, port } => {
                if proto_number(proto) != Some(pkt.l4proto) {
                    return Tri::No;
                }
                let value = if matches!(self, Cond::Dport { .. }) {
                    pkt.dport
                } else {
                    pkt.sport
                };
                port_in(port, value)
            }
            Cond::Icmp { name, v6: family } => {
                if *family != v6 || pkt.l4proto != if v6 { 58 } else { 1 } {
                    return Tri::No;
                }
                let Some((ty, code)) = icmp_type(name, *family) else {
                    return Tri::No;
                };
                match (pkt.icmp_type, code) {
                    (None, _) => Tri::Unknown("the packet's ICMP type is not given".into()),
                    (Some(t), _) if t != ty => Tri::No,
                    (Some(_), None) => Tri::Yes,
                    (Some(_), Some(c)) => Tri::Unknown(format!(
                        "ICMP type {name} is type {ty} code {c}; the packet's code is not known"
                    )),
                }
            }
            Cond::Iif(i) => match &pkt.iif {
                Some(name) => yes(iface_matches(i, name)),
                None => Tri::Unknown("the packet's input interface is not given".into()),
            },
            Cond::Oif(o) => match &pkt.oif {
                Some(name) => yes(iface_matches(o, name)),
                None => Tri::Unknown("the packet's output interface is not given".into()),
            },
        }
    }
}

/// All of `conds` hold: the first `No` ends it, an unknown is kept unless a later `No` decides.
pub fn all(cfg: &Config, conds: &[Cond], pkt: &Packet) -> Tri {
    let mut unknown = None;
    for c in conds {
        match c.test(cfg, pkt) {
            Tri::Yes => {}
            Tri::No => return Tri::No,
            Tri::Unknown(why) => {
                unknown.get_or_insert(why);
            }
        }
    }
    unknown.map_or(Tri::Yes, Tri::Unknown)
}
