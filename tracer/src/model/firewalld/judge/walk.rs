//! The judge's walk, in the order firewalld 1.3.3's chains take a new packet: `filter_INPUT`
//! (or `filter_FORWARD`) dispatches to the zone chain `filter_IN_<zone>` (`filter_FWD_<zone>`),
//! which jumps to the policies before the zone (`filter_INPUT_POLICIES_pre`: user policies of
//! negative priority whose ingress bindings match, lowest priority first), then to the zone's
//! stage chains, then to the policies after it, then ends with ICMP's rule and the target.

use super::super::policy::{Policy, PolicyTarget};
use super::super::select::dispatch;
use super::super::{Binding, Target, ZoneBinding};
use super::cond::{Addr, Cond, Tri, addr_matches, all};
use super::rules::{Gen, Kind, forward_rules, stage_rules};
use super::{Config, Decider, Judgement, Owner, Place, What};
use crate::model::nft::{Hook, Packet, Verdict};

/// A decision found along the way, or an unknown that stops the walk.
enum Step {
    Next,
    Done(Box<Judgement>),
}

fn verdict(kind: Kind) -> Verdict {
    match kind {
        Kind::Accept => Verdict::Accept,
        Kind::Drop => Verdict::Drop,
        Kind::Reject => Verdict::Reject,
    }
}

struct Walk<'a> {
    cfg: &'a Config,
    pkt: &'a Packet,
    zone: ZoneBinding,
    /// `IN` or `FWD`.
    short: &'static str,
}

