//! The node's settings against what the distribution needs: firewalld's backend against the
//! cluster's iptables mode, masquerading and the pod/service CIDRs in the cluster's zone,
//! runtime-only firewalld changes, reverse-path filtering on multi-NIC nodes, the default route,
//! the overlay's MTU against its underlay's, and IP forwarding.

use super::{Diagnosis, Finding, Inputs, Severity, fix, guesses::BUNDLE};
use crate::model::{
    catalog::OverlayKind,
    firewalld::{
        change::{Change, RELOAD, RUNTIME_TO_PERMANENT, ZoneAddition},
        drift,
    },
    iptables::Mode,
    node::{Fact, NodeFacts},
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
        if v.mtu + overhead <= under.mtu {
            continue;
        }
        let fit = under.mtu.saturating_sub(overhead);
        let mut finding = Finding::new(
            format!("mtu/{}", v.name),
            Severity::Error,
            format!(
                "overlay MTU too large: {} has MTU {} but {} carries at most {} bytes of overlay packet",
                v.name, v.mtu, under.name, fit
            ),
            format!(
                "VXLAN adds {overhead} bytes in front of every packet; a full-size packet on {} does not fit in {}'s MTU of {} and is dropped or fragmented (PKT_TOO_BIG drops, fragmentation timeouts).",
                v.name, under.name, under.mtu
            ),
        );
        finding.iface = Some(v.name.clone());
        finding.element = Some(format!(
            "{} mtu {}, {} mtu {}",
            v.name, v.mtu, under.name, under.mtu
        ));
        finding.fix = vec![
            format!("ip link set {} mtu {fit}", v.name),
            format!(
                "# and set the network provider's MTU to {fit} so pods get it too (Calico: FelixConfiguration vxlanMTU; Flannel: the backend's MTU)"
            ),
        ];
        d.findings.push(finding);
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
