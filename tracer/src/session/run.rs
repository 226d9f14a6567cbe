//! The session's one loop: intervals ticked from the start, sampled drop events drained as
//! they arrive (left alone they would fill the ring buffer and show up as lost events), and an
//! end on Ctrl-C, SIGTERM or the deadline. Each interval reads the counters and the drops,
//! diagnoses the node when due, traces the causes of the dropped flows, and is handed to the
//! caller; the end comes after one last interval. A caller with input of its own (the keys of
//! the terminal view) hands the loop a channel: each input wakes the caller in the same loop,
//! between intervals, and may end the run.

use std::{
    convert::Infallible,
    time::{Duration, Instant},
};

use tokio::{
    signal::unix::{SignalKind, signal},
    sync::mpsc::UnboundedReceiver,
};

use super::{Causes, Session, SessionError, capture::DropsView, changes::FirewallChanges};
use crate::{
    events::{PeerBalance, Sample, Snapshot, peers::balances},
    findings::{Finding, correlate::Refresh},
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
    /// The caller's input asked to stop (`q` in the terminal view).
    Quit,
}

/// What woke the caller of [`Session::run_with`].
#[derive(Debug)]
pub enum Wake<'a, 'b, T> {
    Interval(&'a Interval<'b>),
    /// Something arrived on the caller's input channel.
    Input(T),
}

/// Whether the run goes on after the caller was woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Go,
    /// End the run (after one last interval, with [`Stop::Quit`]).
    Quit,
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
    /// Findings of the previous diagnosis the latest one no longer makes (fixed).
    pub resolved: &'a [Finding],
    /// The findings of the latest diagnosis (none without diagnosis).
    pub diagnosis: &'a [Finding],
    /// Interfaces attached or released since the previous interval (`--iface` globs and
    /// names follow interfaces as they come and go).
    pub ifaces: &'a [super::IfaceChange],
    /// What went to each overlay or BGP peer and came back, since the start and in this
    /// interval.
    pub peers: &'a [PeerBalance],
    /// The interfaces watched now: name, index and ingress hook.
    pub watched: &'a [(String, u32, &'static str)],
    /// The watched veths whose pod is known (from libcni's result cache).
    pub pods: &'a [(String, crate::model::cni::PodRef)],
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
        self.run_with(
            every,
            until,
            None::<&mut UnboundedReceiver<Infallible>>,
            |wake| match wake {
                Wake::Interval(i) => each(i).map(|()| Next::Go),
                Wake::Input(never) => match never {},
            },
        )
        .await
    }

    /// [`Session::run`], also waking `each` with whatever arrives on `input`; [`Next::Quit`]
    /// ends the run after one last interval. A closed input is no longer waited for.
    pub async fn run_with<T, E: From<SessionError>>(
        &mut self,
        every: Option<Duration>,
        until: Option<Instant>,
        mut input: Option<&mut UnboundedReceiver<T>>,
        mut each: impl FnMut(Wake<'_, '_, T>) -> Result<Next, E>,
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
                ready = events_ready(&mut self.capture) => {
                    ready.map_err(SessionError::from)?;
                    self.drain()?;
                    continue;
                }
                ready = links_ready(&mut self.links) => {
                    ready.map_err(SessionError::Links)?;
                    self.follow_links()?;
                    continue;
                }
                got = next_input(&mut input) => {
                    let Some(got) = got else {
                        input = None;
                        continue;
                    };
                    match each(Wake::Input(got))? {
                        Next::Go => continue,
                        Next::Quit => Some(Stop::Quit),
                    }
                }
            };
            // Interfaces announced just before the tick are attached before it is read.
            self.follow_links()?;
            self.name_pods();
            let snap = self.snapshot()?;
            let refresh = match self.correlator.as_mut() {
                Some((k, _)) => {
                    if self.changes.as_mut().is_some_and(FirewallChanges::take) {
                        k.invalidate();
                    }
                    k.refresh_if_due()
                }
                None => Refresh::default(),
            };
            if let Some(c) = self.capture.as_mut() {
                c.drain_events(&self.classes)?;
                view = c
                    .update(&mut self.datapath, &self.classes)
                    .map_err(SessionError::from)?;
                self.trace_causes(&mut view);
            }
            let samples = snap.since(&prev);
            let ifaces = std::mem::take(&mut self.iface_changes);
            let pods = self.pods();
            let peers = balances(snap.peers(), prev.peers());
            let watched: Vec<_> = self
                .iface_hooks()
                .map(|(t, hook)| (t.name.clone(), t.index, hook))
                .collect();
            let diagnosis = self
                .correlator
                .as_ref()
                .map_or(&[][..], |(k, _)| &k.findings);
            let next = each(Wake::Interval(&Interval {
                elapsed: start.elapsed(),
                snapshot: &snap,
                samples: &samples,
                drops: self.capture.as_ref().map(|_| &view),
                findings: &refresh.new,
                resolved: &refresh.resolved,
                diagnosis,
                ifaces: &ifaces,
                peers: &peers,
                watched: &watched,
                pods: &pods,
                stop,
            }))?;
            prev = snap;
            // The released interfaces were read and shown one last time: free their slots.
            self.datapath.reap().map_err(SessionError::from)?;
            // A caller that quits on an interval gets the last one it asked for.
            let stop = stop.or((next == Next::Quit).then_some(Stop::Quit));
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

/// Resolves when link notifications are waiting; never without `--iface`.
async fn links_ready(
    links: &mut Option<tokio::io::unix::AsyncFd<crate::sys::links::LinkEvents>>,
) -> std::io::Result<()> {
    match links.as_mut() {
        Some(fd) => {
            let mut guard = fd.readable_mut().await?;
            guard.clear_ready();
            Ok(())
        }
        None => std::future::pending().await,
    }
}

/// Resolves when sampled drop events are waiting; never without drop capture.
async fn events_ready(capture: &mut Option<super::capture::DropCapture>) -> std::io::Result<()> {
    match capture.as_mut() {
        Some(c) => c.events_ready().await,
        None => std::future::pending().await,
    }
}

/// The next input; never without one.
async fn next_input<T>(input: &mut Option<&mut UnboundedReceiver<T>>) -> Option<T> {
    match input {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
