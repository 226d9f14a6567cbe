//! An offline nftables evaluator: what a ruleset does to a described packet, and which rule
//! decides. [`Ruleset`] is read from `nft -j list ruleset` (tables, base chains with hook,
//! priority and policy, rules, named sets and maps); every rule keeps the text an operator
//! would read and a typed form ([`Stmt`]) compiled once at parse time, with constants converted
//! to the type of the field they are compared with and chain and set references resolved to
//! indexes. [`evaluate`] walks a [`Packet`] through the base chains of its hook the way the
//! kernel's nf_tables core does and names the rule that decides, answering
//! [`Verdict::Unknown`] rather than guessing whenever a part it cannot evaluate (an
//! iptables-nft `xt` extension that `iptables-nft-save` does not explain, a header field the
//! packet description lacks) could change the outcome. Rules written by iptables-nft are
//! evaluated too, their extension matches read from `iptables-nft-save` ([`SavedRules`]).
//! It only reads: nothing here changes a ruleset.
//!
//! ```
//! use tracer_nft::{Hook, Packet, Ruleset, Verdict, evaluate};
//!
//! let listing = r#"{"nftables": [
//!   {"table": {"family": "inet", "name": "filter", "handle": 1}},
//!   {"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 1,
//!              "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
//!   {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 2,
//!             "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "udp",
//!                      "field": "dport"}}, "right": 4789}}, {"accept": null}]}}
//! ]}"#;
//! let ruleset = Ruleset::from_json(listing, "example.json").unwrap();
//! let vxlan = Packet::new_connection(
//!     Hook::Input, "eth0", "192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap(),
//!     17, 40000, 4789,
//! );
//! let outcome = evaluate(&ruleset, &vxlan);
//! assert_eq!(outcome.verdict, Verdict::Accept);
//! assert_eq!(outcome.deciding.unwrap().text, "udp dport 4789 accept");
//!
//! let other = Packet { dport: 8472, ..vxlan };
//! assert_eq!(evaluate(&ruleset, &other).verdict, Verdict::Drop);
//! ```

mod compile;
mod eval;
mod expr;
mod fields;
mod graph;
mod legacy;
mod matching;
mod order;
mod packet;
mod parse;
mod render;
mod types;
mod verdict;
mod xt;

pub mod json;

#[cfg(test)]
mod tests;

use std::{
    fmt::{self, Write as _},
    process::Command,
};

pub use eval::{Assume, Outcome, RuleRef, Verdict, evaluate, evaluate_assuming};
pub use expr::{
    ChainRef, CtDir, CtKey, Element, Expr, FibQuery, Field, Key, L4, MapData, Match, MetaKey, Op,
    Pattern, Rhs, SetSource, Stmt, VerdictStmt, XtKind,
};
pub use json::JsonError;
pub use legacy::{LegacyError, legacy_tables};
pub use packet::{CtState, Packet};
pub use xt::SavedRules;

/// An nftables address family: which packets a table's chains see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 only.
    Ip,
    /// IPv6 only.
    Ip6,
    /// IPv4 and IPv6 (firewalld's table).
    Inet,
    /// ARP packets; not evaluated.
    Arp,
    /// Bridged frames; not evaluated.
    Bridge,
    /// Per-device ingress/egress; not evaluated.
    Netdev,
}

impl Family {
    /// The family named as nft names it (`ip`, `ip6`, `inet`, ...).
    pub fn from_name(name: &str) -> Option<Family> {
        Some(match name {
            "ip" => Family::Ip,
            "ip6" => Family::Ip6,
            "inet" => Family::Inet,
            "arp" => Family::Arp,
            "bridge" => Family::Bridge,
            "netdev" => Family::Netdev,
            _ => return None,
        })
    }

    /// The name nft uses for the family.
    pub fn name(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
            Family::Arp => "arp",
            Family::Bridge => "bridge",
            Family::Netdev => "netdev",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A netfilter hook a base chain is registered on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    /// Every packet arriving, before routing.
    Prerouting,
    /// Packets addressed to the node itself.
    Input,
    /// Packets the node routes from one interface to another.
    Forward,
    /// Packets the node sends.
    Output,
    /// Every packet leaving, after routing.
    Postrouting,
    /// Per-device ingress (netdev, or inet since Linux 5.10).
    Ingress,
    /// Per-device egress (netdev).
    Egress,
}

impl Hook {
    /// The hook named as nft names it (`input`, `forward`, ...).
    pub fn from_name(name: &str) -> Option<Hook> {
        Some(match name {
            "prerouting" => Hook::Prerouting,
            "input" => Hook::Input,
            "forward" => Hook::Forward,
            "output" => Hook::Output,
            "postrouting" => Hook::Postrouting,
            "ingress" => Hook::Ingress,
            "egress" => Hook::Egress,
            _ => return None,
        })
    }

    /// The name nft uses for the hook.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
            Hook::Ingress => "ingress",
            Hook::Egress => "egress",
        }
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a base chain does with a packet that reaches its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Let it continue to the next base chain.
    Accept,
    /// Drop it.
    Drop,
}

