//! What each lab node's firewalld is configured with, following the seed documents: for k0s the
//! `k0s-controller` / `k0s-worker` services in the public zone, with masquerade and the pod and
//! service CIDRs as sources on workers; for k3s on one NIC the ports and CIDRs in the public zone;
//! for segregated k3s the cluster NIC and the CIDRs in the trusted zone, only the external ports
//! in the public one. A scenario's fault is applied here when it is a firewall fault.

use std::fmt::Write as _;

use tracer::{
    model::catalog::{Catalog, Component, Role},
    output::ports::{PortsFormat, PortsRequest, render},
};

use super::scenarios::{CONTROLLER, Fault, Nics, Scenario};

/// The application ports of the k3s platform guide, part of every k3s lab node's firewall.
pub const K3S_APPS: &str = include_str!("../../examples/k3s-apps.toml");

/// One firewalld zone file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Zone {
    pub name: &'static str,
    pub target: Option<&'static str>,
    pub services: Vec<String>,
    pub ports: Vec<String>,
    pub protocols: Vec<String>,
    pub masquerade: bool,
    pub interfaces: Vec<&'static str>,
    pub sources: Vec<String>,
}

impl Zone {
    pub fn xml(&self) -> String {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
        match self.target {
            Some(t) => {
                let _ = writeln!(s, "<zone target=\"{t}\">");
            }
            None => s.push_str("<zone>\n"),
        }
        let title = format!("{}{}", self.name[..1].to_uppercase(), &self.name[1..]);
        let _ = writeln!(s, "  <short>{title}</short>");
        for svc in &self.services {
            let _ = writeln!(s, "  <service name=\"{svc}\"/>");
        }
        for spec in &self.ports {
            let (port, proto) = spec.split_once('/').expect("port/proto");
            let _ = writeln!(s, "  <port protocol=\"{proto}\" port=\"{port}\"/>");
        }
        for p in &self.protocols {
            let _ = writeln!(s, "  <protocol value=\"{p}\"/>");
        }
        if self.masquerade {
            s.push_str("  <masquerade/>\n");
        }
        s.push_str("  <forward/>\n");
        for i in &self.interfaces {
            let _ = writeln!(s, "  <interface name=\"{i}\"/>");
        }
        for src in &self.sources {
            let _ = writeln!(s, "  <source address=\"{src}\"/>");
        }
        s.push_str("</zone>\n");
        s
    }
}

/// A node's firewalld configuration: service files and zone files.
#[derive(Clone, Debug, Default)]
pub struct NodeFirewall {
    /// (service name, XML)
    pub services: Vec<(String, String)>,
    pub zones: Vec<Zone>,
}

/// The catalog the lab configures nodes from: the profile, plus the platform's application
/// ports for k3s.
pub fn catalog(s: &Scenario) -> anyhow::Result<Catalog> {
    let mut c = Catalog::builtin(s.profile)?;
    if s.is_k3s() {
        let apps = tracer::model::catalog::parse_user_text("examples/k3s-apps.toml", K3S_APPS)?;
        c.components.extend(apps);
    }
    Ok(c)
}

fn role(node: &str) -> Role {
    if node == CONTROLLER {
        Role::Controller
    } else {
        Role::Worker
    }
}

/// Drops the port the scenario's fault removes from this node.
fn apply_port_fault(s: &Scenario, node: &str, specs: Vec<String>) -> Vec<String> {
    match s.fault {
        Some(Fault::PortMissing { nodes, port, proto }) if nodes.contains(&node) => {
            let gone = format!("{port}/{proto}");
            specs.into_iter().filter(|p| *p != gone).collect()
        }
        _ => specs,
    }
}

fn is_external(c: &Component) -> bool {
    c.from.contains(&Role::External) && c.origin.ends_with("k3s-apps.toml")
}

