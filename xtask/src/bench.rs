//! `cargo xtask bench`: builds the release binaries and runs `tracer-bench`, which prints the
//! table and writes `bench/results.json` (a `--quick` or `--only` run: `target/bench/`). The benchmark lives in the `tracer` package (it
//! links the tracer library); this crate cannot depend on it, so it runs it as a program.

use std::process::Command;

use anyhow::Result;

use crate::{cargo, root_dir, setup_as_root, sh};

pub fn run(extra: &[String]) -> Result<()> {
    setup_as_root(
        "the benchmark loads eBPF programs and creates network namespaces",
        "bench",
    )?;
    sh(cargo().args(["build", "--release", "-p", "tracer", "--bins"]))?;
    let root = root_dir();
    let mut bench = Command::new(root.join("target/release/tracer-bench"));
    bench
        .arg("--tracer")
        .arg(root.join("target/release/tracer"));
    // Only a full run replaces the recorded results the README quotes; a trial or partial run
    // goes to target/ unless told where.
    let given = |flag: &str| {
        extra
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    if !given("--out") {
        let out = if given("--quick") || given("--only") {
            root.join("target/bench/results.json")
        } else {
            root.join("bench/results.json")
        };
        bench.arg("--out").arg(out);
    }
    sh(bench.args(extra))
}
