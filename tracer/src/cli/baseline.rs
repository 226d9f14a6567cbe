//! `tracer baseline record` and `tracer baseline compare`: trace for a window through the same
//! session loop `tracer watch` drives, turn the counters and drop totals of the window into a baseline
//! of rates, and either write it or compare it with a recorded one, exiting 4 on a regression.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, SystemTime},
};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};

use super::{
    kernel_release,
    trace::{TraceArgs, parse_secs},
};
use crate::{
    events::baseline::{Baseline, DropWindow, IfaceHook, Meta, Thresholds, compare, rfc3339},
    model::ifaces,
    output::baseline::{self as render, CompareContext},
    session::{Session, Stop},
};

/// Exit status of a comparison that found a regression (distinct from a failure to run, 1).
const REGRESSION: u8 = 4;

#[derive(Debug, Args)]
pub struct BaselineArgs {
    #[command(subcommand)]
    command: BaselineCommand,
}

#[derive(Debug, Subcommand)]
enum BaselineCommand {
    /// Trace for a while and write what the node carried, as rates per second, to a JSON file.
    Record(RecordArgs),
    /// Trace again and compare with a recorded baseline: what moved, and whether it is a
    /// regression (exit status 4).
    Compare(CompareArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "The file holds, per interface, direction and class (overlay packets again by their inner
class), the packet and byte rates per second and the packet-size distribution, and the drop
rate per interface, class and kernel drop reason; with the profile, the interfaces and their
hooks, the kernel release and tracer's version. Record while the node is healthy and carries
its usual load.

Examples:
  sudo tracer baseline record --duration 300 -o /var/lib/tracer/baseline.json
  sudo tracer baseline record -i eth0 -i vxlan.calico --profile k0s-calico --duration 60 -o base.json"
)]
pub struct RecordArgs {
    #[command(flatten)]
    trace: TraceArgs,

    /// Seconds to trace.
    #[arg(long, value_name = "SECS", value_parser = parse_secs, default_value = "60")]
    duration: Duration,

    /// The baseline file to write.
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Sentences, regressions first, then the other changes and notes.
    Text,
    /// One JSON object: the thresholds, every change with its sentence, the notes.
    Json,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Traces for as long as the baseline was recorded (or --duration), on the baseline's interfaces
and with its profile and catalog files unless told otherwise, and compares every rate found
on either side. It reports what moved by at least --threshold percent:

  regressions: a class's traffic falling by the threshold or more (or disappearing), drops
               rising by the threshold or more, drops appearing where the baseline had none
  reported, not regressions: traffic rising or appearing, byte rates moving at a steady
               packet rate, packet-size distributions shifting (by total-variation distance,
               in percent, against the same threshold), drops falling, housekeeping drops
               (QUEUE_PURGE, TCP_CLOSE... : sockets tidying up) rising

Rates below --floor per second on both sides are noise and not compared (a class falling from
0.8 to 0 packets/s is not a regression at the default floor).

Exit status: 0 when nothing regressed, 4 on a regression, 1 when the comparison could not
run (unreadable or malformed baseline, tracing failed).

Examples:
  sudo tracer baseline compare /var/lib/tracer/baseline.json
  sudo tracer baseline compare base.json --duration 30 --threshold 50 --output json"
)]
pub struct CompareArgs {
    /// The baseline `tracer baseline record` wrote.
    #[arg(value_name = "FILE")]
    file: PathBuf,

    #[command(flatten)]
    trace: TraceArgs,

    /// Seconds to trace. Default: as long as the baseline was recorded.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    duration: Option<Duration>,

    /// Smallest change reported, in percent of the baseline's rate.
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent, default_value = "30")]
    threshold: f64,

    /// Packets (or drops) per second below which a rate is noise: compared only when one side
    /// reaches it.
    #[arg(long, value_name = "PER_SEC", value_parser = parse_floor, default_value = "1")]
    floor: f64,

    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    output: Format,
}

fn parse_percent(s: &str) -> Result<f64, String> {
    match s.trim_end_matches('%').parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{s:?}: give a positive percentage")),
    }
}

fn parse_floor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{s:?}: give a rate per second, zero or more")),
    }
}

pub async fn run(args: BaselineArgs) -> Result<ExitCode> {
    match args.command {
        BaselineCommand::Record(args) => record(args).await,
        BaselineCommand::Compare(args) => compare_with(args).await,
    }
}

async fn record(args: RecordArgs) -> Result<ExitCode> {
    // Fail now rather than after the whole recording.
    let dir = match args.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!(
            "cannot write {}: {} is not a directory",
            args.output.display(),
            dir.display()
        );
    }
    let baseline = sample(&args.trace, args.duration).await?;
    let file = args.output.display().to_string();
    std::fs::write(&args.output, baseline.to_json())
        .with_context(|| format!("writing the baseline {file}"))?;
    let mut text = Vec::new();
    render::recorded(&mut text, &baseline, &file)?;
    crate::output::print(&String::from_utf8_lossy(&text))?;
    Ok(ExitCode::SUCCESS)
}

