//! The commands that fix a finding, in the form the distribution's guide uses: `firewall-cmd
//! --permanent` plus a reload while firewalld runs, `firewall-offline-cmd` when it does not, a
//! service's port when the zone uses the distribution's service (k0s), the zone's port
//! otherwise (k3s), a zone source for pod traffic; for a rule outside firewalld (or a node
//! without it), an accepting rule before it, in iptables-nft syntax for iptables' tables and in
//! nft syntax otherwise.

use std::fmt::Write as _;

use super::{
    Inputs, firewalld,
    layout::ClusterZone,
    narrow::{self, Needed},
};
use crate::model::{
    catalog::Component,
    firewalld::{
        Permanent, ZoneBinding,
        change::{Change, Opening, Tool, ZoneAddition},
        zone_of,
    },
    nft::{Assume, Backend, Family, Outcome, Packet, Rule, RuleRef, Verdict, evaluate_assuming},
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
    ClusterZone::of(inp, permanent).map(|c| c.zone)
}

/// What a refused packet's evaluation blames: the zone (when firewalld's rules saw the
/// packet), the element and the commands that let it through. firewalld's own rules are
/// explained by firewalld's configuration ([`super::firewalld`]); a rule outside firewalld
/// (iptables rules of kube-proxy or the CNI, a hand-made nft table) is named itself. A fix is the whole set of
/// changes the packet needs: once the deciding rule lets it through, whatever refuses it next
/// (a legacy iptables rule before firewalld's chain, a later base chain) is named and fixed
/// too, in the order the kernel meets them.
pub fn blame(
    inp: &Inputs,
    component: Option<&Component>,
    port: &str,
    pkt: &Packet,
    outcome: &Outcome,
) -> (Option<ZoneBinding>, Option<String>, Vec<String>) {
    let (hit, mut element, mut fix) = blame_one(inp, component, port, pkt, outcome);
    let (Some(ruleset), Some(first)) = (inp.ruleset, outcome.deciding.clone()) else {
        return (hit, element, fix);
    };
    let mut assume = Assume {
        accept: vec![first],
        ..Assume::default()
    };
    // A packet meets a handful of base chains at most.
    for _ in 0..6 {
        let next = evaluate_assuming(ruleset, pkt, &assume);
        let then = match &next.verdict {
            Verdict::Accept => break,
            Verdict::Unknown(why) => format!("whether it then passes is unknown: {why}"),
            Verdict::Drop | Verdict::Reject => {
                let (_, more, commands) = blame_one(inp, component, port, pkt, &next);
                fix.extend(commands);
                more.unwrap_or_else(|| "another rule".into())
            }
        };
        element = Some(match element {
            Some(e) => format!("{e}; once past it, {then}"),
            None => then,
        });
        match next.deciding {
            Some(rule) if !matches!(next.verdict, Verdict::Unknown(_)) => assume.accept.push(rule),
            _ => break,
        }
    }
    (hit, element, fix)
}

