//! `tracer diagnose --evidence`: every form people paste, made by the real tool in a lab node
//! or a namespace of the test's own, is detected as what it is and read; rulesets pasted as
//! text are evaluated like the live one (through nft and iptables-nft-restore in a scratch
//! namespace); an `iptables-nft-save` alone finds a FORWARD DROP policy refusing pod traffic
//! across kube-router's bridge, with a fix that works; malformed and truncated pastes are
//! named with their file and line, and the rest is still used.

use std::{
    path::Path,
    process::{Command, Output},
};

use tracer::schema::{Certainty, DiagnoseLine, Finding, Severity};

use crate::harness::{
    Lab, NetNs,
    lab::text,
    lines::{findings, json_lines, problems, reports},
    tracer::BIN,
};

/// `tracer diagnose --output json ARGS` here (the test's own namespace).
fn diagnose(args: &[&str]) -> (Output, Vec<DiagnoseLine>) {
    let out = Command::new(BIN)
        .args(["diagnose", "--output", "json"])
        .args(args)
        .output()
        .unwrap();
    let lines = json_lines(&out.stdout);
    (out, lines)
}

/// Writes `content` to `dir/name`; its path.
fn sample(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_string()
}

/// The error finding about `class`, or a panic listing them all.
fn error_of(f: &[Finding], class: &str) -> Finding {
    f.iter()
        .find(|f| f.class.as_deref() == Some(class) && f.severity == Severity::Error)
        .unwrap_or_else(|| panic!("no {class} error in {f:#?}"))
        .clone()
}

/// Each file alone is detected as `form` and something of it is used.
fn detected(files: &[(&str, &str)]) {
    for (file, form) in files {
        let (_, lines) = diagnose(&["--evidence", file]);
        let r = reports(&lines);
        assert_eq!(r.len(), 1, "{file}: {lines:#?}");
        assert_eq!(r[0].form, *form, "{file}: {r:#?}");
        assert!(!r[0].used.is_empty(), "{file}: nothing used: {r:#?}");
    }
}

/// What a lab node's listings and files look like, pasted: file paths.
struct Pasted {
    nft: String,
    zones: String,
    info: String,
    zone_xml: String,
    service_xml: String,
    conf: String,
    k0s: String,
    route: String,
    link: String,
    addr: String,
    sysctl: String,
    ss: String,
}

/// Writes the samples of `node` of `lab`, made by the real tools there, into `d`.
fn pasted(lab: &Lab, node: &str, d: &Path) -> Pasted {
    let run = |argv: &[&str]| lab.exec(node, argv);
    let files = lab.node_dir(node);
    let read = |rel: &str| std::fs::read_to_string(files.join(rel)).unwrap();
    Pasted {
        nft: sample(d, "nft.txt", &run(&["nft", "list", "ruleset"])),
        zones: sample(d, "zones.txt", &run(&["firewall-cmd", "--list-all-zones"])),
        info: sample(d, "info.txt", &run(&["firewall-cmd", "--info-zone=public"])),
        zone_xml: sample(d, "public.xml", &read("etc/firewalld/zones/public.xml")),
        service_xml: sample(
            d,
            "k0s-worker.xml",
            &read("etc/firewalld/services/k0s-worker.xml"),
        ),
        conf: sample(d, "firewalld.conf", &read("etc/firewalld/firewalld.conf")),
        k0s: sample(d, "k0s.yaml", &read("etc/k0s/k0s.yaml")),
        route: sample(d, "route.txt", &run(&["ip", "route"])),
        link: sample(d, "link.txt", &run(&["ip", "-d", "link"])),
        addr: sample(d, "addr.txt", &run(&["ip", "addr"])),
        sysctl: sample(
            d,
            "sysctl.txt",
            &run(&["sysctl", "-a", "-r", "ip_forward|rp_filter"]),
        ),
        ss: sample(d, "ss.txt", &run(&["ss", "-ltn"])),
    }
}

