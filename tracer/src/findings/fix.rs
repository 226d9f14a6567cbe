//! The commands that fix a finding, in the form the distribution's guide uses: `firewall-cmd
//! --permanent` plus a reload while firewalld runs, `firewall-offline-cmd` when it does not, a
//! service's port when the zone uses the distribution's service (k0s), the zone's port
//! otherwise (k3s), a zone source for pod traffic; for a rule outside firewalld (or a node
//! without it), an accepting rule before it, in iptables-nft syntax for iptables' tables and in
//! nft syntax otherwise.

use super::{Inputs, firewalld};
use crate::model::{
    catalog::Component,
    firewalld::{Permanent, ZoneBinding, change::Tool, zone_in_chain, zone_of},
    nft::{Family, Outcome, Packet, RuleRef},
};

/// How firewalld's configuration is changed on this node: `firewall-cmd` while firewalld runs,
/// `firewall-offline-cmd` when it is configured but not running; `None` without firewalld.
pub fn tool(inp: &Inputs) -> Option<Tool> {
    match (inp.runtime, inp.permanent) {
        (Some(_), _) => Some(Tool::Online),
        (None, Some(p)) if p.conf.file.is_some() => Some(Tool::Offline),
        _ => None,
    }
}

/// The zone whose interface binding covers the cluster NIC: where pod and service CIDRs and
/// cluster ports belong.
pub fn cluster_zone(inp: &Inputs, permanent: &Permanent) -> Option<String> {
    let nic = inp.cluster_addrs().into_iter().next()?;
    Some(permanent.zone_for(&nic.iface, nic.peer()).zone)
}

/// What a refused packet's evaluation blames: the zone (when firewalld's rules saw the
/// packet), the element and the commands that let it through. firewalld's own rules are
/// explained by firewalld's configuration ([`super::firewalld`]); a rule outside firewalld
/// (iptables-nft rules of kube-proxy or the CNI, a hand-made nft table) is named itself, and
/// when firewalld would refuse the packet too once that rule lets it by, firewalld's fix
/// follows.
pub fn blame(
    inp: &Inputs,
    component: Option<&Component>,
    port: &str,
    pkt: &Packet,
    outcome: &Outcome,
) -> (Option<ZoneBinding>, Option<String>, Vec<String>) {
    let outside = outcome
        .deciding
        .as_ref()
        .filter(|r| inp.permanent.is_some() && !firewalld::is_firewalld_rule(inp, r));
    if inp.permanent.is_some() && outside.is_none() {
        let b = firewalld::explain(inp, component, pkt, outcome);
        return (b.zone, b.element, b.fix);
    }
    let hit = zone_of(outcome, pkt, inp.permanent).filter(|_| {
        outcome
            .trail
            .iter()
            .any(|r| zone_in_chain(&r.chain).is_some())
    });
    let Some(rule) = outcome.deciding.as_ref() else {
        return (hit, None, Vec::new());
    };
    let (mut element, mut fix) = outside_firewalld(inp, port, rule);
    if let Some((more, cmds)) = firewalld::behind(inp, component, pkt) {
        element = Some(match element {
            Some(e) => format!("{e}; {more}"),
            None => more,
        });
        fix.extend(cmds);
    }
    (hit, element, fix)
}

/// iptables' tables, as iptables-nft creates them in nftables.
const IPTABLES_TABLES: [&str; 5] = ["filter", "nat", "mangle", "raw", "security"];

/// A rule outside firewalld refused the flow: name it and let the flow through before it, in
/// the syntax of the tool that owns the table (iptables-nft for iptables' tables, nft else).
fn outside_firewalld(inp: &Inputs, port: &str, rule: &RuleRef) -> (Option<String>, Vec<String>) {
    let family = rule.family.to_string();
    let iptables = match rule.family {
        Family::Ip => Some("iptables-nft"),
        Family::Ip6 => Some("ip6tables-nft"),
        _ => None,
    }
    .filter(|_| IPTABLES_TABLES.contains(&rule.table.as_str()));
    // iptables numbers rules by position in the chain, nft by handle.
    let position = inp
        .ruleset
        .and_then(|rs| rs.table(rule.family, &rule.table))
        .and_then(|t| t.chain(&rule.chain))
        .and_then(|c| c.rules.iter().position(|r| r.handle == rule.handle))
        .map(|i| i + 1);
    if let (Some(tool), Some(position)) = (iptables, position) {
        let element = format!(
            "rule {position} of iptables chain {} (table {}, {tool}), outside firewalld",
            rule.chain, rule.table
        );
        let Some((p, proto)) = port.split_once('/') else {
            return (Some(element), Vec::new());
        };
        return (
            Some(element),
            vec![
                format!(
                    "{tool} -t {} -I {} {position} -p {proto} --dport {p} -j ACCEPT",
                    rule.table, rule.chain
                ),
                format!(
                    "# or change the rule at its source (kube-proxy, the CNI, a boot script): see {tool} -t {} -S {}",
                    rule.table, rule.chain
                ),
            ],
        );
    }
    let Some((p, proto)) = port.split_once('/') else {
        return (
            Some(format!("rule {} in chain {}", rule.handle, rule.chain)),
            Vec::new(),
        );
    };
    let cmd = if rule.handle == 0 {
        format!(
            "nft add rule {family} {} {} {proto} dport {p} accept",
            rule.table, rule.chain
        )
    } else {
        format!(
            "nft insert rule {family} {} {} position {} {proto} dport {p} accept",
            rule.table, rule.chain, rule.handle
        )
    };
    (
        Some(format!(
            "rule {} of chain {} in table {family} {}",
            rule.handle, rule.chain, rule.table
        )),
        vec![
            cmd,
            "# and save the ruleset where this node loads it at boot (e.g. /etc/nftables.conf)"
                .into(),
        ],
    )
}
