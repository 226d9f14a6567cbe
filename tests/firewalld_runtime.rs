//! firewalld's runtime view against a real firewalld: dbus-daemon and firewalld started in a
//! scratch network namespace with the lab's recipe (`tracer_lab::firewalld`), the k0s worker
//! configuration as permanent config, then changes made with `firewall-cmd` and read back
//! over D-Bus by the model. Everything is stopped and removed by
//! [`Scratch`](crate::harness::Scratch)'s drop, also on failure.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use tracer::model::firewalld::{
    Drift, Element, Permanent, PortProto, Runtime, Target, drift, read_runtime_at,
};
use tracer_lab::firewalld::{write_service, write_zone};

use crate::harness::Scratch;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/model/firewalld/fixtures")
}

fn problems_text(p: &Permanent) -> String {
    p.problems.iter().fold(String::new(), |mut text, x| {
        let _ = writeln!(text, "  {x}");
        text
    })
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

fn fixture(rel: &str) -> String {
    let p = fixtures().join("k0s-calico-worker/etc/firewalld").join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn d(zone: &str, element: Element, runtime_only: bool) -> Drift {
    Drift {
        zone: zone.into(),
        element,
        runtime_only,
    }
}

/// Every zone and used service of `rt` equals its permanent definition (without file).
fn assert_same(perm: &Permanent, rt: &Runtime) {
    assert_eq!(
        perm.zones.keys().collect::<Vec<_>>(),
        rt.zones.keys().collect::<Vec<_>>(),
        "zone names"
    );
    for (name, pz) in &perm.zones {
        let mut pz = pz.clone();
        pz.file = None;
        assert_eq!(
            &pz, &rt.zones[name],
            "zone {name}: permanent (left) vs runtime"
        );
    }
    for (name, rs) in &rt.services {
        let mut ps = perm.services[name].clone();
        ps.file = None;
        assert_eq!(&ps, rs, "service {name}: permanent (left) vs runtime");
    }
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one firewalld's life, each step building on the state the one before left"
)]
fn runtime_and_drift_against_a_real_firewalld() {
    let mut s = Scratch::new("fwd");
    write_zone(s.dir(), "public", &fixture("zones/public.xml")).expect("zone");
    write_service(s.dir(), "k0s-worker", &fixture("services/k0s-worker.xml")).expect("svc");
    s.start()
        .unwrap_or_else(|e| panic!("firewalld did not come up: {e:#}"));

    // Right after start: runtime is the permanent configuration.
    let perm = s.permanent();
    assert!(perm.problems.is_empty(), "{}", problems_text(&perm));
    let rt = s.runtime();
    assert_eq!(
        (rt.state.as_str(), rt.default_zone.as_str()),
        ("RUNNING", "public")
    );
    assert_same(&perm, &rt);
    let used: Vec<&String> = rt.services.keys().collect();
    assert_eq!(
        used,
        [
            "dhcpv6-client",
            "k0s-worker",
            "mdns",
            "netbios-ns",
            "samba-client",
            "ssh"
        ],
        "services the zones use (stock home and internal use samba-client, which includes netbios-ns)"
    );
    // The active zones (those with bindings, as getActiveZones lists them): public only.
    let active: Vec<(&str, &[String], &[String])> = rt
        .zones
        .values()
        .filter(|z| !z.interfaces.is_empty() || !z.sources.is_empty())
        .map(|z| (z.name.as_str(), &z.interfaces[..], &z.sources[..]))
        .collect();
    assert_eq!(
        active,
        [(
            "public",
            &strs(&["eth0"])[..],
            &strs(&["10.244.0.0/16", "10.96.0.0/12"])[..]
        )]
    );
    assert_eq!(drift(&perm, &rt), [], "no drift after start");

    // Runtime-only: lost on reload.
    s.cmd(&["--add-port=1234/tcp"]);
    let p1234 = Element::Port(PortProto::new("1234", "tcp"));
    assert_eq!(
        drift(&perm, &s.runtime()),
        [d("public", p1234.clone(), true)]
    );

    // Permanent-only, no reload: removing ssh leaves it in force (runtime_only: a reload drops
    // it); adding http is not in force yet (runtime_only false). Likewise the target.
    s.cmd(&["--permanent", "--remove-service=ssh"]);
    s.cmd(&["--permanent", "--add-service=http"]);
    s.cmd(&["--permanent", "--set-target=DROP"]);
    let perm = s.permanent();
    assert!(perm.problems.is_empty(), "{}", problems_text(&perm));
    assert_eq!(
        drift(&perm, &s.runtime()),
        [
            d("public", Element::Service("ssh".into()), true),
            d("public", Element::Service("http".into()), false),
            d("public", p1234, true),
            d("public", Element::Target(Target::Default), true),
            d("public", Element::Target(Target::Drop), false),
        ]
    );

    // Assorted permanent settings, then a reload: the files as read here must equal what
    // firewalld itself made of them (coalesced ports, canonical rich rules, MAC case).
    let rule = r#"rule priority="-5" family="ipv4" source NOT address="10.2.0.0/16" service name="ssh" log prefix="ssh " level="info" limit value="3/minute" reject type="icmp-host-prohibited""#;
    for args in [
        "--add-port=2379-2380/tcp",
        "--add-port=2381/tcp",
        "--add-port=2300-2379/tcp",
        "--add-source-port=5000-5010/udp",
        "--add-protocol=vrrp",
        "--add-icmp-block=echo-request",
        "--add-icmp-block-inversion",
        "--add-forward-port=port=80:proto=tcp:toport=8080",
        "--add-source=00:11:22:aa:bb:cc",
        "--add-interface=veth+",
        "--add-masquerade",
    ] {
        s.cmd(&["--permanent", "--zone=trusted", args]);
    }
    s.cmd(&[
        "--permanent",
        "--zone=trusted",
        &format!("--add-rich-rule={rule}"),
    ]);
    s.cmd(&["--reload"]);
    let perm = s.permanent();
    assert!(perm.problems.is_empty(), "{}", problems_text(&perm));
    let rt = s.runtime();
    assert_eq!(drift(&perm, &rt), [], "no drift after reload");
    let trusted = &rt.zones["trusted"];
    assert_eq!(
        trusted.rich_rules,
        [rule.replace("3/minute", "3/m")],
        "canonical form"
    );
    let ports: Vec<String> = trusted.ports.iter().map(ToString::to_string).collect();
    assert_eq!(
        ports,
        ["2381/tcp", "2300-2380/tcp"],
        "coalesced by firewalld"
    );
    assert_eq!(
        trusted.sources,
        strs(&["00:11:22:aa:bb:cc"]),
        "as in the file"
    );
    assert_eq!(rt.zones["public"].target, Target::Drop);

    // A MAC source added at runtime is upper-cased, one added to the files is not: the same
    // binding, no drift.
    s.cmd(&["--zone=trusted", "--add-source=00:11:22:aa:bb:dd"]);
    s.cmd(&[
        "--permanent",
        "--zone=trusted",
        "--add-source=00:11:22:aa:bb:dd",
    ]);
    let (perm, rt) = (s.permanent(), s.runtime());
    assert_eq!(
        rt.zones["trusted"].sources,
        strs(&["00:11:22:aa:bb:cc", "00:11:22:AA:BB:DD"])
    );
    assert_eq!(drift(&perm, &rt), [], "MAC case is not drift");

    // firewalld gone, bus still there: not running, not an error.
    s.stop(Some("firewalld"));
    assert!(
        read_runtime_at(&s.address())
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none(),
        "name not owned"
    );
    s.stop(None);
    assert!(
        read_runtime_at(&s.address())
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none(),
        "no bus"
    );

    // A zone naming a service that does not exist: firewalld starts in state FAILED.
    write_zone(s.dir(), "work", r#"<zone><service name="nosuch"/></zone>"#).expect("zone");
    let err = s
        .start()
        .expect_err("firewalld should fail to load the user configuration");
    assert!(format!("{err:#}").contains("FAILED"), "{err:#}");
    let perm = s.permanent();
    assert!(
        perm.problems
            .iter()
            .any(|p| p.file.ends_with("zones/work.xml") && p.message.contains("\"nosuch\"")),
        "{}",
        problems_text(&perm)
    );
    let rt = s.runtime();
    assert_eq!(rt.state, "FAILED");
    assert!(
        rt.zones["public"].interfaces.is_empty(),
        "stock configuration only: {:?}",
        rt.zones["public"]
    );
}
