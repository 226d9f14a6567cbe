//! Rich rules on a real firewalld. One that rejects one peer's BGP (179/tcp) in a zone whose
//! `k0s-worker` service opens 179/tcp: `diagnose`, `explain` and the live drops of `watch`
//! name the rich rule as the cause, the fix removes it and never adds the port that is already
//! open, and once the printed fix is applied that peer's BGP connects. One that accepts a
//! service within a rate: the drops over the rate are put on the rule that refuses them then,
//! and no change is printed that would undo the limit.

use std::{
    net::{Ipv4Addr, TcpListener},
    process::Command,
    time::Duration,
};

use tracer::findings::drops::DropCause;
use tracer::schema::{DiagnoseLine, Explanation, Finding, WatchLine};
use tracer_lab::firewalld::{write_service, write_zone};

use crate::harness::{NetNs, Scratch, Tracer, Veth, lab::text, netns::veth_pair, tracer::BIN};

const NODE: Veth = Veth {
    name: "eth0",
    mac: [0x02, 0, 0, 0, 7, 0x0a],
    ip: Ipv4Addr::new(192, 168, 10, 22),
};
const PEER: Veth = Veth {
    name: "p0",
    mac: [0x02, 0, 0, 0, 7, 0x0b],
    ip: Ipv4Addr::new(192, 168, 10, 23),
};
/// The peer the rich rule rejects.
const REJECTED: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 21);
const RULE: &str =
    r#"rule family="ipv4" source address="192.168.10.21" port port="179" protocol="tcp" reject"#;

/// Whether a BGP connection from `from` (an address of the peer) to the node is accepted.
fn bgp_connects(peer: &NetNs, from: Ipv4Addr) -> bool {
    connects(peer, from, 179)
}

/// Whether a TCP connection from `from` to the node's `port` is accepted: a connect from that
/// source address, two seconds at most (std cannot bind before connecting).
fn connects(peer: &NetNs, from: Ipv4Addr, port: u16) -> bool {
    peer.command(&[
        "python3",
        "-c",
        "import socket, sys\ns = socket.socket()\ns.settimeout(2)\ns.bind((sys.argv[1], 0))\ns.connect((sys.argv[2], int(sys.argv[3])))",
        &from.to_string(),
        &NODE.ip.to_string(),
        &port.to_string(),
    ])
    .output()
    .is_ok_and(|o| o.status.success())
}

/// The environment a tracer run in the node needs: its configuration and firewalld's bus.
fn node_env(fw: &Scratch) -> Vec<(String, String)> {
    vec![
        ("TRACER_NODE_ROOT".into(), fw.dir().display().to_string()),
        ("DBUS_SYSTEM_BUS_ADDRESS".into(), fw.address()),
    ]
}

/// `tracer diagnose --output json` in the node as a k0s kube-router worker: its findings.
fn diagnose(fw: &Scratch) -> Vec<Finding> {
    let out = Command::new(BIN)
        .args(["--netns", &fw.netns.name, "diagnose", "--output", "json"])
        .args(["--profile", "k0s-kube-router", "--role", "worker"])
        .envs(node_env(fw))
        .output()
        .unwrap();
    text(&out.stdout)
        .lines()
        .filter_map(|l| match serde_json::from_str::<DiagnoseLine>(l) {
            Ok(DiagnoseLine::Finding(f)) => Some(f),
            Ok(_) => None,
            Err(e) => panic!("{l}: {e}"),
        })
        .collect()
}

/// The node (a k0s worker whose public zone uses the k0s-worker service, with the rich rule)
/// and its peer, firewalld running.
fn node_with_rule() -> (Scratch, NetNs) {
    node(&format!(
        r#"<service name="ssh"/>
  <rule family="ipv4"><source address="{REJECTED}"/><port port="179" protocol="tcp"/><reject/></rule>"#
    ))
}

/// The node, its public zone on `eth0` with the k0s-worker service and `rules`, and its peer,
/// firewalld running.
fn node(rules: &str) -> (Scratch, NetNs) {
    let mut fw = Scratch::new("rr");
    let peer = NetNs::new("rrp");
    veth_pair(&fw.netns, &NODE, &peer, &PEER);
    peer.ip(&["addr", "add", &format!("{REJECTED}/24"), "dev", PEER.name]);
    write_service(
        fw.dir(),
        "k0s-worker",
        r#"<?xml version="1.0" encoding="utf-8"?>
<service>
  <short>k0s-worker</short>
  <port protocol="tcp" port="179"/>
  <port protocol="udp" port="4789"/>
  <port protocol="tcp" port="10250"/>
</service>
"#,
    )
    .unwrap();
    write_zone(
        fw.dir(),
        "public",
        &format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<zone>
  <service name="dhcpv6-client"/>
  <service name="k0s-worker"/>
  {rules}
  <interface name="eth0"/>
</zone>
"#
        ),
    )
    .unwrap();
    fw.start()
        .unwrap_or_else(|e| panic!("firewalld did not come up: {e:#}"));
    (fw, peer)
}

/// The cause `watch` gives for the drops of the rejected peer's BGP SYNs.
fn watched_cause(fw: &Scratch, peer: &NetNs) -> DropCause {
    watched(fw, peer, REJECTED, 179, 3)
}

