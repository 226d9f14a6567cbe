//! Reading `nft -j list ruleset` output into a [`Ruleset`]. The listing is flat (tables, then
//! sets, chains and rules naming their table and chain), so it is read in passes: tables, then
//! chains, then sets (verdict maps name chains), then rules (which name chains and sets).
//! Objects the model has no use for (counters, flowtables, quotas) are skipped.

use std::collections::HashMap;

use crate::json::JsonError;
use serde_json::{Map, Value};

use super::{
    BaseChain, Chain, Family, Hook, Policy, Rule, Ruleset, RulesetError, Set, StructureError,
    Table,
    compile::{self, Scope, get_str},
    render,
    types::Ty,
    xt::SavedRules,
};

/// Parses the listing; `origin` names it in errors.
pub(crate) fn ruleset(
    text: &str,
    origin: &str,
    saved: Option<&SavedRules>,
) -> Result<Ruleset, RulesetError> {
    let mut doc: Value = serde_json::from_str(text).map_err(|e| JsonError::new(origin, &e))?;
    if let Some(saved) = saved {
        let n = saved.resolve(&mut doc);
        log::debug!("{n} xt expressions of {origin} translated from iptables-nft-save");
    }
    let structure = |error: StructureError| RulesetError::Structure {
        origin: crate::bounded(origin.to_string()),
        error,
    };
    let items = doc
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| structure(StructureError::NotAListing))?;
    let mut rs = Reader::default().read(items).map_err(structure)?;
    if let Some(saved) = saved {
        saved.attach_lines(&mut rs);
    }
    Ok(rs)
}

/// The ruleset read so far, and the name maps of its tables.
#[derive(Default)]
struct Reader {
    rs: Ruleset,
    tables: HashMap<(Family, String), TableIndex>,
}

impl Reader {
    /// Reads the listing's objects in passes, each needing what the ones before it read.
    fn read(mut self, items: &[Value]) -> Result<Ruleset, StructureError> {
        for (kind, o) in objects(items) {
            if kind == "table" {
                self.table(o)?;
            }
        }
        for (kind, o) in objects(items) {
            if kind == "chain" {
                self.chain(o)?;
            }
        }
        // Set types first, so that a map's verdicts and a set's references can be resolved in
        // any listing order.
        for (kind, o) in objects(items) {
            if kind == "set" || kind == "map" {
                self.set(kind, o)?;
            }
        }
        for (kind, o) in objects(items) {
            if kind == "set" || kind == "map" {
                self.set_elements(kind, o)?;
            }
        }
        for (kind, o) in objects(items) {
            if kind == "rule" {
                self.rule(o)?;
            }
        }
        Ok(self.rs)
    }

    fn table(&mut self, o: &Map<String, Value>) -> Result<(), StructureError> {
        let family = family(o)?;
        let name = required_str(o, "name", "table")?;
        let handle = o.get("handle").and_then(Value::as_u64).unwrap_or(0);
        self.tables.insert(
            (family, name.to_string()),
            TableIndex {
                at: self.rs.tables.len(),
                ..TableIndex::default()
            },
        );
        self.rs.tables.push(Table {
            backend: crate::Backend::Nftables,
            family,
            name: name.to_string(),
            handle,
            chains: vec![],
            sets: vec![],
        });
        Ok(())
    }

    fn chain(&mut self, o: &Map<String, Value>) -> Result<(), StructureError> {
        let (idx, table) = self.owner(o, "chain")?;
        let name = required_str(o, "name", "chain")?;
        let base =
            base_chain(o).map_err(|e| e.within(format!("chain {} {name}", table_name(table))))?;
        idx.chains.insert(name.to_string(), table.chains.len());
        table.chains.push(Chain {
            name: name.to_string(),
            handle: o.get("handle").and_then(Value::as_u64).unwrap_or(0),
            base,
            rules: vec![],
        });
        Ok(())
    }

    /// A set or map (`kind`) without its elements.
    fn set(&mut self, kind: &str, o: &Map<String, Value>) -> Result<(), StructureError> {
        let (idx, table) = self.owner(o, kind)?;
        let name = required_str(o, "name", kind)?;
        let key_types = strings(o.get("type"));
        let tys = key_types.iter().map(|t| Ty::from_set_type(t)).collect();
        idx.sets.insert(name.to_string(), (table.sets.len(), tys));
        table.sets.push(Set {
            name: name.to_string(),
            handle: o.get("handle").and_then(Value::as_u64).unwrap_or(0),
            key_types,
            is_map: kind == "map",
            data_type: get_str(o, "map").map(str::to_string),
            flags: strings(o.get("flags")),
            elements: vec![],
        });
        Ok(())
    }

