//! `cargo xtask release`: the release binary for the distributions the cluster guides target,
//! RHEL 8 (glibc 2.28) included. Rust's musl target cannot be had here (rustup reaches no
//! server, and Debian 12 ships no musl `std` for Rust), so the binary keeps glibc and is
//! linked by zig (cargo-zigbuild, from PyPI) against glibc 2.28's symbol versions; it then
//! checks that no symbol asks for a newer glibc.

use std::{path::PathBuf, process::Command};

use anyhow::{Context, Result, bail};

use crate::{root_dir, setup::TOOLS_VENV, sh};

/// The oldest glibc the binary runs on: RHEL 8's.
pub const GLIBC: (u32, u32) = (2, 28);

pub fn run() -> Result<()> {
    crate::setup::run()?;
    let venv_bin = PathBuf::from(TOOLS_VENV).join("bin");
    let path = std::env::join_paths(std::iter::once(venv_bin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))?;
    let target = format!("x86_64-unknown-linux-gnu.{}.{}", GLIBC.0, GLIBC.1);
    sh(crate::cargo()
        .args([
            "zigbuild",
            "--release",
            "--locked",
            "-p",
            "tracer",
            "--bin",
            "tracer",
        ])
        .args(["--target", &target])
        .env("PATH", path))?;
    let binary = root_dir().join("target/x86_64-unknown-linux-gnu/release/tracer");
    let newest = newest_glibc(&binary)?;
    if newest > GLIBC {
        bail!(
            "{} asks for GLIBC_{}.{}, newer than {}.{}",
            binary.display(),
            newest.0,
            newest.1,
            GLIBC.0,
            GLIBC.1
        );
    }
    eprintln!(
        "xtask: {} needs glibc {}.{} at most (RHEL 8 has 2.28)",
        binary.display(),
        newest.0,
        newest.1
    );
    Ok(())
}

/// The newest `GLIBC_x.y` version among the binary's dynamic symbols.
pub fn newest_glibc(binary: &std::path::Path) -> Result<(u32, u32)> {
    let out = Command::new("objdump")
        .arg("-T")
        .arg(binary)
        .output()
        .context("running objdump -T (binutils)")?;
    if !out.status.success() {
        bail!("objdump -T {} failed", binary.display());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let newest = text
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.').map(str::parse::<u32>);
            Some((
                parts.next()?.ok()?,
                parts.next().and_then(Result::ok).unwrap_or(0),
            ))
        })
        .max()
        .context("no GLIBC_ symbol versions: not a dynamically linked glibc binary")?;
    Ok(newest)
}
