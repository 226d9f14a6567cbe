//! firewalld's part of explaining a packet: which element of its configuration decides it, by
//! firewalld's own semantics ([`judge`]), cross-checked against the nft evaluation of the rules
//! firewalld generated, and the change to that element that lets the packet through, planned
//! and proven on the configuration ([`plan`]). The two views must agree on the verdict, the
//! zone and the deciding rule (its chain, and its place among the chain's verdict rules); when
//! they do not, or a part cannot be evaluated, the element says "unknown", what each view
//! found and what would settle it, and no fix is printed.

use std::fmt::Write as _;

use super::{Inputs, fix};
use crate::model::{
    catalog::{Component, Protocol, Role},
    firewalld::{
        Binding, Permanent, ZoneBinding,
        change::{Change, Tool, ZoneAddition},
        judge::{Config, Decider, Judgement, What, judge},
        plan::{Preferences, apply, plan},
        zone_in_chain, zone_of,
    },
    nft::{Family, Outcome, Packet, RuleRef, Ruleset, Stmt, Verdict, VerdictStmt, evaluate},
};

/// What firewalld's configuration says about a packet: the zone, the element, the commands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blame {
    pub zone: Option<ZoneBinding>,
    pub element: Option<String>,
    pub fix: Vec<String>,
}

/// firewalld's nftables table.
fn is_firewalld_table(rule: &RuleRef) -> bool {
    rule.family == Family::Inet && rule.table == "firewalld"
}

/// The rule was written by firewalld: its nftables table, one of its zone chains, or a chain
/// of its direct rules (`INPUT_direct`) when it has some.
pub fn is_firewalld_rule(inp: &Inputs, rule: &RuleRef) -> bool {
    is_firewalld_table(rule)
        || zone_in_chain(&rule.chain).is_some()
        || direct_rule_of(inp, rule).is_some()
}

/// The direct rule `rule` is, by its place in its `*_direct` chain.
fn direct_rule_of(
    inp: &Inputs,
    rule: &RuleRef,
) -> Option<crate::model::firewalld::direct::DirectRule> {
    let p = inp.permanent?;
    let ipv = match rule.family {
        Family::Ip => "ipv4",
        Family::Ip6 => "ipv6",
        _ => return None,
    };
    let rules = p.direct.rules_in(ipv, &rule.table, &rule.chain);
    if rules.is_empty() {
        return None;
    }
    let chain = inp
        .ruleset?
        .table(rule.family, &rule.table)?
        .chain(&rule.chain)?;
    let at = chain.rules.iter().position(|r| r.handle == rule.handle)?;
    (chain.rules.len() == rules.len()).then(|| rules[at].clone())
}

/// Whether an nft rule ends the packet's way with a verdict (accept, drop, reject).
fn is_verdict_rule(stmts: &[Stmt]) -> bool {
    stmts.iter().any(|s| {
        matches!(
            s,
            Stmt::Verdict(VerdictStmt::Accept | VerdictStmt::Drop) | Stmt::Reject { .. }
        )
    })
}

/// The deciding rule's index among its chain's verdict rules, and how many the chain has.
fn verdict_index(ruleset: &Ruleset, rule: &RuleRef) -> Option<(usize, usize)> {
    let chain = ruleset
        .table(rule.family, &rule.table)?
        .chain(&rule.chain)?;
    let verdicts: Vec<u64> = chain
        .rules
        .iter()
        .filter(|r| is_verdict_rule(&r.statements))
        .map(|r| r.handle)
        .collect();
    let at = verdicts.iter().position(|h| *h == rule.handle)?;
    Some((at, verdicts.len()))
}

/// firewalld's table alone: what its own rules do with a packet.
fn firewalld_only(ruleset: &Ruleset) -> Ruleset {
    let mut rs = ruleset.clone();
    rs.tables
        .retain(|t| t.family == Family::Inet && t.name == "firewalld");
    rs
}

fn same_verdict(a: &Verdict, b: &Verdict) -> bool {
    matches!(
        (a, b),
        (Verdict::Accept, Verdict::Accept)
            | (Verdict::Drop, Verdict::Drop)
            | (Verdict::Reject, Verdict::Reject)
    )
}

