//! `tracer watch`: attach the datapath and the drop probe, print counters and drops every
//! interval, and on Ctrl-C, SIGTERM or the end of `--duration` print a summary and detach.

mod drops;

use std::{
    io::{IsTerminal, Write},
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use tokio::signal::unix::{SignalKind, signal};

use super::catalog::choose;
use crate::{
    events::Snapshot,
    model::{catalog::class_table, ifaces},
    output::{Interval, WatchHeader, WatchOutput, WatchSummary, json::Json, text::Text},
    probes::{AttachMode, Datapath, Target, preflight},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A table per interval, redrawn in place on a terminal.
    Text,
    /// One JSON object per line: counters as they move, then a summary.
    Json,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Classes come from the profile's port catalog: a packet counts for the component on the
server side of its flow (a request to 6443 and its reply are both kube-apiserver). Packets of
no class count as `other`, packets with truncated or broken headers as `malformed`.

Drops: every packet the kernel drops in this network namespace is counted exactly per
interface, class and kernel drop reason (NETFILTER_DROP, IP_RPFILTER, NO_SOCKET...), and per
flow, with the inner flow of VXLAN packets. Up to --events-per-flow dropped packets per flow
and second are sampled for --pcap; the counts include every drop.

Examples:
  sudo tracer watch                                   every interface that is up
  sudo tracer watch -i eth0 -i vxlan.calico --profile k0s-calico
  sudo tracer watch --output json --duration 30 > counters.jsonl
  sudo tracer --netns lab-worker-1 watch              inside a network namespace"
)]
pub struct WatchArgs {
    /// Interface to watch (repeat, or separate with commas). Default: every interface of this
    /// network namespace that is up, except loopback.
    #[arg(long, short, value_delimiter = ',', value_name = "IFACE")]
    iface: Vec<String>,

    /// Cluster profile whose ports define the classes. Default: detected, else generic.
    #[arg(long, short)]
    profile: Option<String>,

    /// Add the components of a catalog file (application ports) as classes. Repeatable.
    #[arg(long, value_name = "FILE")]
    catalog: Vec<PathBuf>,

    /// Ingress hook: auto picks tc on virtual devices (veth, bridge, vxlan) and native XDP on
    /// physical NICs that support it. Egress is always tc.
    #[arg(long, value_enum, default_value_t = AttachMode::Auto)]
    attach: AttachMode,

    /// Stop after this many seconds. Default: run until Ctrl-C or SIGTERM.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    duration: Option<Duration>,

    /// Seconds between two reports.
    #[arg(long, value_name = "SECS", value_parser = parse_secs, default_value = "1")]
    interval: Duration,

    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,

    /// Do not watch drops (the drop probe needs a kernel with BTF).
    #[arg(long)]
    no_drops: bool,

    /// Write sampled dropped packets to this pcapng file, the drop reason in each packet's
    /// comment.
    #[arg(long, value_name = "FILE", conflicts_with = "no_drops")]
    pcap: Option<PathBuf>,

