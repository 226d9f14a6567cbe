//! Which zone handles a packet, and why: the one zone resolver. Its answer is a
//! [`ZoneBinding`], the zone and the [`Binding`] that chose it (a source, an interface, or the
//! default zone). It answers two questions the same way:
//!
//! - from the permanent configuration ([`Permanent::zone_for`]): where firewalld would send
//!   traffic from an address arriving on an interface;
//! - from an nftables evaluation ([`zone_of`]): where the packet actually went, read from the
//!   dispatch rule in the evaluation's trail, falling back to the configuration when the trail
//!   shows none.
//!
//! Zone selection follows the dispatch chain firewalld 1.3.3 builds (`filter_INPUT_ZONES`,
//! `core/nftables.py`), seen in the lab as:
//!
//! ```text
//! ip saddr 10.244.1.128/25 goto filter_IN_block
//! ip saddr 10.0.0.0/8 goto filter_IN_dmz
//! ip saddr 10.244.0.0/16 goto filter_IN_public
//! ip saddr 10.244.1.0/24 goto filter_IN_trusted
//! iifname "eth9" goto filter_IN_work
//! iifname "eth0" goto filter_IN_public
//! goto filter_IN_public
//! ```
//!
//! Sources come first, **ordered by zone name, not by prefix length**: when two zones' sources
//! overlap, the zone whose name sorts first wins, however specific the other's source is
//! (10.244.1.5 goes to `public` above, not `trusted`). Then interfaces, then the default zone.
//! Interface rules are inserted at the top of the interface block, so among overlapping
//! wildcards the last one bound wins: on a start or reload zones are applied in name order and
//! their interfaces in their own order, so the last zone's last interface comes first
//! ([`dispatch`]; runtime `--add-interface` calls put theirs on top in the order they ran).
//!
//! Three layouts of the dispatch exist in nftables:
//!
//! - 1.x: `filter_INPUT_ZONES` holds one `goto filter_IN_<zone>` per binding; the zone's
//!   target is the last rule of the zone chain.
//! - 2.0 to 2.4: one flat `filter_INPUT_POLICIES` chain; per binding, policy jumps, then
//!   `jump filter_IN_<zone>`, then the zone's target as a rule with the same match.
//! - 2.5 and later: `filter_INPUT_dispatch` jumps to `filter_IN_<zone>_to_HOST` (forward:
//!   `filter_FWD_<in>_dispatch_stage2`, then `filter_FWD_<in>_to_<out>`), which ends in the target.
//!
//! In all of them the binding is the dispatch rule's match: a source address, an interface, or
//! nothing for the default zone.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use std::collections::BTreeMap;

use super::check::cidr_contains;
use super::ipset::Membership;
use super::judge::iface_matches;
use super::{Permanent, Zone};
use crate::model::nft::{Outcome, Packet};

/// The zone firewalld handles a packet in, and the binding that chose it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneBinding {
    /// The zone's name.
    pub zone: String,
    /// Why this zone.
    pub binding: Binding,
}

impl ZoneBinding {
    fn new(zone: impl Into<String>, binding: Binding) -> Self {
        ZoneBinding {
            zone: zone.into(),
            binding,
        }
    }
}

/// Why the resolver picked its zone. Displayed as a diagnosis prints it: `source
/// 10.244.0.0/16`, `interface eth0`, `default zone`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Binding {
    /// A source of the zone contains the address.
    Source(ZoneSource),
    /// The zone is bound to the interface (as written: `eth+` for a wildcard; from an
    /// evaluation, the packet's input interface).
    Interface(String),
    /// Nothing bound: the default zone.
    DefaultZone,
    /// Only from an evaluation: the packet went through the zone's chains, but no dispatch rule
    /// is in its trail and no configuration was given to tell which binding sent it there.
    Unknown,
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Binding::Source(s) => write!(f, "source {s}"),
            Binding::Interface(i) => write!(f, "interface {i}"),
            Binding::DefaultZone => f.write_str("default zone"),
            Binding::Unknown => f.write_str("unknown binding"),
        }
    }
}