/// Whether the judgement and firewalld's own rules' evaluation tell the same story; `Err`
/// says where they part.
fn agree(j: &Judgement, fw: &Outcome, ruleset: &Ruleset, pkt: &Packet) -> Result<(), String> {
    if let Verdict::Unknown(why) = &j.verdict {
        return Err(format!("firewalld's configuration cannot be judged: {why}"));
    }
    if let Verdict::Unknown(why) = &fw.verdict {
        return Err(format!(
            "firewalld's nftables rules cannot be evaluated: {why}"
        ));
    }
    let rule = fw
        .deciding
        .as_ref()
        .map_or("no rule".to_string(), ToString::to_string);
    if !same_verdict(&j.verdict, &fw.verdict) {
        return Err(format!(
            "firewalld's configuration says {} ({}), its nftables rules say {} ({rule})",
            j.verdict,
            j.decider
                .as_ref()
                .map_or("nothing".into(), ToString::to_string),
            fw.verdict
        ));
    }
    if let (Some(z), Some(seen)) = (&j.zone, zone_of(fw, pkt, None))
        && seen.binding != Binding::Unknown
        && seen.zone != z.zone
    {
        return Err(format!(
            "firewalld's configuration puts the packet in zone {}, its nftables rules in zone {}",
            z.zone, seen.zone
        ));
    }
    let (Some(place), Some(r)) = (&j.place, &fw.deciding) else {
        return Ok(());
    };
    let dispatch_layout =
        r.chain.contains("_POLICIES") || r.chain.contains("_dispatch") || r.chain.contains("_to_");
    if r.chain != place.chain {
        // firewalld 2.x puts a zone's target in its dispatch chains.
        let target_like = matches!(
            j.decider.as_ref().map(|d| &d.what),
            Some(What::Target(_) | What::IcmpDefault | What::IcmpInversion)
        );
        if dispatch_layout && target_like {
            return Ok(());
        }
        return Err(format!(
            "firewalld's configuration places the deciding rule in chain {}, its nftables rules decided in {rule}",
            place.chain
        ));
    }
    match verdict_index(ruleset, r) {
        Some((at, count)) if (at, count) == (place.index, place.count) => Ok(()),
        Some((at, count)) => Err(format!(
            "chain {} holds {count} verdict rules and {rule} is number {}; firewalld's configuration explains {} and names number {}",
            r.chain,
            at + 1,
            place.count,
            place.index + 1
        )),
        None => Err(format!("{rule} is not in the ruleset read")),
    }
}

/// Whether rules of others live in iptables' tables (outside firewalld's direct chains): a
/// reload would flush them.
fn others_in_iptables(ruleset: &Ruleset) -> bool {
    ruleset.tables.iter().any(|t| {
        matches!(t.family, Family::Ip | Family::Ip6)
            && ["filter", "nat", "mangle", "raw", "security"].contains(&t.name.as_str())
            && t.chains.iter().any(|c| {
                !c.name.ends_with("_direct") && c.rules.iter().any(|r| !r.text.contains("_direct"))
            })
    })
}

/// The tool the fix is written for: [`Tool::Live`] when a reload would flush others' rules.
fn fix_tool(inp: &Inputs) -> Option<Tool> {
    let tool = fix::tool(inp)?;
    Some(match (tool, inp.ruleset) {
        (Tool::Online, Some(rs)) if others_in_iptables(rs) => Tool::Live,
        _ => tool,
    })
}

/// What would settle a disagreement.
const SETTLE: &str = "compare `firewall-cmd --list-all-zones` and `--list-all-policies` with `nft list table inet firewalld`, or run `firewall-cmd --reload` so that firewalld applies its files again";

/// The distribution's own service for this component, when the node's profile uses services.
fn preferred_service(inp: &Inputs, component: Option<&Component>) -> Option<String> {
    let c = component?;
    if !inp.catalog.profile.firewalld.services {
        return None;
    }
    inp.roles
        .iter()
        .find(|r| **r != Role::External && c.to.contains(r))
        .map(|r| inp.catalog.profile.service_name(*r))
}

