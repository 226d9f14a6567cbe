//! Away from the node, facts the inputs lack are stood in for, never read from the machine
//! doing the analysis: a NIC named [`NIC`] at a documentation address, a pod subnet from the
//! profile's pod CIDR on the pod bridge the rules name (`kube-bridge`, `cni0`, `cali+`), the
//! profile's overlay device. A flow is then evaluated once with the stand-ins and again with
//! every value they could really have that the evidence singles out (each interface the rules
//! and zones name, each address the rules name); a verdict that holds for all of them is
//! certain, one that does not is only likely, and says what would settle it.

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr},
};

use super::Inputs;
use crate::model::{
    firewalld::{Permanent, Runtime},
    net::Cidr,
    nft::{Outcome, Packet, Ruleset},
    node::{Fact, IfAddr, NodeFacts, Vxlan},
    view::{NodeView, RuleGap, Unknown},
};

/// The name the node's NIC goes by when the inputs do not say.
pub const NIC: &str = "<nic>";
/// The node's address when the inputs do not say (TEST-NET-1, RFC 5737).
const NODE_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// Most variants of one flow evaluated; beyond, the verdict is only likely.
const MAX_VARIANTS: usize = 512;
/// Most addresses taken from the rules as values a stand-in address could have.
const MAX_ADDRS: usize = 24;

/// What a diagnosis away from the node stands in for, and the values it could really have.
#[derive(Clone, Debug, Default)]
pub struct Guesses {
    /// The groups of facts the inputs lack.
    pub unknown: BTreeSet<Fact>,
    /// The interfaces [`NIC`] could really be: those the rules and zones name (empty when the
    /// node's addresses are known).
    pub nic_names: Vec<String>,
    /// Addresses that stand in for unknown ones.
    pub addr_stand_ins: Vec<IpAddr>,
    /// Addresses the rules name: values a stand-in address could really have.
    pub addr_candidates: Vec<Cidr>,
    /// Rules of pasted listings that could not be read.
    pub gaps: Vec<RuleGap>,
    /// What the inputs do not hold, for the report.
    pub unknowns: Vec<Unknown>,
    /// The commands whose output would settle the stand-ins.
    pub settle: Vec<String>,
}

/// The facts of a view with stand-ins for the unknown ones, and what was stood in for.
pub fn stand_ins(inp: &Inputs, view: &NodeView) -> (NodeFacts, Guesses) {
    let mut facts = view.facts.clone();
    let mut g = Guesses {
        unknown: facts.unknown.clone(),
        gaps: view.gaps.clone(),
        unknowns: view.unknown.clone(),
        ..Guesses::default()
    };
    let names = named_interfaces(
        view.ruleset.as_ref(),
        view.permanent.as_ref(),
        view.runtime.as_ref(),
    );
    let profile = &inp.catalog.profile;
    let pod_cidr = inp.pod_cidrs().into_iter().find(|c| c.addr().is_ipv4());
    if !facts.knows(Fact::Addresses) {
        g.nic_names = names
            .iter()
            .filter(|n| !is_cluster_device(n))
            .cloned()
            .collect();
        facts.addrs.push(IfAddr {
            iface: NIC.into(),
            addr: IpAddr::V4(NODE_ADDR),
            prefix: 24,
        });
        g.addr_stand_ins
            .push(IfAddr::peer(&facts.addrs[facts.addrs.len() - 1]));
        g.addr_stand_ins.push(IpAddr::V4(NODE_ADDR));
        let bridge = pod_bridge(&names, &profile.name);
        if let Some(IpAddr::V4(base)) = pod_cidr.map(|c| c.addr()) {
            let o = base.octets();
            let local = IfAddr {
                iface: bridge.clone(),
                addr: IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], 1)),
                prefix: 24,
            };
            g.addr_stand_ins.push(local.peer());
            g.addr_stand_ins.push(local.addr);
            facts.addrs.push(local);
        }
        g.unknowns.push(Unknown {
            what: Fact::Addresses.what().into(),
            why: format!(
                "not in the inputs: cluster traffic is taken to arrive on a NIC called {NIC} at {NODE_ADDR}, and pods to sit on {bridge}; a verdict that could differ for {} is only likely",
                if g.nic_names.is_empty() {
                    "another address".to_string()
                } else {
                    format!("the interfaces the rules name ({})", g.nic_names.join(", "))
                }
            ),
            settle: vec![Fact::Addresses.command().into(), BUNDLE.into()],
        });
        g.settle.push(Fact::Addresses.command().into());
        if !facts.knows(Fact::Routes) {
            facts.default_v4 = Some(NIC.into());
        }
    }
    if !facts.knows(Fact::Links)
        && let Some((_, overlay)) = profile.overlay()
        && (profile.name != "generic" || names.contains(&overlay.device))
    {
        facts.vxlans.push(Vxlan {
            name: overlay.device.clone(),
            mtu: 0,
            local: None,
            link: (!facts.knows(Fact::Addresses)).then(|| NIC.to_string()),
        });
    }
    g.addr_candidates = addresses_named(view.ruleset.as_ref());
    (facts, g)
}

