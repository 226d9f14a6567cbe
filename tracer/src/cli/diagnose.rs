//! `tracer diagnose`: read the node (firewalld's permanent and runtime configuration, the live
//! nftables ruleset, iptables modes, the cluster's configuration, sysctls, routes, MTUs), or a
//! bundle taken on it, or what was pasted from it, evaluate every flow the node's role must
//! accept, and print what is wrong with the fix. Away from the node nothing of the machine
//! running it is read.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};

use super::catalog::{Chosen, choose_with, parse_roles};
use crate::{
    findings::{BUNDLE, Inputs, diagnose, named_interfaces},
    model::{
        bundle::Bundle,
        capture::Capture,
        detect,
        evidence::{self, EvidenceReport, Named},
        iptables,
        node::Fact,
        view::{NodeView, Root, Unknown},
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

Away from the node (--bundle, --evidence, --ruleset) nothing of the machine running diagnose is
read: what the inputs do not hold is unknown, said with the command that would settle it, and
the diagnosis is then partial (exit status 1 unless errors were found). Findings say how sure
they are: certain when the deciding rule is in the inputs, likely when a missing part could
change it.

--evidence takes what people paste, and says what each file was taken for and what of it was
used: nft list ruleset (text, loaded into a scratch network namespace with nft, which needs
root) or nft -j list ruleset; iptables-save, iptables-nft-save, iptables-legacy-save (or ip6),
iptables -S, iptables -L (best effort; without -n -v host names and interfaces are not shown);
ipset save; firewall-cmd --list-all-zones or --info-zone=NAME; zone and service XML;
firewalld.conf; k0s.yaml or k3s's config.yaml; ip -d link, ip addr, ip route; sysctl;
ss -ltn.

Examples:
  sudo tracer diagnose
  sudo tracer diagnose --profile k0s-calico --role worker --output json
  tracer diagnose --bundle node.tar.gz             (from `tracer bundle` on the node)
  sudo tracer diagnose --evidence iptables-save.txt ip-route.txt --profile k0s-kube-router
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

    /// Diagnose from a support bundle (`tracer bundle` on the node): the archive, or the
    /// directory it unpacks to.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["ruleset", "root", "evidence"])]
    bundle: Option<PathBuf>,

    /// Diagnose from files pasted from the node: each one's form is detected (see below).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    evidence: Vec<PathBuf>,
}

/// The catalog of the node diagnosed, with the components of the `catalogs` files: the
/// `profile` given, else the one detected from what was read of the node (its cluster
/// configuration and distribution directories below its root, its interfaces or, when they
/// are unknown, the interfaces its rules and zones name).
fn catalog(profile: Option<&str>, catalogs: &[PathBuf], view: &NodeView) -> Result<Chosen> {
    choose_with(profile, catalogs, || {
        let devices: Vec<String> = if view.facts.knows(Fact::Links) {
            view.facts.ifaces.iter().map(|i| i.name.clone()).collect()
        } else {
            named_interfaces(
                view.ruleset.as_ref(),
                view.permanent.as_ref(),
                view.runtime.as_ref(),
            )
        };
        let root = view.root.clone().unwrap_or_default();
        detect::profile(
            &root,
            &view.distribution_dirs,
            view.cluster.as_ref(),
            &devices,
        )
    })
}

/// The view of the node: read live, from a bundle, or from the files named.
fn read_view(args: &DiagnoseArgs) -> Result<(NodeView, Vec<EvidenceReport>)> {
    if let Some(path) = &args.bundle {
        let bundle = Bundle::open(path)?;
        let (root, shown) = (bundle.root(), bundle.manifest.node_root.clone());
        let mut view = NodeView::of(
            bundle.capture(),
            Some(Root {
                files: &root,
                shown: &shown,
            }),
        );
        let m = &bundle.manifest;
        view.sources.insert(
            0,
            format!(
                "bundle {}: taken {} on {} (kernel {}, tracer {})",
                bundle.name, m.created_at, m.hostname, m.kernel, m.tracer_version
            ),
        );
        return Ok((view, Vec::new()));
    }
    if args.ruleset.is_some() || !args.evidence.is_empty() {
        let named = Named {
            ruleset: args.ruleset.clone(),
            iptables_save: args.iptables_save.clone(),
            ip6tables_save: args.ip6tables_save.clone(),
            ipset_save: args.ipset_save.clone(),
            evidence: args.evidence.clone(),
        };
        let (mut capture, reports): (Capture, _) = evidence::read(&named);
        if let Some(r) = &args.root {
            capture.k0s_link = iptables::k0s_link(r);
        }
        let root = args.root.as_deref().map(|r| Root { files: r, shown: r });
        return Ok((NodeView::of(capture, root), reports));
    }
    let root = args.root.clone().unwrap_or_else(super::node_root);
    let view = NodeView::read(&root).context("reading the node's interfaces")?;
    Ok((view, Vec::new()))
}

pub fn run(args: &DiagnoseArgs) -> Result<ExitCode> {
    let offline = args.bundle.is_some() || args.ruleset.is_some() || !args.evidence.is_empty();
    if !offline && preflight::privileges().is_err() {
        bail!(
            "diagnose reads the live nftables ruleset, which needs root (CAP_NET_ADMIN); run it with sudo, or give --bundle FILE, --evidence FILE... or --ruleset FILE"
        );
    }
    let (mut view, evidence) = read_view(args)?;
    let chosen = catalog(args.profile.as_deref(), &args.catalog, &view)?;
    let (roles, roles_reason) = if !args.role.is_empty() {
        (parse_roles(&args.role)?, "given with --role".to_string())
    } else if view.facts.knows(Fact::Listening) {
        detect::roles(&view.facts.listening)
    } else {
        view.unknown.push(Unknown {
            what: "the node's roles".into(),
            why:
                "the ports it listens on are not in the inputs: taken to be a worker (give --role)"
                    .into(),
            settle: vec![Fact::Listening.command().into(), BUNDLE.into()],
        });
        (
            vec![crate::model::catalog::Role::Worker],
            "assumed: the listening ports are not in the inputs (give --role)".to_string(),
        )
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
        evidence,
    };
    let mut rendered = Vec::new();
    match args.output {
        Format::Text => text(&mut rendered, &ctx, &diagnosis, args.all)?,
        Format::Json => json(&mut rendered, &ctx, &diagnosis, args.all)?,
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
    if let Some(u) = diagnosis.unknowns.first() {
        eprintln!(
            "tracer: diagnosis partial: {} unknown{} ({}: {})",
            diagnosis.unknowns.len(),
            if diagnosis.unknowns.len() == 1 {
                ""
            } else {
                "s"
            },
            u.what,
            u.why
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clap::Parser;

    use std::path::Path;

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

    /// A node as `NodeView::read` would give it below `root`, with only a cluster
    /// configuration and interfaces.
    fn view(root: &Path, cluster: Option<ClusterConfig>, ifaces: &[&str]) -> NodeView {
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
                unknown: std::collections::BTreeSet::new(),
            },
            cluster,
            permanent: None,
            runtime: None,
            ruleset: None,
            iptables: IptablesState::default(),
            problems: Vec::new(),
            required_unread: Vec::new(),
            sources: Vec::new(),
            root: Some(root.to_path_buf()),
            distribution_dirs: detect::distribution_dirs(root),
            offline: false,
            firewalld_known: true,
            runtime_known: true,
            unknown: Vec::new(),
            gaps: Vec::new(),
            iptables_cmd: None,
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
            let chosen = catalog(a.profile.as_deref(), &a.catalog, v).unwrap();
            (chosen.catalog.profile.name, chosen.reason)
        };
        // The cluster configuration the view read below --root.
        assert_eq!(
            profile(&["--root", r], &view(root.path(), Some(k0s.clone()), &[])),
            (
                "k0s-calico".to_string(),
                format!("detected: {r}/etc/k0s/k0s.yaml sets provider calico")
            )
        );
        // Without one, the view's interfaces.
        assert_eq!(
            profile(
                &["--root", r],
                &view(root.path(), None, &["eth0", "flannel.1"])
            ),
            (
                "k3s-flannel".to_string(),
                "detected: device flannel.1 exists".to_string()
            )
        );
        // The distribution's directory below --root comes before the devices.
        std::fs::create_dir_all(root.path().join("var/lib/k0s")).unwrap();
        assert_eq!(
            profile(&["--root", r], &view(root.path(), None, &["flannel.1"])),
            (
                "k0s-kube-router".to_string(),
                format!("detected: {r}/var/lib/k0s exists (the distribution's default provider)")
            )
        );
        // --profile wins over all of it.
        assert_eq!(
            profile(
                &["--profile", "k3s-wireguard"],
                &view(root.path(), Some(k0s), &[])
            ),
            (
                "k3s-wireguard".to_string(),
                "given with --profile".to_string()
            )
        );
    }
}
