//! The session's one loop: intervals ticked from the start, sampled drop events drained as
//! they arrive (left alone they would fill the ring buffer and show up as lost events), and an
//! end on Ctrl-C, SIGTERM or the deadline. Each interval reads the counters and the drops,
//! diagnoses the node when due, traces the causes of the dropped flows, and is handed to the
//! caller; the end comes after one last interval.

use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};

use super::{Causes, Session, SessionError, capture::DropsView, changes::FirewallChanges};
use crate::{
    events::{Sample, Snapshot},
    findings::Finding,
};

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The deadline passed.
    Deadline,
    /// Ctrl-C (SIGINT).
    Interrupted,
    /// SIGTERM.
    Terminated,
}

/// One interval of a session.
#[derive(Clone, Debug)]
pub struct Interval<'a> {
    /// Since the loop started.
    pub elapsed: Duration,
    /// Every counter, cumulative.
    pub snapshot: &'a Snapshot,
    /// Totals and rates since the previous interval.
    pub samples: &'a [Sample],
    /// `None` when drop capture is off.
    pub drops: Option<&'a DropsView>,
    /// Findings of the node's diagnosis that appeared in this interval.
    pub findings: &'a [Finding],
    /// The findings of the latest diagnosis (none without diagnosis).
    pub diagnosis: &'a [Finding],
    /// `Some` on the last interval.
    pub stop: Option<Stop>,
}

/// How a session ended, with what it read last.
#[derive(Debug)]
pub struct End {
    pub stop: Stop,
    pub elapsed: Duration,
    /// The counters of the last interval.
    pub last: Snapshot,
    /// The drops of the last interval; `None` without drop capture.
    pub drops: Option<DropsView>,
}

impl Session {
    /// Runs until Ctrl-C, SIGTERM or `until`, calling `each` every `every` (and once at the
    /// end; only then without `every`). An error from `each` ends the loop and is returned.
    pub async fn run<E: From<SessionError>>(
        &mut self,
        every: Option<Duration>,
        until: Option<Instant>,
        mut each: impl FnMut(&Interval) -> Result<(), E>,
    ) -> Result<End, E> {
        let start = Instant::now();
        let mut sigint = signal(SignalKind::interrupt()).map_err(SessionError::from)?;
        let mut sigterm = signal(SignalKind::terminate()).map_err(SessionError::from)?;
        let mut ticker = every.map(|d| tokio::time::interval_at((start + d).into(), d));
        let mut prev = Snapshot::empty(start);
        let mut view = DropsView::default();
        loop {
            let stop = tokio::select! {
                () = tick(&mut ticker) => None,
                _ = sigint.recv() => Some(Stop::Interrupted),
                _ = sigterm.recv() => Some(Stop::Terminated),
                () = sleep_until(until) => Some(Stop::Deadline),
                ready = events_ready(self) => {
                    ready.map_err(SessionError::from)?;
                    self.drain()?;
                    continue;
                }
            };
            let snap = self.snapshot()?;
            let findings = match self.correlator.as_mut() {
                Some((k, _)) => {
                    if self.changes.as_ref().is_some_and(FirewallChanges::take) {
                        k.invalidate();
                    }
                    k.refresh_if_due()
                }
                None => Vec::new(),
            };
            if let Some(c) = self.capture.as_mut() {
                c.drain_events(&self.classes)?;
                view = c
                    .update(&self.datapath, &self.classes)
                    .map_err(SessionError::from)?;
                self.trace_causes(&mut view);
            }
            let samples = snap.since(&prev);
            let diagnosis = self
                .correlator
                .as_ref()
                .map_or(&[][..], |(k, _)| &k.findings);
            each(&Interval {
                elapsed: start.elapsed(),
                snapshot: &snap,
                samples: &samples,
                drops: self.capture.as_ref().map(|_| &view),
                findings: &findings,
                diagnosis,
                stop,
            })?;
            prev = snap;
            if let Some(stop) = stop {
                if let Some(c) = self.capture.as_mut() {
                    c.finish()?;
                }
                return Ok(End {
                    stop,
                    elapsed: start.elapsed(),
                    last: prev,
                    drops: self.capture.as_ref().map(|_| view),
                });
            }
        }
    }

    fn drain(&mut self) -> Result<(), SessionError> {
        match self.capture.as_mut() {
            Some(c) => c.drain_events(&self.classes),
            None => Ok(()),
        }
    }

    /// Each cause costs a ruleset evaluation: only those of the flows shown. The table names
    /// the causes of the top flows, the JSON lines those that changed.
    fn trace_causes(&self, view: &mut DropsView) {
        match &self.correlator {
            Some((k, Causes::Top)) => {
                view.top_causes = view.top.iter().map(|f| k.cause(f)).collect();
            }
            Some((k, Causes::Changed)) => {
                view.changed_causes = view.changed.iter().map(|f| k.cause(f)).collect();
            }
            None => {}
        }
    }
}

/// Resolves at the next tick; never without a ticker.
async fn tick(ticker: &mut Option<tokio::time::Interval>) {
    match ticker {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Resolves when sampled drop events are waiting; never without drop capture.
async fn events_ready(session: &mut Session) -> std::io::Result<()> {
    match session.capture.as_mut() {
        Some(c) => c.events_ready().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
