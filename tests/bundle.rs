//! `tracer bundle` taken inside a lab node and `tracer diagnose --bundle` run outside it, in a
//! namespace of its own, give the findings `tracer diagnose` gives inside, in every scenario;
//! nothing of the analysing namespace leaks in (its ip_forward, its addresses); a bundle that
//! lacks a part says so instead of guessing; and `--ruleset` with `--root` reads nothing of the
//! machine either (issue 17, item 3).

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use tracer::schema::{DiagnoseLine, Finding, WatchLine};

use crate::harness::{
    Lab, NetNs, Veth, bundle, joined,
    lab::text,
    lines::{findings, json_lines, problems, summary, unknowns},
    tracer::BIN,
    unpack,
};

/// The lines of a `--output json` run.
fn lines(out: &Output) -> Vec<DiagnoseLine> {
    json_lines(&out.stdout)
}

/// `tracer --netns NS diagnose ARGS --output json`.
fn diagnose_in(ns: &NetNs, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["--netns", &ns.name, "diagnose", "--output", "json"])
        .args(args)
        .output()
        .unwrap()
}

/// A namespace where nothing of a node is: forwarding off, no address but loopback.
fn elsewhere(tag: &str) -> NetNs {
    let ns = NetNs::new(tag);
    ns.sysctl("net.ipv4.ip_forward", "0");
    ns
}

