//! What a lab has created, on disk under /var/lib/tracer-lab/<prefix> (not /run: each node's
//! firewalld gets a private /run of its own, which would hide it): written before each
//! namespace is made and after each daemon starts, so `lab down` can remove everything even
//! after `lab up` was killed half way. A lab owns what it recorded and nothing else: teardown
//! removes the recorded namespaces (killing whatever still runs inside them) and the recorded
//! daemons, never a namespace that merely shares the lab's prefix.

use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

pub const LAB_DIR: &str = "/var/lib/tracer-lab";

/// A daemon the lab started, identified by pid and start time (pids get reused).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub start_time: u64,
    pub node: String,
    pub what: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub prefix: String,
    pub scenario: String,
    pub namespaces: Vec<String>,
    pub processes: Vec<Proc>,
    /// Set once `lab up` finished.
    pub ready: bool,
}

pub fn validate_prefix(prefix: &str) -> Result<()> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 12
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        bail!("lab prefix {prefix:?}: use 1 to 12 characters of a-z, 0-9 and '-'");
    }
    Ok(())
}

pub fn lab_dir(prefix: &str) -> PathBuf {
    Path::new(LAB_DIR).join(prefix)
}

/// The start time of a process (clock ticks after boot), from /proc/PID/stat.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl State {
    pub fn new(prefix: &str, scenario: &str) -> Self {
        State {
            prefix: prefix.to_string(),
            scenario: scenario.to_string(),
            namespaces: Vec::new(),
            processes: Vec::new(),
            ready: false,
        }
    }

    pub fn dir(&self) -> PathBuf {
        lab_dir(&self.prefix)
    }

    pub fn load(prefix: &str) -> Result<Option<State>> {
        let file = lab_dir(prefix).join("state.json");
        match fs::read_to_string(&file) {
            Ok(text) => {
                Ok(Some(serde_json::from_str(&text).with_context(|| {
                    format!("{} is damaged", file.display())
                })?))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", file.display())),
        }
    }

    /// Every lab with a state file.
    pub fn all() -> Vec<State> {
        let Ok(dir) = fs::read_dir(LAB_DIR) else {
            return Vec::new();
        };
        let mut labs: Vec<State> = dir
            .flatten()
            .filter_map(|e| State::load(&e.file_name().to_string_lossy()).ok().flatten())
            .collect();
        labs.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        labs
    }

    /// Writes the state atomically.
    pub fn save(&self) -> Result<()> {
        let dir = self.dir();
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join("state.json.tmp");
        fs::write(&tmp, serde_json::to_string_pretty(self)?)?;
        fs::rename(&tmp, dir.join("state.json"))?;
        Ok(())
    }

    /// Records a namespace, before it is created.
    pub fn will_create_namespace(&mut self, name: &str) -> Result<()> {
        self.namespaces.push(name.to_string());
        self.save()
    }

    /// Records a daemon just started.
    pub fn started(&mut self, pid: u32, node: &str, what: &str) -> Result<()> {
        let start_time = start_time(pid).unwrap_or(0);
        self.processes.push(Proc {
            pid,
            start_time,
            node: node.to_string(),
            what: what.to_string(),
        });
        self.save()
    }
}

fn netns_inode(name: &str) -> Option<u64> {
    fs::metadata(Path::new("/run/netns").join(name))
        .ok()
        .map(|m| m.ino())
}

/// Processes whose network namespace is one of `inodes`.
fn processes_in(inodes: &[u64]) -> Vec<u32> {
    let Ok(proc_dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    proc_dir
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| {
            fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| inodes.contains(&m.ino()))
        })
        .collect()
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: plain syscall.
    unsafe { libc::kill(pid as i32, sig) };
}

fn wait_gone(pids: &[u32], timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let alive: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|p| Path::new(&format!("/proc/{p}")).exists())
            .collect();
        if alive.is_empty() || Instant::now() > deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What `down` removed.
#[derive(Debug, Default)]
pub struct Removed {
    pub processes: usize,
    pub namespaces: usize,
}

/// Removes everything the lab `prefix` recorded: its daemons (gently, then by force), any other
/// process in its namespaces, the namespaces (and with them their nftables rules), its files.
/// `None` when there is no lab of that prefix: nothing is touched.
pub fn teardown(prefix: &str) -> Result<Option<Removed>> {
    validate_prefix(prefix)?;
    let Some(state) = State::load(prefix)? else {
        return Ok(None);
    };
    let namespaces = &state.namespaces;
    let mut removed = Removed::default();
    // Recorded daemons first, with SIGTERM, so firewalld removes its rules and BIRD says bye.
    let recorded: Vec<u32> = state
        .processes
        .iter()
        .filter(|p| start_time(p.pid) == Some(p.start_time))
        .map(|p| p.pid)
        .collect();
    for pid in &recorded {
        signal(*pid, libc::SIGTERM);
    }
    for pid in wait_gone(&recorded, Duration::from_secs(5)) {
        signal(pid, libc::SIGKILL);
    }
    removed.processes += recorded.len();
    // Then anything still running inside the namespaces.
    let inodes: Vec<u64> = namespaces.iter().filter_map(|n| netns_inode(n)).collect();
    let strays = processes_in(&inodes);
    for pid in &strays {
        signal(*pid, libc::SIGKILL);
    }
    wait_gone(&strays, Duration::from_secs(5));
    removed.processes += strays.len();
    for ns in namespaces {
        if Path::new("/run/netns").join(ns).exists() {
            let out = Command::new("ip")
                .args(["netns", "del", ns])
                .output()
                .context("running ip")?;
            if !out.status.success() {
                bail!(
                    "removing namespace {ns}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            removed.namespaces += 1;
        }
    }
    let dir = lab_dir(prefix);
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(Some(removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked() {
        assert!(validate_prefix("lab").is_ok());
        assert!(validate_prefix("ci-2").is_ok());
        for bad in ["", "Lab", "a b", "x/y", "waytoolongprefix"] {
            assert!(validate_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn start_time_of_this_process() {
        let me = std::process::id();
        assert!(start_time(me).unwrap() > 0);
        assert_eq!(start_time(me), start_time(me));
    }
}
