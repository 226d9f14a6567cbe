//! The node's iptables-legacy rules (x_tables), which the kernel runs at the same hooks as
//! nftables and `nft list ruleset` never shows: a component that programs iptables in legacy
//! mode beside an nftables firewalld (the mismatch the k0s guide warns about) drops packets
//! the nftables ruleset alone would accept. Their save listings are read only when the kernel
//! already has legacy tables (/proc/net/ip_tables_names, ip6_tables_names): asking otherwise
//! would make it load x_tables modules. To evaluate them, a listing is restored with
//! `iptables-nft-restore` into a scratch network namespace (nameless, gone with the thread
//! that made it) and listed back as nftables JSON; [`tracer_nft::legacy_tables`] turns that into
//! tables of the evaluator that name each rule as `iptables-legacy` does.

use std::{io::Write, process::Command};

use super::{
    iptables::LegacyListings,
    nft::{Family, SavedRules, Table, legacy_tables},
};

/// Save listings of the legacy tables the kernel has, per family.
#[derive(Clone, Debug, Default)]
pub struct LegacySaves {
    /// `iptables-legacy-save`, when the kernel has IPv4 legacy tables.
    pub v4: Option<String>,
    /// `ip6tables-legacy-save`, when it has IPv6 ones.
    pub v6: Option<String>,
}

impl From<&LegacyListings> for LegacySaves {
    /// The listings a capture holds; a family without tables has none.
    fn from(l: &LegacyListings) -> Self {
        let some = |t: &str| (!t.trim().is_empty()).then(|| t.to_string());
        LegacySaves {
            v4: some(&l.v4),
            v6: some(&l.v6),
        }
    }
}

impl LegacySaves {
    /// The save listings with the family of their tables.
    pub fn listings(&self) -> impl Iterator<Item = (Family, &str)> {
        [(Family::Ip, &self.v4), (Family::Ip6, &self.v6)]
            .into_iter()
            .filter_map(|(f, text)| Some((f, text.as_deref()?)))
    }

    /// The chain names of every table (`filter/KUBE-FORWARD`), to tell who programs them.
    pub fn chains(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (_, text) in self.listings() {
            let mut table = "";
            for line in text.lines() {
                if let Some(t) = line.strip_prefix('*') {
                    table = t.trim();
                } else if let Some(name) = line
                    .strip_prefix(':')
                    .and_then(|c| c.split_whitespace().next())
                {
                    out.push(format!("{table}/{name}"));
                }
            }
        }
        out
    }

    /// Whether any legacy table holds a rule or a policy other than ACCEPT: something that can
    /// refuse a packet.
    pub fn can_refuse(&self) -> bool {
        !self.active_chains().is_empty()
    }

    /// The legacy chains that hold rules or a policy other than ACCEPT, as `table/CHAIN (N
    /// rules)` or `table/CHAIN (policy DROP)`, with who programs them when the name tells.
    pub fn active_chains(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (_, text) in self.listings() {
            let mut table = "";
            let mut chains: Vec<(String, Option<String>, usize)> = Vec::new();
            for line in text.lines() {
                if let Some(t) = line.strip_prefix('*') {
                    table = t.trim();
                } else if let Some(c) = line.strip_prefix(':') {
                    let mut words = c.split_whitespace();
                    let name = words.next().unwrap_or_default();
                    let policy = words.next().filter(|p| *p != "ACCEPT" && *p != "-");
                    chains.push((format!("{table}/{name}"), policy.map(str::to_string), 0));
                } else if let Some(rule) = line.strip_prefix("-A ") {
                    let name = format!("{table}/{}", rule.split_whitespace().next().unwrap_or(""));
                    if let Some(c) = chains.iter_mut().find(|c| c.0 == name) {
                        c.2 += 1;
                    }
                }
            }
            for (name, policy, rules) in chains {
                let mut what = Vec::new();
                if let Some(p) = policy {
                    what.push(format!("policy {p}"));
                }
                if rules > 0 {
                    what.push(if rules == 1 {
                        "1 rule".to_string()
                    } else {
                        format!("{rules} rules")
                    });
                }
                if !what.is_empty() {
                    out.push(format!("{name} ({})", what.join(", ")));
                }
            }
        }
        out
    }
}

impl LegacySaves {
    /// Adds the legacy tables that can refuse a packet to `ruleset`, saying so in `sources`;
    /// when they cannot be evaluated, the problem says which drops stay unexplained. `ipsets`
    /// is the node's `ipset save`, for rules that name a set.
    pub fn merge_into(
        &self,
        ruleset: Option<&mut super::nft::Ruleset>,
        ipsets: Option<&str>,
        sources: &mut Vec<String>,
        problems: &mut Vec<String>,
    ) {
        let Some(rs) = ruleset.filter(|_| self.can_refuse()) else {
            return;
        };
        match tables(self, ipsets) {
            Ok(tables) => {
                let n = tables.len();
                sources.push(format!(
                    "iptables-legacy: {n} {} beside nftables",
                    if n == 1 { "table" } else { "tables" }
                ));
                rs.tables.extend(tables);
            }
            Err(e) => problems.push(format!(
                "iptables-legacy rules could not be evaluated: {e} (drops by them are not explained)"
            )),
        }
    }
}

/// Why the legacy rules could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum LegacyReadError {
    #[error(transparent)]
    Scratch(#[from] tracer_netns::Error),
    #[error("{command}: {message}")]
    Command { command: String, message: String },
    #[error(transparent)]
    Listing(#[from] super::nft::LegacyError),
}

/// The legacy tables as tables of the evaluator, with the ipsets `-m set` matches name.
pub fn tables(saves: &LegacySaves, ipsets: Option<&str>) -> Result<Vec<Table>, LegacyReadError> {
    let mut out = Vec::new();
    for (family, text) in saves.listings() {
        let (restore, origin) = match family {
            Family::Ip6 => ("ip6tables-nft-restore", "ip6tables-legacy-save"),
            _ => ("iptables-nft-restore", "iptables-legacy-save"),
        };
        let listing = tracer_netns::run_in_scratch(|| restored(restore, text))??;
        let mut saved = SavedRules::default();
        saved.add(family, text);
        if let Some(sets) = ipsets {
            saved.add_ipsets(sets);
        }
        out.extend(legacy_tables(&listing, origin, family, &saved)?);
    }
    Ok(out)
}

/// In the calling thread's (scratch) namespace: restores `text` with `restore` and lists the
/// result as nftables JSON.
fn restored(restore: &str, text: &str) -> Result<String, LegacyReadError> {
    let failed = |command: &str, message: String| LegacyReadError::Command {
        command: command.to_string(),
        message,
    };
    let mut child = Command::new(restore)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| failed(restore, e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| failed(restore, e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(restore, e.to_string()))?;
    if !out.status.success() {
        return Err(failed(
            restore,
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let listed = Command::new("nft")
        .args(["-j", "list", "ruleset"])
        .output()
        .map_err(|e| failed("nft -j list ruleset", e.to_string()))?;
    if !listed.status.success() {
        return Err(failed(
            "nft -j list ruleset",
            String::from_utf8_lossy(&listed.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&listed.stdout).into_owned())
}
