//! JSON statements and expressions to their typed form ([`Stmt`], [`Expr`]). Runs once per rule
//! at parse time: constants are converted with the type of the field they meet, chain and set
//! names become indexes. Anything unfamiliar is kept (as [`Expr::Unsupported`] or
//! [`Stmt::Unknown`]) for the evaluator to report, never dropped; only a reference to a chain
//! or set the listing lacks is an error, since a real listing cannot contain one.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{
    Family, StructureError,
    expr::{
        BinOp, ChainRef, CtDir, CtKey, Element, Expr, FibQuery, Field, Key, L4, MapData, Match,
        MetaKey, Op, Rhs, SetSource, Stmt, VerdictStmt, XtKind,
    },
    render,
    types::{self, Ty},
};

/// What a rule of one table can refer to.
pub(crate) struct Scope<'a> {
    /// Chain name to index in the table.
    pub chains: &'a HashMap<String, usize>,
    /// Set name to index in the table and key types.
    pub sets: &'a HashMap<String, (usize, Vec<Ty>)>,
    /// The table's family.
    pub family: Family,
}

/// The single `{"name": body}` of a JSON statement or expression.
pub(crate) fn single(v: &Value) -> Option<(&str, &Value)> {
    let o = v.as_object()?;
    if o.len() != 1 {
        return None;
    }
    o.iter().next().map(|(k, v)| (k.as_str(), v))
}

/// One JSON statement.
pub(crate) fn statement(v: &Value, scope: &Scope) -> Result<Stmt, StructureError> {
    let Some((kind, body)) = single(v) else {
        return Ok(Stmt::Unknown {
            kind: v.to_string(),
        });
    };
    Ok(match kind {
        "match" => Stmt::Match(matcher(body, scope)?),
        "accept" | "drop" | "continue" | "return" | "jump" | "goto" => {
            Stmt::Verdict(verdict(v, scope)?)
        }
        "vmap" => {
            let key = expr(body.get("key").unwrap_or(&Value::Null));
            let tys = Ty::of(&key);
            let data = body.get("data").unwrap_or(&Value::Null);
            let map = match data {
                Value::String(s) if s.starts_with('@') => named_set(s, scope)?,
                _ => match data.get("set") {
                    Some(elems) => SetSource::Anonymous(elements(elems, &tys, true, scope)?),
                    None => {
                        return Ok(Stmt::Unknown {
                            kind: "vmap".into(),
                        });
                    }
                },
            };
            Stmt::Vmap { key, map }
        }
        "reject" => {
            // In inet tables nft makes `reject with icmp ...` IPv4-only and `icmpv6` IPv6-only
            // with a dependency the listing does not show. Without a type the reject is the
            // family's default, icmpx in these families.
            let ty = body.get("type").and_then(Value::as_str);
            let only = match (scope.family, ty.and_then(|t| t.split(' ').next())) {
                (Family::Inet | Family::Bridge | Family::Netdev, Some("icmp")) => Some(Family::Ip),
                (Family::Inet | Family::Bridge | Family::Netdev, Some("icmpv6")) => {
                    Some(Family::Ip6)
                }
                _ => None,
            };
            Stmt::Reject { only }
        }
        "mangle" => {
            let key = expr(body.get("key").unwrap_or(&Value::Null));
            let value = expr(body.get("value").unwrap_or(&Value::Null));
            match key {
                Expr::Meta(MetaKey::Mark) => Stmt::SetMark(value),
                Expr::Ct {
                    key: CtKey::Mark, ..
                } => Stmt::SetCtMark(value),
                // Fields the evaluator never reads (dscp, priority, labels...): later matches
                // on them are unknown anyway, so setting them changes nothing it answers.
                Expr::Meta(MetaKey::Other(_))
                | Expr::Payload(Field::Other { .. })
                | Expr::Ct {
                    key: CtKey::Other(_),
                    ..
                }
                | Expr::Unsupported(_) => Stmt::NoEffect,
                _ => Stmt::Unknown {
                    kind: format!("mangle of {}", render::expr(&body["key"])),
                },
            }
        }
        "counter" | "log" | "notrack" | "ct helper" | "ct timeout" | "ct expectation" | "dup" => {
            Stmt::NoEffect
        }
        "limit" | "quota" | "ct count" => Stmt::Limit {
            over: body.get("inv").and_then(Value::as_bool).unwrap_or(false),
        },
        // Dynamic set updates change later packets' lookups, not this packet's path, unless
        // they carry a limit (a meter), which then filters like one.
        "set" | "meter" => match inner_limit(body) {
            Some(over) => Stmt::Limit { over },
            None => Stmt::NoEffect,
        },
        "dnat" | "snat" | "masquerade" | "redirect" => Stmt::Nat,
        "xt" => {
            let name = body.get("name").and_then(Value::as_str).unwrap_or("?");
            let xt = |kind| Stmt::Xt {
                kind,
                name: name.to_string(),
            };
            match (body.get("type").and_then(Value::as_str), name) {
                // ebtables watchers (log, nflog) only look.
                (Some("watcher"), _) => Stmt::NoEffect,
                (Some("target"), "REJECT") => Stmt::Reject { only: None },
                (Some("target"), "LOG" | "NFLOG" | "CT" | "NOTRACK" | "TRACE" | "AUDIT") => {
                    Stmt::NoEffect
                }
                (Some("target"), _) => xt(XtKind::Target),
                (_, "comment") => Stmt::NoEffect,
                _ => xt(XtKind::Match),
            }
        }
        _ => Stmt::Unknown {
            kind: kind.to_string(),
        },
    })
}

