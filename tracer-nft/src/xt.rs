//! The arguments of iptables-nft's extension matches. Rules that iptables-nft writes carry
//! `-m conntrack`, `-m multiport`, `-m addrtype` and the like as `xt` expressions, and
//! `nft -j list ruleset` shows only their names. `iptables-nft-save` prints the whole rule, so
//! this module reads that listing and, before the ruleset is compiled, puts in place of each xt
//! expression it understands the native expression `iptables-translate` would write
//! (`ct state`, `th dport`, `fib daddr type`, `meta mark set`; `-m set` becomes the ipset's
//! members, from `ipset save`, as an anonymous set). The evaluator then decides those rules
//! instead of answering unknown.
//!
//! The two listings are joined by position, so a chain is only touched when they agree on it:
//! the same number of rules, and each xt expression of a rule found, in order, among that
//! rule's `-m` modules (or its `-j` target). Anything else stays an xt expression.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::Family;

/// One `-m NAME ARGS...` module of a saved rule, or its `-j TARGET ARGS...`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Module {
    name: String,
    args: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct SavedRule {
    matches: Vec<Module>,
    target: Option<Module>,
}

/// An ipset of a type whose members are plain addresses or prefixes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct IpSet {
    family: Family,
    /// `10.0.0.1`, `10.0.0.0/8`, `fd00::/64`.
    members: Vec<String>,
}

/// The rules of `iptables-nft-save` and `ip6tables-nft-save`, by family, table and chain, and
/// the ipsets they match.
#[derive(Clone, Debug, Default)]
pub struct SavedRules {
    chains: HashMap<(Family, String, String), Vec<SavedRule>>,
    /// Sets of other types (ports, pairs, lists) or with options this model does not follow
    /// map to `None`: the rules matching them stay unknown.
    ipsets: HashMap<String, Option<IpSet>>,
}

/// The commands read, with the family of their tables.
const SAVE_COMMANDS: [(&str, Family); 2] = [
    ("iptables-nft-save", Family::Ip),
    ("ip6tables-nft-save", Family::Ip6),
];

impl SavedRules {
    /// Runs the iptables-nft save commands in the current network namespace. They only read
    /// (through nftables, never loading a kernel module). A command that is missing or fails
    /// leaves its family out: its xt expressions then stay unknown to the evaluator.
    pub fn read_live() -> SavedRules {
        SavedRules::collect(|argv| {
            let consequence = if argv[0] == "ipset" {
                "rules matching ipsets stay unknown"
            } else {
                "its xt matches stay unknown"
            };
            super::output(argv)
                .map_err(|e| log::info!("{e}; {consequence}"))
                .ok()
        })
    }

    /// The save commands' listings, as `run` returns them for an argument vector (`None`
    /// leaves that listing out): `iptables-nft-save`, `ip6tables-nft-save`, then `ipset save`
    /// only when a rule matches an ipset (then the kernel's ipset module is loaded already,
    /// and asking cannot make the kernel load it).
    pub fn collect(mut run: impl FnMut(&[&str]) -> Option<String>) -> SavedRules {
        let mut saved = SavedRules::default();
        for (command, family) in SAVE_COMMANDS {
            if let Some(listing) = run(&[command]) {
                saved.add(family, &listing);
            }
        }
        if saved.uses_ipsets()
            && let Some(listing) = run(&["ipset", "save"])
        {
            saved.add_ipsets(&listing);
        }
        saved
    }

    /// Some saved rule matches an ipset.
    pub fn uses_ipsets(&self) -> bool {
        self.chains
            .values()
            .flatten()
            .any(|r| r.matches.iter().any(|m| m.name == "set"))
    }

