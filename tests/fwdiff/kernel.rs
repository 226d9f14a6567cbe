//! What the kernel did with a probe, read from `nft monitor trace`: the trace of the probe's
//! first packet (matched by addresses, protocol, ports or ICMP id, and for TCP the SYN flag),
//! walked through the base chains of the probe's hook. The first rule with verdict drop
//! refuses it (a reject, when the rule rejects); otherwise the probe passes every base chain,
//! and the deciding rule is the last rule that accepted it, else the last policy that did, as
//! the evaluator defines it.

use std::collections::{HashMap, HashSet};

use tracer::model::nft::{Backend, Hook, Ruleset};

use super::{
    legacy::{self, LegacyEnd},
    node::Sent,
};

/// A rule the kernel named: family, table, chain, handle (0 for a policy), text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleKey {
    pub family: String,
    pub table: String,
    pub chain: String,
    pub handle: u64,
    pub text: String,
    /// A rule (or policy) of iptables-legacy's x_tables, not of nftables.
    pub legacy: bool,
}

impl std::fmt::Display for RuleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let legacy = if self.legacy {
            " (iptables-legacy)"
        } else {
            ""
        };
        write!(
            f,
            "{} {} {}{legacy} #{}: {}",
            self.family, self.table, self.chain, self.handle, self.text
        )
    }
}

/// The kernel's verdict on a probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelVerdict {
    Accept(Option<RuleKey>),
    Drop(RuleKey),
    Reject(RuleKey),
    /// The trace is not complete (yet): why.
    Pending(String),
}

impl KernelVerdict {
    pub fn word(&self) -> &'static str {
        match self {
            KernelVerdict::Accept(_) => "accept",
            KernelVerdict::Drop(_) => "drop",
            KernelVerdict::Reject(_) => "reject",
            KernelVerdict::Pending(_) => "pending",
        }
    }

    pub fn rule(&self) -> Option<&RuleKey> {
        match self {
            KernelVerdict::Accept(r) => r.as_ref(),
            KernelVerdict::Drop(r) | KernelVerdict::Reject(r) => Some(r),
            KernelVerdict::Pending(_) => None,
        }
    }

    pub fn refused(&self) -> bool {
        matches!(self, KernelVerdict::Drop(_) | KernelVerdict::Reject(_))
    }
}

/// What the trace needs of the ruleset in force: the base chains' hooks, and every rule's text
/// (the monitor's own copy goes stale when firewalld reloads).
pub struct Index {
    pub bases: HashMap<(String, String, String), (Hook, i32)>,
    pub texts: HashMap<(String, String, String, u64), String>,
}

impl Index {
    pub fn of(ruleset: &Ruleset) -> Index {
        let mut bases = HashMap::new();
        let mut texts = HashMap::new();
        // nftables' own tables: the legacy ones never show in a trace (see `legacy`).
        for t in ruleset
            .tables
            .iter()
            .filter(|t| t.backend != Backend::IptablesLegacy)
        {
            for c in &t.chains {
                let key = (t.family.to_string(), t.name.clone(), c.name.clone());
                if let Some(b) = &c.base {
                    bases.insert(key.clone(), (b.hook, b.priority));
                }
                for r in &c.rules {
                    texts.insert(
                        (key.0.clone(), key.1.clone(), key.2.clone(), r.handle),
                        r.text.clone(),
                    );
                }
            }
        }
        Index { bases, texts }
    }
}

/// One trace line: id, family, table, chain, and the rest.
struct Line<'a> {
    id: &'a str,
    family: &'a str,
    table: &'a str,
    chain: &'a str,
    rest: &'a str,
}

fn parse(l: &str) -> Option<Line<'_>> {
    let rest = l.strip_prefix("trace id ")?;
    let mut it = rest.splitn(5, ' ');
    Some(Line {
        id: it.next()?,
        family: it.next()?,
        table: it.next()?,
        chain: it.next()?,
        rest: it.next()?,
    })
}

/// The value after `key` in a packet line (`saddr 10.1.0.2`).
fn after<'a>(words: &[&'a str], key: &[&str]) -> Option<&'a str> {
    words
        .windows(key.len() + 1)
        .find(|w| w[..key.len()] == *key)
        .map(|w| w[key.len()])
}

/// Whether a trace's `packet:` line is the probe's first packet.
fn is_probe(rest: &str, s: &Sent) -> bool {
    let w: Vec<&str> = rest.split_whitespace().collect();
    let p = &s.probe;
    let ok = after(&w, &["ip", "saddr"]) == Some(&p.saddr.to_string())
        && after(&w, &["ip", "daddr"]) == Some(&p.daddr.to_string());
    ok && match p.proto {
        6 => {
            after(&w, &["tcp", "sport"]) == Some(&s.sport.to_string())
                && after(&w, &["tcp", "dport"]) == Some(&p.dport.to_string())
                && rest.contains("tcp flags == syn ")
        }
        17 => {
            after(&w, &["udp", "sport"]) == Some(&s.sport.to_string())
                && after(&w, &["udp", "dport"]) == Some(&p.dport.to_string())
        }
        _ => {
            after(&w, &["icmp", "type"]) == Some("echo-request")
                && after(&w, &["icmp", "id"]) == Some(&s.sport.to_string())
        }
    }
}

