//! Rules beside firewalld, in the lab with its real firewalld (nftables backend): an
//! iptables-legacy rule that nft never shows, and a distribution's REJECT that shadows the
//! CNI's ACCEPT behind it. Each is named as the cause, live and in the diagnosis, and the printed
//! fix, applied for real, makes every flow of the scenario work again.

use tracer::schema::{DiagnoseLine, Finding, Severity, WatchLine};

use crate::harness::{Lab, Tracer, lab::text, tracer::BIN};

/// `tracer diagnose --output json` in a node: its exit status and finding lines.
fn diagnose(lab: &Lab, node: &str) -> (Option<i32>, Vec<Finding>) {
    let out = lab.exec_output(node, &[BIN, "diagnose", "--output", "json"]);
    let findings = text(&out.stdout)
        .lines()
        .filter_map(|l| match serde_json::from_str(l) {
            Ok(DiagnoseLine::Finding(f)) => Some(f),
            Ok(_) => None,
            Err(e) => panic!("{l}: {e}"),
        })
        .collect();
    (out.status.code(), findings)
}

/// The commands of a fix, without its comment lines.
fn commands(f: &Finding) -> Vec<&str> {
    f.fix
        .iter()
        .map(String::as_str)
        .filter(|c| !c.starts_with('#'))
        .collect()
}

#[test]
fn a_legacy_rule_beside_firewalld_is_named_live_and_fixed() {
    let lab = Lab::up("k0s-calico", "lg");
    lab.exec(
        "controller-1",
        &[
            "iptables-legacy",
            "-A",
            "INPUT",
            "-p",
            "tcp",
            "--dport",
            "8132",
            "-j",
            "DROP",
        ],
    );

    let (code, findings) = diagnose(&lab, "controller-1");
    assert_eq!(code, Some(3), "{findings:#?}");
    let konnectivity = findings
        .iter()
        .find(|f| f.class.as_deref() == Some("konnectivity") && f.severity == Severity::Error)
        .unwrap_or_else(|| panic!("no konnectivity error in {findings:#?}"));
    let rule = konnectivity.rule.as_ref().expect("the deciding rule");
    assert_eq!(
        (rule.backend.as_deref(), rule.chain.as_str(), rule.handle),
        (Some("iptables-legacy"), "INPUT", 1),
        "{konnectivity:#?}"
    );
    assert!(rule.text.contains("--dport 8132 -j DROP"), "{rule:?}");
    assert!(
        konnectivity.zone.is_none(),
        "no firewalld zone is to blame: {konnectivity:#?}"
    );
    assert_eq!(
        commands(konnectivity),
        ["iptables-legacy -t filter -I INPUT 1 -p tcp -m tcp --dport 8132 -j ACCEPT"]
    );
    let both = findings
        .iter()
        .find(|f| f.id == "iptables/both-backends")
        .unwrap_or_else(|| panic!("no finding of the two backends in {findings:#?}"));
    let element = both.element.as_deref().unwrap_or_default();
    assert!(
        element.contains("filter/INPUT (1 rule)") && element.contains("firewalld"),
        "{element}"
    );

    // Live: the first drop line of the refused flow carries the legacy rule as its cause.
    let mut watch = Tracer::watch_node(&lab, "controller-1", &["--interval", "1"]);
    watch.started();
    let traffic = lab.run(&["traffic", "--seconds", "3"]);
    assert!(traffic.status.success(), "{}", text(&traffic.stderr));
    let lines = watch.stop();
    let first = lines
        .iter()
        .find_map(|l| match l {
            WatchLine::Drop(d) if d.flow.dport == 8132 => Some(d),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no drop of 8132 in {lines:#?}"));
    let cause = first
        .cause
        .as_ref()
        .expect("the first drop line carries its cause");
    assert_eq!(
        cause.rule.as_ref().and_then(|r| r.backend.as_deref()),
        Some("iptables-legacy"),
        "{first:?}"
    );

    // The fix, applied: konnectivity works, nothing fails, diagnose has no error left.
    for cmd in commands(konnectivity) {
        let argv: Vec<&str> = cmd.split_whitespace().collect();
        lab.exec("controller-1", &argv);
    }
    assert!(
        lab.check()
            .contains("Every flow behaves as scenario k0s-calico intends")
    );
    let (_, after) = diagnose(&lab, "controller-1");
    assert!(
        after.iter().all(|f| f.severity != Severity::Error),
        "{after:#?}"
    );
}

#[test]
fn a_reject_shadowing_the_cnis_accept_is_named_and_the_accept_goes_before_it() {
    let lab = Lab::up("k3s-flannel", "sh");
    // A distribution's catch-all REJECT first, the CNI's ACCEPT appended behind it.
    lab.exec(
        "worker-2",
        &[
            "sh",
            "-e",
            "-c",
            "iptables-nft -A FORWARD -j REJECT --reject-with icmp-host-prohibited
             iptables-nft -A FORWARD -s 10.42.0.0/16 -j ACCEPT",
        ],
    );
    let (code, findings) = diagnose(&lab, "worker-2");
    assert_eq!(code, Some(3), "{findings:#?}");
    let pod = findings
        .iter()
        .filter(|f| f.class.as_deref() == Some("pod-traffic"))
        .collect::<Vec<_>>();
    assert!(!pod.is_empty(), "no pod traffic finding in {findings:#?}");
    for f in pod {
        let rule = f.rule.as_ref().expect("the deciding rule");
        assert_eq!(
            (rule.chain.as_str(), rule.position),
            ("FORWARD", Some(1)),
            "{f:#?}"
        );
        assert!(
            rule.saved
                .as_deref()
                .unwrap_or_default()
                .contains("-j REJECT"),
            "{rule:?}"
        );
        let element = f.element.as_deref().unwrap_or_default();
        assert!(
            element.contains("shadows") && element.contains("-A FORWARD -s 10.42.0.0/16 -j ACCEPT"),
            "{element}"
        );
        assert_eq!(
            commands(f),
            ["iptables-nft -t filter -I FORWARD 1 -s 10.42.0.0/16 -j ACCEPT"]
        );
    }
    lab.exec(
        "worker-2",
        &[
            "iptables-nft",
            "-t",
            "filter",
            "-I",
            "FORWARD",
            "1",
            "-s",
            "10.42.0.0/16",
            "-j",
            "ACCEPT",
        ],
    );
    assert!(
        lab.check()
            .contains("Every flow behaves as scenario k3s-flannel intends")
    );
    let (code, after) = diagnose(&lab, "worker-2");
    assert_eq!(code, Some(0), "{after:#?}");
}
