//! Drawing the view: a key line on top, the four panels (traffic per interface and direction
//! with a sparkline per class, drops by reason with housekeeping apart, the dropped flows with
//! their cause and fix, the findings), a status line at the bottom, and the help, details and
//! filter popups. Panels get their rows by weight above a minimum; a terminal too small for
//! all of them loses the least needed first, and the status line names what it hides.

use std::fmt::Write as _;

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph, Wrap},
};

use super::{
    items::{Items, details},
    lines::{drop_lines, finding_lines, flow_lines, help_lines, traffic_header, traffic_lines},
    state::{Data, Panel, Popup, View},
    term::last_log,
};

/// A panel's rows at least: its borders and two lines (a flow and its cause).
const MIN_ROWS: u16 = 4;
/// Below this the panels are not drawn at all.
const TINY: (u16, u16) = (30, 8);
/// From this width the drops and the dropped flows sit side by side.
const WIDE: u16 = 160;

/// The panels to draw and their areas; the panels left out for lack of room.
fn layout(area: Rect) -> (Vec<(Panel, Rect)>, Vec<Panel>) {
    let body = Rect {
        y: area.y + 1,
        height: area.height.saturating_sub(2),
        ..area
    };
    if area.width < TINY.0 || area.height < TINY.1 {
        return (Vec::new(), Panel::ALL.to_vec());
    }
    let wide = area.width >= WIDE;
    // Least needed first: what goes when rows run out.
    let mut shown = vec![Panel::Traffic, Panel::Flows, Panel::Findings, Panel::Drops];
    let mut hidden = Vec::new();
    let stacks = |shown: &[Panel]| {
        let side_by_side = wide && shown.contains(&Panel::Drops) && shown.contains(&Panel::Flows);
        shown.len() as u16 - u16::from(side_by_side)
    };
    while stacks(&shown) * MIN_ROWS > body.height && shown.len() > 1 {
        hidden.push(shown.pop().expect("more than one panel"));
    }
    let weight = |p: Panel| match p {
        Panel::Traffic => 4,
        Panel::Drops | Panel::Flows | Panel::Findings => 3,
    };
    // In screen order, the drops and the flows sharing a row when wide.
    let rows: Vec<Vec<Panel>> = [
        vec![Panel::Traffic],
        if wide {
            vec![Panel::Drops, Panel::Flows]
        } else {
            vec![Panel::Drops]
        },
        if wide { vec![] } else { vec![Panel::Flows] },
        vec![Panel::Findings],
    ]
    .into_iter()
    .map(|r| {
        r.into_iter()
            .filter(|p| shown.contains(p))
            .collect::<Vec<_>>()
    })
    .filter(|r| !r.is_empty())
    .collect();
    let weights: Vec<u32> = rows
        .iter()
        .map(|r| r.iter().map(|p| weight(*p)).max().unwrap_or(1))
        .collect();
    let spare = u32::from(body.height - rows.len() as u16 * MIN_ROWS);
    let total: u32 = weights.iter().sum();
    let mut heights: Vec<u16> = weights
        .iter()
        .map(|w| MIN_ROWS + (spare * w / total) as u16)
        .collect();
    let used: u16 = heights.iter().sum();
    if let Some(first) = heights.first_mut() {
        *first += body.height - used;
    }
    let mut out = Vec::new();
    let mut y = body.y;
    for (row, h) in rows.iter().zip(heights) {
        let area = Rect {
            y,
            height: h,
            ..body
        };
        if let [left, right] = row[..] {
            let [a, b] =
                Layout::horizontal([Constraint::Percentage(40), Constraint::Fill(1)]).areas(area);
            out.extend([(left, a), (right, b)]);
        } else {
            out.push((row[0], area));
        }
        y += h;
    }
    (out, hidden)
}

pub fn draw(f: &mut Frame, data: &Data, view: &mut View) {
    let area = f.area();
    let items = Items::of(data, view);
    let (panels, hidden) = layout(area);
    let keys = "q quit  Tab panel  \u{2191}\u{2193} PgUp PgDn  / filter  s sort  p pause  Enter details  ? help";
    let mut top = vec![Span::raw(" "), Span::raw(keys)];
    if area.width >= 100 {
        top.insert(
            0,
            Span::styled(
                " tracer watch ",
                Style::new().add_modifier(Modifier::REVERSED),
            ),
        );
    }
    f.render_widget(Paragraph::new(Line::from(top)), Rect { height: 1, ..area });
    for (panel, rect) in &panels {
        draw_panel(f, *panel, *rect, &items, view);
    }
    let status = status_line(data, view, &hidden, area);
    f.render_widget(
        Paragraph::new(status).style(Style::new().add_modifier(Modifier::REVERSED)),
        Rect {
            y: area.bottom().saturating_sub(1),
            height: 1,
            ..area
        },
    );
    match &view.popup {
        Popup::None => {}
        Popup::Help => popup(f, area, " Keys (Esc to close) ", help_lines()),
        Popup::Details => {
            let lines = details(&items, view).into_iter().map(Line::from).collect();
            popup(f, area, " Details (Esc to close) ", lines);
        }
        Popup::Filter { .. } => {
            let rect = Rect {
                y: area.bottom().saturating_sub(2),
                height: 1,
                ..area
            };
            f.render_widget(Clear, rect);
            f.render_widget(
                Paragraph::new(format!(
                    "/{}\u{2588}  filter by interface, class or address; Enter keeps it, Esc cancels",
                    view.filter
                )),
                rect,
            );
        }
    }
}

