//! `tracer cluster`: the cluster's node pairs from Prometheus, through tracer's shipped rules:
//! how much overlay traffic each node sends each other node, and the pairs that lose it, on
//! the path between or on the receiver. It reads Prometheus only, never a node.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use crate::{
    model::{pairs, prometheus::Prometheus},
    output::{self, cluster},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Exit status when a pair loses traffic (an alert of the rules is pending or firing).
const LOSING: u8 = 4;

#[derive(Debug, Args)]
#[command(
    after_help = "It reads the series and alerts of deploy/prometheus/tracer-rules.yml, which join each
node's overlay packets sent to a peer with what that peer saw arrive and what it dropped.
A pair is named when its alert is pending or firing: \"never arrived\" (lost on the path
between the two nodes: an underlay firewall, a security group, an MTU black hole) or
\"dropped on the receiver\" with the receiver's kernel drop reason.

Exit status: 0 when no pair loses traffic, 4 when one does, 1 when Prometheus cannot be read
or lacks the series (the message says which part is missing).

Examples:
  tracer cluster --prometheus http://prometheus.monitoring:9090
  kubectl -n monitoring port-forward svc/prometheus 9090 &
  tracer cluster --prometheus http://127.0.0.1:9090 --output json"
)]
pub struct ClusterArgs {
    /// Prometheus's base URL (plain HTTP), with its route prefix if it has one.
    #[arg(long, value_name = "URL")]
    prometheus: String,

    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    output: Format,
}

pub fn run(args: &ClusterArgs) -> Result<ExitCode> {
    let prom = Prometheus::new(&args.prometheus)?;
    let pairs = pairs::read(&prom)?;
    let report = cluster::report(&prom.url, &pairs);
    let text = match args.output {
        Format::Text => cluster::text(&report),
        Format::Json => cluster::json(&report)?,
    };
    output::print(&text).context("writing to stdout")?;
    Ok(if report.losing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(LOSING)
    })
}