/// The `inv` flag of a limit, quota or ct count nested in a set or meter statement.
fn inner_limit(body: &Value) -> Option<bool> {
    let stmts: Vec<&Value> = match body.get("stmt") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return None,
    };
    stmts.iter().find_map(|s| {
        let (kind, b) = single(s)?;
        matches!(kind, "limit" | "quota" | "ct count")
            .then(|| b.get("inv").and_then(Value::as_bool).unwrap_or(false))
    })
}

fn matcher(body: &Value, scope: &Scope) -> Result<Match, StructureError> {
    let left = expr(body.get("left").unwrap_or(&Value::Null));
    let op = match body.get("op").and_then(Value::as_str).unwrap_or("==") {
        "==" => Op::Eq,
        "!=" => Op::Ne,
        "<" => Op::Lt,
        ">" => Op::Gt,
        "<=" => Op::Le,
        ">=" => Op::Ge,
        "in" => Op::AnyBit,
        "!" => Op::NoBit,
        other => {
            return Ok(Match {
                left: Expr::Unsupported(format!("operator {other}")),
                op: Op::Eq,
                right: Rhs::Value(vec![]),
            });
        }
    };
    let tys = Ty::of(&left);
    let right = rhs(body.get("right").unwrap_or(&Value::Null), &tys, scope)?;
    Ok(Match { left, op, right })
}

fn rhs(v: &Value, tys: &[Ty], scope: &Scope) -> Result<Rhs, StructureError> {
    if let Value::String(s) = v
        && s.starts_with('@')
    {
        return Ok(Rhs::Set(named_set(s, scope)?));
    }
    if let Some(elems) = v.get("set") {
        return Ok(Rhs::Set(SetSource::Anonymous(elements(
            elems, tys, false, scope,
        )?)));
    }
    Ok(Rhs::Value(key(v, tys)))
}

fn named_set(reference: &str, scope: &Scope) -> Result<SetSource, StructureError> {
    let name = &reference[1..];
    match scope.sets.get(name) {
        Some((index, _)) => Ok(SetSource::Named {
            index: *index,
            name: name.to_string(),
        }),
        None => Err(StructureError::UnknownSet(reference.to_string())),
    }
}

