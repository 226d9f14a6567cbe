//! Rules back to nft syntax, from the JSON listing, the way `nft -s list ruleset` prints them
//! (`tcp dport 22 accept`, `iifname "eth0" goto filter_IN_public`), so a diagnosis can quote
//! the rule an operator will find in their own listing. Rendering works on the JSON rather
//! than the typed form so that even statements the evaluator does not understand read right.

use std::fmt::Write;

use serde_json::Value;

use super::{Family, compile::single};

/// How constants compared with an expression are written.
#[derive(Clone, Copy, Default)]
struct Style {
    /// Strings are quoted (interface names).
    quote: bool,
    /// Numbers are `0x%08x` (marks).
    hex: bool,
}

/// A whole rule of a `family` table: its statements, then its comment.
pub(crate) fn rule(exprs: &[Value], comment: Option<&str>, family: Family) -> String {
    let mut out = exprs
        .iter()
        .map(|e| statement(e, family))
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(c) = comment {
        let _ = write!(out, " comment \"{c}\"");
    }
    out
}

fn statement(v: &Value, family: Family) -> String {
    let Some((kind, body)) = single(v) else {
        return v.to_string();
    };
    let s = |k: &str| body.get(k).and_then(Value::as_str);
    match kind {
        "match" => matcher(body),
        "accept" | "drop" | "continue" | "return" => kind.to_string(),
        "jump" | "goto" => format!("{kind} {}", s("target").unwrap_or("?")),
        "counter" => match body {
            Value::String(name) => format!("counter name \"{name}\""),
            _ => "counter".to_string(),
        },
        "log" => log(body),
        "limit" => limit(body),
        "quota" => {
            let over = if inv(body) { "over " } else { "" };
            let unit = s("val_unit").unwrap_or("bytes");
            format!("quota {over}{} {unit}", num(body.get("val")))
        }
        "ct count" => {
            let over = if inv(body) { "over " } else { "" };
            format!("ct count {over}{}", num(body.get("val")))
        }
        "reject" => {
            let with = reject_with(body, family);
            // nft leaves out the family's default, port unreachable.
            if with == format!("{} port-unreachable", default_reject_type(family)) {
                "reject".to_string()
            } else {
                format!("reject with {with}")
            }
        }
        "mangle" => {
            let key = body.get("key").unwrap_or(&Value::Null);
            let style = style_of(key);
            format!(
                "{} set {}",
                expr(key),
                value(body.get("value").unwrap_or(&Value::Null), &[style])
            )
        }
        "dnat" | "snat" => nat(kind, body),
        "masquerade" | "redirect" => {
            let mut out = kind.to_string();
            if let Some(port) = body.get("port") {
                let _ = write!(out, " to :{}", value(port, &[]));
            }
            if let Some(flags) = body.get("flags") {
                let _ = write!(out, " {}", list(flags, ","));
            }
            out
        }
        "vmap" => {
            let key = body.get("key").unwrap_or(&Value::Null);
            let styles = styles_of(key);
            format!(
                "{} vmap {}",
                expr(key),
                value(body.get("data").unwrap_or(&Value::Null), &styles)
            )
        }
        "xt" => format!(
            "xt {} {}",
            s("type").unwrap_or("match"),
            s("name").unwrap_or("?")
        ),
        "set" | "meter" => {
            let elem = body.get("elem").map(expr).unwrap_or_default();
            let inner = match body.get("stmt") {
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|s| statement(s, family))
                    .collect::<Vec<_>>()
                    .join(" "),
                Some(one) => statement(one, family),
                None => String::new(),
            };
            let target = s("set").or(s("name")).unwrap_or("?");
            let op = s("op").unwrap_or("add");
            let sep = if inner.is_empty() { "" } else { " " };
            format!("{op} {target} {{ {elem}{sep}{inner} }}")
        }
        "queue" => {
            let mut out = "queue".to_string();
            if let Some(flags) = body.get("flags") {
                let _ = write!(out, " flags {}", list(flags, ","));
            }
            if let Some(n) = body.get("num") {
                let _ = write!(out, " to {}", value(n, &[]));
            }
            out
        }
        _ if body.is_null() => kind.to_string(),
        _ => format!("{kind} {body}"),
    }
}

fn inv(body: &Value) -> bool {
    body.get("inv").and_then(Value::as_bool).unwrap_or(false)
}

fn num(v: Option<&Value>) -> String {
    v.map(|v| value(v, &[])).unwrap_or_default()
}

