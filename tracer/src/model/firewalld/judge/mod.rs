//! Which element of firewalld's configuration decides a packet, by firewalld's own semantics
//! rather than by reading its nftables rules: the zone the packet is dispatched to (sources by
//! zone name, then interfaces in the order firewalld inserts them, then the default zone), the
//! policies whose ingress (and egress) bindings match it, by priority, before and after the
//! zone's own rules, the zone's stage chains (`pre`, `deny`, `allow`, `post`: [`gen`]), then
//! ICMP's treatment and the zone's target. Written against firewalld 1.3.3's nftables backend
//! (`core/nftables.py`, `fw_zone.py`, `fw_policy.py`, `rich.py`) and checked against the kernel
//! by the differential harness (`tests/fwdiff`).
//!
//! The answer ([`Judgement`]) names the deciding element, the binding that chose the zone and
//! where in firewalld's chains the deciding rule sits ([`Place`]: the chain, and the rule's
//! index among the chain's verdict rules), so that a diagnosis can check it against the nft
//! evaluation of the generated rules and say "unknown" when the two disagree. A part it cannot
//! evaluate (a MAC address, an ipset whose members are not known, a port given by name) that
//! could decide makes the verdict unknown, with the reason; so does a forward port that
//! translates the packet, since the nat chains are not evaluated.

mod cond;
mod rules;
mod walk;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::direct::Direct;
use super::ipset::IpSet;
use super::policy::Policy;
use super::{Permanent, Runtime, Service, Zone, ZoneBinding};
use crate::model::nft::Verdict;

pub use cond::{Addr, Cond, Tri, addr_matches, iface_matches};
pub use rules::{ElementRef, Gen, Kind, stage_rules};
pub use walk::{hook_policies, judge};

/// firewalld's configuration as it applies it: what the judge and the fix planner read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    pub default_zone: String,
    pub zones: BTreeMap<String, Zone>,
    pub services: BTreeMap<String, Service>,
    pub policies: BTreeMap<String, Policy>,
    pub ipsets: BTreeMap<String, IpSet>,
    pub direct: Direct,
}

impl Config {
    /// The permanent configuration: what firewalld applies at start and on `--reload`.
    pub fn from_permanent(p: &Permanent) -> Config {
        Config {
            default_zone: p.conf.default_zone.clone(),
            zones: p.zones.clone(),
            services: p.services.clone(),
            policies: p.policies.clone(),
            ipsets: p.ipsets.clone(),
            direct: p.direct.clone(),
        }
    }

    /// What is in force: the runtime's zones, services and default zone over the permanent
    /// policies, ipsets and direct rules (which the runtime reader does not read). firewalld
    /// answers some lists over D-Bus in no particular order (a zone's rich rules come from a
    /// set), while its chains hold them in the order it applied them: the files' order on a
    /// reload, then runtime additions. So each list keeps the permanent order of what the files
    /// hold, followed by what only the runtime has.
    pub fn in_force(p: &Permanent, r: Option<&Runtime>) -> Config {
        let mut c = Config::from_permanent(p);
        if let Some(r) = r {
            c.default_zone.clone_from(&r.default_zone);
            c.zones = r
                .zones
                .iter()
                .map(|(name, z)| {
                    let z = match p.zones.get(name) {
                        Some(pz) => in_file_order(pz, z),
                        None => z.clone(),
                    };
                    (name.clone(), z)
                })
                .collect();
            for (name, s) in &r.services {
                c.services.insert(name.clone(), s.clone());
            }
        }
        c
    }

    /// Zones with an interface or a source: firewalld applies these (and the default zone).
    pub fn is_active(&self, zone: &str) -> bool {
        self.zones
            .get(zone)
            .is_some_and(|z| !z.interfaces.is_empty() || !z.sources.is_empty())
    }
}

/// `runtime`'s items, those the permanent list holds first, in its order.
fn merge<T: PartialEq + Clone>(permanent: &[T], runtime: &[T]) -> Vec<T> {
    permanent
        .iter()
        .filter(|x| runtime.contains(x))
        .chain(runtime.iter().filter(|x| !permanent.contains(x)))
        .cloned()
        .collect()
}

