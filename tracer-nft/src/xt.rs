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

use serde_json::Value;

use super::Family;
use translate::{translate_match, translate_target};

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
    /// The rule as the save listing has it (`-A INPUT -p tcp ... -j DROP`).
    line: String,
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
                let mut saved = saved_rule(rest);
                saved.line = line.to_string();
                self.chains
                    .entry((family, table.clone(), chain.clone()))
                    .or_default()
                    .push(saved);
            }
        }
    }

    /// Gives each rule of an iptables table its saved line, chain by chain where the two
    /// listings have the same number of rules (they are in the same order).
    pub(crate) fn attach_lines(&self, rs: &mut super::Ruleset) {
        for table in &mut rs.tables {
            for chain in &mut table.chains {
                let lines = self.lines(table.family, &table.name, &chain.name);
                if lines.len() == chain.rules.len() {
                    for (rule, line) in chain.rules.iter_mut().zip(lines) {
                        rule.saved = Some(line.to_string());
                    }
                }
            }
        }
    }

    /// The saved rules of one chain, as the listing has them.
    pub(crate) fn lines(&self, family: Family, table: &str, chain: &str) -> Vec<&str> {
        self.chains
            .get(&(family, table.to_string(), chain.to_string()))
            .map(|rules| rules.iter().map(|r| r.line.as_str()).collect())
            .unwrap_or_default()
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

/// Whether an `nft -j list ruleset` listing has a table of iptables (`ip filter`, `ip6 nat`...).
pub(crate) fn has_iptables_tables(listing: &str) -> bool {
    ["filter", "nat", "mangle", "raw", "security"]
        .iter()
        .any(|t| {
            ["ip", "ip6"]
                .iter()
                .any(|f| listing.contains(&format!("\"family\": \"{f}\", \"name\": \"{t}\"")))
        })
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

mod translate;

#[cfg(test)]
mod tests;
