//! The flows a node of this role must let through, evaluated against the live ruleset: each
//! catalog component's traffic from a peer on the cluster network (and from each peer that a
//! firewalld rich rule singles out by address), and pod traffic to the node and through it,
//! arriving the way the network provider delivers it.

use std::net::{IpAddr, Ipv4Addr};

use super::{Diagnosis, Finding, FlowCheck, Inputs, RuleInfo, Severity, fix, guesses, hints};
use crate::model::{
    catalog::{Component, Protocol, Role},
    firewalld::Permanent,
    nft::{Hook, Outcome, Packet, Ruleset, Verdict, evaluate},
    node::{IfAddr, NodeFacts},
};

/// A flow to evaluate and what it stands for.
struct Flow<'a> {
    name: String,
    component: Option<&'a Component>,
    /// `6443/tcp`, or a protocol name.
    port: String,
    packet: Packet,
}

fn packet(
    hook: Hook,
    iif: &str,
    oif: Option<&str>,
    saddr: IpAddr,
    daddr: IpAddr,
    proto: Protocol,
    dport: u16,
) -> Packet {
    let (sport, dport) = if proto.has_ports() {
        (43210, dport)
    } else {
        (0, 0)
    };
    Packet {
        oif: oif.map(str::to_string),
        ..Packet::new_connection(hook, iif, saddr, daddr, proto.number(), sport, dport)
    }
}

/// The roles' components: what peers send to this node.
fn node_flows<'a>(inp: &'a Inputs, cluster: &[&IfAddr]) -> Vec<Flow<'a>> {
    let mut comps: Vec<&Component> = Vec::new();
    for role in inp.roles {
        for c in inp.catalog.accepted_by(*role, false) {
            // Traffic only outside clients send is not node-to-node traffic.
            let from_nodes = c.from.iter().any(|r| *r != Role::External);
            if from_nodes && !comps.iter().any(|k| k.name == c.name) {
                comps.push(c);
            }
        }
    }
    // Peers that firewalld's rich rules single out by address: a flow from any other peer
    // does not meet those rules, so each is checked too.
    let singled: Vec<IpAddr> = inp
        .permanent
        .map(Permanent::singled_out_sources)
        .unwrap_or_default();
    let mut flows = Vec::new();
    for c in comps {
        for proto in &c.protocols {
            let dport = c.ports.first().map_or(0, |r| r.lo);
            let port = proto.port_label(dport);
            for a in cluster {
                flows.push(Flow {
                    name: format!("{} {port} from a peer on {}", c.name, a.iface),
                    component: Some(c),
                    port: port.clone(),
                    packet: packet(Hook::Input, &a.iface, None, a.peer(), a.addr, *proto, dport),
                });
                for peer in singled
                    .iter()
                    .filter(|p| a.cidr().contains(**p) && **p != a.addr && **p != a.peer())
                {
                    flows.push(Flow {
                        name: format!("{} {port} from {peer} on {}", c.name, a.iface),
                        component: Some(c),
                        port: port.clone(),
                        packet: packet(Hook::Input, &a.iface, None, *peer, a.addr, *proto, dport),
                    });
                }
            }
        }
    }
    flows
}

/// An address in the pod CIDR that is not in any local pod subnet: a pod on another node.
fn remote_pod(inp: &Inputs, local: &[&IfAddr]) -> Option<IpAddr> {
    let cidr = inp.pod_cidrs().into_iter().find(|c| c.addr().is_ipv4())?;
    let IpAddr::V4(base) = cidr.addr() else {
        return None;
    };
    let b = base.octets();
    (2..=254u8)
        .rev()
        .map(|third| IpAddr::V4(Ipv4Addr::new(b[0], b[1], third, 2)))
        .find(|a| cidr.contains(*a) && !local.iter().any(|l| l.cidr().contains(*a)))
}

