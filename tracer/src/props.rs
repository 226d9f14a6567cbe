//! Property tests of the tracer's readers of outside input: firewalld's zone and service XML
//! and firewalld.conf, k0s's and k3s's configuration, catalog files, and baselines. Random
//! text and real files mutated at random never make a reader panic; what it refuses is
//! located (file, and line and column where the format has them); no message grows with the
//! input. The nft listing, iptables-save and ipset readers have theirs in tracer-nft; the
//! readers of pasted evidence and the bundle's redaction theirs in `model/evidence/props.rs`. CI runs
//! each property on proptest's default number of cases; `cargo xtask props` runs many more
//! (PROPTEST_CASES).

use std::path::Path;

use proptest::prelude::*;

use crate::{
    events::baseline::Baseline,
    model::{
        catalog::{self, Catalog},
        cluster::{self, Distribution},
        firewalld::{self, ReadProblem},
    },
};

const ZONES: [&str; 3] = [
    include_str!("model/firewalld/fixtures/k0s-calico-worker/etc/firewalld/zones/public.xml"),
    include_str!("model/firewalld/fixtures/k3s-segregated-worker/etc/firewalld/zones/public.xml"),
    include_str!("model/firewalld/fixtures/k3s-segregated-worker/etc/firewalld/zones/trusted.xml"),
];
const SERVICE: &str = include_str!(
    "model/firewalld/fixtures/k0s-calico-worker/etc/firewalld/services/k0s-worker.xml"
);
const CONF: &str =
    include_str!("model/firewalld/fixtures/k0s-calico-worker/etc/firewalld/firewalld.conf");
/// A zone with the elements the fixtures lack: rich rules, forward ports, ICMP blocks.
const RICH_ZONE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<zone target="DROP">
  <port port="2379-2380" protocol="tcp"/>
  <protocol value="vrrp"/>
  <source-port port="5000" protocol="udp"/>
  <icmp-block name="echo-request"/>
  <icmp-block-inversion/>
  <forward-port port="80" protocol="tcp" to-port="8080" to-addr="10.0.0.1"/>
  <source ipset="peers"/>
  <rule family="ipv4" priority="-5">
    <source address="10.2.0.0/16" invert="true"/>
    <service name="ssh"/>
    <log prefix="ssh " level="info"><limit value="3/m"/></log>
    <reject type="icmp-host-prohibited"/>
  </rule>
</zone>
"#;
const K0S: &str = "apiVersion: k0s.k0sproject.io/v1beta1\nkind: ClusterConfig\nspec:\n  network:\n    provider: calico\n    podCIDR: 10.244.0.0/16\n    serviceCIDR: 10.96.0.0/12\n    dualStack:\n      enabled: true\n      IPv6podCIDR: fd00::/108\n";
const K3S: &str = "flannel-backend: vxlan\ncluster-cidr: 10.42.0.0/16,2001:cafe:42::/56\nservice-cidr: 10.43.0.0/16\nflannel-iface: eth1\nnode-ip: [192.168.20.21]\n";
const APPS: &str = include_str!("../../examples/k3s-apps.toml");
const PROFILE: &str = include_str!("../catalog/k0s-calico.toml");

/// Messages stay short whatever the input holds (a file name, a position, a sentence and a
/// quoted value cut at a few hundred bytes).
pub(crate) const MESSAGE_LIMIT: usize = 1024;

/// Edits of a text: where (a fraction of its length), what, and the text inserted.
pub(crate) fn edits() -> impl Strategy<Value = Vec<(f64, u8, String)>> {
    prop::collection::vec((0.0..1.0f64, 0..7u8, "\\PC{0,12}"), 1..5)
}

/// Applies `edits`: truncation, deletion, insertion, a long value, a duplicated span, a
/// bracket or quote out of place.
pub(crate) fn mutate(text: &str, edits: &[(f64, u8, String)]) -> String {
    let mut t = text.to_string();
    for (at, kind, insert) in edits {
        let mut i = ((t.len() as f64) * at) as usize;
        while !t.is_char_boundary(i) {
            i -= 1;
        }
        let end = t[i..]
            .char_indices()
            .nth(insert.chars().count().max(1))
            .map_or(t.len(), |(j, _)| i + j);
        match kind {
            0 => t.truncate(i),
            1 => t.replace_range(i..end, ""),
            2 => t.insert_str(i, insert),
            3 => t.insert_str(i, &"A".repeat(20_000)),
            4 => {
                let span = t[i..end].to_string();
                t.insert_str(i, &span);
            }
            5 => t.insert(i, ['<', '>', '"', '[', '{', '\n'][insert.len() % 6]),
            _ => t.insert_str(i, "-4294967296"),
        }
    }
    t
}

fn check_problem(p: &ReadProblem) -> Result<(), TestCaseError> {
    let text = p.to_string();
    prop_assert!(
        text.len() <= MESSAGE_LIMIT,
        "{} bytes: {}",
        text.len(),
        &text[..200]
    );
    prop_assert!(p.line.is_none_or(|l| l >= 1) && p.column.is_none_or(|c| c >= 1));
    Ok(())
}