#[test]
fn lab_listings_are_detected_and_read() {
    let lab = Lab::up("calico-vxlan-blocked", "e1");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Pasted {
        nft,
        zones,
        info,
        zone_xml,
        service_xml,
        conf,
        k0s,
        route,
        link,
        addr,
        sysctl,
        ss,
    } = pasted(&lab, "worker-2", d);
    detected(&[
        (&nft, "nft list ruleset"),
        (&zones, "firewall-cmd --list-all-zones / --info-zone"),
        (&info, "firewall-cmd --list-all-zones / --info-zone"),
        (&zone_xml, "firewalld zone XML"),
        (&service_xml, "firewalld service XML"),
        (&conf, "firewalld.conf"),
        (&k0s, "k0s.yaml"),
        (&route, "ip route"),
        (&link, "ip -d link"),
        (&addr, "ip addr"),
        (&sysctl, "sysctl"),
        (&ss, "ss -ltn"),
    ]);

    // Everything together: the node's diagnosis, certain.
    let all = [
        "--evidence",
        &nft,
        &zones,
        &zone_xml,
        &service_xml,
        &conf,
        &k0s,
        &link,
        &addr,
        &route,
        &sysctl,
        &ss,
    ];
    let (out, lines) = diagnose(&all);
    let vxlan = error_of(&findings(&lines), "calico-vxlan");
    assert_eq!(vxlan.certainty, Some(Certainty::Certain), "{vxlan:#?}");
    assert_eq!(vxlan.zone.as_deref(), Some("public"));
    assert_eq!(
        vxlan.element.as_deref(),
        Some("service k0s-worker of zone public lacks 4789/udp")
    );
    assert_eq!(
        vxlan.fix[0],
        "firewall-cmd --permanent --service=k0s-worker --add-port=4789/udp"
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));

    // The ruleset text alone: the rule and the zone from firewalld's chain, and a fix on
    // that zone, which works.
    let (_, lines) = diagnose(&["--evidence", &nft, "--role", "worker"]);
    let alone = error_of(&findings(&lines), "calico-vxlan");
    assert_eq!(alone.rule, vxlan.rule);
    assert_eq!(alone.zone.as_deref(), Some("public"));
    assert_eq!(
        alone.fix[..2],
        [
            "firewall-cmd --permanent --zone=public --add-port=4789/udp",
            "firewall-cmd --reload"
        ]
    );

    malformed_nft(&nft, d, &vxlan);

    for cmd in tracer_lab::findings_fixes([&alone]) {
        tracer_lab::apply_fix(&lab.prefix, "worker-2", &cmd, &|_| {})
            .unwrap_or_else(|e| panic!("`{cmd}`: {e:#}"));
    }
    let check = text(&lab.run(&["check"]).stdout);
    assert!(!check.contains("FAIL"), "traffic after the fix:\n{check}");
}

/// `nft` with a rule it refuses and the end cut off: both named by line, and the rest still
/// read (the overlay's rejection is still found, by the same rule as `whole`'s).
fn malformed_nft(nft: &str, d: &Path, whole: &Finding) {
    let text_nft = std::fs::read_to_string(nft).unwrap();
    let mut broken: Vec<String> = text_nft.lines().map(str::to_string).collect();
    let at = broken
        .iter()
        .position(|l| l.contains("chain filter_IN_public {"))
        .expect("firewalld's public chain")
        + 2;
    broken.insert(at, "\t\tudp dport 4789 frobnicate".into());
    broken.truncate(broken.len() - 3);
    let bad = sample(d, "bad-nft.txt", &(broken.join("\n") + "\n"));
    let (_, lines) = diagnose(&["--evidence", &bad, "--role", "worker"]);
    let p = problems(&lines);
    assert!(
        p.iter()
            .any(|p| p.starts_with(&format!("{bad}:{}:", at + 1))),
        "line {}: {p:#?}",
        at + 1
    );
    assert!(
        p.iter().any(|p| p.contains("ends inside the table")),
        "{p:#?}"
    );
    let rule = |f: &Finding| f.rule.as_ref().map(|r| (r.chain.clone(), r.text.clone()));
    assert_eq!(
        rule(&error_of(&findings(&lines), "calico-vxlan")),
        rule(whole)
    );
}

