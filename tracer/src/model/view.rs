//! Everything the model knows about a node, in one go: its interfaces and kernel settings, the
//! cluster's configuration, firewalld's permanent and runtime configuration, the nftables
//! ruleset and the iptables modes. On the node it is read live ([`NodeView::read`]); away from
//! it, from a [`Capture`] (a support bundle, pasted evidence) and the files of a root directory
//! ([`NodeView::of`]), and whatever those lack stays unknown, said in [`NodeView::unknown`].
//! What cannot be read becomes a problem line naming the file or command and where;
//! everything else is still read.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{
    capture::{Capture, Listing, SavedListings},
    cluster::{self, ClusterConfig},
    detect,
    firewalld::{self, Permanent, Runtime},
    iptables::IptablesState,
    legacy::LegacySaves,
    nft::{Family, Hook, Ruleset},
    node::NodeFacts,
};

/// Something a diagnosis away from the node does not know, why, and what would settle it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unknown {
    /// What is unknown, as a noun phrase: `firewalld's runtime state`.
    pub what: String,
    /// Why, and what it leaves unchecked.
    pub why: String,
    /// Commands on the node whose output settles it.
    pub settle: Vec<String>,
}

/// A rule of a pasted listing that could not be read: it is not in the ruleset, and a verdict
/// that may have met it is only likely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleGap {
    pub family: Family,
    pub table: String,
    pub chain: String,
    /// The hook, when the chain is a base chain (iptables' built-in chains).
    pub base_hook: Option<Hook>,
    /// Where it was read: `FILE:LINE`.
    pub place: String,
    /// Why it could not be used.
    pub why: String,
    /// The command whose output would hold it whole.
    pub settle: String,
}

/// The directory the node's configuration files are read from, and the name the node gives
/// it (they differ for a bundle unpacked elsewhere), so that paths in findings and fixes are
/// the node's own.
#[derive(Clone, Copy, Debug)]
pub struct Root<'a> {
    pub files: &'a Path,
    pub shown: &'a Path,
}

pub struct NodeView {
    pub facts: NodeFacts,
    pub cluster: Option<ClusterConfig>,
    pub permanent: Option<Permanent>,
    pub runtime: Option<Runtime>,
    pub ruleset: Option<Ruleset>,
    pub iptables: IptablesState,
    /// What could not be read, one line each (`FILE:LINE:COL: message`).
    pub problems: Vec<String>,
    /// The lines of [`NodeView::problems`] about inputs the user named (`--ruleset FILE` and
    /// the save files beside it): a diagnosis without them has not done its job.
    pub required_unread: Vec<String>,
    /// What was read, one line each, for the reader of a report.
    pub sources: Vec<String>,
    /// The node's root as the node names it, when its files were read.
    pub root: Option<PathBuf>,
    /// Which of the distributions' directories exist below the root
    /// ([`detect::distribution_dirs`]).
    pub distribution_dirs: Vec<&'static str>,
    /// Read away from the node (a bundle, evidence, files): findings then say how sure they
    /// are.
    pub offline: bool,
    /// Whether firewalld's configuration is known: read from a root, given as evidence, or
    /// known to be absent.
    pub firewalld_known: bool,
    /// Whether firewalld's runtime state is known (running or not).
    pub runtime_known: bool,
    /// What the inputs do not hold, besides the facts [`NodeFacts::unknown`] names.
    pub unknown: Vec<Unknown>,
    /// Rules of pasted listings that could not be read.
    pub gaps: Vec<RuleGap>,
    /// The command that manages the iptables tables of the ruleset when it is not
    /// `iptables-nft` (`iptables-legacy` for a legacy listing evaluated here, `iptables` when
    /// the listing does not say); `ip6` goes in front for IPv6.
    pub iptables_cmd: Option<String>,
}

impl NodeView {
    /// Reads the node this process runs on, with its configuration files below `root`.
    pub fn read(root: &Path) -> std::io::Result<NodeView> {
        let capture = Capture::live(root, false)?;
        let mut view = NodeView::of(
            capture,
            Some(Root {
                files: root,
                shown: root,
            }),
        );
        view.offline = false;
        Ok(view)
    }