    /// Adds the sets of an `ipset save` listing.
    pub fn add_ipsets(&mut self, listing: &str) {
        for line in listing.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["create", name, kind, options @ ..] => {
                    let family = match options.windows(2).find(|w| w[0] == "family") {
                        Some([_, "inet6"]) => Family::Ip6,
                        _ => Family::Ip,
                    };
                    // Options that change what a member stands for.
                    let plain = matches!(*kind, "hash:ip" | "hash:net")
                        && !options.iter().any(|o| matches!(*o, "netmask" | "bitmask"));
                    self.ipsets.insert(
                        name.to_string(),
                        plain.then(|| IpSet {
                            family,
                            members: Vec::new(),
                        }),
                    );
                }
                ["add", name, member, extra @ ..] => {
                    let Some(entry) = self.ipsets.get_mut(*name) else {
                        continue;
                    };
                    // `nomatch` makes a member an exception to the broader ones: a set is
                    // then more than a list of prefixes.
                    if extra.contains(&"nomatch") {
                        *entry = None;
                    } else if let Some(set) = entry {
                        set.members.push(member.to_string());
                    }
                }
                _ => {}
            }
        }
    }

    /// Adds the rules of one `iptables-save` style listing of that family.
    pub fn add(&mut self, family: Family, listing: &str) {
        let mut table = String::new();
        for line in listing.lines() {
            let line = line.trim();
            if let Some(name) = line.strip_prefix('*') {
                table = name.to_string();
            } else if let Some(rule) = line.strip_prefix("-A ") {
                let words = split_words(rule);
                let Some((chain, rest)) = words.split_first() else {
                    continue;
                };
                self.chains
                    .entry((family, table.clone(), chain.clone()))
                    .or_default()
                    .push(saved_rule(rest));
            }
        }
    }

    /// Replaces, in an `nft -j list ruleset` document, the xt expressions this module can
    /// translate. Returns how many it replaced.
    pub fn resolve(&self, doc: &mut Value) -> usize {
        let Some(items) = doc.get_mut("nftables").and_then(Value::as_array_mut) else {
            return 0;
        };
        // Rules per chain, in listing order (the order of the chain).
        let mut by_chain: HashMap<(Family, String, String), Vec<usize>> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let Some(rule) = item.get("rule") else {
                continue;
            };
            let key = |k: &str| rule.get(k).and_then(Value::as_str).map(str::to_string);
            let (Some(family), Some(table), Some(chain)) =
                (key("family"), key("table"), key("chain"))
            else {
                continue;
            };
            let Some(family) = Family::from_name(&family) else {
                continue;
            };
            by_chain.entry((family, table, chain)).or_default().push(i);
        }
        let mut replaced = 0;
        for (key, at) in by_chain {
            let Some(saved) = self.chains.get(&key) else {
                continue;
            };
            if saved.len() != at.len() {
                log::info!(
                    "chain {} of table {} has {} rules in nft and {} in iptables-nft-save: its xt matches stay unknown",
                    key.2,
                    key.1,
                    at.len(),
                    saved.len()
                );
                continue;
            }
            for (i, saved) in at.into_iter().zip(saved) {
                if let Some(exprs) = items[i]
                    .get_mut("rule")
                    .and_then(|r| r.get_mut("expr"))
                    .and_then(Value::as_array_mut)
                {
                    replaced += self.resolve_rule(exprs, saved);
                }
            }
        }
        replaced
    }
}

impl SavedRules {
    /// Replaces the xt expressions of one rule by their translations, when every xt match of
    /// the rule lines up with a module of the saved rule.
    fn resolve_rule(&self, exprs: &mut Vec<Value>, saved: &SavedRule) -> usize {
        let mut modules = saved.matches.iter();
        let mut plan: Vec<(usize, Option<Vec<Value>>)> = Vec::new();
        for (i, e) in exprs.iter().enumerate() {
            let Some(xt) = e.get("xt") else {
                continue;
            };
            let name = xt.get("name").and_then(Value::as_str).unwrap_or("");
            match xt.get("type").and_then(Value::as_str) {
                Some("match") => {
                    // iptables-nft stores `-m state` as the conntrack match it is an alias of.
                    let Some(m) = modules
                        .by_ref()
                        .find(|m| m.name == name || (name == "conntrack" && m.name == "state"))
                    else {
                        // The listings disagree: leave the whole rule as it is.
                        return 0;
                    };
                    plan.push((i, translate_match(m, &self.ipsets)));
                }
                Some("target") => match &saved.target {
                    Some(t) if t.name == name => plan.push((i, translate_target(t))),
                    _ => return 0,
                },
                _ => {}
            }
        }
        let mut replaced = 0;
        // From the back, so earlier indexes stay valid as one expression becomes several.
        for (i, translation) in plan.into_iter().rev() {
            if let Some(native) = translation {
                exprs.splice(i..=i, native);
                replaced += 1;
            }
        }
        replaced
    }
}

/// The modules and target of the words after `-A CHAIN`.
fn saved_rule(words: &[String]) -> SavedRule {
    let mut rule = SavedRule::default();
    let mut current: Option<(bool, Module)> = None;
    let mut words = words.iter();
    let finish = |rule: &mut SavedRule, current: Option<(bool, Module)>| match current {
        Some((true, m)) => rule.target = Some(m),
        Some((false, m)) => rule.matches.push(m),
        None => {}
    };
    while let Some(w) = words.next() {
        match w.as_str() {
            "-m" | "--match" | "-j" | "--jump" | "-g" | "--goto" => {
                finish(&mut rule, current.take());
                let target = !matches!(w.as_str(), "-m" | "--match");
                let name = words.next().cloned().unwrap_or_default();
                current = Some((
                    target,
                    Module {
                        name,
                        args: Vec::new(),
                    },
                ));
            }
            _ => {
                if let Some((_, m)) = &mut current {
                    m.args.push(w.clone());
                }
            }
        }
    }
    finish(&mut rule, current);
    rule
}

/// Splits a saved rule into words the way iptables-restore does: on blanks, with double
/// quotes grouping (comments) and a backslash escaping the next character inside them.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut in_word) = (false, false);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

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
fn translate_match(m: &Module, ipsets: &HashMap<String, Option<IpSet>>) -> Option<Vec<Value>> {
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
fn translate_target(t: &Module) -> Option<Vec<Value>> {
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

#[cfg(test)]
mod tests;
