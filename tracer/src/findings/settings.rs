//! The node's settings against what the distribution needs: firewalld's backend against the
//! cluster's iptables mode, masquerading and the pod/service CIDRs in the cluster's zone,
//! runtime-only firewalld changes, reverse-path filtering on multi-NIC nodes, the default route,
//! the overlay's MTU against its underlay's, and IP forwarding.

use std::fmt::Write as _;

use super::{Diagnosis, Finding, Inputs, Severity, fix, guesses::BUNDLE};
use crate::model::{
    catalog::OverlayKind,
    firewalld::{
        change::{Change, RELOAD, RUNTIME_TO_PERMANENT, ZoneAddition},
        drift,
    },
    iptables::Mode,
    node::{Fact, NodeFacts},
    pods::PodLink,
};

/// Records that `what` could not be checked for want of these facts, when one is unknown;
/// true when all are known.
fn known(inp: &Inputs, d: &mut Diagnosis, what: &str, facts: &[Fact]) -> bool {
    let missing: Vec<Fact> = facts.iter().copied().filter(|f| !inp.knows(*f)).collect();
    if missing.is_empty() {
        return true;
    }
    let names: Vec<&str> = missing.iter().map(|f| f.what()).collect();
    d.unknown(
        what,
        format!("not checked: {} not in the inputs", names.join(" and ")),
        missing
            .iter()
            .map(|f| f.command().to_string())
            .chain([BUNDLE.to_string()])
            .collect(),
    );
    false
}

pub fn check(inp: &Inputs, d: &mut Diagnosis) {
    backend(inp, d);
    zone_settings(inp, d);
    runtime_drift(inp, d);
    rp_filter(inp, d);
    default_route(inp, d);
    overlay_mtu(inp, d);
    forwarding(inp, d);
}

fn backend(inp: &Inputs, d: &mut Diagnosis) {
    both_backends(inp, d);
    if inp.guesses.is_some() && !inp.iptables.legacy_known {
        d.unknown(
            "cluster chains in legacy iptables",
            "not checked: the legacy tables are not in the inputs, so a cluster split between the two iptables backends cannot be seen",
            vec!["iptables-legacy-save".into(), BUNDLE.into()],
        );
    }
    if inp.iptables.split() {
        let mut f = Finding::new(
            "iptables/split",
            Severity::Warning,
            "cluster chains exist in both legacy iptables and iptables-nft",
            "Components of the cluster program different iptables backends; rules in one are invisible to the other's tools.",
        );
        f.element = Some(format!(
            "legacy: {}; nft: {}",
            inp.iptables.legacy_chains.join(" "),
            inp.iptables.nft_chains.join(" ")
        ));
        d.findings.push(f);
    }
    let (Some(p), Some((mode, evidence))) = (inp.permanent, inp.iptables.cluster_mode()) else {
        return;
    };
    if p.conf.file.is_none() {
        return;
    }
    let wanted = match mode {
        Mode::Legacy => "iptables",
        Mode::Nft => "nftables",
    };
    if p.conf.backend.eq_ignore_ascii_case(wanted) {
        return;
    }
    let file = p
        .conf
        .file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_default();
    let mut f = Finding::new(
        "firewalld/backend",
        Severity::Error,
        format!(
            "firewalld uses the {} backend but the cluster programs iptables in {} mode",
            p.conf.backend,
            mode.as_str()
        ),
        format!(
            "firewalld must run with the same backend as kube-proxy, kube-router or Calico ({evidence}), or they program rules in the wrong backend and networking fails."
        ),
    );
    f.element = Some(format!("FirewallBackend={} in {file}", p.conf.backend));
    f.fix = vec![
        format!("sed -i 's/^FirewallBackend=.*/FirewallBackend={wanted}/' {file}"),
        "systemctl restart firewalld".into(),
    ];
    // Told by the chains alone, the legacy tables unknown: they could say otherwise.
    if inp.guesses.is_some() && !inp.iptables.legacy_known && inp.iptables.k0s_link.is_none() {
        f.likely(["iptables-legacy-save".to_string(), BUNDLE.to_string()]);
    }
    d.findings.push(f);
}