/// The cause `watch` gives for the drops of `tries` connections from `from` to `port`.
fn watched(fw: &Scratch, peer: &NetNs, from: Ipv4Addr, port: u16, tries: usize) -> DropCause {
    let env = node_env(fw);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut watch = Tracer::watch_env(
        &fw.netns,
        &env,
        &["--profile", "k0s-kube-router", "--interval", "1"],
    );
    watch.started();
    for _ in 0..tries {
        let _ = connects(peer, from, port);
        std::thread::sleep(Duration::from_millis(300));
    }
    let lines = watch.stop();
    let drop = lines
        .iter()
        .find_map(|l| match l {
            WatchLine::Drop(d) if d.flow.dport == port && d.flow.src == Some(from.into()) => {
                Some(d)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no drop of {from} to port {port} in {lines:#?}"));
    drop.cause
        .clone()
        .unwrap_or_else(|| panic!("no cause: {drop:#?}"))
}

#[test]
fn a_rich_rule_rejecting_one_peers_bgp_is_named_and_removed() {
    let (fw, peer) = node_with_rule();
    let _bgp = fw
        .netns
        .enter(|| TcpListener::bind((NODE.ip, 179)).expect("listen on 179"));
    assert!(bgp_connects(&peer, PEER.ip), "the zone opens 179/tcp");
    assert!(
        !bgp_connects(&peer, REJECTED),
        "the rich rule rejects {REJECTED}"
    );

    // diagnose: the flow from the peer the rule singles out is checked, and blamed on the rule.
    let findings = diagnose(&fw);
    let bgp = findings
        .iter()
        .find(|f| f.port.as_deref() == Some("179/tcp") && f.title.contains(&REJECTED.to_string()))
        .unwrap_or_else(|| panic!("no finding for BGP from {REJECTED}: {findings:#?}"));
    let element = bgp.element.as_deref().unwrap_or_default();
    assert!(element.contains(RULE), "{bgp:#?}");
    assert_eq!(bgp.zone.as_deref(), Some("public"), "{bgp:#?}");
    let fix = bgp.fix.join("\n");
    assert!(
        fix.contains(&format!("--remove-rich-rule='{RULE}'")),
        "{fix}"
    );
    for f in &findings {
        assert!(
            !f.fix.iter().any(|l| l.contains("--add-port=179/tcp")),
            "179/tcp is open already: {f:#?}"
        );
    }

    // explain: the same packet described by hand.
    let out = Command::new(BIN)
        .args(["--netns", &fw.netns.name, "explain", "--in", "eth0"])
        .args([
            "--from",
            &REJECTED.to_string(),
            "--to",
            &NODE.ip.to_string(),
        ])
        .args(["--proto", "tcp", "--dport", "179", "--output", "json"])
        .envs(node_env(&fw))
        .output()
        .unwrap();
    let e: Explanation = serde_json::from_str(&text(&out.stdout))
        .unwrap_or_else(|err| panic!("{err}: {}{}", text(&out.stdout), text(&out.stderr)));
    assert_eq!(e.verdict, "reject", "{e:#?}");
    assert!(
        e.element.as_deref().unwrap_or_default().contains(RULE),
        "{e:#?}"
    );
    assert_eq!(e.fix, bgp.fix, "explain and diagnose print one fix");

    // watch: the live drops of the rejected peer's SYNs carry the same cause.
    let cause = watched_cause(&fw, &peer);
    assert!(
        cause.element.as_deref().unwrap_or_default().contains(RULE),
        "{cause:#?}"
    );
    assert!(
        cause.fix.iter().any(|l| l.contains("--remove-rich-rule=")),
        "{cause:#?}"
    );
    assert!(
        !cause.fix.iter().any(|l| l.contains("--add-port")),
        "{cause:#?}"
    );

    // The fix as printed: then the peer's BGP connects, and the other peer's still does.
    for line in bgp.fix.iter().filter(|l| !l.starts_with('#')) {
        let out = fw
            .netns
            .command(&["sh", "-e", "-c", line])
            .env("DBUS_SYSTEM_BUS_ADDRESS", fw.address())
            .output()
            .unwrap();
        assert!(out.status.success(), "{line}: {}", text(&out.stderr));
    }
    assert!(bgp_connects(&peer, REJECTED), "after {:?}", bgp.fix);
    assert!(bgp_connects(&peer, PEER.ip));
    assert!(
        !diagnose(&fw)
            .iter()
            .any(|f| f.port.as_deref() == Some("179/tcp")),
        "the finding is gone"
    );
}

#[test]
fn drops_over_a_rich_rules_rate_are_put_on_what_refuses_them_then_and_no_change_is_printed() {
    // ssh is open only by a rich rule, within a rate: the first connections pass (the limit's
    // burst), the rest meet the zone's target.
    let rule =
        r#"<rule family="ipv4"><service name="ssh"/><accept><limit value="1/m"/></accept></rule>"#;
    let (fw, peer) = node(rule);
    let _ssh = fw
        .netns
        .enter(|| TcpListener::bind((NODE.ip, 22)).expect("listen on 22"));
    let cause = watched(&fw, &peer, PEER.ip, 22, 12);
    let refusing = cause.rule.as_ref().expect("the refusing rule");
    assert_eq!(
        (refusing.table.as_str(), refusing.chain.as_str()),
        ("firewalld", "filter_IN_public"),
        "the zone's target refuses what the limit lets by: {cause:#?}"
    );
    let element = cause.element.as_deref().unwrap_or_default();
    assert!(element.contains("over a rate limit"), "{cause:#?}");
    assert!(element.contains("limit rate 1/minute"), "{cause:#?}");
    assert!(
        cause.fix.iter().all(|l| l.starts_with('#')),
        "opening ssh would undo the limit: {cause:#?}"
    );
    assert_eq!(cause.zone.as_deref(), Some("public"), "{cause:#?}");
}
