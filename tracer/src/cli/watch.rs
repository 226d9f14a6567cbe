//! `tracer watch`: the arguments, and the wiring of a session to its outputs: the full-screen
//! view on a terminal (its keys read by the session's loop), the log of changes or the JSON
//! lines elsewhere, the metrics endpoint with `--metrics`, the pcapng file with `--pcap`, and
//! on quit, Ctrl-C, SIGTERM or the end of `--duration` a summary.

use std::{
    io::{BufWriter, IsTerminal, Write},
    net::SocketAddr,
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use tokio::sync::mpsc::UnboundedReceiver;

use super::trace::{TraceArgs, parse_interval, parse_secs};
use crate::{
    output::{
        WatchHeader, WatchOutput, WatchSummary,
        json::Json,
        metrics::{self, Listener, Publish, RunInfo},
        pcap::PcapWriter,
        text::Text,
        tui::{self, Tui},
    },
    session::{Causes, Diagnose, DropSink, Next, Session, Wake},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// The full-screen view when stdout is a terminal, the text log otherwise.
    Auto,
    /// The full-screen view (stdout must be a terminal).
    Tui,
    /// A log of what changes (new classes, drops, findings, a status line now and then), then
    /// a summary.
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
tracer_drops_uncounted_total, tracer_findings{id,severity,class} (one per finding of the
latest diagnosis), tracer_build_info{version,kernel}, tracer_interface_info{iface,ifindex,hook} and
tracer_iface_pod_info{iface,namespace,pod} (a watched veth's pod, from --cni-cache).
Between nodes: tracer_overlay_peer_packets_total and tracer_overlay_peer_bytes_total
{iface,direction,peer,class} (overlay and BGP traffic per peer address: the outer destination
on egress, the outer source on ingress), tracer_overlay_peer_drops_total{peer,class,reason} and
tracer_node_address_info{address}. Every series carries node=\"NAME\" (--node-name, else
NODE_NAME, else the host name). Counters are totals since the start, updated every --interval.

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

    #[arg(long, short, value_enum, default_value_t = OutputFormat::Auto)]
    output: OutputFormat,

    /// Write sampled dropped packets to this pcapng file, the drop reason in each packet's
    /// comment.
    #[arg(long, value_name = "FILE", conflicts_with = "no_drops")]
    pcap: Option<PathBuf>,

    /// Seconds between two diagnoses of the node (as `tracer diagnose`): new findings are
    /// reported as they appear, and each flow the firewall drops is traced to its rule, zone
    /// and fix. A change to the nftables ruleset or a firewalld reload is read at the next
    /// interval, without waiting (rules written with iptables-legacy wait for this timer).
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
    let terminal = std::io::stdout().is_terminal();
    let format = match args.output {
        OutputFormat::Auto if terminal => OutputFormat::Tui,
        OutputFormat::Auto => OutputFormat::Text,
        OutputFormat::Tui if !terminal => {
            bail!("--output tui needs a terminal on stdout; use --output text or json in a pipe")
        }
        f => f,
    };
    // A busy port or a foreign address fails here, while nothing is attached yet.
    let listener = match args.metrics {
        Some(addr) => Some(Listener::bind(addr).await?),
        None => None,
    };
    let diagnose = (!args.no_diagnose).then(|| Diagnose {
        root: super::node_root(),
        every: args.diagnose_every,
        // Every output keeps each flow with the cause traced when it moved.
        causes: Causes::Changed,
    });
    let node = args.trace.node()?;
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
            node: node.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            kernel: super::kernel_release(),
            ifaces: header.ifaces.clone(),
            pods: Vec::new(),
        })
    });
    let (mut out, mut keys) = output(format, &node)?;

    let result: Result<()> = async {
        out.header(&header)?;
        let until = args.duration.map(|d| Instant::now() + d);
        let end = session
            .run_with(
                Some(args.interval),
                until,
                keys.as_mut(),
                |wake| match wake {
                    Wake::Interval(interval) => {
                        if let Some(m) = &server {
                            publish(m, interval);
                        }
                        out.interval(interval)?;
                        Ok::<_, anyhow::Error>(Next::Go)
                    }
                    Wake::Input(input) => Ok(out.input(input)?),
                },
            )
            .await?;
        out.summary(&WatchSummary {
            header: &header,
            duration: end.elapsed,
            entries: end.last.entries().collect(),
            drops: end.drops.as_ref(),
            peers: crate::events::peers::balances(end.last.peers(), std::iter::empty()),
        })?;
        Ok(())
    }
    .await;
    // The terminal back first (a no-op unless the view is open), then detach before anything
    // else can go wrong.
    drop(out);
    drop(keys);
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

/// Hands the metrics endpoint what an interval read.
fn publish(server: &metrics::MetricsServer, interval: &crate::session::Interval) {
    server.publish(Publish {
        entries: interval.snapshot.entries().cloned().collect(),
        peers: interval.snapshot.peers().cloned().collect(),
        addresses: crate::sys::ifaddrs::ips(),
        ifaces: interval
            .watched
            .iter()
            .map(|(n, i, h)| (n.clone(), *i, (*h).to_string()))
            .collect(),
        pods: interval
            .pods
            .iter()
            .map(|(iface, p)| (iface.clone(), p.namespace.clone(), p.name.clone()))
            .collect(),
        drops: interval.drops,
        findings: interval.diagnosis,
    });
}

/// The keys the view reads, handed to the session's loop.
type Keys = UnboundedReceiver<tui::Input>;

/// The output of this format, and for the view the keys it reads.
fn output(format: OutputFormat, node: &str) -> Result<(Box<dyn WatchOutput>, Option<Keys>)> {
    let stdout = std::io::stdout();
    Ok(match format {
        OutputFormat::Json => (Box::new(Json::new(stdout.lock(), node.to_string())), None),
        OutputFormat::Text => (Box::new(Text::new(stdout.lock())), None),
        OutputFormat::Tui | OutputFormat::Auto => {
            let view = Tui::open().context("opening the terminal view")?;
            let keys = tui::keys().context("reading keys")?;
            (Box::new(view), Some(keys))
        }
    })
}

/// The pcapng file of `--pcap`, created before anything is attached.
fn pcap_file(path: &std::path::Path) -> Result<Box<dyn DropSink>> {
    let file = crate::sys::files::create_output(path)
        .with_context(|| format!("creating {}", path.display()))?;
    let writer = PcapWriter::new(BufWriter::new(file))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Box::new(writer))
}