/// A node's iptables-nft rules as Calico's iptables mode writes them, with the peer missing
/// from the set of VXLAN peers and the overlay port dropped after it; and loopback first.
const RULES: &str = "iptables-nft -A INPUT -i lo -j ACCEPT
ipset create ev-vxlan-peers hash:net
ipset add ev-vxlan-peers 10.80.9.0/24
iptables-nft -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
iptables-nft -A INPUT -p udp -m multiport --dports 4789 -m set --match-set ev-vxlan-peers src -m addrtype --dst-type LOCAL -j ACCEPT
iptables-nft -A INPUT -p udp -m multiport --dports 4789,8472 -m comment --comment 'overlay off' -j DROP
ip6tables-nft -A INPUT -p udp --dport 4789 -j DROP";

/// The calico-vxlan finding of a diagnosis of `files` as a k0s-calico worker.
fn vxlan_from(files: &[&str]) -> (Finding, Vec<DiagnoseLine>) {
    let mut args = vec!["--profile", "k0s-calico", "--role", "worker", "--evidence"];
    args.extend_from_slice(files);
    let (out, lines) = diagnose(&args);
    let f = findings(&lines);
    let vxlan = f
        .iter()
        .find(|f| f.class.as_deref() == Some("calico-vxlan"))
        .unwrap_or_else(|| panic!("{files:?}: {}\n{f:#?}", text(&out.stderr)))
        .clone();
    (vxlan, lines)
}

