//! iptables-legacy's tables (x_tables) as tables of the evaluator. The kernel runs them at the
//! same hooks as nftables, with iptables' priorities (raw -300, mangle -150, filter 0, security
//! 50), and `nft list ruleset` never shows them. Restored with `iptables-nft-restore` into a
//! scratch network namespace and listed back with `nft -j list ruleset` (the caller does that:
//! this crate runs nothing in a namespace), a save listing becomes the same rules in nftables'
//! form, each extension match an `xt` expression [`SavedRules`] translates. Here those tables
//! are marked [`Backend::IptablesLegacy`] and each rule takes back its place in the legacy
//! table: its number in the chain as its handle, its saved text as its text, so a verdict
//! names the rule an operator finds with `iptables-legacy -S` or `-L --line-numbers`.

use crate::{Backend, Family, Ruleset, RulesetError, SavedRules, Table};

/// Why a save listing could not become evaluator tables.
#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    /// The restored listing does not parse.
    #[error(transparent)]
    Ruleset(#[from] RulesetError),
    /// A chain of the restored listing has another number of rules than the save listing: the
    /// two cannot be matched rule by rule.
    #[error(
        "{origin}: chain {chain} of table {table} has {listed} rules restored but {saved} saved"
    )]
    Mismatch {
        origin: String,
        table: String,
        chain: String,
        listed: usize,
        saved: usize,
    },
}

/// The tables of `listing` (`nft -j list ruleset` of a scratch namespace into which the save
/// listing behind `saved` was restored), as legacy tables of `family`.
pub fn legacy_tables(
    listing: &str,
    origin: &str,
    family: Family,
    saved: &SavedRules,
) -> Result<Vec<Table>, LegacyError> {
    let ruleset = Ruleset::from_json_with_saved(listing, origin, saved)?;
    let mut tables = Vec::new();
    for mut table in ruleset.tables.into_iter().filter(|t| t.family == family) {
        table.backend = Backend::IptablesLegacy;
        // The order of legacy and nftables chains of equal priority is not in any listing;
        // handle 0 puts the legacy ones after the nftables ones of the same priority.
        table.handle = 0;
        for chain in &mut table.chains {
            let lines = saved.lines(family, &table.name, &chain.name);
            if lines.len() != chain.rules.len() {
                return Err(LegacyError::Mismatch {
                    origin: crate::bounded(origin.to_string()),
                    table: table.name.clone(),
                    chain: chain.name.clone(),
                    listed: chain.rules.len(),
                    saved: lines.len(),
                });
            }
            for (number, (rule, line)) in chain.rules.iter_mut().zip(lines).enumerate() {
                rule.handle = number as u64 + 1;
                rule.text = line.to_string();
            }
        }
        tables.push(table);
    }
    Ok(tables)
}