/// The text of the refused flow's element, from what refuses it and the first change.
fn refusal_text(d: &Decider, first: Option<&Change>, pkt: &Packet) -> String {
    let What::Target(t) = &d.what else {
        return format!("{d} refuses it");
    };
    let note = if t == "default" {
        String::new()
    } else {
        format!(" (target {t})")
    };
    let owner = &d.owner;
    let flow = Protocol::from_number(pkt.l4proto).port_label(pkt.dport);
    match first {
        Some(Change::OpenInService { service, opening }) => {
            format!("service {service} of {owner} lacks {opening}")
        }
        Some(
            Change::AddToZone {
                addition: ZoneAddition::Open(o),
                ..
            }
            | Change::AddToPolicy {
                addition: ZoneAddition::Open(o),
                ..
            },
        ) => format!("{owner} lacks {o}{note}"),
        Some(Change::AddToZone {
            addition: ZoneAddition::Forward,
            ..
        }) => format!("{owner} does not forward this traffic"),
        Some(
            Change::AddToZone {
                addition: ZoneAddition::RichRule(r),
                ..
            }
            | Change::AddToPolicy {
                addition: ZoneAddition::RichRule(r),
                ..
            },
        ) if r.contains("source address=") => format!(
            "{owner} lacks {flow}{note}; it is opened for this flow only, because opening it for the zone would let by a refusal that comes after it"
        ),
        Some(
            Change::AddToZone {
                addition: ZoneAddition::RichRule(_),
                ..
            }
            | Change::AddToPolicy {
                addition: ZoneAddition::RichRule(_),
                ..
            },
        ) => format!("{owner} accepts no such ICMP{note}"),
        _ => format!("{d} refuses it"),
    }
}

/// The pod CIDR the packet comes from when no zone has it as a source: the first change for
/// pod traffic a zone chosen by interface refuses.
fn pod_source(
    inp: &Inputs,
    permanent: &Permanent,
    pkt: &Packet,
    j: &Judgement,
) -> Option<(String, Change)> {
    let cidr = inp
        .pod_cidrs()
        .into_iter()
        .find(|c| c.contains(pkt.saddr))?;
    let by_source = matches!(
        j.zone.as_ref().map(|z| &z.binding),
        Some(Binding::Source(_))
    );
    if by_source || permanent.has_source_covering(&cidr) {
        return None;
    }
    let zone =
        fix::cluster_zone(inp, permanent).unwrap_or_else(|| permanent.conf.default_zone.clone());
    Some((
        format!("the pod CIDR {cidr} is not a source of zone {zone}"),
        Change::zone(zone, ZoneAddition::Source(cidr.to_string())),
    ))
}

/// The commands that let `pkt` through firewalld, planned on the permanent configuration, and
/// the element to name; `j` is what is in force now.
fn fix_of(
    inp: &Inputs,
    component: Option<&Component>,
    permanent: &Permanent,
    tool: Tool,
    pkt: &Packet,
    j: &Judgement,
) -> (String, Vec<String>) {
    let Some(d) = &j.decider else {
        return (
            "nothing of firewalld's configuration decided".into(),
            Vec::new(),
        );
    };
    let mut cfg = Config::from_permanent(permanent);
    if judge(&cfg, pkt).verdict == Verdict::Accept {
        return (
            format!(
                "{d} refuses it in the running firewalld, whose permanent configuration accepts it (a runtime change a reload undoes)"
            ),
            tool.reload(),
        );
    }
    let mut changes = Vec::new();
    let mut element = None;
    if matches!(d.what, What::Target(_))
        && let Some((text, change)) = pod_source(inp, permanent, pkt, j)
        && apply(&change, &mut cfg).is_ok()
    {
        element = Some(text);
        changes.push(change);
    }
    // A service's ports only change with a reload.
    let prefs = Preferences {
        service: preferred_service(inp, component).filter(|_| tool != Tool::Live),
        zone_forward: inp.pod_cidrs().iter().any(|c| c.contains(pkt.saddr)),
    };
    match plan(&cfg, pkt, &prefs) {
        Ok(more) => {
            let element = element.unwrap_or_else(|| refusal_text(d, more.first(), pkt));
            changes.extend(more);
            (element, tool.commands(&changes))
        }
        Err(why) => (
            format!("{d} refuses it; no fix is printed: {why}"),
            Vec::new(),
        ),
    }
}