/// [`blame`] for the one rule that decided `outcome`.
fn blame_one(
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
    // firewalld's own rule, with its configuration: firewalld's semantics name the element.
    if inp.permanent.is_some() && outside.is_none() {
        let b = firewalld::explain(inp, component, pkt, outcome);
        return (b.zone, b.element, b.fix);
    }
    let hit = zone_of(outcome, pkt, inp.permanent).filter(|_| {
        outcome
            .trail
            .iter()
            .any(|r| firewalld::is_firewalld_rule(inp, r))
    });
    let (element, fix) = match (&hit, outcome.deciding.as_ref()) {
        // firewalld's own rule, its configuration unknown: the zone comes from the chain.
        (Some(hit), Some(rule)) if firewalld::is_firewalld_rule(inp, rule) => {
            zone_from_chain(outcome, port, hit)
        }
        // A rule outside firewalld, or no firewalld: the deciding rule is the element.
        (_, Some(rule)) => outside_firewalld(inp, port, pkt, rule),
        (_, None) => (None, Vec::new()),
    };
    (hit, element, fix)
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

/// iptables' tables, as iptables-nft creates them in nftables.
const IPTABLES_TABLES: [&str; 5] = ["filter", "nat", "mangle", "raw", "security"];

/// What a flow needs opened past a rule outside firewalld: its port (`udp/4789` →
/// `udp dport 4789`), or for pod traffic the pod CIDR it comes from.
fn opening(inp: &Inputs, port: &str, pkt: &Packet) -> Option<Needed> {
    if let Some((p, proto)) = port.split_once('/') {
        return Some(Needed::Port {
            proto: proto.to_string(),
            port: p.to_string(),
        });
    }
    let cidr = inp
        .pod_cidrs()
        .into_iter()
        .find(|c| c.contains(pkt.saddr))?;
    Some(Needed::Source {
        cidr: cidr.to_string(),
        v6: !cidr.addr().is_ipv4(),
    })
}

/// A rule outside firewalld refused the flow: name it and let the flow through before it, in
/// the syntax of the tool that owns the table (iptables-legacy for the legacy tables,
/// iptables-nft for iptables' tables in nftables, nft else). When it refuses the packet before a
/// rule of its table that would accept it (an ACCEPT a CNI appended behind a distribution's
/// REJECT), that rule is named as shadowed, and the fix puts it before the refusing one. Pod
/// traffic (no port) is let through by its source, the pod CIDR; a chain's policy by a rule at
/// the chain's end.
fn outside_firewalld(
    inp: &Inputs,
    port: &str,
    pkt: &Packet,
    rule: &RuleRef,
) -> (Option<String>, Vec<String>) {
    let family = rule.family.to_string();
    let table = inp.ruleset.and_then(|rs| {
        rs.tables.iter().find(|t| {
            (t.backend, t.family, t.name.as_str()) == (rule.backend, rule.family, &rule.table)
        })
    });
    let chain = table.and_then(|t| t.chain(&rule.chain));
    // iptables' tables in nftables belong to iptables-nft, unless the inputs name the command
    // that manages them (k0s's bundled iptables, a pasted listing's own tool).
    let nft_tool = inp.iptables_cmd.unwrap_or("iptables-nft");
    let tool = match (rule.backend, rule.family) {
        (Backend::IptablesLegacy, f) => Some(rule.backend.command(f).to_string()),
        (Backend::Nftables, Family::Ip) => Some(nft_tool.to_string()),
        (Backend::Nftables, Family::Ip6) => Some(format!("ip6{nft_tool}")),
        _ => None,
    }
    .filter(|_| IPTABLES_TABLES.contains(&rule.table.as_str()));
    let tool = tool.as_deref();
    // iptables numbers rules by position in the chain (a legacy rule's handle is its number),
    // nft by handle.
    let position = chain
        .and_then(|c| c.rules.iter().position(|r| r.handle == rule.handle))
        .map(|i| i + 1);
    let shadowed = shadowed_accept(inp, pkt, rule);
    if firewalld::is_firewalld_rule(inp, rule) {
        // firewalld generated it, but its configuration is not among the inputs: the element
        // and its fix cannot be told, and a rule added to firewalld's table by hand is gone
        // with the next reload.
        return (
            Some(format!(
                "a rule firewalld generated (chain {} of table {family} {}); which element of its configuration it comes from is unknown without that configuration (diagnose on the node, or give --root with its /etc/firewalld)",
                rule.chain, rule.table
            )),
            Vec::new(),
        );
    }
    let what = match (rule.handle, tool) {
        (0, Some(tool)) => format!(
            "the policy of iptables chain {} (table {}, {tool})",
            rule.chain, rule.table
        ),
        (_, Some(tool)) => format!(
            "rule {} of iptables chain {} (table {}, {tool})",
            position.unwrap_or(0),
            rule.chain,
            rule.table
        ),
        (0, None) => format!(
            "the policy of chain {} in table {family} {}",
            rule.chain, rule.table
        ),
        (handle, None) => format!(
            "rule {handle} of chain {} in table {family} {}",
            rule.chain, rule.table
        ),
    };
    let outside = if rule.backend == Backend::IptablesLegacy {
        ", outside firewalld and invisible to nft"
    } else {
        ", outside firewalld"
    };
    let mut element = format!("{what}{outside}");
    if let Some(accept) = &shadowed {
        let _ = write!(
            element,
            ", refuses it before the rule that accepts it ({}), which it shadows",
            accept.saved.as_deref().unwrap_or(&accept.text)
        );
    }
    let refusing = chain
        .filter(|_| rule.handle != 0)
        .and_then(|c| c.rules.iter().find(|r| r.handle == rule.handle));
    let at = Place { position, refusing };
    let fix = outside_fix(inp, port, pkt, rule, tool, shadowed, &at);
    (Some(element), fix)
}

/// Where the refusing rule sits in its chain: its number (from 1) and the rule itself, when it
/// is found there.
struct Place<'a> {
    position: Option<usize>,
    refusing: Option<&'a Rule>,
}

