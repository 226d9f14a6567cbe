//! One attached datapath with what goes with it: the catalog and class table it counts by, the
//! interfaces it watches, and drop capture. `tracer watch` and `tracer baseline` both trace
//! through a session.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use super::drops::{self, DropCapture};
use crate::{
    cli::catalog::choose,
    model::catalog::{Catalog, class_table},
    model::ifaces,
    probes::{AttachMode, ClassTable, Datapath, Target, drops::EventBudget, preflight},
};

/// What to trace and how: shared by every command that attaches the datapath.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Interface to watch (repeat, or separate with commas). Default: every interface of this
    /// network namespace that is up, except loopback.
    #[arg(long, short, value_delimiter = ',', value_name = "IFACE")]
    pub iface: Vec<String>,

    /// Cluster profile whose ports define the classes. Default: detected, else generic.
    #[arg(long, short)]
    pub profile: Option<String>,

    /// Add the components of a catalog file (application ports) as classes. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub catalog: Vec<PathBuf>,

    /// Ingress hook: auto picks tc on virtual devices (veth, bridge, vxlan) and native XDP on
    /// physical NICs that support it. Egress is always tc.
    #[arg(long, value_enum, default_value_t = AttachMode::Auto)]
    pub attach: AttachMode,

    /// Do not watch drops (the drop probe needs a kernel with BTF).
    #[arg(long)]
    pub no_drops: bool,

    /// Dropped packets sampled per flow and reason each second (for --pcap and the function
    /// that dropped them); counts are exact regardless.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub events_per_flow: u32,

    /// Dropped packets sampled per second in all, however many flows drop: bounds what a
    /// storm of many flows costs the node. Counts are exact regardless.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub events_per_sec: u32,
}

/// Each watched interface with the hook its ingress program sits on (`none` when it has none).
pub fn iface_hooks(datapath: &Datapath) -> impl Iterator<Item = (&Target, &'static str)> {
    datapath
        .targets()
        .iter()
        .zip(datapath.hooks())
        .map(|(t, h)| (t, h.map_or("none", |h| h.as_str())))
}

/// An attached datapath. Dropping it detaches everything.
pub struct Session {
    pub catalog: Catalog,
    pub profile_reason: String,
    pub classes: ClassTable,
    pub datapath: Datapath,
    /// Drop capture, unless turned off.
    pub capture: Option<DropCapture>,
}

impl Session {
    /// Checks privileges, loads and attaches. Must run inside a tokio runtime (drop events and
    /// the programs' log are read asynchronously).
    pub fn start(args: &TraceArgs, pcap: Option<&Path>) -> Result<Session> {
        preflight::privileges()?;
        preflight::bpf_syscall()?;
        let chosen = choose(args.profile.as_deref(), &args.catalog)?;
        let classes = class_table(&chosen.catalog.components)?;
        let targets = targets(&args.iface)?;
        let drop_facts = if args.no_drops {
            None
        } else {
            Some(drops::config(EventBudget::new(
                args.events_per_flow,
                args.events_per_sec,
                aya::util::nr_cpus().map_or(1, |n| n as u32),
            ))?)
        };
        let mut datapath =
            Datapath::load(&classes, targets, drop_facts.as_ref().map(|(cfg, _)| *cfg))?;
        let capture = match drop_facts {
            Some((_, reasons)) => Some(DropCapture::new(&mut datapath, reasons, pcap)?),
            None => None,
        };
        datapath.attach(args.attach)?;
        if let Some(logger) = datapath.take_logger() {
            tokio::spawn(drain_bpf_log(logger));
        }
        Ok(Session {
            catalog: chosen.catalog,
            profile_reason: chosen.reason,
            classes,
            datapath,
            capture,
        })
    }
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
