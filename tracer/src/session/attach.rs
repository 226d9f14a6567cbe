//! Starting a session: the privileges and kernel features it needs, the class table of the
//! chosen catalog, the interfaces to watch, the datapath loaded and attached with the drop
//! probe, and the kernel programs' log forwarded for as long as the session lasts.

use std::{path::PathBuf, time::Duration};

use super::{SessionError, capture::DropCapture, capture::DropSink, changes::FirewallChanges};
use crate::{
    events::{DropTotal, Snapshot},
    findings::correlate::Correlator,
    model::{
        catalog::{Catalog, class_table},
        ifaces,
    },
    probes::{AttachMode, ClassTable, Datapath, Target, drops::EventBudget, preflight},
};

/// The node's diagnosis while tracing (`tracer watch`).
#[derive(Clone, Debug)]
pub struct Diagnose {
    /// Where the node's files live (`/` except in tests).
    pub root: PathBuf,
    /// How often the node is read and diagnosed again.
    pub every: Duration,
    /// Which dropped flows get their cause traced: each costs a ruleset evaluation.
    pub causes: Causes,
}

/// The dropped flows whose cause a session traces, those its output shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Causes {
    /// The flows with the most drops ([`super::DropsView::top`]).
    Top,
    /// The flows whose count moved in the interval ([`super::DropsView::changed`]).
    Changed,
}

/// What to trace and how.
pub struct Config {
    pub catalog: Catalog,
    /// Why this profile (detected from..., or given with --profile).
    pub profile_reason: String,
    /// The interfaces to watch, names or globs (`veth*`); none: every interface that is up,
    /// except loopback. Interfaces that appear later and match are watched too.
    pub ifaces: Vec<String>,
    /// Interface slots the kernel tables get (`--max-ifaces`); default: room for the
    /// interfaces watched at the start, or [`GLOB_SLOTS`] with a glob.
    pub max_ifaces: Option<usize>,
    pub attach: AttachMode,
    /// Drop capture and how many sampled events it may take; `None`: no drop capture.
    pub drops: Option<EventBudget>,
    /// Where sampled dropped packets go (with drop capture).
    pub sink: Option<Box<dyn DropSink>>,
    pub diagnose: Option<Diagnose>,
    /// libcni's result cache, to name each watched veth by its pod (`--cni-cache`); `None`:
    /// pods are not named.
    pub cni_cache: Option<PathBuf>,
}

/// Interface slots with a glob in `--iface` and no `--max-ifaces`.
pub const GLOB_SLOTS: usize = 1024;

/// An attached datapath. Dropping it detaches everything.
pub struct Session {
    pub catalog: Catalog,
    pub profile_reason: String,
    pub(super) classes: ClassTable,
    /// Declared before the datapath: the ring buffer goes before the programs.
    pub(super) capture: Option<DropCapture>,
    pub(super) datapath: Datapath,
    /// The node's diagnosis, and whose causes it traces.
    pub(super) correlator: Option<(Correlator, Causes)>,
    /// Listens for firewall changes while diagnosing.
    pub(super) changes: Option<FirewallChanges>,
    /// What `--iface` asked for, matched against interfaces as they appear.
    pub(super) patterns: ifaces::Patterns,
    /// The namespace's link notifications, with `--iface`.
    pub(super) links: Option<tokio::io::unix::AsyncFd<crate::sys::links::LinkEvents>>,
    /// Interfaces attached or released since the last interval.
    pub(super) iface_changes: Vec<super::IfaceChange>,
    /// The watched veths' pods, with a CNI result cache to read them from.
    pub(super) pods: Option<super::pods::PodNames>,
}

/// Fails unless this process may load and attach the datapath: before anything else, so a
/// missing privilege is the one thing said.
pub fn preflight() -> Result<(), SessionError> {
    preflight::privileges()?;
    preflight::bpf_syscall()?;
    Ok(())
}

impl Session {
    /// Checks privileges, loads and attaches. Must run inside a tokio runtime (drop events and
    /// the programs' log are read asynchronously).
    pub fn start(config: Config) -> Result<Session, SessionError> {
        preflight()?;
        let Config {
            catalog,
            profile_reason,
            ifaces,
            max_ifaces,
            attach,
            drops,
            sink,
            diagnose,
            cni_cache,
        } = config;
        let classes = class_table(&catalog.components)?;
        let patterns = ifaces::Patterns::new(&ifaces);
        // Subscribed before listing: an interface that appears in between is not missed.
        let links = if patterns.is_empty() {
            None
        } else {
            Some(super::links::subscribe()?)
        };
        let targets = targets(&patterns)?;
        let capacity = max_ifaces.unwrap_or(if patterns.has_glob() {
            GLOB_SLOTS
        } else {
            // Room for a named interface that is deleted and created again while its old
            // slot still shows its last counters.
            targets.len() * 2
        });
        let drop_facts = drops.map(super::capture::kernel_facts).transpose()?;
        let mut datapath = Datapath::load(
            &classes,
            targets,
            capacity,
            drop_facts.as_ref().map(|(cfg, _)| *cfg),
        )?;
        let capture = match drop_facts {
            Some((_, reasons)) => Some(DropCapture::new(&mut datapath, reasons, sink)?),
            None => None,
        };
        datapath.attach(attach)?;
        if let Some(logger) = datapath.take_logger() {
            tokio::spawn(drain_bpf_log(logger));
        }
        let correlator =
            diagnose.map(|d| (Correlator::new(catalog.clone(), d.root, d.every), d.causes));
        let changes = correlator.as_ref().map(|_| FirewallChanges::start());
        Ok(Session {
            catalog,
            profile_reason,
            classes,
            capture,
            datapath,
            correlator,
            changes,
            patterns,
            links,
            iface_changes: Vec::new(),
            pods: None,
        })
        .map(|mut s| {
            if let Some(dir) = cni_cache {
                s.pods = Some(super::pods::PodNames::new(dir));
                s.name_watched();
            }
            s
        })
    }

