//! Malformed input: errors name the source (and line and column for JSON syntax); unknown
//! expressions and statements parse, and make the evaluator answer Unknown where they matter.

use super::{listing, *};
use crate::{Expr, RulesetError, Stmt, json::JsonError};

fn error(text: &str) -> String {
    match Ruleset::from_json(text, "bad.json") {
        Ok(rs) => panic!("parsed: {rs:#?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn invalid_json_names_source_line_and_column() {
    let err = Ruleset::from_json(
        "{\n  \"nftables\": [\n    {\"table\": oops}\n  ]\n}",
        "bad.json",
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            RulesetError::Json(JsonError {
                line: 3,
                column: 15,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "bad.json:3:15: expected value");
    assert_eq!(
        error("{\"nftables\": ["),
        "bad.json:1:14: EOF while parsing a list"
    );
}

#[test]
fn structure_errors_name_the_source() {
    assert_eq!(
        error("{\"tables\": []}"),
        "bad.json: not an nft listing: no top-level \"nftables\" array"
    );
    let jump = listing(&[r#"[{"jump": {"target": "nowhere"}}]"#]);
    assert_eq!(
        error(&jump),
        "bad.json: rule handle 2 in inet t chain in: jump to chain \"nowhere\", which the \
         listing lacks"
    );
    let set = listing(&[
        r#"[{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "@zones"}}, {"accept": null}]"#,
    ]);
    assert!(error(&set).ends_with("refers to set @zones, which the listing lacks"));
    let orphan = r#"{"nftables": [{"rule": {"family": "ip", "table": "x", "chain": "y", "handle": 1, "expr": []}}]}"#;
    assert_eq!(
        error(orphan),
        "bad.json: rule of table ip x, which the listing lacks"
    );
    let hook = r#"{"nftables": [{"table": {"family": "ip", "name": "x"}}, {"chain": {"family": "ip", "table": "x", "name": "y", "hook": "sideways", "prio": 0}}]}"#;
    assert_eq!(
        error(hook),
        "bad.json: chain ip x y: unknown hook \"sideways\""
    );
}

#[test]
fn unknown_expressions_parse_and_make_the_outcome_unknown() {
    let text = listing(&[
        // An unknown expression in a rule that only counts: skipping it is safe.
        r#"[{"match": {"op": "==", "left": {"frobnicate": {"x": 1}}, "right": 5}}, {"counter": {"packets": 0, "bytes": 0}}]"#,
        // A known mismatch before the unknown part: the rule cannot match.
        r#"[{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 1}}, {"match": {"op": "==", "left": {"frobnicate": {"x": 1}}, "right": 5}}, {"drop": null}]"#,
        // An unknown expression before a verdict: the evaluator stops here.
        r#"[{"match": {"op": "==", "left": {"frobnicate": {"x": 1}}, "right": 5}}, {"accept": null}]"#,
        r#"[{"accept": null}]"#,
    ]);
    let rs = load(&text, "unknown.json");
    let rules = &rs.tables[0].chains[0].rules;
    assert_eq!(rules[0].text, "frobnicate {\"x\":1} 5 counter");
    assert!(matches!(
        &rules[2].statements[0],
        Stmt::Match(m) if m.left == Expr::Unsupported("frobnicate {\"x\":1}".into())
    ));
    let out = evaluate(&rs, &to_node("eth0", "192.0.2.1", "192.0.2.2", TCP, 22));
    assert_eq!(
        out.verdict,
        Verdict::Unknown(
            "`frobnicate {\"x\":1}` cannot be evaluated on a packet description".into()
        )
    );
    assert_eq!(out.deciding.unwrap().handle, 4);

    // An unknown statement may itself be a verdict.
    let text = listing(&[r#"[{"synproxy": {"mss": 1460}}]"#, r#"[{"accept": null}]"#]);
    let out = evaluate(
        &load(&text, "unknown.json"),
        &to_node("eth0", "192.0.2.1", "192.0.2.2", TCP, 22),
    );
    assert!(
        matches!(&out.verdict, Verdict::Unknown(why) if why.contains("`synproxy`")),
        "{out:#?}"
    );
}

/// A table of chains: (name, base hook or none, rules as JSON expression arrays).
fn table(chains: &[(&str, Option<&str>, Vec<String>)]) -> String {
    let mut items = vec![r#"{"table": {"family": "inet", "name": "t", "handle": 1}}"#.to_string()];
    let mut handle = 1;
    for (name, hook, _) in chains {
        handle += 1;
        let base = hook.map_or(String::new(), |h| {
            format!(r#", "type": "filter", "hook": "{h}", "prio": 0, "policy": "accept""#)
        });
        items.push(format!(
            r#"{{"chain": {{"family": "inet", "table": "t", "name": "{name}", "handle": {handle}{base}}}}}"#
        ));
    }
    for (name, _, rules) in chains {
        for expr in rules {
            handle += 1;
            items.push(format!(
                r#"{{"rule": {{"family": "inet", "table": "t", "chain": "{name}", "handle": {handle}, "expr": {expr}}}}}"#
            ));
        }
    }
    format!("{{\"nftables\": [\n{}\n]}}", items.join(",\n"))
}

#[test]
fn a_looping_hand_made_ruleset_is_named_as_such() {
    let goto = |to: &str| vec![format!(r#"[{{"goto": {{"target": "{to}"}}}}]"#)];
    let text = table(&[
        ("in", Some("input"), goto("a")),
        ("a", None, goto("b")),
        ("b", None, goto("a")),
    ]);
    let out = evaluate(
        &load(&text, "loop.json"),
        &to_node("eth0", "192.0.2.1", "192.0.2.2", UDP, 53),
    );
    let Verdict::Unknown(why) = &out.verdict else {
        panic!("{out:#?}")
    };
    assert!(why.contains("loops through chains a -> b -> a"), "{why}");
}

/// Over ten million rule visits without a loop: too large, not looping.
#[test]
fn a_ruleset_too_large_to_follow_is_not_called_a_loop() {
    let jumps = vec![r#"[{"jump": {"target": "big"}}]"#.to_string(); 4_000];
    let misses = vec![
        r#"[{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 1}}, {"accept": null}]"#
            .to_string();
        2_600
    ];
    let text = table(&[("in", Some("input"), jumps), ("big", None, misses)]);
    let out = evaluate(
        &load(&text, "large.json"),
        &to_node("eth0", "192.0.2.1", "192.0.2.2", UDP, 53),
    );
    let Verdict::Unknown(why) = &out.verdict else {
        panic!("{:?}", out.verdict)
    };
    assert!(
        why.contains("no loop") && why.contains("too large"),
        "{why}"
    );
}
