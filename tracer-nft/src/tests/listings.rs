//! Parsing real listings: tables, base chains, rule counts, and rule text that reads the same
//! as nft's own text listing of the same ruleset, line for line.

use super::*;
use crate::{
    BaseChain, Element, Expr, Family, MapData, Match, MetaKey, Op, Pattern, Policy, Rhs, SetSource,
    Stmt, VerdictStmt,
};

/// The rule lines of each chain of an nft text listing: `(family table chain, lines)`.
fn text_chains(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut table = String::new();
    let mut in_chain = false;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("table ") {
            table = rest.trim_end_matches(" {").to_string();
        } else if let Some(rest) = t.strip_prefix("chain ") {
            let name = rest.trim_end_matches(" {");
            out.push((format!("{table} {name}"), vec![]));
            in_chain = true;
        } else if t == "}" {
            in_chain = false;
        } else if in_chain && !t.is_empty() && !t.starts_with("type ") {
            out.last_mut().unwrap().1.push(t.to_string());
        }
    }
    out
}

/// The rendered rule texts of each chain, keyed like [`text_chains`].
fn rendered_chains(rs: &Ruleset) -> Vec<(String, Vec<String>)> {
    rs.tables
        .iter()
        .flat_map(|t| {
            t.chains.iter().map(move |c| {
                (
                    format!("{} {} {}", t.family, t.name, c.name),
                    c.rules.iter().map(|r| r.text.clone()).collect(),
                )
            })
        })
        .collect()
}

/// Every chain renders exactly as nft's text listing, except rules containing a statement in
/// `skip` (nft translates xt statements with libxtables; the JSON only names them).
fn assert_renders_like(name: &str, (json, text): (&str, &str), skip: &[&str]) -> Ruleset {
    let rs = load(json, name);
    let expected = text_chains(text);
    let got = rendered_chains(&rs);
    assert_eq!(
        got.iter().map(|c| &c.0).collect::<Vec<_>>(),
        expected.iter().map(|c| &c.0).collect::<Vec<_>>(),
        "{name}: chains"
    );
    let mut compared = 0;
    for ((chain, got), (_, want)) in got.iter().zip(&expected) {
        assert_eq!(got.len(), want.len(), "{name}: rule count of {chain}");
        for (g, w) in got.iter().zip(want) {
            if skip.iter().any(|s| g.contains(s)) {
                continue;
            }
            assert_eq!(g, w, "{name}: a rule of {chain}");
            compared += 1;
        }
    }
    let in_text: usize = expected.iter().map(|c| c.1.len()).sum();
    assert_eq!(rs.rule_count(), in_text, "{name}: rule count");
    assert!(compared > 0, "{name}: nothing compared");
    rs
}

fn base(rs: &Ruleset, family: Family, table: &str, chain: &str) -> BaseChain {
    rs.table(family, table)
        .and_then(|t| t.chain(chain))
        .and_then(|c| c.base.clone())
        .unwrap_or_else(|| panic!("no base chain {family} {table} {chain}"))
}

#[test]
fn firewalld_listings_parse_with_their_base_chains() {
    for (name, fixture, rules) in [
        ("calico worker", CALICO_WORKER, 114),
        ("calico controller", CALICO_CONTROLLER, 103),
        ("k3s segregated", K3S_SEGREGATED, 164),
    ] {
        let rs = assert_renders_like(name, fixture, &[]);
        assert_eq!(rs.rule_count(), rules, "{name}");
        let tables: Vec<(Family, &str)> = rs
            .tables
            .iter()
            .map(|t| (t.family, t.name.as_str()))
            .collect();
        assert_eq!(
            tables,
            [(Family::Ip, "lab-kube-proxy"), (Family::Inet, "firewalld")],
            "{name}"
        );
        let fw = rs.table(Family::Inet, "firewalld").unwrap();
        let mut bases: Vec<(String, &str, Hook, i32)> = fw
            .chains
            .iter()
            .filter_map(|c| {
                let b = c.base.as_ref()?;
                assert_eq!(b.policy, Policy::Accept, "{name} {}", c.name);
                Some((c.name.clone(), b.kind.as_str(), b.hook, b.priority))
            })
            .collect();
        bases.sort();
        assert_eq!(
            bases,
            [
                ("filter_FORWARD".into(), "filter", Hook::Forward, 10),
                ("filter_INPUT".into(), "filter", Hook::Input, 10),
                ("filter_OUTPUT".into(), "filter", Hook::Output, 10),
                ("filter_PREROUTING".into(), "filter", Hook::Prerouting, 10),
                ("mangle_PREROUTING".into(), "filter", Hook::Prerouting, -140),
                ("nat_OUTPUT".into(), "nat", Hook::Output, -90),
                ("nat_POSTROUTING".into(), "nat", Hook::Postrouting, 110),
                ("nat_PREROUTING".into(), "nat", Hook::Prerouting, -90),
            ],
            "{name}"
        );
        let kp = base(&rs, Family::Ip, "lab-kube-proxy", "output");
        assert_eq!(
            (kp.kind.as_str(), kp.hook, kp.priority),
            ("nat", Hook::Output, -100)
        );
        assert!(fw.sets.is_empty());
    }
}