fn matcher(body: &Value) -> String {
    let left = body.get("left").unwrap_or(&Value::Null);
    let right = body.get("right").unwrap_or(&Value::Null);
    let styles = styles_of(left);
    let r = value(right, &styles);
    let l = expr(left);
    let op = body.get("op").and_then(Value::as_str).unwrap_or("==");
    // nft 1.0 writes a match on flags under a mask as `tcp flags syn / syn,ack`.
    if op == "=="
        && let Some(("&", Value::Array(pair))) = single(left)
        && let [inner, Value::Array(mask)] = pair.as_slice()
    {
        let mask: Vec<String> = mask.iter().map(|m| value(m, &styles)).collect();
        return format!("{} {r} / {}", expr(inner), mask.join(","));
    }
    match op {
        // nft keeps an explicit `==` after a bitwise operation: `meta mark & 0x4 == 0x4`.
        "==" if is_binop(left) => format!("{l} == {r}"),
        "==" | "in" => format!("{l} {r}"),
        op => format!("{l} {op} {r}"),
    }
}

fn is_binop(v: &Value) -> bool {
    single(v).is_some_and(|(k, _)| matches!(k, "&" | "|" | "^" | "<<" | ">>"))
}

/// The text after `reject with`, spelled out even for the default (`icmpx port-unreachable`).
fn reject_with(body: &Value, family: Family) -> String {
    let ty = body.get("type").and_then(Value::as_str);
    let code = body
        .get("expr")
        .and_then(Value::as_str)
        .unwrap_or("port-unreachable");
    match ty {
        Some("tcp reset") => "tcp reset".to_string(),
        Some(t) => format!("{t} {code}"),
        None => format!("{} {code}", default_reject_type(family)),
    }
}

/// The ICMP type a `family` table's `reject` sends when it names none.
fn default_reject_type(family: Family) -> &'static str {
    match family {
        Family::Ip => "icmp",
        Family::Ip6 => "icmpv6",
        _ => "icmpx",
    }
}

fn log(body: &Value) -> String {
    let mut out = "log".to_string();
    if let Some(p) = body.get("prefix").and_then(Value::as_str) {
        let _ = write!(out, " prefix \"{p}\"");
    }
    for key in ["group", "snaplen", "queue-threshold"] {
        if let Some(v) = body.get(key) {
            let _ = write!(out, " {key} {}", value(v, &[]));
        }
    }
    if let Some(l) = body.get("level").and_then(Value::as_str) {
        let _ = write!(out, " level {l}");
    }
    if let Some(f) = body.get("flags") {
        let _ = write!(out, " flags {}", list(f, ","));
    }
    out
}

fn limit(body: &Value) -> String {
    let over = if inv(body) { "over " } else { "" };
    let per = body.get("per").and_then(Value::as_str).unwrap_or("second");
    let rate = num(body.get("rate"));
    let mut out = match body.get("rate_unit").and_then(Value::as_str) {
        Some(u) if u != "packets" => format!("limit rate {over}{rate} {u}/{per}"),
        _ => format!("limit rate {over}{rate}/{per}"),
    };
    let burst = body.get("burst").and_then(Value::as_u64).unwrap_or(0);
    match body.get("burst_unit").and_then(Value::as_str) {
        Some(u) if burst > 0 => {
            let _ = write!(out, " burst {burst} {u}");
        }
        // nft leaves the default packet burst of 5 out.
        _ if burst > 0 && burst != 5 => {
            let _ = write!(out, " burst {burst} packets");
        }
        _ => {}
    }
    out
}

fn nat(kind: &str, body: &Value) -> String {
    let mut out = kind.to_string();
    if let Some(f) = body.get("family").and_then(Value::as_str) {
        let _ = write!(out, " {f}");
    }
    let addr = body.get("addr").map(|a| value(a, &[])).unwrap_or_default();
    let port = body.get("port").map(|p| format!(":{}", value(p, &[])));
    let _ = write!(out, " to {addr}{}", port.unwrap_or_default());
    if let Some(flags) = body.get("flags") {
        let _ = write!(out, " {}", list(flags, ","));
    }
    out
}

fn list(v: &Value, sep: &str) -> String {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|x| value(x, &[]))
            .collect::<Vec<_>>()
            .join(sep),
        other => value(other, &[]),
    }
}

/// How constants compared with `left` are written, one style per concatenated component.
fn styles_of(left: &Value) -> Vec<Style> {
    match left.get("concat").and_then(Value::as_array) {
        Some(parts) => parts.iter().map(style_of).collect(),
        None => vec![style_of(left)],
    }
}

fn style_of(left: &Value) -> Style {
    let Some((kind, body)) = single(left) else {
        return Style::default();
    };
    let key = body.get("key").and_then(Value::as_str).unwrap_or("");
    match kind {
        "meta" => Style {
            quote: matches!(key, "iif" | "oif") || key.ends_with("name"),
            hex: key == "mark",
        },
        "ct" => Style {
            quote: false,
            hex: key == "mark",
        },
        "&" | "|" | "^" | "<<" | ">>" => body
            .as_array()
            .and_then(|a| a.first())
            .map(style_of)
            .unwrap_or_default(),
        _ => Style::default(),
    }
}

