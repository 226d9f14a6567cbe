//! Zone selection and what zones accept.

use std::net::IpAddr;

use super::super::{Binding, Origin, PortProto, ZoneBinding};
use super::{read_clean, stock_root, write};
use crate::model::net::Cidr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn zone_for_source_then_interface_then_default() {
    let t = stock_root();
    let z = "etc/firewalld/zones";
    write(
        t.path(),
        &format!("{z}/trusted.xml"),
        r#"<zone target="ACCEPT"><interface name="eth1"/><source address="10.42.0.0/16"/><source address="fd42::/48"/></zone>"#,
    );
    write(
        t.path(),
        &format!("{z}/public.xml"),
        r#"<zone><interface name="eth0"/><source address="10.244.0.0/16"/></zone>"#,
    );
    // Overlaps public's source; sorts before it, so it wins although it is less specific.
    write(
        t.path(),
        &format!("{z}/dmz.xml"),
        r#"<zone><source address="10.240.0.0/255.240.0.0"/><source ipset="cluster"/></zone>"#,
    );
    write(
        t.path(),
        &format!("{z}/work.xml"),
        r#"<zone><interface name="veth+"/><interface name="v+"/></zone>"#,
    );
    write(
        t.path(),
        "etc/firewalld/firewalld.conf",
        "DefaultZone=block\n",
    );
    let p = read_clean(t.path());
    let case = |iface: &str, src: &str, zone: &str, why: Binding| {
        assert_eq!(
            p.zone_for(iface, ip(src)),
            ZoneBinding {
                zone: zone.to_string(),
                binding: why
            },
            "zone_for({iface}, {src})"
        );
    };
    case(
        "eth0",
        "10.42.7.1",
        "trusted",
        Binding::Source("10.42.0.0/16".into()),
    );
    case(
        "eth1",
        "192.168.1.9",
        "trusted",
        Binding::Interface("eth1".into()),
    );
    case(
        "eth0",
        "192.168.1.9",
        "public",
        Binding::Interface("eth0".into()),
    );
    case("eth7", "192.168.1.9", "block", Binding::DefaultZone);
    case(
        "eth1",
        "10.244.1.1",
        "dmz",
        Binding::Source("10.240.0.0/255.240.0.0".into()),
    );
    // Interfaces are inserted at the top of the dispatch chain in the order firewalld applies
    // them, so the last one bound matches first (firewalld 1.3.3 writes `iifname "v*"` before
    // `iifname "veth*"` for this zone): not the longest wildcard.
    case(
        "veth12ab",
        "1.1.1.1",
        "work",
        Binding::Interface("v+".into()),
    );
    case("vx", "1.1.1.1", "work", Binding::Interface("v+".into()));
    case(
        "eth0",
        "fd42::5",
        "trusted",
        Binding::Source("fd42::/48".into()),
    );
    case(
        "eth0",
        "fd43::5",
        "public",
        Binding::Interface("eth0".into()),
    );
}

#[test]
fn netmask_sources_are_networks_like_prefixes() {
    let t = stock_root();
    write(
        t.path(),
        "etc/firewalld/zones/public.xml",
        r#"<zone><interface name="eth0"/><source address="00:11:22:33:44:55"/><source address="10.244.0.0/255.255.0.0"/></zone>"#,
    );
    let p = read_clean(t.path());
    let cidr = |s: &str| s.parse::<Cidr>().unwrap();
    // The pod CIDR is a source of public, written with a netmask.
    assert!(p.has_source_covering(&cidr("10.244.0.0/16")));
    assert!(p.has_source_covering(&cidr("10.244.3.0/24")));
    assert!(!p.has_source_covering(&cidr("10.0.0.0/8")));
    assert!(!p.has_source_covering(&cidr("10.245.0.0/16")));
    let public = &p.zones["public"];
    assert_eq!(
        public.source_containing(ip("10.244.3.7")),
        Some("10.244.0.0/255.255.0.0")
    );
    assert_eq!(public.source_containing(ip("10.245.0.1")), None);
    assert_eq!(
        p.zone_for("eth9", ip("10.244.3.7")),
        ZoneBinding {
            zone: "public".to_string(),
            binding: Binding::Source("10.244.0.0/255.255.0.0".into())
        }
    );
}

#[test]
fn zone_accepts_follows_services_and_includes() {
    let t = stock_root();
    write(
        t.path(),
        "etc/firewalld/zones/public.xml",
        r#"<zone>
  <port port="6443" protocol="tcp"/>
  <protocol value="vrrp"/>
  <service name="node"/>
  <service name="ssh"/>
</zone>"#,
    );
    write(
        t.path(),
        "etc/firewalld/services/node.xml",
        r#"<service><port port="10250" protocol="tcp"/><include service="cni"/><include service="bgp"/></service>"#,
    );
    // A cycle back to node must not loop.
    write(
        t.path(),
        "etc/firewalld/services/cni.xml",
        r#"<service><port port="4789" protocol="udp"/><protocol value="ipip"/><include service="node"/></service>"#,
    );
    let p = read_clean(t.path());
    let svc = |s: &str| Origin::Service(s.into());
    let inc = |s: &str| Origin::Included {
        service: s.into(),
        by: "node".into(),
    };
    assert_eq!(
        p.zone_accepts("public"),
        [
            (PortProto::new("6443", "tcp"), Origin::ZonePort),
            (PortProto::new("", "vrrp"), Origin::Protocol),
            (PortProto::new("10250", "tcp"), svc("node")),
            (PortProto::new("4789", "udp"), inc("cni")),
            (PortProto::new("", "ipip"), inc("cni")),
            (PortProto::new("179", "tcp"), inc("bgp")),
            (PortProto::new("22", "tcp"), svc("ssh")),
        ]
    );
    assert!(p.zone_accepts("nosuchzone").is_empty());

    // Stock services include others several levels deep.
    write(
        t.path(),
        "etc/firewalld/zones/work.xml",
        r#"<zone><service name="RH-Satellite-6-capsule"/></zone>"#,
    );
    let p = read_clean(t.path());
    let got = p.zone_accepts("work");
    let https = (
        PortProto::new("443", "tcp"),
        Origin::Included {
            service: "https".into(),
            by: "RH-Satellite-6-capsule".into(),
        },
    );
    assert!(got.contains(&https), "https through foreman: {got:#?}");
    assert!(got.contains(&(
        PortProto::new("8443", "tcp"),
        Origin::Service("RH-Satellite-6-capsule".into())
    )));
}
