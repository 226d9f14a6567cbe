//! The lines each panel lists, as the screen shows them: a traffic row with its sparkline,
//! a drop total, a dropped flow with its cause on a second line, a finding with its severity
//! (or resolved), and the help.

use std::fmt::Write as _;

use ratatui::{
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::ListItem,
};

use super::items::{Items, TrafficItem};
use crate::output::units::si;

/// Columns that fit: the bytes column goes first on narrow terminals.
fn traffic_widths(width: u16) -> (usize, bool) {
    let history = if width >= 120 { 30 } else { 12 };
    (history, width >= 100)
}

pub fn traffic_header(width: u16) -> String {
    let (history, bytes) = traffic_widths(width);
    let mut s = format!(
        " {:<24} {:>9} {:>12} {:<history$} {:>10}",
        "CLASS", "PKT/S", "RATE", "HISTORY", "PACKETS"
    );
    if bytes {
        let _ = write!(s, " {:>10}", "BYTES");
    }
    s
}

pub fn traffic_lines(items: &Items, width: u16) -> Vec<ListItem<'static>> {
    let (history, bytes) = traffic_widths(width);
    items
        .traffic
        .iter()
        .map(|item| match item {
            TrafficItem::Heading {
                iface,
                direction,
                pps,
            } => ListItem::new(Line::styled(
                format!("{iface} {direction}: {pps:.1} packets/s"),
                Style::new().add_modifier(Modifier::BOLD),
            )),
            TrafficItem::Class(r) => {
                let e = &r.entry;
                let class = if e.inner {
                    format!("  {} (in VXLAN)", e.class)
                } else {
                    format!("  {}", e.class)
                };
                let mut s = format!(
                    "{class:<24} {:>9.1} {:>12} {:<history$} {:>10}",
                    r.pps,
                    si(r.bps, "bit/s"),
                    sparkline(&r.history, history),
                    e.packets
                );
                if bytes {
                    let _ = write!(s, " {:>10}", si(e.bytes as f64, "B"));
                }
                ListItem::new(s)
            }
        })
        .collect()
}

/// The last `width` rates as block characters, scaled to the largest.
pub fn sparkline(history: &std::collections::VecDeque<f64>, width: usize) -> String {
    const BARS: [char; 8] = [
        '\u{2581}', '\u{2582}', '\u{2583}', '\u{2584}', '\u{2585}', '\u{2586}', '\u{2587}',
        '\u{2588}',
    ];
    let skip = history.len().saturating_sub(width);
    let shown: Vec<f64> = history.iter().skip(skip).copied().collect();
    let max = shown.iter().copied().fold(0.0, f64::max);
    shown
        .iter()
        .map(|v| {
            if *v <= 0.0 || max <= 0.0 {
                ' '
            } else {
                BARS[((v / max) * 7.0).round() as usize]
            }
        })
        .collect()
}

pub fn drop_lines(items: &Items) -> Vec<ListItem<'static>> {
    let row = |r: &super::state::DropRow| {
        format!(
            "{:<10} {:<18} {:<20} {:>9} {:>8.1}/s",
            r.total.iface, r.total.class, r.total.reason, r.total.count, r.per_sec
        )
    };
    let mut lines: Vec<ListItem> = items.drops.iter().map(|r| ListItem::new(row(r))).collect();
    if !items.housekeeping.is_empty() {
        lines.push(ListItem::new(Line::styled(
            "housekeeping, not network loss:",
            Style::new().add_modifier(Modifier::BOLD),
        )));
        lines.extend(
            items
                .housekeeping
                .iter()
                .map(|r| ListItem::new(Line::styled(row(r), Style::new().fg(Color::DarkGray)))),
        );
    }
    lines
}

pub fn flow_lines(items: &Items) -> Vec<ListItem<'static>> {
    items
        .flows
        .iter()
        .map(|g| {
            let first = Line::from(format!("{} (+{}/interval)", g.line(), g.recent));
            let second = match g.cause() {
                Some(c) => {
                    let what = c
                        .element
                        .clone()
                        .or_else(|| c.rule.as_ref().map(|r| format!("rule {}", r.text)))
                        .unwrap_or_default();
                    let fix = c
                        .fix
                        .first()
                        .map(|f| format!(" \u{b7} fix: {f}"))
                        .unwrap_or_default();
                    let zone = c
                        .zone
                        .as_ref()
                        .map(|z| format!("zone {z} \u{b7} "))
                        .unwrap_or_default();
                    format!("  \u{21b3} {zone}{what}{fix}")
                }
                None => format!(
                    "  \u{21b3} {}",
                    g.first().reason.explain().unwrap_or("no cause traced")
                ),
            };
            ListItem::new(vec![
                first,
                Line::styled(second, Style::new().fg(Color::Yellow)),
            ])
        })
        .collect()
}

fn severity_style(s: crate::findings::Severity) -> Style {
    use crate::findings::Severity;
    match s {
        Severity::Error => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        Severity::Warning => Style::new().fg(Color::Yellow),
        Severity::Info => Style::new(),
    }
}

pub fn finding_lines(items: &Items) -> Vec<ListItem<'static>> {
    let mut lines: Vec<ListItem> = items
        .open
        .iter()
        .map(|f| {
            let mut l = vec![Line::from(vec![
                Span::styled(
                    format!("{:<8}", f.severity.as_str().to_uppercase()),
                    severity_style(f.severity),
                ),
                Span::raw(f.title.clone()),
            ])];
            if let Some(e) = &f.element {
                l.push(Line::from(format!("        cause: {e}")));
            }
            ListItem::new(l)
        })
        .collect();
    lines.extend(items.resolved.iter().map(|(f, at)| {
        ListItem::new(Line::from(vec![
            Span::styled("RESOLVED ", Style::new().fg(Color::Green)),
            Span::raw(format!(
                "{} (fixed: gone from the diagnosis at {:.0}s)",
                f.title,
                at.as_secs_f64()
            )),
        ]))
    }));
    lines
}

pub fn help_lines() -> Vec<Line<'static>> {
    [
        "q, Ctrl-C       quit (the programs are detached, the summary printed)",
        "Tab, Shift-Tab  next, previous panel",
        "\u{2191} \u{2193}            select a row of the panel",
        "PgUp PgDn       a page up, down; Home End: first, last",
        "/               filter by interface, class or address (Esc: clear)",
        "s               sort: by rate, by total, by name",
        "p               pause the display (counting goes on)",
        "Enter           details of the selected flow or finding: cause and fix",
        "?               this help",
    ]
    .into_iter()
    .map(Line::from)
    .collect()
}