/// Reads a firewalld configuration made of these files, below a fresh root.
fn read_firewalld(zone: &str, service: &str, conf: &str) -> Result<(), TestCaseError> {
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc/firewalld");
    for (rel, text) in [
        ("zones/public.xml", zone),
        ("services/k0s-worker.xml", service),
        ("firewalld.conf", conf),
    ] {
        let file = etc.join(rel);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    let permanent = firewalld::read_permanent(root.path());
    for p in &permanent.problems {
        check_problem(p)?;
        prop_assert!(p.file.starts_with(root.path()), "{p}");
    }
    Ok(())
}

pub(crate) fn check_message(message: &str, origin: &str) -> Result<(), TestCaseError> {
    prop_assert!(message.contains(origin), "{message}");
    prop_assert!(message.len() <= MESSAGE_LIMIT, "{} bytes", message.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn props_firewalld_files_never_panic_and_problems_are_located(
        which in 0..4usize,
        z in edits(),
        s in edits(),
        c in edits(),
    ) {
        let zone = if which == 3 { RICH_ZONE } else { ZONES[which] };
        read_firewalld(&mutate(zone, &z), &mutate(SERVICE, &s), &mutate(CONF, &c))?;
    }

    #[test]
    fn props_firewalld_random_text(zone in "\\PC{0,300}", conf in "\\PC{0,120}") {
        read_firewalld(&zone, &zone, &conf)?;
    }

    #[test]
    fn props_cluster_configuration(k0s in edits(), k3s in edits(), random in "\\PC{0,200}") {
        for (dist, text) in [
            (Distribution::K0s, mutate(K0S, &k0s)),
            (Distribution::K3s, mutate(K3S, &k3s)),
            (Distribution::K0s, random.clone()),
            (Distribution::K3s, random.clone()),
        ] {
            if let Err(e) = cluster::parse(dist, Path::new("/node/config.yaml"), &text) {
                check_message(&e.to_string(), "/node/config.yaml")?;
            }
        }
    }

    #[test]
    fn props_catalogs(apps in edits(), profile in edits(), random in "\\PC{0,200}") {
        for text in [mutate(APPS, &apps), random] {
            if let Err(e) = catalog::parse_user_text("apps.toml", &text) {
                check_message(&e.to_string(), "apps.toml")?;
            }
        }
        if let Err(e) = catalog::file::parse_profile("profile.toml", &mutate(PROFILE, &profile)) {
            check_message(&e.to_string(), "profile.toml")?;
        }
        // A user file that parses is checked against the profile's classes.
        let mut catalog = Catalog::builtin("k3s-flannel").unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), mutate(APPS, &apps)).unwrap();
        if let Err(e) = catalog.add_file(file.path()) {
            check_message(&e.to_string(), &file.path().display().to_string())?;
        }
    }

    #[test]
    fn props_baselines(e in edits(), random in "\\PC{0,200}") {
        let text = baseline_text();
        for candidate in [mutate(&text, &e), random] {
            if let Err(err) = Baseline::from_json(&candidate, "base.json") {
                check_message(&err.to_string(), "base.json")?;
            }
        }
    }
}

/// A baseline file as `tracer baseline record` writes it.
fn baseline_text() -> String {
    r#"{
  "format": "tracer-baseline",
  "version": 1,
  "meta": {"recorded_at":"2026-11-21T11:52:57Z","profile":"k3s-flannel","interfaces":[{"iface":"eth0","hook":"tc"}],"kernel":"6.18.44","tracer_version":"0.1.0"},
  "duration_secs": 300.001,
  "size_bounds": [64,128,256,512,1024,1518,9018],
  "traffic": [
    {"iface":"eth0","direction":"ingress","class":"kube-apiserver","packets_per_sec":299.827,"bytes_per_sec":16190.658,"sizes":[1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0]}
  ],
  "drops": [
    {"iface":"eth0","class":"flannel-vxlan","reason":"NETFILTER_DROP","per_sec":49.971}
  ]
}"#
    .to_string()
}

#[test]
fn the_baseline_sample_is_one() {
    Baseline::from_json(&baseline_text(), "base.json").unwrap();
}

/// Values of megabytes are not echoed whole by any reader.
#[test]
fn no_reader_echoes_a_huge_value() {
    let huge = "A".repeat(3 << 20);
    let zone = format!("<zone>\n  <port port=\"{huge}\" protocol=\"tcp\"/>\n</zone>\n");
    let conf = format!("DefaultZone={huge}\n");
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc/firewalld");
    std::fs::create_dir_all(etc.join("zones")).unwrap();
    std::fs::write(etc.join("zones/big.xml"), &zone).unwrap();
    std::fs::write(etc.join("firewalld.conf"), &conf).unwrap();
    let permanent = firewalld::read_permanent(root.path());
    assert!(!permanent.problems.is_empty());
    for p in &permanent.problems {
        assert!(
            p.to_string().len() <= MESSAGE_LIMIT,
            "{}",
            p.to_string().len()
        );
    }
    let yaml = format!("spec:\n  network:\n    podCIDR: \"{huge}\"\n");
    let e = cluster::parse(Distribution::K0s, Path::new("k0s.yaml"), &yaml).unwrap_err();
    assert!(
        e.to_string().len() <= MESSAGE_LIMIT,
        "{}",
        e.to_string().len()
    );
    let toml =
        format!("[[component]]\nname = \"{huge}\"\nprotocol = \"tcp\"\nports = \"x{huge}\"\n");
    let e = catalog::parse_user_text("apps.toml", &toml).unwrap_err();
    assert!(
        e.to_string().len() <= MESSAGE_LIMIT,
        "{}",
        e.to_string().len()
    );
    let json = format!(r#"{{"format": "tracer-baseline", "version": "{huge}"}}"#);
    let e = Baseline::from_json(&json, "base.json").unwrap_err();
    assert!(
        e.to_string().len() <= MESSAGE_LIMIT,
        "{}",
        e.to_string().len()
    );
}
