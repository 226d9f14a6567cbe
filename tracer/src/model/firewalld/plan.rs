//! The changes that let a refused packet through, planned on firewalld's configuration and
//! proven on it: the [`judge`] names the element that refuses the packet, the change to
//! *that* element is applied to a copy of the configuration ([`apply`]), and the judge is
//! asked again, until the packet is accepted. A plan is never a guess: when the judge cannot
//! tell, or no change of firewalld's is known for what refuses, the answer is an error saying
//! so.
//!
//! The change for each element, narrowest first:
//! - a rich rule that refuses: removed when it singles out exactly this flow (this source host
//!   and this port, protocol or ICMP type), else left in place with an exception before it (a
//!   rich rule of lower priority accepting exactly this source, destination and port);
//! - an icmp-block: removed; icmp-block-inversion refusing an ICMP type: the type listed;
//! - a zone's or a policy's target refusing what nothing accepted: the port (or protocol)
//!   opened in the distribution's service when the zone uses it and no other zone does, else
//!   in the zone or the policy; an ICMP type by a rich rule accepting it;
//! - forwarded traffic a zone's target refuses: a policy from its zone to the egress zone
//!   accepting exactly this flow; for pod traffic between a zone's own interfaces, intra-zone
//!   forwarding.

use std::net::IpAddr;

use super::change::{Change, Opening, Removal, Scope, ZoneAddition};
use super::check::port_bounds;
use super::icmp::icmp_name;
use super::judge::{
    Addr, Cond, Config, Decider, ElementRef, Gen, Kind, Owner, Tri, What, addr_matches,
    hook_policies, judge, stage_rules,
};
use super::policy::PolicyTarget;
use super::richrule::{AddrKind, RichElement, RichRule};
use super::{PortProto, Zone};

pub use super::apply::apply;
use crate::model::nft::{Hook, Packet, Verdict};

/// Why no change is planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The judge cannot tell what firewalld does with the packet.
    #[error("firewalld's configuration cannot be judged: {0}")]
    Unjudged(String),
    /// No change of firewalld's is known for what refuses the packet.
    #[error("{0}")]
    NoChange(String),
    /// A change does not apply to the configuration.
    #[error("the change cannot be made: {0}")]
    Apply(String),
}

/// How a change is written when there is a choice.
#[derive(Debug, Clone, Default)]
pub struct Preferences {
    /// The distribution's own service (`k0s-worker`): a port goes there when the zone lists it.
    pub service: Option<String>,
    /// Forwarded traffic a zone refuses between its own interfaces is fixed for the whole zone
    /// (`--add-forward`), as pod networks need, rather than for this flow alone.
    pub zone_forward: bool,
}

/// The most changes a plan takes before it gives up.
const MAX_STEPS: usize = 6;

/// The changes (in order) after which `cfg` accepts `pkt`; `Err` says why none is planned.
pub fn plan(cfg: &Config, pkt: &Packet, prefs: &Preferences) -> Result<Vec<Change>, PlanError> {
    let mut cur = cfg.clone();
    let mut changes: Vec<Change> = Vec::new();
    for _ in 0..=MAX_STEPS {
        let j = judge(&cur, pkt);
        match &j.verdict {
            Verdict::Accept => return Ok(changes),
            Verdict::Unknown(why) => return Err(PlanError::Unjudged(why.clone())),
            Verdict::Drop | Verdict::Reject => {}
        }
        let Some(decider) = &j.decider else {
            return Err(PlanError::NoChange(
                "nothing of firewalld's configuration decided".into(),
            ));
        };
        for change in fix_for(&cur, pkt, decider, prefs)? {
            apply(&change, &mut cur)?;
            if changes.contains(&change) {
                return Err(PlanError::NoChange(format!(
                    "the plan repeats itself at {change:?}"
                )));
            }
            changes.push(change);
        }
    }
    Err(no(&format!(
        "no plan of at most {MAX_STEPS} changes lets the packet through"
    )))
}

fn scope(owner: &Owner) -> Scope {
    match owner {
        Owner::Zone(z) => Scope::Zone(Some(z.clone())),
        Owner::Policy(p) => Scope::Policy(p.clone()),
    }
}

fn add(owner: &Owner, addition: ZoneAddition) -> Change {
    match owner {
        Owner::Zone(z) => Change::zone(z, addition),
        Owner::Policy(p) => Change::AddToPolicy {
            policy: p.clone(),
            addition,
        },
    }
}

