//! `tracer diagnose`: read the node (firewalld's permanent and runtime configuration, the live
//! nftables ruleset, iptables modes, the cluster's configuration, sysctls, routes, MTUs),
//! evaluate every flow the node's role must accept, and print what is wrong with the fix.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};

use super::catalog::{Chosen, choose_with, parse_roles};
use crate::{
    findings::{Inputs, diagnose},
    model::{
        detect,
        view::{NodeView, RulesetFiles},
    },
    output::findings::{Context, json, text},
    probes::preflight,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Exit status when diagnose found errors (distinct from a failure to run, 1).
const FOUND_ERRORS: u8 = 3;

#[derive(Debug, Args)]
#[command(
    after_help = "What it checks: every port and protocol the node's role must accept (from the profile's
catalog), evaluated against the live nftables ruleset the way the kernel walks it, pod traffic
to and through the node, firewalld's backend against the cluster's iptables mode, masquerading
and the pod/service CIDRs as zone sources, runtime-only firewalld changes, strict rp_filter on
multi-NIC nodes, the default route (k3s), the overlay MTU against its underlay, IP forwarding.

It changes nothing: the fixes are printed, for you to run.
Exit status: 0 when every input was read and no error was found, 3 when errors were found,
1 when diagnose could not run or an input could not be read (a ruleset, a zone file...: the
diagnosis is then incomplete, printed as far as it goes, and never says \"No problem found\").

Examples:
  sudo tracer diagnose
  sudo tracer diagnose --profile k0s-calico --role worker --output json
  tracer diagnose --ruleset ruleset.json --root /mnt/node-image   (offline, from files)
  tracer diagnose --ruleset ruleset.json --iptables-save iptables.txt
                                 (nft -j list ruleset and iptables-nft-save of the same node)"
)]
pub struct DiagnoseArgs {
    /// Cluster profile. Default: detected from the node, else generic.
    #[arg(long, short, value_parser = super::profile_values())]
    profile: Option<String>,

    /// Node role(s): controller, worker (k3s: server, agent). Default: detected from the
    /// servers listening (6443: controller, 10250: worker).
    #[arg(long, short, value_delimiter = ',')]
    role: Vec<String>,

    /// Add the components of a catalog file (application ports). Repeatable.
    #[arg(long, value_name = "FILE")]
    catalog: Vec<PathBuf>,

    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    output: Format,

    /// Also list every flow evaluated, with its verdict and deciding rule.
    #[arg(long, short)]
    all: bool,

    /// Read the nftables ruleset from this file (`nft -j list ruleset` output) instead of the
    /// live one.
    #[arg(long, value_name = "FILE")]
    ruleset: Option<PathBuf>,

    /// With --ruleset: `iptables-nft-save` output from the same node, so that the extension
    /// matches of iptables-nft's rules (`-m conntrack`, `-m multiport`...) can be evaluated.
    #[arg(long, value_name = "FILE", requires = "ruleset")]
    iptables_save: Option<PathBuf>,

    /// With --ruleset: `ip6tables-nft-save` output, the same for IPv6.
    #[arg(long, value_name = "FILE", requires = "ruleset")]
    ip6tables_save: Option<PathBuf>,

    /// With --ruleset: `ipset save` output, the members of the ipsets those rules match
    /// (`-m set --match-set`).
    #[arg(long, value_name = "FILE", requires = "ruleset")]
    ipset_save: Option<PathBuf>,

