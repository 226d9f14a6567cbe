//! Entering a named network namespace (`ip netns` names live in /run/netns), so the tracer can
//! watch a pod or a lab node without a wrapper. Must run before any other thread starts:
//! setns applies to the calling thread only. Code that stays where it is and needs a moment in
//! another namespace runs a closure on a scoped thread that enters it ([`run_in`]).

use std::{fs::File, os::fd::AsRawFd, path::PathBuf};

use anyhow::{Context, Result, anyhow, bail};

/// The file of a namespace given by `ip netns` name, or by path.
pub fn path(name: &str) -> PathBuf {
    if name.contains('/') {
        PathBuf::from(name)
    } else {
        PathBuf::from("/run/netns").join(name)
    }
}

/// Moves the calling thread into the network namespace `name`.
pub fn enter(name: &str) -> Result<()> {
    let path = path(name);
    let file = File::open(&path).with_context(|| {
        format!(
            "network namespace {name:?}: cannot open {} (see `ip netns list`)",
            path.display()
        )
    })?;
    // SAFETY: plain syscall on a descriptor we own.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        let err = std::io::Error::last_os_error();
        bail!("entering network namespace {name:?}: {err}");
    }
    Ok(())
}

/// Runs `f` on a scoped thread that has entered the network namespace `name`, leaving the
/// calling thread where it is; `f`'s result, or why the thread could not enter or panicked.
pub fn run_in<R: Send>(name: &str, f: impl FnOnce() -> R + Send) -> Result<R> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                enter(name)?;
                Ok(f())
            })
            .join()
            .map_err(|_| anyhow!("the thread inside network namespace {name:?} panicked"))?
    })
}
