//! `tracer cleanup`: removes the tc filters a killed tracer left on kernels without TCX
//! (before 6.6), where tc programs are netlink filters that outlive their process. Only
//! filters in tracer's own slot whose program no live process holds are removed
//! ([`crate::probes::tc`]); a running tracer's filters are named and left alone.

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::{
    model::ifaces,
    probes::{features, preflight, tc},
};

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Interface to clean (repeat, or separate with commas). Default: every interface of this
    /// network namespace.
    #[arg(long, short, value_delimiter = ',', value_name = "IFACE")]
    pub iface: Vec<String>,
}

pub fn run(args: &CleanupArgs) -> Result<()> {
    preflight::privileges()?;
    let all = ifaces::list().context("listing interfaces")?;
    for name in &args.iface {
        if !all.iter().any(|i| &i.name == name) {
            bail!("no interface named {name:?} in this network namespace");
        }
    }
    let chosen = all
        .iter()
        .filter(|i| args.iface.is_empty() || args.iface.contains(&i.name));
    let mut removed = 0;
    let mut live = Vec::new();
    for i in chosen {
        let cleaned =
            tc::clean(&i.name, i.index).with_context(|| format!("cleaning up {}", i.name))?;
        for f in &cleaned.removed {
            println!(
                "{}: removed tracer's {} tc filter (priority {}, handle {:#x}, program id {})",
                f.iface,
                f.slot.direction,
                f.slot.priority,
                tc::HANDLE,
                f.prog_id
            );
        }
        if cleaned.qdisc_removed {
            println!(
                "{}: removed the clsact qdisc, which held nothing else",
                i.name
            );
        }
        removed += cleaned.removed.len();
        live.extend(cleaned.live);
    }
    for f in &live {
        let pids: Vec<String> = f.holders.iter().map(u32::to_string).collect();
        println!(
            "{}: the {} tc filter belongs to a running tracer (pid {}); left alone",
            f.iface,
            f.slot.direction,
            pids.join(", ")
        );
    }
    if removed == 0 {
        let why = if features::get().tcx {
            " (this kernel has TCX: tracer's tc programs go away with the process)"
        } else {
            ""
        };
        println!("nothing left behind by an earlier tracer{why}");
    }
    Ok(())
}
