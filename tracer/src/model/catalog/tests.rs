//! The embedded profiles against the seed documents, and the catalog's error reporting.

use std::io::Write;

use super::*;

fn specs(catalog: &Catalog, role: Role) -> Vec<String> {
    catalog
        .accepted_by(role, false)
        .iter()
        .flat_map(|c| c.port_specs())
        .collect()
}

#[test]
fn every_embedded_profile_parses_and_builds_a_class_table() {
    for p in profiles() {
        let table = class_table(&p.components).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        assert!(table.len() > 2, "{}", p.name);
        assert!(
            !p.pod_cidrs.is_empty() && !p.service_cidrs.is_empty(),
            "{}",
            p.name
        );
    }
    assert_eq!(
        profile_names().collect::<Vec<_>>(),
        [
            "generic",
            "k0s-kube-router",
            "k0s-calico",
            "k3s-flannel",
            "k3s-wireguard"
        ]
    );
}

#[test]
fn k0s_calico_matches_the_seed_services() {
    let c = Catalog::builtin("k0s-calico").unwrap();
    // The k0s-worker and k0s-controller firewalld services of the k0s guide.
    assert_eq!(
        specs(&c, Role::Worker),
        ["179/tcp", "4789/udp", "10250/tcp"]
    );
    assert_eq!(
        specs(&c, Role::Controller),
        ["2380/tcp", "6443/tcp", "8132/tcp", "9443/tcp"]
    );
    assert_eq!(c.profile.pod_cidrs[0].to_string(), "10.244.0.0/16");
    assert_eq!(c.profile.service_cidrs[0].to_string(), "10.96.0.0/12");
    // keepalived is only for control-plane load balancing.
    let with_optional: Vec<String> = c
        .accepted_by(Role::Controller, true)
        .iter()
        .flat_map(|c| c.port_specs())
        .collect();
    assert!(with_optional.contains(&"vrrp".to_string()));
}

#[test]
fn k3s_flannel_matches_the_seed_inter_node_ports() {
    let c = Catalog::builtin("k3s-flannel").unwrap();
    let server = specs(&c, Role::Controller);
    for p in [
        "2379-2380/tcp",
        "6443/tcp",
        "8472/udp",
        "10250/tcp",
        "5001/tcp",
        "9500-9503/tcp",
        "8500-8504/tcp",
        "10000-30000/tcp",
        "3260/tcp",
        "2049/tcp",
    ] {
        assert!(
            server.contains(&p.to_string()),
            "server lacks {p}: {server:?}"
        );
    }
    let agent = specs(&c, Role::Worker);
    assert!(
        !agent.contains(&"6443/tcp".to_string()) && !agent.contains(&"2379-2380/tcp".to_string())
    );
    assert_eq!(c.profile.role_name(Role::Controller), "server");
}

#[test]
fn generic_holds_every_known_component() {
    let c = Catalog::builtin("generic").unwrap();
    let names: Vec<&str> = c.components.iter().map(|c| c.name.as_str()).collect();
    for n in [
        "etcd",
        "kube-apiserver",
        "kubelet",
        "konnectivity",
        "k0s-api",
        "kube-router-bgp",
        "calico-vxlan",
        "flannel-vxlan",
        "wireguard",
        "keepalived-vrrp",
        "spegel",
        "longhorn-manager",
        "longhorn-replica",
    ] {
        assert!(names.contains(&n), "generic lacks {n}");
    }
    let table = class_table(&c.components).unwrap();
    // VRRP is an IP protocol, not a port.
    assert_eq!(table.protos()[112], table.id("keepalived-vrrp").unwrap());
    // kubelet's 10250 sits inside Longhorn's 10000-30000 and keeps its class.
    assert_eq!(table.ports()[10250].tcp, table.id("kubelet").unwrap());
    assert_eq!(
        table.ports()[10251].tcp,
        table.id("longhorn-replica").unwrap()
    );
    assert_eq!(table.ports()[4789].udp, table.id("calico-vxlan").unwrap());
    assert_eq!(table.ports()[4789].tcp, 0);
}

