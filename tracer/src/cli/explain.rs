//! `tracer explain`: what the node's firewall does with one packet the user describes, and
//! why: the verdict, the deciding rule, the firewalld zone and the binding that chose it, the
//! element of firewalld's configuration (or the rule outside firewalld) that decides, and for
//! a refused packet the commands that let it through.

use std::{fmt::Write as _, net::IpAddr, process::ExitCode};

use anyhow::{Context as _, Result, bail};
use clap::Args;

use super::diagnose::Format;
use crate::{
    findings::{
        Inputs,
        explain::{Explanation, explain_packet},
    },
    model::{
        catalog::{Catalog, Role},
        nft::{Hook, Packet},
        view::NodeView,
    },
    probes::preflight,
};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  sudo tracer explain --in eth0 --from 192.168.10.21 --to 192.168.10.22 --proto tcp --dport 179
  sudo tracer explain --in eth0 --out cni0 --from 10.42.1.5 --to 10.42.0.7 --dport 8080
  sudo tracer explain --in eth1 --from 10.0.0.5 --to 10.0.0.1 --proto icmp --output json")]
pub struct ExplainArgs {
    /// The interface the packet arrives on.
    #[arg(long = "in", value_name = "IFACE")]
    iif: String,
    /// The interface it leaves by, for a packet the node forwards (else it is for the node).
    #[arg(long = "out", value_name = "IFACE")]
    oif: Option<String>,
    /// Its source address.
    #[arg(long)]
    from: IpAddr,
    /// Its destination address.
    #[arg(long)]
    to: IpAddr,
    /// tcp, udp, sctp, icmp, icmpv6, or another protocol's name or number.
    #[arg(long, default_value = "tcp")]
    proto: String,
    /// Destination port (TCP, UDP, SCTP).
    #[arg(long, default_value_t = 0)]
    dport: u16,
    /// Source port.
    #[arg(long, default_value_t = 43210)]
    sport: u16,
    /// ICMP type (default: echo request).
    #[arg(long)]
    icmp_type: Option<u8>,
    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    output: Format,
}

/// The packet described by `args`.
fn packet(args: &ExplainArgs) -> Result<Packet> {
    let proto = args
        .proto
        .parse::<u8>()
        .ok()
        .or_else(|| tracer_common::protocols::number(&args.proto.to_lowercase()))
        .with_context(|| format!("{:?} is not a protocol name or number", args.proto))?;
    if args.from.is_ipv4() != args.to.is_ipv4() {
        bail!("--from and --to are of different families");
    }
    let hook = if args.oif.is_some() {
        Hook::Forward
    } else {
        Hook::Input
    };
    let icmp = matches!(proto, 1 | 58);
    let (sport, dport) = if icmp {
        (0, 0)
    } else {
        (args.sport, args.dport)
    };
    Ok(Packet {
        oif: args.oif.clone(),
        icmp_type: icmp.then(|| args.icmp_type.unwrap_or(if proto == 1 { 8 } else { 128 })),
        ..Packet::new_connection(hook, &args.iif, args.from, args.to, proto, sport, dport)
    })
}

fn text(e: &Explanation) -> String {
    let mut s = format!("verdict: {}\n", e.verdict);
    if let Some(r) = &e.rule {
        let _ = writeln!(
            s,
            "rule:    {} {} {} #{}: {}",
            r.family, r.table, r.chain, r.handle, r.text
        );
    }
    if let Some(z) = &e.zone {
        let by = e.binding.as_deref().unwrap_or("unknown binding");
        let _ = writeln!(s, "zone:    {z} (chosen by {by})");
    }
    if let Some(el) = &e.element {
        let _ = writeln!(s, "cause:   {el}");
    }
    for (i, f) in e.fix.iter().enumerate() {
        let _ = writeln!(s, "{}{f}", if i == 0 { "fix:     " } else { "         " });
    }
    s
}

pub fn run(args: &ExplainArgs) -> Result<ExitCode> {
    preflight::privileges().map_err(|_| {
        anyhow::anyhow!("explain reads the live nftables ruleset, which needs root (CAP_NET_ADMIN)")
    })?;
    let pkt = packet(args)?;
    let view = NodeView::read(&super::node_root()).context("reading the node")?;
    if view.ruleset.is_none() {
        bail!(
            "no nftables ruleset could be read: {}",
            view.problems.join("; ")
        );
    }
    let catalog = Catalog::builtin("generic")?;
    let roles: [Role; 0] = [];
    let e = explain_packet(&Inputs::new(&catalog, &roles, &view), &pkt);
    let out = match args.output {
        Format::Text => text(&e),
        Format::Json => serde_json::to_string(&e)? + "\n",
    };
    crate::output::print(&out)?;
    Ok(ExitCode::SUCCESS)
}