    /// The elements of a set or map (`kind`) that [`Reader::set`] read.
    fn set_elements(&mut self, kind: &str, o: &Map<String, Value>) -> Result<(), StructureError> {
        let (idx, table) = self.owner(o, kind)?;
        let name = required_str(o, "name", kind)?;
        let Some(elems) = o.get("elem") else {
            return Ok(());
        };
        let (at, tys) = &idx.sets[name];
        let scope = Scope {
            chains: &idx.chains,
            sets: &idx.sets,
            family: table.family,
        };
        let verdicts = table.sets[*at].data_type.as_deref() == Some("verdict");
        let elements = compile::elements(elems, tys, verdicts, &scope)
            .map_err(|e| e.within(format!("{kind} {} {name}", table_name(table))))?;
        table.sets[*at].elements = elements;
        Ok(())
    }

    fn rule(&mut self, o: &Map<String, Value>) -> Result<(), StructureError> {
        let (idx, table) = self.owner(o, "rule")?;
        let chain_name = required_str(o, "chain", "rule")?;
        let handle = o.get("handle").and_then(Value::as_u64).unwrap_or(0);
        let place = format!(
            "rule handle {handle} in {} chain {chain_name}",
            table_name(table)
        );
        let at = *idx
            .chains
            .get(chain_name)
            .ok_or_else(|| StructureError::NoSuchChain.within(&place))?;
        let exprs = o
            .get("expr")
            .and_then(Value::as_array)
            .ok_or_else(|| StructureError::NoExpressions.within(&place))?;
        let scope = Scope {
            chains: &idx.chains,
            sets: &idx.sets,
            family: table.family,
        };
        let statements = compile::statements(exprs, &scope).map_err(|e| e.within(&place))?;
        let comment = get_str(o, "comment").map(str::to_string);
        table.chains[at].rules.push(Rule {
            handle,
            text: render::rule(exprs, comment.as_deref(), table.family),
            comment,
            saved: None,
            statements,
        });
        Ok(())
    }

    /// The table an object belongs to, and its name maps.
    fn owner(
        &mut self,
        o: &Map<String, Value>,
        what: &str,
    ) -> Result<(&mut TableIndex, &mut Table), StructureError> {
        let family = family(o)?;
        let name = required_str(o, "table", what)?;
        let idx = self
            .tables
            .get_mut(&(family, name.to_string()))
            .ok_or_else(|| StructureError::UnknownTable {
                what: what.to_string(),
                table: format!("{family} {name}"),
            })?;
        let table = &mut self.rs.tables[idx.at];
        Ok((idx, table))
    }
}

/// Name-to-index maps of one table, used while reading.
#[derive(Default)]
struct TableIndex {
    at: usize,
    chains: HashMap<String, usize>,
    sets: HashMap<String, (usize, Vec<Ty>)>,
}

/// The `(kind, body)` of each listing object, e.g. `("rule", {...})`.
fn objects(items: &[Value]) -> impl Iterator<Item = (&str, &Map<String, Value>)> {
    items.iter().filter_map(|item| {
        let (kind, body) = compile::single(item)?;
        Some((kind, body.as_object()?))
    })
}

fn family(o: &Map<String, Value>) -> Result<Family, StructureError> {
    let name = required_str(o, "family", "object")?;
    Family::from_name(name).ok_or_else(|| StructureError::UnknownFamily(name.to_string()))
}

fn required_str<'a>(
    o: &'a Map<String, Value>,
    key: &'static str,
    what: &str,
) -> Result<&'a str, StructureError> {
    get_str(o, key).ok_or_else(|| StructureError::MissingField {
        what: what.to_string(),
        key,
        object: Value::from(o.clone()).to_string(),
    })
}

fn table_name(t: &Table) -> String {
    format!("{} {}", t.family, t.name)
}

fn base_chain(o: &Map<String, Value>) -> Result<Option<BaseChain>, StructureError> {
    let Some(hook) = get_str(o, "hook") else {
        return Ok(None);
    };
    let hook =
        Hook::from_name(hook).ok_or_else(|| StructureError::UnknownHook(hook.to_string()))?;
    let priority = o
        .get("prio")
        .and_then(Value::as_i64)
        .and_then(|p| i32::try_from(p).ok())
        .ok_or(StructureError::NoPriority)?;
    let policy = match get_str(o, "policy") {
        None | Some("accept") => Policy::Accept,
        Some("drop") => Policy::Drop,
        Some(other) => return Err(StructureError::UnknownPolicy(other.to_string())),
    };
    Ok(Some(BaseChain {
        kind: get_str(o, "type").unwrap_or("filter").to_string(),
        hook,
        priority,
        policy,
    }))
}

/// A string, or the strings of an array (a set's `type`, its `flags`).
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    }
}
