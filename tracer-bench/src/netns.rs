//! The benchmark's sandbox: network namespaces named `bn-<pid>-<n>-<tag>` (the project's one
//! namespace guard, deleted when dropped, also on errors and panics), veth pairs between them,
//! and the Ctrl-C flag that turns an interrupt into an ordinary error so the guards still run.
//! Nothing here touches the root namespace: every command runs inside a namespace the
//! benchmark created.

use std::{
    net::Ipv4Addr,
    sync::atomic::{AtomicBool, Ordering},
};

use anyhow::{Result, bail};
pub use tracer_netns::NetNs;
use tracer_netns::{End, veth_pair};

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

/// Deletes the namespaces of a benchmark that was killed (`bn-<pid>-...` whose process is
/// gone). Namespaces of a run that is still going are left alone.
pub fn remove_stale() {
    for name in tracer_netns::remove_stale(PREFIX) {
        eprintln!("bench: removed namespace {name} left by an earlier run");
    }
}

/// A fresh namespace of the benchmark, `bn-<pid>-<n>-<tag>`, deleted when dropped.
pub fn create(tag: &str) -> Result<NetNs> {
    Ok(NetNs::create(PREFIX, tag)?)
}

/// Two fresh namespaces, tagged `a_tag` and `b_tag` (created in that order), joined by a veth
/// pair: `bn0` with `a_ip` in the first, `bn1` with `b_ip` in the second.
pub fn pair(a_tag: &str, a_ip: Ipv4Addr, b_tag: &str, b_ip: Ipv4Addr) -> Result<(NetNs, NetNs)> {
    let a = create(a_tag)?;
    let b = create(b_tag)?;
    let end = |ns, name, ip| End {
        ns,
        name,
        ip,
        mac: None,
    };
    veth_pair(&end(&a, "bn0", a_ip), &end(&b, "bn1", b_ip))?;
    Ok((a, b))
}
