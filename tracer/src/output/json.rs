//! Watch output for scripts: one JSON object per line, each a [`WatchLine`] of the schema. A
//! `counters` line is printed for every counter that moved during an interval, a `drop` line
//! for every dropped flow whose count moved (both with cumulative values), a `drop_stats` line
//! when events were lost or held back, a `finding` line for each new finding, a
//! `finding_resolved` line when a later diagnosis no longer finds it, an `iface` line when a
//! watched interface comes or goes, a `peer` line for every overlay or BGP peer whose traffic
//! moved, and a final `summary` line holds every counter and drop total. Every line carries
//! its time and the node's name ([`Stamped`]).

use std::{io::Write, time::SystemTime};

use super::{
    WatchHeader, WatchOutput, WatchSummary,
    schema::{Counters, DropLine, DropStats, Interface, Stamped, Start, Summary, WatchLine},
};
use crate::{events::baseline::rfc3339_millis, session::Interval};

pub struct Json<W: Write> {
    out: W,
    /// The node's name, on every line.
    node: String,
}

impl<W: Write> Json<W> {
    pub fn new(out: W, node: String) -> Self {
        Json { out, node }
    }

    fn line(&mut self, line: &WatchLine) -> std::io::Result<()> {
        let stamped = Stamped {
            ts: rfc3339_millis(SystemTime::now()),
            node: self.node.clone(),
            line: line.clone(),
        };
        serde_json::to_writer(&mut self.out, &stamped)?;
        self.out.write_all(b"\n")
    }
}

fn interfaces(h: &WatchHeader) -> Vec<Interface> {
    h.ifaces
        .iter()
        .map(|(iface, ifindex, hook)| Interface {
            iface: iface.clone(),
            ifindex: *ifindex,
            hook: hook.clone(),
        })
        .collect()
}

impl<W: Write> WatchOutput for Json<W> {
    fn header(&mut self, h: &WatchHeader) -> std::io::Result<()> {
        self.line(&WatchLine::Start(Start {
            profile: h.profile.clone(),
            profile_reason: h.profile_reason.clone(),
            interval_secs: h.interval.as_secs_f64(),
            interfaces: interfaces(h),
            programs: h
                .programs
                .iter()
                .map(|(name, id)| (name.to_string(), *id))
                .collect(),
            metrics: h.metrics.map(|a| a.to_string()),
        }))?;
        self.out.flush()
    }

    fn interval(&mut self, interval: &Interval) -> std::io::Result<()> {
        for s in interval.samples.iter().filter(|s| s.new_packets > 0) {
            self.line(&WatchLine::Counters(Counters::from(&s.entry)))?;
        }
        if let Some(d) = interval.drops {
            for (i, f) in d.changed.iter().enumerate() {
                let cause = d.changed_causes.get(i).and_then(Option::as_ref);
                self.line(&WatchLine::Drop(DropLine::new(f, cause)))?;
            }
            if let Some(stats) = d.stats_changed {
                self.line(&WatchLine::DropStats(stats.into()))?;
            }
        }
        for f in interval.findings {
            self.line(&WatchLine::Finding(f.clone()))?;
        }
        for f in interval.resolved {
            self.line(&WatchLine::FindingResolved(f.clone()))?;
        }
        for c in interval.ifaces {
            self.line(&WatchLine::Iface(c.clone()))?;
        }
        for p in interval.peers.iter().filter(|p| p.new_out + p.new_in > 0) {
            self.line(&WatchLine::Peer(p.clone()))?;
        }
        self.out.flush()
    }

    fn summary(&mut self, s: &WatchSummary) -> std::io::Result<()> {
        self.line(&WatchLine::Summary(Summary {
            profile: s.header.profile.clone(),
            duration_secs: s.duration.as_secs_f64(),
            interfaces: interfaces(s.header),
            counters: s.entries.iter().map(|e| Counters::from(*e)).collect(),
            drops: s.drops.map(|d| d.totals.clone()),
            drop_stats: s.drops.map(|d| DropStats::from(d.stats)),
            peers: s.peers.clone(),
        }))?;
        self.out.flush()
    }
}
