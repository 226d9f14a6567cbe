//! The full-screen view of `tracer watch` on a terminal: what the text log tells, laid out in
//! panels that stay put while the numbers move, so an operator can leave it open while changing
//! the firewall and watch the effect. Its keys come in through the session's one loop
//! ([`crate::session::Session::run_with`]); on the way out (quit, signal, error or panic) the
//! terminal is put back, and the summary the text log ends with is printed.

mod draw;
mod items;
mod lines;
mod state;
mod term;

use std::io::{self, Write};

use ratatui::crossterm::event::{Event, KeyEventKind};
pub use term::{LogWriter, keys};

use self::{items::Items, state::Data, state::View, term::Screen};
use super::{WatchHeader, WatchOutput, WatchSummary, text::write_summary};
use crate::session::{Interval, Next};

/// What the view reads besides the intervals: keys and resizes.
pub type Input = Event;

pub struct Tui {
    screen: Screen,
    data: Data,
    /// What the screen showed when the display was paused.
    frozen: Option<Data>,
    view: View,
}

impl Tui {
    /// Takes over the terminal: raw mode, the alternate screen.
    pub fn open() -> io::Result<Tui> {
        Ok(Tui {
            screen: Screen::open()?,
            data: Data::default(),
            frozen: None,
            view: View::default(),
        })
    }

    /// The run as shown: as it is, or as it was when paused.
    fn shown(&self) -> &Data {
        self.frozen.as_ref().unwrap_or(&self.data)
    }

    fn draw(&mut self) -> io::Result<()> {
        let data = self.frozen.as_ref().unwrap_or(&self.data);
        let view = &mut self.view;
        self.screen.terminal.draw(|f| draw::draw(f, data, view))?;
        Ok(())
    }
}

impl WatchOutput for Tui {
    fn header(&mut self, header: &WatchHeader) -> io::Result<()> {
        self.data.header = Some(header.clone());
        self.draw()
    }

    fn interval(&mut self, interval: &Interval) -> io::Result<()> {
        self.data.update(interval);
        self.draw()
    }

    fn input(&mut self, input: Input) -> io::Result<Next> {
        let next = match input {
            Event::Key(k) if k.kind != KeyEventKind::Release => {
                let lens = Items::of(self.shown(), &self.view).lens();
                let next = self.view.key(k, lens);
                if self.view.paused != self.frozen.is_some() {
                    self.frozen = self.view.paused.then(|| self.data.clone());
                }
                next
            }
            Event::Resize(..) => {
                self.screen.terminal.autoresize()?;
                Next::Go
            }
            _ => return Ok(Next::Go),
        };
        if next == Next::Go {
            self.draw()?;
        }
        Ok(next)
    }

    fn summary(&mut self, summary: &WatchSummary) -> io::Result<()> {
        self.screen.close();
        let open: Vec<_> = self.data.findings.clone();
        let resolved: Vec<_> = self.data.resolved.iter().map(|(f, _)| f.clone()).collect();
        let mut out = io::stdout().lock();
        write_summary(&mut out, summary, &self.data.book, &open, &resolved)?;
        out.flush()
    }
}

#[cfg(test)]
mod tests;
