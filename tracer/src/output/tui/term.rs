//! The terminal under the view: raw mode and the alternate screen while it is open, restored
//! however the view ends (closed, dropped on an error, or a panic, through a panic hook that
//! restores before the message is printed); the keys read on a thread of their own and handed
//! to the session's loop over a channel; and log lines held while the view covers the screen,
//! written to stderr once it is gone.

use std::{
    io::{self, Stdout, Write},
    sync::{Mutex, Once},
    time::Duration,
};

use ratatui::{
    Terminal,
    backend::CrosstermBackend,
    crossterm::{
        cursor::Show,
        event::{self, Event},
        execute,
        terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode},
    },
};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

/// How often the key thread looks whether the view is gone.
const KEY_POLL: Duration = Duration::from_millis(200);

/// Log lines held while the view is open; `None` when they go straight to stderr.
static HELD: Mutex<Option<Vec<String>>> = Mutex::new(None);

/// The terminal, in raw mode on the alternate screen until [`Screen::close`] or drop.
pub struct Screen {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
    open: bool,
}

impl Screen {
    pub fn open() -> io::Result<Screen> {
        install_panic_hook();
        hold_logs(true);
        enable_raw_mode()?;
        let mut stdout = io::stdout();
        if let Err(e) = execute!(stdout, EnterAlternateScreen) {
            restore();
            return Err(e);
        }
        let mut terminal = Terminal::new(CrosstermBackend::new(stdout))?;
        terminal.hide_cursor()?;
        terminal.clear()?;
        Ok(Screen {
            terminal,
            open: true,
        })
    }

    /// Leaves the alternate screen and raw mode, and writes the log lines held meanwhile.
    pub fn close(&mut self) {
        if std::mem::take(&mut self.open) {
            restore();
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.close();
    }
}

/// Puts the terminal back as the shell had it. Harmless when it already is.
fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
    hold_logs(false);
}

/// A panic in the view must not leave the shell in raw mode on the alternate screen: restore
/// first, then let the usual hook print the message where it can be read.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// Keys and resizes, read on a thread of their own (crossterm reads block) until the receiver
/// is dropped.
pub fn keys() -> io::Result<UnboundedReceiver<Event>> {
    let (tx, rx) = unbounded_channel();
    std::thread::Builder::new()
        .name("tracer-keys".into())
        .spawn(move || {
            while !tx.is_closed() {
                match event::poll(KEY_POLL) {
                    Ok(false) => {}
                    Ok(true) => {
                        let sent = event::read().map(|ev| tx.send(ev));
                        if !matches!(sent, Ok(Ok(()))) {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        })?;
    Ok(rx)
}

/// Starts holding log lines, or stops and writes those held to stderr.
fn hold_logs(hold: bool) {
    let held = {
        let mut h = HELD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if hold {
            h.get_or_insert_with(Vec::new);
            return;
        }
        h.take()
    };
    for line in held.into_iter().flatten() {
        let _ = io::stderr().write_all(line.as_bytes());
    }
}

/// The last log line held, for the status line.
pub fn last_log() -> Option<String> {
    let h = HELD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    h.as_ref()?.last().map(|l| l.trim_end().to_string())
}

/// Where the log goes: stderr, or held while the view covers the terminal.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        {
            let mut h = HELD
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(held) = h.as_mut() {
                held.push(String::from_utf8_lossy(buf).into_owned());
                return Ok(buf.len());
            }
        }
        io::stderr().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_held_while_the_view_is_open_and_released_after() {
        hold_logs(true);
        LogWriter.write_all(b"[WARN ] reading the node\n").unwrap();
        assert_eq!(last_log().as_deref(), Some("[WARN ] reading the node"));
        hold_logs(false);
        assert_eq!(last_log(), None);
    }
}