fn no(why: &str) -> PlanError {
    PlanError::NoChange(why.to_string())
}

fn proto_name(n: u8) -> String {
    tracer_common::protocols::name(n).map_or_else(|| n.to_string(), str::to_string)
}

/// Whether the packet's protocol has ports firewalld can open.
fn has_ports(n: u8) -> bool {
    matches!(n, 6 | 17 | 33 | 132)
}

/// The rich rule's element text for exactly this packet's port, protocol or ICMP type.
fn flow_element(pkt: &Packet) -> Result<String, PlanError> {
    let v6 = pkt.saddr.is_ipv6();
    Ok(if has_ports(pkt.l4proto) {
        format!(
            "port port=\"{}\" protocol=\"{}\"",
            pkt.dport,
            proto_name(pkt.l4proto)
        )
    } else if matches!(pkt.l4proto, 1 | 58) {
        let ty = pkt
            .icmp_type
            .ok_or_else(|| no("the packet's ICMP type is not given"))?;
        let name = icmp_name(ty, v6).ok_or_else(|| {
            no(&format!(
                "ICMP type {ty} has no firewalld name without a code"
            ))
        })?;
        format!("icmp-type name=\"{name}\"")
    } else {
        format!("protocol value=\"{}\"", proto_name(pkt.l4proto))
    })
}

/// A rich rule of `priority` accepting exactly this packet's source, destination and port.
fn exception(pkt: &Packet, priority: i32) -> Result<String, PlanError> {
    if !(-32768..=32767).contains(&priority) {
        return Err(no(&format!(
            "no rich rule priority is left below {}",
            priority + 1
        )));
    }
    let family = if pkt.saddr.is_ipv6() { "ipv6" } else { "ipv4" };
    let priority = if priority == 0 {
        String::new()
    } else {
        format!(" priority=\"{priority}\"")
    };
    Ok(format!(
        "rule{priority} family=\"{family}\" source address=\"{}\" destination address=\"{}\" {} accept",
        pkt.saddr,
        pkt.daddr,
        flow_element(pkt)?
    ))
}

fn is_host(addr: &str, ip: IpAddr) -> bool {
    let full = if ip.is_ipv4() { "/32" } else { "/128" };
    addr.parse::<IpAddr>().is_ok_and(|a| a == ip)
        || addr
            .strip_suffix(full)
            .and_then(|a| a.parse::<IpAddr>().ok())
            .is_some_and(|a| a == ip)
}

/// Whether the rule matches only this flow: this source host, and exactly this port,
/// protocol or ICMP type.
fn singles_out(r: &RichRule, pkt: &Packet) -> bool {
    let source = r.source.as_ref().is_some_and(|s| {
        !s.invert && matches!(&s.what, AddrKind::Address(a) if is_host(a, pkt.saddr))
    });
    let v6 = pkt.saddr.is_ipv6();
    let element = match &r.element {
        Some(RichElement::Port { port, proto }) => {
            has_ports(pkt.l4proto)
                && *port == pkt.dport.to_string()
                && *proto == proto_name(pkt.l4proto)
        }
        // A whole protocol is this flow only for a protocol without ports or types (vrrp,
        // gre): for udp it is every port, for icmp every type, and removing it opens them all.
        Some(RichElement::Protocol(p)) => {
            !has_ports(pkt.l4proto)
                && !matches!(pkt.l4proto, 1 | 58)
                && *p == proto_name(pkt.l4proto)
        }
        Some(RichElement::IcmpType(n) | RichElement::IcmpBlock(n)) => pkt
            .icmp_type
            .is_some_and(|t| icmp_name(t, v6) == Some(n.as_str())),
        _ => false,
    };
    source && element
}

fn zones_listing<'a>(cfg: &'a Config, service: &str) -> impl Iterator<Item = &'a Zone> {
    cfg.zones
        .values()
        .filter(move |z| z.services.iter().any(|s| s == service))
}

/// The changes to the element that refuses `pkt`.
fn fix_for(
    cfg: &Config,
    pkt: &Packet,
    d: &Decider,
    prefs: &Preferences,
) -> Result<Vec<Change>, PlanError> {
    let owner = &d.owner;
    if let What::Target(_) = &d.what {
        return target_fix(cfg, pkt, owner, prefs);
    }
    one_fix(pkt, d).map(|c| vec![c])
}

