//! `cargo xtask`: the project's tasks. `setup` installs what building and testing need on a
//! fresh Debian 12 machine; `test` runs the checks CI runs; `demo` and `bench` run the tracer;
//! `fwdiff` runs the differential harness of firewalld explanations against the kernel long.

mod bench;
mod fwdiff;
mod release;
mod setup;
mod vm;

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  setup   install the Debian packages and bpf-linker the build and tests need (idempotent)
  test    setup, then cargo fmt --check, clippy -D warnings and every test (needs root), then
          the kernel-program and end-to-end tests again on each kernel of the matrix (5.10,
          6.1, 6.12) under QEMU
  matrix  setup, build the tests, and run only the kernel matrix (needs root)
  props   the property tests of every reader of outside input, on many more cases than CI's
          (`--cases N`, default 100000 per property), in release mode; prints the time taken
  demo    setup, build, and run `tracer demo` (needs root)
  release the release binary, linked against glibc 2.28 (RHEL 8) with zig; checks that no
          symbol needs a newer glibc
  bench   setup, build, and run the benchmark: prints a table, writes bench/results.json
          (needs root; a few minutes; `--quick` for a trial run, `--only cost,storm`...)
  fwdiff  the differential harness of firewalld explanations against the kernel, long:
          `--cases N` configurations (default 300), `--workers N`, `--seed N` replays one
          (needs root; writes target/fwdiff/report.txt)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo xtask matrix --help` must print help, not start a 20-minute run.
    if args.iter().skip(1).any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let result = match args.first().map(String::as_str) {
        Some("setup" | "matrix" | "release") if args.len() > 1 => Err(anyhow::anyhow!(
            "{} takes no arguments (got {:?})\n\n{USAGE}",
            args[0],
            &args[1..]
        )),
        Some("setup") => setup::run(),
        Some("test") => test(&args[1..]),
        Some("matrix") => matrix(),
        Some("props") => props(&args[1..]),
        Some("demo") => demo(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("fwdiff") => fwdiff::run(&args[1..]),
        Some("release") => release::run(),
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown task {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn root_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs a command (in the repository unless it names a directory), failing with its name when it fails.
pub fn sh(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: running {shown}");
    if cmd.get_current_dir().is_none() {
        cmd.current_dir(root_dir());
    }
    let status = cmd.status().with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Fails unless running as root, saying what `task` needs root for (`needs`) and how to run it
/// with sudo; then makes sure the machine is set up.
fn setup_as_root(needs: &str, task: &str) -> Result<()> {
    if !is_root() {
        bail!("{needs}: run `sudo -E cargo xtask {task}`");
    }
    setup::run()
}

fn test(extra: &[String]) -> Result<()> {
    setup_as_root(
        "the tests load eBPF programs and create network namespaces",
        "test",
    )?;
    sh(cargo().args(["fmt", "--all", "--check"]))?;
    sh(cargo().args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;
    // The end-to-end tests run `tracer lab ...`, which hands over to the `tracer-lab` binary
    // beside `tracer`: build every binary of the workspace first, so none is stale.
    sh(cargo().args(["build", "--bins"]))?;
    sh(cargo().args(["test"]).args(extra))?;
    if extra.is_empty() {
        run_matrix()?;
    }
    Ok(())
}

/// The property tests (named `props_*`) of tracer-nft's and tracer's readers, each on `--cases`
/// generated inputs.
fn props(args: &[String]) -> Result<()> {
    let cases: u64 = match args {
        [] => 100_000,
        [flag, n] if flag == "--cases" => n
            .parse()
            .with_context(|| format!("--cases takes a number of cases, not {n:?}"))?,
        _ => bail!("usage: cargo xtask props [--cases N]"),
    };
    for package in ["tracer-nft", "tracer"] {
        let start = std::time::Instant::now();
        sh(cargo()
            .args(["test", "--release", "--lib", "-p", package, "props_"])
            .env("PROPTEST_CASES", cases.to_string()))?;
        eprintln!(
            "xtask: {package}: every property held on {cases} cases each, in {:.0} s",
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn matrix() -> Result<()> {
    setup_as_root(
        "the kernel matrix boots QEMU guests that load eBPF programs",
        "matrix",
    )?;
    run_matrix()
}

/// Runs the matrix with the integration test binary of the current build; prints its table
/// and leaves it in target/kmatrix/matrix.md.
fn run_matrix() -> Result<()> {
    let tests = test_binary()?;
    let outcomes = vm::run(&tests)?;
    let table = vm::table(&outcomes);
    let mut notes = String::new();
    for o in &outcomes {
        for n in &o.notes {
            let _ = writeln!(notes, "- {}: {}", o.release, n.trim());
        }
    }
    let report = format!("{table}\n{notes}");
    eprintln!("\n{report}");
    std::fs::write(root_dir().join("target/kmatrix/matrix.md"), &report)?;
    vm::check(&outcomes)
}

/// The integration test binary (`tests/main.rs`), built if needed.
fn test_binary() -> Result<PathBuf> {
    let out = cargo()
        .args([
            "test",
            "--no-run",
            "--message-format=json",
            "-p",
            "tracer",
            "--test",
            "tests",
        ])
        .current_dir(root_dir())
        .output()
        .context("building the integration tests")?;
    if !out.status.success() {
        bail!(
            "building the integration tests failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(r#""kind":["test"]"#) && l.contains(r#""name":"tests""#))
        .find_map(|l| {
            let (_, rest) = l.split_once(r#""executable":""#)?;
            rest.split_once('"').map(|(path, _)| PathBuf::from(path))
        })
        .context("cargo named no executable for the integration tests")
}

fn demo(extra: &[String]) -> Result<()> {
    setup_as_root(
        "the demo builds a lab of network namespaces and loads eBPF programs",
        "demo",
    )?;
    sh(cargo().args([
        "build",
        "--release",
        "--package",
        "tracer",
        "--package",
        "tracer-lab",
    ]))?;
    sh(Command::new(root_dir().join("target/release/tracer"))
        .arg("demo")
        .args(extra))
}
