//! Evaluator semantics on small listings: chain traversal (jump, goto, return, continue,
//! verdict maps, sets, policies, several base chains by priority) on the hand-written
//! `traversal.nft` (whose worked-out cases the `kernel` integration test checks against the
//! evaluator and the real kernel); marks, ct keys,
//! hidden dependencies and the iptables-nft `xt` statements.

use super::{listing, *};
use crate::{Family, RuleRef};

pub(super) const NODE: &str = "192.168.10.22";
pub(super) const CLIENT: &str = "192.168.10.21";
pub(super) const SERVER: &str = "172.16.0.2";
pub(super) const NODE6: &str = "fd00:10::22";
pub(super) const CLIENT6: &str = "fd00:10::21";

#[test]
fn trail_follows_jumps_gotos_and_maps() {
    let rs = load(TRAVERSAL_JSON, "traversal.json");
    let out = evaluate(&rs, &to_node("eth0", CLIENT, NODE, UDP, 3002));
    let texts: Vec<&str> = out.trail.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "iifname vmap { \"lo\" : accept, \"eth0\" : jump zone_eth0 }",
            "goto zone_eth0_more",
        ]
    );
    let policy = evaluate(&rs, &to_node("eth0", CLIENT, NODE, TCP, 9999));
    assert_eq!(
        policy.deciding,
        Some(RuleRef {
            backend: crate::Backend::Nftables,
            family: Family::Inet,
            table: "main".into(),
            chain: "in".into(),
            handle: 0,
            position: 0,
            text: "policy drop".into(),
            saved: None,
        })
    );
}

#[test]
fn no_base_chain_on_the_hook_accepts() {
    let rs = load(TRAVERSAL_JSON, "traversal.json");
    let out = evaluate(
        &rs,
        &Packet {
            hook: Hook::Postrouting,
            oif: Some("eth0".into()),
            ..to_node("eth0", CLIENT, NODE, UDP, 1)
        },
    );
    assert_eq!(
        out,
        Outcome {
            verdict: Verdict::Accept,
            deciding: None,
            trail: vec![],
            accepted: vec![],
        }
    );
}

#[test]
fn missing_interfaces_are_unknown_only_where_they_matter() {
    let rs = load(TRAVERSAL_JSON, "traversal.json");
    // Routed traffic without an output interface: the first oifname match cannot be decided.
    let out = evaluate(
        &rs,
        &Packet {
            oif: None,
            ..routed("eth0", "eth1", CLIENT, SERVER, UDP, 7001)
        },
    );
    assert_eq!(
        out.verdict,
        Verdict::Unknown("the packet's output interface is not given".into())
    );
    assert_eq!(
        out.deciding.unwrap().text,
        "iifname \"eth0\" oifname \"eth1\" udp dport 7001 accept"
    );
    // Without an input interface the interface vmap cannot be decided...
    let no_iif = |port| Packet {
        iif: None,
        ..to_node("eth0", CLIENT, NODE, UDP, port)
    };
    let out = evaluate(&rs, &no_iif(3001));
    assert_eq!(
        out.verdict,
        Verdict::Unknown("the packet's input interface is not given".into())
    );
    // ...but rules before it decide without it, and at input there is no output interface.
    assert_eq!(evaluate(&rs, &no_iif(4000)).verdict, Verdict::Drop);
    assert_eq!(evaluate(&rs, &no_iif(1001)).verdict, Verdict::Accept);
}