fn user_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn user_catalog_adds_classes() {
    let mut c = Catalog::builtin("k3s-flannel").unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/k3s-apps.toml");
    assert_eq!(c.add_file(&path).unwrap(), 7);
    let table = class_table(&c.components).unwrap();
    assert_eq!(
        table.ports()[8125].udp,
        table.id("telegraf-statsd").unwrap()
    );
    assert_eq!(
        table.ports()[8125].tcp,
        table.id("telegraf-statsd").unwrap()
    );
}

#[test]
fn syntax_errors_name_file_line_and_column() {
    let f = user_file(
        "[[component]]\nname = \"redis\"\nprotocol = \"tcp\"\nports = \"6379\nfrom = []\n",
    );
    let mut c = Catalog::builtin("generic").unwrap();
    let before = c.components.len();
    let err = c.add_file(f.path()).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:4:", f.path().display())),
        "{err}"
    );
    // The catalog is untouched and still usable.
    assert_eq!(c.components.len(), before);
}

#[test]
fn invalid_values_are_located() {
    let cases = [
        ("ports = \"70000\"", "not a port"),
        ("ports = \"20-10\"", "not a port"),
        ("ports = \"abc\"", "not a port"),
    ];
    for (line, want) in cases {
        let text = format!(
            "[[component]]\nname = \"x\"\nprotocol = \"tcp\"\n{line}\nfrom = [\"worker\"]\nto = [\"worker\"]\n"
        );
        let f = user_file(&text);
        let err = Catalog::builtin("generic")
            .unwrap()
            .add_file(f.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains(":4:") && err.contains(want), "{line}: {err}");
    }
    let f = user_file(
        "[[component]]\nname = \"x\"\nprotocol = \"tcp\"\nports = 1\nfrom = [\"worker\"]\nto = [\"boss\"]\n",
    );
    let err = Catalog::builtin("generic")
        .unwrap()
        .add_file(f.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains(":6:") && err.contains("unknown role"), "{err}");
    let f = user_file(
        "[[component]]\nname = \"x\"\nprotocol = \"tcp\"\nport = 1\nfrom = []\nto = [\"worker\"]\n",
    );
    let err = Catalog::builtin("generic")
        .unwrap()
        .add_file(f.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `port`"), "{err}");
}

#[test]
fn overlapping_components_are_a_conflict() {
    let f = user_file(
        "[[component]]\nname = \"my-api\"\nprotocol = \"tcp\"\nports = \"6443\"\nfrom = [\"external\"]\nto = [\"worker\"]\n",
    );
    let err = Catalog::builtin("generic")
        .unwrap()
        .add_file(f.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("my-api") && err.contains("kube-apiserver"),
        "{err}"
    );
    // Partial overlap of two ranges.
    let f = user_file(
        "[[component]]\nname = \"odd\"\nprotocol = \"tcp\"\nports = \"9000-9501\"\nfrom = [\"worker\"]\nto = [\"worker\"]\n",
    );
    let err = Catalog::builtin("generic")
        .unwrap()
        .add_file(f.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("longhorn-manager"), "{err}");
}

#[test]
fn unknown_profile_lists_the_known_ones() {
    let err = Catalog::builtin("k8s").unwrap_err().to_string();
    assert!(
        err.contains("k0s-calico") && err.contains("generic"),
        "{err}"
    );
}

#[test]
fn roles_accept_both_vocabularies() {
    assert_eq!("server".parse::<Role>().unwrap(), Role::Controller);
    assert_eq!("agent".parse::<Role>().unwrap(), Role::Worker);
    assert!("boss".parse::<Role>().is_err());
    assert_eq!("vrrp".parse::<Protocol>().unwrap(), Protocol::Ip(112));
    assert!("17".parse::<Protocol>().is_err());
}

#[test]
fn protocols_by_number_and_port_labels() {
    assert_eq!(Protocol::from_number(6), Protocol::Tcp);
    assert_eq!(Protocol::from_number(17), Protocol::Udp);
    assert_eq!(Protocol::from_number(132), Protocol::Sctp);
    assert_eq!(Protocol::from_number(112), Protocol::Ip(112));
    assert_eq!(Protocol::from_number(17).port_label(4789), "4789/udp");
    assert_eq!(Protocol::Sctp.port_label(38412), "38412/sctp");
    assert_eq!(Protocol::from_number(112).port_label(0), "vrrp");
    assert_eq!(Protocol::from_number(200).port_label(80), "200");
}
