//! The node's facts from pasted command output: `ip -d link` and `ip addr` (interfaces, MTUs,
//! VXLAN devices and what they run over, addresses), `ip route` (the default route, and the
//! node's addresses from its kernel routes' `src`), `sysctl` (ip_forward, rp_filter) and
//! `ss -ltn` (listening ports). Each fills the facts it holds and marks them known.

use std::net::IpAddr;

use crate::model::{
    ifaces::{self, Interface},
    node::{Fact, IfAddr, NodeFacts, Vxlan},
};

/// An interface from its first line: `2: eth0@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu
/// 1500 ...`.
fn header(words: &[&str]) -> Option<Interface> {
    let index = words.first()?.trim_end_matches(':').parse::<u32>().ok()?;
    let name = words.get(1)?.trim_end_matches(':');
    let name = name.split('@').next().unwrap_or(name).to_string();
    let flags = words.get(2).copied().unwrap_or("");
    let mtu = words
        .iter()
        .position(|w| *w == "mtu")
        .and_then(|i| words.get(i + 1))
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let loopback = flags.contains("LOOPBACK");
    Some(Interface {
        name,
        index,
        up: flags.split([',', '<', '>']).any(|f| f == "UP"),
        loopback,
        link_type: if loopback { 772 } else { 1 },
        driver: None,
        is_virtual: loopback,
        mtu,
    })
}

/// `ip -d link` or `ip addr` (with or without `-d`): fills the interfaces (when `-d` shows
/// their details), VXLAN devices and addresses. Returns what it filled, and what it could not
/// use.
pub fn links(text: &str, facts: &mut NodeFacts) -> (Vec<String>, Vec<String>) {
    let details = text.contains(" promiscuity ");
    let mut ifaces: Vec<Interface> = Vec::new();
    let mut vxlans: Vec<(Vxlan, Option<String>)> = Vec::new();
    let mut addrs: Vec<IfAddr> = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if !line.starts_with(' ') && !line.starts_with('\t') {
            ifaces.extend(header(&words));
            continue;
        }
        let Some(current) = ifaces.last_mut() else {
            continue;
        };
        match words.as_slice() {
            ["link/none", ..] => current.link_type = 65534,
            ["inet" | "inet6", cidr, ..] => {
                if let Some((a, p)) = cidr.split_once('/')
                    && let (Ok(addr), Ok(prefix)) = (a.parse::<IpAddr>(), p.parse::<u8>())
                {
                    addrs.push(IfAddr {
                        iface: current.name.clone(),
                        addr,
                        prefix,
                    });
                }
            }
            // `ip -d link` names a virtual device's kind as its driver does (but `vlan`).
            [kind, ..] if *kind == "vlan" || ifaces::VIRTUAL_DRIVERS.contains(kind) => {
                current.driver = Some((*kind).to_string());
                current.is_virtual = true;
                if *kind == "vxlan" {
                    let after = |key: &str| {
                        words
                            .iter()
                            .position(|w| *w == key)
                            .and_then(|i| words.get(i + 1))
                            .map(|w| (*w).to_string())
                    };
                    vxlans.push((
                        Vxlan {
                            name: current.name.clone(),
                            mtu: current.mtu,
                            local: after("local").and_then(|a| a.parse().ok()),
                            link: None,
                        },
                        after("dev"),
                    ));
                }
            }
            _ => {}
        }
    }
    let mut used = Vec::new();
    let mut unused = Vec::new();
    if details {
        facts.vxlans = vxlans
            .into_iter()
            .map(|(mut v, dev)| {
                v.link = dev;
                v
            })
            .collect();
        used.push(format!(
            "{} interfaces with their MTUs, {} VXLAN devices",
            ifaces.len(),
            facts.vxlans.len()
        ));
        facts.ifaces = ifaces;
        facts.unknown.remove(&Fact::Links);
    } else {
        unused.push("the interfaces' kinds and VXLAN details (they need `ip -d`)".into());
    }
    if !addrs.is_empty() {
        used.push(format!("{} addresses", addrs.len()));
        facts.addrs = addrs;
        facts.unknown.remove(&Fact::Addresses);
    }
    (used, unused)
}