/// Rules in legacy iptables beside an nftables ruleset: the kernel runs both, and each
/// backend's tools show only their own. Which backend each component writes to is what to align.
fn both_backends(inp: &Inputs, d: &mut Diagnosis) {
    let ipt = inp.iptables;
    if ipt.legacy_active.is_empty() || ipt.nft_tables.is_empty() {
        return;
    }
    let mut f = Finding::new(
        "iptables/both-backends",
        Severity::Warning,
        "rules live in both iptables-legacy and nftables",
        "The kernel runs both: a packet must get past the legacy tables and nftables alike, and each backend's tools show only their own rules (nft list ruleset hides the legacy ones, iptables-legacy -S the nftables ones). A component writing to the backend the node's firewall does not use (kube-proxy, kube-router or Calico in legacy mode beside an nftables firewalld) is the mismatch the k0s and k3s guides warn about.",
    );
    f.element = Some(format!(
        "legacy: {}; nftables: {}",
        ipt.legacy_active.join(", "),
        ipt.nft_tables.join(", ")
    ));
    f.fix = vec![
        "# see which iptables each component uses, and make them all use the node's:".into(),
        "readlink -f /var/lib/k0s/bin/iptables    # k0s's bundled iptables (legacy or nft)".into(),
        "kubectl -n kube-system exec ds/kube-proxy -- iptables -V    # and the CNI's pods".into(),
        "iptables-legacy-save; nft list ruleset    # what each backend holds".into(),
    ];
    d.findings.push(f);
}

fn zone_settings(inp: &Inputs, d: &mut Diagnosis) {
    let (Some(p), Some(tool)) = (inp.permanent, fix::tool(inp)) else {
        return;
    };
    let style = &inp.catalog.profile.firewalld;
    let Some(zone) = fix::cluster_zone(inp, p) else {
        return;
    };
    let Some(z) = p.zones.get(&zone) else {
        return;
    };
    let iface = inp.cluster_addrs().first().map(|a| a.iface.clone());
    // The cluster's zone is the zone of its NIC: a stand-in makes it a guess.
    let unsure = !inp.knows(Fact::Addresses);
    let settle = || [Fact::Addresses.command().to_string(), BUNDLE.to_string()];
    if inp.roles.iter().any(|r| style.masquerade.contains(r)) && !z.masquerade {
        let mut f = Finding::new(
            format!("zone/{zone}/masquerade"),
            Severity::Warning,
            format!("zone {zone} does not masquerade"),
            "The distribution's guide enables masquerading on workers so pod traffic leaving the node is translated.",
        );
        f.zone = Some(zone.clone());
        f.iface.clone_from(&iface);
        f.element = Some("masquerade: no".into());
        f.fix = tool.commands(&[Change::zone(&zone, ZoneAddition::Masquerade)]);
        if unsure {
            f.likely(settle());
        }
        d.findings.push(f);
    }
    if !inp.roles.iter().any(|r| style.sources.contains(r)) {
        return;
    }
    for (cidr, what, severity) in inp
        .pod_cidrs()
        .into_iter()
        .map(|c| (c, "pod", Severity::Error))
        .chain(
            inp.service_cidrs()
                .into_iter()
                .map(|c| (c, "service", Severity::Warning)),
        )
    {
        if p.has_source_covering(&cidr) {
            continue;
        }
        let mut f = Finding::new(
            format!("zone/{zone}/source/{cidr}"),
            severity,
            format!("the {what} CIDR {cidr} is not a source of any zone"),
            format!(
                "Traffic from the {what} network (pods reaching the node, decapsulated overlay traffic) must be bound to the cluster's zone ({zone}); without the source it falls into the zone of the interface it arrives on and is rejected there."
            ),
        );
        f.zone = Some(zone.clone());
        f.iface.clone_from(&iface);
        f.element = Some(format!(
            "sources of zone {zone}: {}",
            if z.sources.is_empty() {
                "none".into()
            } else {
                z.sources.join(" ")
            }
        ));
        f.fix = tool.commands(&[Change::zone(&zone, ZoneAddition::Source(cidr.to_string()))]);
        if unsure {
            f.likely(settle());
        }
        d.findings.push(f);
    }
}