/// The runtime zone `rt` with its lists in the order firewalld applied them.
fn in_file_order(perm: &Zone, rt: &Zone) -> Zone {
    Zone {
        interfaces: merge(&perm.interfaces, &rt.interfaces),
        sources: merge(&perm.sources, &rt.sources),
        services: merge(&perm.services, &rt.services),
        ports: merge(&perm.ports, &rt.ports),
        protocols: merge(&perm.protocols, &rt.protocols),
        rich_rules: merge(&perm.rich_rules, &rt.rich_rules),
        icmp_blocks: merge(&perm.icmp_blocks, &rt.icmp_blocks),
        source_ports: merge(&perm.source_ports, &rt.source_ports),
        forward_ports: merge(&perm.forward_ports, &rt.forward_ports),
        ..rt.clone()
    }
}

/// Whose rules: a zone's or a policy's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Owner {
    Zone(String),
    Policy(String),
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Zone(z) => write!(f, "zone {z}"),
            Owner::Policy(p) => write!(f, "policy {p}"),
        }
    }
}

/// What decided, within its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum What {
    /// An element's rule.
    Element(ElementRef),
    /// The target (`default`, `ACCEPT`, `DROP`, `%%REJECT%%`; a policy's `REJECT`...).
    Target(String),
    /// A zone with the default target lets ICMP in.
    IcmpDefault,
    /// icmp-block-inversion refuses the ICMP types its icmp-blocks do not list.
    IcmpInversion,
}

/// The element that decided and whose it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decider {
    pub owner: Owner,
    pub what: What,
}

/// Where firewalld put the deciding rule: the chain (firewalld 1.x names) and the rule's index
/// among the chain's verdict rules (accept, drop, reject), with how many there are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Place {
    pub chain: String,
    pub index: usize,
    pub count: usize,
}

/// What firewalld's configuration does with a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    /// The zone the packet is dispatched to, and why.
    pub zone: Option<ZoneBinding>,
    /// `None` when nothing of the configuration decided (the node's loopback) or the verdict is
    /// unknown before anything decided.
    pub decider: Option<Decider>,
    pub place: Option<Place>,
}

impl Judgement {
    fn unknown(why: impl Into<String>, zone: Option<ZoneBinding>) -> Judgement {
        Judgement {
            verdict: Verdict::Unknown(why.into()),
            zone,
            decider: None,
            place: None,
        }
    }

    /// Whether firewalld refuses the packet.
    pub fn refuses(&self) -> bool {
        matches!(self.verdict, Verdict::Drop | Verdict::Reject)
    }
}

impl fmt::Display for Decider {
    /// As a diagnosis names it: `rich rule 'rule ...' of zone public`, `port 22/tcp of zone
    /// public`, `the target DROP of zone drop`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.owner;
        match &self.what {
            What::Element(ElementRef::Service { name, listed, what }) if name == listed => {
                write!(f, "service {name} ({what}) of {o}")
            }
            What::Element(ElementRef::Service { name, listed, what }) => {
                write!(f, "service {name} ({what}, included by {listed}) of {o}")
            }
            What::Element(ElementRef::Port(p)) => write!(f, "port {p} of {o}"),
            What::Element(ElementRef::Protocol(p)) => write!(f, "protocol {p} of {o}"),
            What::Element(ElementRef::SourcePort(p)) => write!(f, "source port {p} of {o}"),
            What::Element(ElementRef::IcmpBlock(n)) => write!(f, "icmp-block {n} of {o}"),
            What::Element(ElementRef::RichRule(t)) => write!(f, "rich rule '{t}' of {o}"),
            What::Element(ElementRef::Forward(x)) => {
                write!(f, "intra-zone forwarding of {o} (to {x})")
            }
            What::Target(t) => write!(f, "the target {t} of {o}"),
            What::IcmpDefault => write!(f, "{o}, whose target default lets ICMP in"),
            What::IcmpInversion => write!(
                f,
                "icmp-block-inversion of {o}: the ICMP types it does not list are rejected"
            ),
        }
    }
}
