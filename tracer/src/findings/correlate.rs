//! Correlation while traffic flows: the node's diagnosis, re-read every so often (a firewall
//! reload changes the answer), and the cause of each flow the firewall drops: its rule, zone,
//! element and fix. The watch session calls it every interval. A finding the diagnosis no
//! longer makes (the fix applied) is handed back as resolved, once, so outputs can say so
//! rather than let it vanish.

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
    /// Ids of the findings reported and not resolved since, so each is announced once.
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

    /// Re-reads the node and diagnoses it when due (every `every`, or sooner after
    /// [`Correlator::invalidate`]): the findings not reported before, and those of the previous
    /// diagnosis it no longer makes.
    pub fn refresh_if_due(&mut self) -> Refresh {
        let due =
            |t: Instant| t.elapsed() >= self.every || (self.stale && t.elapsed() >= CHANGED_GAP);
        if self.read_at.is_some_and(|t| !due(t)) {
            return Refresh::default();
        }
        self.read_at = Some(Instant::now());
        self.stale = false;
        let view = match NodeView::read(&self.root) {
            Ok(v) => v,
            Err(e) => {
                log::warn!("reading the node for diagnosis: {e}");
                return Refresh::default();
            }
        };
        for p in &view.problems {
            log::info!("diagnosis could not read: {p}");
        }
        self.roles = detect::roles(&view.facts.listening).0;
        let findings = diagnose(&Inputs::new(&self.catalog, &self.roles, &view)).findings;
        self.view = Some(view);
        let before = std::mem::replace(&mut self.findings, findings);
        changes(&before, &self.findings, &mut self.reported)
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

/// What a new diagnosis changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refresh {
    /// Findings not reported before (or again, after they were resolved).
    pub new: Vec<Finding>,
    /// Findings of the previous diagnosis this one no longer makes: the fix was applied.
    pub resolved: Vec<Finding>,
}

/// Compares two diagnoses; `reported` holds the ids announced and not resolved since.
fn changes(before: &[Finding], now: &[Finding], reported: &mut HashSet<String>) -> Refresh {
    let resolved: Vec<Finding> = before
        .iter()
        .filter(|f| !now.iter().any(|n| n.id == f.id))
        .cloned()
        .collect();
    for f in &resolved {
        reported.remove(&f.id);
    }
    let new = now
        .iter()
        .filter(|f| reported.insert(f.id.clone()))
        .cloned()
        .collect();
    Refresh { new, resolved }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::Severity;

    fn finding(id: &str) -> Finding {
        Finding::new(id, Severity::Error, format!("{id} is rejected"), "why")
    }

    #[test]
    fn a_finding_is_new_once_then_resolved_when_it_is_gone_and_new_again_if_it_returns() {
        let mut reported = HashSet::new();
        let (a, b) = (finding("a"), finding("b"));
        let first = changes(&[], &[a.clone(), b.clone()], &mut reported);
        assert_eq!(first.new, vec![a.clone(), b.clone()]);
        assert!(first.resolved.is_empty());
        let same = changes(
            &[a.clone(), b.clone()],
            &[a.clone(), b.clone()],
            &mut reported,
        );
        assert_eq!(same, Refresh::default());
        let fixed = changes(
            &[a.clone(), b.clone()],
            std::slice::from_ref(&b),
            &mut reported,
        );
        assert!(fixed.new.is_empty());
        assert_eq!(fixed.resolved, vec![a.clone()]);
        let back = changes(
            std::slice::from_ref(&b),
            &[a.clone(), b.clone()],
            &mut reported,
        );
        assert_eq!(back.new, vec![a]);
    }
}