/// A key: one pattern per concatenated component.
pub(crate) fn key(v: &Value, tys: &[Ty]) -> Key {
    // Elements with a timeout or comment come wrapped: `{"elem": {"val": ..., ...}}`.
    if let Some(val) = v.get("elem").and_then(|e| e.get("val")) {
        return key(val, tys);
    }
    let ty = |i: usize| tys.get(i).copied().unwrap_or(Ty::Unknown);
    match v.get("concat").and_then(Value::as_array) {
        Some(parts) => parts
            .iter()
            .enumerate()
            .map(|(i, p)| types::pattern(p, ty(i)))
            .collect(),
        None => vec![types::pattern(v, ty(0))],
    }
}

/// The elements of a set or map; map elements are `[key, data]` pairs, whose data are
/// verdicts when `verdict_map`.
pub(crate) fn elements(
    v: &Value,
    tys: &[Ty],
    verdict_map: bool,
    scope: &Scope,
) -> Result<Vec<Element>, StructureError> {
    let one;
    let items: &[Value] = match v {
        Value::Array(a) => a,
        other => {
            one = [other.clone()];
            &one
        }
    };
    items
        .iter()
        .map(|item| match item {
            Value::Array(pair) if pair.len() == 2 => Ok(Element {
                key: key(&pair[0], tys),
                data: Some(if verdict_map {
                    MapData::Verdict(verdict(&pair[1], scope)?)
                } else {
                    MapData::Value(types::pattern(&pair[1], Ty::Unknown))
                }),
            }),
            _ => Ok(Element {
                key: key(item, tys),
                data: None,
            }),
        })
        .collect()
}

/// A verdict statement or verdict map data.
pub(crate) fn verdict(v: &Value, scope: &Scope) -> Result<VerdictStmt, StructureError> {
    let Some((kind, body)) = single(v) else {
        return Err(StructureError::NotAVerdict(v.to_string()));
    };
    let target = || -> Result<ChainRef, StructureError> {
        let name = body
            .get("target")
            .and_then(Value::as_str)
            .ok_or_else(|| StructureError::NoTarget(kind.to_string()))?;
        match scope.chains.get(name) {
            Some(index) => Ok(ChainRef {
                name: name.to_string(),
                index: *index,
            }),
            None => Err(StructureError::UnknownChain {
                kind: kind.to_string(),
                chain: name.to_string(),
            }),
        }
    };
    Ok(match kind {
        "accept" => VerdictStmt::Accept,
        "drop" => VerdictStmt::Drop,
        "continue" => VerdictStmt::Continue,
        "return" => VerdictStmt::Return,
        "jump" => VerdictStmt::Jump(target()?),
        "goto" => VerdictStmt::Goto(target()?),
        _ => return Err(StructureError::NotAVerdict(v.to_string())),
    })
}

/// One JSON expression (the left side of a match, a vmap key, a mangle value).
pub(crate) fn expr(v: &Value) -> Expr {
    let unsupported = || Expr::Unsupported(render::expr(v));
    match v {
        Value::Number(n) => {
            return n
                .as_u64()
                .map_or_else(unsupported, |n| Expr::Const(n.into()));
        }
        Value::Bool(b) => return Expr::Const(u128::from(*b)),
        _ => {}
    }
    let Some((kind, body)) = single(v) else {
        return unsupported();
    };
    let str_of = |o: &Value, k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
    match kind {
        "meta" => match str_of(body, "key") {
            Some(k) => Expr::Meta(meta_key(&k)),
            None => unsupported(),
        },
        "payload" => match (str_of(body, "protocol"), str_of(body, "field")) {
            (Some(p), Some(f)) => Expr::Payload(field(p, f)),
            _ => unsupported(),
        },
        "ct" => ct(body).unwrap_or_else(unsupported),
        "fib" => fib(body, v),
        "&" | "|" | "^" | "<<" | ">>" => binop(kind, body).unwrap_or_else(unsupported),
        "concat" => match body.as_array() {
            Some(parts) => Expr::Concat(parts.iter().map(expr).collect()),
            None => unsupported(),
        },
        _ => unsupported(),
    }
}

