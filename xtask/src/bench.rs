//! `cargo xtask bench`: builds the release binaries and runs `tracer-bench`, which prints the
//! table and writes `bench/results.json`. The benchmark lives in the `tracer` package (it
//! links the tracer library); this crate cannot depend on it, so it runs it as a program.

use std::process::Command;

use anyhow::{Result, bail};

use crate::{cargo, is_root, root_dir, setup, sh};

pub fn run(extra: &[String]) -> Result<()> {
    if !is_root() {
        bail!(
            "the benchmark loads eBPF programs and creates network namespaces: run `sudo -E cargo xtask bench`"
        );
    }
    setup::run()?;
    sh(cargo().args(["build", "--release", "-p", "tracer", "--bins"]))?;
    let root = root_dir();
    sh(Command::new(root.join("target/release/tracer-bench"))
        .arg("--out")
        .arg(root.join("bench/results.json"))
        .arg("--tracer")
        .arg(root.join("target/release/tracer"))
        .args(extra))
}
