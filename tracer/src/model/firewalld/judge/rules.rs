//! The verdict rules firewalld generates into a zone's or a policy's stage chains (`_pre`,
//! `_deny`, `_allow`, `_post`), in the order its nftables backend puts them there: the
//! settings are applied in the order of `FirewallPolicy._policy_settings` (services, ports,
//! source ports, icmp-blocks, rich rules, protocols), a service's included services before its
//! own ports, protocols and source ports, rich rules of `pre` and `post` sorted by priority, and
//! a rule identical to one already in the chain not added again (firewalld's rule
//! deduplication). Rules without a verdict (log, audit, helpers) are left out: the list is what
//! can decide, and each entry names the configuration element it stands for.

use serde::Serialize;

use super::super::icmp::icmp_type;
use super::super::richrule::{AddrKind, RichAction, RichElement, RichRule, RuleAddr};
use super::super::{PortProto, Service};
use super::cond::{Addr, Cond};
use super::{Config, Owner};

/// The configuration element a generated rule stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ElementRef {
    /// A port, protocol or source port of a service: `name` defines it, `listed` is the
    /// service the zone or policy lists (the same, unless `name` is included by it).
    Service {
        name: String,
        listed: String,
        what: String,
    },
    Port(PortProto),
    Protocol(String),
    SourcePort(PortProto),
    /// An icmp-block (rejects; with icmp-block-inversion, accepts).
    IcmpBlock(String),
    /// A rich rule, by its text.
    RichRule(String),
    /// Intra-zone forwarding to this interface or source.
    Forward(String),
}

/// The verdict of a generated rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Kind {
    Accept,
    Drop,
    Reject,
}

/// One verdict rule of a stage chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gen {
    pub conds: Vec<Cond>,
    pub kind: Kind,
    pub element: ElementRef,
}

/// What a zone or a policy holds, for generation.
struct Elements<'a> {
    services: &'a [String],
    ports: &'a [PortProto],
    source_ports: &'a [PortProto],
    icmp_blocks: &'a [String],
    icmp_block_inversion: bool,
    rich_rules: &'a [String],
    protocols: &'a [String],
}

fn elements<'a>(cfg: &'a Config, owner: &Owner) -> Option<Elements<'a>> {
    Some(match owner {
        Owner::Zone(z) => {
            let z = cfg.zones.get(z)?;
            Elements {
                services: &z.services,
                ports: &z.ports,
                source_ports: &z.source_ports,
                icmp_blocks: &z.icmp_blocks,
                icmp_block_inversion: z.icmp_block_inversion,
                rich_rules: &z.rich_rules,
                protocols: &z.protocols,
            }
        }
        Owner::Policy(p) => {
            let p = cfg.policies.get(p)?;
            Elements {
                services: &p.services,
                ports: &p.ports,
                source_ports: &p.source_ports,
                icmp_blocks: &p.icmp_blocks,
                icmp_block_inversion: false,
                rich_rules: &p.rich_rules,
                protocols: &p.protocols,
            }
        }
    })
}

/// Pushes `g` unless the chain holds the same rule already: firewalld adds a rule it generates
/// once however many elements generate it.
fn push(out: &mut Vec<Gen>, g: Gen) {
    let action = rich_action(&g);
    if !out
        .iter()
        .any(|o| o.conds == g.conds && o.kind == g.kind && rich_action(o) == action)
    {
        out.push(g);
    }
}

/// What a rich rule's verdict carries besides its kind: the ICMP type its reject answers with
/// (`reject type="icmp-host-prohibited"`) and whether the action has a limit. Two rules alike
/// but for these are two rules in the chain. `None` for the rules of other elements: firewalld
/// writes a rich rule's matches otherwise than a port's or a service's (the same text in `nft
/// list`), so a rich rule never stands for one of those, nor they for it.
fn rich_action(g: &Gen) -> Option<(Option<String>, bool)> {
    let ElementRef::RichRule(text) = &g.element else {
        return None;
    };
    let r = RichRule::parse(text).ok()?;
    let with = match r.verdict() {
        Some(RichAction::Reject(with)) => with,
        _ => None,
    };
    Some((with, r.limited))
}

