//! Reading `iptables-nft-save` listings and translating their extension matches; the
//! differential test in `nft::tests::kernel` checks the translations against the kernel.

use serde_json::json;

use super::*;

fn words(s: &str) -> Vec<String> {
    split_words(s)
}

#[test]
fn words_follow_iptables_restore_quoting() {
    assert_eq!(
        words(r#"INPUT -m comment --comment "a \"quoted\" word" -j ACCEPT"#),
        [
            "INPUT",
            "-m",
            "comment",
            "--comment",
            r#"a "quoted" word"#,
            "-j",
            "ACCEPT"
        ]
    );
    assert_eq!(words(r#"X -m comment --comment """#)[4], "");
}

#[test]
fn rules_split_into_modules_and_target() {
    let rule = saved_rule(&words(
        "-p udp -m multiport ! --dports 8472 -m addrtype --dst-type LOCAL -j KUBE-FW",
    ));
    assert_eq!(
        rule.matches,
        [
            Module {
                name: "multiport".into(),
                args: words("! --dports 8472")
            },
            Module {
                name: "addrtype".into(),
                args: words("--dst-type LOCAL")
            },
        ]
    );
    assert_eq!(rule.target.unwrap().name, "KUBE-FW");
}

fn module(name: &str, args: &str) -> Module {
    Module {
        name: name.into(),
        args: words(args),
    }
}

#[test]
fn each_known_match_becomes_what_iptables_translate_writes() {
    let ct = |right, op| json!([{"match": {"op": op, "left": {"ct": {"key": "state"}}, "right": right}}]);
    let none = HashMap::new();
    let t = |name, args| Value::Array(translate_match(&module(name, args), &none).unwrap());
    assert_eq!(
        t("conntrack", "--ctstate RELATED,ESTABLISHED"),
        ct(json!(["related", "established"]), "in")
    );
    assert_eq!(t("state", "! --state NEW"), ct(json!("new"), "!="));
    assert_eq!(
        t("conntrack", "! --ctstate NEW,INVALID"),
        ct(json!(["new", "invalid"]), "!")
    );
    assert_eq!(
        t("multiport", "--dports 2379:2380,6443"),
        json!([{"match": {"op": "==", "left": {"payload": {"protocol": "th", "field": "dport"}},
            "right": {"set": [{"range": [2379, 2380]}, 6443]}}}])
    );
    assert_eq!(
        t("addrtype", "! --src-type LOCAL --limit-iface-in"),
        json!([{"match": {"op": "!=", "left": {"fib": {"result": "type", "flags": ["saddr", "iif"]}},
            "right": "local"}}])
    );
    assert_eq!(t("comment", "--comment x"), json!([]));
    // Options without a native form keep the whole module an xt expression.
    for (name, args) in [
        ("conntrack", "--ctstatus DNAT"),
        ("conntrack", "--ctstate SNAT"),
        ("multiport", "--ports 80"),
        ("set", "--match-set cali40all src"),
    ] {
        assert_eq!(
            translate_match(&module(name, args), &none),
            None,
            "{name} {args}"
        );
    }
}

#[test]
fn mark_targets_clear_the_mask_then_xor_the_value() {
    let v = translate_target(&module("MARK", "--set-xmark 0x4000/0x4000")).unwrap();
    assert_eq!(
        v[0]["mangle"]["value"],
        json!({"^": [{"&": [{"meta": {"key": "mark"}}, 0xffff_bfffu32]}, 0x4000]})
    );
    assert_eq!(translate_target(&module("REJECT", "")), None);
}

/// A listing with one iptables-nft chain of two rules.
fn doc() -> Value {
    let rule = |handle, expr: Value| json!({"rule": {"family": "ip", "table": "filter", "chain": "INPUT", "handle": handle, "expr": expr}});
    json!({"nftables": [
        rule(2, json!([{"xt": {"type": "match", "name": "conntrack"}}, {"accept": null}])),
        rule(3, json!([
            {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "udp"}},
            {"xt": {"type": "match", "name": "multiport"}},
            {"xt": {"type": "match", "name": "comment"}},
            {"drop": null}
        ])),
    ]})
}

const SAVE: &str = "*filter\n:INPUT ACCEPT [0:0]\n\
    -A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n\
    -A INPUT -p udp -m multiport --dports 4789 -m comment --comment \"vxlan\" -j DROP\nCOMMIT\n";

#[test]
fn xt_expressions_are_replaced_rule_by_rule() {
    let mut saved = SavedRules::default();
    saved.add(Family::Ip, SAVE);
    let mut d = doc();
    assert_eq!(saved.resolve(&mut d), 3);
    let rules = d["nftables"].as_array().unwrap();
    assert_eq!(
        rules[0]["rule"]["expr"][0]["match"]["left"],
        json!({"ct": {"key": "state"}})
    );
    // multiport became a match; the comment became nothing.
    let second = rules[1]["rule"]["expr"].as_array().unwrap();
    assert_eq!(second.len(), 3);
    assert_eq!(second[1]["match"]["right"], json!(4789));
}

#[test]
fn listings_that_disagree_change_nothing() {
    let untouched = doc();
    // Another family, another chain length, another module: nothing lines up.
    for (family, save) in [
        (Family::Ip6, SAVE.to_string()),
        (
            Family::Ip,
            SAVE.replace(
                "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n",
                "",
            ),
        ),
        (Family::Ip, SAVE.replace("-m state", "-m mark")),
    ] {
        let mut saved = SavedRules::default();
        saved.add(family, &save);
        let mut d = doc();
        saved.resolve(&mut d);
        if save.contains("-m mark") {
            // Only the rule whose modules disagree is left alone.
            assert_eq!(d["nftables"][0], untouched["nftables"][0]);
            assert_ne!(d["nftables"][1], untouched["nftables"][1]);
        } else {
            assert_eq!(d, untouched, "{family:?}\n{save}");
        }
    }
}

const IPSETS: &str = "create peers hash:net family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1\n\
    add peers 10.0.0.0/8\n\
    add peers 192.168.1.1\n\
    create ports hash:ip,port family inet hashsize 1024 maxelem 65536\n\
    add ports 10.0.0.1,udp:4789\n\
    create odd hash:net family inet\n\
    add odd 10.0.0.0/8\n\
    add odd 10.1.0.0/16 nomatch\n\
    create v6 hash:ip family inet6\n\
    add v6 fd00::1 timeout 30\n";

#[test]
fn ipset_matches_become_their_members() {
    let mut saved = SavedRules::default();
    saved.add_ipsets(IPSETS);
    let t = |args| translate_match(&module("set", args), &saved.ipsets).map(Value::Array);
    assert_eq!(
        t("--match-set peers src"),
        Some(
            json!([{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
            "right": {"set": [{"prefix": {"addr": "10.0.0.0", "len": 8}}, "192.168.1.1"]}}}])
        )
    );
    assert_eq!(
        t("! --match-set v6 dst"),
        Some(
            json!([{"match": {"op": "!=", "left": {"payload": {"protocol": "ip6", "field": "daddr"}},
            "right": {"set": ["fd00::1"]}}}])
        )
    );
    // Pairs, exceptions, unknown sets and two-field directions have no single-field form.
    for args in [
        "--match-set ports dst,dst",
        "--match-set ports dst",
        "--match-set odd src",
        "--match-set missing src",
        "--match-set peers src,dst",
        "--match-set peers src --return-nomatch",
    ] {
        assert_eq!(t(args), None, "{args}");
    }
}