#[test]
fn rule_text_reads_like_nft() {
    let rs = load(CALICO_WORKER.0, "calico worker");
    let fw = rs.table(Family::Inet, "firewalld").unwrap();
    let text = |chain: &str| -> Vec<&str> {
        fw.chain(chain)
            .unwrap()
            .rules
            .iter()
            .map(|r| r.text.as_str())
            .collect()
    };
    assert!(text("filter_IN_public_allow").contains(&"tcp dport 22 accept"));
    assert_eq!(
        text("filter_INPUT_ZONES"),
        [
            "ip saddr 10.244.0.0/16 goto filter_IN_public",
            "ip saddr 10.96.0.0/12 goto filter_IN_public",
            "iifname \"eth0\" goto filter_IN_public",
            "goto filter_IN_public",
        ]
    );
    assert_eq!(
        text("filter_INPUT"),
        [
            "ct state { established, related } accept",
            "ct status dnat accept",
            "iifname \"lo\" accept",
            "ct state invalid drop",
            "jump filter_INPUT_ZONES",
            "reject with icmpx admin-prohibited",
        ]
    );
    assert_eq!(
        text("nat_POST_public_allow"),
        ["meta nfproto ipv4 oifname != \"lo\" masquerade"]
    );
    let kp = rs.table(Family::Ip, "lab-kube-proxy").unwrap();
    assert_eq!(
        kp.chains[0].rules[0].text,
        "ip daddr 10.96.0.1 tcp dport 443 dnat to 192.168.10.11:6443"
    );
    assert_eq!(kp.chains[0].rules[0].handle, 2);
}

#[test]
fn many_forms_render_like_nft_and_compile() {
    let rs = assert_renders_like("forms", FORMS, &[]);
    let t = rs.table(Family::Inet, "t").unwrap();
    let zones = t.set("zones").unwrap();
    assert!(zones.is_map);
    assert_eq!(zones.data_type.as_deref(), Some("verdict"));
    assert_eq!(zones.key_types, ["ifname"]);
    let c1 = t.chains.iter().position(|c| c.name == "c1").unwrap();
    assert_eq!(
        zones.elements[0],
        Element {
            key: vec![Pattern::Name("eth0".into())],
            data: Some(MapData::Verdict(VerdictStmt::Goto(crate::ChainRef {
                name: "c1".into(),
                index: c1
            }))),
        }
    );
    let allowed = t.set("allowed").unwrap();
    assert_eq!(allowed.flags, ["interval"]);
    assert_eq!(
        allowed.elements[2].key,
        [Pattern::Range {
            lo: 0xc0a8_0101,
            hi: 0xc0a8_0114
        }]
    );
    let svc = t.set("svc").unwrap();
    assert_eq!(svc.key_types, ["ipv4_addr", "inet_proto", "inet_service"]);
    assert_eq!(svc.elements[0].key[1], Pattern::Range { lo: 17, hi: 17 });

    let input = t.chain("in").unwrap();
    let first = &input.rules[0].statements[0];
    assert!(
        matches!(first, Stmt::Vmap { key: Expr::Meta(MetaKey::Iifname), map: SetSource::Named { name, .. } } if name == "zones"),
        "{first:?}"
    );
    let established = input
        .rules
        .iter()
        .find(|r| r.text == "ct state established,new accept")
        .unwrap();
    assert!(matches!(
        &established.statements[0],
        Stmt::Match(Match { op: Op::AnyBit, right: Rhs::Value(v), .. }) if v == &[Pattern::Range { lo: 10, hi: 10 }]
    ));
    let web = input.rules.iter().find(|r| r.comment.is_some()).unwrap();
    assert_eq!(web.comment.as_deref(), Some("web"));
}

#[test]
fn iptables_nft_rules_keep_their_xt_statements() {
    let rs = assert_renders_like("iptables-nft", IPTABLES_NFT, &["xt "]);
    let filter = rs.table(Family::Ip, "filter").unwrap();
    let forward = base(&rs, Family::Ip, "filter", "FORWARD");
    assert_eq!(forward.policy, Policy::Drop);
    let texts: Vec<&str> = filter
        .chains
        .iter()
        .flat_map(|c| &c.rules)
        .map(|r| r.text.as_str())
        .collect();
    assert!(
        texts.contains(&"udp dport 5001 xt match comment counter drop"),
        "{texts:#?}"
    );
    assert!(
        texts.contains(&"xt match conntrack xt match comment counter jump KUBE-EXTERNAL-SERVICES")
    );
}

#[test]
fn wrapped_elements_with_timeouts_and_comments() {
    // `nft -j list ruleset` of a timeout set with a commented element (nft 1.0.6).
    let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "w", "handle": 21}}, {"set": {"family": "inet", "name": "tset", "table": "w", "type": ["ipv4_addr", "inet_service"], "handle": 2, "flags": ["timeout"], "elem": [{"elem": {"val": {"concat": ["10.0.0.1", 22]}, "timeout": 3600, "expires": 3599, "comment": "ssh from admin"}}, {"concat": ["10.0.0.2", 80]}]}}, {"chain": {"family": "inet", "table": "w", "name": "in", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}, {"rule": {"family": "inet", "table": "w", "chain": "in", "handle": 3, "expr": [{"match": {"op": "==", "left": {"concat": [{"payload": {"protocol": "ip", "field": "saddr"}}, {"payload": {"protocol": "tcp", "field": "dport"}}]}, "right": "@tset"}}, {"accept": null}]}}]}"#;
    let rs = load(json, "timeout set");
    let set = rs.table(Family::Inet, "w").unwrap().set("tset").unwrap();
    assert_eq!(
        set.elements[0].key,
        [
            Pattern::Range {
                lo: 0x0a00_0001,
                hi: 0x0a00_0001
            },
            Pattern::Range { lo: 22, hi: 22 }
        ]
    );
    let chain = &rs.tables[0].chains[0];
    assert_eq!(chain.rules[0].text, "ip saddr . tcp dport @tset accept");
    let ssh = to_node("eth0", "10.0.0.1", "10.0.0.9", TCP, 22);
    assert_decided(&evaluate(&rs, &ssh), &Verdict::Accept, "in", 3);
    let web = Packet { dport: 80, ..ssh };
    assert_decided(&evaluate(&rs, &web), &Verdict::Accept, "in", 0);
}
