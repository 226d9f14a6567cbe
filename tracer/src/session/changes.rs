//! Changes to the node's firewall noticed as they happen, so the diagnosis and the drops'
//! causes follow a fix (or a new break) within an interval instead of waiting for the periodic
//! re-read. Two listeners, each a child process that lives as long as the session: `nft monitor`
//! prints a line for every change to the kernel's nftables ruleset (firewalld's nftables
//! backend, a `firewall-cmd --reload`, iptables-nft, kube-proxy, Calico, anything), and
//! `dbus-monitor` prints firewalld's signals (`Reloaded`, and its permanent configuration's
//! `Updated`), which also covers a firewalld whose backend writes iptables-legacy. Rules
//! written with iptables-legacy directly raise no event anywhere; they are read again by the
//! periodic re-read. A listener that cannot start (no `nft`, no system bus) is logged and
//! the periodic re-read stays.

use std::{
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// firewalld's well-known name on the system bus.
const FIREWALLD: &str = "org.fedoraproject.FirewallD1";

/// The listeners of one session; dropping it stops them.
pub struct FirewallChanges {
    changed: Arc<AtomicBool>,
    /// Killed when dropped.
    _listeners: Vec<Child>,
}

impl FirewallChanges {
    /// Starts the listeners that this node can run. Must run inside a tokio runtime.
    pub fn start() -> Self {
        let changed = Arc::new(AtomicBool::new(false));
        let nft = (
            "nft",
            vec!["monitor".to_owned()],
            is_nft_change as fn(&str) -> bool,
        );
        let dbus = (
            "dbus-monitor",
            vec![
                "--system".to_owned(),
                format!("type='signal',sender='{FIREWALLD}'"),
            ],
            is_firewalld_signal as fn(&str) -> bool,
        );
        let listeners = [nft, dbus]
            .into_iter()
            .filter_map(|(program, args, counts)| {
                match listen(program, &args, counts, Arc::clone(&changed)) {
                    Ok(child) => Some(child),
                    Err(e) => {
                        log::info!(
                            "not listening with {program} for firewall changes ({e}); they are seen at the periodic re-read"
                        );
                        None
                    }
                }
            })
            .collect();
        FirewallChanges {
            changed,
            _listeners: listeners,
        }
    }

    /// Whether the firewall changed since the last call.
    pub fn take(&self) -> bool {
        self.changed.swap(false, Ordering::AcqRel)
    }
}

/// Spawns `program args` with its stdout read line by line: a line `counts` says is a change
/// sets `changed`.
fn listen(
    program: &str,
    args: &[String],
    counts: fn(&str) -> bool,
    changed: Arc<AtomicBool>,
) -> std::io::Result<Child> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout"))?;
    let program = program.to_owned();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next_line().await {
                Ok(Some(line)) if counts(&line) => changed.store(true, Ordering::Release),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    log::debug!("reading {program}: {e}");
                    break;
                }
            }
        }
        log::debug!("{program} stopped; firewall changes are seen at the periodic re-read");
    });
    Ok(child)
}

/// `nft monitor` prints one line per added, deleted or replaced object; blank lines and the
/// `# new generation` comments of newer versions say nothing by themselves.
fn is_nft_change(line: &str) -> bool {
    let line = line.trim();
    !line.is_empty() && !line.starts_with('#')
}

/// A signal from firewalld: `dbus-monitor` prints a header line per message (then its
/// arguments); the monitor's own `NameAcquired`/`NameLost` come from the bus, not firewalld.
fn is_firewalld_signal(line: &str) -> bool {
    line.starts_with("signal ")
        && line.contains("/org/fedoraproject/FirewallD1")
        && !line.contains("member=NameAcquired")
        && !line.contains("member=NameLost")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nft_monitor_lines_that_are_changes() {
        assert!(is_nft_change(
            "add rule inet firewalld filter_IN_public_allow tcp dport 179 accept"
        ));
        assert!(is_nft_change("delete table inet firewalld"));
        assert!(!is_nft_change(""));
        assert!(!is_nft_change(
            "# new generation 12 by process 77 (firewalld)"
        ));
    }

    #[test]
    fn firewalld_signals_and_not_the_monitors_own() {
        assert!(is_firewalld_signal(
            "signal time=1.2 sender=:1.3 -> destination=(null destination) serial=9 path=/org/fedoraproject/FirewallD1; interface=org.fedoraproject.FirewallD1; member=Reloaded"
        ));
        assert!(is_firewalld_signal(
            "signal time=1.2 sender=:1.3 -> destination=(null destination) serial=9 path=/org/fedoraproject/FirewallD1/config/zone/3; interface=org.fedoraproject.FirewallD1.config.zone; member=Updated"
        ));
        assert!(!is_firewalld_signal(
            "signal time=1.2 sender=org.freedesktop.DBus -> destination=:1.9 serial=2 path=/org/freedesktop/DBus; interface=org.freedesktop.DBus; member=NameAcquired"
        ));
        assert!(!is_firewalld_signal("   string \"public\""));
    }
}