/// A constant, set or map (the right side of a match, a vmap's data).
fn value(v: &Value, styles: &[Style]) -> String {
    let style = styles.first().copied().unwrap_or_default();
    match v {
        Value::String(s) if style.quote && !s.starts_with('@') => format!("\"{s}\""),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_u64() {
            Some(n) if style.hex => format!("0x{n:08x}"),
            _ => n.to_string(),
        },
        Value::Bool(b) => if *b { "exists" } else { "missing" }.to_string(),
        Value::Array(items) => items
            .iter()
            .map(|i| value(i, styles))
            .collect::<Vec<_>>()
            .join(","),
        Value::Null => String::new(),
        Value::Object(_) => {
            let Some((kind, body)) = single(v) else {
                return v.to_string();
            };
            match kind {
                "set" => {
                    let items: Vec<String> = match body {
                        Value::Array(a) => a.iter().map(|e| element(e, styles)).collect(),
                        one => vec![element(one, styles)],
                    };
                    format!("{{ {} }}", items.join(", "))
                }
                "prefix" => format!(
                    "{}/{}",
                    value(body.get("addr").unwrap_or(&Value::Null), &[]),
                    num(body.get("len"))
                ),
                "range" => match body.as_array().map(Vec::as_slice) {
                    Some([lo, hi]) => format!("{}-{}", value(lo, styles), value(hi, styles)),
                    _ => body.to_string(),
                },
                "concat" => body
                    .as_array()
                    .map(|parts| {
                        parts
                            .iter()
                            .enumerate()
                            .map(|(i, p)| value(p, styles.get(i..).unwrap_or(&[])))
                            .collect::<Vec<_>>()
                            .join(" . ")
                    })
                    .unwrap_or_default(),
                "elem" => value(body.get("val").unwrap_or(&Value::Null), styles),
                "accept" | "drop" | "continue" | "return" | "jump" | "goto" => {
                    statement(v, Family::Inet)
                }
                _ => expr(v),
            }
        }
    }
}

/// A set element; map elements are `[key, data]`.
fn element(e: &Value, styles: &[Style]) -> String {
    match e {
        Value::Array(pair) if pair.len() == 2 => {
            format!("{} : {}", value(&pair[0], styles), value(&pair[1], &[]))
        }
        other => value(other, styles),
    }
}

/// An expression read from the packet, as nft writes it (`ip saddr`, `iifname`, `ct state`).
pub(crate) fn expr(v: &Value) -> String {
    let Some((kind, body)) = single(v) else {
        return value(v, &[]);
    };
    let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("");
    match kind {
        "meta" => match s("key") {
            k @ ("iif" | "oif" | "iifname" | "oifname" | "iifgroup" | "oifgroup") => k.to_string(),
            k => format!("meta {k}"),
        },
        "payload" => match body.get("protocol") {
            Some(_) => format!("{} {}", s("protocol"), s("field")),
            None => format!(
                "@{},{},{}",
                s("base"),
                num(body.get("offset")),
                num(body.get("len"))
            ),
        },
        "ct" => {
            let mut out = "ct".to_string();
            if let Some(d) = body.get("dir").and_then(Value::as_str) {
                let _ = write!(out, " {d}");
            }
            if let Some(f) = body.get("family").and_then(Value::as_str) {
                let _ = write!(out, " {f}");
            }
            let _ = write!(out, " {}", s("key"));
            out
        }
        "fib" => format!(
            "fib {} {}",
            body.get("flags")
                .map(|f| list(f, " . "))
                .unwrap_or_default(),
            s("result")
        ),
        "&" | "|" | "^" | "<<" | ">>" => match body.as_array().map(Vec::as_slice) {
            Some([l, r]) => {
                let styles = [style_of(l)];
                let r = match r {
                    Value::Array(flags) => format!(
                        "({})",
                        flags
                            .iter()
                            .map(|f| value(f, &styles))
                            .collect::<Vec<_>>()
                            .join("|")
                    ),
                    r => value(r, &styles),
                };
                format!("{} {kind} {r}", expr(l))
            }
            _ => format!("{kind} {body}"),
        },
        "concat" => body
            .as_array()
            .map(|parts| parts.iter().map(expr).collect::<Vec<_>>().join(" . "))
            .unwrap_or_default(),
        "exthdr" => format!("{} {}", s("name"), s("field"))
            .trim_end()
            .to_string(),
        "tcp option" | "sctp chunk" => format!("{kind} {} {}", s("name"), s("field"))
            .trim_end()
            .to_string(),
        "socket" | "osf" => format!("{kind} {}", s("key")),
        "rt" => format!("rt {} {}", s("family"), s("key")).replace("  ", " "),
        "map" => format!(
            "{} map {}",
            expr(body.get("key").unwrap_or(&Value::Null)),
            value(body.get("data").unwrap_or(&Value::Null), &[])
        ),
        "numgen" => format!("numgen {} mod {}", s("mode"), num(body.get("mod"))),
        "jhash" | "symhash" => format!("{kind} mod {}", num(body.get("mod"))),
        _ if body.is_null() => kind.to_string(),
        _ => format!("{kind} {body}"),
    }
}
