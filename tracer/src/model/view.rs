//! Everything the model reads about a node, in one go: its interfaces and kernel settings, the
//! cluster's configuration, firewalld's permanent and runtime configuration, the nftables
//! ruleset and the iptables modes. What cannot be read becomes a problem line naming the file
//! or command and where; everything else is still read.

use std::path::{Path, PathBuf};

use super::{
    cluster::{self, ClusterConfig},
    firewalld::{self, Permanent, Runtime},
    iptables::IptablesState,
    legacy::LegacySaves,
    nft::{Family, Ruleset, RulesetError, SavedRules},
    node::NodeFacts,
};

/// A ruleset captured to files, for a diagnosis away from the node.
pub struct RulesetFiles {
    /// `nft -j list ruleset` output.
    pub nft_json: PathBuf,
    /// `iptables-nft-save` output: the arguments of the IPv4 tables' `xt` matches.
    pub iptables_save: Option<PathBuf>,
    /// `ip6tables-nft-save` output, the same for IPv6.
    pub ip6tables_save: Option<PathBuf>,
    /// `ipset save` output: the members of the ipsets those rules match.
    pub ipset_save: Option<PathBuf>,
}

/// Why no ruleset was read.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The ruleset file cannot be read.
    #[error("{}: {error}", file.display())]
    Read {
        file: PathBuf,
        error: std::io::Error,
    },
    /// The ruleset does not parse, or `nft` cannot list it.
    #[error(transparent)]
    Ruleset(#[from] RulesetError),
}

impl RulesetFiles {
    /// The ruleset, with the save files' xt arguments; an unreadable save file is a problem
    /// line (and an unread required input: the user named it), and its family's xt matches
    /// stay unknown.
    fn read(&self, problems: &mut Vec<String>) -> Result<Ruleset, ViewError> {
        let mut saved = SavedRules::default();
        let mut text_of = |file: &Option<PathBuf>| {
            let file = file.as_ref()?;
            std::fs::read_to_string(file)
                .map_err(|e| problems.push(format!("{}: {e}", file.display())))
                .ok()
        };
        for (file, family) in [
            (&self.iptables_save, Family::Ip),
            (&self.ip6tables_save, Family::Ip6),
        ] {
            if let Some(text) = text_of(file) {
                saved.add(family, &text);
            }
        }
        if let Some(text) = text_of(&self.ipset_save) {
            saved.add_ipsets(&text);
        }
        let origin = self.nft_json.display().to_string();
        let text = std::fs::read_to_string(&self.nft_json).map_err(|error| ViewError::Read {
            file: self.nft_json.clone(),
            error,
        })?;
        Ok(Ruleset::from_json_with_saved(&text, &origin, &saved)?)
    }
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
}

impl NodeView {
    /// Reads the node whose configuration files are below `root`; the ruleset from
    /// `ruleset_files` when given, else the live one.
    pub fn read(root: &Path, ruleset_files: Option<&RulesetFiles>) -> std::io::Result<NodeView> {
        let facts = NodeFacts::read()?;
        let mut problems = Vec::new();
        let mut sources = Vec::new();

        let (cluster, cluster_problems) = cluster::read(root);
        problems.extend(cluster_problems.iter().map(ToString::to_string));
        if let Some(c) = &cluster {
            sources.push(format!("{}: provider {}", c.file.display(), c.provider));
        }

        let permanent = ["etc/firewalld", "usr/lib/firewalld"]
            .iter()
            .any(|d| root.join(d).is_dir())
            .then(|| {
                let p = firewalld::read_permanent(root);
                problems.extend(p.problems.iter().map(std::string::ToString::to_string));
                sources.push(format!(
                    "firewalld configuration: backend {}, default zone {}, {} zones",
                    p.conf.backend,
                    p.conf.default_zone,
                    p.zones.len()
                ));
                p
            });
        let runtime = firewalld::read_runtime().unwrap_or_else(|e| {
            problems.push(format!("firewalld over D-Bus: {e}"));
            None
        });
        sources.push(match (&permanent, &runtime) {
            (_, Some(r)) => format!("firewalld is running (default zone {})", r.default_zone),
            (Some(_), None) => "firewalld is configured but not running".into(),
            (None, None) => "no firewalld on this node".into(),
        });

        let before = problems.len();
        let ruleset = match ruleset_files {
            Some(files) => files.read(&mut problems),
            None => Ruleset::read_live().map_err(ViewError::from),
        };
        let ruleset = match ruleset {
            Ok(rs) => {
                sources.push(format!(
                    "nftables: {} tables, {} rules",
                    rs.tables.len(),
                    rs.rule_count()
                ));
                Some(rs)
            }
            Err(e) => {
                problems.push(format!("{e} (flows not evaluated)"));
                None
            }
        };
        let required_unread = if ruleset_files.is_some() {
            problems[before..].to_vec()
        } else {
            Vec::new()
        };
        let mut ruleset = ruleset;
        // Legacy tables run beside nftables: read them with the live ruleset (a ruleset read
        // from files has no legacy part unless the files do).
        let legacy = if ruleset_files.is_some() {
            LegacySaves::default()
        } else {
            LegacySaves::read_live(&mut problems)
        };
        legacy.merge_into(ruleset.as_mut(), &mut sources, &mut problems);
        let iptables = IptablesState::read(root, ruleset.as_ref(), &legacy);
        problems.extend(iptables.problems.iter().cloned());
        if let Some((mode, why)) = iptables.cluster_mode() {
            sources.push(format!(
                "the cluster uses iptables in {} mode ({why})",
                mode.as_str()
            ));
        }
        Ok(NodeView {
            facts,
            cluster,
            permanent,
            runtime,
            ruleset,
            iptables,
            problems,
            required_unread,
            sources,
        })
    }
}
