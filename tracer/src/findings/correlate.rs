//! Correlation while traffic flows: the node's diagnosis, re-read every so often (a firewall
//! reload changes the answer), and the cause of each flow the firewall drops: its rule, zone,
//! element and fix. The watch session calls it every interval.

use std::{
    collections::HashSet,
    net::IpAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use super::{
    Finding, Inputs, diagnose,
    drops::{DropCause, DroppedFlow, explain},
};
use crate::{
    events::DropFlow,
    model::{
        catalog::{Catalog, Role},
        detect,
        view::NodeView,
    },
};

pub struct Correlator {
    catalog: Catalog,
    /// Where the node's files live (`/` but in tests).
    root: PathBuf,
    roles: Vec<Role>,
    view: Option<NodeView>,
    read_at: Option<Instant>,
    every: Duration,
    /// Finding ids already reported, so each is announced once.
    reported: HashSet<String>,
    /// The findings of the latest diagnosis.
    pub findings: Vec<Finding>,
}

impl Correlator {
    pub fn new(catalog: Catalog, root: PathBuf, every: Duration) -> Self {
        Correlator {
            catalog,
            root,
            roles: Vec::new(),
            view: None,
            read_at: None,
            every,
            reported: HashSet::new(),
            findings: Vec::new(),
        }
    }

    /// Re-reads the node and diagnoses it when due; returns the findings not reported before.
    pub fn refresh_if_due(&mut self) -> Vec<Finding> {
        if self.read_at.is_some_and(|t| t.elapsed() < self.every) {
            return Vec::new();
        }
        self.read_at = Some(Instant::now());
        let view = match NodeView::read(&self.root) {
            Ok(v) => v,
            Err(e) => {
                log::warn!("reading the node for diagnosis: {e}");
                return Vec::new();
            }
        };
        for p in &view.problems {
            log::info!("diagnosis could not read: {p}");
        }
        self.roles = detect::roles(&view.facts.listening).0;
        self.findings = diagnose(&Inputs::new(&self.catalog, &self.roles, &view)).findings;
        self.view = Some(view);
        self.findings
            .iter()
            .filter(|f| self.reported.insert(f.id.clone()))
            .cloned()
            .collect()
    }

    /// Why the firewall dropped this flow, when it was the firewall.
    pub fn cause(&self, flow: &DropFlow) -> Option<DropCause> {
        let view = self.view.as_ref()?;
        if !flow.reason.is_firewall() {
            return None;
        }
        let (Some(saddr), Some(daddr)) = (flow.flow.src, flow.flow.dst) else {
            return None;
        };
        let dropped = DroppedFlow {
            iface: &flow.iface,
            class: &flow.class,
            proto: flow.flow.proto,
            saddr: saddr as IpAddr,
            daddr,
            sport: flow.flow.sport,
            dport: flow.flow.dport,
        };
        explain(&Inputs::new(&self.catalog, &self.roles, view), &dropped)
    }
}