/// What a bundle holds: what settles every fact at once.
pub const BUNDLE: &str = "tracer bundle -o node.tar.gz   # on the node";

/// Devices of the cluster's network rather than the node's NIC: pods' interfaces and
/// bridges, overlays, tunnels, loopback.
fn is_cluster_device(name: &str) -> bool {
    const PREFIXES: [&str; 14] = [
        "lo",
        "cali",
        "veth",
        "flannel",
        "cni",
        "kube-",
        "vxlan",
        "tunl",
        "docker",
        "cilium",
        "weave",
        "nodelocaldns",
        "wg",
        "tap",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p)) || name == super::guesses::NIC
}

/// The bridge (or pod interface) local pods sit on: the one the rules name, else the
/// profile's provider's.
fn pod_bridge(names: &[String], profile: &str) -> String {
    for wanted in ["kube-bridge", "cni0"] {
        if names.iter().any(|n| n == wanted) {
            return wanted.into();
        }
    }
    if let Some(cali) = names.iter().find(|n| n.starts_with("cali")) {
        return cali.clone();
    }
    match profile {
        "k0s-kube-router" => "kube-bridge",
        "k0s-calico" => "cali0",
        _ => "cni0",
    }
    .into()
}

/// The interfaces the rules and the zones name; a wildcard (`eth+`, nft's `"eth*"`) as a name
/// it matches (`eth0`).
pub fn named_interfaces(
    ruleset: Option<&Ruleset>,
    permanent: Option<&Permanent>,
    runtime: Option<&Runtime>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        let name = match name.strip_suffix('*').or_else(|| name.strip_suffix('+')) {
            Some(stem) => format!("{stem}0"),
            None => name.to_string(),
        };
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
    };
    for name in rule_texts(ruleset).flat_map(interfaces_in) {
        add(&name);
    }
    let zones = permanent
        .map(|p| p.zones.values())
        .into_iter()
        .flatten()
        .chain(runtime.map(|r| r.zones.values()).into_iter().flatten());
    for z in zones {
        for i in &z.interfaces {
            add(i);
        }
    }
    out
}

/// The text of every rule of the ruleset.
fn rule_texts(ruleset: Option<&Ruleset>) -> impl Iterator<Item = &str> {
    ruleset
        .into_iter()
        .flat_map(|rs| &rs.tables)
        .flat_map(|t| &t.chains)
        .flat_map(|c| &c.rules)
        .map(|r| r.text.as_str())
}

/// The interface names a rule's text compares with (`iifname "eth0"`, `oifname { "a", "b" }`,
/// `iif "lo"`).
fn interfaces_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let words: Vec<&str> = text.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        if !matches!(*w, "iifname" | "oifname" | "iif" | "oif") {
            continue;
        }
        let mut rest = words[i + 1..]
            .iter()
            .copied()
            .skip_while(|w| *w == "!=" || *w == "==");
        match rest.next() {
            Some("{") => {
                for item in rest.take_while(|w| *w != "}") {
                    out.push(item.trim_matches([',', '"']).to_string());
                }
            }
            Some(name) => out.push(name.trim_matches('"').to_string()),
            None => {}
        }
    }
    out.retain(|n| !n.is_empty());
    out
}