impl Walk<'_> {
    fn done(&self, kind: Kind, owner: Owner, what: What, place: Place) -> Step {
        Step::Done(Box::new(Judgement {
            verdict: verdict(kind),
            zone: Some(self.zone.clone()),
            decider: Some(Decider { owner, what }),
            place: Some(place),
        }))
    }

    fn unknown(&self, why: &str, owner: &Owner, chain: &str) -> Step {
        Step::Done(Box::new(Judgement::unknown(
            format!("{owner}, chain {chain}: {why}"),
            Some(self.zone.clone()),
        )))
    }

    /// The first of `gens` that matches decides.
    fn chain(&self, owner: &Owner, chain: &str, gens: &[Gen]) -> Step {
        for (i, g) in gens.iter().enumerate() {
            match all(self.cfg, &g.conds, self.pkt) {
                Tri::No => {}
                Tri::Yes => {
                    let place = Place {
                        chain: chain.to_string(),
                        index: i,
                        count: gens.len(),
                    };
                    return self.done(
                        g.kind,
                        owner.clone(),
                        What::Element(g.element.clone()),
                        place,
                    );
                }
                Tri::Unknown(why) => return self.unknown(&why, owner, chain),
            }
        }
        Step::Next
    }

    /// A policy's chains: its stages, then its target.
    fn policy(&self, p: &Policy) -> Step {
        let owner = Owner::Policy(p.name.clone());
        let base = format!("filter_{}_policy_{}", self.short, p.name);
        for stage in ["pre", "deny", "allow", "post"] {
            let gens = stage_rules(self.cfg, &owner, stage);
            if let Step::Done(j) = self.chain(&owner, &format!("{base}_{stage}"), &gens) {
                return Step::Done(j);
            }
        }
        let kind = match p.target {
            PolicyTarget::Continue => return Step::Next,
            PolicyTarget::Accept => Kind::Accept,
            PolicyTarget::Drop => Kind::Drop,
            PolicyTarget::Reject => Kind::Reject,
        };
        let place = Place {
            chain: base,
            index: 0,
            count: 1,
        };
        self.done(kind, owner, What::Target(p.target.to_string()), place)
    }

    /// The dispatch rules of policy `p` in the policy dispatch chains: one per ingress
    /// binding (none for `ANY`), times one per egress binding on the forward hook.
    fn dispatch_rules(&self, p: &Policy) -> Vec<Vec<Cond>> {
        let frags = |zones: &[String], ingress: bool| -> Option<Vec<Cond>> {
            if zones.iter().any(|z| z == "ANY" || z == "HOST") {
                return None;
            }
            let mut out = Vec::new();
            for z in zones.iter().filter_map(|z| self.cfg.zones.get(z)) {
                for i in &z.interfaces {
                    out.push(if ingress {
                        Cond::Iif(i.clone())
                    } else {
                        Cond::Oif(i.clone())
                    });
                }
                for s in &z.sources {
                    let addr = match s.strip_prefix("ipset:") {
                        Some(set) => Addr::Ipset(set.to_string()),
                        None => Addr::Net(s.clone()),
                    };
                    out.push(if ingress {
                        Cond::Saddr {
                            addr,
                            invert: false,
                        }
                    } else {
                        Cond::Daddr {
                            addr,
                            invert: false,
                        }
                    });
                }
            }
            Some(out)
        };
        let ingress = frags(&p.ingress_zones, true);
        let egress = if self.short == "FWD" {
            frags(&p.egress_zones, false)
        } else {
            None
        };
        let one = |f: Option<&Cond>| f.into_iter().cloned().collect::<Vec<_>>();
        match (ingress, egress) {
            (None, None) => vec![Vec::new()],
            (Some(i), None) => i.iter().map(|c| one(Some(c))).collect(),
            (None, Some(e)) => e.iter().map(|c| one(Some(c))).collect(),
            (Some(i), Some(e)) => i
                .iter()
                .flat_map(|a| e.iter().map(move |b| vec![a.clone(), b.clone()]))
                .collect(),
        }
    }

    fn policies(&self, post: bool) -> Vec<&Policy> {
        hook_policies(self.cfg, self.short == "IN", post)
    }

    fn policy_stage(&self, post: bool) -> Step {
        for p in self.policies(post) {
            for rule in self.dispatch_rules(p) {
                match all(self.cfg, &rule, self.pkt) {
                    Tri::No => {}
                    Tri::Yes => {
                        if let Step::Done(j) = self.policy(p) {
                            return Step::Done(j);
                        }
                    }
                    Tri::Unknown(why) => {
                        let chain = format!(
                            "filter_{}_POLICIES_{}",
                            if self.short == "IN" {
                                "INPUT"
                            } else {
                                "FORWARD"
                            },
                            if post { "post" } else { "pre" }
                        );
                        return self.unknown(&why, &Owner::Policy(p.name.clone()), &chain);
                    }
                }
            }
        }
        Step::Next
    }

    /// The zone chain: policies, stages, policies, ICMP, target.
    fn zone(&self) -> Judgement {
        let name = self.zone.zone.clone();
        let owner = Owner::Zone(name.clone());
        let base = format!("filter_{}_{name}", self.short);
        if let Step::Done(j) = self.policy_stage(false) {
            return *j;
        }
        for stage in ["pre", "deny", "allow", "post"] {
            let gens = if self.short == "IN" {
                stage_rules(self.cfg, &owner, stage)
            } else if stage == "allow" {
                forward_rules(self.cfg, &name)
            } else {
                Vec::new()
            };
            if let Step::Done(j) = self.chain(&owner, &format!("{base}_{stage}"), &gens) {
                return *j;
            }
        }
        if let Step::Done(j) = self.policy_stage(true) {
            return *j;
        }
        let Some(z) = self.cfg.zones.get(&name) else {
            return Judgement::unknown(
                format!("zone {name} is not defined"),
                Some(self.zone.clone()),
            );
        };
        // The rules of the zone chain itself: ICMP's (input only), then the target.
        let icmp = match (self.short, z.target, z.icmp_block_inversion) {
            ("IN", Target::Default, false) => Some((Kind::Accept, What::IcmpDefault)),
            ("IN", Target::Default | Target::Accept, true) => {
                Some((Kind::Reject, What::IcmpInversion))
            }
            _ => None,
        };
        let count = usize::from(icmp.is_some()) + 1;
        if let Some((kind, what)) = icmp
            && matches!(self.pkt.l4proto, 1 | 58)
        {
            let place = Place {
                chain: base,
                index: 0,
                count,
            };
            let Step::Done(j) = self.done(kind, owner, what, place) else {
                unreachable!()
            };
            return *j;
        }
        let kind = match z.target {
            Target::Default | Target::Reject => Kind::Reject,
            Target::Drop => Kind::Drop,
            Target::Accept => Kind::Accept,
        };
        let place = Place {
            chain: base,
            index: count - 1,
            count,
        };
        let Step::Done(j) = self.done(kind, owner, What::Target(z.target.to_string()), place)
        else {
            unreachable!()
        };
        *j
    }
}