    /// The view of a captured node, with its configuration files below `root` (none without).
    pub fn of(capture: Capture, root: Option<Root>) -> NodeView {
        let mut problems = capture.problems;
        let mut sources = Vec::new();
        let mut unknown = capture.unknown;

        let (mut cluster, cluster_problems) = match root {
            Some(r) => cluster::read(r.files),
            None => (None, Vec::new()),
        };
        problems.extend(
            cluster_problems
                .into_iter()
                .map(|e| rebased(&e.to_string(), root)),
        );
        if let Some(c) = &mut cluster {
            c.file = rebase(&c.file, root);
        }
        let cluster = cluster.or(capture.cluster);
        if let Some(c) = &cluster {
            sources.push(format!("{}: provider {}", c.file.display(), c.provider));
        }

        // Files below a root, else (or besides nothing there) what the evidence held.
        let permanent = root
            .and_then(|r| read_permanent(r, &mut problems, &mut sources))
            .or(capture.permanent);
        let firewalld_known = root.is_some() || permanent.is_some();
        if !firewalld_known {
            unknown.push(Unknown {
                what: "firewalld's configuration".into(),
                why: "not in the inputs: zone sources and masquerading are not checked, and a refusal by firewalld's rules is traced to its zone by the chain's name only".into(),
                settle: vec![
                    "firewall-cmd --list-all-zones".into(),
                    "tar czf firewalld.tgz /etc/firewalld   # then diagnose --root with it unpacked".into(),
                ],
            });
        }
        let runtime_known = capture.runtime.is_ok();
        let runtime = capture.runtime.unwrap_or_else(|why| {
            if capture.expect_all {
                problems.push(format!("firewalld's runtime state: {why}"));
            }
            unknown.push(Unknown {
                what: "firewalld's runtime state".into(),
                why: format!("{why}; runtime-only firewalld changes are not checked"),
                settle: vec![
                    "firewall-cmd --state".into(),
                    "firewall-cmd --list-all-zones".into(),
                ],
            });
            None
        });
        sources.push(match (&permanent, &runtime, runtime_known) {
            (_, Some(r), _) => format!("firewalld is running (default zone {})", r.default_zone),
            (Some(_), None, true) => "firewalld is configured but not running".into(),
            (Some(_), None, false) => "firewalld is configured; whether it runs is unknown".into(),
            (None, None, _) if firewalld_known => "no firewalld on this node".into(),
            (None, None, _) => "firewalld: unknown (its configuration is not in the inputs)".into(),
        });

        let before = problems.len();
        let mut ruleset = ruleset_of(capture.nft, &capture.saved, &mut problems, &mut sources);
        let mut required_unread = capture.required_unread;
        if capture.ruleset_named {
            required_unread.extend(problems[before..].iter().cloned());
        }
        let iptables =
            IptablesState::new(capture.legacy.as_ref(), ruleset.as_ref(), capture.k0s_link);
        // Legacy tables run beside nftables at the same hooks: evaluate them with the ruleset.
        if let Some(l) = capture.legacy.as_ref().filter(|_| !capture.legacy_loaded) {
            LegacySaves::from(l).merge_into(
                ruleset.as_mut(),
                capture.saved.ipset.as_deref(),
                &mut sources,
                &mut problems,
            );
        }
        if let Some((mode, why)) = iptables.cluster_mode() {
            sources.push(format!(
                "the cluster uses iptables in {} mode ({why})",
                mode.as_str()
            ));
        }
        let distribution_dirs = root.map_or_else(Vec::new, |r| detect::distribution_dirs(r.files));
        NodeView {
            facts: capture.facts,
            cluster,
            permanent,
            runtime,
            ruleset,
            iptables,
            problems,
            required_unread,
            sources,
            root: root.map(|r| r.shown.to_path_buf()),
            distribution_dirs,
            offline: true,
            firewalld_known,
            runtime_known,
            unknown,
            gaps: capture.gaps,
            iptables_cmd: capture.iptables_cmd,
        }
    }
}

/// The ruleset of a capture, parsed with the listings that explain its xt matches; what
/// cannot be read is a problem line.
fn ruleset_of(
    nft: Result<Listing, String>,
    saved: &SavedListings,
    problems: &mut Vec<String>,
    sources: &mut Vec<String>,
) -> Option<Ruleset> {
    let parsed = nft.and_then(|listing| {
        Ruleset::from_json_with_saved(&listing.text, &listing.origin, &saved.rules())
            .map_err(|e| e.to_string())
    });
    match parsed {
        Ok(rs) => {
            sources.push(format!(
                "nftables: {} tables, {} rules",
                rs.tables.len(),
                rs.rule_count()
            ));
            Some(rs)
        }
        Err(why) => {
            problems.push(format!("{why} (flows not evaluated)"));
            None
        }
    }
}

/// firewalld's permanent configuration below the root, when there is one, with its files
/// named as the node names them.
fn read_permanent(
    root: Root,
    problems: &mut Vec<String>,
    sources: &mut Vec<String>,
) -> Option<Permanent> {
    if !["etc/firewalld", "usr/lib/firewalld"]
        .iter()
        .any(|d| root.files.join(d).is_dir())
    {
        return None;
    }
    let mut p = firewalld::read_permanent(root.files);
    let some = Some(root);
    p.conf.file = p.conf.file.map(|f| rebase(&f, some));
    for z in p.zones.values_mut() {
        z.file = z.file.as_ref().map(|f| rebase(f, some));
    }
    for s in p.services.values_mut() {
        s.file = s.file.as_ref().map(|f| rebase(f, some));
    }
    for problem in &mut p.problems {
        problem.file = rebase(&problem.file, some);
    }
    problems.extend(p.problems.iter().map(ToString::to_string));
    sources.push(format!(
        "firewalld configuration: backend {}, default zone {}, {} zones",
        p.conf.backend,
        p.conf.default_zone,
        p.zones.len()
    ));
    Some(p)
}

/// `path` below `root.files`, named below `root.shown` instead.
fn rebase(path: &Path, root: Option<Root>) -> PathBuf {
    match root.and_then(|r| path.strip_prefix(r.files).ok().map(|rel| r.shown.join(rel))) {
        Some(p) => p,
        None => path.to_path_buf(),
    }
}

/// A message naming files below `root.files`, naming them below `root.shown` instead.
fn rebased(message: &str, root: Option<Root>) -> String {
    match root {
        Some(r) if r.files != r.shown => {
            let (from, to) = (r.files.display().to_string(), r.shown.display().to_string());
            let to = to.trim_end_matches('/');
            message.replace(from.trim_end_matches('/'), to)
        }
        _ => message.to_string(),
    }
}
