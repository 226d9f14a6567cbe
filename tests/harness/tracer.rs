//! The `tracer` binary, run in a namespace with JSON output, and what it printed.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Read},
    process::{Child, Command, Stdio},
    sync::mpsc::{Receiver, RecvTimeoutError, channel},
    time::{Duration, Instant},
};

use tracer::schema::{Start, Summary, WatchLine};

use super::{Lab, NetNs};

pub const BIN: &str = env!("CARGO_BIN_EXE_tracer");

/// A running `tracer watch --output json`; killed if the test ends without stopping it.
pub struct Tracer {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<WatchLine>,
    /// What the tracer writes on stderr, read as it comes: a tracer logging more than a pipe
    /// holds (aya's debug log is) would otherwise block on the write.
    log: Option<std::thread::JoinHandle<String>>,
}

impl Tracer {
    pub fn watch(ns: &NetNs, args: &[&str]) -> Tracer {
        Tracer::watch_env(ns, &[], args)
    }

    /// [`Tracer::watch`] with environment variables set for the tracer.
    pub fn watch_env(ns: &NetNs, env: &[(&str, &str)], args: &[&str]) -> Tracer {
        let mut cmd = Command::new(BIN);
        cmd.args(["--netns", &ns.name])
            .envs(env.iter().map(|(k, v)| (*k, *v)));
        Tracer::start(&mut cmd, args)
    }

    /// `tracer watch --output json ARGS` in a lab node, reading the node's firewall as in
    /// `tracer lab exec`.
    pub fn watch_node(lab: &Lab, node: &str, args: &[&str]) -> Tracer {
        let shell = tracer_lab::node_shell(&lab.prefix, node)
            .unwrap_or_else(|e| panic!("{node} of lab {}: {e:#}", lab.prefix));
        let mut cmd = Command::new(BIN);
        cmd.args(["--netns", &shell.netns]).envs(shell.env);
        Tracer::start(&mut cmd, args)
    }

    /// Starts `cmd watch --output json ARGS`.
    pub fn start(cmd: &mut Command, args: &[&str]) -> Tracer {
        let mut child = cmd
            .args(["watch", "--output", "json"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {BIN}: {e}"));
        let lines = lines_of(&mut child);
        let mut stderr = child.stderr.take().expect("stderr piped");
        let log = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Tracer {
            child,
            lines,
            seen: Vec::new(),
            log: Some(log),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the tracer wrote on stderr; once it has exited.
    fn stderr(&mut self) -> String {
        self.log
            .take()
            .and_then(|log| log.join().ok())
            .unwrap_or_default()
    }

    /// Waits for the `start` line, printed once every program is attached: up to 60 s, or
    /// TRACER_TEST_ATTACH_SECS (the kernel matrix's emulated guests verify programs at a
    /// fraction of the host's speed: half a minute for the drop probe on 5.10).
    pub fn started(&mut self) -> Start {
        let secs = std::env::var("TRACER_TEST_ATTACH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60);
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let v: WatchLine = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
                    self.seen.push(v.clone());
                    if let WatchLine::Start(start) = v {
                        return start;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.child.wait();
                    panic!("tracer exited before attaching:\n{}", self.stderr());
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() > deadline => {
                    panic!("tracer did not attach within {secs}s");
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Waits for a line `want` picks out, within the attach patience; every line read is kept
    /// for [`Tracer::stop`].
    pub fn wait_for<T>(&mut self, what: &str, want: impl Fn(&WatchLine) -> Option<T>) -> T {
        let deadline = Instant::now() + super::tmux::patience();
        if let Some(found) = self.seen.iter().find_map(&want) {
            return found;
        }
        loop {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let v: WatchLine = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
                    let found = want(&v);
                    self.seen.push(v);
                    if let Some(found) = found {
                        return found;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.child.wait();
                    panic!("tracer exited before printing {what}:\n{}", self.stderr());
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() >= deadline => {
                    // What it logged says why; it is read once the tracer is gone.
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let log = self.stderr();
                    panic!(
                        "no {what} within {:?}: {:#?}\nits log:\n{log}",
                        super::tmux::patience(),
                        self.seen,
                    );
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Stops with SIGTERM and returns every line printed; panics unless it exits cleanly.
    pub fn stop(self) -> Vec<WatchLine> {
        self.stop_with_log().0
    }

    /// [`Tracer::stop`], with what the tracer wrote on stderr (its log).
    pub fn stop_with_log(mut self) -> (Vec<WatchLine>, String) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        let err = self.stderr();
        assert!(status.success(), "tracer exited with {status}:\n{err}");
        let mut out = std::mem::take(&mut self.seen);
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            out.push(
                serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}")),
            );
        }
        (out, err)
    }

    /// The tracer's child processes, with their command names.
    pub fn children(&self) -> Vec<(u32, String)> {
        let pid = self.pid();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(|child| {
                let stat = proc_stat(child)?;
                (stat.ppid == pid).then_some((child, stat.comm))
            })
            .collect()
    }

    /// [`Tracer::kill9`], then waits (5 s at most) for the children it had to end; panics
    /// naming those still running.
    pub fn kill9_ending_children(&mut self) {
        let children = self.children();
        self.kill9();
        // A zombie has ended: only its reaping is left (to whoever adopted it).
        let alive = || -> Vec<&(u32, String)> {
            children
                .iter()
                .filter(|(pid, _)| proc_stat(*pid).is_some_and(|s| s.state != 'Z'))
                .collect()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !alive().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            alive().is_empty(),
            "children outlived the tracer's SIGKILL: {:?}",
            alive()
        );
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child's stdout line by line, read on a thread.
pub fn lines_of(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// The last summary line.
pub fn summary(lines: &[WatchLine]) -> &Summary {
    lines
        .iter()
        .rev()
        .find_map(|v| match v {
            WatchLine::Summary(s) => Some(s),
            _ => None,
        })
        .expect("no summary line")
}

/// Packets per (iface, direction, class) from a summary line.
pub struct Counts(HashMap<(String, String, String), (u64, u64)>);

impl Counts {
    pub fn from_summary(lines: &[WatchLine]) -> Counts {
        let summary = summary(lines);
        let mut map = HashMap::new();
        // Overlay packets counted again by their inner class are not the packets' own counts.
        for c in summary.counters.iter().filter(|c| !c.inner) {
            let key = (
                c.iface.clone(),
                c.direction.as_str().to_string(),
                c.class.clone(),
            );
            map.insert(key, (c.packets, c.bytes));
        }
        Counts(map)
    }

    pub fn packets(&self, iface: &str, direction: &str, class: &str) -> u64 {
        self.0
            .get(&(iface.into(), direction.into(), class.into()))
            .map_or(0, |c| c.0)
    }

    pub fn bytes(&self, iface: &str, direction: &str, class: &str) -> u64 {
        self.0
            .get(&(iface.into(), direction.into(), class.into()))
            .map_or(0, |c| c.1)
    }
}

/// What tests read of `/proc/PID/stat`.
struct ProcStat {
    comm: String,
    state: char,
    ppid: u32,
}

/// `pid (comm) state ppid ...`: the name may hold spaces and parentheses, so it ends at the
/// last `)`. `None` once the process is gone.
fn proc_stat(pid: u32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = stat.rsplit_once(')')?;
    let (_, comm) = head.split_once('(')?;
    let mut fields = rest.split_whitespace();
    Some(ProcStat {
        comm: comm.to_owned(),
        state: fields.next()?.chars().next()?,
        ppid: fields.next()?.parse().ok()?,
    })
}
