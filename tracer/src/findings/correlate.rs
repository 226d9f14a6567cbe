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

/// The shortest time between two reads of the node that a firewall change triggers.
pub const CHANGED_GAP: Duration = Duration::from_millis(500);

pub struct Correlator {
    catalog: Catalog,
    /// Where the node's files live (`/` but in tests).
    root: PathBuf,
    roles: Vec<Role>,
    view: Option<NodeView>,
    read_at: Option<Instant>,
    every: Duration,
    /// The firewall changed since the last read.
    stale: bool,
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
            stale: false,
            reported: HashSet::new(),
            findings: Vec::new(),
        }
    }

    /// Re-reads the node and diagnoses it when due; returns the findings not reported before.
    pub fn refresh_if_due(&mut self) -> Vec<Finding> {
        let due = |t: Instant| {
            t.elapsed() >= self.every || (self.stale && t.elapsed() >= CHANGED_GAP)
        };
        if self.read_at.is_some_and(|t| !due(t)) {
            return Vec::new();
        }
        self.read_at = Some(Instant::now());
        self.stale = false;
        let view = match NodeView::read(&self.root, None) {
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

    /// The firewall changed: the next refresh reads the node again, unless the last read was
    /// less than [`CHANGED_GAP`] ago (a busy kube-proxy rewrites its rules many times a
    /// second; the read after the gap sees the last of them).
    pub fn invalidate(&mut self) {
        self.stale = true;
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
