//! `tracer ports` and `tracer profiles`: the catalog as firewall configuration, and the list
//! of built-in profiles.

use std::{fmt::Write as _, path::PathBuf, process::ExitCode};

use anyhow::{Result, bail};
use clap::Args;

use super::catalog::{choose, parse_roles};
use crate::{
    model::catalog::{Role, profiles},
    output::ports::{PortsFormat, PortsRequest, render},
};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  tracer ports --profile k0s-calico --role worker --format firewalld-xml > /etc/firewalld/services/k0s-worker.xml
  tracer ports --profile k0s-calico --role controller,worker --format firewall-cmd
  tracer ports --profile k3s-flannel --role server --catalog examples/k3s-apps.toml")]
pub struct PortsArgs {
    /// Cluster profile (see `tracer profiles`). Default: detected from the node, else generic.
    #[arg(long, short, value_parser = super::profile_values())]
    profile: Option<String>,

    /// Node role: controller or worker (k3s: server or agent). Repeat or separate with commas
    /// for a node with both roles. Without it the table lists every component.
    #[arg(long, short, value_delimiter = ',')]
    role: Vec<String>,

    #[arg(long, short, value_enum, default_value_t = PortsFormat::Table)]
    format: PortsFormat,

    /// Add the components of a catalog file (application ports). Repeatable.
    #[arg(long, value_name = "FILE")]
    catalog: Vec<PathBuf>,

    /// firewalld zone for the commands. Default: the zone the distribution's guide uses, else
    /// the default zone.
    #[arg(long)]
    zone: Option<String>,

    /// Print firewall-offline-cmd commands, for images where firewalld is not running.
    #[arg(long)]
    offline: bool,

    /// Include components only some setups need (keepalived's VRRP).
    #[arg(long)]
    include_optional: bool,
}

#[derive(Debug, Args)]
pub struct ProfilesArgs {}

pub fn run_ports(args: PortsArgs) -> Result<ExitCode> {
    let chosen = choose(args.profile.as_deref(), &args.catalog)?;
    let roles = parse_roles(&args.role)?;
    if roles.contains(&Role::External) {
        bail!("--role names a node role: controller or worker (k3s: server or agent)");
    }
    let req = PortsRequest {
        catalog: &chosen.catalog,
        roles,
        zone: args.zone,
        offline: args.offline,
        include_optional: args.include_optional,
    };
    let text = render(&req, args.format)?;
    write_stdout(&text)
}

pub fn run_profiles(_args: ProfilesArgs) -> Result<ExitCode> {
    let detected = choose(None, &[])?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:<18} {:<6} {:<28} SUMMARY",
        "PROFILE", "DIST", "OVERLAY"
    );
    for p in profiles() {
        let overlay = match p.overlay() {
            Some((c, o)) => format!("{} ({})", c.name, o.device),
            None => "none (routed)".to_string(),
        };
        let mark = if p.name == detected.catalog.profile.name {
            "*"
        } else {
            " "
        };
        let _ = writeln!(
            text,
            "{mark}{:<17} {:<6} {:<28} {}",
            p.name, p.distribution, overlay, p.summary
        );
    }
    let _ = writeln!(
        text,
        "\n* this node: {} ({})",
        detected.catalog.profile.name, detected.reason
    );
    write_stdout(&text)
}

fn write_stdout(text: &str) -> Result<ExitCode> {
    crate::output::print(text)?;
    Ok(ExitCode::SUCCESS)
}
