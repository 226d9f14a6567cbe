//! Pasted rulesets into the scratch namespace and back: ipsets first (rules name them), then
//! `nft -j` JSON, `nft list ruleset` text table by table, and the iptables listings; what
//! the tools refuse becomes a problem at its line and, for a rule, a gap the verdicts may
//! have met; then the namespace's `nft -j list ruleset` and `iptables-nft-save` are read.

use super::{
    Backend, Collected, EvidenceReport, Ipt, iptables,
    scratch::{self, Line},
};
use crate::model::{
    capture::{Capture, Listing},
    nft::{Family, bounded},
    view::{RuleGap, Unknown},
};

/// Loads the listings into the scratch namespace and reads them back.
pub(super) fn load(
    c: &mut Capture,
    k: &mut Collected,
    scratch: &scratch::Scratch,
    to_load: Vec<Ipt>,
) {
    for text in &k.ipsets {
        if let Err(e) = scratch.ipsets("ipset save", text) {
            c.problems.push(e);
        }
    }
    for (name, text) in &k.json {
        if let Err(e) = scratch.nft_json(name, text) {
            c.problems.push(e);
        }
    }
    for (name, text, at) in std::mem::take(&mut k.nft_text) {
        let (blocks, problems) = blocks(&name, &text);
        c.problems.extend(problems);
        let tables: Vec<String> = blocks
            .iter()
            .filter_map(|b| b.first())
            .map(|l| l.text.trim_end_matches('{').trim().to_string())
            .collect();
        let loaded = scratch.nft_text(&name, blocks);
        let r = &mut k.reports[at];
        r.used.push(format!(
            "{} (loaded with nft into a scratch namespace, read back as JSON)",
            tables.join(", ")
        ));
        if !loaded.dropped.is_empty() {
            r.unused.push(format!(
                "{} lines nft refused (named above)",
                loaded.dropped.len()
            ));
        }
        c.problems.extend(loaded.problems);
    }
    placeholder_sets(c, &k.ipsets, scratch, &to_load);
    let mut tool = None;
    for i in to_load {
        load_iptables(c, &mut k.reports[i.report], scratch, i, &mut tool);
    }
    c.iptables_cmd = tool.filter(|t| *t != "iptables-nft").map(str::to_string);
    let (listed, v4, v6) = scratch.listings();
    c.saved.iptables = v4;
    c.saved.ip6tables = v6;
    c.nft = listed.map(|text| Listing::new(text, "the pasted rules, as nft lists them"));
}

/// Empty sets for the ipsets rules name that the evidence does not define, so the rules
/// load; their members stay unknown (the evaluator gets no listing of them).
fn placeholder_sets(c: &mut Capture, ipsets: &[String], scratch: &scratch::Scratch, ipt: &[Ipt]) {
    for (set, family) in sets_named(ipt) {
        let defined = ipsets.iter().any(|t| {
            t.lines()
                .any(|l| l.starts_with("create ") && l.split_whitespace().nth(1) == Some(&set))
        });
        if defined {
            continue;
        }
        let kind = if family == Family::Ip6 {
            "inet6"
        } else {
            "inet"
        };
        if let Err(e) = scratch.ipsets(
            "placeholder",
            &format!("create {set} hash:net family {kind}\n"),
        ) {
            c.problems.push(e);
        }
        c.unknown.push(Unknown {
            what: format!("the members of ipset {set}"),
            why: "rules match it, and the evidence has no `ipset save`: those rules' verdicts are unknown".into(),
            settle: vec!["ipset save".into()],
        });
    }
}

/// Loads one iptables listing; `tool` becomes the command managing what was loaded.
fn load_iptables(
    c: &mut Capture,
    r: &mut EvidenceReport,
    scratch: &scratch::Scratch,
    mut i: Ipt,
    tool: &mut Option<&'static str>,
) {
    let rules = |lines: &[Line]| lines.iter().filter(|l| l.text.starts_with("-A ")).count();
    let lines = std::mem::take(&mut i.restore.lines);
    let total = rules(&lines);
    let loaded = scratch.iptables(i.family, &i.file, lines);
    r.used.push(format!(
        "{} rules (loaded with iptables-nft-restore into a scratch namespace, read back as JSON)",
        total - rules(&loaded.dropped)
    ));
    r.unused.extend(i.restore.notes.iter().cloned());
    if !i.restore.gaps.is_empty() || !loaded.dropped.is_empty() {
        r.unused.push(format!(
            "{} lines (named above)",
            i.restore.gaps.len() + loaded.dropped.len()
        ));
    }
    c.problems.extend(i.restore.problems);
    c.problems.extend(loaded.problems);
    c.gaps.extend(i.restore.gaps);
    for d in loaded.dropped.iter().filter(|l| l.text.starts_with("-A ")) {
        let chain = d.text.split_whitespace().nth(1).unwrap_or("").to_string();
        c.gaps.push(RuleGap {
            family: i.family,
            table: String::new(),
            base_hook: iptables::builtin_hook(&chain),
            chain,
            place: format!("{}:{}", i.file, d.at.unwrap_or(0)),
            why: "iptables-nft-restore refused it".into(),
            settle: iptables::save_command(i.family).into(),
        });
    }
    *tool = match (*tool, i.backend) {
        (_, Backend::Nft) | (Some("iptables-nft"), _) => Some("iptables-nft"),
        (None | Some("iptables-legacy"), Backend::Legacy) => Some("iptables-legacy"),
        _ => Some("iptables"),
    };
}

/// The ipsets `-m set` rules name, with their family.
fn sets_named(ipt: &[Ipt]) -> Vec<(String, Family)> {
    let mut out: Vec<(String, Family)> = Vec::new();
    for i in ipt {
        for l in &i.restore.lines {
            let words: Vec<&str> = l.text.split_whitespace().collect();
            for w in words.windows(2).filter(|w| w[0] == "--match-set") {
                if !out.iter().any(|(n, _)| n == w[1]) {
                    out.push((w[1].to_string(), i.family));
                }
            }
        }
    }
    out
}

/// `nft list ruleset` text cut into its top-level blocks (tables), each line with its line
/// number; a block cut off at the end is closed, and said.
pub(super) fn blocks(file: &str, text: &str) -> (Vec<Vec<Line>>, Vec<String>) {
    let mut blocks = Vec::new();
    let mut problems = Vec::new();
    let mut current: Vec<Line> = Vec::new();
    let mut depth = 0usize;
    for (i, l) in text.lines().enumerate() {
        let at = i + 1;
        if depth == 0 {
            let t = l.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            if !t.starts_with("table ") {
                problems.push(format!(
                    "{file}:{at}: not inside a table: {} (not used)",
                    bounded(t.to_string())
                ));
                continue;
            }
        }
        depth += l.matches('{').count();
        depth = depth.saturating_sub(l.matches('}').count());
        current.push(Line {
            text: l.to_string(),
            at: Some(at),
        });
        if depth == 0 {
            blocks.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        let first = current[0].at.unwrap_or(0);
        problems.push(format!(
            "{file}:{}: the listing ends inside the table of line {first}: truncated? What it holds up to there is used",
            text.lines().count()
        ));
        for _ in 0..depth {
            current.push(Line {
                text: "}".into(),
                at: None,
            });
        }
        blocks.push(current);
    }
    (blocks, problems)
}