/// The rules of service `listed` (and those it includes, first), each with `base` before it.
fn service_rules(
    cfg: &Config,
    listed: &str,
    base: &[Cond],
    families: &[bool],
    kind: Kind,
    element: &dyn Fn(&Service, String) -> ElementRef,
    out: &mut Vec<Gen>,
) {
    let mut seen = vec![listed.to_string()];
    let mut order = Vec::new();
    fn walk<'c>(cfg: &'c Config, name: &str, seen: &mut Vec<String>, order: &mut Vec<&'c Service>) {
        let Some(s) = cfg.services.get(name) else {
            return;
        };
        for inc in &s.includes {
            if !seen.contains(inc) {
                seen.push(inc.clone());
                walk(cfg, inc, seen, order);
            }
        }
        order.push(s);
    }
    walk(cfg, listed, &mut seen, &mut order);
    for s in order {
        // One pass per destination family when the service names destinations, else one.
        let dests: Vec<Option<&String>> = if s.destinations.is_empty() {
            vec![None]
        } else {
            [("ipv4", false), ("ipv6", true)]
                .into_iter()
                .filter(|(_, v6)| families.contains(v6))
                .filter_map(|(f, _)| s.destinations.get(f).map(Some))
                .collect()
        };
        for dest in dests {
            let mut b = base.to_vec();
            if let Some(d) = dest {
                b.push(Cond::Daddr {
                    addr: Addr::Net(d.clone()),
                    invert: false,
                });
            }
            // Ports, then protocols, then source ports, as `_service` adds them.
            let matches = s
                .ports
                .iter()
                .map(|p| {
                    let c = Cond::Dport {
                        proto: p.proto.clone(),
                        port: p.port.clone(),
                    };
                    (c, p.to_string())
                })
                .chain(
                    s.protocols
                        .iter()
                        .map(|p| (Cond::Protocol(p.clone()), p.clone())),
                )
                .chain(s.source_ports.iter().map(|p| {
                    let c = Cond::Sport {
                        proto: p.proto.clone(),
                        port: p.port.clone(),
                    };
                    (c, format!("source port {p}"))
                }));
            for (c, what) in matches {
                let mut conds = b.clone();
                conds.push(c);
                let element = element(s, what);
                push(
                    out,
                    Gen {
                        conds,
                        kind,
                        element,
                    },
                );
            }
        }
    }
}

fn addr_cond(a: &RuleAddr, source: bool) -> Cond {
    let addr = match &a.what {
        AddrKind::Address(s) => Addr::Net(s.clone()),
        AddrKind::Mac(s) => Addr::Mac(s.clone()),
        AddrKind::Ipset(s) => Addr::Ipset(s.clone()),
    };
    if source {
        Cond::Saddr {
            addr,
            invert: a.invert,
        }
    } else {
        Cond::Daddr {
            addr,
            invert: a.invert,
        }
    }
}

/// The verdict rules of one rich rule (none for a rule without a verdict).
fn rich_rules(cfg: &Config, r: &RichRule, out: &mut Vec<Gen>) {
    let kind = match r.verdict() {
        Some(RichAction::Accept) => Kind::Accept,
        Some(RichAction::Drop) => Kind::Drop,
        Some(RichAction::Reject(_)) => Kind::Reject,
        Some(RichAction::Mark(_)) | None => return,
    };
    let mut base = Vec::new();
    let families: Vec<bool> = match r.family.as_deref() {
        Some("ipv4") => {
            base.push(Cond::Family(false));
            vec![false]
        }
        Some("ipv6") => {
            base.push(Cond::Family(true));
            vec![true]
        }
        _ => vec![false, true],
    };
    if let Some(d) = &r.destination {
        base.push(addr_cond(d, false));
    }
    if let Some(s) = &r.source {
        base.push(addr_cond(s, true));
    }
    let element = ElementRef::RichRule(r.text.clone());
    let one = |extra: Cond| {
        let mut conds = base.clone();
        conds.push(extra);
        Gen {
            conds,
            kind,
            element: element.clone(),
        }
    };
    match &r.element {
        None => push(
            out,
            Gen {
                conds: base.clone(),
                kind,
                element,
            },
        ),
        Some(RichElement::Port { port, proto }) => push(
            out,
            one(Cond::Dport {
                proto: proto.clone(),
                port: port.clone(),
            }),
        ),
        Some(RichElement::SourcePort { port, proto }) => push(
            out,
            one(Cond::Sport {
                proto: proto.clone(),
                port: port.clone(),
            }),
        ),
        Some(RichElement::Protocol(p)) => push(out, one(Cond::Protocol(p.clone()))),
        Some(RichElement::IcmpBlock(name) | RichElement::IcmpType(name)) => {
            for v6 in families {
                if icmp_type(name, v6).is_some() {
                    push(
                        out,
                        one(Cond::Icmp {
                            name: name.clone(),
                            v6,
                        }),
                    );
                }
            }
        }
        Some(RichElement::Service(name)) => {
            let text = r.text.clone();
            service_rules(
                cfg,
                name,
                &base,
                &families,
                kind,
                &|_, _| ElementRef::RichRule(text.clone()),
                out,
            );
        }
        Some(RichElement::Nat(_)) => {}
    }
}

