//! Everything the model reads about a node, in one go: its interfaces and kernel settings, the
//! cluster's configuration, firewalld's permanent and runtime configuration, the nftables
//! ruleset and the iptables modes. What cannot be read becomes a problem line naming the file
//! or command and where; everything else is still read.

use std::path::Path;

use super::{
    cluster::{self, ClusterConfig},
    firewalld::{self, Permanent, Runtime},
    iptables::IptablesState,
    nft::Ruleset,
    node::NodeFacts,
};

pub struct NodeView {
    pub facts: NodeFacts,
    pub cluster: Option<ClusterConfig>,
    pub permanent: Option<Permanent>,
    pub runtime: Option<Runtime>,
    pub ruleset: Option<Ruleset>,
    pub iptables: IptablesState,
    /// What could not be read, one line each (`FILE:LINE:COL: message`).
    pub problems: Vec<String>,
    /// What was read, one line each, for the reader of a report.
    pub sources: Vec<String>,
}

impl NodeView {
    /// Reads the node whose configuration files are below `root`; the ruleset from
    /// `ruleset_file` when given (`nft -j list ruleset` output), else the live one.
    pub fn read(root: &Path, ruleset_file: Option<&Path>) -> std::io::Result<NodeView> {
        let facts = NodeFacts::read()?;
        let mut problems = Vec::new();
        let mut sources = Vec::new();

        let (cluster, cluster_problems) = cluster::read(root);
        problems.extend(cluster_problems);
        if let Some(c) = &cluster {
            sources.push(format!("{}: provider {}", c.file.display(), c.provider));
        }

        let permanent = ["etc/firewalld", "usr/lib/firewalld"]
            .iter()
            .any(|d| root.join(d).is_dir())
            .then(|| {
                let p = firewalld::read_permanent(root);
                problems.extend(p.problems.iter().map(|pr| pr.to_string()));
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

        let ruleset = match ruleset_file {
            Some(file) => std::fs::read_to_string(file)
                .map_err(|e| format!("{}: {e}", file.display()))
                .and_then(|t| {
                    Ruleset::from_json(&t, &file.display().to_string()).map_err(|e| e.to_string())
                }),
            None => Ruleset::read_live().map_err(|e| e.to_string()),
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
        let iptables = IptablesState::read(root, ruleset.as_ref());
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
            sources,
        })
    }
}