/// `ip route`: the default route, and the addresses of the node's kernel routes (`proto kernel
/// ... src A` on a prefix) when no `ip addr` gave them.
pub fn routes(text: &str, facts: &mut NodeFacts) -> (Vec<String>, Vec<String>) {
    let mut default = None;
    let mut addrs = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |key: &str| {
            words
                .iter()
                .position(|w| *w == key)
                .and_then(|i| words.get(i + 1))
                .copied()
        };
        match words.first() {
            Some(&"default") if default.is_none() => default = after("dev").map(str::to_string),
            Some(prefix) => {
                if let (Some(dev), Some(src), Some((_, len))) =
                    (after("dev"), after("src"), prefix.split_once('/'))
                    && let (Ok(addr), Ok(len)) = (src.parse::<IpAddr>(), len.parse::<u8>())
                {
                    addrs.push(IfAddr {
                        iface: dev.to_string(),
                        addr,
                        prefix: len,
                    });
                }
            }
            None => {}
        }
    }
    let mut used = vec![match &default {
        Some(d) => format!("the default route (via {d})"),
        None => "the absence of a default route".to_string(),
    }];
    facts.default_v4 = default;
    facts.unknown.remove(&Fact::Routes);
    if !facts.knows(Fact::Addresses) && !addrs.is_empty() {
        used.push(format!(
            "{} addresses, from the kernel routes' src",
            addrs.len()
        ));
        facts.addrs = addrs;
        facts.unknown.remove(&Fact::Addresses);
    }
    (used, Vec::new())
}

/// `sysctl` output: ip_forward and the rp_filter the kernel applies per interface.
pub fn sysctls(text: &str, facts: &mut NodeFacts) -> (Vec<String>, Vec<String>) {
    let mut all = 0;
    let mut own = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, Ok(value)) = (key.trim(), value.trim().parse::<i64>()) else {
            continue;
        };
        if key == "net.ipv4.ip_forward" {
            facts.ip_forward = Some(value);
        } else if let Some(iface) = key
            .strip_prefix("net.ipv4.conf.")
            .and_then(|k| k.strip_suffix(".rp_filter"))
        {
            match iface {
                "all" => all = value,
                "default" => {}
                i => own.push((i.to_string(), value)),
            }
        }
    }
    facts.rp_filter = own.into_iter().map(|(i, v)| (i, v.max(all))).collect();
    let mut used = Vec::new();
    let mut unused = Vec::new();
    if facts.ip_forward.is_some() {
        used.push("net.ipv4.ip_forward".to_string());
        facts.unknown.remove(&Fact::Sysctls);
    } else {
        unused.push("no net.ipv4.ip_forward line: the sysctls stay unknown".to_string());
    }
    if !facts.rp_filter.is_empty() {
        used.push(format!("rp_filter of {} interfaces", facts.rp_filter.len()));
    }
    (used, unused)
}

/// `ss -ltn`: the TCP ports something listens on.
pub fn listening(text: &str, facts: &mut NodeFacts) -> (Vec<String>, Vec<String>) {
    let mut ports: Vec<u16> = text
        .lines()
        .filter(|l| l.starts_with("LISTEN"))
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|local| local.rsplit(':').next()?.parse().ok())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    let used = vec![format!("{} listening TCP ports", ports.len())];
    facts.listening = ports;
    facts.unknown.remove(&Fact::Listening);
    (used, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_addresses_and_routes() {
        let mut f = NodeFacts::unknown();
        let link = "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00 promiscuity 0\n2: eth0@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UP\n    link/ether 02:1a:b0:00:16:02 brd ff:ff:ff:ff:ff:ff promiscuity 0\n    veth addrgenmode eui64\n5: flannel.1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UNKNOWN\n    link/ether 6e:1b:e5:4c:2a:01 brd ff:ff:ff:ff:ff:ff promiscuity 0\n    vxlan id 1 local 192.168.10.21 dev eth0 srcport 0 0 dstport 8472 nolearning ttl auto\n";
        links(link, &mut f);
        assert!(f.knows(Fact::Links) && !f.knows(Fact::Addresses));
        assert_eq!(f.iface("eth0").map(|i| i.mtu), Some(1450));
        assert_eq!(f.vxlans[0].link.as_deref(), Some("eth0"));
        assert_eq!(f.vxlans[0].local, Some("192.168.10.21".parse().unwrap()));
        routes(
            "default via 192.168.10.1 dev eth0 \n10.244.2.0/24 dev kube-bridge proto kernel scope link src 10.244.2.1 \n192.168.10.0/24 dev eth0 proto kernel scope link src 192.168.10.22\n",
            &mut f,
        );
        assert_eq!(f.default_v4.as_deref(), Some("eth0"));
        assert_eq!(f.ipv4_of("eth0").map(|a| a.prefix), Some(24));
        assert!(f.knows(Fact::Addresses));
        sysctls(
            "net.ipv4.ip_forward = 0\nnet.ipv4.conf.all.rp_filter = 1\nnet.ipv4.conf.eth0.rp_filter = 0\n",
            &mut f,
        );
        assert_eq!((f.ip_forward, f.rp_filter.get("eth0")), (Some(0), Some(&1)));
        listening(
            "State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\nLISTEN 0 4096 0.0.0.0:6443 0.0.0.0:*\nLISTEN 0 4096 [::]:10250 [::]:*\n",
            &mut f,
        );
        assert_eq!(f.listening, [6443, 10250]);
        assert!(f.unknown.is_empty(), "{:?}", f.unknown);
    }
}
