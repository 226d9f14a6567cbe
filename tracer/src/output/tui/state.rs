//! What the view shows and how the user has arranged it. [`Data`] is the run as of the last
//! interval: each class's rates with a short history, drop totals, every dropped flow with its
//! cause, the latest diagnosis and the findings it resolved. [`View`] is the user's part:
//! the focused panel, each panel's selection, the filter, the sort, pause and the open popup;
//! [`View::key`] is what each key does to it.

use std::{collections::HashMap, collections::VecDeque, time::Duration};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::{
    events::{DropTotal, counters::Entry},
    findings::Finding,
    output::{WatchHeader, flows::FlowBook},
    probes::DropStats,
    session::{Interval, Next},
};

/// Rates kept per class for the sparkline.
pub const HISTORY: usize = 30;

/// One class on one interface and direction.
#[derive(Clone, Debug)]
pub struct Row {
    pub entry: Entry,
    pub pps: f64,
    pub bps: f64,
    /// Packets per second of the last intervals, oldest first.
    pub history: VecDeque<f64>,
}

/// A drop total with its rate over the last interval.
#[derive(Clone, Debug)]
pub struct DropRow {
    pub total: DropTotal,
    pub per_sec: f64,
}

/// The run as of the last interval.
#[derive(Clone, Debug, Default)]
pub struct Data {
    pub header: Option<WatchHeader>,
    pub elapsed: Duration,
    pub rows: Vec<Row>,
    /// `None` without drop capture.
    pub drops: Option<Vec<DropRow>>,
    pub book: FlowBook,
    pub stats: DropStats,
    /// The latest diagnosis.
    pub findings: Vec<Finding>,
    /// Findings a later diagnosis no longer made, with when.
    pub resolved: Vec<(Finding, Duration)>,
}

impl Data {
    pub fn update(&mut self, i: &Interval) {
        let secs = i.elapsed.saturating_sub(self.elapsed).as_secs_f64();
        self.elapsed = i.elapsed;
        let mut old: HashMap<_, Row> = self.rows.drain(..).map(|r| (key(&r.entry), r)).collect();
        for s in i.samples {
            let mut history = old
                .remove(&key(&s.entry))
                .map(|r| r.history)
                .unwrap_or_default();
            history.push_back(s.packets_per_sec);
            while history.len() > HISTORY {
                history.pop_front();
            }
            self.rows.push(Row {
                entry: s.entry.clone(),
                pps: s.packets_per_sec,
                bps: s.bits_per_sec,
                history,
            });
        }
        if let Some(d) = i.drops {
            let before: HashMap<String, u64> = self
                .drops
                .iter()
                .flatten()
                .map(|r| (total_key(&r.total), r.total.count))
                .collect();
            self.drops = Some(
                d.totals
                    .iter()
                    .map(|t| {
                        let was = before.get(&total_key(t)).copied().unwrap_or(0);
                        let new = t.count.saturating_sub(was) as f64;
                        DropRow {
                            total: t.clone(),
                            per_sec: if secs > 0.0 { new / secs } else { 0.0 },
                        }
                    })
                    .collect(),
            );
            self.book.update(d);
            self.stats = d.stats;
        }
        self.findings = i.diagnosis.to_vec();
        self.resolved
            .extend(i.resolved.iter().map(|f| (f.clone(), i.elapsed)));
        // A finding found again is open, not resolved.
        self.resolved
            .retain(|(r, _)| !self.findings.iter().any(|f| f.id == r.id));
    }
}

fn key(e: &Entry) -> (String, &'static str, String, bool) {
    (
        e.iface.clone(),
        e.direction.as_str(),
        e.class.clone(),
        e.inner,
    )
}

fn total_key(t: &DropTotal) -> String {
    format!(
        "{}|{}|{}|{}",
        t.iface,
        t.class,
        t.reason,
        t.reason.is_housekeeping()
    )
}

/// The panels, in Tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Panel {
    Traffic,
    Drops,
    Flows,
    Findings,
}

impl Panel {
    pub const ALL: [Panel; 4] = [Panel::Traffic, Panel::Drops, Panel::Flows, Panel::Findings];

    pub fn title(self) -> &'static str {
        match self {
            Panel::Traffic => "Traffic",
            Panel::Drops => "Drops",
            Panel::Flows => "Dropped flows",
            Panel::Findings => "Findings",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// How lists are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    /// Busiest first over the last interval.
    Rate,
    /// Most packets since the start first.
    Total,
    /// By name.
    Name,
}

impl Sort {
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Rate => "rate",
            Sort::Total => "total",
            Sort::Name => "name",
        }
    }

    fn next(self) -> Sort {
        match self {
            Sort::Rate => Sort::Total,
            Sort::Total => Sort::Name,
            Sort::Name => Sort::Rate,
        }
    }
}

/// What covers the panels, if anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Popup {
    None,
    Help,
    /// The selected flow's or finding's full cause and fix.
    Details,
    /// Typing a filter; the previous one, restored by Esc.
    Filter {
        before: String,
    },
}

