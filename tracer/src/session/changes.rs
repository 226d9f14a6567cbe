//! Changes to the node's firewall noticed as they happen, so the diagnosis and the drops'
//! causes follow a fix (or a new break) within an interval instead of waiting for the periodic
//! re-read. Two sources: the nftables ruleset's generation, which the kernel raises with every
//! committed change (firewalld's nftables backend, a `firewall-cmd --reload`, iptables-nft,
//! kube-proxy, Calico, anything), asked once an interval ([`crate::sys::nftgen`]: one request,
//! no `nft monitor` child); and `dbus-monitor`, a child process that lives as long as the
//! session and prints firewalld's signals (`Reloaded`, and its permanent configuration's
//! `Updated`), which also covers a firewalld whose backend writes iptables-legacy. Rules
//! written with iptables-legacy directly raise no event anywhere; they are read again by the
//! periodic re-read. A source that cannot be used (no nf_tables, no system bus) is logged and
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

use crate::sys::{children::end_with_this_thread, nftgen::Generation};

/// firewalld's well-known name on the system bus.
const FIREWALLD: &str = "org.fedoraproject.FirewallD1";

/// The change sources of one session; dropping it stops the listener.
pub struct FirewallChanges {
    changed: Arc<AtomicBool>,
    /// The ruleset's generation source and the generation last seen.
    nft: Option<(Generation, u32)>,
    /// `dbus-monitor`, killed when dropped.
    _listener: Option<Child>,
}

impl FirewallChanges {
    /// Starts the sources that this node has. Must run inside a tokio runtime, on a
    /// thread that lives as long as the session: the listener is killed when it ends.
    pub fn start() -> Self {
        let changed = Arc::new(AtomicBool::new(false));
        let nft = match Generation::open().and_then(|mut g| g.get().map(|now| (g, now))) {
            Ok(source) => Some(source),
            Err(e) => {
                log::info!(
                    "not asking nftables for its ruleset generation ({e}); changes are seen at the periodic re-read"
                );
                None
            }
        };
        let listener = match listen(Arc::clone(&changed)) {
            Ok(child) => Some(child),
            Err(e) => {
                log::info!(
                    "not listening with dbus-monitor for firewall changes ({e}); they are seen at the periodic re-read"
                );
                None
            }
        };
        FirewallChanges {
            changed,
            nft,
            _listener: listener,
        }
    }

    /// Whether the firewall changed since the last call.
    pub fn take(&mut self) -> bool {
        let mut changed = self.changed.swap(false, Ordering::AcqRel);
        if let Some((source, seen)) = self.nft.as_mut() {
            match source.get() {
                Ok(now) if now != *seen => {
                    *seen = now;
                    changed = true;
                }
                Ok(_) => {}
                Err(e) => log::debug!("asking nftables for its ruleset generation: {e}"),
            }
        }
        changed
    }
}

/// Spawns `dbus-monitor` on firewalld's signals, its stdout read line by line: a signal of
/// firewalld's sets `changed`.
fn listen(changed: Arc<AtomicBool>) -> std::io::Result<Child> {
    let mut cmd = Command::new("dbus-monitor");
    end_with_this_thread(&mut cmd);
    let mut child = cmd
        .arg("--system")
        .arg(format!("type='signal',sender='{FIREWALLD}'"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout"))?;
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next_line().await {
                Ok(Some(line)) if is_firewalld_signal(&line) => {
                    changed.store(true, Ordering::Release);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    log::debug!("reading dbus-monitor: {e}");
                    break;
                }
            }
        }
        log::debug!("dbus-monitor stopped; firewall changes are seen at the periodic re-read");
    });
    Ok(child)
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
