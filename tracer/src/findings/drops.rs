//! Why a packet was dropped. A drop the kernel reports as NETFILTER_DROP is evaluated again
//! against the live ruleset to find the rule that dropped it, then mapped back to the firewalld
//! zone, the binding that chose the zone, the missing element and the fix: the same chain of
//! evidence `diagnose` gives, for traffic that is really being lost.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Inputs, RuleInfo, fix};
use crate::model::{
    catalog::Protocol,
    nft::{Assume, Hook, Outcome, Packet, RuleRef, Verdict, evaluate_assuming},
};

/// A dropped flow as the probe saw it.
pub struct DroppedFlow<'a> {
    pub iface: &'a str,
    pub class: &'a str,
    pub proto: u8,
    pub saddr: IpAddr,
    pub daddr: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

/// The rule, zone and element behind a drop, and what fixes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropCause {
    pub rule: Option<RuleInfo>,
    pub zone: Option<String>,
    pub binding: Option<String>,
    pub element: Option<String>,
    pub fix: Vec<String>,
}

/// Re-evaluates a NETFILTER_DROP. `None` when the ruleset accepts the flow now (it changed
/// since, or the packet was dropped where the evaluation does not look: a NAT or output hook)
/// or the drop cannot be placed on a hook (no device: the node's own traffic).
pub fn explain(inp: &Inputs, d: &DroppedFlow) -> Option<DropCause> {
    let ruleset = inp.ruleset?;
    if d.iface == "-" {
        return None;
    }
    // Traffic to one of the node's addresses meets the input hook; anything else is routed.
    let to_node = inp.facts.owner_of(d.daddr).is_some();
    // A packet the firewall refuses is one of a connection it never let in.
    let pkt = Packet::new_connection(
        if to_node { Hook::Input } else { Hook::Forward },
        d.iface,
        d.saddr,
        d.daddr,
        d.proto,
        d.sport,
        d.dport,
    );
    let (outcome, limited) = beyond_limits(ruleset, &pkt);
    if !matches!(outcome.verdict, Verdict::Drop | Verdict::Reject) {
        return None;
    }
    let component = inp.catalog.components.iter().find(|c| c.name == d.class);
    let port = Protocol::from_number(d.proto).port_label(d.dport);
    let (hit, mut element, mut fix) = fix::blame(inp, component, &port, &pkt, &outcome);
    if !limited.is_empty() {
        // The refusing rule decides only over the rate: opening what it refuses would undo
        // the limit, which is the firewall's own choice, not a mistake to fix.
        let names: Vec<String> = limited.iter().map(ToString::to_string).collect();
        element = Some(format!(
            "over a rate limit: within its rate {} accepts this flow; over it the packet goes on to the rule that refused it",
            names.join(" and ")
        ));
        fix = vec![format!(
            "# no change printed: the flow is refused only over the rate of {}; raise or remove that limit if this rate is expected",
            names.join(" and ")
        )];
    }
    Some(DropCause {
        rule: outcome.deciding.as_ref().map(RuleInfo::of),
        zone: hit.as_ref().map(|h| h.zone.clone()),
        binding: hit.map(|h| h.binding.to_string()),
        element,
        fix,
    })
}

/// Whether a rule matches only within a rate (`limit rate 10/minute`, iptables' `-m limit`):
/// over it, the packet goes on to the next rule.
fn rate_limited(r: &RuleRef) -> bool {
    let nft = r.text.contains("limit rate ") && !r.text.contains("limit rate over");
    let saved = [Some(&r.text), r.saved.as_ref()]
        .into_iter()
        .flatten()
        .any(|t| t.contains("-m limit"));
    nft || saved
}

/// The evaluation of a packet the kernel dropped. The evaluator takes every rate limit as not
/// reached; when the packet is accepted only by rules that match within a rate, a drop means
/// it came over that rate: those rules are taken as not matching, and what refuses the packet
/// then is the answer, with the rate-limited rules that let it by (none when no limit was in
/// the way).
fn beyond_limits(ruleset: &crate::model::nft::Ruleset, pkt: &Packet) -> (Outcome, Vec<RuleRef>) {
    let mut assume = Assume::default();
    let mut limited = Vec::new();
    loop {
        let outcome = evaluate_assuming(ruleset, pkt, &assume);
        let next = (outcome.verdict == Verdict::Accept)
            .then(|| {
                outcome
                    .accepted
                    .iter()
                    .find(|r| rate_limited(r) && !assume.skip.contains(r))
            })
            .flatten();
        match next {
            // A bound: each round skips one more rule of a finite ruleset.
            Some(r) if limited.len() < 16 => {
                limited.push(r.clone());
                assume.skip.push(r.clone());
            }
            _ => {
                let refused = matches!(outcome.verdict, Verdict::Drop | Verdict::Reject);
                return (outcome, if refused { limited } else { Vec::new() });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{
        catalog::{Catalog, Role},
        iptables::IptablesState,
        nft::Ruleset,
        node::{IfAddr, NodeFacts},
    };

    #[test]
    fn a_vxlan_drop_is_traced_to_its_zone_and_rule() {
        let rs = Ruleset::from_json(
            include_str!("../../../tracer-nft/fixtures/calico-vxlan-blocked-worker-2.json"),
            "fixture",
        )
        .unwrap();
        let catalog = Catalog::builtin("k0s-calico").unwrap();
        let facts = NodeFacts {
            ifaces: Vec::new(),
            addrs: vec![IfAddr {
                iface: "eth0".into(),
                addr: "192.168.10.22".parse().unwrap(),
                prefix: 24,
            }],
            vxlans: Vec::new(),
            default_v4: Some("eth0".into()),
            ip_forward: Some(1),
            rp_filter: BTreeMap::default(),
            listening: Vec::new(),
            pods: Vec::new(),
            unknown: std::collections::BTreeSet::new(),
        };
        let iptables = IptablesState::default();
        let roles = [Role::Worker];
        let inp = Inputs {
            catalog: &catalog,
            roles: &roles,
            facts: std::borrow::Cow::Borrowed(&facts),
            cluster: None,
            permanent: None,
            runtime: None,
            ruleset: Some(&rs),
            iptables: &iptables,
            runtime_known: true,
            iptables_cmd: None,
            guesses: None,
        };
        let drop = DroppedFlow {
            iface: "eth0",
            class: "calico-vxlan",
            proto: 17,
            saddr: "192.168.10.21".parse().unwrap(),
            daddr: "192.168.10.22".parse().unwrap(),
            sport: 40000,
            dport: 4789,
        };
        let cause = explain(&inp, &drop).expect("the fixture rejects 4789/udp");
        let rule = cause.rule.unwrap();
        assert_eq!(
            (rule.table.as_str(), rule.chain.as_str(), rule.handle),
            ("firewalld", "filter_IN_public", 72)
        );
        assert_eq!(cause.zone.as_deref(), Some("public"));
        assert_eq!(cause.binding.as_deref(), Some("interface eth0"));
        // Allowed traffic has no cause to explain.
        let kubelet = DroppedFlow {
            dport: 10250,
            proto: 6,
            class: "kubelet",
            ..drop
        };
        assert!(explain(&inp, &kubelet).is_none());
    }
}
