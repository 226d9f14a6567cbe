//! `tracer watch`: attach the datapath and the drop probe, print counters and drops every
//! interval (and serve them to Prometheus with `--metrics`), and on Ctrl-C, SIGTERM or the end
//! of `--duration` print a summary and detach.

mod correlate;
mod drops;
mod metrics;
mod session;

use correlate::Correlator;

pub(crate) use drops::DropCapture;
pub use session::{Session, TraceArgs, iface_hooks};

use std::{
    io::{IsTerminal, Write},
    net::SocketAddr,
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Result;
use clap::{Args, ValueEnum};
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    events::Snapshot,
    output::{
        Interval, WatchHeader, WatchOutput, WatchSummary, json::Json, metrics::RunInfo, text::Text,
    },
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
and second, and --events-per-sec in all, are sampled for --pcap; the counts include every
drop.

Metrics: --metrics serves GET /metrics for Prometheus (text format 0.0.4) while watch runs,
on 127.0.0.1:9464 unless an address is given: tracer_packets_total and tracer_bytes_total
{iface,direction,class}, tracer_overlay_packets_total and tracer_overlay_bytes_total (VXLAN
packets by the class they carry), the tracer_packet_size_bytes histogram, tracer_drops_total
{iface,class,reason,housekeeping} (housekeeping=\"false\" is traffic lost),
tracer_drop_events_lost_total, tracer_drop_events_suppressed_total,
tracer_drops_uncounted_total, tracer_findings{severity} (the latest diagnosis),
tracer_build_info{version,kernel} and tracer_interface_info{iface,ifindex,hook}. Counters are
totals since the start, updated every --interval.

Examples:
  sudo tracer watch                                   every interface that is up
  sudo tracer watch -i eth0 -i vxlan.calico --profile k0s-calico
  sudo tracer watch --output json --duration 30 > counters.jsonl
  sudo tracer --netns lab-worker-1 watch              inside a network namespace
  sudo tracer watch --metrics                         for Prometheus, on 127.0.0.1:9464
  sudo tracer watch --metrics 10.0.0.5:9464 --interval 5"
)]
pub struct WatchArgs {
    #[command(flatten)]
    pub trace: TraceArgs,

    /// Stop after this many seconds. Default: run until Ctrl-C or SIGTERM.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    duration: Option<Duration>,

    /// Seconds between two reports.
    #[arg(long, value_name = "SECS", value_parser = parse_secs, default_value = "1")]
    interval: Duration,

    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,

    /// Write sampled dropped packets to this pcapng file, the drop reason in each packet's
    /// comment.
    #[arg(long, value_name = "FILE", conflicts_with = "no_drops")]
    pcap: Option<PathBuf>,

    /// Seconds between two diagnoses of the node (as `tracer diagnose`): new findings are
    /// reported as they appear, and each flow the firewall drops is traced to its rule, zone
    /// and fix.
    #[arg(long, value_name = "SECS", value_parser = parse_secs, default_value = "30")]
    diagnose_every: Duration,

    /// Do not diagnose the node while watching.
    #[arg(long)]
    no_diagnose: bool,

    /// Serve Prometheus metrics at http://ADDR/metrics while watching [default ADDR:
    /// 127.0.0.1:9464]. An address other than loopback makes them reachable from the network.
    #[arg(
        long,
        value_name = "ADDR",
        num_args = 0..=1,
        default_missing_value = metrics::DEFAULT_ADDR,
        value_parser = metrics::parse_addr,
    )]
    metrics: Option<SocketAddr>,
}

pub(crate) fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(v > 0.0 && v < 1e9) {
        return Err(format!("{s}: give a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(v))
}

pub async fn run(args: WatchArgs) -> Result<ExitCode> {
    // A busy port or a foreign address fails here, while nothing is attached yet.
    let listener = match args.metrics {
        Some(addr) => Some(metrics::Listener::bind(addr).await?),
        None => None,
    };
    let Session {
        catalog,
        profile_reason,
        classes,
        datapath,
        mut capture,
    } = Session::start(&args.trace, args.pcap.as_deref())?;
    let mut correlator =
        (!args.no_diagnose).then(|| Correlator::new(catalog.clone(), args.diagnose_every));
    let header = WatchHeader {
        profile: catalog.profile.name.clone(),
        profile_reason,
        ifaces: iface_hooks(&datapath)
            .map(|(t, hook)| (t.name.clone(), t.index, hook.to_string()))
            .collect(),
        interval: args.interval,
        programs: datapath.program_ids(),
    };
    let server = listener.map(|l| {
        l.serve(RunInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            kernel: super::kernel_release(),
            ifaces: header.ifaces.clone(),
        })
    });
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
            let snap = Snapshot::capture(&datapath, &classes)?;
            let new_findings = correlator
                .as_mut()
                .map(Correlator::refresh_if_due)
                .unwrap_or_default();
            if let Some(c) = capture.as_mut() {
                c.drain_events(&classes)?;
                view = c.update(&datapath, &classes)?;
                // Each cause costs a ruleset evaluation: only those the output shows. The
                // table names the causes of the top flows, the JSON lines those that changed.
                if let Some(k) = &correlator {
                    match args.output {
                        OutputFormat::Text => {
                            view.top_causes = view.top.iter().map(|f| k.cause(f)).collect();
                        }
                        OutputFormat::Json => {
                            view.changed_causes = view.changed.iter().map(|f| k.cause(f)).collect();
                        }
                    }
                }
            }
            let samples = snap.since(&prev);
            let drops = capture.as_ref().map(|_| &view);
            if let Some(m) = &server {
                let findings = correlator.as_ref().map_or(&[][..], |k| &k.findings);
                m.publish(snap.entries().cloned().collect(), drops, findings);
            }
            out.interval(&Interval {
                elapsed: start.elapsed(),
                samples: &samples,
                drops,
                findings: &new_findings,
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
    drop(server);
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
pub(crate) async fn events_ready(capture: &mut Option<DropCapture>) -> std::io::Result<()> {
    match capture.as_mut().and_then(|c| c.ring.as_mut()) {
        Some(ring) => {
            let mut guard = ring.readable_mut().await?;
            guard.clear_ready();
            Ok(())
        }
        None => std::future::pending().await,
    }
}

pub(crate) async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