fn runtime_drift(inp: &Inputs, d: &mut Diagnosis) {
    let (Some(p), Some(r)) = (inp.permanent, inp.runtime) else {
        return;
    };
    for dr in drift(p, r) {
        let what = dr.element.to_string();
        let mut f = if dr.runtime_only {
            let mut f = Finding::new(
                format!("zone/{}/runtime-only/{what}", dr.zone),
                Severity::Warning,
                format!("{what} in zone {} exists only at runtime", dr.zone),
                "It was added without --permanent: a reload or a reboot removes it.",
            );
            f.fix = vec![RUNTIME_TO_PERMANENT.into()];
            f
        } else {
            let mut f = Finding::new(
                format!("zone/{}/not-applied/{what}", dr.zone),
                Severity::Info,
                format!(
                    "{what} in zone {} is in the permanent configuration but not applied",
                    dr.zone
                ),
                "A permanent change waits for a reload.",
            );
            f.fix = vec![RELOAD.into()];
            f
        };
        f.zone = Some(dr.zone.clone());
        f.element = Some(what);
        d.findings.push(f);
    }
}

fn rp_filter(inp: &Inputs, d: &mut Diagnosis) {
    let what = "reverse-path filtering on a multi-NIC node";
    if !known(inp, d, what, &[Fact::Addresses, Fact::Sysctls]) {
        return;
    }
    let nics = inp.node_nics();
    let mut names: Vec<&str> = nics.iter().map(|a| a.iface.as_str()).collect();
    names.dedup();
    if names.len() < 2 {
        return;
    }
    let strict: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| inp.facts.rp_filter.get(*n) == Some(&1))
        .collect();
    if strict.is_empty() {
        return;
    }
    let mut f = Finding::new(
        "sysctl/rp_filter",
        Severity::Error,
        format!(
            "strict reverse-path filtering (rp_filter=1) on a node with several NICs ({})",
            names.join(", ")
        ),
        "With strict rp_filter the kernel drops packets arriving on one NIC when the route back to their source leaves by another (IP_RPFILTER drops), which is how multi-NIC cluster traffic often flows. Loose mode (2) keeps the spoofing check without requiring symmetric routes.",
    );
    f.iface = Some(strict.join(","));
    f.element = Some(
        strict
            .iter()
            .map(|n| format!("net.ipv4.conf.{n}.rp_filter"))
            .collect::<Vec<_>>()
            .join(", ")
            + " = 1 (or all = 1)",
    );
    f.fix = std::iter::once("all".to_string())
        .chain(strict.iter().map(std::string::ToString::to_string))
        .map(|n| format!("sysctl -w net.ipv4.conf.{n}.rp_filter=2"))
        .chain(std::iter::once(
            "echo 'net.ipv4.conf.all.rp_filter = 2' > /etc/sysctl.d/90-rp-filter-loose.conf"
                .to_string(),
        ))
        .collect();
    d.findings.push(f);
}

fn default_route(inp: &Inputs, d: &mut Diagnosis) {
    if inp.catalog.profile.distribution != "k3s"
        || !known(inp, d, "the default route", &[Fact::Routes])
        || inp.facts.default_v4.is_some()
    {
        return;
    }
    let iface = inp
        .cluster_addrs()
        .first()
        .map_or("eth0".to_string(), |a| a.iface.clone());
    let mut f = Finding::new(
        "route/default",
        Severity::Error,
        "no default route",
        "k3s needs a default route to detect the node's primary IP, and kube-proxy's ClusterIP routing needs one: traffic to services fails with 'network unreachable'.",
    );
    f.iface = Some(iface.clone());
    f.element = Some("IPv4 routing table has no default route".into());
    f.fix = vec![
        format!("ip route add default via GATEWAY dev {iface}    # your gateway on {iface}"),
        "# without a gateway, the guide's workaround: a dummy interface carrying the default route".into(),
        "ip link add dummy0 type dummy && ip link set dummy0 up && ip addr add 203.0.113.254/31 dev dummy0 && ip route add default via 203.0.113.255 dev dummy0 metric 1000".into(),
    ];
    d.findings.push(f);
}