/// The change to an element (not a target) that refuses `pkt`.
fn one_fix(pkt: &Packet, d: &Decider) -> Result<Change, PlanError> {
    let owner = &d.owner;
    match &d.what {
        What::Element(ElementRef::RichRule(text)) => {
            let r = RichRule::parse(text).map_err(|e| no(&e.to_string()))?;
            if singles_out(&r, pkt) {
                Ok(Change::Remove {
                    scope: scope(owner),
                    removal: Removal::RichRule(text.clone()),
                })
            } else {
                Ok(add(
                    owner,
                    ZoneAddition::RichRule(exception(pkt, r.priority - 1)?),
                ))
            }
        }
        What::Element(ElementRef::IcmpBlock(name)) => Ok(Change::Remove {
            scope: scope(owner),
            removal: Removal::IcmpBlock(name.clone()),
        }),
        What::IcmpInversion => {
            let ty = pkt
                .icmp_type
                .ok_or_else(|| no("the packet's ICMP type is not given"))?;
            let name = icmp_name(ty, pkt.saddr.is_ipv6())
                .ok_or_else(|| no(&format!("ICMP type {ty} has no firewalld name")))?;
            Ok(add(owner, ZoneAddition::IcmpBlock(name.to_string())))
        }
        What::Target(_) => Err(no("a target is fixed by target_fix")),
        What::Element(e) => Err(no(&format!(
            "{owner}'s {e:?} refuses the packet; no change is known for it"
        ))),
        What::IcmpDefault => Err(no("ICMP's default acceptance does not refuse")),
    }
}

/// Whether a rule could match some packet of this protocol and port (its conditions do not
/// rule the port out).
fn may_match(g: &Gen, proto: u8, port: u16) -> bool {
    g.conds.iter().all(|c| match c {
        Cond::Dport {
            proto: p,
            port: range,
        } => {
            tracer_common::protocols::number(p) == Some(proto)
                && port_bounds(range).is_none_or(|(lo, hi)| lo <= port && port <= hi)
        }
        Cond::Protocol(p) => {
            p.parse::<u8>()
                .ok()
                .or_else(|| tracer_common::protocols::number(p))
                == Some(proto)
        }
        Cond::Icmp { v6, .. } => proto == if *v6 { 58 } else { 1 },
        _ => true,
    })
}

/// Whether opening `proto`/`port` in `owner`'s allow stage would let by a refusal that comes
/// after it for other packets: a refusing rule of the owner's `post` stage, or (for a zone) a
/// policy after the zones that refuses, by a rule or by its target. Then only this flow is
/// opened, by a rich rule.
fn bypasses(cfg: &Config, owner: &Owner, input: bool, proto: u8, port: u16) -> bool {
    let refusing = |o: &Owner, stages: &[&str]| {
        stages.iter().any(|st| {
            stage_rules(cfg, o, st)
                .iter()
                .any(|g| g.kind != Kind::Accept && may_match(g, proto, port))
        })
    };
    if refusing(owner, &["post"]) {
        return true;
    }
    matches!(owner, Owner::Zone(_))
        && hook_policies(cfg, input, true).into_iter().any(|p| {
            p.target == PolicyTarget::Drop
                || p.target == PolicyTarget::Reject
                || refusing(
                    &Owner::Policy(p.name.clone()),
                    &["pre", "deny", "allow", "post"],
                )
        })
}

/// The zone of the egress bindings `pkt` leaves by, when it is an active zone's.
fn egress_zone(cfg: &Config, pkt: &Packet) -> Option<String> {
    let oif = pkt.oif.as_deref()?;
    cfg.zones
        .values()
        .filter(|z| cfg.is_active(&z.name))
        .find(|z| {
            z.interfaces
                .iter()
                .any(|i| super::judge::iface_matches(i, oif))
                || z.source_containing(pkt.daddr).is_some()
        })
        .map(|z| z.name.clone())
}

