//! Rules beside firewalld, in the lab with its real firewalld (nftables backend): an
//! iptables-legacy rule that nft never shows, and a distribution's REJECT that shadows the
//! CNI's ACCEPT behind it. Each is named as the cause, live and in the diagnosis, and the printed
//! fix, applied for real, makes every flow of the scenario work again. And the two iptables
//! backends at one priority: the kernel runs the newer chain first, which no listing shows, so
//! where the order decides, the tracer says it cannot tell.

use std::process::Command;

use tracer::schema::{DiagnoseLine, Explanation, Finding, Severity, WatchLine};

use crate::harness::{Lab, Tracer, lab::text, pair, tracer::BIN};

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
    // Its firewalld listener is its child, and does not outlive a SIGKILL of the tracer.
    let mut killed = Tracer::watch_node(&lab, "controller-1", &["--interval", "1"]);
    killed.started();
    let children = killed.children();
    assert!(
        children.iter().any(|(_, name)| name == "dbus-monitor"),
        "no dbus-monitor among the tracer's children: {children:?}"
    );
    killed.kill9_ending_children();
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

/// iptables' filter chains hook at priority 0 in both backends. With an iptables-nft REJECT and
/// an iptables-legacy DROP of the same port, the kernel answers with a reset when the nftables
/// chain is the newer (it runs first) and stays silent when the legacy one is: the same rules,
/// two verdicts. The tracer, reading the same listings either way, says "unknown", naming both
/// chains and what settles it.
#[test]
fn two_backends_at_one_priority_run_newest_first_and_the_tracer_says_it_cannot_tell() {
    let reject: Vec<&str> =
        "iptables-nft -A INPUT -p tcp --dport 7000 -j REJECT --reject-with tcp-reset"
            .split(' ')
            .collect();
    let drop: Vec<&str> = "iptables-legacy -A INPUT -p tcp --dport 7000 -j DROP"
        .split(' ')
        .collect();
    let root = tempfile::tempdir().unwrap();
    for legacy_older in [true, false] {
        let (a, b) = pair::pair();
        if legacy_older {
            a.exec(&drop);
            a.exec(&reject);
        } else {
            a.exec(&reject);
            a.exec(&drop);
        }
        // The kernel: refused at once (reset) or nothing until the timeout.
        let connect = b
            .command(&[
                "timeout",
                "2",
                "bash",
                "-c",
                &format!("echo > /dev/tcp/{}/7000", pair::A.ip),
            ])
            .output()
            .unwrap();
        let timed_out = connect.status.code() == Some(124);
        assert_eq!(
            timed_out,
            !legacy_older,
            "the newer chain runs first: {}",
            text(&connect.stderr)
        );
        assert!(
            timed_out || text(&connect.stderr).contains("refused"),
            "{}",
            text(&connect.stderr)
        );
        // The tracer: the same answer for both, unknown and why.
        let out = Command::new(BIN)
            .args(["--netns", &a.name, "explain", "--in", pair::A.name])
            .args([
                "--from",
                &pair::B.ip.to_string(),
                "--to",
                &pair::A.ip.to_string(),
            ])
            .args(["--proto", "tcp", "--dport", "7000", "--output", "json"])
            .env("TRACER_NODE_ROOT", root.path())
            .output()
            .unwrap();
        let e: Explanation = serde_json::from_str(&text(&out.stdout))
            .unwrap_or_else(|err| panic!("{err}: {}{}", text(&out.stdout), text(&out.stderr)));
        assert!(e.verdict.starts_with("unknown"), "{e:#?}");
        for part in [
            "iptables-legacy chain INPUT",
            "nftables chain INPUT of table ip filter",
            "nft list hooks",
        ] {
            assert!(e.verdict.contains(part), "{part}: {e:#?}");
        }
        assert!(e.fix.is_empty(), "no fix for an unknown cause: {e:#?}");
    }
}