#[test]
fn forms_listing_exercises_ct_fib_marks_and_unknowns() {
    let mut rs = load(FORMS.0, "forms.json");
    // Table e (same hook and priority, newer, so first) matches `meta skuid`: unknown.
    let out = evaluate(&rs, &to_node("eth2", "10.1.2.3", "192.0.2.1", TCP, 8050));
    assert_eq!(
        out.verdict,
        Verdict::Unknown("meta skuid is not part of the packet description".into())
    );
    assert_eq!(out.deciding.unwrap().table, "e");
    rs.tables.retain(|t| t.name == "t");
    let base = to_node("eth2", "10.1.2.3", "192.0.2.1", TCP, 8050);
    // `ip saddr vmap @smap` drops 10.1.0.0/16 (after the iifname vmaps find nothing).
    let out = evaluate(&rs, &base);
    assert_eq!(out.verdict, Verdict::Drop);
    assert_eq!(out.deciding.unwrap().text, "ip saddr vmap @smap");
    // 10.0.0.0/8 is in @allowed and 8050 in @ports.
    let out = evaluate(
        &rs,
        &Packet {
            saddr: ip("10.2.0.1"),
            ..base.clone()
        },
    );
    assert_eq!(
        out.deciding.unwrap().text,
        "ip saddr @allowed tcp dport @ports accept"
    );
    // From 172.16.0.5 (in @allowed) to port 150: the dport rule drops (not in { 1-100, 200 }).
    let p = Packet {
        saddr: ip("172.16.0.5"),
        dport: 150,
        ..base.clone()
    };
    assert_eq!(
        evaluate(&rs, &p).deciding.unwrap().text,
        "tcp dport != { 1-100, 200 } log prefix \"x \" drop"
    );
    // Port 50: through to the mark tests; mark 0x4000 accepts, mark 0x100 the masked !=.
    let p = Packet { dport: 50, ..p };
    let with = |mark| evaluate(&rs, &Packet { mark, ..p.clone() });
    assert_eq!(
        with(0x4000).deciding.unwrap().text,
        "meta mark & 0x00004000 == 0x00004000 accept"
    );
    assert_eq!(
        with(0x100).deciding.unwrap().text,
        "meta mark & 0x0000ff00 != 0x00000000 accept"
    );
    // Mark 0: a new connection's ct mark is 0 (no match), then `ct state established,new`.
    assert_eq!(
        with(0).deciding.unwrap().text,
        "ct state established,new accept"
    );
    // An established packet: the connection's mark is not known, and it could accept.
    let est = Packet {
        ct_state: CtState::Established,
        ..p.clone()
    };
    let out = evaluate(&rs, &est);
    assert_eq!(
        out.verdict,
        Verdict::Unknown("the mark of an existing connection is not known".into())
    );
    assert_eq!(out.deciding.unwrap().text, "ct mark 0x00000010 accept");
    // An untracked packet has no conntrack entry: ct mark, status and direction never match.
    // Its destination is not local, and `fib daddr type != { local, broadcast }` cannot tell a
    // unicast address from a subnet broadcast without the node's addresses.
    let untracked = Packet {
        ct_state: CtState::Untracked,
        daddr_is_local: false,
        ..p.clone()
    };
    let out = evaluate(&rs, &untracked);
    assert!(
        matches!(&out.verdict, Verdict::Unknown(why) if why.contains("subnet broadcast")),
        "{out:#?}"
    );
    assert_eq!(
        out.deciding.unwrap().text,
        "fib daddr type != { local, broadcast } drop"
    );
    // A local destination: `fib daddr type local accept`.
    let out = evaluate(
        &rs,
        &Packet {
            daddr_is_local: true,
            ..untracked
        },
    );
    assert_eq!(out.deciding.unwrap().text, "fib daddr type local accept");
}

#[test]
fn iptables_nft_xt_statements() {
    let rs = load(IPTABLES_NFT.0, "iptables-nft.json");
    let pkt = |port| to_node("eth0", "192.168.10.21", "192.168.10.22", UDP, port);
    // INPUT jumps to KUBE-FIREWALL, whose rule has an xt conntrack match, but its native
    // match (daddr 127.0.0.0/8) already fails: known. Then `-m conntrack --ctstate NEW`
    // (an xt match) guards a jump: unknown, and the reason names the extension.
    let out = evaluate(&rs, &pkt(5001));
    let Verdict::Unknown(why) = &out.verdict else {
        panic!("{out:#?}")
    };
    assert!(why.contains("`conntrack`"), "{why}");
    assert_eq!(
        out.deciding.unwrap().text,
        "xt match conntrack xt match comment counter jump KUBE-EXTERNAL-SERVICES"
    );
    // Without that rule, the comment match is transparent and the drop is known.
    let mut rs = rs;
    let filter = rs.tables.iter_mut().find(|t| t.name == "filter").unwrap();
    let input = filter
        .chains
        .iter_mut()
        .find(|c| c.name == "INPUT")
        .unwrap();
    input.rules.retain(|r| !r.text.contains("conntrack"));
    let out = evaluate(&rs, &pkt(5001));
    assert_eq!(out.verdict, Verdict::Drop, "{out:#?}");
    assert_eq!(
        out.deciding.unwrap().text,
        "udp dport 5001 xt match comment counter drop"
    );
    // Past the xt MARK target (the mark becomes unknown, but no later input rule reads it)
    // and the xt LOG target (no effect), the policy accepts.
    let out = evaluate(&rs, &pkt(5005));
    assert_eq!(out.verdict, Verdict::Accept, "{out:#?}");
    // Forward: a mark test after a comment, then the policy.
    let fwd = routed("eth0", "eth1", "192.168.10.21", "172.16.0.2", UDP, 1);
    let out = evaluate(&rs, &fwd);
    assert_decided(&out, &Verdict::Drop, "FORWARD", 0);
    let marked = Packet {
        mark: 0x4000,
        ..fwd
    };
    assert_eq!(evaluate(&rs, &marked).verdict, Verdict::Accept);
}