/// The active policies of the input hook (`input`) or the forward hook, before (`post` false)
/// or after the zones' own rules, in dispatch order: by priority, equal priorities in the order
/// firewalld applies them (by name).
pub fn hook_policies(cfg: &Config, input: bool, post: bool) -> Vec<&Policy> {
    let active = |zones: &[String]| {
        zones
            .iter()
            .any(|z| z == "ANY" || z == "HOST" || cfg.is_active(z))
    };
    let mut out: Vec<&Policy> = cfg
        .policies
        .values()
        .filter(|p| active(&p.ingress_zones) && active(&p.egress_zones))
        .filter(|p| {
            let to_host = p.egress_zones.iter().any(|z| z == "HOST");
            let from_host = p.ingress_zones.iter().any(|z| z == "HOST");
            if input {
                to_host
            } else {
                !to_host && !from_host
            }
        })
        .filter(|p| if post { p.priority > 0 } else { p.priority < 0 })
        .collect();
    out.sort_by_key(|p| p.priority);
    out
}

/// The zone's forward port (or rich rule with a forward-port) that matches the packet's
/// protocol and destination port, as firewall-cmd names it.
fn forward_port_of(z: &super::super::Zone, pkt: &Packet) -> Option<String> {
    let proto = tracer_common::protocols::name(pkt.l4proto)?;
    let hits = |port: &str, p: &str| {
        p == proto
            && super::super::check::port_bounds(port)
                .is_some_and(|(lo, hi)| lo <= pkt.dport && pkt.dport <= hi)
    };
    for fp in &z.forward_ports {
        let field = |k: &str| {
            fp.split(':')
                .find_map(|kv| kv.strip_prefix(k))
                .unwrap_or_default()
        };
        if hits(field("port="), field("proto=")) {
            return Some(format!("forward port {fp}"));
        }
    }
    z.rich_rules.iter().find_map(|t| {
        let (_, rest) = t.split_once("forward-port port=\"")?;
        let (port, rest) = rest.split_once('"')?;
        let (_, rest) = rest.split_once("protocol=\"")?;
        let (p, _) = rest.split_once('"')?;
        hits(port, p).then(|| format!("rich rule '{t}'"))
    })
}

/// What firewalld's configuration `cfg` does with `pkt`, a new connection's first packet on the
/// input or forward hook.
pub fn judge(cfg: &Config, pkt: &Packet) -> Judgement {
    let short = match pkt.hook {
        Hook::Input => "IN",
        Hook::Forward => "FWD",
        other => {
            return Judgement::unknown(
                format!("firewalld's {other:?} chains are not modelled"),
                None,
            );
        }
    };
    let Some(iif) = pkt.iif.as_deref() else {
        return Judgement::unknown("the packet's input interface is not given", None);
    };
    if iif == "lo" {
        // `iifname "lo" accept` in filter_INPUT and filter_FORWARD, before any zone.
        return Judgement {
            verdict: Verdict::Accept,
            zone: None,
            decider: None,
            place: None,
        };
    }
    let source_matches = |s: &str| {
        let addr = match s.strip_prefix("ipset:") {
            Some(set) => Addr::Ipset(set.to_string()),
            None if super::super::check::is_mac(s) => Addr::Mac(s.to_string()),
            None => Addr::Net(s.to_string()),
        };
        match addr_matches(cfg, &addr, pkt.saddr) {
            Tri::Yes => Ok(true),
            Tri::No => Ok(false),
            Tri::Unknown(why) => Err(format!("zone dispatch: source {s}: {why}")),
        }
    };
    let zone = match dispatch(&cfg.zones, &cfg.default_zone, iif, source_matches) {
        Ok(z) => z,
        Err(why) => return Judgement::unknown(why, None),
    };
    if zone.binding == Binding::DefaultZone && !cfg.zones.contains_key(&zone.zone) {
        return Judgement::unknown(
            format!("the default zone {} is not defined", zone.zone),
            None,
        );
    }
    if let Some(fp) = cfg
        .zones
        .get(&zone.zone)
        .and_then(|z| forward_port_of(z, pkt))
    {
        return Judgement::unknown(
            format!(
                "{fp} of zone {} translates this packet (DNAT in nat_PREROUTING) before the filter chains, which then accept it as `ct status dnat`; the nat chains are not evaluated",
                zone.zone
            ),
            Some(zone),
        );
    }
    Walk {
        cfg,
        pkt,
        zone,
        short,
    }
    .zone()
}
