//! `tracer-bench`: the benchmark `cargo xtask bench` runs. It measures what the goals are
//! about — the kernel programs' cost per packet against an empty program, throughput with
//! the tracer off and on (veth and the lab's VXLAN overlay), the tracer next to tcpdump and
//! each of its attach modes, a drop storm, the drop probe next to bpftrace one-liners and its
//! parts one by one, user-space CPU at 100k packets/s, the firewall model on a 10,000-rule
//! ruleset, attaching to 1,000 interfaces as they appear, and scrapes beside 300 slow clients — prints a table and writes
//! `bench/results.json`
//! (`target/bench/results.json` for a `--quick` or `--only` run, unless `--out` says where).
//!
//! Everything runs in network namespaces it creates (`bn-<pid>-*`, the lab as `bnx`), removed
//! at the end however the run ends. Goals are printed as pass or miss, never asserted.

mod bpftrace;
mod cost;
mod ifaces;
mod iperf;
mod netns;
mod observers;
mod peers;
mod procs;
mod report;
mod ruleset;
mod scrapes;
mod sender;
mod steady;
mod storm;
mod throughput;

use std::{
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

use report::{Machine, Report};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Section {
    Cost,
    Throughput,
    Peers,
    Storm,
    Observers,
    Steady,
    Ruleset,
    Ifaces,
    Scrapes,
}

/// Measure tracer's cost: kernel ns per packet, throughput, peers, a drop storm, user-space
/// CPU and the firewall model. Needs root; works only in namespaces it creates.
#[derive(Debug, Parser)]
#[command(name = "tracer-bench", max_term_width = 100)]
struct Args {
    /// Where to write the results. Default: bench/results.json for a full run; a --quick or
    /// --only run writes target/bench/results.json, so only a full run replaces the recorded
    /// results (relative to the current directory: `cargo xtask bench` runs this in the
    /// repository root).
    #[arg(long)]
    out: Option<PathBuf>,

    /// The release `tracer` binary. Default: the one next to this program.
    #[arg(long)]
    tracer: Option<PathBuf>,

    /// Run only these sections (comma-separated). Default: all.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Section>,

    /// Short runs to try the benchmark out; the numbers are not worth keeping.
    #[arg(long)]
    quick: bool,
}

/// How long and how often each section measures.
struct Plan {
    cost: cost::Config,
    throughput: throughput::Config,
    /// Rounds of section 3: each has an untraced run before every observer.
    peer_rounds: usize,
    storm_datagrams: u64,
    observers: observers::Config,
    steady_secs: u32,
    idle_secs: u32,
    ruleset_rounds: usize,
    /// Veth pairs of section 6.
    ifaces: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            return Plan {
                cost: cost::Config {
                    repeat: 100_000,
                    rounds: 3,
                },
                throughput: throughput::Config { secs: 1, rounds: 1 },
                peer_rounds: 1,
                storm_datagrams: 200_000,
                observers: observers::Config {
                    datagrams: 200_000,
                    part_datagrams: 100_000,
                    rounds: 1,
                },
                steady_secs: 3,
                idle_secs: 2,
                ruleset_rounds: 2,
                ifaces: 100,
            };
        }
        Plan {
            cost: cost::Config {
                repeat: 2_000_000,
                rounds: 7,
            },
            throughput: throughput::Config { secs: 5, rounds: 5 },
            peer_rounds: 3,
            storm_datagrams: 2_000_000,
            observers: observers::Config {
                datagrams: 1_000_000,
                part_datagrams: 500_000,
                // Each run lasts about a second, and this VM's rate swings by 10% and more
                // from one to the next: five pairs give a median that holds.
                rounds: 5,
            },
            steady_secs: 10,
            idle_secs: 5,
            ruleset_rounds: 5,
            ifaces: 1000,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if netns::interrupted() => {
            // The step that was running may have failed its own way when its children got
            // the signal too; the interrupt is the cause.
            eprintln!("tracer-bench: interrupted; what it created is removed (last step: {e:#})");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("tracer-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    // SAFETY: plain getter.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the benchmark loads eBPF programs and creates network namespaces: run it as root");
    }
    let out = match args.out {
        Some(p) => p,
        None => default_out(args.quick, &args.only),
    };
    let bin = match args.tracer {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("tracer"),
    };
    if !bin.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release -p tracer --bins`",
            bin.display()
        );
    }
    netns::catch_interrupts();
    netns::remove_stale();
    let plan = Plan::new(args.quick);
    let wanted = |s: Section| args.only.is_empty() || args.only.contains(&s);
    let started = Instant::now();
    let mut report = Report {
        machine: Some(Machine::describe()),
        quick: args.quick,
        ..Report::default()
    };
    if wanted(Section::Cost) {
        report.cost = Some(cost::run(plan.cost)?);
    }
    if wanted(Section::Throughput) {
        report.throughput = Some(throughput::run(&bin, plan.throughput)?);
    }
    if wanted(Section::Peers) {
        let cfg = throughput::Config {
            rounds: plan.peer_rounds,
            ..plan.throughput
        };
        report.peers = Some(peers::run(&bin, cfg)?);
    }
    if wanted(Section::Storm) {
        report.storm = Some(storm::run(&bin, plan.storm_datagrams)?);
    }
    if wanted(Section::Observers) {
        report.observers = Some(observers::run(&bin, plan.observers)?);
    }
    if wanted(Section::Steady) {
        report.steady = Some(steady::run(
            &bin,
            100_000,
            plan.steady_secs,
            plan.idle_secs,
        )?);
    }
    if wanted(Section::Ruleset) {
        report.ruleset = Some(ruleset::run_section(plan.ruleset_rounds)?);
    }
    if wanted(Section::Ifaces) {
        report.ifaces = Some(ifaces::run(&bin, plan.ifaces)?);
    }
    if wanted(Section::Scrapes) {
        report.scrapes = Some(scrapes::run(&bin)?);
    }
    report.duration_secs = started.elapsed().as_secs_f64();
    report.loadavg_end = report::loadavg();
    report.judge();
    print!("{}", report.table());
    println!(
        "\nmeasured in {}",
        minutes(Duration::from_secs_f64(report.duration_secs))
    );
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(&out, json + "\n").with_context(|| format!("writing {}", out.display()))?;
    eprintln!("tracer-bench: wrote {}", out.display());
    Ok(())
}

/// Only a full run replaces the recorded results the README quotes; a trial or partial run
/// goes to target/.
fn default_out(quick: bool, only: &[Section]) -> PathBuf {
    if quick || !only.is_empty() {
        PathBuf::from("target/bench/results.json")
    } else {
        PathBuf::from("bench/results.json")
    }
}

fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}m{:02}s", s / 60, s % 60)
}