/// The user's arrangement of the view.
#[derive(Clone, Debug)]
pub struct View {
    pub focus: Panel,
    pub selected: [usize; 4],
    /// Lowercase; empty: everything.
    pub filter: String,
    pub sort: Sort,
    /// The display is paused (the run goes on).
    pub paused: bool,
    pub popup: Popup,
}

impl Default for View {
    fn default() -> Self {
        View {
            focus: Panel::Traffic,
            selected: [0; 4],
            filter: String::new(),
            sort: Sort::Rate,
            paused: false,
            popup: Popup::None,
        }
    }
}

/// Rows a page key moves.
const PAGE: usize = 10;

impl View {
    /// Applies a key; `lens` is how many items each panel lists now.
    pub fn key(&mut self, k: KeyEvent, lens: [usize; 4]) -> Next {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && k.code == KeyCode::Char('c') {
            return Next::Quit;
        }
        if let Popup::Filter { before } = &self.popup {
            match k.code {
                KeyCode::Enter => self.popup = Popup::None,
                KeyCode::Esc => {
                    self.filter = before.clone();
                    self.popup = Popup::None;
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.extend(c.to_lowercase()),
                _ => {}
            }
            self.selected = [0; 4];
            return Next::Go;
        }
        match k.code {
            KeyCode::Char('q') => return Next::Quit,
            KeyCode::Esc | KeyCode::Enter if self.popup != Popup::None => self.popup = Popup::None,
            KeyCode::Char('?') if self.popup == Popup::Help => self.popup = Popup::None,
            KeyCode::Char('?') => self.popup = Popup::Help,
            KeyCode::Esc => self.filter.clear(),
            KeyCode::Enter
                if matches!(self.focus, Panel::Flows | Panel::Findings)
                    && lens[self.focus.index()] > 0 =>
            {
                self.popup = Popup::Details;
            }
            KeyCode::Tab => self.focus = Panel::ALL[(self.focus.index() + 1) % 4],
            KeyCode::BackTab => self.focus = Panel::ALL[(self.focus.index() + 3) % 4],
            KeyCode::Char('/') => {
                self.popup = Popup::Filter {
                    before: self.filter.clone(),
                };
                self.filter.clear();
            }
            KeyCode::Char('s') => self.sort = self.sort.next(),
            KeyCode::Char('p') => self.paused = !self.paused,
            KeyCode::Up => self.scroll(lens, -1),
            KeyCode::Down => self.scroll(lens, 1),
            KeyCode::PageUp => self.scroll(lens, -(PAGE as isize)),
            KeyCode::PageDown => self.scroll(lens, PAGE as isize),
            KeyCode::Home => self.selected[self.focus.index()] = 0,
            KeyCode::End => self.scroll(lens, isize::MAX / 2),
            _ => {}
        }
        Next::Go
    }

    fn scroll(&mut self, lens: [usize; 4], by: isize) {
        let i = self.focus.index();
        let last = lens[i].saturating_sub(1);
        self.selected[i] = self.selected[i].saturating_add_signed(by).min(last);
    }

    /// Whether `text` passes the filter.
    pub fn shows(&self, text: &[&str]) -> bool {
        self.filter.is_empty() || text.iter().any(|t| t.to_lowercase().contains(&self.filter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(view: &mut View, code: KeyCode) -> Next {
        view.key(KeyEvent::new(code, KeyModifiers::NONE), [5, 2, 3, 1])
    }

    #[test]
    fn keys_move_focus_scroll_filter_pause_and_quit() {
        let mut v = View::default();
        assert_eq!(press(&mut v, KeyCode::Tab), Next::Go);
        assert_eq!(v.focus, Panel::Drops);
        press(&mut v, KeyCode::BackTab);
        press(&mut v, KeyCode::PageDown);
        assert_eq!(v.selected[0], 4, "clamped to the last row");
        press(&mut v, KeyCode::Up);
        assert_eq!(v.selected[0], 3);
        // Enter on the traffic panel has no details to show.
        press(&mut v, KeyCode::Enter);
        assert_eq!(v.popup, Popup::None);
        press(&mut v, KeyCode::Tab);
        press(&mut v, KeyCode::Tab);
        press(&mut v, KeyCode::Enter);
        assert_eq!(v.popup, Popup::Details);
        press(&mut v, KeyCode::Esc);
        for c in "/VA".chars() {
            press(&mut v, KeyCode::Char(c));
        }
        press(&mut v, KeyCode::Enter);
        assert_eq!(v.filter, "va");
        assert!(v.shows(&["va", "x"]) && !v.shows(&["eth0"]));
        // `q` typed into the filter is text, not quit.
        press(&mut v, KeyCode::Char('/'));
        assert_eq!(press(&mut v, KeyCode::Char('q')), Next::Go);
        press(&mut v, KeyCode::Esc);
        assert_eq!(v.filter, "va", "Esc restores the filter before");
        press(&mut v, KeyCode::Char('p'));
        assert!(v.paused);
        press(&mut v, KeyCode::Char('s'));
        assert_eq!(v.sort, Sort::Total);
        assert_eq!(press(&mut v, KeyCode::Char('q')), Next::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(View::default().key(ctrl_c, [0; 4]), Next::Quit);
    }
}
