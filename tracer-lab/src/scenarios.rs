//! The lab's scenarios: a healthy cluster network per profile, and broken ones, each with one
//! misconfiguration of the kind the seed documents warn about and the checks it must fail.

use std::fmt;

/// How nodes are wired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nics {
    /// One NIC per node, in the public zone ("Shared Interface" setup).
    Single,
    /// eth0 public, eth1 the cluster network in the trusted zone ("Segregated Networks").
    Segregated,
}

/// The network provider's way of carrying pod traffic between nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlay {
    /// Calico's VXLAN: `vxlan.calico`, UDP 4789.
    CalicoVxlan,
    /// Flannel's VXLAN: `flannel.1`, UDP 8472.
    FlannelVxlan,
    /// kube-router: BIRD peers on TCP 179, pod routes learned over BGP, no overlay.
    KubeRouterBgp,
}

impl Overlay {
    pub fn device(self) -> Option<&'static str> {
        match self {
            Overlay::CalicoVxlan => Some("vxlan.calico"),
            Overlay::FlannelVxlan => Some("flannel.1"),
            Overlay::KubeRouterBgp => None,
        }
    }

    pub fn vxlan(self) -> Option<(u32, u16)> {
        match self {
            Overlay::CalicoVxlan => Some((4096, 4789)),
            Overlay::FlannelVxlan => Some((1, 8472)),
            Overlay::KubeRouterBgp => None,
        }
    }

    /// The bridge pods attach to on a node, named as the provider names it.
    pub fn pod_bridge(self) -> &'static str {
        match self {
            Overlay::CalicoVxlan => "cali-pods",
            Overlay::FlannelVxlan => "cni0",
            Overlay::KubeRouterBgp => "kube-bridge",
        }
    }
}

/// The one thing a broken scenario gets wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The nodes' firewalls lack this port (left out of their k0s service or zone ports).
    PortMissing {
        nodes: &'static [&'static str],
        port: u16,
        proto: &'static str,
    },
    /// The trusted zone of the node lacks the pod CIDR as a source.
    PodCidrNotInZone { node: &'static str },
    /// The underlay MTU is 1450, the overlay device keeps the 1450 meant for a 1500 underlay
    /// (set by hand, so not bound to the NIC, which would have refused it), and the underlay
    /// does not fragment (DF on the outer header).
    OverlayMtuTooBig,
    /// rp_filter=1 (strict) on a node that receives on one NIC what it routes back via the other.
    StrictRpFilter { node: &'static str },
    /// The node has no default route.
    NoDefaultRoute { node: &'static str },
    /// The underlay between the nodes (the switch, outside both) drops the overlay packets
    /// one node sends the other: a firewall or security group on the path.
    UnderlayDrop {
        from: &'static str,
        to: &'static str,
    },
}

/// A lab network.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub summary: &'static str,
    /// The catalog profile the nodes are configured from.
    pub profile: &'static str,
    pub overlay: Overlay,
    pub nics: Nics,
    pub fault: Option<Fault>,
    /// The node a user would run the tracer on to see the fault.
    pub affected_node: &'static str,
    /// Checks this scenario makes fail (names as in `checks`), by prefix.
    pub failing: &'static [&'static str],
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)
    }
}

pub const CONTROLLER: &str = "controller-1";
pub const WORKERS: [&str; 2] = ["worker-1", "worker-2"];