/// firewalld's explanation of a packet its own rules decided (the full evaluation `outcome`'s
/// deciding rule is firewalld's).
pub fn explain(
    inp: &Inputs,
    component: Option<&Component>,
    pkt: &Packet,
    outcome: &Outcome,
) -> Blame {
    let (Some(permanent), Some(ruleset)) = (inp.permanent, inp.ruleset) else {
        return Blame::default();
    };
    if let Some(r) = outcome.deciding.as_ref()
        && let Some(direct) = direct_rule_of(inp, r)
    {
        return direct_blame(inp, component, pkt, &direct);
    }
    let fw = evaluate(&firewalld_only(ruleset), pkt);
    let j = judge(&Config::in_force(permanent, inp.runtime), pkt);
    let zone = zone_of(outcome, pkt, Some(permanent)).or_else(|| j.zone.clone());
    if let Err(why) = agree(&j, &fw, ruleset, pkt) {
        return Blame {
            zone,
            element: Some(format!("unknown: {why}; to settle it, {SETTLE}")),
            fix: Vec::new(),
        };
    }
    let Some(d) = &j.decider else {
        return Blame {
            zone,
            element: None,
            fix: Vec::new(),
        };
    };
    if !j.refuses() {
        return Blame {
            zone,
            element: Some(format!("{d} accepts it")),
            fix: Vec::new(),
        };
    }
    let Some(tool) = fix_tool(inp) else {
        return Blame {
            zone,
            element: Some(format!("{d} refuses it")),
            fix: Vec::new(),
        };
    };
    let (element, fix) = fix_of(inp, component, permanent, tool, pkt, &j);
    Blame {
        zone,
        element: Some(element),
        fix,
    }
}

/// A rule outside firewalld refused the packet: once that rule lets it by, does firewalld
/// refuse it too? Then its element and commands, to print after the outside fix; `None` when
/// firewalld accepts it (or there is no firewalld).
pub fn behind(
    inp: &Inputs,
    component: Option<&Component>,
    pkt: &Packet,
) -> Option<(String, Vec<String>)> {
    let (permanent, ruleset) = (inp.permanent?, inp.ruleset?);
    let fw = evaluate(&firewalld_only(ruleset), pkt);
    if matches!(fw.verdict, Verdict::Accept) || fw.deciding.is_none() {
        return None;
    }
    let j = judge(&Config::in_force(permanent, inp.runtime), pkt);
    if let Err(why) = agree(&j, &fw, ruleset, pkt) {
        return Some((
            format!("firewalld's own rules refuse it too, for a reason tracer cannot tell: {why}"),
            Vec::new(),
        ));
    }
    let tool = fix_tool(inp)?;
    let (element, fix) = fix_of(inp, component, permanent, tool, pkt, &j);
    Some((format!("then firewalld refuses it too: {element}"), fix))
}

/// The `iptables` arguments matching exactly this packet's source, destination and port.
fn flow_args(pkt: &Packet) -> String {
    let mut a = String::new();
    let proto = tracer_common::protocols::name(pkt.l4proto)
        .map_or_else(|| pkt.l4proto.to_string(), str::to_string);
    let _ = write!(a, "-s {} -d {} -p {proto}", pkt.saddr, pkt.daddr);
    if matches!(pkt.l4proto, 6 | 17 | 33 | 132) {
        let _ = write!(a, " --dport {}", pkt.dport);
    } else if let (1, Some(t)) = (pkt.l4proto, pkt.icmp_type) {
        let _ = write!(a, " --icmp-type {t}");
    }
    a + " -j ACCEPT"
}

/// A direct rule refused the packet: an exception before it, then firewalld's own verdict.
fn direct_blame(
    inp: &Inputs,
    component: Option<&Component>,
    pkt: &Packet,
    d: &crate::model::firewalld::direct::DirectRule,
) -> Blame {
    let element = format!(
        "direct rule '{} {} {} {} {}' of firewalld",
        d.ipv, d.table, d.chain, d.priority, d.args
    );
    let Some(tool) = fix_tool(inp) else {
        return Blame {
            zone: None,
            element: Some(element),
            fix: Vec::new(),
        };
    };
    let exception = Change::AddDirectRule {
        ipv: d.ipv.clone(),
        table: d.table.clone(),
        chain: d.chain.clone(),
        priority: d.priority - 1,
        args: flow_args(pkt),
    };
    let mut fix = tool.commands(&[exception]);
    let mut element = element + " refuses it";
    if let Some((more, cmds)) = behind(inp, component, pkt) {
        let _ = write!(element, "; {more}");
        if cmds.is_empty() {
            return Blame {
                zone: None,
                element: Some(element),
                fix: Vec::new(),
            };
        }
        // One reload at the end.
        fix.retain(|c| c != crate::model::firewalld::change::RELOAD);
        fix.extend(cmds);
    }
    Blame {
        zone: None,
        element: Some(element),
        fix,
    }
}
