//! The difference between the runtime and the permanent configuration, zone by zone: what a
//! `firewall-cmd --reload` (or a restart, or a reboot) would take away, and what it would put
//! in force. Runtime zone bindings made by NetworkManager (an interface's `zone=` setting) are
//! not in firewalld's files and show as runtime-only interfaces.

use std::collections::BTreeSet;

use super::check::is_mac;
use super::{Drift, Element, Permanent, Runtime, Zone};

/// Every difference between `runtime` and `permanent`, by zone name, then by kind of element
/// (bindings, services, ports, protocols, switches, rich rules, ...), runtime-only entries of a
/// kind before permanent-only ones. Lists compare as sets; ports compare as firewalld stores
/// them, so a range split by `--remove-port` shows as the old range (permanent) and its
/// pieces (runtime).
pub fn drift(permanent: &Permanent, runtime: &Runtime) -> Vec<Drift> {
    let mut out = Vec::new();
    if permanent.conf.default_zone != runtime.default_zone {
        out.push(Drift {
            zone: runtime.default_zone.clone(),
            element: Element::DefaultZone,
            runtime_only: true,
        });
        out.push(Drift {
            zone: permanent.conf.default_zone.clone(),
            element: Element::DefaultZone,
            runtime_only: false,
        });
    }
    let names: BTreeSet<&String> = permanent.zones.keys().chain(runtime.zones.keys()).collect();
    for name in names {
        match (permanent.zones.get(name), runtime.zones.get(name)) {
            (Some(p), Some(r)) => zone_drift(name, p, r, &mut out),
            (p, _) => out.push(Drift {
                zone: name.clone(),
                element: Element::Zone,
                runtime_only: p.is_none(),
            }),
        }
    }
    out
}

fn zone_drift(name: &str, p: &Zone, r: &Zone, out: &mut Vec<Drift>) {
    let mut push = |element: Element, runtime_only: bool| {
        out.push(Drift {
            zone: name.to_string(),
            element,
            runtime_only,
        });
    };
    for (x, ro) in diff(&p.interfaces, &r.interfaces) {
        push(Element::Interface(x), ro);
    }
    // firewalld upper-cases MAC sources when it applies them, not in its files.
    let upper = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|s| {
                if is_mac(s) {
                    s.to_uppercase()
                } else {
                    s.clone()
                }
            })
            .collect()
    };
    for (x, ro) in diff(&upper(&p.sources), &upper(&r.sources)) {
        push(Element::Source(x), ro);
    }
    for (x, ro) in diff(&p.services, &r.services) {
        push(Element::Service(x), ro);
    }
    for (x, ro) in diff(&p.ports, &r.ports) {
        push(Element::Port(x), ro);
    }
    for (x, ro) in diff(&p.protocols, &r.protocols) {
        push(Element::Protocol(x), ro);
    }
    for (x, ro) in diff(&p.source_ports, &r.source_ports) {
        push(Element::SourcePort(x), ro);
    }
    for (perm, run, e) in [
        (p.masquerade, r.masquerade, Element::Masquerade),
        (p.forward, r.forward, Element::Forward),
        (
            p.icmp_block_inversion,
            r.icmp_block_inversion,
            Element::IcmpBlockInversion,
        ),
    ] {
        if perm != run {
            // The switch is on on one side only: on at runtime means a reload turns it off.
            push(e, run);
        }
    }
    for (x, ro) in diff(&p.rich_rules, &r.rich_rules) {
        push(Element::RichRule(x), ro);
    }
    for (x, ro) in diff(&p.icmp_blocks, &r.icmp_blocks) {
        push(Element::IcmpBlock(x), ro);
    }
    for (x, ro) in diff(&p.forward_ports, &r.forward_ports) {
        push(Element::ForwardPort(x), ro);
    }
    if p.target != r.target {
        push(Element::Target(r.target), true);
        push(Element::Target(p.target), false);
    }
}

/// Runtime-only items (`true`) in runtime order, then permanent-only ones (`false`).
fn diff<T: PartialEq + Clone>(perm: &[T], run: &[T]) -> Vec<(T, bool)> {
    run.iter()
        .filter(|x| !perm.contains(x))
        .map(|x| (x.clone(), true))
        .chain(
            perm.iter()
                .filter(|x| !run.contains(x))
                .map(|x| (x.clone(), false)),
        )
        .collect()
}
