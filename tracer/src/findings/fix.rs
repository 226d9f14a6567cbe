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
/// When whether it runs is unknown (a capture without its runtime state), its table in the
/// ruleset says it does: firewalld removes it when it stops.
pub fn tool(inp: &Inputs) -> Option<Tool> {
    match (inp.runtime, inp.permanent) {
        (Some(_), _) => Some(Tool::Online),
        (None, Some(_)) if !inp.runtime_known && firewalld_runs(inp) => Some(Tool::Online),
        (None, Some(p)) if p.conf.file.is_some() => Some(Tool::Offline),
        _ => None,
    }
}

/// firewalld's table is in the ruleset.
fn firewalld_runs(inp: &Inputs) -> bool {
    inp.ruleset
        .is_some_and(|rs| rs.table(Family::Inet, "firewalld").is_some())
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
        // firewalld's own rule, its configuration unknown: the zone comes from the chain.
        (None, Some(hit)) if outcome.deciding.as_ref().is_some_and(is_firewalld_rule) => {
            zone_from_chain(outcome, port, hit)
        }
        // A rule outside firewalld, or no firewalld: the deciding rule is the element.
        _ => outcome
            .deciding
            .as_ref()
            .map_or((None, Vec::new()), |rule| {
                outside_firewalld(inp, port, pkt, rule)
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

/// A rule of firewalld's refused the flow and how to change its configuration is not known
/// (its configuration is not in the inputs, or whether it runs): the zone whose
/// chain refused it is named, and its port opened, which works whatever its services hold; a
/// refusal by a rich rule (a `_deny` chain) or of pod traffic has no fix that can be told.
fn zone_from_chain(
    outcome: &Outcome,
    port: &str,
    hit: &ZoneBinding,
) -> (Option<String>, Vec<String>) {
    let zone = &hit.zone;
    let chain = outcome.deciding.as_ref().map_or("", |r| r.chain.as_str());
    let element = format!(
        "zone {zone} refuses it (firewalld's chain {chain}); the zone's configuration is not in the inputs"
    );
    if chain.ends_with("_deny") || !port.contains('/') {
        return (Some(element), Vec::new());
    }
    (
        Some(element),
        Tool::Online.commands(&[Change::zone(
            zone,
            ZoneAddition::Open(Opening::from_spec(port)),
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
/// Pod traffic (no port) is let through by its source, the pod CIDR; a chain's policy by a
/// rule at the chain's end.
fn outside_firewalld(
    inp: &Inputs,
    port: &str,
    pkt: &Packet,
    rule: &RuleRef,
) -> (Option<String>, Vec<String>) {
    let family = rule.family.to_string();
    let (v4, v6) = match inp.iptables_cmd {
        Some(cmd) => (cmd.to_string(), format!("ip6{cmd}")),
        None => ("iptables-nft".to_string(), "ip6tables-nft".to_string()),
    };
    let iptables = match rule.family {
        Family::Ip => Some(v4),
        Family::Ip6 => Some(v6),
        _ => None,
    }
    .filter(|_| IPTABLES_TABLES.contains(&rule.table.as_str()));
    // What the accepting rule matches: the port, or the pod CIDR the packet comes from.
    let pods = inp
        .pod_cidrs()
        .into_iter()
        .find(|c| c.contains(pkt.saddr))
        .filter(|_| !port.contains('/'));
    let matches = match (port.split_once('/'), &pods) {
        (Some((p, proto)), _) => Some((
            format!("-p {proto} --dport {p}"),
            format!("{proto} dport {p}"),
        )),
        (None, Some(cidr)) => {
            let ip = if cidr.addr().is_ipv4() { "ip" } else { "ip6" };
            Some((format!("-s {cidr}"), format!("{ip} saddr {cidr}")))
        }
        (None, None) => None,
    };
    // iptables numbers rules by position in the chain, nft by handle; a policy has neither.
    let position = inp
        .ruleset
        .and_then(|rs| rs.table(rule.family, &rule.table))
        .and_then(|t| t.chain(&rule.chain))
        .and_then(|c| c.rules.iter().position(|r| r.handle == rule.handle))
        .map(|i| i + 1);
    if let Some(tool) = iptables {
        let place = match position {
            Some(p) => format!("rule {p}"),
            None if rule.handle == 0 => "the policy".to_string(),
            None => format!("rule #{}", rule.handle),
        };
        let element = format!(
            "{place} of iptables chain {} (table {}, {tool}), outside firewalld",
            rule.chain, rule.table
        );
        let insert = match position {
            Some(p) => format!("-I {} {p}", rule.chain),
            None if rule.handle == 0 => format!("-A {}", rule.chain),
            None => return (Some(element), Vec::new()),
        };
        let Some((m, _)) = matches else {
            return (Some(element), Vec::new());
        };
        return (
            Some(element),
            vec![
                format!("{tool} -t {} {insert} {m} -j ACCEPT", rule.table),
                format!(
                    "# or change the rule at its source (kube-proxy, the CNI, a boot script): see {tool} -t {} -S {}",
                    rule.table, rule.chain
                ),
            ],
        );
    }
    let element = match position {
        Some(p) => format!(
            "rule {p} of chain {} in table {family} {}",
            rule.chain, rule.table
        ),
        None => format!(
            "the policy of chain {} in table {family} {}",
            rule.chain, rule.table
        ),
    };
    let Some((_, m)) = matches else {
        return (Some(element), Vec::new());
    };
    // By index (the rule's place in its chain), which holds on the node whatever the handles
    // of the listing read (a pasted one is loaded afresh, with handles of its own).
    let cmd = match position {
        Some(p) => format!(
            "nft insert rule {family} {} {} index {} {m} accept",
            rule.table,
            rule.chain,
            p - 1
        ),
        None => format!(
            "nft add rule {family} {} {} {m} accept",
            rule.table, rule.chain
        ),
    };
    (
        Some(element),
        vec![
            cmd,
            "# and save the ruleset where this node loads it at boot (e.g. /etc/nftables.conf)"
                .into(),
        ],
    )
}