/// A zone's source binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ZoneSource {
    /// An address, a network (`10.0.0.0/8`, `10.0.0.0/255.0.0.0`, `fd00::/8`) or a MAC
    /// address, as the zone writes it (or, without the zone, as the dispatch rule does).
    Address(String),
    /// An ipset: `ipset:NAME` in a zone, `@NAME` in the dispatch rule.
    Ipset(String),
}

impl From<&str> for ZoneSource {
    /// A source as a zone writes it: `ipset:NAME`, else an address.
    fn from(s: &str) -> Self {
        match s.strip_prefix("ipset:") {
            Some(set) => ZoneSource::Ipset(set.to_string()),
            None => ZoneSource::Address(s.to_string()),
        }
    }
}

impl fmt::Display for ZoneSource {
    /// The address as written; an ipset as the dispatch rule names it (`@NAME`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZoneSource::Address(a) => f.write_str(a),
            ZoneSource::Ipset(set) => write!(f, "@{set}"),
        }
    }
}

impl Zone {
    /// The first of the zone's sources, as written, that contains `ip`: an address, or a prefix
    /// with a length or (IPv4) a netmask such as `10.0.0.0/255.0.0.0`. MAC and ipset sources
    /// never match (the packet's MAC and the sets' entries are not known here).
    pub fn source_containing(&self, ip: IpAddr) -> Option<&str> {
        self.sources
            .iter()
            .map(String::as_str)
            .find(|s| cidr_contains(s, ip))
    }
}

impl Permanent {
    /// The zone firewalld would pick for traffic from `source` arriving on `iface`, and the
    /// binding that picked it ([`dispatch`]). A source it cannot match here (a MAC address, an
    /// ipset whose members are not known) is passed over.
    pub fn zone_for(&self, iface: &str, source: IpAddr) -> ZoneBinding {
        let matches = |s: &str| match s.strip_prefix("ipset:") {
            Some(set) => Ok(self
                .ipsets
                .get(set)
                .is_some_and(|set| set.contains(source) == Membership::In)),
            None => Ok(cidr_contains(s, source)),
        };
        dispatch(&self.zones, &self.conf.default_zone, iface, matches)
            .unwrap_or_else(|_| ZoneBinding::new(&self.conf.default_zone, Binding::DefaultZone))
    }
}

/// The zone firewalld's dispatch chain (`filter_INPUT_ZONES`, `filter_FORWARD_ZONES`) sends a
/// packet arriving on `iface` to, and why, in the order firewalld 1.3.3 writes that chain on a
/// start or reload: sources first, ordered by zone name (stable: a zone's sources in its own
/// order); then interfaces, each inserted at the top of the interface block as zones are
/// applied in name order, so the last zone's last interface comes first; then the default
/// zone's catch-all. `source_matches` says whether the packet's source is in a zone source
/// (`ipset:NAME` included), or why that cannot be told; such an answer ends the dispatch as
/// unknown.
pub fn dispatch(
    zones: &BTreeMap<String, Zone>,
    default_zone: &str,
    iface: &str,
    source_matches: impl Fn(&str) -> Result<bool, String>,
) -> Result<ZoneBinding, String> {
    // BTreeMap order is byte order of the UTF-8 names, which is Python's code point order.
    for (name, zone) in zones {
        for s in &zone.sources {
            if source_matches(s)? {
                return Ok(ZoneBinding::new(name, Binding::Source(s.as_str().into())));
            }
        }
    }
    for (name, zone) in zones.iter().rev() {
        for bound in zone.interfaces.iter().rev() {
            if iface_matches(bound, iface) {
                return Ok(ZoneBinding::new(name, Binding::Interface(bound.clone())));
            }
        }
    }
    Ok(ZoneBinding::new(default_zone, Binding::DefaultZone))
}

