//! Processes the benchmark starts and measures: background helpers (iperf3 servers, tcpdump)
//! and the release `tracer watch --output json`, each stopped by its guard, by its own pid,
//! however the run ends. Also what /proc says about a process: CPU time and peak RSS.

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc::{Receiver, RecvTimeoutError, channel},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use tracer::schema::{Counters, Start, Summary, WatchLine};

use crate::netns::check_interrupt;

/// A helper process (iperf3 server, tcpdump) killed when the guard drops.
pub struct Background {
    child: Child,
    what: String,
    stderr: Option<JoinHandle<String>>,
}

impl Background {
    pub fn spawn(cmd: &mut Command, what: &str) -> Result<Background> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        let stderr = collect_stderr(&mut child);
        Ok(Background {
            child,
            what: what.to_string(),
            stderr,
        })
    }

    /// Fails if the process has already exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited early ({status}): {}",
                self.what,
                collected(&mut self.stderr).trim()
            );
        }
        Ok(())
    }

    /// Stops it with SIGTERM; returns what it printed on stderr.
    pub fn stop(mut self) -> Result<String> {
        terminate(&mut self.child)?;
        Ok(collected(&mut self.stderr))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the child's piped stderr to the end on a thread of its own, so the child never
/// blocks on a full pipe.
fn collect_stderr(child: &mut Child) -> Option<JoinHandle<String>> {
    child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = e.read_to_string(&mut s);
            s
        })
    })
}

/// What [`collect_stderr`]'s thread read, once the pipe closes (call it after the child has
/// exited); empty when it was taken before or the thread panicked.
fn collected(stderr: &mut Option<JoinHandle<String>>) -> String {
    stderr
        .take()
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default()
}

/// SIGTERM to our own child, then waits for it.
fn terminate(child: &mut Child) -> Result<std::process::ExitStatus> {
    // SAFETY: signalling a child we spawned and have not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    Ok(child.wait()?)
}

/// A running `tracer watch --output json`.
pub struct Tracer {
    child: Child,
    lines: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
    /// The `start` line: interfaces with the hook each got, program ids.
    pub start: Option<Start>,
}

impl Tracer {
    /// Starts `tracer [--netns NS] watch --output json ARGS` and waits until every program
    /// is attached (its `start` line).
    pub fn watch(bin: &Path, netns: &str, args: &[&str]) -> Result<Tracer> {
        let mut child = Command::new(bin)
            .args(["--netns", netns, "watch", "--output", "json"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = collect_stderr(&mut child);
        let mut tracer = Tracer {
            child,
            lines,
            stderr,
            start: None,
        };
        tracer.start = Some(tracer.wait_for_start()?);
        Ok(tracer)
    }

    fn wait_for_start(&mut self) -> Result<Start> {
        let deadline = Instant::now() + Duration::from_mins(1);
        loop {
            check_interrupt()?;
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let v: WatchLine = serde_json::from_str(&line)
                        .with_context(|| format!("tracer printed {line:?}"))?;
                    if let WatchLine::Start(start) = v {
                        return Ok(start);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.child.wait();
                    bail!(
                        "tracer exited before attaching: {}",
                        collected(&mut self.stderr).trim()
                    );
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() > deadline => {
                    bail!("tracer did not attach within 60 s");
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `n` lines that `want` picks have been printed (from now on), within
    /// `patience`.
    pub fn wait_lines(
        &mut self,
        n: usize,
        patience: Duration,
        want: impl Fn(&WatchLine) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + patience;
        let mut seen = 0;
        while seen < n {
            check_interrupt()?;
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let v: WatchLine = serde_json::from_str(&line)
                        .with_context(|| format!("tracer printed {line:?}"))?;
                    seen += usize::from(want(&v));
                }
                Err(RecvTimeoutError::Disconnected) => bail!(
                    "tracer exited after {seen} of {n} lines: {}",
                    collected(&mut self.stderr).trim()
                ),
                Err(RecvTimeoutError::Timeout) if Instant::now() > deadline => {
                    bail!("only {seen} of {n} lines within {patience:?}");
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        Ok(())
    }

    /// The ingress hook of each interface, as `iface:hook`.
    pub fn hooks(&self) -> Vec<String> {
        self.start
            .iter()
            .flat_map(|s| &s.interfaces)
            .map(|i| format!("{}:{}", i.iface, i.hook))
            .collect()
    }

    /// Stops it with SIGTERM and returns its summary line; fails unless it exits cleanly.
    pub fn stop(mut self) -> Result<Summary> {
        let status = terminate(&mut self.child)?;
        let err = collected(&mut self.stderr);
        if !status.success() {
            bail!("tracer exited with {status}: {}", err.trim());
        }
        let mut summary = None;
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            let v: WatchLine =
                serde_json::from_str(&line).with_context(|| format!("tracer printed {line:?}"))?;
            if let WatchLine::Summary(s) = v {
                summary = Some(s);
            }
        }
        summary.context("tracer printed no summary")
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Packets a summary counted, over the rows `keep` selects (inner rows never: they count the
/// same packets again by their inner class).
pub fn counted(summary: &Summary, keep: impl Fn(&Counters) -> bool) -> u64 {
    summary
        .counters
        .iter()
        .filter(|c| !c.inner && keep(c))
        .map(|c| c.packets)
        .sum()
}

/// Drops a summary counted as dropped by the firewall before they had a device: the drop
/// storm's (`sender`).
pub fn firewall_drops(summary: &Summary) -> Result<u64> {
    Ok(summary
        .drops
        .as_ref()
        .context("no drops in the tracer's summary")?
        .iter()
        .filter(|d| d.reason.is_firewall() && d.iface == "-")
        .map(|d| d.count)
        .sum())
}

/// User plus system CPU time of a process (all its threads), in seconds.
pub fn cpu_secs(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime); `rest` starts at field 3.
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .context("short /proc/PID/stat")?
            .parse::<u64>()
            .context("utime/stime")
    };
    // SAFETY: plain getter.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((ticks(11)? + ticks(12)?) as f64 / hz)
}

/// Time the scheduler ran the process's threads, in seconds, to the nanosecond: the first
/// field of each /proc/PID/task/TID/schedstat.
pub fn run_secs(pid: u32) -> Result<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("listing /proc/{pid}/task"))?
    {
        let path = task?.path().join("schedstat");
        // A thread may exit between the listing and the read.
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        ns += text
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("malformed {}", path.display()))?;
    }
    Ok(ns as f64 / 1e9)
}

/// Resident set size (VmRSS) of a process now, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS in /proc/PID/status")
}

/// Peak resident set size (VmHWM) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmHWM in /proc/PID/status")
}