/// The rich rules of `texts` that go to `stage`, in chain order; texts that do not read as rich
/// rules are left out (the reader reported them).
fn rich_in_stage(texts: &[String], stage: &str) -> Vec<RichRule> {
    let mut rules: Vec<RichRule> = texts
        .iter()
        .filter_map(|t| RichRule::parse(t).ok())
        .filter(|r| r.verdict().is_some() && r.stage() == stage)
        .collect();
    // Stable: equal priorities keep the order they were added in.
    rules.sort_by_key(|r| r.priority);
    rules
}

/// The verdict rules of `owner`'s stage chain `stage` (`pre`, `log`, `deny`, `allow`, `post`)
/// on the input hook (a zone's own elements, or a policy's), in firewalld's order.
pub fn stage_rules(cfg: &Config, owner: &Owner, stage: &str) -> Vec<Gen> {
    let Some(e) = elements(cfg, owner) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if stage == "pre" || stage == "post" {
        for r in rich_in_stage(e.rich_rules, stage) {
            rich_rules(cfg, &r, &mut out);
        }
        return out;
    }
    let allow = stage == "allow";
    if allow {
        for s in e.services {
            service_rules(
                cfg,
                s,
                &[],
                &[false, true],
                Kind::Accept,
                &|svc, what| ElementRef::Service {
                    name: svc.name.clone(),
                    listed: s.clone(),
                    what,
                },
                &mut out,
            );
        }
        let ports = e.ports.iter().map(|p| {
            let cond = Cond::Dport {
                proto: p.proto.clone(),
                port: p.port.clone(),
            };
            (cond, ElementRef::Port(p.clone()))
        });
        let source_ports = e.source_ports.iter().map(|p| {
            let cond = Cond::Sport {
                proto: p.proto.clone(),
                port: p.port.clone(),
            };
            (cond, ElementRef::SourcePort(p.clone()))
        });
        for (cond, element) in ports.chain(source_ports) {
            push(
                &mut out,
                Gen {
                    conds: vec![cond],
                    kind: Kind::Accept,
                    element,
                },
            );
        }
    }
    // icmp-blocks reject in `deny`; with icmp-block-inversion they accept in `allow`.
    if (stage == "deny" && !e.icmp_block_inversion) || (allow && e.icmp_block_inversion) {
        let kind = if allow { Kind::Accept } else { Kind::Reject };
        for name in e.icmp_blocks {
            for v6 in [false, true] {
                if icmp_type(name, v6).is_some() {
                    let conds = vec![Cond::Icmp {
                        name: name.clone(),
                        v6,
                    }];
                    push(
                        &mut out,
                        Gen {
                            conds,
                            kind,
                            element: ElementRef::IcmpBlock(name.clone()),
                        },
                    );
                }
            }
        }
    }
    if stage == "deny" || allow {
        for r in rich_in_stage(e.rich_rules, stage) {
            rich_rules(cfg, &r, &mut out);
        }
    }
    if allow {
        for p in e.protocols {
            push(
                &mut out,
                Gen {
                    conds: vec![Cond::Protocol(p.clone())],
                    kind: Kind::Accept,
                    element: ElementRef::Protocol(p.clone()),
                },
            );
        }
    }
    out
}

/// The verdict rules of zone `zone`'s forward `allow` chain: intra-zone forwarding, to each of
/// its interfaces (but the catch-all) and sources, when the zone forwards.
pub fn forward_rules(cfg: &Config, zone: &str) -> Vec<Gen> {
    let Some(z) = cfg.zones.get(zone).filter(|z| z.forward) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for i in z.interfaces.iter().filter(|i| *i != "+" && *i != "*") {
        push(
            &mut out,
            Gen {
                conds: vec![Cond::Oif(i.clone())],
                kind: Kind::Accept,
                element: ElementRef::Forward(i.clone()),
            },
        );
    }
    for s in &z.sources {
        let addr = match s.strip_prefix("ipset:") {
            Some(set) => Addr::Ipset(set.to_string()),
            None => Addr::Net(s.clone()),
        };
        push(
            &mut out,
            Gen {
                conds: vec![Cond::Daddr {
                    addr,
                    invert: false,
                }],
                kind: Kind::Accept,
                element: ElementRef::Forward(s.clone()),
            },
        );
    }
    out
}
