//! `cargo xtask bench`: builds the release binaries and runs `tracer-bench`, which prints the
//! table and writes `bench/results.json` (a `--quick` or `--only` run: `target/bench/`). The
//! benchmark is its own crate (`tracer-bench`: it links the tracer library and the lab); this
//! crate does not depend on it, so it runs it as a program.

use std::process::Command;

use anyhow::Result;

use crate::{cargo, root_dir, setup_as_root, sh};

pub fn run(extra: &[String]) -> Result<()> {
    setup_as_root(
        "the benchmark loads eBPF programs and creates network namespaces",
        "bench",
    )?;
    // The bench runs `tracer`, whose `tracer lab` hands over to `tracer-lab` beside it.
    sh(cargo().args([
        "build",
        "--release",
        "-p",
        "tracer",
        "-p",
        "tracer-lab",
        "-p",
        "tracer-bench",
    ]))?;
    let root = root_dir();
    // `sh` runs it in the repository root, where its default --out (bench/results.json, or
    // target/bench/results.json for --quick and --only) lands.
    sh(Command::new(root.join("target/release/tracer-bench"))
        .arg("--tracer")
        .arg(root.join("target/release/tracer"))
        .args(extra))
}
