//! Changes made to a copy of firewalld's configuration, as firewalld makes them after
//! `--permanent` and a reload: what the planner judges again to prove a fix.

use super::change::{Change, Opening, Removal, Scope, ZoneAddition};
use super::check::add_coalesced;
use super::judge::Config;
use super::plan::PlanError;
use super::policy::Policy;
use super::{Service, Zone};

fn push_unique(list: &mut Vec<String>, s: &str) {
    if !list.iter().any(|x| x == s) {
        list.push(s.to_string());
    }
}

/// Makes `change` in `cfg`, as firewalld would after `--permanent` and a reload.
pub fn apply(change: &Change, cfg: &mut Config) -> Result<(), PlanError> {
    let missing =
        |what: &str, name: &str| PlanError::Apply(format!("{what} {name} does not exist"));
    match change {
        Change::AddToZone { zone, addition } => {
            let name = zone.clone().unwrap_or_else(|| cfg.default_zone.clone());
            let z = cfg
                .zones
                .get_mut(&name)
                .ok_or_else(|| missing("zone", &name))?;
            add_to_zone(z, addition)
        }
        Change::AddToPolicy { policy, addition } => {
            let p = cfg
                .policies
                .get_mut(policy)
                .ok_or_else(|| missing("policy", policy))?;
            add_to_policy(p, addition)
        }
        Change::OpenInService { service, opening } => {
            let s = cfg
                .services
                .get_mut(service)
                .ok_or_else(|| missing("service", service))?;
            match opening {
                Opening::Port(p) => {
                    if !s.ports.contains(p) {
                        s.ports.push(p.clone());
                    }
                }
                Opening::Protocol(p) => push_unique(&mut s.protocols, p),
            }
            Ok(())
        }
        Change::Remove { scope, removal } => remove(cfg, scope, removal),
        Change::AddDirectRule { .. } | Change::RemoveDirectRule { .. } => Err(PlanError::Apply(
            "direct rules live in iptables, outside this model".into(),
        )),
        Change::NewPolicy(name) => {
            cfg.policies.entry(name.clone()).or_insert_with(|| Policy {
                name: name.clone(),
                ..Policy::default()
            });
            Ok(())
        }
        Change::NewService(name) => {
            cfg.services.entry(name.clone()).or_insert_with(|| Service {
                name: name.clone(),
                ..Service::default()
            });
            Ok(())
        }
        Change::SetShort { .. } | Change::SetDescription { .. } => Ok(()),
    }
}

fn add_to_zone(z: &mut Zone, addition: &ZoneAddition) -> Result<(), PlanError> {
    match addition {
        ZoneAddition::Open(Opening::Port(p)) => add_coalesced(&mut z.ports, &p.port, &p.proto),
        ZoneAddition::Open(Opening::Protocol(p)) => push_unique(&mut z.protocols, p),
        ZoneAddition::Source(s) => push_unique(&mut z.sources, s),
        ZoneAddition::Interface(i) => push_unique(&mut z.interfaces, i),
        ZoneAddition::Service(s) => push_unique(&mut z.services, s),
        ZoneAddition::Masquerade => z.masquerade = true,
        ZoneAddition::Forward => z.forward = true,
        ZoneAddition::RichRule(r) => push_unique(&mut z.rich_rules, r),
        ZoneAddition::IcmpBlock(i) => push_unique(&mut z.icmp_blocks, i),
        ZoneAddition::IngressZone(_) | ZoneAddition::EgressZone(_) => {
            return Err(PlanError::Apply(
                "a zone has no ingress or egress zones".into(),
            ));
        }
    }
    Ok(())
}

fn add_to_policy(p: &mut Policy, addition: &ZoneAddition) -> Result<(), PlanError> {
    match addition {
        ZoneAddition::Open(Opening::Port(pp)) => add_coalesced(&mut p.ports, &pp.port, &pp.proto),
        ZoneAddition::Open(Opening::Protocol(x)) => push_unique(&mut p.protocols, x),
        ZoneAddition::RichRule(r) => push_unique(&mut p.rich_rules, r),
        ZoneAddition::IcmpBlock(i) => push_unique(&mut p.icmp_blocks, i),
        ZoneAddition::Service(s) => push_unique(&mut p.services, s),
        ZoneAddition::IngressZone(z) => push_unique(&mut p.ingress_zones, z),
        ZoneAddition::EgressZone(z) => push_unique(&mut p.egress_zones, z),
        other => {
            return Err(PlanError::Apply(format!(
                "a policy does not take {other:?}"
            )));
        }
    }
    Ok(())
}

fn remove(cfg: &mut Config, scope: &Scope, removal: &Removal) -> Result<(), PlanError> {
    let (rich, icmp, sources) = match scope {
        Scope::Zone(z) => {
            let name = z.clone().unwrap_or_else(|| cfg.default_zone.clone());
            let zn = cfg
                .zones
                .get_mut(&name)
                .ok_or_else(|| PlanError::Apply(format!("zone {name} does not exist")))?;
            (
                &mut zn.rich_rules,
                &mut zn.icmp_blocks,
                Some(&mut zn.sources),
            )
        }
        Scope::Policy(p) => {
            let pl = cfg
                .policies
                .get_mut(p)
                .ok_or_else(|| PlanError::Apply(format!("policy {p} does not exist")))?;
            (&mut pl.rich_rules, &mut pl.icmp_blocks, None)
        }
    };
    let (list, item) = match removal {
        Removal::RichRule(r) => (rich, r),
        Removal::IcmpBlock(i) => (icmp, i),
        Removal::Source(s) => (
            sources.ok_or_else(|| PlanError::Apply("a policy has no sources".into()))?,
            s,
        ),
    };
    let before = list.len();
    list.retain(|x| x != item);
    if list.len() == before {
        return Err(PlanError::Apply(format!("{item:?} is not there to remove")));
    }
    Ok(())
}