#[test]
fn iptables_listings_are_detected_and_read() {
    let ns = NetNs::new("ei");
    ns.exec(&["sh", "-e", "-c", RULES]);
    let legacy = NetNs::new("el");
    legacy.exec(&[
        "sh",
        "-e",
        "-c",
        "iptables-legacy -A INPUT -p udp --dport 4789 -j DROP",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let save = sample(d, "save.txt", &ns.exec(&["iptables-nft-save"]));
    let save6 = sample(d, "save6.txt", &ns.exec(&["ip6tables-nft-save"]));
    let s = sample(d, "s.txt", &ns.exec(&["iptables-nft", "-S"]));
    let l = sample(d, "l.txt", &ns.exec(&["iptables-nft", "-L"]));
    let lnv = sample(d, "lnv.txt", &ns.exec(&["iptables-nft", "-L", "-n", "-v"]));
    let sets = sample(d, "ipset.txt", &ns.exec(&["ipset", "save"]));
    let leg = sample(d, "legacy.txt", &legacy.exec(&["iptables-legacy-save"]));
    detected(&[
        (&save, "iptables-nft-save"),
        (&save6, "ip6tables-nft-save"),
        (&s, "iptables -S"),
        (&l, "iptables -L (without -v)"),
        (&lnv, "iptables -L -v"),
        (&sets, "ipset save"),
        (&leg, "iptables-legacy-save"),
    ]);

    // Each listing gives the rule that drops the overlay: the multiport DROP, third rule
    // after loopback's, with iptables' own fix.
    let (from_save, _) = vxlan_from(&[&save, &sets]);
    assert_eq!(from_save.severity, Severity::Error, "{from_save:#?}");
    let rule = from_save.rule.clone().expect("a deciding rule");
    assert!(rule.text.contains("th dport { 4789, 8472 }"), "{rule:?}");
    assert_eq!(
        from_save.element.as_deref(),
        Some("rule 4 of iptables chain INPUT (table filter, iptables-nft), outside firewalld")
    );
    assert_eq!(
        from_save.fix[0],
        "iptables-nft -t filter -I INPUT 4 -p udp -m udp --dport 4789 -j ACCEPT"
    );
    for listing in [&s, &lnv] {
        let (f, _) = vxlan_from(&[listing, &sets]);
        assert_eq!(f.severity, Severity::Error, "{listing}: {f:#?}");
        assert_eq!(
            f.rule.as_ref().map(|r| &r.text),
            Some(&rule.text),
            "{listing}"
        );
        // The listing does not say which backend wrote it: the fix names plain iptables.
        assert!(
            f.fix[0].starts_with("iptables -t filter -I INPUT 4 "),
            "{f:#?}"
        );
    }
    // Without -v the interfaces are hidden: loopback's ACCEPT is called out, and what the
    // listing decides is only likely.
    let (f, lines) = vxlan_from(&[&l, &sets]);
    assert_eq!(f.certainty, Some(Certainty::Likely), "{f:#?}");
    assert!(
        problems(&lines).iter().any(|p| p.contains("-i lo")),
        "{lines:#?}"
    );
    // A legacy listing alone is evaluated, and fixed with iptables-legacy.
    let (f, _) = vxlan_from(&[&leg]);
    assert_eq!(f.severity, Severity::Error, "{f:#?}");
    assert_eq!(
        f.fix[0],
        "iptables-legacy -t filter -I INPUT 1 -p udp -m udp --dport 4789 -j ACCEPT"
    );
    // Beside an nft JSON listing (here the legacy node's own, with no nftables rules) it is
    // evaluated too, and its report says so.
    let json = sample(
        d,
        "legacy.json",
        &legacy.exec(&["nft", "-j", "list", "ruleset"]),
    );
    let (f, lines) = vxlan_from(&[&json, &leg]);
    assert_eq!(
        f.fix.first().map(String::as_str),
        Some("iptables-legacy -t filter -I INPUT 1 -p udp -m udp --dport 4789 -j ACCEPT"),
        "{f:#?}"
    );
    let all = reports(&lines);
    let legacy_report = all
        .iter()
        .find(|r| r.form == "iptables-legacy-save")
        .unwrap_or_else(|| panic!("{all:#?}"));
    assert!(
        legacy_report.used.iter().any(|u| u.contains("evaluated"))
            && legacy_report.unused.is_empty(),
        "{legacy_report:#?}"
    );
}

/// The kube-router pod traffic of a node whose iptables-nft FORWARD policy is DROP (Docker
/// sets it) and whose kube-router writes the other backend.
const FORWARD_DROP: &str = "iptables-nft -P FORWARD DROP
iptables-nft -N DOCKER-USER
iptables-nft -N DOCKER
iptables-nft -N KUBE-FORWARD
iptables-nft -A FORWARD -j DOCKER-USER
iptables-nft -A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
iptables-nft -A FORWARD -o docker0 -j DOCKER
iptables-nft -A FORWARD -i docker0 ! -o docker0 -j ACCEPT
iptables-nft -A FORWARD -m comment --comment 'kubernetes forwarding rules' -j KUBE-FORWARD
iptables-nft -A DOCKER-USER -j RETURN
iptables-nft -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
iptables-nft -A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT
iptables-nft -A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT";

/// The pod-traffic errors of a diagnosis of one iptables-nft-save as a kube-router worker.
fn pod_errors(save: &str) -> (Vec<Finding>, Vec<Finding>) {
    let (_, lines) = diagnose(&[
        "--evidence",
        save,
        "--profile",
        "k0s-kube-router",
        "--role",
        "worker",
    ]);
    let all = findings(&lines);
    let pods = all
        .iter()
        .filter(|f| f.class.as_deref() == Some("pod-traffic") && f.severity == Severity::Error)
        .cloned()
        .collect();
    (pods, all)
}

#[test]
fn iptables_nft_save_alone_finds_a_forward_drop_across_kube_bridge() {
    let ns = NetNs::new("ek");
    ns.exec(&["sh", "-e", "-c", FORWARD_DROP]);
    let dir = tempfile::tempdir().unwrap();
    let save = sample(dir.path(), "save.txt", &ns.exec(&["iptables-nft-save"]));
    let (pods, all) = pod_errors(&save);
    assert_eq!(pods.len(), 2, "{all:#?}");
    for f in &pods {
        assert!(f.title.contains("kube-bridge"), "{f:#?}");
        let rule = f.rule.as_ref().expect("the deciding policy");
        assert_eq!(
            (
                rule.family.as_str(),
                rule.chain.as_str(),
                rule.text.as_str()
            ),
            ("ip", "FORWARD", "policy drop"),
            "{f:#?}"
        );
        assert_eq!(
            f.element.as_deref(),
            Some(
                "the policy of iptables chain FORWARD (table filter, iptables-nft), outside firewalld"
            )
        );
        assert_eq!(f.certainty, Some(Certainty::Certain), "{f:#?}");
        assert!(f.explain.contains("KUBE-ROUTER-FORWARD"), "{f:#?}");
    }
    let hint = all
        .iter()
        .find(|f| f.id == "iptables/kube-router-chains-absent")
        .unwrap_or_else(|| panic!("{all:#?}"));
    assert!(
        hint.element
            .as_deref()
            .is_some_and(|e| e.contains("KUBE-ROUTER-FORWARD")),
        "{hint:#?}"
    );
    assert!(
        hint.settle.iter().any(|s| s == "iptables-legacy-save"),
        "{hint:#?}"
    );

    // The fix works: applied on the node, its listing lets pod traffic through.
    let fix = &pods[0].fix[0];
    assert_eq!(
        fix,
        "iptables-nft -t filter -A FORWARD -s 10.244.0.0/16 -j ACCEPT"
    );
    ns.exec(&["sh", "-e", "-c", fix]);
    let fixed = sample(dir.path(), "fixed.txt", &ns.exec(&["iptables-nft-save"]));
    let (pods, all) = pod_errors(&fixed);
    assert!(pods.is_empty(), "{all:#?}");
}

#[test]
fn malformed_and_truncated_iptables_listings_name_file_and_line() {
    let ns = NetNs::new("em");
    ns.exec(&["sh", "-e", "-c", RULES]);
    let listing = ns.exec(&["iptables-nft-save"]);
    let mut lines: Vec<String> = listing.lines().map(str::to_string).collect();
    let commit = lines.iter().position(|l| l == "COMMIT").unwrap();
    lines.truncate(commit);
    let at = lines
        .iter()
        .position(|l| l.starts_with("-A INPUT"))
        .unwrap()
        + 1;
    lines.insert(at, "-A INPUT -s node1.example.com -j ACCEPT".into());
    lines.insert(at + 1, "garbage that is no rule".into());
    let dir = tempfile::tempdir().unwrap();
    let file = sample(dir.path(), "cut.txt", &(lines.join("\n") + "\n"));
    let sets = sample(dir.path(), "ipset.txt", &ns.exec(&["ipset", "save"]));
    let (vxlan, out) = vxlan_from(&[&file, &sets]);
    let p = problems(&out);
    let line = |n: usize| format!("{file}:{n}:");
    assert!(
        p.iter()
            .any(|x| x.starts_with(&line(at + 1)) && x.contains("host name")),
        "{p:#?}"
    );
    assert!(
        p.iter()
            .any(|x| x.starts_with(&line(at + 2)) && x.contains("not an iptables-save line")),
        "{p:#?}"
    );
    assert!(p.iter().any(|x| x.contains("without its COMMIT")), "{p:#?}");
    // The rest is used: the drop is still found.
    assert_eq!(vxlan.severity, Severity::Error, "{vxlan:#?}");
    assert!(
        vxlan
            .rule
            .as_ref()
            .is_some_and(|r| r.text.contains("4789, 8472")),
        "{vxlan:#?}"
    );
}
