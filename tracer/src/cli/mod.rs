//! The command line: argument definitions, the per-command runners, and the one place errors
//! become a message and an exit status.

mod baseline;
mod bundle;
mod catalog;
mod cleanup;
mod cluster;
mod diagnose;
mod docs;
mod explain;
mod ports;
mod testbed;
mod trace;
mod watch;

use std::{path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::{Parser, Subcommand};

pub use ports::{PortsArgs, ProfilesArgs};
pub use trace::TraceArgs;
pub use watch::WatchArgs;

/// Count and explain cluster traffic on a Kubernetes node.
///
/// tracer attaches eBPF programs to the node's interfaces and classifies every packet by the
/// cluster component it belongs to (etcd, kube-apiserver, kubelet, the VXLAN or BGP overlay,
/// VRRP...), per interface and direction. It only observes: packets pass unchanged, and the
/// node's firewall is never modified.
#[derive(Debug, Parser)]
#[command(
    name = "tracer",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(after_help = "Examples:
  tracer profiles                               list the built-in cluster profiles
  tracer ports --profile k0s-calico --role worker --format firewall-cmd
  sudo tracer watch                             count traffic on every interface that is up
                                                (a full-screen view on a terminal: ? for its keys)
  sudo tracer watch --iface eth0 --output json --duration 10
  sudo tracer baseline record --duration 300 -o baseline.json
  sudo tracer baseline compare baseline.json     exit status 4 when traffic fell or drops rose
  tracer cluster --prometheus http://prometheus:9090   node pairs losing overlay packets
  tracer completions bash > /etc/bash_completion.d/tracer
  tracer man > /usr/local/share/man/man1/tracer.1")]
pub struct Cli {
    /// More diagnostics on stderr (-v: info, -vv: debug). TRACER_LOG=debug works too.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// Run inside this network namespace (an `ip netns` name or a path such as /proc/PID/ns/net).
    #[arg(long, value_name = "NAME", global = true)]
    netns: Option<String>,

    /// The container runtime's CNI result cache, which names each pod veth by its pod
    /// (containerd, as in k0s and k3s, and CRI-O write it through libcni). A missing
    /// directory is fine: veths are then shown with their peer's network namespace only.
    #[arg(long, value_name = "DIR", global = true, default_value = crate::model::cni::DEFAULT_DIR)]
    cni_cache: std::path::PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Count cluster traffic per interface, direction and class, live.
    Watch(WatchArgs),
    /// Record what a healthy node carries, and later check whether that changed.
    Baseline(baseline::BaselineArgs),
    /// Find what blocks the cluster's traffic on this node: firewalld zones, nftables rules,
    /// iptables mode, sysctls, routes, MTUs; with the commands that fix it.
    Diagnose(diagnose::DiagnoseArgs),
    /// Collect everything `diagnose` reads on this node into one archive, for a diagnosis
    /// anywhere else (`diagnose --bundle`).
    Bundle(bundle::BundleArgs),
    /// What the firewall does with one packet, which rule and firewalld element decide it,
    /// and the commands that let it through.
    Explain(explain::ExplainArgs),
    /// The node pairs that lose overlay packets, and where (the path between, or the
    /// receiver's drop reason), from Prometheus and tracer's shipped rules.
    Cluster(cluster::ClusterArgs),
    /// Print what a node of a role must allow: table, firewall-cmd, firewalld XML or JSON.
    Ports(PortsArgs),
    /// List the built-in cluster profiles.
    Profiles(ProfilesArgs),
    /// Build and drive a cluster network in namespaces, with real firewalld, VXLAN and BGP
    /// (the test bed, run by the `tracer-lab` binary; not needed on a node).
    #[command(disable_help_flag = true)]
    Lab(testbed::Passthrough),
    /// Watch tracer find a misconfiguration in a lab it builds, then remove the lab (run by
    /// the `tracer-lab` binary).
    #[command(disable_help_flag = true)]
    Demo(testbed::Passthrough),
    /// Remove the tc filters a killed tracer left (kernels before 6.6, without TCX).
    Cleanup(cleanup::CleanupArgs),
    /// Print shell completions (bash, zsh, fish...) for tracer's commands, options and profiles.
    Completions(docs::CompletionsArgs),
    /// Print the man page of tracer, or of one of its commands, in roff (for `man -l`).
    Man(docs::ManArgs),
}

/// `--profile`'s values: the built-in profiles, so help and shell completions list them.
fn profile_values() -> clap::builder::PossibleValuesParser {
    crate::model::catalog::profile_names().into()
}

/// The running kernel's release, as `uname -r` prints it; `unknown` when it cannot be read.
pub(crate) fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".to_string(), |s| s.trim().to_string())
}

/// Where the node's files live (k0s/k3s configuration, firewalld). `/` except in tests.
pub(crate) fn node_root() -> PathBuf {
    std::env::var_os("TRACER_NODE_ROOT").map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tracer: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    // Through the view's writer: held while the view covers the terminal, stderr otherwise.
    env_logger::Builder::from_env(env_logger::Env::new().filter_or("TRACER_LOG", default))
        .format_timestamp(None)
        .format_target(false)
        .target(env_logger::Target::Pipe(Box::new(
            crate::output::tui::LogWriter,
        )))
        .init();
}

/// The commands that attach the datapath read its events asynchronously, on this thread (it
/// is the one that entered the network namespace).
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn run(cli: Cli) -> Result<ExitCode> {
    // setns affects only the calling thread: do it before the runtime starts any other.
    if let Some(ns) = &cli.netns {
        tracer_netns::enter(ns)?;
    }
    crate::model::cni::set_dir(cli.cni_cache.clone());
    match cli.command {
        Command::Watch(args) => runtime()?.block_on(watch::run(args)),
        Command::Baseline(args) => runtime()?.block_on(baseline::run(args)),
        Command::Diagnose(args) => diagnose::run(&args),
        Command::Bundle(args) => bundle::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Cluster(args) => cluster::run(&args),
        Command::Ports(args) => ports::run_ports(args),
        Command::Profiles(args) => ports::run_profiles(args),
        Command::Lab(args) => testbed::exec(None, args),
        Command::Demo(args) => testbed::exec(Some("demo"), args),
        Command::Cleanup(args) => cleanup::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Completions(args) => docs::completions(&args).map(|()| ExitCode::SUCCESS),
        Command::Man(args) => docs::man(&args).map(|()| ExitCode::SUCCESS),
    }
}
