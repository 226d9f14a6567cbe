//! Drop capture during a session: the probe's kernel facts, the ring buffer of sampled drops
//! (handed to a [`DropSink`], the pcapng file, as they are drained), the exact totals and
//! flows, and what changed in each interval ([`DropsView`]).

use std::{
    cell::RefCell,
    collections::HashMap,
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use aya::maps::{MapData, RingBuf};
use tracer_common::drops::{DROP_FLOWS, DropConfig, FlowKey};

use super::SessionError;
use crate::{
    events::{
        DropFlow, DropSample, DropTotal, DropTracker, PeerDrop, Reasons,
        drops::{Names, decode},
    },
    findings::drops::DropCause,
    model::ifaces,
    probes::{
        ClassTable, Datapath, DropStats, ProbeError,
        btf::{Btf, VMLINUX},
        drops::{EventBudget, ReasonNames, current_netns, kernel_facts as probe_facts},
        preflight,
        symbols::KernelSymbols,
    },
};

/// Flows listed under the drop totals in text output.
const TOP_FLOWS: usize = 5;

/// Where sampled dropped packets go as they are drained: the pcapng file of `--pcap`.
pub trait DropSink {
    /// One sampled packet; `wall_ns` is when the kernel dropped it, in nanoseconds since the
    /// Unix epoch.
    fn packet(&mut self, sample: &DropSample, wall_ns: u64) -> std::io::Result<()>;
    /// Called once at the end of the session.
    fn flush(&mut self) -> std::io::Result<()>;
}

/// The drops of a session so far, as of the last interval.
#[derive(Clone, Debug, Default)]
pub struct DropsView {
    /// Flows whose count moved in the last interval (cumulative counts).
    pub changed: Vec<DropFlow>,
    /// The probe's statistics, when they moved in the last interval.
    pub stats_changed: Option<DropStats>,
    pub totals: Vec<DropTotal>,
    /// Drops of node-to-node classes (overlays, BGP) per peer, class and reason.
    pub peers: Vec<PeerDrop>,
    /// The flows with the most network drops (socket housekeeping left out), most first.
    pub top: Vec<DropFlow>,
    pub stats: DropStats,
    /// Why the firewall dropped each flow of `changed`, where it was the firewall (same order).
    /// Filled only when the session traces the causes of changed flows.
    pub changed_causes: Vec<Option<DropCause>>,
    /// The same for `top`; filled only when it traces the causes of the top flows.
    pub top_causes: Vec<Option<DropCause>>,
}

/// Reads what the drop probe needs from the kernel's BTF.
pub(super) fn kernel_facts(budget: EventBudget) -> Result<(DropConfig, ReasonNames), SessionError> {
    preflight::btf().map_err(SessionError::DropsNeedBtf)?;
    let btf = Btf::from_file(Path::new(VMLINUX))?;
    let netns = current_netns().map_err(SessionError::Netns)?;
    Ok(probe_facts(&btf, netns, budget)?)
}

/// Interface names by index: the watched ones, then whatever the namespace has now.
struct IfaceNames {
    known: RefCell<HashMap<u32, String>>,
}

impl IfaceNames {
    fn new(datapath: &Datapath) -> Self {
        let known = datapath
            .targets()
            .iter()
            .flatten()
            .map(|t| (t.index, t.name.clone()))
            .collect();
        IfaceNames {
            known: RefCell::new(known),
        }
    }

    fn name(&self, index: u32) -> String {
        if index == 0 {
            return "-".into();
        }
        if let Some(n) = self.known.borrow().get(&index) {
            return n.clone();
        }
        // A drop on an interface that is not watched (or appeared later): look it up once.
        let found = ifaces::list()
            .ok()
            .and_then(|l| l.into_iter().find(|i| i.index == index))
            .map(|i| i.name);
        let name = found.unwrap_or_else(|| format!("if{index}"));
        self.known.borrow_mut().insert(index, name.clone());
        name
    }
}

/// Everything about drops during one session.
pub(super) struct DropCapture {
    ring: Option<tokio::io::unix::AsyncFd<RingBuf<MapData>>>,
    reasons: Reasons,
    ifaces: IfaceNames,
    symbols: Option<KernelSymbols>,
    tracker: DropTracker,
    sink: Option<Box<dyn DropSink>>,
    /// Wall clock minus CLOCK_MONOTONIC, to stamp sampled packets.
    epoch_offset_ns: i128,
    /// The kernel can take entries out of the flow table with their last count (5.14+).
    can_take: bool,
}

impl DropCapture {
    pub(super) fn new(
        datapath: &mut Datapath,
        reasons: ReasonNames,
        sink: Option<Box<dyn DropSink>>,
    ) -> Result<Self, SessionError> {
        let ring = match datapath.take_drop_events() {
            Some(r) => Some(crate::sys::readiness::readable(r).map_err(SessionError::RingBuffer)?),
            None => None,
        };
        Ok(DropCapture {
            ring,
            reasons: Reasons::new(reasons),
            ifaces: IfaceNames::new(datapath),
            symbols: KernelSymbols::load(),
            tracker: DropTracker::default(),
            sink,
            epoch_offset_ns: epoch_offset_ns(),
            can_take: true,
        })
    }

    /// Resolves when sampled drop events are waiting; never without a ring buffer.
    pub(super) async fn events_ready(&mut self) -> std::io::Result<()> {
        match self.ring.as_mut() {
            Some(ring) => {
                let mut guard = ring.readable_mut().await?;
                guard.clear_ready();
                Ok(())
            }
            None => std::future::pending().await,
        }
    }

    /// Drains the sampled events that are ready: remembered per flow, handed to the sink.
    pub(super) fn drain_events(&mut self, classes: &ClassTable) -> Result<(), SessionError> {
        let Some(ring) = self.ring.as_mut() else {
            return Ok(());
        };
        let iface = |i: u32| self.ifaces.name(i);
        let names = Names {
            classes,
            reasons: &self.reasons,
            iface: &iface,
            symbols: self.symbols.as_ref(),
        };
        let ring = ring.get_mut();
        while let Some(record) = ring.next() {
            let Some(sample) = decode(&record, &names) else {
                continue;
            };
            self.tracker.note_sample(&sample);
            if let Some(sink) = self.sink.as_mut() {
                let wall = (i128::from(sample.monotonic_ns) + self.epoch_offset_ns).max(0) as u64;
                sink.packet(&sample, wall).map_err(SessionError::Sink)?;
            }
        }
        Ok(())
    }

    /// Reads the exact counters and flows, and says what changed.
    pub(super) fn update(
        &mut self,
        datapath: &mut Datapath,
        classes: &ClassTable,
    ) -> Result<DropsView, ProbeError> {
        let counters = datapath.drop_counters()?;
        // First what is taken out of the kernel's maps, with final counts; then what stays
        // there, read after: together, every drop of a flow once.
        let mut taken = datapath.tend_drop_flow_cache();
        if !taken.is_empty() {
            log::debug!(
                "took {} entries of quiet flows back from the drop probe's flow cache",
                taken.len()
            );
        }
        let table = datapath.drop_flows()?;
        let mut flows: HashMap<FlowKey, u64> = datapath.cached_drop_flows().into_iter().collect();
        for (key, n) in &table {
            *flows.entry(*key).or_default() += n;
        }
        taken.extend(self.take_quiet(datapath, &table, &mut flows)?);
        let flows: Vec<(FlowKey, u64)> = flows.into_iter().collect();
        let stats = datapath.drop_stats()?;
        let iface = |i: u32| self.ifaces.name(i);
        let names = Names {
            classes,
            reasons: &self.reasons,
            iface: &iface,
            symbols: self.symbols.as_ref(),
        };
        let changes = self
            .tracker
            .update(&counters, &flows, &taken, stats, &names);
        Ok(DropsView {
            changed: changes.flows,
            stats_changed: changes.stats,
            totals: self.tracker.totals(&names),
            // This node's addresses tell a dropped packet's peer from this node's own end.
            peers: self
                .tracker
                .peer_totals(&names, &crate::sys::ifaddrs::ips()),
            top: self.tracker.top_flows(TOP_FLOWS, &names),
            stats: self.tracker.stats(),
            // Filled by the session's correlation, which knows the node's firewall.
            changed_causes: Vec::new(),
            top_causes: Vec::new(),
        })
    }

    /// When the kernel's flow table is more than half full, takes the flows that have not
    /// moved since the last read out of it, with their last counts, so that new flows find
    /// room: the table never evicts a flow itself. `table` is the table as just read, `flows`
    /// every flow's count in the kernel (table and cache); a taken flow's table count leaves
    /// `flows`, and so does the flow when nothing of it is left there.
    fn take_quiet(
        &mut self,
        datapath: &Datapath,
        table: &[(FlowKey, u64)],
        flows: &mut HashMap<FlowKey, u64>,
    ) -> Result<Vec<(FlowKey, u64)>, ProbeError> {
        if !self.can_take || table.len() <= DROP_FLOWS as usize / 2 {
            return Ok(Vec::new());
        }
        // The table's flows, each with its whole count in the kernel: quiet when that has not
        // moved.
        let held: Vec<(FlowKey, u64)> = table
            .iter()
            .map(|(k, _)| (*k, flows.get(k).copied().unwrap_or(0)))
            .collect();
        let quiet = self.tracker.quiet(&held);
        let Some(taken) = datapath.take_drop_flows(&quiet)? else {
            log::info!(
                "this kernel cannot take entries out of the drop probe's flow table (5.14+): once it is full, drops of new flows are counted without their flow"
            );
            self.can_take = false;
            return Ok(Vec::new());
        };
        let in_table: HashMap<FlowKey, u64> = table.iter().copied().collect();
        for (key, _) in &taken {
            if let Some(n) = flows.get_mut(key) {
                *n -= in_table.get(key).copied().unwrap_or(0);
                if *n == 0 {
                    flows.remove(key);
                }
            }
        }
        Ok(taken)
    }

    pub(super) fn finish(&mut self) -> Result<(), SessionError> {
        if let Some(sink) = self.sink.as_mut() {
            sink.flush().map_err(SessionError::Sink)?;
        }
        Ok(())
    }
}

fn epoch_offset_ns() -> i128 {
    let mono = crate::sys::clock::monotonic_ns();
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    wall - mono
}