/// The whole ruleset of a network namespace.
#[derive(Clone, Debug, Default)]
pub struct Ruleset {
    /// Tables in listing order.
    pub tables: Vec<Table>,
}

/// Which part of netfilter holds a table: nftables (what `nft list ruleset` shows, iptables-nft's
/// tables included), or the legacy x_tables of `iptables-legacy`, which the kernel runs at the
/// same hooks beside nftables and `nft` never shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Backend {
    #[default]
    Nftables,
    /// x_tables, listed by `iptables-legacy-save` (IPv4) or `ip6tables-legacy-save` (IPv6).
    /// Rule handles are rule numbers within their chain, texts the saved rule.
    IptablesLegacy,
}

impl Backend {
    /// The command that lists and changes the tables of this backend and family.
    pub fn command(self, family: Family) -> &'static str {
        match (self, family) {
            (Backend::IptablesLegacy, Family::Ip6) => "ip6tables-legacy",
            (Backend::IptablesLegacy, _) => "iptables-legacy",
            (Backend::Nftables, _) => "nft",
        }
    }
}

/// One table: chains and named sets sharing a family and a name.
#[derive(Clone, Debug)]
pub struct Table {
    /// Where the table lives: nftables, or legacy iptables beside it.
    pub backend: Backend,
    /// Which packets the table's chains see.
    pub family: Family,
    /// The table's name, e.g. `firewalld`.
    pub name: String,
    /// The kernel's handle for the table.
    pub handle: u64,
    /// Chains in listing order; jump targets index into this.
    pub chains: Vec<Chain>,
    /// Named sets and maps; set references index into this.
    pub sets: Vec<Set>,
}

/// A chain: a base chain registered on a hook, or a regular chain reached by jump or goto.
#[derive(Clone, Debug)]
pub struct Chain {
    /// The chain's name.
    pub name: String,
    /// The kernel's handle for the chain.
    pub handle: u64,
    /// Hook, priority and policy when this is a base chain.
    pub base: Option<BaseChain>,
    /// Rules in the order the kernel evaluates them.
    pub rules: Vec<Rule>,
}

/// What makes a chain a base chain.
#[derive(Clone, Debug, PartialEq)]
pub struct BaseChain {
    /// `filter`, `nat` or `route`.
    pub kind: String,
    /// The hook it is registered on.
    pub hook: Hook,
    /// Lower runs first (`filter` is 0, firewalld uses `filter + 10`).
    pub priority: i32,
    /// What happens at the end of the chain.
    pub policy: Policy,
}

/// One rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The kernel's handle for the rule (`nft -a list ruleset` shows it).
    pub handle: u64,
    /// The rule in nft syntax, as `nft -s list ruleset` prints it (stateless: counters show
    /// as `counter`, without their values).
    pub text: String,
    /// The rule's comment, if any.
    pub comment: Option<String>,
    /// The rule as `iptables-save` prints it (`-A INPUT -p tcp ... -j DROP`), for a rule of
    /// an iptables table whose save listing was given: how an operator changes it.
    pub saved: Option<String>,
    /// The typed statements the evaluator runs.
    pub statements: Vec<Stmt>,
}

/// A named set or map of a table.
#[derive(Clone, Debug)]
pub struct Set {
    /// The set's name (rules refer to it as `@name`).
    pub name: String,
    /// The kernel's handle for the set.
    pub handle: u64,
    /// The key's data types, one per concatenated component (`ipv4_addr`, `inet_service`, ...).
    pub key_types: Vec<String>,
    /// True for maps (`type KEY : DATA`), including verdict maps.
    pub is_map: bool,
    /// A map's data type (`verdict` for verdict maps).
    pub data_type: Option<String>,
    /// Flags such as `interval` or `timeout`.
    pub flags: Vec<String>,
    /// The elements, typed like the key (and data, for maps).
    pub elements: Vec<Element>,
}

/// Why a ruleset could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RulesetError {
    /// The text is not JSON.
    #[error(transparent)]
    Json(#[from] json::JsonError),
    /// The JSON is not an nft ruleset listing (missing fields, dangling references). The
    /// message quotes what it found, cut to a few hundred bytes however large that was.
    #[error("{origin}: {message}", message = bounded(.error.to_string()))]
    Structure {
        /// The file or command the text came from.
        origin: String,
        /// What is wrong.
        error: StructureError,
    },
    /// `nft` (or another command reading the ruleset) could not be started.
    #[error("running `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why it could not start.
        #[source]
        source: std::io::Error,
    },
    /// `nft` (or another command reading the ruleset) ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
}

/// Messages quote values from the input they are about, and an input can hold values of any
/// size, so a message is cut at this many bytes, saying how much was left out.
pub const MESSAGE_MAX: usize = 400;