/// Chain-name parts that are not zone names: sub-chains of a zone chain.
const ZONE_CHAIN_SUFFIXES: &[&str] = &[
    "_pre",
    "_log",
    "_deny",
    "_allow",
    "_post",
    "_dispatch_stage2",
    "_dispatch",
];

/// The zone named by a chain such as `filter_IN_public_allow`, `filter_FWD_trusted`,
/// `filter_IN_public_to_HOST` (2.5+) or `filter_FWD_public_to_trusted` (the ingress zone).
pub fn zone_in_chain(chain: &str) -> Option<String> {
    let rest = [
        "filter_IN_",
        "filter_FWD_",
        "nat_PRE_",
        "nat_POST_",
        "mangle_PRE_",
    ]
    .iter()
    .find_map(|p| chain.strip_prefix(p))?;
    if rest.starts_with("policy_") {
        return None;
    }
    let rest = ZONE_CHAIN_SUFFIXES
        .iter()
        .find_map(|s| rest.strip_suffix(s))
        .unwrap_or(rest);
    // Stage-3 chains of 2.5+ name the pair: the ingress zone comes first.
    let zone = rest.split_once("_to_").map_or(rest, |(ingress, _)| ingress);
    (!zone.is_empty()).then(|| zone.to_string())
}

/// Chains whose rules dispatch to zones, in every layout.
fn is_dispatch_chain(chain: &str) -> bool {
    chain.ends_with("_ZONES") || chain.ends_with("_POLICIES") || chain.ends_with("_dispatch")
}

/// The binding a dispatch rule stands for, given the packet that matched it.
fn binding_of(rule_text: &str, pkt: &Packet, zone: &str, permanent: Option<&Permanent>) -> Binding {
    if rule_text.contains("saddr") || rule_text.contains("daddr") {
        // The zone's source covering the packet, else the address the rule names.
        let from_rule = || {
            let mut words = rule_text.split_whitespace();
            words.by_ref().find(|w| *w == "saddr" || *w == "daddr");
            words.next().map(|w| match w.strip_prefix('@') {
                Some(set) => ZoneSource::Ipset(set.to_string()),
                None => ZoneSource::Address(w.to_string()),
            })
        };
        let source = permanent
            .and_then(|p| p.zones.get(zone))
            .and_then(|z| z.source_containing(pkt.saddr))
            .map(ZoneSource::from)
            .or_else(from_rule)
            .unwrap_or_else(|| ZoneSource::Address(pkt.saddr.to_string()));
        Binding::Source(source)
    } else if rule_text.contains("iifname") || rule_text.contains("oifname") {
        Binding::Interface(pkt.iif.clone().unwrap_or_default())
    } else {
        Binding::DefaultZone
    }
}

/// The zone and binding of an evaluated packet, from the dispatch rule in its trail, or, when
/// the trail shows none (another table decided first), from the permanent configuration.
/// `None` only without a configuration and without a zone chain in the evaluation.
pub fn zone_of(
    outcome: &Outcome,
    pkt: &Packet,
    permanent: Option<&Permanent>,
) -> Option<ZoneBinding> {
    for r in &outcome.trail {
        if !is_dispatch_chain(&r.chain) {
            continue;
        }
        // The dispatch rule's target chain names the zone.
        let target = r.text.split_whitespace().find_map(zone_in_chain);
        if let Some(zone) = target {
            let binding = binding_of(&r.text, pkt, &zone, permanent);
            return Some(ZoneBinding::new(zone, binding));
        }
    }
    if let Some(zone) = outcome
        .deciding
        .as_ref()
        .and_then(|d| zone_in_chain(&d.chain))
    {
        return Some(ZoneBinding::new(zone, Binding::Unknown));
    }
    let p = permanent?;
    Some(p.zone_for(pkt.iif.as_deref().unwrap_or(""), pkt.saddr))
}
