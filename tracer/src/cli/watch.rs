//! `tracer watch`: the arguments, and the wiring of a session to its outputs: the table or
//! the JSON lines every interval, the metrics endpoint with `--metrics`, the pcapng file with
//! `--pcap`, and on Ctrl-C, SIGTERM or the end of `--duration` a summary.

use std::{
    io::{BufWriter, IsTerminal, Write},
    net::SocketAddr,
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use super::trace::{TraceArgs, parse_interval, parse_secs};
use crate::{
    output::{
        WatchHeader, WatchOutput, WatchSummary,
        json::Json,
        metrics::{self, Listener, RunInfo},
        pcap::PcapWriter,
        text::Text,
    },
    session::{Causes, Diagnose, DropSink, Session},
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
flow, with the inner flow of VXLAN packets. Up to --events-per-flow dropped packets per flow,
CPU and second, and --events-per-sec in all, are sampled for --pcap; the counts include every
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

    /// Seconds between two reports (at least 0.1).
    #[arg(long, value_name = "SECS", value_parser = parse_interval, default_value = "1")]
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

pub async fn run(args: WatchArgs) -> Result<ExitCode> {
    // A busy port or a foreign address fails here, while nothing is attached yet.
    let listener = match args.metrics {
        Some(addr) => Some(Listener::bind(addr).await?),
        None => None,
    };
    let diagnose = (!args.no_diagnose).then(|| Diagnose {
        root: super::node_root(),
        every: args.diagnose_every,
        // The table names the causes of the top flows, the JSON lines those that changed.
        causes: match args.output {
            OutputFormat::Text => Causes::Top,
            OutputFormat::Json => Causes::Changed,
        },
    });
    let mut config = args.trace.config(diagnose)?;
    if let Some(path) = &args.pcap {
        config.sink = Some(pcap_file(path)?);
    }
    let mut session = Session::start(config)?;
    let header = WatchHeader {
        profile: session.catalog.profile.name.clone(),
        profile_reason: session.profile_reason.clone(),
        ifaces: session
            .iface_hooks()
            .map(|(t, hook)| (t.name.clone(), t.index, hook.to_string()))
            .collect(),
        interval: args.interval,
        programs: session.program_ids(),
        metrics: listener.as_ref().map(Listener::addr),
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

    let result: Result<()> = async {
        out.header(&header)?;
        let until = args.duration.map(|d| Instant::now() + d);
        let end = session
            .run(Some(args.interval), until, |interval| {
                if let Some(m) = &server {
                    let entries = interval.snapshot.entries().cloned().collect();
                    m.publish(entries, interval.drops, interval.diagnosis);
                }
                Ok::<_, anyhow::Error>(out.interval(interval)?)
            })
            .await?;
        out.summary(&WatchSummary {
            header: &header,
            duration: end.elapsed,
            entries: end.last.entries().collect(),
            drops: end.drops.as_ref(),
        })?;
        Ok(())
    }
    .await;
    // Detach before anything else can go wrong.
    drop(server);
    drop(session);
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

/// The pcapng file of `--pcap`, created before anything is attached.
fn pcap_file(path: &std::path::Path) -> Result<Box<dyn DropSink>> {
    let file = crate::sys::files::create_output(path)
        .with_context(|| format!("creating {}", path.display()))?;
    let writer = PcapWriter::new(BufWriter::new(file))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Box::new(writer))
}
