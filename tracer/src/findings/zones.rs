//! From an evaluation back to firewalld: which zone the packet was dispatched to and which
//! binding chose it (a source, an interface, or the default zone), read from the dispatch rule
//! the evaluation went through. Three layouts exist:
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

use super::super::model::{
    firewalld::{Binding, Permanent},
    nft::{Outcome, Packet},
};

/// The zone a packet went to and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneHit {
    pub zone: String,
    pub binding: String,
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
fn binding_of(rule_text: &str, pkt: &Packet, zone: &str, permanent: Option<&Permanent>) -> String {
    if rule_text.contains("saddr") || rule_text.contains("daddr") {
        // The zone's source covering the packet, else the address the rule names.
        let from_rule = || {
            let mut words = rule_text.split_whitespace();
            words.by_ref().find(|w| *w == "saddr" || *w == "daddr");
            words.next().map(str::to_string)
        };
        let cidr = permanent
            .and_then(|p| p.zones.get(zone))
            .and_then(|z| z.source_containing(pkt.saddr))
            .map(str::to_string)
            .or_else(from_rule)
            .unwrap_or_else(|| pkt.saddr.to_string());
        format!("source {cidr}")
    } else if rule_text.contains("iifname") || rule_text.contains("oifname") {
        format!("interface {}", pkt.iif.clone().unwrap_or_default())
    } else {
        "default zone".to_string()
    }
}

/// The zone and binding of an evaluated packet, from the dispatch rule in its trail, or, when
/// the trail shows none (another table decided first), from the permanent configuration.
pub fn zone_of(outcome: &Outcome, pkt: &Packet, permanent: Option<&Permanent>) -> Option<ZoneHit> {
    for r in &outcome.trail {
        if !is_dispatch_chain(&r.chain) {
            continue;
        }
        // The dispatch rule's target chain names the zone.
        let target = r.text.split_whitespace().filter_map(zone_in_chain).next();
        if let Some(zone) = target {
            let binding = binding_of(&r.text, pkt, &zone, permanent);
            return Some(ZoneHit { zone, binding });
        }
    }
    if let Some(zone) = outcome
        .deciding
        .as_ref()
        .and_then(|d| zone_in_chain(&d.chain))
    {
        return Some(ZoneHit {
            binding: "unknown binding".into(),
            zone,
        });
    }
    let p = permanent?;
    let (zone, binding) = p.zone_for(pkt.iif.as_deref().unwrap_or(""), pkt.saddr);
    let binding = match binding {
        Binding::Source(s) => format!("source {s}"),
        Binding::Interface(i) => format!("interface {i}"),
        Binding::DefaultZone => "default zone".to_string(),
    };
    Some(ZoneHit { zone, binding })
}

#[cfg(test)]
mod tests;