/// Takes a bundle in a lab node into `dir`.
fn bundle_of(lab: &Lab, node: &str, dir: &Path) -> PathBuf {
    let file = dir.join(format!("{node}.tar.gz"));
    let out = lab.exec_output(node, &[BIN, "bundle", "-o", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "bundle in {node}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    file
}

/// Findings as the node reports them: away from it each also says how sure it is, which the
/// node has no need to.
fn as_on_node(mut f: Vec<Finding>) -> Vec<Finding> {
    for x in &mut f {
        assert_eq!(
            x.certainty,
            Some(tracer::schema::Certainty::Certain),
            "a complete bundle settles everything: {x:#?}"
        );
        x.certainty = None;
    }
    f
}

/// The scenario's diagnosis inside its affected node, and from its bundle outside; the lab,
/// and the bundle in its directory.
fn same_findings(scenario: &str, tag: &str) -> (Lab, tempfile::TempDir, PathBuf) {
    let lab = Lab::up(scenario, tag);
    let node = tracer_lab::scenarios::find(scenario).unwrap().affected_node;
    let dir = tempfile::tempdir().unwrap();
    let bundle = bundle_of(&lab, node, dir.path());
    let inside = lab.exec_output(node, &[BIN, "diagnose", "--output", "json"]);
    let outside = diagnose_in(
        &elsewhere(&format!("{tag}o")),
        &["--bundle", bundle.to_str().unwrap()],
    );
    let (i, o) = (lines(&inside), lines(&outside));
    assert_eq!(
        as_on_node(findings(&o)),
        findings(&i),
        "{scenario}: the bundle's findings differ from the node's"
    );
    assert_eq!(summary(&o), summary(&i), "{scenario}");
    assert_eq!(
        outside.status.code(),
        inside.status.code(),
        "{scenario}: {}",
        text(&outside.stderr)
    );
    assert!(unknowns(&o).is_empty(), "{scenario}: {:?}", unknowns(&o));
    (lab, dir, bundle)
}

#[test]
fn bundles_give_the_nodes_findings_in_healthy_scenarios() {
    for (scenario, tag) in [
        ("k0s-calico", "b1"),
        ("k0s-kube-router", "b2"),
        ("k3s-flannel", "b3"),
        ("k3s-segregated", "b4"),
    ] {
        same_findings(scenario, tag);
    }
}

#[test]
fn bundles_give_the_nodes_findings_in_firewall_scenarios() {
    for (scenario, tag) in [
        ("bgp-blocked", "b6"),
        ("konnectivity-blocked", "b7"),
        ("pod-cidr-not-trusted", "b8"),
    ] {
        same_findings(scenario, tag);
    }
}

#[test]
fn bundles_give_the_nodes_findings_in_node_scenarios() {
    for (scenario, tag) in [
        ("overlay-mtu", "b9"),
        ("rp-filter-strict", "ba"),
        ("no-default-route", "bb"),
        // Nothing on either node drops: both diagnoses find the same (nothing of a node's).
        ("underlay-loss", "bc"),
    ] {
        same_findings(scenario, tag);
    }
}

/// Every scenario the lab has is in one of the tests above.
#[test]
fn every_scenario_is_compared() {
    let source = include_str!("bundle.rs");
    for s in tracer_lab::scenarios::SCENARIOS {
        assert!(
            source.contains(&format!("(\"{}\", \"b", s.name)),
            "scenario {} is not compared",
            s.name
        );
    }
}

/// The calico-vxlan-blocked scenario, compared like the others, and its bundle without
/// firewalld's runtime state: the diagnosis says so, checks no runtime-only change, and
/// still names the zone and a fix that works (firewalld's table is in the ruleset: it runs).
#[test]
fn a_bundle_without_the_runtime_state_says_so() {
    let (_lab, dir, bundle) = same_findings("calico-vxlan-blocked", "b5");
    let unpacked = unpack(&bundle, dir.path());
    std::fs::remove_file(unpacked.join("firewalld-runtime.json")).unwrap();
    let out = diagnose_in(&elsewhere("bro"), &["--bundle", unpacked.to_str().unwrap()]);
    let l = lines(&out);
    assert!(
        problems(&l).iter().any(
            |p| p.contains("firewalld's runtime state") && p.contains("firewalld-runtime.json")
        ),
        "{:?}",
        problems(&l)
    );
    let runtime = unknowns(&l)
        .into_iter()
        .find(|u| u.what == "firewalld's runtime state")
        .unwrap_or_else(|| panic!("no unknown runtime state: {l:#?}"));
    assert!(runtime.why.contains("runtime-only"), "{runtime:?}");
    assert!(!summary(&l).complete);
    let f = findings(&l);
    assert!(!f.iter().any(|f| f.id.contains("runtime-only")), "{f:#?}");
    let vxlan = f
        .iter()
        .find(|f| f.class.as_deref() == Some("calico-vxlan"))
        .unwrap_or_else(|| panic!("{f:#?}"));
    assert_eq!(vxlan.zone.as_deref(), Some("public"));
    assert_eq!(
        vxlan.fix[0],
        "firewall-cmd --permanent --service=k0s-worker --add-port=4789/udp"
    );
    // Errors were found: exit status 3, partial or not.
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
}

/// A bundle carries the node's ip_forward: taken where it is 1 and read where it is 0, no
/// "IP forwarding is off"; taken where it is 0 and read where it is 1, the error is found.
#[test]
fn ip_forward_is_the_nodes_not_the_analysing_machines() {
    let dir = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for (node_value, here_value, tag) in [("1", "0", "f1"), ("0", "1", "f0")] {
        let node = NetNs::new(&format!("{tag}n"));
        node.sysctl("net.ipv4.ip_forward", node_value);
        let file = dir.path().join(format!("{tag}.tar.gz"));
        bundle(&node, &file, &[]);
        let here = NetNs::new(&format!("{tag}h"));
        here.sysctl("net.ipv4.ip_forward", here_value);
        let out = diagnose_in(
            &here,
            &[
                "--bundle",
                file.to_str().unwrap(),
                "--profile",
                "k3s-flannel",
                "--role",
                "worker",
            ],
        );
        let f = findings(&lines(&out));
        results.push(f.iter().any(|f| f.id == "sysctl/ip_forward"));
    }
    assert_eq!(results, [false, true]);
}

/// `--watch` adds what the node carried meanwhile: `tracer watch`'s lines, its summary last.
#[test]
fn watch_adds_what_the_node_carried() {
    let a = Veth {
        name: "eth0",
        mac: [0x02, 0, 0, 0, 7, 0x0a],
        ip: std::net::Ipv4Addr::new(10, 81, 0, 5),
    };
    let b = Veth {
        name: "p0",
        mac: [0x02, 0, 0, 0, 7, 0x0b],
        ip: std::net::Ipv4Addr::new(10, 81, 0, 6),
    };
    let (node, _peer) = joined("bw", &a, &b);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.tar.gz");
    bundle(&node, &file, &["--watch", "1"]);
    let unpacked = unpack(&file, dir.path());
    let watched = std::fs::read_to_string(unpacked.join("watch.jsonl")).unwrap();
    let last = watched.lines().last().expect("watch printed lines");
    let line: WatchLine = serde_json::from_str(last).unwrap_or_else(|e| panic!("{last}: {e}"));
    assert!(matches!(line, WatchLine::Summary(_)), "{last}");
    let manifest = std::fs::read_to_string(unpacked.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"watch\""), "{manifest}");
}

/// Issue 17, item 3: the same `--ruleset` and `--root` give the same answer in a namespace
/// holding the node's address with forwarding off and in an empty one, never "IP forwarding
/// is off" from the analysing machine, and say which evidence would settle what they lack.
#[test]
fn ruleset_and_root_read_nothing_of_the_machine() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ruleset = manifest.join("../tracer-nft/fixtures/calico-vxlan-blocked-worker-2.json");
    let root = manifest.join("src/model/firewalld/fixtures/k0s-calico-worker");
    let args = [
        "--ruleset",
        ruleset.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--profile",
        "k0s-calico",
    ];
    let like_node = NetNs::new("rn");
    like_node.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
    ]);
    like_node.ip(&["addr", "add", "192.168.10.22/24", "dev", "eth0"]);
    like_node.ip(&["link", "set", "eth0", "up"]);
    like_node.sysctl("net.ipv4.ip_forward", "0");
    let bare = elsewhere("re");
    let (near, far) = (diagnose_in(&like_node, &args), diagnose_in(&bare, &args));
    assert_eq!(text(&near.stdout), text(&far.stdout));
    assert_eq!(near.status.code(), far.status.code());
    let out = lines(&near);
    let found = findings(&out);
    assert!(
        !found.iter().any(|f| f.id.starts_with("sysctl/")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|f| f.class.as_deref() == Some("calico-vxlan")),
        "{found:#?}"
    );
    assert!(summary(&out).flows > 0);
    assert!(!summary(&out).complete);
    let unsettled = unknowns(&out);
    assert!(
        unsettled
            .iter()
            .any(|u| u.what == "IP forwarding" && u.settle.iter().any(|s| s.contains("sysctl"))),
        "{unsettled:#?}"
    );
    assert!(
        unsettled
            .iter()
            .any(|u| u.settle.iter().any(|s| s.contains("tracer bundle"))),
        "{unsettled:#?}"
    );
    let plain = Command::new(BIN)
        .args(["--netns", &bare.name, "diagnose"])
        .args(args)
        .output()
        .unwrap();
    assert!(!text(&plain.stdout).contains("No problem found"));
}
