//! Drop capture during a watch run: the probe's kernel facts, the ring buffer of sampled
//! drops, the exact totals and flows, and the optional pcapng file of dropped packets.

use std::{
    cell::RefCell,
    collections::HashMap,
    fs::File,
    io::BufWriter,
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result};
use aya::maps::{MapData, RingBuf};
use tracer_common::drops::DropConfig;

use crate::{
    events::{
        DropTracker, Reasons,
        drops::{Names, decode},
    },
    model::ifaces,
    output::{DropsView, pcap::PcapWriter},
    probes::{
        ClassTable, Datapath, ProbeError,
        btf::{Btf, VMLINUX},
        drops::{EventBudget, ReasonNames, current_netns, kernel_facts},
        preflight,
        symbols::KernelSymbols,
    },
};

/// Flows listed under the drop totals in text output.
const TOP_FLOWS: usize = 5;

/// Reads what the drop probe needs from the kernel's BTF.
pub fn config(budget: EventBudget) -> Result<(DropConfig, ReasonNames)> {
    preflight::btf()
        .context("drop capture needs BTF; run with --no-drops to count traffic only")?;
    let btf = Btf::from_file(Path::new(VMLINUX))?;
    let netns = current_netns().context("reading this process's network namespace")?;
    Ok(kernel_facts(&btf, netns, budget)?)
}

/// Interface names by index: the watched ones, then whatever the namespace has now.
pub struct IfaceNames {
    known: RefCell<HashMap<u32, String>>,
}

impl IfaceNames {
    pub fn new(datapath: &Datapath) -> Self {
        let known = datapath
            .targets()
            .iter()
            .map(|t| (t.index, t.name.clone()))
            .collect();
        IfaceNames {
            known: RefCell::new(known),
        }
    }

    pub fn name(&self, index: u32) -> String {
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

/// Everything about drops during one run.
pub struct DropCapture {
    pub ring: Option<tokio::io::unix::AsyncFd<RingBuf<MapData>>>,
    reasons: Reasons,
    ifaces: IfaceNames,
    symbols: Option<KernelSymbols>,
    tracker: DropTracker,
    pcap: Option<PcapWriter<BufWriter<File>>>,
    /// Wall clock minus CLOCK_MONOTONIC, to stamp pcap packets.
    epoch_offset_ns: i128,
}

impl DropCapture {
    pub fn new(datapath: &mut Datapath, reasons: ReasonNames, pcap: Option<&Path>) -> Result<Self> {
        let ring = match datapath.take_drop_events() {
            // SAFETY: the AsyncFd owns the ring buffer, which owns its descriptor.
            Some(r) => Some(
                unsafe {
                    tokio::io::unix::AsyncFd::register_with_interest(
                        r,
                        tokio::io::Interest::READABLE,
                    )
                }
                .map_err(|e| {
                    anyhow::anyhow!("watching the drop event ring buffer: {}", e.into_parts().1)
                })?,
            ),
            None => None,
        };
        let pcap = match pcap {
            Some(path) => {
                let file =
                    File::create(path).with_context(|| format!("creating {}", path.display()))?;
                Some(
                    PcapWriter::new(BufWriter::new(file))
                        .with_context(|| format!("writing {}", path.display()))?,
                )
            }
            None => None,
        };
        Ok(DropCapture {
            ring,
            reasons: Reasons::new(reasons),
            ifaces: IfaceNames::new(datapath),
            symbols: KernelSymbols::load(),
            tracker: DropTracker::default(),
            pcap,
            epoch_offset_ns: epoch_offset_ns(),
        })
    }

    /// Drains the sampled events that are ready: remembered per flow, written to the pcap.
    pub fn drain_events(&mut self, classes: &ClassTable) -> Result<()> {
        let Some(ring) = self.ring.as_mut() else {
            return Ok(());
        };
        let iface = |i: u32| self.ifaces.name(i);
        let names = Names {
            classes,
            reasons: &self.reasons,
            iface: &iface,
        };
        let ring = ring.get_mut();
        while let Some(record) = ring.next() {
            let Some(sample) = decode(&record, &names, self.symbols.as_ref()) else {
                continue;
            };
            self.tracker.note_sample(&sample);
            if let Some(pcap) = self.pcap.as_mut() {
                let f = &sample.flow;
                let mut comment =
                    format!("drop reason {} on {}, class {}", f.reason, f.iface, f.class);
                if let Some(at) = &sample.location {
                    comment.push_str(&format!(", at {at}"));
                }
                if let Some(why) = f.reason.explain() {
                    comment.push_str(&format!(": {why}"));
                }
                let wall = (sample.monotonic_ns as i128 + self.epoch_offset_ns).max(0) as u64;
                pcap.write_packet(
                    &f.iface,
                    wall,
                    sample.len.max(sample.frame.len() as u32),
                    &sample.frame,
                    &comment,
                )
                .context("writing the pcap file")?;
            }
        }
        Ok(())
    }

    /// Reads the exact counters and flows, and says what changed.
    pub fn update(
        &mut self,
        datapath: &Datapath,
        classes: &ClassTable,
    ) -> Result<DropsView, ProbeError> {
        let counters = datapath.drop_counters()?;
        let flows = datapath.drop_flows()?;
        let stats = datapath.drop_stats()?;
        let iface = |i: u32| self.ifaces.name(i);
        let names = Names {
            classes,
            reasons: &self.reasons,
            iface: &iface,
        };
        let changes = self.tracker.update(&counters, &flows, stats, &names);
        Ok(DropsView {
            changed: changes.flows,
            stats_changed: changes.stats,
            totals: self.tracker.totals(&names),
            top: self.tracker.top_flows(TOP_FLOWS, &names),
            stats: self.tracker.stats(),
            // Filled by the caller, who knows the node's firewall.
            changed_causes: Vec::new(),
            top_causes: Vec::new(),
        })
    }

    pub fn finish(&mut self) -> Result<()> {
        if let Some(pcap) = self.pcap.as_mut() {
            pcap.flush().context("writing the pcap file")?;
        }
        Ok(())
    }
}

fn epoch_offset_ns() -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the struct we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let mono = ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128;
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    wall - mono
}
