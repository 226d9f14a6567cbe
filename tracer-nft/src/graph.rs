//! The jump graph of a table: which chains each chain can jump or go to (its rules' `jump`
//! and `goto`, and the verdicts of the verdict maps they look up). The kernel refuses a ruleset
//! whose graph has a cycle, so a listing of a real node has none; a hand-made one might, and
//! that is the only way an evaluation can run forever. The evaluator asks here when it has
//! visited an implausible number of rules, to tell a loop from a ruleset that is merely large.

use crate::{MapData, SetSource, Stmt, Table, VerdictStmt};

/// The chains a rule of `chain` can continue in, by index into the table's chains.
fn successors(table: &Table, chain: usize) -> Vec<usize> {
    let target = |v: &VerdictStmt| match v {
        VerdictStmt::Jump(c) | VerdictStmt::Goto(c) => Some(c.index),
        _ => None,
    };
    let mut next = Vec::new();
    for stmt in table.chains[chain].rules.iter().flat_map(|r| &r.statements) {
        match stmt {
            Stmt::Verdict(v) => next.extend(target(v)),
            Stmt::Vmap { map, .. } => {
                let elements = match map {
                    SetSource::Anonymous(elements) => elements,
                    SetSource::Named { index, .. } => &table.sets[*index].elements,
                };
                next.extend(elements.iter().filter_map(|e| match &e.data {
                    Some(MapData::Verdict(v)) => target(v),
                    _ => None,
                }));
            }
            _ => {}
        }
    }
    next
}

/// A cycle of the table's jump graph, as chain names from its first chain back to it; `None`
/// when the graph has none (every ruleset the kernel loaded).
pub fn cycle(table: &Table) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let n = table.chains.len();
    let mut mark = vec![Mark::New; n];
    // An iterative depth-first search: (chain, its successors, the next one to visit).
    for start in 0..n {
        if mark[start] != Mark::New {
            continue;
        }
        let mut path: Vec<(usize, Vec<usize>, usize)> = vec![(start, successors(table, start), 0)];
        mark[start] = Mark::OnPath;
        while let Some((chain, next, i)) = path.last_mut() {
            let Some(&to) = next.get(*i) else {
                mark[*chain] = Mark::Done;
                path.pop();
                continue;
            };
            *i += 1;
            match mark[to] {
                Mark::OnPath => {
                    let from = path.iter().position(|(c, _, _)| *c == to).unwrap_or(0);
                    let mut names: Vec<String> = path[from..]
                        .iter()
                        .map(|(c, _, _)| table.chains[*c].name.clone())
                        .collect();
                    names.push(table.chains[to].name.clone());
                    return Some(names);
                }
                Mark::New => {
                    mark[to] = Mark::OnPath;
                    path.push((to, successors(table, to), 0));
                }
                Mark::Done => {}
            }
        }
    }
    None
}