/// The IPv4 prefixes and addresses the rules name, at most [`MAX_ADDRS`].
fn addresses_named(ruleset: Option<&Ruleset>) -> Vec<Cidr> {
    let mut out: Vec<Cidr> = Vec::new();
    for text in rule_texts(ruleset) {
        {
            for token in text
                .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '/'))
                .filter(|t| t.contains('.'))
            {
                let cidr = token.parse::<Cidr>().ok().or_else(|| {
                    token
                        .parse::<Ipv4Addr>()
                        .ok()
                        .and_then(|a| Cidr::new(a.into(), 32))
                });
                if let Some(c) = cidr
                    && !out.contains(&c)
                    && out.len() < MAX_ADDRS
                {
                    out.push(c);
                }
            }
        }
    }
    out
}

impl Guesses {
    /// The packets `pkt` stands for: itself, and each with a stand-in replaced by a value the
    /// rules single out. `None` when there would be more than [`MAX_VARIANTS`].
    pub fn variants(&self, pkt: &Packet, pod: Option<&Cidr>) -> Option<Vec<Packet>> {
        let names = |iface: &Option<String>| -> Vec<Option<String>> {
            let mut v = vec![iface.clone()];
            if iface.as_deref() == Some(NIC) {
                v.extend(self.nic_names.iter().cloned().map(Some));
            }
            v
        };
        let addrs = |a: IpAddr| -> Vec<IpAddr> {
            let mut v = vec![a];
            if self.addr_stand_ins.contains(&a) {
                let in_pods = pod.is_some_and(|p| p.contains(a));
                for c in &self.addr_candidates {
                    // A stand-in pod address varies within the pod CIDR, the node's outside.
                    let inside = pod.is_some_and(|p| p.contains(c.addr()));
                    if inside != in_pods {
                        continue;
                    }
                    for x in [c.addr(), next(c.addr())] {
                        if c.contains(x) && !v.contains(&x) {
                            v.push(x);
                        }
                    }
                }
            }
            v
        };
        let (iifs, oifs) = (names(&pkt.iif), names(&pkt.oif));
        let (saddrs, daddrs) = (addrs(pkt.saddr), addrs(pkt.daddr));
        if iifs.len() * oifs.len() * saddrs.len() * daddrs.len() > MAX_VARIANTS {
            return None;
        }
        let mut out = Vec::new();
        for iif in &iifs {
            for oif in &oifs {
                for s in &saddrs {
                    for d in &daddrs {
                        out.push(Packet {
                            iif: iif.clone(),
                            oif: oif.clone(),
                            saddr: *s,
                            daddr: *d,
                            ..pkt.clone()
                        });
                    }
                }
            }
        }
        Some(out)
    }

    /// The rules that could not be read and that the walk behind `outcome` may have met: in
    /// a chain it went through, or a base chain of its hook in a table of its family.
    pub fn gaps_met<'g>(&'g self, outcome: &Outcome, pkt: &Packet) -> Vec<&'g RuleGap> {
        self.gaps
            .iter()
            .filter(|gap| {
                (gap.family == pkt.ip_family() || gap.family.name() == "inet")
                    && (gap.base_hook == Some(pkt.hook)
                        || outcome
                            .deciding
                            .as_ref()
                            .is_some_and(|r| r.chain == gap.chain)
                        || outcome
                            .trail
                            .iter()
                            .any(|r| r.chain == gap.chain || r.text.contains(&gap.chain)))
            })
            .collect()
    }
}

/// The address after `a` (an address inside a prefix, not its network address).
fn next(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4).saturating_add(1))),
        v6 @ IpAddr::V6(_) => v6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_named_by_rule_texts() {
        assert_eq!(
            interfaces_in(r#"iifname "kube-bridge" oifname != { "eth0", "eth1" } accept"#),
            ["kube-bridge", "eth0", "eth1"]
        );
        assert_eq!(interfaces_in("iif \"lo\" accept"), ["lo"]);
        assert!(interfaces_in("udp dport 4789 accept").is_empty());
        assert!(is_cluster_device("cali1234") && is_cluster_device(NIC));
        assert!(!is_cluster_device("eth0") && !is_cluster_device("ens3"));
    }
}
