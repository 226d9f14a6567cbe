//! One packet explained: what the node's firewall does with it, the rule that decides, the
//! firewalld zone and element, and (when it is refused) the commands that let it through. The
//! same chain of evidence a diagnosis gives for a catalog flow, for any packet a user (or the
//! differential harness) names.

use serde::{Deserialize, Serialize};

use super::{Inputs, RuleInfo, firewalld, fix};
use crate::model::{
    catalog::Protocol,
    nft::{Packet, Verdict, evaluate},
};

/// What happens to a packet, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// `accept`, `drop`, `reject`, or `unknown: why`.
    pub verdict: String,
    /// The deciding rule: for an accepted packet the last rule that accepted it.
    pub rule: Option<RuleInfo>,
    pub zone: Option<String>,
    pub binding: Option<String>,
    /// The firewalld element (or the rule outside firewalld) that decides.
    pub element: Option<String>,
    /// The commands that let a refused packet through; empty otherwise, and when the verdict
    /// or the element is unknown.
    pub fix: Vec<String>,
}

/// Explains `pkt` against the node's ruleset and firewalld's configuration.
pub fn explain_packet(inp: &Inputs, pkt: &Packet) -> Explanation {
    let Some(ruleset) = inp.ruleset else {
        return Explanation {
            verdict: "unknown: no nftables ruleset was read".into(),
            rule: None,
            zone: None,
            binding: None,
            element: None,
            fix: Vec::new(),
        };
    };
    let outcome = evaluate(ruleset, pkt);
    let rule = outcome.deciding.as_ref().map(RuleInfo::of);
    let port = Protocol::from_number(pkt.l4proto).port_label(pkt.dport);
    let (zone, element, fix) = match &outcome.verdict {
        Verdict::Drop | Verdict::Reject => fix::blame(inp, None, &port, pkt, &outcome),
        Verdict::Accept
            if outcome.deciding.as_ref().is_some_and(|r| {
                inp.permanent.is_some() && firewalld::is_firewalld_rule(inp, r)
            }) =>
        {
            let b = firewalld::explain(inp, None, pkt, &outcome);
            (b.zone, b.element, Vec::new())
        }
        _ => (None, None, Vec::new()),
    };
    Explanation {
        verdict: outcome.verdict.to_string(),
        rule,
        zone: zone.as_ref().map(|z| z.zone.clone()),
        binding: zone.map(|z| z.binding.to_string()),
        element,
        fix,
    }
}