    /// Dropped packets sampled per flow and reason each second (for --pcap and the function
    /// that dropped them); counts are exact regardless.
    #[arg(long, value_name = "N", default_value_t = 10)]
    events_per_flow: u32,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(v > 0.0 && v < 1e9) {
        return Err(format!("{s}: give a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// The interfaces to attach to: the ones named, or every interface that is up but loopback.
fn targets(names: &[String]) -> Result<Vec<Target>> {
    let all = ifaces::list().context("listing interfaces")?;
    let known = || {
        all.iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen: Vec<&ifaces::Interface> = if names.is_empty() {
        let up: Vec<_> = all.iter().filter(|i| i.up && !i.loopback).collect();
        if up.is_empty() {
            bail!(
                "no interface besides loopback is up in this network namespace; name one with --iface (there are: {})",
                known()
            );
        }
        up
    } else {
        let mut chosen = Vec::new();
        for name in names {
            let Some(found) = all.iter().find(|i| &i.name == name) else {
                bail!(
                    "no interface named {name:?} in this network namespace (there are: {})",
                    known()
                );
            };
            if !found.up {
                log::warn!("{name} is down; it is watched and counts once it comes up");
            }
            if !chosen.contains(&found) {
                chosen.push(found);
            }
        }
        chosen
    };
    Ok(chosen
        .into_iter()
        .map(|i| Target {
            name: i.name.clone(),
            index: i.index,
            has_l2: i.has_l2(),
            is_virtual: i.is_virtual,
        })
        .collect())
}

pub async fn run(args: WatchArgs) -> Result<ExitCode> {
    preflight::privileges()?;
    preflight::bpf_syscall()?;
    let chosen = choose(args.profile.as_deref(), &args.catalog)?;
    let classes = class_table(&chosen.catalog.components)?;
    let targets = targets(&args.iface)?;
    let drop_facts = if args.no_drops {
        None
    } else {
        Some(drops::config(args.events_per_flow)?)
    };
    let mut datapath = Datapath::load(&classes, targets, drop_facts.as_ref().map(|(cfg, _)| *cfg))?;
    let mut capture = match drop_facts {
        Some((_, reasons)) => Some(drops::DropCapture::new(
            &mut datapath,
            reasons,
            args.pcap.as_deref(),
        )?),
        None => None,
    };
    datapath.attach(args.attach)?;
    if let Some(logger) = datapath.take_logger() {
        tokio::spawn(drain_bpf_log(logger));
    }

    let header = WatchHeader {
        profile: chosen.catalog.profile.name.clone(),
        profile_reason: chosen.reason,
        ifaces: datapath
            .targets()
            .iter()
            .zip(datapath.hooks())
            .map(|(t, h)| {
                (
                    t.name.clone(),
                    t.index,
                    h.map_or("none", |h| h.as_str()).to_string(),
                )
            })
            .collect(),
        interval: args.interval,
        programs: datapath.program_ids(),
    };
    let stdout = std::io::stdout();
    let mut out: Box<dyn WatchOutput> = match args.output {
        OutputFormat::Text => {
            let tty = stdout.is_terminal();
            Box::new(Text::new(stdout.lock(), tty))
        }
        OutputFormat::Json => Box::new(Json::new(stdout.lock())),
    };

    let start = Instant::now();
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut ticker = tokio::time::interval_at((start + args.interval).into(), args.interval);
    let deadline = args.duration.map(|d| tokio::time::Instant::from(start + d));
    let mut prev = Snapshot::empty(start);

    let result: Result<()> = async {
        out.header(&header)?;
        let mut view = Default::default();
        loop {
            let stop = tokio::select! {
                _ = ticker.tick() => false,
                _ = sigint.recv() => true,
                _ = sigterm.recv() => true,
                _ = sleep_until(deadline) => true,
                ready = events_ready(&mut capture) => {
                    ready?;
                    if let Some(c) = capture.as_mut() {
                        c.drain_events(&classes)?;
                    }
                    continue;
                }
            };
            let rows = datapath.counters()?;
            let snap = Snapshot::new(Instant::now(), &rows, datapath.targets(), &classes);
            if let Some(c) = capture.as_mut() {
                c.drain_events(&classes)?;
                view = c.update(&datapath, &classes)?;
            }
            let samples = snap.since(&prev);
            let drops = capture.as_ref().map(|_| &view);
            out.interval(&Interval {
                elapsed: start.elapsed(),
                samples: &samples,
                drops,
            })?;
            prev = snap;
            if stop {
                break;
            }
        }
        if let Some(c) = capture.as_mut() {
            c.finish()?;
        }
        let drops = capture.as_ref().map(|_| &view);
        out.summary(&WatchSummary {
            header: &header,
            duration: start.elapsed(),
            entries: prev.entries().collect(),
            drops,
        })?;
        Ok(())
    }
    .await;
    // Detach before anything else can go wrong.
    drop(capture);
    drop(datapath);
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // Output closed (`| head`): not an error worth a message.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let _ = std::io::stderr().flush();
            Err(e)
        }
    }
}

/// Resolves when sampled drop events are waiting; never without drop capture.
async fn events_ready(capture: &mut Option<drops::DropCapture>) -> std::io::Result<()> {
    match capture.as_mut().and_then(|c| c.ring.as_mut()) {
        Some(ring) => {
            let mut guard = ring.readable_mut().await?;
            guard.clear_ready();
            Ok(())
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Forwards the kernel programs' aya-log messages to the log for as long as the run lasts.
async fn drain_bpf_log(logger: aya_log::EbpfLogger<&'static dyn log::Log>) {
    // SAFETY: the AsyncFd owns the logger, and the logger owns the descriptor: it stays open
    // and unchanged for as long as the registration exists.
    let registered = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE)
    };
    let Ok(mut fd) = registered else {
        return;
    };
    while let Ok(mut guard) = fd.readable_mut().await {
        guard.get_inner_mut().flush();
        guard.clear_ready();
    }
}
