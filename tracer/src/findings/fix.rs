//! The commands that fix a finding, in the form the distribution's guide uses: `firewall-cmd
//! --permanent` plus a reload while firewalld runs, `firewall-offline-cmd` when it does not, a
//! service's port when the zone uses the distribution's service (k0s), the zone's port
//! otherwise (k3s), a zone source for pod traffic; for a rule outside firewalld (or a node
//! without it), an accepting rule before it, in iptables-nft syntax for iptables' tables and in
//! nft syntax otherwise.

use super::Inputs;
use crate::model::{
    catalog::{Component, Role},
    firewalld::{
        Permanent, ZoneBinding,
        change::{Change, Opening, Tool, ZoneAddition},
        zone_in_chain, zone_of,
    },
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
/// packet), the element and the commands that let it through. A rule outside firewalld
/// (iptables-nft rules of kube-proxy or the CNI, a hand-made nft table) is named itself: no
/// firewalld change would let the packet past it.
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
        .filter(|r| inp.permanent.is_some() && !is_firewalld_rule(r));
    let hit = zone_of(outcome, pkt, inp.permanent)
        .filter(|_| outside.is_none() || outcome.trail.iter().any(is_firewalld_rule));
    // With firewalld's permanent configuration, `zone_of` always names a zone, and the
    // filter above keeps it when no rule outside firewalld decided.
    let (element, fix) = match (inp.permanent.zip(tool(inp)), &hit) {
        (Some((permanent, tool)), Some(hit)) if outside.is_none() => {
            for_rejected_flow(inp, permanent, tool, component, port, pkt, hit)
        }
        // A rule outside firewalld, or no firewalld: the deciding rule is the element.
        _ => outcome
            .deciding
            .as_ref()
            .map_or((None, Vec::new()), |rule| {
                outside_firewalld(inp, port, rule)
            }),
    };
    (hit, element, fix)
}

/// The element responsible for a rejected flow and the commands that let it through.
fn for_rejected_flow(
    inp: &Inputs,
    permanent: &Permanent,
    tool: Tool,
    component: Option<&Component>,
    port: &str,
    pkt: &Packet,
    hit: &ZoneBinding,
) -> (Option<String>, Vec<String>) {
    let pod_cidr = inp.pod_cidrs().into_iter().find(|c| c.contains(pkt.saddr));
    // Pod traffic is let in by the pod CIDR being a source of the cluster's zone.
    if let Some(cidr) = pod_cidr {
        let target =
            cluster_zone(inp, permanent).unwrap_or_else(|| permanent.conf.default_zone.clone());
        if !permanent.has_source_covering(&cidr) {
            return (
                Some(format!(
                    "the pod CIDR {cidr} is not a source of zone {target}"
                )),
                tool.commands(&[Change::zone(target, ZoneAddition::Source(cidr.to_string()))]),
            );
        }
    }
    let Some(component) = component else {
        let zone = &hit.zone;
        return (
            Some(format!("zone {zone} does not forward this pod traffic")),
            tool.commands(&[Change::zone(zone, ZoneAddition::Forward)]),
        );
    };
    let zone = &hit.zone;
    if permanent.zone_allows(zone, port) {
        // Allowed by the zone and still refused: something else decides (a rich rule, a
        // rule of another table). The deciding rule in the finding is the element.
        return (
            Some(format!(
                "zone {zone} allows {port}, yet another rule refuses it"
            )),
            Vec::new(),
        );
    }
    let spec = component
        .port_specs()
        .into_iter()
        .find(|s| s.split('/').next() == port.split('/').next() || s == port)
        .unwrap_or_else(|| port.to_string());
    // The distribution's own service, when the zone uses it (k0s-worker, k0s-controller...):
    // the first of this node's roles that runs the component, in role order.
    let zone_services: &[String] = permanent
        .zones
        .get(zone)
        .map_or(&[], |z| z.services.as_slice());
    if inp.catalog.profile.firewalld.services
        && let Some(svc) = inp
            .roles
            .iter()
            .filter(|r| **r != Role::External && component.to.contains(r))
            .map(|r| inp.catalog.profile.service_name(*r))
            .find(|s| zone_services.contains(s))
    {
        return (
            Some(format!("service {svc} of zone {zone} lacks {spec}")),
            tool.commands(&[Change::OpenInService {
                service: svc,
                opening: Opening::from_spec(&spec),
            }]),
        );
    }
    (
        Some(format!("zone {zone} lacks {spec}")),
        tool.commands(&[Change::zone(
            zone,
            ZoneAddition::Open(Opening::from_spec(&spec)),
        )]),
    )
}

/// The rule was written by firewalld (its nftables table, or one of its zone chains): changing
/// firewalld's configuration changes it.
fn is_firewalld_rule(rule: &RuleRef) -> bool {
    (rule.family == Family::Inet && rule.table == "firewalld")
        || zone_in_chain(&rule.chain).is_some()
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
