//! Rich rules: a `<rule>` element of zone XML turned into the canonical text firewalld prints
//! and returns over D-Bus (`Rich_Rule.__str__` in `firewall/core/rich.py`), so that permanent
//! and runtime rules compare as strings. Order is fixed: `rule [priority] [family] [source]
//! [destination] [element] [log] [audit] [action]`, each limit after what it limits.
//!
//! A rule that is well-formed XML but that `Rich_Rule.check()` refuses (an `audit` without an
//! action, a reject type without a family...) is ignored, as firewalld ignores it with a
//! warning ([`RichRule::check`]).

use std::fmt::Write as _;

use roxmltree::Node;

use super::refusal::Refusal;
use super::richrule::RichRule;
use super::xml::{Fail, check_zone_attrs};

/// The canonical text of `rule`. `Ok(None)`: firewalld ignores this rule with a warning (bad
/// family, two elements, two actions, a limit in the wrong place). `Err`: firewalld refuses the
/// whole file.
pub fn rule_string(rule: Node) -> Result<Option<String>, Fail> {
    let family = rule.attribute("family");
    if family.is_some_and(|f| f != "ipv4" && f != "ipv6") {
        return Ok(None);
    }
    let priority: i32 = match rule.attribute("priority") {
        Some(p) => p
            .trim()
            .parse()
            .map_err(|_| Fail::at(rule, Refusal::RulePriority(p.to_string())))?,
        None => 0,
    };
    let mut source = None;
    let mut destination = None;
    let mut element = None;
    let mut log = None;
    let mut audit = None;
    let mut action = None;
    for n in rule.descendants().skip(1).filter(Node::is_element) {
        check_zone_attrs(n)?;
        let name = n.tag_name().name();
        match name {
            "source" => {
                if source.is_some() {
                    return Ok(None);
                }
                source = Some(source_part(n)?);
            }
            "destination" => {
                // firewalld warns and keeps the first one.
                if destination.is_none() {
                    destination = Some(destination_part(n)?);
                }
            }
            "service" | "port" | "protocol" | "tcp-mss-clamp" | "icmp-block" | "icmp-type"
            | "masquerade" | "forward-port" | "source-port" => {
                if element.is_some() {
                    return Ok(None);
                }
                element = Some(element_part(n, name));
            }
            "accept" | "reject" | "drop" | "mark" => {
                if action.is_some() {
                    return Ok(None);
                }
                let Some(part) = action_part(n, name)? else {
                    return Ok(None);
                };
                action = Some(part);
            }
            "log" | "nflog" => {
                if log.is_some() {
                    continue;
                }
                let Some(part) = log_part(n, name)? else {
                    return Ok(None);
                };
                log = Some(part);
            }
            "audit" => {
                if audit.is_some() {
                    return Ok(None);
                }
                let Some(limit) = limit_of(n)? else {
                    return Ok(None);
                };
                audit = Some(format!("audit{limit}"));
            }
            "limit" => {
                let parent = n.parent_element().map(|p| p.tag_name().name());
                if !matches!(
                    parent,
                    Some("accept" | "reject" | "drop" | "mark" | "log" | "nflog" | "audit")
                ) {
                    return Ok(None);
                }
            }
            // `interface` in a rule, a nested rule, and so on: firewalld warns and drops it.
            _ => return Ok(None),
        }
    }
    let mut s = "rule".to_string();
    if priority != 0 {
        let _ = write!(s, " priority=\"{priority}\"");
    }
    if let Some(f) = family {
        let _ = write!(s, " family=\"{f}\"");
    }
    for part in [source, destination, element, log, audit, action]
        .into_iter()
        .flatten()
    {
        s.push(' ');
        s += &part;
    }
    match RichRule::parse(&s).map(|r| r.check()) {
        Ok(Ok(())) => Ok(Some(s)),
        _ => Ok(None),
    }
}

/// Attribute `k` of `n`, `""` when it has none.
fn attr<'a>(n: Node<'a, '_>, k: &str) -> &'a str {
    n.attribute(k).unwrap_or_default()
}

/// `k="value"` for attribute `k` of `n`.
fn quoted(n: Node, k: &str) -> String {
    format!("{k}=\"{}\"", attr(n, k))
}

/// ` NOT` when `n` is inverted.
fn not(n: Node) -> &'static str {
    if is_true(n.attribute("invert")) {
        " NOT"
    } else {
        ""
    }
}