/// Pod traffic: to the node (metrics-server to the kubelet) and through it to a local pod.
fn pod_flows<'a>(inp: &'a Inputs, cluster: &[&IfAddr]) -> Vec<Flow<'a>> {
    let f: &NodeFacts = &inp.facts;
    let pod_cidrs = inp.pod_cidrs();
    // The local pod subnet: an address of a non-overlay interface inside the pod CIDR.
    let local: Vec<&IfAddr> = f
        .addrs
        .iter()
        .filter(|a| a.addr.is_ipv4() && pod_cidrs.iter().any(|c| c.contains(a.addr)))
        .filter(|a| !f.vxlans.iter().any(|v| v.name == a.iface))
        .collect();
    let (Some(bridge), Some(remote)) = (local.first(), remote_pod(inp, &local)) else {
        return Vec::new();
    };
    // How other nodes' pods arrive: out of the overlay device, or routed over the cluster NIC.
    let overlay = inp
        .catalog
        .profile
        .overlay()
        .and_then(|(_, o)| f.vxlans.iter().find(|v| v.name == o.device));
    let arrives_on = match (overlay, cluster.first()) {
        (Some(v), _) => v.name.clone(),
        (None, Some(c)) => c.iface.clone(),
        (None, None) => return Vec::new(),
    };
    let local_pod = bridge.peer();
    let mut flows = Vec::new();
    if let Some(kubelet) = inp.catalog.components.iter().find(|c| c.name == "kubelet") {
        let node_addr = cluster.first().map_or(bridge.addr, |c| c.addr);
        flows.push(Flow {
            name: format!("pod traffic to the kubelet arriving on {arrives_on}"),
            component: Some(kubelet),
            port: "10250/tcp".into(),
            packet: packet(
                Hook::Input,
                &arrives_on,
                None,
                remote,
                node_addr,
                Protocol::Tcp,
                10250,
            ),
        });
    }
    flows.push(Flow {
        name: format!("pod to pod, {arrives_on} to {}", bridge.iface),
        component: None,
        port: "pod traffic".into(),
        packet: packet(
            Hook::Forward,
            &arrives_on,
            Some(&bridge.iface),
            remote,
            local_pod,
            Protocol::Tcp,
            8080,
        ),
    });
    flows.push(Flow {
        name: format!("pod to pod, {} to {arrives_on}", bridge.iface),
        component: None,
        port: "pod traffic".into(),
        packet: packet(
            Hook::Forward,
            &bridge.iface,
            Some(&arrives_on),
            local_pod,
            remote,
            Protocol::Tcp,
            8080,
        ),
    });
    flows
}

fn verdict_text(o: &Outcome) -> String {
    match &o.verdict {
        Verdict::Accept => "accepted".into(),
        Verdict::Drop => "dropped".into(),
        Verdict::Reject => "rejected".into(),
        Verdict::Unknown(why) => format!("unknown ({why})"),
    }
}

pub fn check(inp: &Inputs, d: &mut Diagnosis) {
    let Some(ruleset) = inp.ruleset else {
        return;
    };
    let cluster = inp.cluster_addrs();
    let mut flows = node_flows(inp, &cluster);
    if inp.runs_pods() {
        flows.extend(pod_flows(inp, &cluster));
    }
    for flow in flows {
        let outcome = evaluate(ruleset, &flow.packet);
        let doubt = doubt(inp, ruleset, &flow.packet, &outcome);
        let mut verdict = verdict_text(&outcome);
        let rule = outcome.deciding.as_ref().map(RuleInfo::of);
        if let Some(doubt) = &doubt {
            verdict.push_str(" (likely)");
            if outcome.verdict == Verdict::Accept {
                d.unknown(
                    format!("whether {} is accepted", flow.name),
                    format!("accepted as the inputs stand, but {}", doubt.why),
                    doubt.settle.clone(),
                );
            }
        }
        d.flows.push(FlowCheck {
            name: flow.name.clone(),
            verdict: verdict.clone(),
            rule: rule.clone(),
        });
        let severity = match outcome.verdict {
            Verdict::Accept => continue,
            Verdict::Drop | Verdict::Reject => Severity::Error,
            Verdict::Unknown(_) => Severity::Warning,
        };
        let verdict = verdict.trim_end_matches(" (likely)");
        let mut f = finding(inp, &flow, &outcome, severity, verdict, rule);
        if let Some(doubt) = doubt {
            f.explain = format!("{} Likely, not certain: {}.", f.explain, doubt.why);
            f.likely(doubt.settle);
        }
        d.findings.push(f);
    }
}

/// Why an outcome away from the node is only likely, and what would settle it.
struct Doubt {
    why: String,
    settle: Vec<String>,
}