    /// The pods of the veths watched from the start; those found are reported with the first
    /// interval, the others once the cache names them.
    fn name_watched(&mut self) {
        let links = crate::sys::links::dump().unwrap_or_else(|e| {
            log::warn!("listing the veths' peers (rtnetlink): {e}; pods are named as they appear");
            Vec::new()
        });
        let watched: Vec<(u32, String)> = self
            .iface_hooks()
            .map(|(t, _)| (t.index, t.name.clone()))
            .collect();
        for (index, name) in watched {
            let peer = links.iter().find(|l| l.index == index);
            if let Some(netns) = peer.and_then(|l| l.peer_netns) {
                self.peer_known(index, &name, netns);
            }
        }
    }

    /// Each watched interface with the hook its ingress program sits on (`none` when it has
    /// none); not those released since the last interval.
    pub fn iface_hooks(&self) -> impl Iterator<Item = (&Target, &'static str)> {
        self.datapath
            .targets()
            .iter()
            .zip(self.datapath.hooks())
            .enumerate()
            // A released interface is no longer watched, though its slot is not free yet.
            .filter(|(i, _)| !self.datapath.is_leaving(*i))
            .filter_map(|(_, (t, h))| Some((t.as_ref()?, h.map_or("none", |h| h.as_str()))))
    }

    /// Program name and kernel id, for bpftool.
    pub fn program_ids(&self) -> Vec<(&'static str, u32)> {
        self.datapath.program_ids()
    }

    /// The counters now.
    pub fn snapshot(&self) -> Result<Snapshot, SessionError> {
        Ok(Snapshot::capture(&self.datapath, &self.classes)?)
    }

    /// The exact drop totals now; `None` without drop capture.
    pub fn drop_totals(&mut self) -> Result<Option<Vec<DropTotal>>, SessionError> {
        match self.capture.as_mut() {
            Some(c) => Ok(Some(c.update(&mut self.datapath, &self.classes)?.totals)),
            None => Ok(None),
        }
    }
}

/// The interfaces to attach to at the start: every one `patterns` names or matches, or
/// without patterns every interface that is up but loopback. A name must exist; a glob may
/// match nothing yet.
fn targets(patterns: &ifaces::Patterns) -> Result<Vec<Target>, SessionError> {
    let all = ifaces::list().map_err(SessionError::Interfaces)?;
    let known = || {
        all.iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen: Vec<&ifaces::Interface> = if patterns.is_empty() {
        let up: Vec<_> = all.iter().filter(|i| i.up && !i.loopback).collect();
        if up.is_empty() {
            return Err(SessionError::NoInterfaceUp { known: known() });
        }
        up
    } else {
        // The names in the order given, then what the globs match.
        let mut chosen = Vec::new();
        for name in patterns.names() {
            let Some(found) = all.iter().find(|i| i.name == name) else {
                return Err(SessionError::NoSuchInterface {
                    name: name.to_string(),
                    known: known(),
                });
            };
            if !found.up {
                log::warn!("{name} is down; it is watched and counts once it comes up");
            }
            if !chosen.contains(&found) {
                chosen.push(found);
            }
        }
        for i in all.iter().filter(|i| patterns.matches(&i.name)) {
            if !chosen.contains(&i) {
                chosen.push(i);
            }
        }
        chosen
    };
    Ok(chosen
        .into_iter()
        .map(|i| Target {
            name: i.name.clone(),
            index: i.index,
            has_l2: i.has_l2(),
            is_virtual: i.is_virtual,
        })
        .collect())
}

/// Forwards the kernel programs' aya-log messages to the log for as long as the run lasts.
async fn drain_bpf_log(logger: aya_log::EbpfLogger<&'static dyn log::Log>) {
    let registered = crate::sys::readiness::readable(logger);
    let Ok(mut fd) = registered else {
        return;
    };
    while let Ok(mut guard) = fd.readable_mut().await {
        guard.get_inner_mut().flush();
        guard.clear_ready();
    }
}