/// Every scenario, healthy ones first.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "k0s-calico",
        summary: "healthy k0s with Calico VXLAN, firewalld services as the k0s guide sets them up",
        profile: "k0s-calico",
        overlay: Overlay::CalicoVxlan,
        nics: Nics::Single,
        fault: None,
        affected_node: "worker-2",
        failing: &[],
    },
    Scenario {
        name: "k0s-kube-router",
        summary: "healthy k0s with kube-router: BIRD BGP between workers, no overlay",
        profile: "k0s-kube-router",
        overlay: Overlay::KubeRouterBgp,
        nics: Nics::Single,
        fault: None,
        affected_node: "worker-2",
        failing: &[],
    },
    Scenario {
        name: "k3s-flannel",
        summary: "healthy k3s with Flannel VXLAN on one NIC (shared public zone)",
        profile: "k3s-flannel",
        overlay: Overlay::FlannelVxlan,
        nics: Nics::Single,
        fault: None,
        affected_node: "worker-2",
        failing: &[],
    },
    Scenario {
        name: "k3s-segregated",
        summary: "healthy k3s with Flannel on a separate cluster NIC (eth1 trusted, eth0 public)",
        profile: "k3s-flannel",
        overlay: Overlay::FlannelVxlan,
        nics: Nics::Segregated,
        fault: None,
        affected_node: "worker-1",
        failing: &[],
    },
    Scenario {
        name: "calico-vxlan-blocked",
        summary: "worker-2's k0s-worker service lacks 4789/udp: Calico VXLAN to it is rejected",
        profile: "k0s-calico",
        overlay: Overlay::CalicoVxlan,
        nics: Nics::Single,
        fault: Some(Fault::PortMissing {
            nodes: &["worker-2"],
            port: 4789,
            proto: "udp",
        }),
        affected_node: "worker-2",
        failing: &["pod-to-pod", "pod-to-node"],
    },
    Scenario {
        name: "bgp-blocked",
        // A worker that cannot accept BGP still opens its own session to a peer that can, so
        // the mistake only bites when every worker's service lacks the port: as when the
        // service was written from a guide for Calico's VXLAN mode.
        summary: "the workers' k0s-worker service lacks 179/tcp: no BGP session, no pod routes",
        profile: "k0s-kube-router",
        overlay: Overlay::KubeRouterBgp,
        nics: Nics::Single,
        fault: Some(Fault::PortMissing {
            nodes: &["worker-1", "worker-2"],
            port: 179,
            proto: "tcp",
        }),
        affected_node: "worker-2",
        failing: &["bgp", "pod-to-pod", "pod-to-node"],
    },
    Scenario {
        name: "underlay-loss",
        // Neither node drops anything: only the two ends' counts together show the loss.
        summary: "the switch between the nodes drops worker-1's VXLAN packets to worker-2: lost on the path, not on a node",
        profile: "k0s-calico",
        overlay: Overlay::CalicoVxlan,
        nics: Nics::Single,
        fault: Some(Fault::UnderlayDrop {
            from: "worker-1",
            to: "worker-2",
        }),
        affected_node: "worker-1",
        failing: &["pod-to-pod", "pod-to-node"],
    },
    Scenario {
        name: "konnectivity-blocked",
        summary: "the controller's k0s-controller service lacks 8132/tcp: konnectivity agents cannot connect",
        profile: "k0s-calico",
        overlay: Overlay::CalicoVxlan,
        nics: Nics::Single,
        fault: Some(Fault::PortMissing {
            nodes: &["controller-1"],
            port: 8132,
            proto: "tcp",
        }),
        affected_node: "controller-1",
        failing: &["konnectivity"],
    },
    Scenario {
        name: "pod-cidr-not-trusted",
        // Without the source, decapsulated pod traffic falls into the default (public) zone:
        // not accepted for the node, and not forwarded to the pod bridge, which no zone binds.
        summary: "worker-2's trusted zone lacks the pod CIDR source: pod traffic to and through worker-2 is rejected",
        profile: "k3s-flannel",
        overlay: Overlay::FlannelVxlan,
        nics: Nics::Segregated,
        fault: Some(Fault::PodCidrNotInZone { node: "worker-2" }),
        affected_node: "worker-2",
        failing: &["pod-to-pod", "pod-to-node"],
    },
    Scenario {
        name: "overlay-mtu",
        summary: "underlay MTU 1450 but flannel.1 keeps 1450: full-size pod packets do not fit and are dropped",
        profile: "k3s-flannel",
        overlay: Overlay::FlannelVxlan,
        nics: Nics::Single,
        fault: Some(Fault::OverlayMtuTooBig),
        affected_node: "worker-1",
        failing: &["pod-to-pod-large"],
    },
    Scenario {
        name: "rp-filter-strict",
        // Both flows arrive on the NIC the reply would not leave by: worker-2's traffic from its
        // public address on the cluster NIC, and the API server's answers to worker-1's
        // service traffic (sourced from eth0 before kube-proxy's DNAT) on eth0.
        summary: "worker-1 has strict rp_filter and receives on one NIC what it routes back via the other",
        profile: "k3s-flannel",
        overlay: Overlay::FlannelVxlan,
        nics: Nics::Segregated,
        fault: Some(Fault::StrictRpFilter { node: "worker-1" }),
        affected_node: "worker-1",
        failing: &["cluster-net-kubelet", "service worker-1"],
    },
    Scenario {
        name: "no-default-route",
        summary: "worker-1 has no default route: service ClusterIPs are unreachable from it",
        profile: "k3s-flannel",
        overlay: Overlay::FlannelVxlan,
        nics: Nics::Single,
        fault: Some(Fault::NoDefaultRoute { node: "worker-1" }),
        affected_node: "worker-1",
        failing: &["service worker-1"],
    },
];

/// The scenario `tracer demo` runs when none is named.
pub const DEMO_DEFAULT: &str = "calico-vxlan-blocked";

/// Profiles without a lab scenario, and why.
pub const UNSUPPORTED: &[(&str, &str)] = &[(
    "k3s-wireguard",
    "this kernel has no WireGuard module, so Flannel's wireguard-native backend cannot run",
)];

pub fn find(name: &str) -> Result<&'static Scenario, String> {
    if let Some(s) = SCENARIOS.iter().find(|s| s.name == name) {
        return Ok(s);
    }
    if let Some((_, why)) = UNSUPPORTED.iter().find(|(p, _)| *p == name) {
        return Err(format!("no lab scenario for {name}: {why}"));
    }
    let known: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
    Err(format!(
        "unknown scenario {name:?} (see `tracer lab scenarios`: {})",
        known.join(", ")
    ))
}

impl Scenario {
    pub fn nodes(&self) -> Vec<&'static str> {
        std::iter::once(CONTROLLER).chain(WORKERS).collect()
    }

    /// True when `check` (a check name) is one this scenario is meant to break.
    pub fn breaks(&self, check: &str) -> bool {
        self.failing.iter().any(|f| check.starts_with(f))
    }

    pub fn is_k3s(&self) -> bool {
        self.profile.starts_with("k3s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_profiles_exist() {
        let mut names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SCENARIOS.len());
        for s in SCENARIOS {
            tracer::model::catalog::Catalog::builtin(s.profile).unwrap();
            assert!(s.nodes().contains(&s.affected_node), "{}", s.name);
            assert_eq!(s.fault.is_none(), s.failing.is_empty(), "{}", s.name);
        }
        assert!(find(DEMO_DEFAULT).unwrap().fault.is_some());
        assert!(find("k3s-wireguard").unwrap_err().contains("WireGuard"));
    }
}
