//! `tracer ports` and `tracer profiles`: the catalog as firewall configuration, and the list
//! of built-in profiles.

use std::{fmt::Write as _, path::PathBuf, process::ExitCode};

use anyhow::{Result, bail};
use clap::Args;

use super::catalog::{choose, parse_roles};
use crate::{
    findings::layout::ClusterZone,
    model::{
        catalog::{Catalog, Role, profiles},
        cluster, detect, firewalld, ifaces,
        node::NodeFacts,
    },
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

    /// firewalld zone for the commands. Default, on a node of the profile: the zone of its
    /// cluster interface (the one `tracer diagnose` checks; trusted in the guides' layout with
    /// a separate cluster NIC); elsewhere the zone of the guide's shared-interface layout, else
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
    let (zone, zone_note) = if let Some(z) = args.zone {
        (Some(z), None)
    } else {
        let (zone, note) = node_zone(&chosen.catalog, &roles);
        (zone, Some(note))
    };
    let req = PortsRequest {
        catalog: &chosen.catalog,
        roles,
        zone,
        zone_note,
        offline: args.offline,
        include_optional: args.include_optional,
    };
    let text = render(&req, args.format)?;
    write_stdout(&text)
}

/// The zone for a node of this profile, and why: read from this machine when it is such a
/// node and firewalld is configured on it, else the profile's layout.
fn node_zone(catalog: &Catalog, roles: &[Role]) -> (Option<String>, String) {
    let p = &catalog.profile;
    let fallback = p.firewalld.zone.clone();
    let layout = match &fallback {
        Some(z) => format!(
            "Zone {z}, as in the {} guide's layout with one shared interface",
            p.distribution
        ),
        None => "The default zone".to_string(),
    };
    let root = super::node_root();
    let (config, _) = cluster::read(&root);
    let ifaces = ifaces::list().unwrap_or_default();
    let devices: Vec<String> = ifaces.iter().map(|i| i.name.clone()).collect();
    let dirs = detect::distribution_dirs(&root);
    let detected = detect::profile(&root, &dirs, config.as_ref(), &devices);
    let elsewhere = |why: String| {
        (
            fallback.clone(),
            format!(
                "{layout}; {why}. On a node whose cluster interface is in a zone of its own (the layout with a separate cluster NIC puts it in trusted), run this there or pass --zone."
            ),
        )
    };
    if detected.profile != p.name {
        return elsewhere(format!(
            "this machine is not a {} node ({})",
            p.name, detected.reason
        ));
    }
    if !["etc/firewalld", "usr/lib/firewalld"]
        .iter()
        .any(|d| root.join(d).is_dir())
    {
        return elsewhere(format!(
            "no firewalld configuration under {}",
            root.display()
        ));
    }
    let permanent = firewalld::read_permanent(&root);
    let facts = match NodeFacts::read() {
        Ok(f) => f,
        Err(e) => return elsewhere(format!("this machine's interfaces could not be read ({e})")),
    };
    match ClusterZone::of_node(catalog, roles, &facts, config.as_ref(), &permanent) {
        Some(c) => {
            let open = if c.accepts_all {
                "; its target ACCEPT accepts every port already, the commands keep the configuration explicit"
            } else {
                ""
            };
            (
                Some(c.zone.clone()),
                format!(
                    "Zone {}, the zone of this node's cluster interface {} ({}, by {}), which `tracer diagnose` checks{open}",
                    c.zone, c.iface, c.addr, c.binding
                ),
            )
        }
        None => elsewhere("no interface of this node carries cluster traffic".into()),
    }
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
