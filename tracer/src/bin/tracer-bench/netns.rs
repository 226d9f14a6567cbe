//! The benchmark's sandbox: network namespaces named `bn-<pid>-<tag>` that are deleted when
//! their guard drops (also on errors and panics), veth pairs between them, and the Ctrl-C
//! flag that turns an interrupt into an ordinary error so the guards still run. Nothing here
//! touches the root namespace: every command runs inside a namespace the benchmark created.

use std::{
    net::Ipv4Addr,
    process::Command,
    sync::atomic::{AtomicBool, AtomicU32, Ordering},
};

use anyhow::{Result, bail};

static NEXT: AtomicU32 = AtomicU32::new(0);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Prefix of every namespace the benchmark creates.
const PREFIX: &str = "bn-";

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C stops the running step (its children get the signal too) and the run ends through
/// the error path, so every namespace, lab and process is removed on the way out.
pub fn catch_interrupts() {
    let handler: extern "C" fn(libc::c_int) = on_sigint;
    // SAFETY: the handler only stores to an atomic. Children get the default disposition
    // back when they exec.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
}

/// True once the user has asked the benchmark to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Fails once the user has asked the benchmark to stop.
pub fn check_interrupt() -> Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// Deletes namespaces left by a benchmark that was killed (`bn-<pid>-...` whose process is
/// gone). Namespaces of a run that is still going are left alone.
pub fn remove_stale() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("bench: removing namespace {name} left by an earlier run");
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
        }
    }
}

/// A network namespace that exists for the guard's lifetime.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    pub fn new(tag: &str) -> Result<NetNs> {
        let name = format!(
            "{PREFIX}{}-{}-{tag}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        tracer::lab::net::run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) -> Result<()> {
        tracer::lab::net::ip(&self.name, args).map(drop)
    }

    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        tracer::lab::net::sysctl(&self.name, key, value)
    }

    /// Loads an nftables ruleset (`nft -f` syntax) into the namespace.
    pub fn nft(&self, ruleset: &str) -> Result<()> {
        tracer::lab::net::nft(&self.name, ruleset)
    }

    /// Runs `f` on a thread that has entered the namespace (setns is per thread).
    pub fn enter<R: Send>(&self, f: impl FnOnce() -> Result<R> + Send) -> Result<R> {
        tracer::model::netns::run_in(&self.name, f)?
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A command that runs `program` inside the namespace `ns` (any namespace, a lab's too).
pub fn in_ns(ns: &str, program: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, program]);
    cmd
}

/// One end of a veth pair.
pub struct End<'a> {
    pub ns: &'a NetNs,
    pub name: &'a str,
    pub ip: Ipv4Addr,
}

/// Two fresh namespaces, tagged `a_tag` and `b_tag` (created in that order), joined by a veth
/// pair: `bn0` with `a_ip` in the first, `bn1` with `b_ip` in the second.
pub fn pair(a_tag: &str, a_ip: Ipv4Addr, b_tag: &str, b_ip: Ipv4Addr) -> Result<(NetNs, NetNs)> {
    let a = NetNs::new(a_tag)?;
    let b = NetNs::new(b_tag)?;
    veth_pair(
        &End {
            ns: &a,
            name: "bn0",
            ip: a_ip,
        },
        &End {
            ns: &b,
            name: "bn1",
            ip: b_ip,
        },
    )?;
    Ok((a, b))
}

/// Connects two namespaces with a veth pair, addresses in a /24, IPv6 off to keep the link
/// quiet.
pub fn veth_pair(a: &End, b: &End) -> Result<()> {
    a.ns.ip(&[
        "link", "add", a.name, "type", "veth", "peer", "name", b.name, "netns", &b.ns.name,
    ])?;
    for end in [a, b] {
        end.ns
            .sysctl(&format!("net.ipv6.conf.{}.disable_ipv6", end.name), "1")?;
        end.ns
            .ip(&["addr", "add", &format!("{}/24", end.ip), "dev", end.name])?;
        end.ns.ip(&["link", "set", end.name, "up"])?;
    }
    Ok(())
}
