//! What the node's kernel says about its network, read so the answer belongs to the current
//! network namespace: addresses (getifaddrs), sysctls and routes (/proc/sys, /proc/net, which
//! follow the reader's namespace), VXLAN devices (`ip -d -j link`), and listening TCP ports.
//! The facts are data (serializable), so a support bundle carries them as read; a diagnosis
//! away from the node has only those its evidence holds, and [`NodeFacts::unknown`] says which
//! are missing.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    process::Command,
};

use serde::{Deserialize, Serialize};

use super::{ifaces::Interface, net::Cidr, pods::PodLink};
use crate::sys::ifaddrs;

/// An address of an interface, with its prefix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfAddr {
    pub iface: String,
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IfAddr {
    pub fn cidr(&self) -> Cidr {
        Cidr::new(self.addr, self.prefix).expect("an address with its prefix")
    }

    /// An address in the same subnet that is not this one: where a peer would send from.
    pub fn peer(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let own = u32::from(a);
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                let (net, last) = (own & mask, own | !mask);
                // The last usable address, else the first ones; on a /31 the other end.
                let candidates = match 32 - u32::from(self.prefix) {
                    0 => vec![own],
                    1 => vec![net, last],
                    _ => vec![last - 1, net + 1, net + 2],
                };
                let peer = candidates.into_iter().find(|c| *c != own).unwrap_or(own);
                IpAddr::V4(Ipv4Addr::from(peer))
            }
            IpAddr::V6(a) => {
                let mut o = a.octets();
                o[15] = if o[15] == 0xfe { 0xfd } else { 0xfe };
                IpAddr::V6(Ipv6Addr::from(o))
            }
        }
    }
}

/// Every IPv4 and IPv6 address of the namespace's interfaces; none when they cannot be read.
pub fn addresses() -> Vec<IfAddr> {
    ifaddrs::addresses()
        .unwrap_or_default()
        .into_iter()
        .map(|a| IfAddr {
            iface: a.iface,
            addr: a.addr,
            prefix: a.prefix,
        })
        .collect()
}

/// An IPv4 sysctl under /proc/sys/net/ipv4, as an integer.
pub fn ipv4_sysctl(path: &str) -> Option<i64> {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/{path}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The reverse-path filter mode the kernel applies on each interface that has the sysctl:
/// the larger of the interface's own value and `all`'s (0 off, 1 strict, 2 loose).
fn rp_filters(ifaces: &[Interface]) -> BTreeMap<String, i64> {
    let all = ipv4_sysctl("conf/all/rp_filter").unwrap_or(0);
    ifaces
        .iter()
        .filter_map(|i| {
            let own = ipv4_sysctl(&format!("conf/{}/rp_filter", i.name))?;
            Some((i.name.clone(), own.max(all)))
        })
        .collect()
}

/// The interface of the IPv4 default route, if there is one.
pub fn default_route_v4() -> Option<String> {
    let text = std::fs::read_to_string("/proc/net/route").ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // Destination and mask both zero, and the route is up (flag 0x1).
        let up = f
            .get(3)
            .and_then(|x| u32::from_str_radix(x, 16).ok())
            .is_some_and(|fl| fl & 1 != 0);
        (f.len() > 7 && f[1] == "00000000" && f[7] == "00000000" && up).then(|| f[0].to_string())
    })
}

/// A VXLAN device and what it runs over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vxlan {
    pub name: String,
    pub mtu: u32,
    pub local: Option<IpAddr>,
    /// The lower device it is bound to, when it is bound to one.
    pub link: Option<String>,
}

/// The namespace's VXLAN devices, from `ip -d -j link show type vxlan`.
pub fn vxlans(ifaces: &[Interface]) -> Vec<Vxlan> {
    let Ok(out) = Command::new("ip")
        .args(["-d", "-j", "link", "show", "type", "vxlan"])
        .output()
    else {
        return Vec::new();
    };
    let Ok(list) = serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|l| {
            let data = &l["linkinfo"]["info_data"];
            let link = data["link"]
                .as_u64()
                .and_then(|i| ifaces.iter().find(|f| u64::from(f.index) == i))
                .map(|f| f.name.clone())
                .or_else(|| l["link"].as_str().map(str::to_string));
            Some(Vxlan {
                name: l["ifname"].as_str()?.to_string(),
                mtu: l["mtu"].as_u64()? as u32,
                local: data["local"].as_str().and_then(|a| a.parse().ok()),
                link,
            })
        })
        .collect()
}

