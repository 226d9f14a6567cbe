//! `cargo xtask fwdiff`: the differential harness of firewalld explanations against the
//! kernel (`tests/fwdiff`), run long: `--cases N` seeded configurations from `--first N` on,
//! on `--workers N` firewalld nodes in parallel, or one configuration with `--seed N` to replay
//! a failure. The tally is printed and written to `target/fwdiff/report.txt`.

use anyhow::{Context, Result, bail};

use super::{cargo, root_dir, setup_as_root, sh};

const USAGE: &str = "usage: cargo xtask fwdiff [--cases N] [--first N] [--workers N] [--seed N]";

pub fn run(args: &[String]) -> Result<()> {
    let mut env: Vec<(&str, String)> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let var = match a.as_str() {
            "--cases" => "FWDIFF_CASES",
            "--first" => "FWDIFF_FIRST",
            "--workers" => "FWDIFF_WORKERS",
            "--seed" => "FWDIFF_SEED",
            "-v" | "--verbose" => {
                env.push(("FWDIFF_VERBOSE", "1".into()));
                continue;
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        };
        let value = it
            .next()
            .with_context(|| format!("{a} needs a number\n{USAGE}"))?;
        value
            .parse::<u64>()
            .with_context(|| format!("{a} {value:?} is not a number"))?;
        env.push((var, value.clone()));
    }
    setup_as_root(
        "the harness runs firewalld in network namespaces it creates",
        "fwdiff",
    )?;
    let report = root_dir().join("target/fwdiff/report.txt");
    std::fs::create_dir_all(report.parent().expect("a parent"))?;
    let mut cmd = cargo();
    cmd.args([
        "test",
        "-p",
        "tracer",
        "--test",
        "tests",
        "fwdiff::fwdiff_long",
        "--",
        "--ignored",
        "--nocapture",
    ])
    .env("FWDIFF_REPORT", &report);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let result = sh(&mut cmd);
    if let Ok(text) = std::fs::read_to_string(&report) {
        eprintln!("\n{text}\n(written to {})", report.display());
    }
    result
}