fn meta_key(k: &str) -> MetaKey {
    match k {
        "l4proto" => MetaKey::L4proto,
        "protocol" => MetaKey::Protocol,
        "nfproto" => MetaKey::Nfproto,
        "mark" => MetaKey::Mark,
        "iif" => MetaKey::Iif,
        "oif" => MetaKey::Oif,
        "iifname" => MetaKey::Iifname,
        "oifname" => MetaKey::Oifname,
        "pkttype" => MetaKey::Pkttype,
        other => MetaKey::Other(other.to_string()),
    }
}

fn field(protocol: String, field: String) -> Field {
    match (protocol.as_str(), field.as_str(), L4::from_name(&protocol)) {
        (_, "sport", Some(l4)) => Field::Sport(l4),
        (_, "dport", Some(l4)) => Field::Dport(l4),
        ("ip", "saddr", _) => Field::IpSaddr,
        ("ip", "daddr", _) => Field::IpDaddr,
        ("ip", "protocol", _) => Field::IpProtocol,
        ("ip6", "saddr", _) => Field::Ip6Saddr,
        ("ip6", "daddr", _) => Field::Ip6Daddr,
        ("ip6", "nexthdr", _) => Field::Ip6Nexthdr,
        ("icmp", "type", _) => Field::IcmpType,
        ("icmpv6", "type", _) => Field::Icmpv6Type,
        _ => Field::Other { protocol, field },
    }
}

fn ct(body: &Value) -> Option<Expr> {
    let raw = body.get("key")?.as_str()?;
    let dir = match body.get("dir").and_then(Value::as_str) {
        Some("original") => Some(CtDir::Original),
        Some("reply") => Some(CtDir::Reply),
        Some(_) => return None,
        None => None,
    };
    // nft 1.0 writes `"key": "ip saddr"`; older listings a separate `"family"`.
    let (family, key) = match raw.split_once(' ') {
        Some((f, k)) => (Family::from_name(f), k),
        None => (
            body.get("family")
                .and_then(Value::as_str)
                .and_then(Family::from_name),
            raw,
        ),
    };
    let key = match key {
        "state" => CtKey::State,
        "status" => CtKey::Status,
        "mark" => CtKey::Mark,
        "direction" => CtKey::Direction,
        "l3proto" => CtKey::L3proto,
        "protocol" => CtKey::Protocol,
        "saddr" => CtKey::Saddr,
        "daddr" => CtKey::Daddr,
        "proto-src" => CtKey::ProtoSrc,
        "proto-dst" => CtKey::ProtoDst,
        other => CtKey::Other(other.to_string()),
    };
    Some(Expr::Ct { key, dir, family })
}

fn fib(body: &Value, whole: &Value) -> Expr {
    let flags: Vec<&str> = match body.get("flags") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let result = body.get("result").and_then(Value::as_str);
    if result == Some("type") && flags.contains(&"daddr") && !flags.contains(&"saddr") {
        Expr::Fib(FibQuery::DaddrType)
    } else {
        Expr::Fib(FibQuery::Other(render::expr(whole)))
    }
}

fn binop(kind: &str, body: &Value) -> Option<Expr> {
    let [left, right] = body.as_array()?.as_slice() else {
        return None;
    };
    let left = expr(left);
    let ty = Ty::of(&left).first().copied().unwrap_or(Ty::Unknown);
    let right = types::number(right, ty).ok()?;
    let op = match kind {
        "&" => BinOp::And,
        "|" => BinOp::Or,
        "^" => BinOp::Xor,
        "<<" => BinOp::Shl,
        _ => BinOp::Shr,
    };
    Some(Expr::Binop {
        op,
        left: Box::new(left),
        right,
    })
}

/// The statements of a rule, failing on the first dangling reference.
pub(crate) fn statements(exprs: &[Value], scope: &Scope) -> Result<Vec<Stmt>, StructureError> {
    exprs.iter().map(|e| statement(e, scope)).collect()
}

/// An object's string field.
pub(crate) fn get_str<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k).and_then(Value::as_str)
}