/// What matters most first: a narrow terminal cuts the end of the line.
fn status_line(data: &Data, view: &View, hidden: &[Panel], area: Rect) -> String {
    let mut parts = Vec::new();
    if !hidden.is_empty() {
        let names: Vec<&str> = hidden.iter().map(|p| p.title()).collect();
        parts.push(format!(
            "HIDDEN {} ({}x{}; all fit from 80x24)",
            names.join(", "),
            area.width,
            area.height
        ));
    }
    if view.paused {
        parts.push("PAUSED (p resumes)".into());
    }
    if !view.filter.is_empty() {
        parts.push(format!("filter: {}", view.filter));
    }
    if data.drops.is_some() {
        parts.push(format!(
            "events {} lost, {} held back",
            data.stats.events_lost, data.stats.events_suppressed
        ));
    } else {
        parts.push("drop capture off".into());
    }
    if let Some(h) = &data.header {
        let hooks: Vec<String> = h
            .ifaces
            .iter()
            .map(|(n, _, hook)| format!("{n}:{hook}"))
            .collect();
        parts.push(format!("profile {}", h.profile));
        parts.push(format!("hooks {}", hooks.join(",")));
        parts.push(format!("every {:.1}s", h.interval.as_secs_f64()));
    }
    parts.push(format!("{:.0}s", data.elapsed.as_secs_f64()));
    parts.push(format!("sort: {}", view.sort.as_str()));
    if let Some(log) = last_log() {
        parts.push(format!("log: {log}"));
    }
    format!(" {}", parts.join(" \u{b7} "))
}

fn draw_panel(f: &mut Frame, panel: Panel, rect: Rect, items: &Items, view: &mut View) {
    let (lines, header): (Vec<ListItem>, Option<String>) = match panel {
        Panel::Traffic => (
            traffic_lines(items, rect.width),
            Some(traffic_header(rect.width)),
        ),
        Panel::Drops => (drop_lines(items), None),
        Panel::Flows => (flow_lines(items), None),
        Panel::Findings => (finding_lines(items), None),
    };
    let len = lines.len();
    let rows: usize = lines.iter().map(ListItem::height).sum();
    let i = panel.index();
    view.selected[i] = view.selected[i].min(len.saturating_sub(1));
    let focused = view.focus == panel;
    let mut title = format!(
        " {}{}",
        if focused { "\u{25b6} " } else { "" },
        panel.title()
    );
    if len > 0 {
        let _ = write!(title, " {}/{len}", view.selected[i] + 1);
    }
    if panel == Panel::Traffic {
        let _ = write!(title, " \u{b7} by {}", view.sort.as_str());
    }
    if !view.filter.is_empty() {
        let _ = write!(title, " \u{b7} filter {}", view.filter);
    }
    // Rows the panel has no room for are said, not silently cut.
    let room = usize::from(rect.height.saturating_sub(2 + u16::from(header.is_some())));
    if rows > room {
        let _ = write!(title, " \u{b7} more: \u{2191}\u{2193}");
    }
    title.push(' ');
    let border = if focused {
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
    } else {
        Style::new()
    };
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(border)
        .title(title);
    let inner = block.inner(rect);
    f.render_widget(block, rect);
    let mut list_area = inner;
    if let Some(h) = header {
        f.render_widget(
            Paragraph::new(h).style(Style::new().add_modifier(Modifier::BOLD)),
            Rect { height: 1, ..inner },
        );
        list_area.y += 1;
        list_area.height = list_area.height.saturating_sub(1);
    }
    if len == 0 {
        f.render_widget(Paragraph::new(empty_text(panel, items)), list_area);
        return;
    }
    let list = List::new(lines)
        .highlight_style(if focused {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new()
        })
        .highlight_symbol(if focused { ">" } else { " " });
    let mut state = ListState::default().with_selected(Some(view.selected[i]));
    f.render_stateful_widget(list, list_area, &mut state);
}

fn empty_text(panel: Panel, items: &Items) -> &'static str {
    match panel {
        Panel::Traffic => "no packets yet",
        Panel::Drops if !items.drops_on => "drop capture is off (--no-drops)",
        Panel::Drops | Panel::Flows => "no packet lost",
        Panel::Findings if !items.diagnosing => "no diagnosis yet (or --no-diagnose)",
        Panel::Findings => "no finding: every flow the role needs is accepted",
    }
}

/// A popup across the screen, bordered top and bottom only so its lines copy cleanly.
fn popup(f: &mut Frame, area: Rect, title: &str, lines: Vec<Line<'static>>) {
    let width = usize::from(area.width.max(1));
    // Rows once wrapped, and the two borders.
    let needed: usize = lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(width))
        .sum::<usize>()
        + 2;
    let height = (needed as u16).min(area.height.saturating_sub(2)).max(3);
    let rect = Rect {
        y: area.y + (area.height.saturating_sub(height)) / 2,
        height: height.min(area.height),
        ..area
    };
    f.render_widget(Clear, rect);
    let block = Block::new()
        .borders(Borders::TOP | Borders::BOTTOM)
        .title(title.to_string());
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
}
