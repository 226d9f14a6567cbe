//! Property tests of the readers of outside input: `nft -j list ruleset` JSON, `iptables-save`
//! listings and `ipset save` listings. Whatever they are given (random text, real listings
//! mutated at random, random JSON shaped like a listing), they never panic, their errors name
//! the source (and line and column for JSON syntax), messages stay short whatever the input
//! holds, and a ruleset that parses can be evaluated. CI runs each property on proptest's
//! default number of cases; `cargo xtask props` runs many more (PROPTEST_CASES).

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::{Family, RulesetError, SavedRules, json::JsonError};

/// Real listings to mutate.
const LISTINGS: [&str; 5] = [
    CALICO_WORKER.0,
    CALICO_CONTROLLER.0,
    K3S_SEGREGATED.0,
    FORMS.0,
    IPTABLES_NFT.0,
];

/// Saved iptables rules of the kinds kube-proxy, Calico and kube-router write.
const SAVED: &str = r#"*filter
:INPUT ACCEPT [0:0]
:KUBE-FW - [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p udp -m multiport --dports 8472,4789 -m addrtype --dst-type LOCAL -j KUBE-FW
-A INPUT -m set --match-set cali40all-vxlan-net src -j ACCEPT
-A INPUT -m comment --comment "a \"quoted\" comment" -m mark --mark 0x4000/0x4000 -j DROP
-A KUBE-FW -j MARK --or-mark 0x8000
COMMIT
"#;

const IPSETS: &str = "create cali40all-vxlan-net hash:net family inet hashsize 1024 maxelem 1048576
add cali40all-vxlan-net 192.168.10.21
add cali40all-vxlan-net 10.244.0.0/16 nomatch
create other hash:ip,port family inet6
";

/// An edit of a text: where (a fraction of its length), what, and the text inserted.
fn edits() -> impl Strategy<Value = Vec<(f64, u8, String)>> {
    prop::collection::vec((0.0..1.0f64, 0..6u8, "\\PC{0,12}"), 1..5)
}

/// Applies `edits` to `text`: truncation, deletion, insertion, a number made huge or negative,
/// a span duplicated, a string made long.
fn mutate(text: &str, edits: &[(f64, u8, String)]) -> String {
    let mut t = text.to_string();
    for (at, kind, insert) in edits {
        let mut i = ((t.len() as f64) * at) as usize;
        while !t.is_char_boundary(i) {
            i -= 1;
        }
        let end = t[i..]
            .char_indices()
            .nth(insert.len().max(1))
            .map_or(t.len(), |(j, _)| i + j);
        match kind {
            0 => t.truncate(i),
            1 => t.replace_range(i..end, ""),
            2 => t.insert_str(i, insert),
            3 => t.insert_str(i, "18446744073709551616"),
            4 => {
                let span = t[i..end].to_string();
                t.insert_str(i, &span);
            }
            _ => t.insert_str(i, &"x".repeat(5_000)),
        }
    }
    t
}

/// Random JSON values, the raw material of listings shaped like nft's.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec![
            "tcp",
            "udp",
            "dport",
            "saddr",
            "ip",
            "ip6",
            "inet",
            "established",
            "eth0",
            "10.0.0.0/8",
            "accept",
            "drop",
            "input",
            "forward",
            "==",
            "!=",
            "in",
            "mark",
            "l4proto",
            "iifname",
            "state",
            "@s",
            "vmap",
            "xt",
        ])
        .prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop::sample::select(vec![
            "match", "op", "left", "right", "payload", "protocol", "field", "meta", "key", "ct",
            "set", "prefix", "addr", "len", "range", "jump", "goto", "target", "vmap", "data",
            "accept", "drop", "reject", "return", "xt", "name", "type", "counter", "mangle",
            "value", "&", "|", "concat", "elem", "fib", "flags", "result", "limit",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.into(), v)).collect())),
        ]
    })
}

