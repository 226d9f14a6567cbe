//! Where the binaries are. The lab runs its own binary inside each node as the cluster's
//! stand-in servers, and the demo runs the `tracer` binary inside a node; `tracer lab` and
//! `tracer demo` reach this binary the same way. They sit side by side in cargo's target
//! directory (`target/debug/deps` holds the test binaries, one level down) and in an install;
//! `PATH` is the fallback.

use std::path::PathBuf;

use anyhow::{Result, bail};

/// The product binary, `tracer`.
pub fn tracer() -> Result<PathBuf> {
    sibling("tracer", "tracer")
}

/// The lab's binary, `tracer-lab`.
pub fn lab() -> Result<PathBuf> {
    sibling("tracer-lab", "tracer-lab")
}

fn sibling(name: &str, package: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dirs = exe.ancestors().skip(1).take(2).map(PathBuf::from);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = dirs
        .chain(std::env::split_paths(&path))
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    match found {
        Some(p) => Ok(p),
        None => bail!(
            "cannot find the {name} binary beside {} or in PATH; build it with `cargo build -p {package}`",
            exe.display()
        ),
    }
}