async fn compare_with(mut args: CompareArgs) -> Result<ExitCode> {
    let file = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading the baseline {file}"))?;
    let baseline = Baseline::from_json(&text, &file)?;
    let meta = &baseline.meta;
    // Measure what the baseline measured, unless told otherwise.
    if args.trace.profile.is_none() {
        args.trace.profile = Some(meta.profile.clone());
    }
    if args.trace.catalog.is_empty() {
        args.trace.catalog = meta.catalogs.iter().map(PathBuf::from).collect();
    }
    if args.trace.iface.is_empty() {
        args.trace.iface = present_interfaces(&meta.interfaces)?;
    }
    let duration = args
        .duration
        .unwrap_or_else(|| Duration::from_secs_f64(baseline.duration_secs));
    let sample = sample(&args.trace, duration).await?;
    let cmp = compare(
        &baseline,
        &sample,
        Thresholds {
            percent: args.threshold,
            floor: args.floor,
        },
    );
    let ctx = CompareContext {
        file: &file,
        baseline: &baseline,
        sample: &sample,
    };
    let mut text = Vec::new();
    match args.output {
        Format::Text => render::text(&mut text, &ctx, &cmp)?,
        Format::Json => render::json(&mut text, &ctx, &cmp)?,
    }
    crate::output::print(&String::from_utf8_lossy(&text))?;
    Ok(if cmp.regressed() {
        ExitCode::from(REGRESSION)
    } else {
        ExitCode::SUCCESS
    })
}

/// The baseline's interfaces that exist now. One that is gone is left out with a warning: its
/// traffic then shows as gone, which is what happened.
fn present_interfaces(recorded: &[IfaceHook]) -> Result<Vec<String>> {
    let now = ifaces::list().context("listing interfaces")?;
    let mut present = Vec::new();
    for i in recorded {
        if now.iter().any(|n| n.name == i.iface) {
            present.push(i.iface.clone());
        } else {
            log::warn!(
                "{} was traced in the baseline but does not exist now",
                i.iface
            );
        }
    }
    if present.is_empty() && !recorded.is_empty() {
        let names: Vec<&str> = recorded.iter().map(|i| i.iface.as_str()).collect();
        bail!(
            "none of the baseline's interfaces exists here ({}); name the ones to trace with --iface",
            names.join(", ")
        );
    }
    Ok(present)
}

/// Attaches, traces for `duration`, detaches, and returns the window's rates.
async fn sample(args: &TraceArgs, duration: Duration) -> Result<Baseline> {
    let mut session = Session::start(args.config(None)?)?;
    let meta = Meta {
        recorded_at: rfc3339(SystemTime::now()),
        profile: session.catalog.profile.name.clone(),
        catalogs: args
            .catalog
            .iter()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            .map(|p| p.display().to_string())
            .collect(),
        interfaces: session
            .iface_hooks()
            .map(|(t, hook)| IfaceHook {
                iface: t.name.clone(),
                hook: hook.to_string(),
            })
            .collect(),
        kernel: kernel_release(),
        tracer_version: env!("CARGO_PKG_VERSION").to_string(),
    };

    let result: Result<Baseline> = async {
        let drops_before = session.drop_totals()?;
        let before = session.snapshot()?;
        // No interval: the one reading the loop hands over is the window's last.
        let mut drops_after = None;
        let end = session
            .run(None, Some(before.at + duration), |last| {
                drops_after = last.drops.map(|d| d.totals.clone());
                Ok::<_, anyhow::Error>(())
            })
            .await?;
        match end.stop {
            Stop::Deadline => {}
            // Baseline has no input that could quit: Quit is an interruption too.
            Stop::Interrupted | Stop::Quit => {
                bail!("interrupted before the end of the window; nothing recorded")
            }
            Stop::Terminated => bail!("terminated before the end of the window; nothing recorded"),
        }
        let window = drops_before
            .as_deref()
            .zip(drops_after.as_deref())
            .map(|(before, after)| DropWindow { before, after });
        Ok(Baseline::record(meta, &before, &end.last, window))
    }
    .await;
    // Detach before anything else can go wrong.
    drop(session);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_checked() {
        assert_eq!(parse_percent("30"), Ok(30.0));
        assert_eq!(parse_percent("12.5%"), Ok(12.5));
        assert!(parse_percent("0").is_err());
        assert!(parse_percent("-5").is_err());
        assert_eq!(parse_floor("0"), Ok(0.0));
        assert!(parse_floor("-1").is_err());
    }
}
