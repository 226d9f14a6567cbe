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
mod guesses;
mod hints;
pub mod layout;
mod narrow;
mod settings;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

pub use guesses::{BUNDLE, Guesses, named_interfaces};

use crate::model::{
    catalog::{Catalog, Role},
    cluster::ClusterConfig,
    firewalld::{Permanent, Runtime},
    iptables::IptablesState,
    net::Cidr,
    nft::{Backend, RuleRef, Ruleset},
    node::{Fact, IfAddr, NodeFacts},
    view::{NodeView, Unknown},
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

/// How sure a finding made away from the node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Certainty {
    /// What decides it is in the evidence, and nothing missing could change it.
    Certain,
    /// A part the evidence lacks could change it; `settle` says how to collect that part.
    Likely,
}

/// The nftables rule a finding rests on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInfo {
    /// `iptables-legacy` or `ip6tables-legacy` for a rule of the legacy tables (then `handle`
    /// is its number in the chain and `text` its saved form); absent for nftables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    pub family: String,
    pub table: String,
    pub chain: String,
    pub handle: u64,
    pub text: String,
    /// For a rule of an iptables table whose save listing was read: its number in the chain
    /// and the rule as `iptables-save` prints it, how iptables names and changes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved: Option<String>,
}

impl RuleInfo {
    pub fn of(r: &RuleRef) -> Self {
        RuleInfo {
            backend: (r.backend == Backend::IptablesLegacy)
                .then(|| r.backend.command(r.family).to_string()),
            family: r.family.to_string(),
            table: r.table.clone(),
            chain: r.chain.clone(),
            handle: r.handle,
            text: r.text.clone(),
            position: r.saved.as_ref().map(|_| r.position),
            saved: r.saved.clone(),
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
    /// Away from the node: how sure this is (absent on the node, where nothing is missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certainty: Option<Certainty>,
    /// When it is only likely: the commands on the node whose output would settle it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settle: Vec<String>,
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
            certainty: None,
            settle: Vec::new(),
        }
    }

    /// Marks it as only likely, settled by `settle` (kept in order, without repeats).
    pub(crate) fn likely(&mut self, settle: impl IntoIterator<Item = String>) {
        self.certainty = Some(Certainty::Likely);
        for s in settle {
            if !self.settle.contains(&s) {
                self.settle.push(s);
            }
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
    /// The node's facts; away from the node, with stand-ins where they are unknown (see
    /// [`Inputs::guesses`]).
    pub facts: Cow<'a, NodeFacts>,
    pub cluster: Option<&'a ClusterConfig>,
    pub permanent: Option<&'a Permanent>,
    pub runtime: Option<&'a Runtime>,
    pub ruleset: Option<&'a Ruleset>,
    pub iptables: &'a IptablesState,
    /// Whether firewalld's runtime state is known (running or not); when it is not, whether
    /// it runs is read from the ruleset (its table is there while it runs).
    pub runtime_known: bool,
    /// The command that manages the ruleset's iptables tables, when not `iptables-nft`.
    pub iptables_cmd: Option<&'a str>,
    /// Away from the node: what the inputs lack, and the stand-ins used for it. `None` on the
    /// node.
    pub guesses: Option<Guesses>,
}

impl<'a> Inputs<'a> {
    /// What diagnose needs, from a view of the node.
    pub fn new(catalog: &'a Catalog, roles: &'a [Role], view: &'a NodeView) -> Self {
        let mut inp = Inputs {
            catalog,
            roles,
            facts: Cow::Borrowed(&view.facts),
            cluster: view.cluster.as_ref(),
            permanent: view.permanent.as_ref(),
            runtime: view.runtime.as_ref(),
            ruleset: view.ruleset.as_ref(),
            iptables: &view.iptables,
            runtime_known: view.runtime_known,
            iptables_cmd: view.iptables_cmd.as_deref(),
            guesses: None,
        };
        if view.offline {
            let (facts, guesses) = guesses::stand_ins(&inp, view);
            inp.facts = Cow::Owned(facts);
            inp.guesses = Some(guesses);
        }
        inp
    }

    /// Whether this group of facts is known (always, on the node).
    pub fn knows(&self, fact: Fact) -> bool {
        self.guesses
            .as_ref()
            .is_none_or(|g| !g.unknown.contains(&fact))
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
        let f: &NodeFacts = &self.facts;
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
        let f: &NodeFacts = &self.facts;
        f.addrs
            .iter()
            .filter(|a| a.addr.is_ipv4() && !a.addr.is_loopback())
            .filter(|a| !f.vxlans.iter().any(|v| v.name == a.iface))
            .filter(|a| !self.in_cluster_cidrs(a.addr))
            .collect()
    }
}

/// What diagnose found.
#[derive(Clone, Debug, Default)]
pub struct Diagnosis {
    pub findings: Vec<Finding>,
    pub flows: Vec<FlowCheck>,
    /// What could not be checked for want of evidence, and what would settle it.
    pub unknowns: Vec<Unknown>,
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

impl Diagnosis {
    /// Records what could not be checked (once per subject).
    pub(crate) fn unknown(
        &mut self,
        what: impl Into<String>,
        why: impl Into<String>,
        settle: Vec<String>,
    ) {
        let what = what.into();
        if !self.unknowns.iter().any(|u| u.what == what) {
            self.unknowns.push(Unknown {
                what,
                why: why.into(),
                settle,
            });
        }
    }
}

pub fn diagnose(inp: &Inputs) -> Diagnosis {
    let mut d = Diagnosis::default();
    flows::check(inp, &mut d);
    settings::check(inp, &mut d);
    hints::check(inp, &mut d);
    if let Some(g) = &inp.guesses {
        d.unknowns.splice(0..0, g.unknowns.iter().cloned());
        // Away from the node every finding says how sure it is.
        for f in &mut d.findings {
            f.certainty.get_or_insert(Certainty::Certain);
        }
    }
    d.findings
        .sort_by(|a, b| a.severity.cmp(&b.severity).then(a.id.cmp(&b.id)));
    d.findings.dedup_by(|a, b| a.id == b.id);
    d
}
