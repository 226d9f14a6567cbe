//! The native expressions `iptables-translate` writes for iptables-nft's extension matches
//! and targets (`ct state`, `th dport`, `fib daddr type`, `meta mark set`, an ipset's members
//! as an anonymous set), built from the modules of a saved rule. A module this does not know,
//! or one whose arguments it cannot follow, is left untranslated (`None`).

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{IpSet, Module};

/// The options of a module: `(negated, option, value)` for each `[!] --option value`. Options
/// without a value (`--limit-iface-in`) get an empty one.
fn options(args: &[String]) -> Vec<(bool, &str, &str)> {
    let mut out = Vec::new();
    let mut negated = false;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "!" {
            negated = true;
        } else if a.starts_with("--") {
            let value = args
                .get(i + 1)
                .map(String::as_str)
                .filter(|v| !v.starts_with("--") && *v != "!");
            if value.is_some() {
                i += 1;
            }
            out.push((negated, a, value.unwrap_or("")));
            negated = false;
        }
        i += 1;
    }
    out
}

/// `field OP value` as nft JSON.
fn native_match(op: &str, left: &Value, right: &Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

/// One value, or a JSON list of them (the form of flag values: `ct state a,b`).
fn one_or_list(values: Vec<Value>) -> Value {
    match <[Value; 1]>::try_from(values) {
        Ok([v]) => v,
        Err(values) => Value::Array(values),
    }
}

/// One value, or an anonymous set of them.
fn one_or_set(values: Vec<Value>) -> Value {
    match one_or_list(values) {
        Value::Array(values) => json!({ "set": values }),
        v => v,
    }
}

/// The native form of one `-m` module, when every option of it has one; `ipsets` are the
/// sets `-m set` may name.
pub(super) fn translate_match(
    m: &Module,
    ipsets: &HashMap<String, Option<IpSet>>,
) -> Option<Vec<Value>> {
    let opts = options(&m.args);
    let mut out = Vec::new();
    match m.name.as_str() {
        "comment" => {}
        "set" => out.push(set_match(&m.args, ipsets)?),
        "conntrack" | "state" => {
            for (negated, opt, value) in opts {
                if !matches!(opt, "--ctstate" | "--state") {
                    return None;
                }
                let states = value
                    .split(',')
                    .map(|s| match s {
                        "NEW" | "ESTABLISHED" | "RELATED" | "INVALID" | "UNTRACKED" => {
                            Some(Value::from(s.to_ascii_lowercase()))
                        }
                        // SNAT and DNAT are not conntrack states but NAT facts.
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?;
                let op = match (negated, states.len()) {
                    (false, _) => "in",
                    (true, 1) => "!=",
                    (true, _) => "!",
                };
                out.push(native_match(
                    op,
                    &json!({"ct": {"key": "state"}}),
                    &one_or_list(states),
                ));
            }
        }
        "multiport" => {
            for (negated, opt, value) in opts {
                let field = match opt {
                    "--dports" | "--destination-ports" => "dport",
                    "--sports" | "--source-ports" => "sport",
                    // `--ports` matches either side: no single field says that.
                    _ => return None,
                };
                let ports = value
                    .split(',')
                    .map(|p| match p.split_once(':') {
                        Some((lo, hi)) => Some(
                            json!({"range": [lo.parse::<u16>().ok()?, hi.parse::<u16>().ok()?]}),
                        ),
                        None => p.parse::<u16>().ok().map(Value::from),
                    })
                    .collect::<Option<Vec<_>>>()?;
                out.push(native_match(
                    if negated { "!=" } else { "==" },
                    &json!({"payload": {"protocol": "th", "field": field}}),
                    &one_or_set(ports),
                ));
            }
        }
        "addrtype" => {
            let limit_in = opts.iter().any(|o| o.1 == "--limit-iface-in");
            let limit_out = opts.iter().any(|o| o.1 == "--limit-iface-out");
            for (negated, opt, value) in opts {
                let side = match opt {
                    "--src-type" => "saddr",
                    "--dst-type" => "daddr",
                    "--limit-iface-in" | "--limit-iface-out" => continue,
                    _ => return None,
                };
                let mut flags = vec![side];
                if limit_in {
                    flags.push("iif");
                }
                if limit_out {
                    flags.push("oif");
                }
                let types: Vec<Value> = value
                    .split(',')
                    .map(|t| Value::from(t.to_ascii_lowercase()))
                    .collect();
                out.push(native_match(
                    if negated { "!=" } else { "==" },
                    &json!({"fib": {"result": "type", "flags": flags}}),
                    &one_or_set(types),
                ));
            }
        }
        _ => return None,
    }
    Some(out)
}

/// `-m set [!] --match-set NAME src|dst` as a match of the address against the set's
/// members; other directions (`src,dst`) and options have no single-field form.
fn set_match(args: &[String], ipsets: &HashMap<String, Option<IpSet>>) -> Option<Value> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (negated, name, dir) = match args.as_slice() {
        ["--match-set", name, dir] => (false, *name, *dir),
        ["!", "--match-set", name, dir] => (true, *name, *dir),
        _ => return None,
    };
    let set = ipsets.get(name)?.as_ref()?;
    let field = match dir {
        "src" => "saddr",
        "dst" => "daddr",
        _ => return None,
    };
    // An ipset's family is ip or ip6 (`add_ipsets`), the payload protocol of its addresses.
    let protocol = set.family.name();
    let members = set
        .members
        .iter()
        .map(|m| match m.split_once('/') {
            Some((addr, len)) => {
                Some(json!({"prefix": {"addr": addr, "len": len.parse::<u8>().ok()?}}))
            }
            None => Some(Value::from(m.as_str())),
        })
        .collect::<Option<Vec<_>>>()?;
    Some(native_match(
        if negated { "!=" } else { "==" },
        &json!({"payload": {"protocol": protocol, "field": field}}),
        &json!({ "set": members }),
    ))
}

/// The native form of a `-j` target: MARK, whose new mark the listing otherwise hides.
pub(super) fn translate_target(t: &Module) -> Option<Vec<Value>> {
    if t.name != "MARK" {
        return None;
    }
    let [(false, "--set-xmark", value)] = options(&t.args)[..] else {
        return None;
    };
    let number = |s: &str| match s.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse::<u32>().ok(),
    };
    let (value, mask) = match value.split_once('/') {
        Some((v, m)) => (number(v)?, number(m)?),
        None => (number(value)?, u32::MAX),
    };
    // --set-xmark value/mask: clear the mask's bits, then xor in the value.
    let mark = json!({"meta": {"key": "mark"}});
    Some(vec![json!({"mangle": {
        "key": mark,
        "value": {"^": [{"&": [mark, !mask]}, value]},
    }})])
}