/// TCP ports something listens on in this namespace (IPv4 and IPv6).
pub fn listening_tcp_ports() -> Vec<u16> {
    let mut ports = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for l in text.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            // State 0A is LISTEN.
            if f.len() > 3
                && f[3] == "0A"
                && let Some(port) = f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            {
                ports.push(port);
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// A group of facts about the node that a diagnosis away from it may lack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fact {
    /// The interfaces, their MTUs and the VXLAN devices ([`NodeFacts::ifaces`],
    /// [`NodeFacts::vxlans`]).
    Links,
    /// The interfaces' addresses.
    Addresses,
    /// The routing table (the default route).
    Routes,
    /// `ip_forward` and `rp_filter`.
    Sysctls,
    /// The TCP ports something listens on (the node's roles).
    Listening,
}

impl Fact {
    pub const ALL: [Fact; 5] = [
        Fact::Links,
        Fact::Addresses,
        Fact::Routes,
        Fact::Sysctls,
        Fact::Listening,
    ];

    /// What it is, for a sentence.
    pub fn what(self) -> &'static str {
        match self {
            Fact::Links => "the node's interfaces (names, MTUs, VXLAN devices)",
            Fact::Addresses => "the node's addresses",
            Fact::Routes => "the node's routes",
            Fact::Sysctls => "the node's sysctls (ip_forward, rp_filter)",
            Fact::Listening => "the ports the node listens on",
        }
    }

    /// The command that shows it on the node (its output is evidence `diagnose` reads).
    pub fn command(self) -> &'static str {
        match self {
            Fact::Links => "ip -d link show",
            Fact::Addresses => "ip addr show",
            Fact::Routes => "ip route show",
            Fact::Sysctls => "sysctl -a -r 'ip_forward|rp_filter'",
            Fact::Listening => "ss -ltn",
        }
    }
}

/// Facts gathered once per diagnosis.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFacts {
    pub ifaces: Vec<Interface>,
    pub addrs: Vec<IfAddr>,
    pub vxlans: Vec<Vxlan>,
    pub default_v4: Option<String>,
    pub ip_forward: Option<i64>,
    pub rp_filter: BTreeMap<String, i64>,
    pub listening: Vec<u16>,
    /// The pods' links: host veth ends whose other end is in a pod's namespace.
    #[serde(default)]
    pub pods: Vec<PodLink>,
    /// The groups of facts this does not hold (away from the node, what the evidence lacks):
    /// their fields are empty, which means "unknown", not "none". Empty on the node.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub unknown: BTreeSet<Fact>,
}

impl NodeFacts {
    /// The facts of the current network namespace.
    pub fn read() -> std::io::Result<Self> {
        let ifaces = super::ifaces::list()?;
        let rp_filter = rp_filters(&ifaces);
        Ok(NodeFacts {
            addrs: addresses(),
            vxlans: vxlans(&ifaces),
            default_v4: default_route_v4(),
            ip_forward: ipv4_sysctl("ip_forward"),
            rp_filter,
            listening: listening_tcp_ports(),
            pods: super::pods::read(),
            ifaces,
            unknown: BTreeSet::new(),
        })
    }

    /// No fact known: what a diagnosis from files starts with.
    pub fn unknown() -> Self {
        NodeFacts {
            unknown: Fact::ALL.into_iter().collect(),
            ..NodeFacts::default()
        }
    }

    /// Whether this group of facts is known.
    pub fn knows(&self, fact: Fact) -> bool {
        !self.unknown.contains(&fact)
    }

    pub fn iface(&self, name: &str) -> Option<&Interface> {
        self.ifaces.iter().find(|i| i.name == name)
    }

    pub fn ipv4_of(&self, iface: &str) -> Option<&IfAddr> {
        self.addrs
            .iter()
            .find(|a| a.iface == iface && a.addr.is_ipv4())
    }

    /// The interface that owns `addr`.
    pub fn owner_of(&self, addr: IpAddr) -> Option<&str> {
        self.addrs
            .iter()
            .find(|a| a.addr == addr)
            .map(|a| a.iface.as_str())
    }

    /// The underlay device of a VXLAN device: the lower device it is bound to, else the
    /// interface that owns its local address.
    pub fn underlay_of<'a>(&'a self, v: &'a Vxlan) -> Option<&'a str> {
        v.link
            .as_deref()
            .or_else(|| v.local.and_then(|l| self.owner_of(l)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_sit_in_the_subnet_but_are_not_us() {
        let a = IfAddr {
            iface: "eth0".into(),
            addr: "192.168.10.22".parse().unwrap(),
            prefix: 24,
        };
        assert_eq!(a.peer(), "192.168.10.254".parse::<IpAddr>().unwrap());
        let b = IfAddr {
            iface: "eth0".into(),
            addr: "192.168.10.254".parse().unwrap(),
            prefix: 24,
        };
        assert_eq!(b.peer(), "192.168.10.1".parse::<IpAddr>().unwrap());
        let p2p = IfAddr {
            iface: "x".into(),
            addr: "10.0.0.1".parse().unwrap(),
            prefix: 31,
        };
        assert!(p2p.cidr().contains(p2p.peer()));
    }

    #[test]
    fn this_namespace_has_loopback_facts() {
        let facts = NodeFacts::read().unwrap();
        assert!(
            facts
                .addrs
                .iter()
                .any(|a| a.addr == IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert!(facts.iface("lo").is_some());
    }
}