/// `text`, cut to [`MESSAGE_MAX`] bytes (at a character boundary) with a note of what was cut:
/// for every message that quotes outside input (this crate's, and its users' readers of other
/// files).
pub fn bounded(mut text: String) -> String {
    if text.len() > MESSAGE_MAX {
        let cut = (0..=MESSAGE_MAX)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        let rest = text.len() - cut;
        text.truncate(cut);
        let _ = write!(text, "... ({rest} more bytes)");
    }
    text
}

/// What makes JSON not an nft ruleset listing: a missing field, an unknown name, or a
/// reference to a table, chain or set the listing lacks (which a real listing cannot hold).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StructureError {
    #[error("not an nft listing: no top-level \"nftables\" array")]
    NotAListing,
    /// An object lacks a field it must have; `object` is its JSON.
    #[error("{what} without a \"{key}\": {object}")]
    MissingField {
        what: String,
        key: &'static str,
        object: String,
    },
    #[error("unknown family {0:?}")]
    UnknownFamily(String),
    /// A chain, set or rule of a table the listing lacks.
    #[error("{what} of table {table}, which the listing lacks")]
    UnknownTable { what: String, table: String },
    #[error("unknown hook {0:?}")]
    UnknownHook(String),
    #[error("base chain without a numeric \"prio\"")]
    NoPriority,
    #[error("unknown policy {0:?}")]
    UnknownPolicy(String),
    /// A rule of a chain the listing lacks.
    #[error("no such chain")]
    NoSuchChain,
    #[error("no \"expr\" array")]
    NoExpressions,
    /// `@NAME` naming a set the table lacks.
    #[error("refers to set {0}, which the listing lacks")]
    UnknownSet(String),
    /// A verdict statement or verdict-map value that is none; the JSON is given.
    #[error("{0} is not a verdict")]
    NotAVerdict(String),
    /// A `jump` or `goto` without a target.
    #[error("{0} without a target")]
    NoTarget(String),
    #[error("{kind} to chain {chain:?}, which the listing lacks")]
    UnknownChain { kind: String, chain: String },
    /// What is wrong inside a chain, set, map or rule (`place` names it).
    #[error("{place}: {error}")]
    In {
        place: String,
        error: Box<StructureError>,
    },
}

impl StructureError {
    /// This error, inside `place`.
    pub(crate) fn within(self, place: impl Into<String>) -> StructureError {
        StructureError::In {
            place: place.into(),
            error: Box::new(self),
        }
    }
}

/// The command [`Ruleset::read_live`] runs, also the source name of its errors.
const LIVE_COMMAND: &str = "nft -j list ruleset";

impl Ruleset {
    /// Parses `nft -j list ruleset` output; `source` names it in errors (a file path or "nft -j
    /// list ruleset"). Expressions and statements this model does not know are kept as unknown
    /// (the evaluator answers [`Verdict::Unknown`] when they matter), never rejected.
    pub fn from_json(text: &str, source: &str) -> Result<Ruleset, RulesetError> {
        parse::ruleset(text, source, None)
    }

    /// Like [`Ruleset::from_json`], with the arguments of iptables-nft's `xt` expressions taken
    /// from `iptables-nft-save` listings, so that the rules using them can be evaluated.
    pub fn from_json_with_saved(
        text: &str,
        source: &str,
        saved: &SavedRules,
    ) -> Result<Ruleset, RulesetError> {
        parse::ruleset(text, source, Some(saved))
    }

    /// Runs `nft -j list ruleset` in the current network namespace.
    pub fn read_live() -> Result<Ruleset, RulesetError> {
        let argv: Vec<&str> = LIVE_COMMAND.split(' ').collect();
        let text = output(&argv)?;
        // iptables-nft's extension matches show only their names in the listing, and its rules
        // are changed in iptables' syntax: iptables-nft-save gives both, read when the listing
        // has tables of iptables (it only reads nftables: no module gets loaded).
        if text.contains("\"xt\"") || xt::has_iptables_tables(&text) {
            return Ruleset::from_json_with_saved(&text, LIVE_COMMAND, &SavedRules::read_live());
        }
        Ruleset::from_json(&text, LIVE_COMMAND)
    }

    /// The table of that family and name.
    pub fn table(&self, family: Family, name: &str) -> Option<&Table> {
        self.tables
            .iter()
            .find(|t| t.family == family && t.name == name)
    }

    /// The number of rules in all chains of all tables.
    pub fn rule_count(&self) -> usize {
        self.tables
            .iter()
            .flat_map(|t| &t.chains)
            .map(|c| c.rules.len())
            .sum()
    }
}

/// Runs `argv` (in the current network namespace) and returns what it printed on stdout; the
/// errors name the command line.
pub(crate) fn output(argv: &[&str]) -> Result<String, RulesetError> {
    let command = || argv.join(" ");
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|source| RulesetError::Spawn {
            command: command(),
            source,
        })?;
    if !out.status.success() {
        return Err(RulesetError::Command {
            command: command(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Table {
    /// The chain of that name.
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    /// The named set or map of that name.
    pub fn set(&self, name: &str) -> Option<&Set> {
        self.sets.iter().find(|s| s.name == name)
    }
}