/// The commands that let the packet past a rule outside firewalld (see [`outside_firewalld`]).
fn outside_fix(
    inp: &Inputs,
    port: &str,
    pkt: &Packet,
    rule: &RuleRef,
    tool: Option<&str>,
    shadowed: Option<Rule>,
    at: &Place,
) -> Vec<String> {
    let (position, refusing) = (at.position, at.refusing);
    let family = rule.family.to_string();
    let mut fix = Vec::new();
    match (tool, shadowed, position) {
        // The shadowed rule itself, moved before the refusing one.
        (Some(tool), Some(accept), Some(position)) if accept.saved.is_some() => {
            let line = accept.saved.unwrap_or_default();
            let spec = line
                .strip_prefix(&format!("-A {} ", rule.chain))
                .unwrap_or(&line);
            fix.push(format!(
                "{tool} -t {} -I {} {position} {spec}",
                rule.table, rule.chain
            ));
        }
        // By index (the rule's place in its chain), which holds on the node whatever the
        // handles of the listing read (a pasted one is loaded afresh, with handles of its own).
        (None, Some(accept), Some(position)) => fix.push(format!(
            "nft insert rule {family} {} {} index {} {}",
            rule.table,
            rule.chain,
            position - 1,
            accept.text
        )),
        _ => {
            let Some(open) = opening(inp, port, pkt) else {
                return Vec::new();
            };
            // Before the refusing rule, an accept narrowed to what it refuses (its own
            // matches and the flow's port): see `narrow`. A chain's policy refuses whatever
            // reaches the chain's end, so the flow's port alone is narrow enough there.
            let c = &rule.chain;
            let ipt = refusing
                .and_then(|r| narrow::iptables(r.saved.as_deref().unwrap_or(&r.text), c, &open));
            let nft = narrow::nft(refusing.map_or("", |r| r.text.as_str()), &open);
            // A rule not found in its chain has no place to insert before: no fix rather
            // than one appended behind the refusal.
            fix.push(match (tool, rule.handle, position) {
                (Some(tool), 0, _) => format!(
                    "{tool} -t {} -A {c} {} -j ACCEPT",
                    rule.table,
                    narrow::iptables(&format!("-A {c} -j DROP"), c, &open).unwrap_or_default()
                ),
                (Some(tool), _, Some(position)) if ipt.is_some() => format!(
                    "{tool} -t {} -I {c} {position} {} -j ACCEPT",
                    rule.table,
                    ipt.unwrap_or_default()
                ),
                (None, 0, _) => format!("nft add rule {family} {} {c} {nft} accept", rule.table),
                // Also an iptables-nft table's rule whose saved form is not known: in nft's
                // syntax, which the kernel takes for any nftables table (never for a legacy
                // one, which nft cannot change).
                (_, _, Some(position)) if rule.backend != Backend::IptablesLegacy => format!(
                    "nft insert rule {family} {} {c} index {} {nft} accept",
                    rule.table,
                    position - 1,
                ),
                _ => return Vec::new(),
            });
        }
    }
    fix.push(match tool {
        Some(tool) => format!(
            "# and where this node sets the rule up at boot (kube-proxy, the CNI, a service): see {tool} -t {} -S {}",
            rule.table, rule.chain
        ),
        None => {
            "# and save the ruleset where this node loads it at boot (e.g. /etc/nftables.conf)"
                .into()
        }
    });
    fix
}

/// The rule of the same table that would accept the packet if `rule` did not refuse it: an
/// ACCEPT it shadows.
fn shadowed_accept(inp: &Inputs, pkt: &Packet, rule: &RuleRef) -> Option<Rule> {
    let ruleset = inp.ruleset?;
    if rule.handle == 0 {
        return None;
    }
    let without = evaluate_assuming(
        ruleset,
        pkt,
        &Assume {
            skip: vec![rule.clone()],
            ..Assume::default()
        },
    );
    if without.verdict != Verdict::Accept {
        return None;
    }
    // The rule that accepted it in the refusing rule's own table, not a later base chain's.
    let accept = without.accepted.into_iter().find(|a| {
        a.handle != 0 && (a.backend, a.family, &a.table) == (rule.backend, rule.family, &rule.table)
    })?;
    ruleset
        .tables
        .iter()
        .find(|t| (t.backend, t.family, &t.name) == (accept.backend, accept.family, &accept.table))?
        .chain(&accept.chain)?
        .rules
        .iter()
        .find(|r| r.handle == accept.handle)
        .cloned()
}
