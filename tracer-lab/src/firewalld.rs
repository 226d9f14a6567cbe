//! Real firewalld (Debian 12, firewalld 1.3.3, nftables backend) inside a lab network namespace,
//! one instance per lab node, without touching the host.
//!
//! Every node gets a directory `DIR` (absolute and short: the D-Bus socket path must fit in
//! 107 bytes): `DIR/etc/firewalld/{firewalld.conf,zones/,services/}` (the node's permanent
//! config), `DIR/run/` (bind-mounted over `/run` for firewalld, which always creates
//! `/run/firewalld` and writes temp files there), `DIR/dbus.conf` + `DIR/bus.sock` (a private
//! system-like bus), and logs. [`start`] runs `dbus-daemon` in the namespace, then firewalld in a
//! private mount namespace (`unshare --mount --propagation private`) with `/run` and
//! `/etc/firewalld` bound to the node's own directories and `--system-config` pointing there.
//! `ip`, `unshare` and `sh` all `exec`, so the spawned child's pid is the daemon's. firewalld's
//! nftables table (`inet firewalld`) exists only in that namespace; the host's /etc/firewalld,
//! /run and /var/log are never written. `firewall-cmd` only talks D-Bus, so [`firewall_cmd`]
//! needs just the bus address. Measured: dbus ready in 5-10 ms, firewalld running 0.4-0.7 s
//! after spawn, about a second for four started in parallel.
//!
//! Pitfalls this encodes: `mount -n` (without it mount(8) creates /run/mount on the host); a
//! stale `inet firewalld` table from a killed instance is deleted before starting, or every rule
//! would be doubled; firewalld exits at once if its bus is not listening yet.

use anyhow::{Context, Result, bail};
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// `firewall-cmd --state` exit code when firewalld is up but its startup failed (bad config).
const EXIT_RUNNING_BUT_FAILED: i32 = 251;
/// Longest usable `sun_path` (108 bytes including the terminating NUL).
const MAX_SUN_PATH: usize = 107;

/// Same settings as Debian's shipped /etc/firewalld/firewalld.conf (1.3.3), written explicitly so
/// the lab does not depend on the host's copy. `CleanupOnExit=yes` makes SIGTERM remove the
/// `inet firewalld` table.
const FIREWALLD_CONF: &str = "\
# firewalld.conf for a lab node (written by tracer's lab, firewalld.rs)
DefaultZone=public
CleanupOnExit=yes
CleanupModulesOnExit=no
Lockdown=no
IPv6_rpfilter=yes
IndividualCalls=no
LogDenied=off
FirewallBackend=nftables
FlushAllOnReload=yes
RFC3964_IPv4=yes
";

/// The processes of one node's firewalld. They keep running when this is dropped: the lab
/// records their pids and `lab down` stops them.
#[derive(Debug)]
pub struct Daemons {
    pub dbus_pid: u32,
    pub firewalld_pid: u32,
}

fn abs_dir(dir: &Path) -> Result<PathBuf> {
    fs::canonicalize(dir)
        .with_context(|| format!("node dir {} (run prepare_node_dir first)", dir.display()))
}

fn etc_dir(dir: &Path) -> PathBuf {
    dir.join("etc/firewalld")
}

fn bus_socket(dir: &Path) -> PathBuf {
    dir.join("bus.sock")
}

/// `unix:path=DIR/bus.sock`, the value for `DBUS_SYSTEM_BUS_ADDRESS`.
pub fn bus_address(dir: &Path) -> Result<String> {
    Ok(format!(
        "unix:path={}",
        bus_socket(&abs_dir(dir)?).display()
    ))
}

fn check_str(p: &Path) -> Result<&str> {
    let s = p.to_str().context("node dir path must be valid UTF-8")?;
    if s.chars().any(|c| {
        c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '&' | ';' | '\\' | '$' | '`')
    }) {
        bail!("node dir path {s:?} must not contain whitespace or shell/XML special characters");
    }
    Ok(s)
}

fn tail(path: &Path, max: usize) -> String {
    let mut s = String::new();
    if let Ok(mut f) = fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    let start = s.len().saturating_sub(max);
    let start = (start..s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    format!("--- {} ---\n{}", path.display(), &s[start..])
}

/// Creates `dir` (if needed) with `etc/firewalld/{zones,services}`, `etc/firewalld/firewalld.conf`
/// (only if missing, so a pre-seeded config is kept), `run/` and `dbus.conf` (always rewritten).
/// Zone/service XML files can be dropped into `etc/firewalld/zones|services` before [`start`]
/// ([`write_zone`], [`write_service`]).
pub fn prepare_node_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let dir = abs_dir(dir)?;
    let d = check_str(&dir)?;
    let sock = bus_socket(&dir);
    if sock.as_os_str().len() > MAX_SUN_PATH {
        bail!(
            "{} is longer than {MAX_SUN_PATH} bytes (unix socket limit): use a shorter node dir",
            sock.display()
        );
    }
    let etc = etc_dir(&dir);
    for sub in ["zones", "services"] {
        fs::create_dir_all(etc.join(sub))
            .with_context(|| format!("create {}/{sub}", etc.display()))?;
    }
    fs::set_permissions(&etc, fs::Permissions::from_mode(0o750))?;
    fs::create_dir_all(dir.join("run"))?;
    let conf = etc.join("firewalld.conf");
    if !conf.exists() {
        fs::write(&conf, FIREWALLD_CONF).with_context(|| format!("write {}", conf.display()))?;
    }
    // Minimal private bus: root may own any name (firewalld needs org.fedoraproject.FirewallD1
    // and ...FirewallD1.config), send to anyone and receive replies. No <servicedir>/
    // <standard_system_servicedirs/>: nothing is ever bus-activated (no polkitd, so firewalld
    // falls back to "caller uid must be 0"). No <user>, so it keeps running as root.
    let dbus_conf = format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path={d}/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy user="root">
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#
    );
    fs::write(dir.join("dbus.conf"), dbus_conf)?;
    Ok(())
}