/// The verdict on a probe that passed every nftables base chain it had to: refused by the
/// legacy chain, or accepted by the last rule (else policy) that accepted it, the legacy
/// chain's at its priority among the others.
fn passed_all(
    mut last_rule: Option<(RuleKey, i32)>,
    mut last_policy: Option<(RuleKey, i32)>,
    legacy: Option<&LegacyEnd>,
) -> KernelVerdict {
    let before =
        |last: &Option<(RuleKey, i32)>| last.as_ref().is_none_or(|(_, p)| *p < legacy::PRIORITY);
    match legacy {
        Some(LegacyEnd::Refused(k, true)) => return KernelVerdict::Reject(k.clone()),
        Some(LegacyEnd::Refused(k, false)) => return KernelVerdict::Drop(k.clone()),
        Some(LegacyEnd::Accepted(k)) if k.handle != 0 && before(&last_rule) => {
            last_rule = Some((k.clone(), legacy::PRIORITY));
        }
        Some(LegacyEnd::Accepted(k)) if k.handle == 0 && before(&last_policy) => {
            last_policy = Some((k.clone(), legacy::PRIORITY));
        }
        _ => {}
    }
    KernelVerdict::Accept(last_rule.or(last_policy).map(|(k, _)| k))
}

/// `rule TEXT # handle N (verdict V)` of a rule line, or `unknown rule handle N (verdict V)`
/// when the monitor's copy of the ruleset predates a reload: (text, handle, verdict); the text
/// is empty in the second form.
fn rule_parts(rest: &str) -> Option<(String, u64, String)> {
    let (text, tail) = if let Some(t) = rest.strip_prefix("unknown rule handle ") {
        (String::new(), t)
    } else {
        let (text, tail) = rest.strip_prefix("rule ")?.rsplit_once(" # handle ")?;
        (text.to_string(), tail)
    };
    let (handle, verdict) = tail.split_once(" (verdict ")?;
    let verdict = verdict.trim_end().strip_suffix(')')?;
    Some((text, handle.trim().parse().ok()?, verdict.to_string()))
}

/// What the kernel did with `s`, from the trace `lines` so far and, when the node has
/// iptables-legacy rules, what the legacy chain of its hook did with it (see [`legacy`]): that
/// chain runs at its priority among the nftables base chains, so when it refuses the probe only
/// the chains before it must have passed it, and when it accepts it, its accepting rule decides
/// unless an nftables rule after it accepts too.
pub fn judge_trace(
    lines: &[String],
    s: &Sent,
    index: &Index,
    legacy: Option<&LegacyEnd>,
) -> KernelVerdict {
    let hooks = &index.bases;
    let hook = if s.probe.forward {
        Hook::Forward
    } else {
        Hook::Input
    };
    let parsed: Vec<Line> = lines.iter().filter_map(|l| parse(l)).collect();
    let Some(id) = parsed
        .iter()
        .find(|l| l.rest.starts_with("packet: ") && is_probe(l.rest, s))
        .map(|l| l.id)
    else {
        return KernelVerdict::Pending("no trace of the probe".into());
    };
    // The base chains the probe must pass at its hook (IPv4: inet and ip tables).
    let refused_before = matches!(legacy, Some(LegacyEnd::Refused(..)));
    let bases: HashSet<(String, String, String)> = hooks
        .iter()
        .filter(|((family, _, _), (h, prio))| {
            *h == hook
                && (family == "inet" || family == "ip")
                && !(refused_before && *prio >= legacy::PRIORITY)
        })
        .map(|(k, _)| k.clone())
        .collect();
    let mut passed: HashSet<(String, String, String)> = HashSet::new();
    let mut current: Option<(String, String, String)> = None;
    // Each with the priority of its base chain.
    let mut last_rule: Option<(RuleKey, i32)> = None;
    let mut last_policy: Option<(RuleKey, i32)> = None;
    for l in parsed.iter().filter(|l| l.id == id) {
        let key = (
            l.family.to_string(),
            l.table.to_string(),
            l.chain.to_string(),
        );
        if l.rest.starts_with("packet: ") {
            current = bases.contains(&key).then_some(key);
            continue;
        }
        let Some(base) = current.clone() else {
            continue;
        };
        let prio = hooks.get(&base).map_or(0, |(_, p)| *p);
        let at = |handle, text: &str| RuleKey {
            family: l.family.to_string(),
            table: l.table.to_string(),
            chain: l.chain.to_string(),
            handle,
            text: text.to_string(),
            legacy: false,
        };
        if let Some(policy) = l.rest.trim_end().strip_prefix("policy ") {
            let k = at(0, &format!("policy {policy}"));
            if policy == "drop" {
                return KernelVerdict::Drop(k);
            }
            last_policy = Some((k, prio));
            passed.insert(base);
        } else if let Some((text, handle, verdict)) = rule_parts(l.rest) {
            let text = index
                .texts
                .get(&(key.0.clone(), key.1.clone(), key.2.clone(), handle))
                .cloned()
                .unwrap_or(text);
            match verdict.as_str() {
                "drop" if text.to_lowercase().contains("reject") => {
                    return KernelVerdict::Reject(at(handle, &text));
                }
                "drop" => return KernelVerdict::Drop(at(handle, &text)),
                "accept" => {
                    last_rule = Some((at(handle, &text), prio));
                    passed.insert(base);
                }
                _ => {}
            }
        }
    }
    if passed.len() == bases.len() {
        passed_all(last_rule, last_policy, legacy)
    } else {
        let trace: Vec<&str> = parsed
            .iter()
            .filter(|l| l.id == id)
            .map(|l| l.rest)
            .collect();
        KernelVerdict::Pending(format!(
            "the probe passed {} of the {} base chains of its hook so far: {bases:?} {passed:?}\n{}",
            passed.len(),
            bases.len(),
            trace.join("\n")
        ))
    }
}