/// A listing of one table, a base chain, a regular chain and a set, with random rules.
fn listing_of(rules: Vec<Value>, set_elements: &Value) -> String {
    let mut items = vec![
        json!({"table": {"family": "inet", "name": "t", "handle": 1}}),
        json!({"chain": {"family": "inet", "table": "t", "name": "in", "handle": 2,
                          "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}),
        json!({"chain": {"family": "inet", "table": "t", "name": "sub", "handle": 3}}),
        json!({"set": {"family": "inet", "table": "t", "name": "s", "handle": 4,
                        "type": "inet_service", "elem": set_elements}}),
    ];
    for (i, expr) in rules.into_iter().enumerate() {
        let chain = if i % 3 == 2 { "sub" } else { "in" };
        items.push(
            json!({"rule": {"family": "inet", "table": "t", "chain": chain,
                                   "handle": 10 + i, "expr": expr}}),
        );
    }
    json!({ "nftables": items }).to_string()
}

/// Packets of every hook and both families, to evaluate what parsed.
fn packets() -> Vec<Packet> {
    let mut all = Vec::new();
    for (s, d) in [("192.0.2.1", "192.0.2.2"), ("2001:db8::1", "2001:db8::2")] {
        for hook in [Hook::Prerouting, Hook::Input, Hook::Forward, Hook::Output] {
            for proto in [TCP, UDP, 1, 58, 112] {
                let mut p = Packet::new_connection(hook, "eth0", ip(s), ip(d), proto, 40000, 4789);
                p.oif = Some("eth1".into());
                p.icmp_type = Some(8);
                all.push(p);
            }
        }
    }
    all
}

/// What every outcome of reading must satisfy.
fn check_read(text: &str, origin: &str) -> Result<(), TestCaseError> {
    match Ruleset::from_json(text, origin) {
        Ok(rs) => {
            for p in packets() {
                let out = evaluate(&rs, &p);
                if let Verdict::Unknown(why) = &out.verdict {
                    prop_assert!(why.len() <= 512, "unknown reason of {} bytes", why.len());
                }
            }
        }
        Err(e) => {
            let message = e.to_string();
            prop_assert!(message.starts_with(origin), "{message}");
            prop_assert!(
                message.len() <= 1024,
                "a message of {} bytes",
                message.len()
            );
            if let RulesetError::Json(JsonError { line, column, .. }) = e {
                prop_assert!(line >= 1 && line <= text.lines().count().max(1) + 1);
                prop_assert!(column >= 1);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn props_random_text_is_refused_with_its_origin(text in "\\PC{0,200}") {
        check_read(&text, "random.json")?;
    }

    #[test]
    fn props_mutated_listings_parse_or_say_where(which in 0..LISTINGS.len(), e in edits()) {
        check_read(&mutate(LISTINGS[which], &e), "mutated.json")?;
    }

    #[test]
    fn props_random_rules_parse_and_evaluate(
        rules in prop::collection::vec(json_value(), 0..6),
        elements in json_value(),
    ) {
        check_read(&listing_of(rules, &elements), "shaped.json")?;
    }

    #[test]
    fn props_saved_rules_and_ipsets_never_panic(
        e in edits(),
        f in edits(),
        which in 0..LISTINGS.len(),
    ) {
        let mut saved = SavedRules::default();
        saved.add(Family::Ip, &mutate(SAVED, &e));
        saved.add_ipsets(&mutate(IPSETS, &f));
        let _ = saved.uses_ipsets();
        if let Ok(rs) = Ruleset::from_json_with_saved(LISTINGS[which], "with-saved.json", &saved) {
            for p in packets() {
                let _ = evaluate(&rs, &p);
            }
        }
    }
}

/// A value of a megabyte in a listing is not echoed whole in the error it causes.
#[test]
fn errors_do_not_echo_huge_values() {
    let huge = "x".repeat(1 << 20);
    for text in [
        format!(r#"{{"nftables": [{{"table": {{"family": "{huge}", "name": "t"}}}}]}}"#),
        format!(
            r#"{{"nftables": [{{"chain": {{"family": "inet", "table": "{huge}", "name": "c"}}}}]}}"#
        ),
        format!(r#"{{"nftables": [{{"table": {{"family": "inet", "name": 1, "x": "{huge}"}}}}]}}"#),
        format!(r#"{{"nftables": "{huge}"}}"#),
        format!(r#"{{"nftables": [{huge}]}}"#),
    ] {
        let message = Ruleset::from_json(&text, "huge.json")
            .unwrap_err()
            .to_string();
        assert!(
            message.len() < 1024,
            "{} bytes: {}",
            message.len(),
            &message[..200]
        );
    }
}