fn write_xml(dir: &Path, sub: &str, name: &str, xml: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        bail!("bad firewalld object name {name:?}");
    }
    let p = etc_dir(dir).join(sub).join(format!("{name}.xml"));
    fs::write(&p, xml).with_context(|| format!("write {}", p.display()))
}

/// Writes `DIR/etc/firewalld/zones/NAME.xml` (a full `<zone>` document). It replaces the stock
/// zone of that name entirely: keep `<forward/>` if intra-zone forwarding is wanted.
pub fn write_zone(dir: &Path, name: &str, xml: &str) -> Result<()> {
    write_xml(dir, "zones", name, xml)
}

/// Writes `DIR/etc/firewalld/services/NAME.xml` (a full `<service>` document).
pub fn write_service(dir: &Path, name: &str, xml: &str) -> Result<()> {
    write_xml(dir, "services", name, xml)
}

fn log_file(path: &Path) -> Result<fs::File> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))
}

/// Deletes a leftover `inet firewalld` table in `netns` (left by a SIGKILLed firewalld). A new
/// firewalld does NOT flush it: it appends its rules to the stale ones (every rule twice) until
/// the next `--reload`. Only call this when no firewalld runs in `netns`.
pub fn delete_stale_tables(netns: &str) -> Result<()> {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            netns,
            "nft",
            "delete",
            "table",
            "inet",
            "firewalld",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("run ip netns exec .. nft")?;
    Ok(())
}

fn kill_and_reap(child: &mut Child, name: &str, grace: Duration) -> Option<bool> {
    // Returns Some(true) if SIGKILL was needed, None if it had already exited.
    if let Ok(Some(_)) = child.try_wait() {
        return None;
    }
    // std only sends SIGKILL; SIGTERM goes through kill(1). The pid cannot have been reused:
    // the child is not reaped yet.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stderr(Stdio::null())
        .status();
    let t0 = Instant::now();
    while t0.elapsed() < grace {
        if let Ok(Some(_)) = child.try_wait() {
            return Some(false);
        }
        sleep(Duration::from_millis(20));
    }
    eprintln!(
        "firewalld.rs: {name} pid {} ignored SIGTERM for {grace:?}, sending SIGKILL",
        child.id()
    );
    let _ = child.kill();
    let _ = child.wait();
    Some(true)
}

