//! What the evidence's silence says. A network provider that programs iptables leaves chains
//! of its own (kube-router's `KUBE-ROUTER-FORWARD`, Calico's `cali-FORWARD`, Flannel's
//! `FLANNEL-FWD`); an iptables-nft listing without them, from a node whose legacy tables are
//! not in the evidence, suggests the provider writes to the other backend, where the rules
//! that accept its traffic would be, while this backend's policies still apply to it.

use super::{Diagnosis, Finding, Inputs, Severity, guesses};
use crate::model::nft::Family;

/// The provider chains a profile's network provider creates, by the prefix all of them share.
const PROVIDER_CHAINS: [(&str, &str, &str); 3] = [
    (
        "kube-router",
        "KUBE-ROUTER-",
        "KUBE-ROUTER-INPUT, KUBE-ROUTER-FORWARD, KUBE-ROUTER-OUTPUT",
    ),
    ("calico", "cali-", "cali-INPUT, cali-FORWARD, cali-OUTPUT"),
    ("flannel", "FLANNEL-", "FLANNEL-FWD, FLANNEL-POSTRTG"),
];

/// The provider's chains missing from the iptables-nft tables of the evidence.
pub struct AbsentChains {
    pub provider: &'static str,
    pub chains: &'static str,
}

impl AbsentChains {
    /// The hint, as a sentence to add to a finding.
    pub fn sentence(&self) -> String {
        format!(
            "{}'s chains ({}) are not in this iptables-nft listing: {} probably programs the legacy backend, whose rules the evidence does not hold; the refusal here applies all the same (see iptables/{}-chains-absent).",
            self.provider, self.chains, self.provider, self.provider
        )
    }
}

/// Away from the node, with an iptables-nft listing and no legacy one: the profile's provider
/// chains, when none is in the listing.
pub fn absent_chains(inp: &Inputs) -> Option<AbsentChains> {
    inp.guesses.as_ref()?;
    if inp.iptables.legacy_known {
        return None;
    }
    let ruleset = inp.ruleset?;
    let has_iptables = ruleset
        .tables
        .iter()
        .any(|t| matches!(t.family, Family::Ip | Family::Ip6) && t.name == "filter");
    if !has_iptables {
        return None;
    }
    let profile = &inp.catalog.profile.name;
    let (provider, prefix, chains) = PROVIDER_CHAINS
        .into_iter()
        .find(|(p, _, _)| profile.contains(p.split('-').next().unwrap_or(p)))?;
    let present = inp
        .iptables
        .nft_chains
        .iter()
        .any(|c| c.split('/').nth(1).is_some_and(|c| c.starts_with(prefix)));
    (!present).then_some(AbsentChains { provider, chains })
}

pub fn check(inp: &Inputs, d: &mut Diagnosis) {
    let Some(absent) = absent_chains(inp) else {
        return;
    };
    let mut f = Finding::new(
        format!("iptables/{}-chains-absent", absent.provider),
        Severity::Warning,
        format!(
            "no {} chains in the iptables-nft tables of the evidence",
            absent.provider
        ),
        format!(
            "{} programs iptables ({}); none of its chains is in this listing, so it probably runs with the legacy backend. Both backends filter every packet: the rules that let its traffic through may be in the legacy tables, and a DROP policy or rule here refuses that traffic whatever they say.",
            absent.provider, absent.chains
        ),
    );
    f.element = Some(format!("absent: {}", absent.chains));
    f.likely([
        "iptables-legacy-save".to_string(),
        "ip6tables-legacy-save".to_string(),
        guesses::BUNDLE.to_string(),
    ]);
    d.findings.push(f);
}
