//! The rows each panel lists, filtered and sorted as the user asked, and the details of the
//! selected flow or finding: the full cause and fix, each command on a line of its own so it
//! can be copied as it is.

use std::{cmp::Reverse, time::Duration};

use super::state::{Data, DropRow, Panel, Row, Sort, View};
use crate::{
    events::Direction,
    findings::Finding,
    output::{
        findings::finding_lines,
        flows::{Group, cause_lines},
    },
};

/// A line of the traffic panel: an interface and direction, or one of its classes.
pub enum TrafficItem<'a> {
    Heading {
        iface: &'a str,
        direction: &'static str,
        pps: f64,
    },
    Class(&'a Row),
}

/// What the panels list now.
pub struct Items<'a> {
    pub traffic: Vec<TrafficItem<'a>>,
    pub drops: Vec<&'a DropRow>,
    pub housekeeping: Vec<&'a DropRow>,
    pub drops_on: bool,
    pub flows: Vec<Group<'a>>,
    pub open: Vec<&'a Finding>,
    pub resolved: Vec<(&'a Finding, Duration)>,
    pub diagnosing: bool,
}

impl<'a> Items<'a> {
    /// The lists of `data` as `view` filters and sorts them.
    pub fn of(data: &'a Data, view: &View) -> Items<'a> {
        let mut traffic = Vec::new();
        // Interfaces in the order they were given, ingress before egress.
        let mut groups: Vec<(&str, Direction)> = Vec::new();
        for r in &data.rows {
            let g = (r.entry.iface.as_str(), r.entry.direction);
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        for (iface, direction) in groups {
            let mut rows: Vec<&Row> = data
                .rows
                .iter()
                .filter(|r| r.entry.iface == iface && r.entry.direction == direction)
                .filter(|r| r.entry.packets > 0)
                .filter(|r| view.shows(&[&r.entry.iface, &r.entry.class]))
                .collect();
            if rows.is_empty() {
                continue;
            }
            match view.sort {
                Sort::Rate => rows.sort_by(|a, b| b.pps.total_cmp(&a.pps)),
                Sort::Total => rows.sort_by_key(|r| Reverse(r.entry.packets)),
                Sort::Name => rows.sort_by(|a, b| a.entry.class.cmp(&b.entry.class)),
            }
            traffic.push(TrafficItem::Heading {
                iface,
                direction: direction.as_str(),
                pps: rows.iter().filter(|r| !r.entry.inner).map(|r| r.pps).sum(),
            });
            traffic.extend(rows.into_iter().map(TrafficItem::Class));
        }
        let shown = |r: &&DropRow| view.shows(&[&r.total.iface, &r.total.class]);
        let all: Vec<&DropRow> = data.drops.iter().flatten().filter(shown).collect();
        let (housekeeping, mut drops): (Vec<&DropRow>, Vec<&DropRow>) = all
            .into_iter()
            .partition(|r| r.total.reason.is_housekeeping());
        match view.sort {
            Sort::Rate => drops.sort_by(|a, b| b.per_sec.total_cmp(&a.per_sec)),
            Sort::Total => drops.sort_by_key(|r| Reverse(r.total.count)),
            Sort::Name => drops.sort_by(|a, b| a.total.class.cmp(&b.total.class)),
        }
        let mut flows: Vec<Group> = data
            .book
            .groups()
            .into_iter()
            .filter(|g| !g.is_housekeeping())
            .filter(|g| view.filter.is_empty() || g.matches(&view.filter))
            .collect();
        match view.sort {
            Sort::Rate => flows.sort_by_key(|g| Reverse(g.recent)),
            Sort::Total => {}
            Sort::Name => flows.sort_by(|a, b| a.first().class.cmp(&b.first().class)),
        }
        let finding_shown = |f: &&Finding| {
            view.shows(&[
                f.class.as_deref().unwrap_or(""),
                f.iface.as_deref().unwrap_or(""),
                &f.title,
            ])
        };
        Items {
            traffic,
            drops,
            housekeeping,
            drops_on: data.drops.is_some(),
            flows,
            open: data.findings.iter().filter(finding_shown).collect(),
            resolved: data
                .resolved
                .iter()
                .filter(|(f, _)| finding_shown(&f))
                .map(|(f, at)| (f, *at))
                .collect(),
            diagnosing: data.elapsed > Duration::ZERO,
        }
    }

    /// How many rows each panel lists, in [`Panel::ALL`] order.
    pub fn lens(&self) -> [usize; 4] {
        let housekeeping = if self.housekeeping.is_empty() {
            0
        } else {
            self.housekeeping.len() + 1
        };
        [
            self.traffic.len(),
            self.drops.len() + housekeeping,
            self.flows.len(),
            self.open.len() + self.resolved.len(),
        ]
    }
}

/// The selected flow's or finding's full story, for the details popup.
pub fn details(items: &Items, view: &View) -> Vec<String> {
    let i = view.selected[view.focus.index()];
    let mut lines = Vec::new();
    let labelled = |lines: &mut Vec<String>, pairs: Vec<(&str, String)>| {
        let mut fixes = Vec::new();
        for (label, text) in pairs {
            if label == "fix" {
                fixes.push(text);
            } else {
                lines.push(format!("{:<8}{text}", format!("{label}:")));
            }
        }
        if !fixes.is_empty() {
            lines.push(String::new());
            lines.push("fix (run in this order):".into());
            lines.extend(fixes);
        }
    };
    match view.focus {
        Panel::Flows => {
            let Some(g) = items.flows.get(i) else {
                return lines;
            };
            let first = g.first();
            lines.push(g.line());
            lines.push(format!(
                "class:  {} \u{b7} {} packets dropped, {} in the last interval",
                first.class, g.count, g.recent
            ));
            lines.push(format!(
                "reason: {}{}",
                first.reason,
                first
                    .reason
                    .explain()
                    .map(|w| format!(": {w}"))
                    .unwrap_or_default()
            ));
            match g.cause() {
                Some(c) => labelled(&mut lines, cause_lines(c)),
                None => lines.push(
                    "cause:  not traced (not a firewall drop, or the ruleset accepts it now)"
                        .into(),
                ),
            }
        }
        Panel::Findings => {
            let open = items.open.len();
            let (f, resolved) = match items.open.get(i) {
                Some(f) => (*f, None),
                None => match items.resolved.get(i - open.min(i)) {
                    Some((f, at)) => (*f, Some(*at)),
                    None => return lines,
                },
            };
            lines.push(format!(
                "{} {}",
                f.severity.as_str().to_uppercase(),
                f.title
            ));
            if let Some(at) = resolved {
                lines.push(format!(
                    "resolved: the diagnosis at {:.0}s no longer finds it",
                    at.as_secs_f64()
                ));
            }
            labelled(&mut lines, finding_lines(f));
        }
        Panel::Traffic | Panel::Drops => {}
    }
    lines
}
