//! `tracer lab` and `tracer demo`: the test bed lives in its own binary, `tracer-lab`, so the
//! node binary carries none of it. These commands hand their arguments to that binary (found
//! beside this one, else in `PATH`) by replacing this process with it.

use std::{ffi::OsString, os::unix::process::CommandExt, path::PathBuf, process::ExitCode};

use anyhow::{Result, bail};
use clap::Args;

/// Everything after `tracer lab` or `tracer demo`, `--help` included, for `tracer-lab`.
#[derive(Debug, Args)]
pub struct Passthrough {
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<OsString>,
}

/// Runs `tracer-lab [first] ARGS...` in place of this process.
pub fn exec(first: Option<&str>, args: Passthrough) -> Result<ExitCode> {
    let lab = lab_binary()?;
    let err = std::process::Command::new(&lab)
        .args(first)
        .args(args.args)
        .exec();
    bail!("running {}: {err}", lab.display())
}

fn lab_binary() -> Result<PathBuf> {
    const NAME: &str = "tracer-lab";
    let beside = std::env::current_exe()?.with_file_name(NAME);
    if beside.is_file() {
        return Ok(beside);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(found) = std::env::split_paths(&path)
        .map(|d| d.join(NAME))
        .find(|p| p.is_file())
    {
        return Ok(found);
    }
    bail!(
        "the lab and the demo are tracer's test bed, in the separate `{NAME}` binary, which is not installed beside {} or in PATH; build it with `cargo build -p tracer-lab` (`cargo xtask demo` does)",
        beside.with_file_name("tracer").display()
    )
}
