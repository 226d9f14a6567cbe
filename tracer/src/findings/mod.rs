//! Correlation and findings, the stage after the model: every flow the node's role must accept
//! is evaluated against the live ruleset, and the node's settings are checked against what the
//! distribution needs. What is wrong becomes a finding: severity, explanation, the evidence
//! (zone, element, deciding rule) and the commands that fix it.

pub mod correlate;
pub mod drops;
pub mod explain;
pub mod firewalld;
mod fix;
mod flows;
mod settings;

use serde::{Deserialize, Serialize};

use crate::model::{
    catalog::{Catalog, Role},
    cluster::ClusterConfig,
    firewalld::{Permanent, Runtime},
    iptables::IptablesState,
    net::Cidr,
    nft::{RuleRef, Ruleset},
    node::{IfAddr, NodeFacts},
    view::NodeView,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// The nftables rule a finding rests on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInfo {
    pub family: String,
    pub table: String,
    pub chain: String,
    pub handle: u64,
    pub text: String,
}

impl RuleInfo {
    pub fn of(r: &RuleRef) -> Self {
        RuleInfo {
            family: r.family.to_string(),
            table: r.table.clone(),
            chain: r.chain.clone(),
            handle: r.handle,
            text: r.text.clone(),
        }
    }
}

/// Something wrong (or worth knowing) about the node, with what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable identifier: the check and its subject, e.g. `flow-rejected/calico-vxlan/eth0`.
    pub id: String,
    pub severity: Severity,
    /// One line.
    pub title: String,
    /// Why it matters.
    pub explain: String,
    pub class: Option<String>,
    pub port: Option<String>,
    pub iface: Option<String>,
    pub zone: Option<String>,
    /// Why traffic lands in that zone: its source, its interface, or the default zone.
    pub binding: Option<String>,
    /// The zone element (or missing element) responsible.
    pub element: Option<String>,
    pub rule: Option<RuleInfo>,
    pub fix: Vec<String>,
}

impl Finding {
    pub(crate) fn new(
        id: impl Into<String>,
        severity: Severity,
        title: impl Into<String>,
        explain: impl Into<String>,
    ) -> Self {
        Finding {
            id: id.into(),
            severity,
            title: title.into(),
            explain: explain.into(),
            class: None,
            port: None,
            iface: None,
            zone: None,
            binding: None,
            element: None,
            rule: None,
            fix: Vec::new(),
        }
    }
}

/// One evaluated flow, for the verbose view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowCheck {
    pub name: String,
    pub verdict: String,
    pub rule: Option<RuleInfo>,
}

/// Everything diagnose looks at.
pub struct Inputs<'a> {
    pub catalog: &'a Catalog,
    pub roles: &'a [Role],
    pub facts: &'a NodeFacts,
    pub cluster: Option<&'a ClusterConfig>,
    pub permanent: Option<&'a Permanent>,
    pub runtime: Option<&'a Runtime>,
    pub ruleset: Option<&'a Ruleset>,
    pub iptables: &'a IptablesState,
}

impl<'a> Inputs<'a> {
    /// What diagnose needs, from a view of the node.
    pub fn new(catalog: &'a Catalog, roles: &'a [Role], view: &'a NodeView) -> Self {
        Inputs {
            catalog,
            roles,
            facts: &view.facts,
            cluster: view.cluster.as_ref(),
            permanent: view.permanent.as_ref(),
            runtime: view.runtime.as_ref(),
            ruleset: view.ruleset.as_ref(),
            iptables: &view.iptables,
        }
    }

    pub fn pod_cidrs(&self) -> Vec<Cidr> {
        match self.cluster {
            Some(c) if !c.pod_cidrs.is_empty() => c.pod_cidrs.clone(),
            _ => self.catalog.profile.pod_cidrs.clone(),
        }
    }

    pub fn service_cidrs(&self) -> Vec<Cidr> {
        match self.cluster {
            Some(c) if !c.service_cidrs.is_empty() => c.service_cidrs.clone(),
            _ => self.catalog.profile.service_cidrs.clone(),
        }
    }

    fn in_cluster_cidrs(&self, addr: std::net::IpAddr) -> bool {
        self.pod_cidrs()
            .iter()
            .chain(&self.service_cidrs())
            .any(|c| c.contains(addr))
    }

    /// Does this node run pods? Workers do; k3s servers do too.
    pub fn runs_pods(&self) -> bool {
        self.roles.contains(&Role::Worker) || self.catalog.profile.distribution == "k3s"
    }

    /// The IPv4 addresses cluster traffic reaches this node at: the configured cluster
    /// interface, else the overlay's underlay, else the default route's interface.
    pub fn cluster_addrs(&self) -> Vec<&IfAddr> {
        let f = self.facts;
        let by_iface = |name: &str| f.ipv4_of(name);
        if let Some(i) = self
            .cluster
            .and_then(|c| c.iface.as_deref())
            .and_then(by_iface)
        {
            return vec![i];
        }
        let mut out: Vec<&IfAddr> = Vec::new();
        for v in &f.vxlans {
            if let Some(a) = f.underlay_of(v).and_then(by_iface)
                && !out.contains(&a)
            {
                out.push(a);
            }
        }
        if out.is_empty()
            && let Some(a) = f.default_v4.as_deref().and_then(by_iface)
        {
            out.push(a);
        }
        if out.is_empty() {
            out = self.node_nics();
        }
        out
    }

    /// The node's own NICs: addressed interfaces that are not loopback, overlay devices or pod
    /// bridges (whose addresses lie in the pod CIDR).
    pub fn node_nics(&self) -> Vec<&IfAddr> {
        let f = self.facts;
        f.addrs
            .iter()
            .filter(|a| a.addr.is_ipv4() && !a.addr.is_loopback())
            .filter(|a| !f.vxlans.iter().any(|v| v.name == a.iface))
            .filter(|a| !self.in_cluster_cidrs(a.addr))
            .collect()
    }
}

/// What diagnose found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Diagnosis {
    pub findings: Vec<Finding>,
    pub flows: Vec<FlowCheck>,
}

impl Diagnosis {
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count()
    }
}

pub fn diagnose(inp: &Inputs) -> Diagnosis {
    let mut d = Diagnosis::default();
    flows::check(inp, &mut d);
    settings::check(inp, &mut d);
    d.findings
        .sort_by(|a, b| a.severity.cmp(&b.severity).then(a.id.cmp(&b.id)));
    d.findings.dedup_by(|a, b| a.id == b.id);
    d
}
