//! Rich rules: a `<rule>` element of zone XML turned into the canonical text firewalld prints
//! and returns over D-Bus (`Rich_Rule.__str__` in `firewall/core/rich.py`), so that permanent
//! and runtime rules compare as strings. Order is fixed: `rule [priority] [family] [source]
//! [destination] [element] [log] [audit] [action]`, each limit after what it limits.
//!
//! Not reproduced: `Rich_Rule.check()`, which makes firewalld drop (with a warning) a rule that
//! is well-formed XML but meaningless, such as `forward-port` without a family.

use roxmltree::Node;

use super::refusal::Refusal;
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
        let a = |k: &str| n.attribute(k).unwrap_or_default();
        let q = |k: &str| format!("{k}=\"{}\"", a(k));
        let name = n.tag_name().name();
        match name {
            "source" => {
                if source.is_some() {
                    return Ok(None);
                }
                let not = if is_true(n.attribute("invert")) {
                    " NOT"
                } else {
                    ""
                };
                let what = if !a("address").is_empty() {
                    q("address")
                } else if !a("mac").is_empty() {
                    format!("mac=\"{}\"", a("mac").to_uppercase())
                } else if !a("ipset").is_empty() {
                    q("ipset")
                } else {
                    return Err(Fail::at(n, Refusal::RuleSourceEmpty));
                };
                source = Some(format!("source{not} {what}"));
            }
            "destination" => {
                // firewalld warns and keeps the first one.
                if destination.is_some() {
                    continue;
                }
                let not = if is_true(n.attribute("invert")) {
                    " NOT"
                } else {
                    ""
                };
                let what = if !a("address").is_empty() {
                    q("address")
                } else if !a("ipset").is_empty() {
                    q("ipset")
                } else {
                    return Err(Fail::at(n, Refusal::RuleDestinationEmpty));
                };
                destination = Some(format!("destination{not} {what}"));
            }
            "service" | "port" | "protocol" | "tcp-mss-clamp" | "icmp-block" | "icmp-type"
            | "masquerade" | "forward-port" | "source-port" => {
                if element.is_some() {
                    return Ok(None);
                }
                element = Some(match name {
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
                        if !a("to-port").is_empty() {
                            s += &format!(" {}", q("to-port"));
                        }
                        if !a("to-addr").is_empty() {
                            s += &format!(" {}", q("to-addr"));
                        }
                        s
                    }
                });
            }
            "accept" | "reject" | "drop" | "mark" => {
                if action.is_some() {
                    return Ok(None);
                }
                let mut s = match name {
                    "reject" if !a("type").is_empty() => format!("reject {}", q("type")),
                    // mark's value is not quoted in the canonical form.
                    "mark" => format!("mark set={}", a("set")),
                    _ => name.to_string(),
                };
                let Some(limit) = limit_of(n)? else {
                    return Ok(None);
                };
                s += &limit;
                action = Some(s);
            }
            "log" | "nflog" => {
                if log.is_some() {
                    continue;
                }
                let mut s = name.to_string();
                let keys: &[&str] = if name == "log" {
                    &["prefix", "level"]
                } else {
                    &["group", "prefix", "queue-size"]
                };
                for k in keys {
                    if !a(k).is_empty() {
                        s += &format!(" {}", q(k));
                    }
                }
                let Some(limit) = limit_of(n)? else {
                    return Ok(None);
                };
                s += &limit;
                log = Some(s);
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
        s += &format!(" priority=\"{priority}\"");
    }
    if let Some(f) = family {
        s += &format!(" family=\"{f}\"");
    }
    for part in [source, destination, element, log, audit, action]
        .into_iter()
        .flatten()
    {
        s.push(' ');
        s += &part;
    }
    Ok(Some(s))
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