    /// Root directory of the node's configuration files (/etc/firewalld, /etc/k0s...).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

/// The catalog of the node diagnosed, with the components of the `catalogs` files: the
/// `profile` given, else the one detected from what was read of the node (its cluster
/// configuration below `root`, its interfaces).
fn catalog(
    profile: Option<&str>,
    catalogs: &[PathBuf],
    root: &Path,
    view: &NodeView,
) -> Result<Chosen> {
    choose_with(profile, catalogs, || {
        detect::profile(root, view.cluster.as_ref(), &view.facts.ifaces)
    })
}

pub fn run(args: DiagnoseArgs) -> Result<ExitCode> {
    let DiagnoseArgs {
        profile,
        role,
        catalog: catalogs,
        output,
        all,
        ruleset,
        iptables_save,
        ip6tables_save,
        ipset_save,
        root,
    } = args;
    if ruleset.is_none() && preflight::privileges().is_err() {
        bail!(
            "diagnose reads the live nftables ruleset, which needs root (CAP_NET_ADMIN); run it with sudo, or give --ruleset FILE"
        );
    }
    let root = root.unwrap_or_else(super::node_root);
    let files = ruleset.map(|nft_json| RulesetFiles {
        nft_json,
        iptables_save,
        ip6tables_save,
        ipset_save,
    });
    let view = NodeView::read(&root, files.as_ref()).context("reading the node's interfaces")?;
    let chosen = catalog(profile.as_deref(), &catalogs, &root, &view)?;
    let (roles, roles_reason) = if role.is_empty() {
        detect::roles(&view.facts.listening)
    } else {
        let roles = parse_roles(&role)?;
        (roles, "given with --role".to_string())
    };
    let inputs = Inputs::new(&chosen.catalog, &roles, &view);
    let diagnosis = diagnose(&inputs);
    let ctx = Context {
        profile: chosen.catalog.profile.name.clone(),
        profile_reason: chosen.reason,
        roles: chosen.catalog.profile.role_names(&roles, "+"),
        roles_reason,
        sources: view.sources.clone(),
        problems: view.problems.clone(),
    };
    let mut rendered = Vec::new();
    match output {
        Format::Text => text(&mut rendered, &ctx, &diagnosis, all)?,
        Format::Json => json(&mut rendered, &ctx, &diagnosis, all)?,
    }
    crate::output::print(&String::from_utf8(rendered)?)?;
    Ok(exit_status(&view, &diagnosis))
}

/// 1 when an input the user named could not be read (the job was not done), else 3 when
/// errors were found, else 1 when some input could not be read (the diagnosis is partial:
/// no error found is not "no problem"), else 0. A non-zero status that the findings do not
/// explain comes with a line on stderr naming what could not be read.
fn exit_status(view: &NodeView, diagnosis: &crate::findings::Diagnosis) -> ExitCode {
    let unread = |problems: &[String]| {
        let more = match problems.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        eprintln!(
            "tracer: diagnosis incomplete: could not read {}{more}",
            problems[0]
        );
    };
    let problems = &view.problems;
    if !view.required_unread.is_empty() {
        unread(&view.required_unread);
        return ExitCode::FAILURE;
    }
    if diagnosis.errors() > 0 {
        return ExitCode::from(FOUND_ERRORS);
    }
    if !problems.is_empty() {
        unread(problems);
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clap::Parser;

    use super::*;
    use crate::model::{
        cluster::{ClusterConfig, Distribution},
        ifaces::Interface,
        iptables::IptablesState,
        node::NodeFacts,
    };

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: DiagnoseArgs,
    }

    fn args(argv: &[&str]) -> DiagnoseArgs {
        Cli::parse_from(std::iter::once("diagnose").chain(argv.iter().copied())).args
    }

    /// A node as `NodeView::read` would give it, with only a cluster configuration and
    /// interfaces.
    fn view(cluster: Option<ClusterConfig>, ifaces: &[&str]) -> NodeView {
        let ifaces = ifaces
            .iter()
            .enumerate()
            .map(|(i, name)| Interface {
                name: name.to_string(),
                index: i as u32 + 1,
                up: true,
                loopback: false,
                link_type: 1,
                driver: None,
                is_virtual: true,
                mtu: 1450,
            })
            .collect();
        NodeView {
            facts: NodeFacts {
                ifaces,
                addrs: Vec::new(),
                vxlans: Vec::new(),
                default_v4: None,
                ip_forward: None,
                rp_filter: BTreeMap::default(),
                listening: Vec::new(),
                pods: Vec::new(),
            },
            cluster,
            permanent: None,
            runtime: None,
            ruleset: None,
            iptables: IptablesState::default(),
            problems: Vec::new(),
            required_unread: Vec::new(),
            sources: Vec::new(),
        }
    }

    #[test]
    fn the_profile_is_detected_on_the_node_diagnosed() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path().to_str().unwrap();
        let k0s = ClusterConfig {
            distribution: Distribution::K0s,
            file: root.path().join("etc/k0s/k0s.yaml"),
            provider: "calico".into(),
            pod_cidrs: Vec::new(),
            service_cidrs: Vec::new(),
            iface: None,
        };
        let profile = |argv: &[&str], v: &NodeView| {
            let a = args(argv);
            let chosen = catalog(a.profile.as_deref(), &a.catalog, root.path(), v).unwrap();
            (chosen.catalog.profile.name, chosen.reason)
        };
        // The cluster configuration the view read below --root.
        assert_eq!(
            profile(&["--root", r], &view(Some(k0s.clone()), &[])),
            (
                "k0s-calico".to_string(),
                format!("detected: {r}/etc/k0s/k0s.yaml sets provider calico")
            )
        );
        // Without one, the view's interfaces.
        assert_eq!(
            profile(&["--root", r], &view(None, &["eth0", "flannel.1"])),
            (
                "k3s-flannel".to_string(),
                "detected: device flannel.1 exists".to_string()
            )
        );
        // The distribution's directory below --root comes before the devices.
        std::fs::create_dir_all(root.path().join("var/lib/k0s")).unwrap();
        assert_eq!(
            profile(&["--root", r], &view(None, &["flannel.1"])),
            (
                "k0s-kube-router".to_string(),
                format!("detected: {r}/var/lib/k0s exists (the distribution's default provider)")
            )
        );
        // --profile wins over all of it.
        assert_eq!(
            profile(&["--profile", "k3s-wireguard"], &view(Some(k0s), &[])),
            (
                "k3s-wireguard".to_string(),
                "given with --profile".to_string()
            )
        );
    }
}
