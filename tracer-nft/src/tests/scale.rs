//! A synthetic ruleset of 10,000 rules: parsing and evaluating stay fast because matches are
//! compiled once. Times are printed, not asserted (the benchmark measures speed).

use std::{fmt::Write, time::Instant};

use super::*;

/// An inet table whose input chain dispatches by interface to 50 zone chains of 199 port
/// rules each, plus one chain of 50 rules: 10,000 rules.
fn synthetic() -> String {
    let mut items = vec![
        r#"{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}"#.to_string(),
        r#"{"table": {"family": "inet", "name": "big", "handle": 1}}"#.to_string(),
        r#"{"chain": {"family": "inet", "table": "big", "name": "input", "handle": 2, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}"#.to_string(),
    ];
    let mut handle = 10;
    let mut rule = |chain: &str, expr: String| {
        handle += 1;
        format!(
            r#"{{"rule": {{"family": "inet", "table": "big", "chain": "{chain}", "handle": {handle}, "expr": [{expr}]}}}}"#
        )
    };
    let mut rules = Vec::new();
    for zone in 0..50 {
        items.push(format!(
            r#"{{"chain": {{"family": "inet", "table": "big", "name": "zone{zone}", "handle": {}}}}}"#,
            3 + zone
        ));
        rules.push(rule(
            "input",
            format!(
                r#"{{"match": {{"op": "==", "left": {{"meta": {{"key": "iifname"}}}}, "right": "eth{zone}"}}}}, {{"goto": {{"target": "zone{zone}"}}}}"#
            ),
        ));
        for port in 0..199 {
            let mut expr = String::new();
            let _ = write!(
                expr,
                r#"{{"match": {{"op": "==", "left": {{"payload": {{"protocol": "tcp", "field": "dport"}}}}, "right": {}}}}}, {{"counter": {{"packets": 0, "bytes": 0}}}}, {{"accept": null}}"#,
                10000 + port * 3
            );
            rules.push(rule(&format!("zone{zone}"), expr));
        }
    }
    items.extend(rules);
    format!(r#"{{"nftables": [{}]}}"#, items.join(",\n"))
}

/// One base chain of 10,000 port rules: the worst case, every rule tried in turn.
fn flat() -> String {
    let mut items = vec![
        r#"{"table": {"family": "ip", "name": "flat", "handle": 1}}"#.to_string(),
        r#"{"chain": {"family": "ip", "table": "flat", "name": "input", "handle": 2, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}"#.to_string(),
    ];
    for port in 0..10_000 {
        items.push(format!(
            r#"{{"rule": {{"family": "ip", "table": "flat", "chain": "input", "handle": {}, "expr": [{{"match": {{"op": "==", "left": {{"payload": {{"protocol": "tcp", "field": "dport"}}}}, "right": {}}}}}, {{"accept": null}}]}}}}"#,
            port + 3,
            20000 + port
        ));
    }
    format!(r#"{{"nftables": [{}]}}"#, items.join(",\n"))
}

#[test]
fn a_flat_chain_of_ten_thousand_rules() {
    let rs = load(&flat(), "flat");
    assert_eq!(rs.rule_count(), 10_000);
    let packets: Vec<Packet> = (0..20)
        .map(|i| to_node("eth0", "192.0.2.1", "192.0.2.2", TCP, 29_990 + i))
        .collect();
    let started = Instant::now();
    let outcomes: Vec<Outcome> = packets.iter().map(|p| evaluate(&rs, p)).collect();
    let evaluated = started.elapsed();
    for (i, out) in outcomes.iter().enumerate() {
        let at = out.deciding.as_ref().unwrap();
        if i < 10 {
            assert_eq!(at.text, format!("tcp dport {} accept", 29_990 + i));
        } else {
            assert_eq!(
                (&out.verdict, at.text.as_str()),
                (&Verdict::Drop, "policy drop")
            );
        }
    }
    println!(
        "10,000 rules in one chain: 20 packets evaluated in {evaluated:?} ({:?} per packet)",
        evaluated / 20
    );
}

#[test]
fn ten_thousand_rules_parse_and_evaluate_quickly() {
    let json = synthetic();
    let started = Instant::now();
    let rs = load(&json, "synthetic");
    let parsed = started.elapsed();
    assert_eq!(rs.rule_count(), 10_000);

    let packets: Vec<Packet> = (0..20)
        .map(|i| {
            // Zones toward the end and ports toward the end of their zone, half of them open.
            let zone = 49 - i;
            let port = if i % 2 == 0 { 10000 + 198 * 3 } else { 10001 };
            to_node(&format!("eth{zone}"), "192.0.2.1", "192.0.2.2", TCP, port)
        })
        .collect();
    let started = Instant::now();
    let outcomes: Vec<Outcome> = packets.iter().map(|p| evaluate(&rs, p)).collect();
    let evaluated = started.elapsed();
    for (i, out) in outcomes.iter().enumerate() {
        let zone = 49 - i;
        let at = out.deciding.as_ref().unwrap();
        if i % 2 == 0 {
            assert_eq!(out.verdict, Verdict::Accept, "{out:#?}");
            assert_eq!(
                (at.chain.as_str(), at.text.as_str()),
                (
                    format!("zone{zone}").as_str(),
                    "tcp dport 10594 counter accept"
                )
            );
        } else {
            assert_eq!((&out.verdict, at.handle), (&Verdict::Drop, 0), "{out:#?}");
        }
    }
    println!(
        "10,000 rules ({} KiB of JSON): parsed in {parsed:?}, 20 packets evaluated in \
         {evaluated:?} ({:?} per packet)",
        json.len() / 1024,
        evaluated / 20
    );
}
