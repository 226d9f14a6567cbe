//! `tracer bundle`: everything `diagnose` reads on this node, in one archive, for a diagnosis
//! anywhere else (`tracer diagnose --bundle FILE`). It reads and changes nothing.

use std::{fmt::Write as _, path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result, bail};
use clap::Args;

use crate::{
    model::bundle::{self, Status},
    probes::preflight,
};

#[derive(Debug, Args)]
#[command(
    after_help = "What it holds: the nftables ruleset (nft -j), iptables-nft-save and \
ip6tables-nft-save, ipset save (when ipsets are loaded), iptables-legacy-save and \
ip6tables-legacy-save of the legacy tables that exist (none is asked for otherwise, so no kernel \
module gets loaded), firewalld's files (/usr/lib/firewalld, /etc/firewalld) and its runtime \
state over D-Bus, the interfaces, addresses, VXLAN devices, routes, sysctls and listening ports, \
the k0s or k3s configuration with tokens, keys and passwords redacted, which iptables k0s runs, \
the kernel release and tracer's version. manifest.json inside says what was collected and what \
could not be, and why.

Exit status: 0 when every item was collected (or is known not to exist on the node), 1 when \
one could not be (the archive is still written; its manifest says which).

Examples:
  sudo tracer bundle -o node.tar.gz
  sudo tracer bundle -o node.tar.gz --watch 30     also 30 s of tracer watch
  tracer diagnose --bundle node.tar.gz              anywhere, no root needed"
)]
pub struct BundleArgs {
    /// Where to write the archive (tar.gz).
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,

    /// Also run `tracer watch` for this many seconds and add what it saw.
    #[arg(long, value_name = "SECS")]
    watch: Option<f64>,
}

pub fn run(args: &BundleArgs) -> Result<ExitCode> {
    if preflight::privileges().is_err() {
        bail!(
            "bundle reads the nftables ruleset and firewalld's state over D-Bus, which needs root (CAP_NET_ADMIN); run it with sudo"
        );
    }
    if let Some(secs) = args.watch
        && !(secs.is_finite() && secs >= 1.0)
    {
        bail!("--watch takes a number of seconds, at least 1 (got {secs})");
    }
    let root = super::node_root();
    let written = bundle::write(&args.output, &root, args.watch)
        .with_context(|| format!("writing {}", args.output.display()))?;
    let items = &written.manifest.items;
    let count = |s: Status| items.iter().filter(|i| i.status == s).count();
    let mut text = format!(
        "Wrote {} ({} bytes): {} items collected, {} not on this node, {} could not be collected.\n",
        args.output.display(),
        written.bytes,
        count(Status::Collected),
        count(Status::Absent),
        count(Status::Failed)
    );
    for i in items.iter().filter(|i| i.status == Status::Failed) {
        let _ = writeln!(
            text,
            "  could not collect {} ({}): {}",
            i.name,
            i.source,
            i.detail.as_deref().unwrap_or("")
        );
    }
    crate::output::print(&text)?;
    Ok(if count(Status::Failed) == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