pub fn node_firewall(s: &Scenario, catalog: &Catalog, node: &str) -> NodeFirewall {
    let r = role(node);
    let p = &catalog.profile;
    let cidrs: Vec<String> = p
        .pod_cidrs
        .iter()
        .chain(&p.service_cidrs)
        .map(std::string::ToString::to_string)
        .collect();
    let wanted: Vec<&Component> = catalog.accepted_by(r, false);
    let mut fw = NodeFirewall::default();
    if p.firewalld.services {
        let name = p.service_name(r);
        let req = PortsRequest {
            catalog,
            roles: vec![r],
            zone: None,
            zone_note: None,
            offline: false,
            include_optional: false,
        };
        let xml = render(&req, PortsFormat::FirewalldXml).expect("one role");
        let xml = match s.fault {
            Some(Fault::PortMissing { nodes, port, proto }) if nodes.contains(&node) => xml
                .lines()
                .filter(|l| !l.contains(&format!("<port protocol=\"{proto}\" port=\"{port}\"/>")))
                .fold(String::new(), |mut kept, l| {
                    let _ = writeln!(kept, "{l}");
                    kept
                }),
            _ => xml,
        };
        fw.services.push((name.clone(), xml));
        fw.zones.push(Zone {
            name: "public",
            services: vec!["dhcpv6-client".into(), name, "ssh".into()],
            masquerade: p.firewalld.masquerade.contains(&r),
            interfaces: vec!["eth0"],
            sources: if p.firewalld.sources.contains(&r) {
                cidrs
            } else {
                Vec::new()
            },
            ..Default::default()
        });
        return fw;
    }
    let specs = |cs: &[&Component]| -> (Vec<String>, Vec<String>) {
        let all: Vec<String> = cs.iter().flat_map(|c| c.port_specs()).collect();
        all.into_iter().partition(|p| p.contains('/'))
    };
    match s.nics {
        Nics::Single => {
            let (ports, protocols) = specs(&wanted);
            fw.zones.push(Zone {
                name: "public",
                services: vec!["dhcpv6-client".into(), "ssh".into()],
                ports: apply_port_fault(s, node, ports),
                protocols,
                interfaces: vec!["eth0"],
                sources: cidrs,
                ..Default::default()
            });
        }
        Nics::Segregated => {
            let external: Vec<&Component> =
                wanted.iter().copied().filter(|c| is_external(c)).collect();
            let (ports, protocols) = specs(&external);
            fw.zones.push(Zone {
                name: "public",
                services: vec!["cockpit".into(), "dhcpv6-client".into(), "ssh".into()],
                ports: apply_port_fault(s, node, ports),
                protocols,
                interfaces: vec!["eth0"],
                ..Default::default()
            });
            let sources = if matches!(s.fault, Some(Fault::PodCidrNotInZone { node: n }) if n == node)
            {
                p.service_cidrs
                    .iter()
                    .map(std::string::ToString::to_string)
                    .collect()
            } else {
                cidrs
            };
            fw.zones.push(Zone {
                name: "trusted",
                target: Some("ACCEPT"),
                services: vec!["mdns".into(), "ssh".into()],
                interfaces: vec!["eth1"],
                sources,
                ..Default::default()
            });
        }
    }
    fw
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::find;

    fn fw(scenario: &str, node: &str) -> NodeFirewall {
        let s = find(scenario).unwrap();
        node_firewall(s, &catalog(s).unwrap(), node)
    }

    #[test]
    fn k0s_nodes_get_the_guide_services() {
        let w = fw("k0s-calico", "worker-2");
        assert_eq!(w.services[0].0, "k0s-worker");
        assert!(w.services[0].1.contains("port=\"4789\""));
        let zone = &w.zones[0];
        assert!(zone.masquerade);
        assert_eq!(zone.sources, ["10.244.0.0/16", "10.96.0.0/12"]);
        let c = fw("k0s-calico", "controller-1");
        assert_eq!(c.services[0].0, "k0s-controller");
        assert!(c.zones[0].sources.is_empty() && !c.zones[0].masquerade);
    }

    #[test]
    fn faults_remove_exactly_their_element() {
        let broken = fw("calico-vxlan-blocked", "worker-2");
        assert!(!broken.services[0].1.contains("port=\"4789\""));
        assert!(broken.services[0].1.contains("port=\"10250\""));
        assert!(
            fw("calico-vxlan-blocked", "worker-1").services[0]
                .1
                .contains("port=\"4789\"")
        );
        let trusted = |n: &str| fw("pod-cidr-not-trusted", n).zones[1].sources.clone();
        assert_eq!(trusted("worker-2"), ["10.43.0.0/16"]);
        assert_eq!(trusted("worker-1"), ["10.42.0.0/16", "10.43.0.0/16"]);
    }

    #[test]
    fn k3s_segregated_zones_follow_the_guide() {
        let f = fw("k3s-segregated", "worker-1");
        let public = &f.zones[0];
        for p in [
            "80/tcp", "443/tcp", "9095/tcp", "6379/tcp", "8125/tcp", "8125/udp",
        ] {
            assert!(public.ports.contains(&p.to_string()), "{p}: {public:?}");
        }
        assert!(!public.ports.contains(&"8472/udp".to_string()));
        assert_eq!(f.zones[1].target, Some("ACCEPT"));
        assert!(f.zones[1].xml().contains("<interface name=\"eth1\"/>"));
        let single = fw("k3s-flannel", "worker-1");
        assert!(single.zones[0].ports.contains(&"8472/udp".to_string()));
        assert!(
            single.zones[0]
                .sources
                .contains(&"10.42.0.0/16".to_string())
        );
    }
}