/// `source [NOT] address=...|mac=...|ipset=...`; firewalld refuses a source with none of them.
fn source_part(n: Node) -> Result<String, Fail> {
    let what = if !attr(n, "address").is_empty() {
        quoted(n, "address")
    } else if !attr(n, "mac").is_empty() {
        format!("mac=\"{}\"", attr(n, "mac").to_uppercase())
    } else if !attr(n, "ipset").is_empty() {
        quoted(n, "ipset")
    } else {
        return Err(Fail::at(n, Refusal::RuleSourceEmpty));
    };
    Ok(format!("source{} {what}", not(n)))
}

/// `destination [NOT] address=...|ipset=...`; firewalld refuses one with neither.
fn destination_part(n: Node) -> Result<String, Fail> {
    let what = if !attr(n, "address").is_empty() {
        quoted(n, "address")
    } else if !attr(n, "ipset").is_empty() {
        quoted(n, "ipset")
    } else {
        return Err(Fail::at(n, Refusal::RuleDestinationEmpty));
    };
    Ok(format!("destination{} {what}", not(n)))
}

/// The element `n` (`name`, one of the element tags: service, port, forward-port...).
fn element_part(n: Node, name: &str) -> String {
    let q = |k: &str| quoted(n, k);
    match name {
        "service" => format!("service {}", q("name")),
        "port" | "source-port" => format!("{name} {} {}", q("port"), q("protocol")),
        "protocol" => format!("protocol {}", q("value")),
        "tcp-mss-clamp" => {
            let v = n
                .attribute("value")
                .filter(|v| *v != "None")
                .unwrap_or("pmtu");
            format!("tcp-mss-clamp value=\"{v}\"")
        }
        "icmp-block" | "icmp-type" => format!("{name} {}", q("name")),
        "masquerade" => "masquerade".to_string(),
        _ => {
            let mut s = format!("forward-port {} {}", q("port"), q("protocol"));
            if !attr(n, "to-port").is_empty() {
                let _ = write!(s, " {}", q("to-port"));
            }
            if !attr(n, "to-addr").is_empty() {
                let _ = write!(s, " {}", q("to-addr"));
            }
            s
        }
    }
}

/// The action `n` (`name`: accept, reject, drop or mark) with its limit; `None` for two limits.
fn action_part(n: Node, name: &str) -> Result<Option<String>, Fail> {
    let s = match name {
        "reject" if !attr(n, "type").is_empty() => format!("reject {}", quoted(n, "type")),
        // mark's value is not quoted in the canonical form.
        "mark" => format!("mark set={}", attr(n, "set")),
        _ => name.to_string(),
    };
    Ok(limit_of(n)?.map(|limit| s + &limit))
}

/// `log` or `nflog` (`name`) with its settings and limit; `None` for two limits.
fn log_part(n: Node, name: &str) -> Result<Option<String>, Fail> {
    let mut s = name.to_string();
    let keys: &[&str] = if name == "log" {
        &["prefix", "level"]
    } else {
        &["group", "prefix", "queue-size"]
    };
    for k in keys {
        if !attr(n, k).is_empty() {
            let _ = write!(s, " {}", quoted(n, k));
        }
    }
    Ok(limit_of(n)?.map(|limit| s + &limit))
}

/// ` limit value="N/x"` for the `<limit>` child of `n`, `""` without one, `None` for two.
fn limit_of(n: Node) -> Result<Option<String>, Fail> {
    let limits: Vec<Node> = n
        .children()
        .filter(|c| c.is_element() && c.has_tag_name("limit"))
        .collect();
    match limits.as_slice() {
        [] => Ok(Some(String::new())),
        [l] => {
            check_zone_attrs(*l)?;
            let v = l.attribute("value").unwrap_or_default();
            Ok(Some(format!(" limit value=\"{}\"", normalize_limit(v))))
        }
        _ => Ok(None),
    }
}

/// `Rich_Limit`: `3/minute` is stored as `3/m`.
fn normalize_limit(v: &str) -> String {
    match v.split_once('/') {
        Some((rate, unit))
            if !unit.contains('/') && matches!(unit, "second" | "minute" | "hour" | "day") =>
        {
            format!("{rate}/{}", &unit[..1])
        }
        _ => v.to_string(),
    }
}

fn is_true(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.eq_ignore_ascii_case("yes") || v.eq_ignore_ascii_case("true"))
}