/// iptables-nft statements whose JSON names only the extension: comments, watchers and
/// logging targets do nothing, `-j REJECT` rejects IPv4 and IPv6 alike, and any other match or
/// target is unknown, naming the extension.
#[test]
fn xt_statements_named_only() {
    let packets = [
        to_node("eth0", CLIENT, NODE, TCP, 22),
        to_node("eth0", CLIENT6, NODE6, TCP, 22),
    ];
    for (kind, name, verdict) in [
        ("match", "comment", Some(Verdict::Accept)),
        ("watcher", "log", Some(Verdict::Accept)),
        ("watcher", "nflog", Some(Verdict::Accept)),
        ("target", "LOG", Some(Verdict::Accept)),
        ("target", "NFLOG", Some(Verdict::Accept)),
        ("target", "CT", Some(Verdict::Accept)),
        ("target", "NOTRACK", Some(Verdict::Accept)),
        ("target", "TRACE", Some(Verdict::Accept)),
        ("target", "AUDIT", Some(Verdict::Accept)),
        ("target", "REJECT", Some(Verdict::Reject)),
        ("match", "conntrack", None),
        ("target", "DNAT", None),
    ] {
        let rule =
            format!(r#"[{{"xt": {{"type": "{kind}", "name": "{name}"}}}}, {{"accept": null}}]"#);
        let rs = load(&listing(&[&rule]), name);
        assert_eq!(
            rs.tables[0].chains[0].rules[0].text,
            format!("xt {kind} {name} accept")
        );
        for pkt in &packets {
            let out = evaluate(&rs, pkt);
            if let Some(v) = &verdict {
                assert_decided(&out, v, "in", 2);
            } else {
                assert!(
                    matches!(&out.verdict, Verdict::Unknown(why) if why.contains(&format!("`{name}`"))),
                    "{out:#?}"
                );
                assert_eq!(out.deciding.unwrap().handle, 2);
            }
        }
    }
    // A REJECT after a match the model cannot decide may or may not run.
    let rs = load(
        &listing(&[
            r#"[{"match": {"op": "==", "left": {"meta": {"key": "skuid"}}, "right": 0}}, {"xt": {"type": "target", "name": "REJECT"}}]"#,
        ]),
        "unsure reject",
    );
    let out = evaluate(&rs, &packets[0]);
    assert!(
        matches!(&out.verdict, Verdict::Unknown(why) if why.contains("skuid")),
        "{out:#?}"
    );
}

#[test]
fn marks_set_where_the_listing_does_not_show_them_are_unknown() {
    let mark_test = r#"[{"match": {"op": "==", "left": {"&": [{"meta": {"key": "mark"}}, 16384]}, "right": 16384}}, {"accept": null}]"#;
    let pkt = to_node("eth0", CLIENT, NODE, TCP, 22);
    // iptables-nft `-j MARK`: the JSON names the target only.
    let rs = load(
        &listing(&[r#"[{"xt": {"type": "target", "name": "MARK"}}]"#, mark_test]),
        "xt mark",
    );
    let out = evaluate(&rs, &pkt);
    assert!(
        matches!(&out.verdict, Verdict::Unknown(why) if why.contains("MARK")),
        "{out:#?}"
    );
    assert_eq!(out.deciding.unwrap().handle, 3);
    // A mark set by a rule whose match is unknown is unknown too.
    let rs = load(
        &listing(&[
            r#"[{"match": {"op": "==", "left": {"meta": {"key": "skuid"}}, "right": 0}}, {"mangle": {"key": {"meta": {"key": "mark"}}, "value": 16384}}]"#,
            mark_test,
        ]),
        "unknown mark",
    );
    let out = evaluate(&rs, &pkt);
    assert!(
        matches!(&out.verdict, Verdict::Unknown(why) if why.contains("skuid")),
        "{out:#?}"
    );
    // A known mark set: `meta mark set meta mark | 0x4000`.
    let rs = load(
        &listing(&[
            r#"[{"mangle": {"key": {"meta": {"key": "mark"}}, "value": {"|": [{"meta": {"key": "mark"}}, 16384]}}}]"#,
            mark_test,
        ]),
        "known mark",
    );
    let out = evaluate(&rs, &Packet { mark: 1, ..pkt });
    assert_decided(&out, &Verdict::Accept, "in", 3);
    assert_eq!(
        out.deciding.unwrap().text,
        "meta mark & 0x00004000 == 0x00004000 accept"
    );
}

/// "What then?": a refusing rule taken as accepting shows what refuses the packet next, taken
/// as not matching shows the rule it keeps from deciding.
#[test]
fn assumptions_show_what_a_refusing_rule_hides() {
    use crate::{Assume, evaluate_assuming};
    let rs = load(TRAVERSAL_JSON, "traversal.json");
    let pkt = to_node("eth0", CLIENT, NODE, UDP, 4000);
    let first = evaluate(&rs, &pkt);
    assert_eq!(first.verdict, Verdict::Drop);
    let dropping = first.deciding.clone().unwrap();
    assert_eq!(dropping.table, "early");
    // Past `early`'s drop, `main`'s policy drops it too.
    let past = evaluate_assuming(
        &rs,
        &pkt,
        &Assume {
            accept: vec![dropping.clone()],
            ..Assume::default()
        },
    );
    assert_eq!(
        (past.verdict, past.deciding.map(|r| (r.table, r.text))),
        (Verdict::Drop, Some(("main".into(), "policy drop".into())))
    );
    // Skipping it instead: `early` accepts it with its policy, and every base chain it got
    // through is listed.
    let skipped = evaluate_assuming(
        &rs,
        &pkt,
        &Assume {
            skip: vec![dropping],
            ..Assume::default()
        },
    );
    assert!(
        skipped.accepted.iter().any(|r| r.table == "early"),
        "{skipped:#?}"
    );
}