/// The overlay's MTU against its underlay's, and the pods' against the overlay's: a packet a
/// pod sends at its full MTU must fit in the overlay device, and the overlay's packet in the
/// underlay. The fix is every change that makes full-size pod traffic pass: the device, each
/// pod's own interface (for the pods already running), and the provider's setting (for the
/// pods it starts later), named for the provider.
fn overlay_mtu(inp: &Inputs, d: &mut Diagnosis) {
    if inp.catalog.profile.overlay().is_some()
        && !known(inp, d, "the overlay's MTU", &[Fact::Links])
    {
        return;
    }
    let f: &NodeFacts = &inp.facts;
    for v in &f.vxlans {
        let Some(under) = f.underlay_of(v).and_then(|u| f.iface(u).cloned()) else {
            continue;
        };
        let overhead = match v.local {
            Some(std::net::IpAddr::V6(_)) => 70,
            _ => OverlayKind::Vxlan.overhead(),
        };
        let fit = under.mtu.saturating_sub(overhead);
        let device_too_big = v.mtu > fit;
        // What the overlay carries once its device fits the underlay.
        let carried = v.mtu.min(fit);
        let pod_mtu = |p: &PodLink| p.peer.as_ref().map_or(p.host_mtu, |(_, mtu)| *mtu);
        // A veth that holds one of the node's own addresses is a NIC (the underlay of a node
        // that is itself a container or VM), not a pod.
        let nics = inp.node_nics();
        let pods: Vec<&PodLink> = f
            .pods
            .iter()
            .filter(|p| p.host != under.name && !nics.iter().any(|n| n.iface == p.host))
            .filter(|p| pod_mtu(p) > carried)
            .collect();
        if !device_too_big && pods.is_empty() {
            continue;
        }
        let title = if device_too_big {
            format!(
                "overlay MTU too large: {} has MTU {} but {} carries at most {fit} bytes of overlay packet",
                v.name, v.mtu, under.name
            )
        } else {
            format!(
                "pods send more than the overlay carries: {} of them have an MTU above {carried}, the MTU of {}",
                pods.len(),
                v.name
            )
        };
        let mut finding = Finding::new(
            format!("mtu/{}", v.name),
            Severity::Error,
            title,
            format!(
                "VXLAN adds {overhead} bytes in front of every packet: {} can carry {fit} bytes of a pod's packet over {}'s MTU of {}, and a pod's full-size packet larger than its overlay is dropped or fragmented (PKT_TOO_BIG drops, NOT_SPECIFIED in ip_fragment, fragmentation timeouts).",
                v.name, under.name, under.mtu
            ),
        );
        finding.iface = Some(v.name.clone());
        let mut element = format!("{} mtu {}, {} mtu {}", v.name, v.mtu, under.name, under.mtu);
        for p in &pods {
            let _ = write!(element, ", pod behind {} mtu {}", p.described(), pod_mtu(p));
        }
        finding.element = Some(element);
        if device_too_big {
            finding
                .fix
                .push(format!("ip link set {} mtu {fit}", v.name));
        }
        for p in &pods {
            finding.fix.push(match (&p.netns, &p.peer) {
                (Some(ns), Some((name, _))) => format!("ip -n {ns} link set {name} mtu {carried}"),
                _ => format!(
                    "# the pod behind {} (its network namespace has no name here): set its interface's MTU to {carried}, or restart the pod",
                    p.described()
                ),
            });
        }
        finding.fix.push(provider_mtu(&v.name, carried));
        d.findings.push(finding);
    }
}

/// The network provider's own MTU setting, which the pods it starts later get, for the
/// provider that made `device`.
fn provider_mtu(device: &str, mtu: u32) -> String {
    match device {
        "vxlan.calico" => format!(
            "kubectl patch felixconfiguration default --type merge -p '{{\"spec\":{{\"vxlanMTU\":{mtu}}}}}'    # Calico's MTU for pods started later (k0s: spec.network.calico.mtu in /etc/k0s/k0s.yaml)"
        ),
        "flannel.1" => format!(
            "# Flannel gives pods started later the MTU flannel.1 had when it started (FLANNEL_MTU in /run/flannel/subnet.env): restart k3s (systemctl restart k3s, or k3s-agent) once flannel.1 has MTU {mtu}"
        ),
        _ => format!("# and set the network provider's MTU to {mtu} so pods started later get it"),
    }
}

fn forwarding(inp: &Inputs, d: &mut Diagnosis) {
    if !inp.runs_pods()
        || !known(inp, d, "IP forwarding", &[Fact::Sysctls])
        || inp.facts.ip_forward != Some(0)
    {
        return;
    }
    let mut f = Finding::new(
        "sysctl/ip_forward",
        Severity::Error,
        "IP forwarding is off",
        "Pod traffic is routed through the node; with net.ipv4.ip_forward=0 none of it passes.",
    );
    f.element = Some("net.ipv4.ip_forward = 0".into());
    f.fix = vec![
        "sysctl -w net.ipv4.ip_forward=1".into(),
        "echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/90-ip-forward.conf".into(),
    ];
    d.findings.push(f);
}