/// Starts dbus-daemon and then firewalld in `netns` for the node in `dir` and returns their pids.
/// It waits only for the bus socket to accept connections (a few ms; firewalld exits at once if
/// the bus is not there), not for firewalld: use [`wait_ready`]. Removes a stale socket and a
/// stale `inet firewalld` table first; refuses to start if the node's bus is already live.
pub fn start(netns: &str, dir: &Path) -> Result<Daemons> {
    let dir = abs_dir(dir)?;
    let d = check_str(&dir)?.to_string();
    if !dir.join("dbus.conf").exists() {
        bail!(
            "{} is not prepared (no dbus.conf): call prepare_node_dir",
            dir.display()
        );
    }
    if !Path::new("/run/netns").join(netns).exists() {
        bail!("network namespace {netns:?} does not exist (ip netns add {netns})");
    }
    let sock = bus_socket(&dir);
    if UnixStream::connect(&sock).is_ok() {
        bail!(
            "a bus is already listening on {}: node already started?",
            sock.display()
        );
    }
    let _ = fs::remove_file(&sock);
    delete_stale_tables(netns)?;

    let dbus_log = log_file(&dir.join("dbus.log"))?;
    let mut dbus = Command::new("ip")
        .args(["netns", "exec", netns, "dbus-daemon"])
        .arg(format!("--config-file={d}/dbus.conf"))
        .args(["--nofork", "--nopidfile", "--nosyslog"])
        // Its own process group: a Ctrl-C at the terminal of `lab up` must not reach it.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(dbus_log.try_clone()?)
        .stderr(dbus_log)
        .spawn()
        .context("spawn ip netns exec .. dbus-daemon")?;
    let t0 = Instant::now();
    loop {
        if UnixStream::connect(&sock).is_ok() {
            break;
        }
        if let Some(st) = dbus.try_wait()? {
            bail!(
                "dbus-daemon exited ({st}) before listening\n{}",
                tail(&dir.join("dbus.log"), 2000)
            );
        }
        if t0.elapsed() > Duration::from_secs(5) {
            let _ = dbus.kill();
            let _ = dbus.wait();
            bail!(
                "dbus-daemon did not listen on {} within 5s\n{}",
                sock.display(),
                tail(&dir.join("dbus.log"), 2000)
            );
        }
        sleep(Duration::from_millis(5));
    }

    // $1 = node dir. /run first (firewalld mkdirs /run/firewalld); /etc/firewalld is bound as a
    // safety net in case some code path ignores --system-config. Mounts stay in this private
    // mount namespace and vanish with firewalld. `-n`: without it mount(8)/libmount does
    // mkdir("/run/mount") for its utab on the host's /run (verified with strace).
    let script = r#"set -e
d="$1"
mount -n --bind "$d/run" /run
if [ -d /etc/firewalld ]; then mount -n --bind "$d/etc/firewalld" /etc/firewalld; fi
exec firewalld --nofork --nopid --system-config "$d/etc/firewalld" --log-target file --log-file "$d/firewalld.log"
"#;
    let out = log_file(&dir.join("firewalld.out"))?;
    let fw = Command::new("ip")
        .args([
            "netns",
            "exec",
            netns,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            &d,
        ])
        .env("DBUS_SYSTEM_BUS_ADDRESS", format!("unix:path={d}/bus.sock"))
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn();
    let fw = match fw {
        Ok(c) => c,
        Err(e) => {
            kill_and_reap(&mut dbus, "dbus-daemon", Duration::from_secs(2));
            return Err(e).context("spawn ip netns exec .. firewalld");
        }
    };
    // Our own record (firewalld runs with --nopid) so wait_ready can notice an early exit.
    let _ = fs::write(dir.join("firewalld.pid"), format!("{}\n", fw.id()));
    Ok(Daemons {
        dbus_pid: dbus.id(),
        firewalld_pid: fw.id(),
    })
}

/// True while `pid` exists and is not a zombie (reads /proc/PID/stat).
fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Polls `firewall-cmd --state` (through `ip netns exec`, with the node's bus address) every
/// 100 ms until it prints `running`. Fails at once on `failed` (exit 251: firewalld is up but
/// could not apply its config), when the firewalld pid recorded by [`start`] in
/// `DIR/firewalld.pid` is gone, and on timeout, with the tail of the node's logs.
pub fn wait_ready(netns: &str, dir: &Path, timeout: Duration) -> Result<()> {
    let dir = abs_dir(dir)?;
    let pid: Option<u32> = fs::read_to_string(dir.join("firewalld.pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let t0 = Instant::now();
    let last = loop {
        if let Some(pid) = pid
            && !pid_alive(pid)
        {
            bail!(
                "firewalld (pid {pid}) in {netns} exited during startup\n{}\n{}",
                tail(&dir.join("firewalld.log"), 3000),
                tail(&dir.join("firewalld.out"), 1000)
            );
        }
        let out = firewall_cmd_output(netns, &dir, &["--state"])?;
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && stdout == "running" {
            return Ok(());
        }
        let last = format!(
            "{} {} {}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        if out.status.code() == Some(EXIT_RUNNING_BUT_FAILED) {
            bail!(
                "firewalld in {netns} is in FAILED state: {last}\n{}",
                tail(&dir.join("firewalld.log"), 3000)
            );
        }
        if t0.elapsed() >= timeout {
            break last;
        }
        sleep(Duration::from_millis(100));
    };
    bail!(
        "firewalld in {netns} not running after {timeout:?} (last: {last})\n{}\n{}",
        tail(&dir.join("firewalld.log"), 3000),
        tail(&dir.join("firewalld.out"), 1000)
    )
}

/// Runs `ip netns exec NETNS firewall-cmd ARGS` against the node's bus and returns the raw
/// output, whatever the exit status (`--query-*` exits 1 for "no", 252 = not running).
pub fn firewall_cmd_output(netns: &str, dir: &Path, args: &[&str]) -> Result<Output> {
    let addr = bus_address(dir)?;
    Command::new("ip")
        .args(["netns", "exec", netns, "firewall-cmd"])
        .args(args)
        .env("DBUS_SYSTEM_BUS_ADDRESS", addr)
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .stdin(Stdio::null())
        .output()
        .context("run ip netns exec .. firewall-cmd")
}

/// Runs `firewall-cmd ARGS` for the node; returns stdout, or an error with the exit code and
/// stderr when it exits non-zero.
pub fn firewall_cmd(netns: &str, dir: &Path, args: &[&str]) -> Result<String> {
    let out = firewall_cmd_output(netns, dir, args)?;
    if !out.status.success() {
        bail!(
            "firewall-cmd {args:?} in {netns}: {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
