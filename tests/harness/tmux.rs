//! A real terminal for the view's tests: a tmux server of the test's own (its own socket,
//! no configuration read, killed when the guard drops) running one command in a window of a
//! given size; `send-keys` types, `capture-pane` reads the screen, and waits are bounded polls
//! for what the screen should show, never sleeps.

use std::{
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

/// A tmux server and its one session.
pub struct Tmux {
    socket: String,
}

/// How long a screen may take to show what a test waits for: attaching the programs can take
/// a while on a busy machine (attaching 200 veths created at once took over 30 s on this
/// machine's two cores with the suite and a long harness run beside it), or in the kernel
/// matrix's emulated guests. A patience, not a speed check: the bench measures attach times.
pub fn patience() -> Duration {
    let secs = std::env::var("TRACER_TEST_ATTACH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

impl Tmux {
    /// Starts `command` (run by `sh -c`) in a `width`x`height` terminal.
    pub fn start(tag: &str, width: u16, height: u16, command: &str) -> Tmux {
        static N: AtomicU32 = AtomicU32::new(0);
        let socket = format!(
            "trt-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let t = Tmux { socket };
        t.run(&[
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ]);
        // A detached session keeps the size it is given, whatever clients come and go.
        t.run(&["set-option", "-g", "window-size", "manual"]);
        t
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running tmux (is it installed? cargo xtask setup): {e}"));
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types keys, in tmux's names (`Tab`, `Enter`, `Escape`, `q`...).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend(keys);
        self.run(&args);
    }

    /// Types text as it is.
    pub fn text(&self, text: &str) {
        self.run(&["send-keys", "-t", "main", "-l", text]);
    }

    /// The screen as text, one line per row.
    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "main"])
    }

    /// The screen and what scrolled off it.
    pub fn history(&self) -> String {
        self.run(&["capture-pane", "-p", "-S", "-", "-t", "main"])
    }

    /// A tmux format of the pane: `#{alternate_on}`, `#{pane_pid}`...
    pub fn format(&self, format: &str) -> String {
        self.run(&["display-message", "-p", "-t", "main", format])
            .trim()
            .to_string()
    }

    pub fn resize(&self, width: u16, height: u16) {
        self.run(&[
            "resize-window",
            "-t",
            "main",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ]);
    }

    /// Polls the screen until `ready` holds, within [`patience`]; panics with the last screen.
    pub fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + patience();
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {what} within {:?}:\n{screen}",
                patience()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// The processes `pid` started.
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The ids of the BPF programs process `pid` holds a file descriptor of.
pub fn bpf_programs_of(pid: u32) -> Vec<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return Vec::new();
    };
    let mut ids: Vec<u64> = fds
        .flatten()
        .filter_map(|fd| std::fs::read_to_string(fd.path()).ok())
        .filter_map(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("prog_id:"))
                .and_then(|id| id.trim().parse().ok())
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}