/// `None` when the outcome holds for every value the stand-ins could take and no rule that
/// could not be read may have changed it (always, on the node).
fn doubt(inp: &Inputs, ruleset: &Ruleset, pkt: &Packet, outcome: &Outcome) -> Option<Doubt> {
    let g = inp.guesses.as_ref()?;
    let pod = inp.pod_cidrs().into_iter().find(|c| c.addr().is_ipv4());
    let mut why = Vec::new();
    let mut settle = Vec::new();
    let same = |o: &Outcome| o.verdict == outcome.verdict && o.deciding == outcome.deciding;
    if let Some(variants) = g.variants(pkt, pod.as_ref()) {
        if let Some((v, o)) = variants
            .iter()
            .map(|v| (v, evaluate(ruleset, v)))
            .find(|(_, o)| !same(o))
        {
            why.push(format!(
                "the same packet {} would be {}",
                differs(pkt, v),
                verdict_text(&o)
            ));
            settle.extend(g.settle.iter().cloned());
        }
    } else {
        why.push("too many unknown interfaces and addresses to try them all".into());
        settle.extend(g.settle.iter().cloned());
    }
    for gap in g.gaps_met(outcome, pkt) {
        why.push(format!(
            "a rule of chain {} could not be read ({}: {})",
            gap.chain, gap.place, gap.why
        ));
        settle.push(gap.settle.clone());
    }
    if why.is_empty() {
        return None;
    }
    settle.push(guesses::BUNDLE.into());
    settle.dedup();
    Some(Doubt {
        why: why.join("; "),
        settle,
    })
}

/// How `v` differs from `pkt`, in words: `arriving on eth1`, `from 10.0.0.1`.
fn differs(pkt: &Packet, v: &Packet) -> String {
    let mut out = Vec::new();
    if v.iif != pkt.iif {
        out.push(format!("arriving on {}", v.iif.as_deref().unwrap_or("-")));
    }
    if v.oif != pkt.oif {
        out.push(format!("leaving by {}", v.oif.as_deref().unwrap_or("-")));
    }
    if v.saddr != pkt.saddr {
        out.push(format!("from {}", v.saddr));
    }
    if v.daddr != pkt.daddr {
        out.push(format!("to {}", v.daddr));
    }
    out.join(" ")
}

/// The finding of a flow the ruleset does not accept; `what` and `rule` are the outcome's
/// verdict text and deciding rule, as the flow check shows them.
fn finding(
    inp: &Inputs,
    flow: &Flow,
    outcome: &Outcome,
    severity: Severity,
    what: &str,
    rule: Option<RuleInfo>,
) -> Finding {
    let pkt = &flow.packet;
    let iface = pkt.iif.clone().unwrap_or_default();
    let class = flow
        .component
        .map_or("pod-traffic".to_string(), |c| c.name.clone());
    let mut f = Finding::new(
        format!("flow/{class}/{}", flow.name.replace(' ', "-")),
        severity,
        format!("{} is {what}", flow.name),
        match &outcome.verdict {
            Verdict::Unknown(_) => "tracer cannot tell what the ruleset does with this traffic; the rule below holds an expression it does not evaluate.".to_string(),
            _ => format!(
                "The node's {} role needs this traffic{}.",
                inp.catalog.profile.role_names(inp.roles, "+"),
                flow.component.map(|c| format!(" ({})", c.description)).unwrap_or_default()
            ),
        },
    );
    f.class = Some(class);
    f.port = Some(flow.port.clone());
    f.iface = Some(iface.clone());
    f.rule = rule;
    if let Some(hint) = hints::absent_chains(inp)
        && outcome
            .deciding
            .as_ref()
            .is_some_and(|r| matches!(r.family.name(), "ip" | "ip6") && r.table == "filter")
    {
        f.explain = format!("{} {}", f.explain, hint.sentence());
    }
    let (hit, element, commands) = fix::blame(inp, flow.component, &flow.port, pkt, outcome);
    if let Some(hit) = &hit {
        f.zone = Some(hit.zone.clone());
        f.binding = Some(hit.binding.to_string());
    }
    // No fix for a verdict tracer cannot tell (accepted flows have no finding: see `check`).
    if matches!(outcome.verdict, Verdict::Unknown(_)) {
        return f;
    }
    f.element = element;
    f.fix = commands;
    f
}
