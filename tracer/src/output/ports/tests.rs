//! The firewall formats against the k0s and k3s guides.

use super::*;

fn req<'a>(catalog: &'a Catalog, roles: &[Role]) -> PortsRequest<'a> {
    PortsRequest {
        catalog,
        roles: roles.to_vec(),
        zone: None,
        zone_note: None,
        offline: false,
        include_optional: false,
    }
}

#[test]
fn k0s_worker_service_file_matches_the_guide() {
    let c = Catalog::builtin("k0s-calico").unwrap();
    let xml = render(&req(&c, &[Role::Worker]), PortsFormat::FirewalldXml).unwrap();
    assert!(xml.contains("<short>k0s-worker</short>"), "{xml}");
    assert!(
        xml.contains("<description>k0s - The Zero Friction Kubernetes (worker node)</description>")
    );
    let ports: Vec<&str> = xml
        .lines()
        .filter(|l| l.trim_start().starts_with("<port "))
        .collect();
    assert_eq!(ports.len(), 3, "{xml}");
    for (proto, port) in [("tcp", "179"), ("udp", "4789"), ("tcp", "10250")] {
        assert!(
            xml.contains(&format!("<port protocol=\"{proto}\" port=\"{port}\"/>")),
            "{xml}"
        );
    }
    let controller = render(&req(&c, &[Role::Controller]), PortsFormat::FirewalldXml).unwrap();
    for port in ["2380", "6443", "8132", "9443"] {
        assert!(
            controller.contains(&format!("<port protocol=\"tcp\" port=\"{port}\"/>")),
            "{controller}"
        );
    }
    assert!(!controller.contains("vrrp"), "keepalived is optional");
}

#[test]
fn k0s_worker_commands_match_the_guide() {
    let c = Catalog::builtin("k0s-calico").unwrap();
    let cmds = render(&req(&c, &[Role::Worker]), PortsFormat::FirewallCmd).unwrap();
    let lines: Vec<&str> = cmds.lines().filter(|l| !l.starts_with('#')).collect();
    for want in [
        "firewall-cmd --permanent --add-service=k0s-worker",
        "firewall-cmd --permanent --add-masquerade",
        "firewall-cmd --permanent --add-source=10.244.0.0/16",
        "firewall-cmd --permanent --add-source=10.96.0.0/12",
        "firewall-cmd --permanent --service=k0s-worker --add-port=4789/udp",
    ] {
        assert!(lines.contains(&want), "missing {want:?} in\n{cmds}");
    }
    assert_eq!(lines.last(), Some(&"firewall-cmd --reload"));
    // Controllers get neither masquerade nor the CIDR sources.
    let ctl = render(&req(&c, &[Role::Controller]), PortsFormat::FirewallCmd).unwrap();
    assert!(
        !ctl.contains("--add-masquerade") && !ctl.contains("--add-source"),
        "{ctl}"
    );
    let offline = render(
        &PortsRequest {
            offline: true,
            ..req(&c, &[Role::Worker])
        },
        PortsFormat::FirewallCmd,
    )
    .unwrap();
    assert!(
        offline.contains("firewall-offline-cmd --add-service=k0s-worker"),
        "{offline}"
    );
    // `systemctl reload` fails on a stopped firewalld, the case --offline is for.
    assert!(
        offline
            .trim_end()
            .ends_with("systemctl try-reload-or-restart firewalld")
    );
}

#[test]
fn k3s_commands_open_ports_in_the_public_zone() {
    let c = Catalog::builtin("k3s-flannel").unwrap();
    let cmds = render(&req(&c, &[Role::Controller]), PortsFormat::FirewallCmd).unwrap();
    for want in [
        "firewall-cmd --permanent --zone=public --add-source=10.42.0.0/16",
        "firewall-cmd --permanent --zone=public --add-source=10.43.0.0/16",
        "firewall-cmd --permanent --zone=public --add-port=2379-2380/tcp",
        "firewall-cmd --permanent --zone=public --add-port=8472/udp",
        "firewall-cmd --permanent --zone=public --add-port=10000-30000/tcp",
    ] {
        assert!(
            cmds.lines().any(|l| l == want),
            "missing {want:?} in\n{cmds}"
        );
    }
    assert!(!cmds.contains("masquerade"));
}

#[test]
fn json_lists_components_and_zone_settings() {
    let c = Catalog::builtin("k0s-kube-router").unwrap();
    let out = render(&req(&c, &[Role::Worker]), PortsFormat::Json).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["services"][0], "k0s-worker");
    assert_eq!(v["masquerade"], true);
    let comps: Vec<&str> = v["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["component"].as_str().unwrap())
        .collect();
    assert_eq!(comps, ["kube-router-bgp", "kubelet"]);
}

#[test]
fn formats_that_need_a_role_say_so() {
    let c = Catalog::builtin("generic").unwrap();
    assert!(
        render(&req(&c, &[]), PortsFormat::FirewalldXml)
            .unwrap_err()
            .to_string()
            .contains("--role")
    );
    assert!(
        render(
            &req(&c, &[Role::Controller, Role::Worker]),
            PortsFormat::FirewalldXml
        )
        .is_err()
    );
    let table = render(&req(&c, &[]), PortsFormat::Table).unwrap();
    assert!(table.contains("keepalived-vrrp") || table.contains("vrrp"));
}