/// Forwarded traffic a zone's target refuses: intra-zone forwarding when it stays in the
/// zone, else a policy from its zone to the egress zone (or ANY, when a side is bound by the
/// default zone's catch-all only) accepting exactly this flow.
fn forward_fix(
    cfg: &Config,
    pkt: &Packet,
    zone: &str,
    prefs: &Preferences,
) -> Result<Vec<Change>, PlanError> {
    let z = cfg.zones.get(zone).ok_or_else(|| no("unknown zone"))?;
    let oif = pkt.oif.as_deref().unwrap_or_default();
    let same_zone = z
        .interfaces
        .iter()
        .any(|i| i != "+" && super::judge::iface_matches(i, oif))
        || z.source_containing(pkt.daddr).is_some();
    if same_zone && !z.forward && prefs.zone_forward {
        return Ok(vec![Change::zone(zone, ZoneAddition::Forward)]);
    }
    // A policy's ingress dispatch matches the zone's own bindings, not the default zone's
    // catch-all: a packet the catch-all put in the zone needs ANY.
    let iif = pkt.iif.as_deref().unwrap_or_default();
    let bound = z
        .interfaces
        .iter()
        .any(|i| super::judge::iface_matches(i, iif))
        || z.sources.iter().any(|s| {
            let addr = match s.strip_prefix("ipset:") {
                Some(set) => Addr::Ipset(set.to_string()),
                None => Addr::Net(s.clone()),
            };
            addr_matches(cfg, &addr, pkt.saddr) == Tri::Yes
        });
    let ingress = if bound {
        zone.to_string()
    } else {
        "ANY".to_string()
    };
    let egress = egress_zone(cfg, pkt).unwrap_or_else(|| "ANY".to_string());
    let rule = exception(pkt, 0)?;
    // A policy of ours for this pair, or a new one.
    let fits = |p: &super::policy::Policy| {
        p.ingress_zones == [ingress.clone()] && p.egress_zones == [egress.clone()]
    };
    if let Some(p) = cfg
        .policies
        .values()
        .find(|p| p.name.starts_with("tracer-fwd") && fits(p))
    {
        return Ok(vec![add(
            &Owner::Policy(p.name.clone()),
            ZoneAddition::RichRule(rule),
        )]);
    }
    let name = (1..10)
        .map(|i| {
            if i == 1 {
                "tracer-fwd".to_string()
            } else {
                format!("tracer-fwd{i}")
            }
        })
        .find(|n| !cfg.policies.contains_key(n) && !cfg.zones.contains_key(n))
        .ok_or_else(|| no("no free policy name"))?;
    let owner = Owner::Policy(name.clone());
    Ok(vec![
        Change::NewPolicy(name),
        add(&owner, ZoneAddition::IngressZone(ingress)),
        add(&owner, ZoneAddition::EgressZone(egress)),
        add(&owner, ZoneAddition::RichRule(rule)),
    ])
}

/// A zone's or policy's target refuses what nothing accepted: open it there.
fn target_fix(
    cfg: &Config,
    pkt: &Packet,
    owner: &Owner,
    prefs: &Preferences,
) -> Result<Vec<Change>, PlanError> {
    if pkt.hook == Hook::Forward {
        return match owner {
            Owner::Zone(zone) => forward_fix(cfg, pkt, zone, prefs),
            Owner::Policy(_) => Ok(vec![add(owner, ZoneAddition::RichRule(exception(pkt, 0)?))]),
        };
    }
    let input = pkt.hook == Hook::Input;
    if bypasses(cfg, owner, input, pkt.l4proto, pkt.dport) {
        return Ok(vec![add(owner, ZoneAddition::RichRule(exception(pkt, 0)?))]);
    }
    if matches!(pkt.l4proto, 1 | 58) {
        let text = format!(
            "rule family=\"{}\" {} accept",
            if pkt.saddr.is_ipv6() { "ipv6" } else { "ipv4" },
            flow_element(pkt)?
        );
        return Ok(vec![add(owner, ZoneAddition::RichRule(text))]);
    }
    let opening = if has_ports(pkt.l4proto) {
        Opening::Port(PortProto::new(
            pkt.dport.to_string(),
            proto_name(pkt.l4proto),
        ))
    } else {
        Opening::Protocol(proto_name(pkt.l4proto))
    };
    if let (Owner::Zone(zone), Some(svc)) = (owner, &prefs.service)
        && cfg
            .zones
            .get(zone)
            .is_some_and(|z| z.services.contains(svc))
        && cfg.services.contains_key(svc)
        && zones_listing(cfg, svc).all(|z| z.name == *zone || !cfg.is_active(&z.name))
    {
        return Ok(vec![Change::OpenInService {
            service: svc.clone(),
            opening,
        }]);
    }
    Ok(vec![add(owner, ZoneAddition::Open(opening))])
}
