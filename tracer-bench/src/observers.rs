//! Section 4b: who watches a drop storm, and what each costs the sender whose datagrams are
//! dropped. In one run, round after round, each observer runs right after an untraced run of
//! the same storm: an empty raw tracepoint program on `kfree_skb` (the floor: what any probe
//! there costs), `tracer watch`, and two bpftrace one-liners ([`crate::bpftrace`]), with one
//! flow and with 50,000. Then the drop probe alone, loaded by this process with its parts
//! switched on one at a time (counters only, then per-flow counts, the sampled events, the inner
//! frames of VXLAN packets), to show where its time goes. Reported per observer: the median
//! rate, the median of each run's rate over the untraced run before it, and what that is per
//! drop in nanoseconds; every tracer and probe run must count every drop.

mod table;

use std::path::Path;

use anyhow::{Context, Result};
use aya::{
    Ebpf,
    programs::RawTracePoint,
    sys::{Stats, enable_stats},
};
use serde::Serialize;
use tracer::{
    model::catalog::{Catalog, class_table},
    probes::{
        AttachMode, Datapath,
        btf::{Btf, VMLINUX},
        drops::{EventBudget, current_netns, kernel_facts},
    },
};
use tracer_common::drops::{DROP_PART_EVENTS, DROP_PART_FLOWS, DROP_PARTS_ALL};

pub use table::table;

use crate::{
    bpftrace::{Bpftrace, ONE_LINERS},
    cost::FLOOR,
    netns::check_interrupt,
    procs::{Tracer, firewall_drops},
    report::median,
    sender::{Bed, DEVICE, Traffic, send_here},
};

#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub datagrams: u64,
    /// Datagrams of each run of the probe's parts.
    pub part_datagrams: u64,
    pub rounds: usize,
}

/// The many-flows storm: more flows than the kernel's flow table holds.
pub const MANY: u16 = 50_000;

/// What watches the storm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observer {
    Untraced,
    /// An empty raw tracepoint program on `kfree_skb`.
    Floor,
    /// `tracer watch`, the whole tool.
    Tracer,
    /// One of [`ONE_LINERS`].
    Bpftrace(usize),
    /// The drop probe alone, with these `DROP_PART_*`.
    Probe(u32),
}

impl Observer {
    pub fn label(self) -> String {
        match self {
            Observer::Untraced => "untraced".into(),
            Observer::Floor => "empty raw tracepoint on kfree_skb".into(),
            Observer::Tracer => "tracer watch".into(),
            Observer::Bpftrace(i) => ONE_LINERS[i].0.into(),
            Observer::Probe(0) => "probe: counters per place and reason".into(),
            Observer::Probe(DROP_PART_FLOWS) => "probe: + per-flow counts".into(),
            Observer::Probe(p) if p == DROP_PART_FLOWS | DROP_PART_EVENTS => {
                "probe: + sampled events".into()
            }
            Observer::Probe(DROP_PARTS_ALL) => "probe: + VXLAN inner frames".into(),
            Observer::Probe(p) => format!("probe: parts {p:#x}"),
        }
    }

    /// The tracer's own, whose counts must be exact.
    fn counts_exactly(self) -> bool {
        matches!(self, Observer::Tracer | Observer::Probe(_))
    }
}

/// The comparison the goals judge: every observer at one flow and at many.
pub const PEERS: [Observer; 4] = [
    Observer::Floor,
    Observer::Tracer,
    Observer::Bpftrace(0),
    Observer::Bpftrace(1),
];

/// The probe's parts, added one at a time, on each kind of traffic (the inner-frame stage
/// only on VXLAN, the only traffic that reaches it).
fn parts_plan() -> Vec<(Traffic, Observer)> {
    let cumulative = [
        0,
        DROP_PART_FLOWS,
        DROP_PART_FLOWS | DROP_PART_EVENTS,
        DROP_PARTS_ALL,
    ];
    let mut plan = Vec::new();
    for traffic in [
        Traffic::Udp { flows: 1 },
        Traffic::Udp { flows: MANY },
        Traffic::Vxlan { flows: 1 },
    ] {
        let parts = if matches!(traffic, Traffic::Vxlan { .. }) {
            &cumulative[..]
        } else {
            &cumulative[..3]
        };
        plan.extend(parts.iter().map(|&p| (traffic, Observer::Probe(p))));
    }
    plan
}

/// One storm.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub round: usize,
    pub traffic: String,
    pub observer: String,
    pub datagrams: u64,
    pub secs: f64,
    pub drops_per_sec: f64,
    /// The untraced run just before it (None for untraced runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untraced_secs: Option<f64>,
    /// Drops the observer counted (tracer, probe: exactly those of the storm; bpftrace: its
    /// map's count for NETFILTER_DROP, drops of every namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counted: Option<u64>,
    /// The probe alone: its mean time per run in the kernel, by the kernel's run-time
    /// statistics (None where the kernel keeps none, before 5.8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_ns: Option<f64>,
}

/// One observer on one kind of traffic, over the rounds.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub traffic: String,
    pub flows: u16,
    pub observer: String,
    pub datagrams: u64,
    pub drops_per_sec: f64,
    /// Median of each run's rate over the untraced run before it.
    pub ratio: f64,
    /// Median of each run's extra time per drop over the untraced run before it.
    pub ns_per_drop: f64,
    /// Tracer and probe: every run counted every drop. bpftrace: every run saw them all.
    pub complete: bool,
    /// The probe alone: median of its runs' [`Run::probe_ns`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_ns: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Results {
    pub datagrams: u64,
    pub part_datagrams: u64,
    pub rounds: usize,
    /// The untraced rate of each traffic (median of its untraced runs).
    pub untraced: Vec<Summary>,
    pub peers: Vec<Summary>,
    pub parts: Vec<Summary>,
    pub runs: Vec<Run>,
}

impl Results {
    /// The summary of `observer` on `traffic` among the peers.
    pub fn peer(&self, observer: Observer, traffic: Traffic) -> Option<&Summary> {
        self.peers
            .iter()
            .find(|s| s.observer == observer.label() && s.traffic == traffic.label())
    }
}

pub fn run(bin: &Path, cfg: Config) -> Result<Results> {
    eprintln!(
        "[observers] {} rounds: untraced, then each of {} observers, at 1 and {MANY} flows ({} datagrams); the probe's parts ({} datagrams)",
        cfg.rounds,
        PEERS.len(),
        cfg.datagrams,
        cfg.part_datagrams
    );
    let bed = Bed::new("obs")?;
    let netfilter_drop = netfilter_drop_reason()?;
    let mut plan: Vec<(Traffic, Observer, u64)> = Vec::new();
    for flows in [1, MANY] {
        plan.extend(
            PEERS
                .iter()
                .map(|&o| (Traffic::Udp { flows }, o, cfg.datagrams)),
        );
    }
    plan.extend(
        parts_plan()
            .into_iter()
            .map(|(t, o)| (t, o, cfg.part_datagrams)),
    );
    let mut runs = Vec::new();
    for round in 0..cfg.rounds {
        for &(traffic, observer, datagrams) in &plan {
            check_interrupt()?;
            let untraced = bed.send(datagrams, traffic)?;
            runs.push(Run {
                round,
                traffic: traffic.label(),
                observer: Observer::Untraced.label(),
                datagrams,
                secs: untraced,
                drops_per_sec: datagrams as f64 / untraced,
                untraced_secs: None,
                counted: None,
                probe_ns: None,
            });
            let (secs, counted, probe_ns) =
                observe(bin, &bed, observer, traffic, datagrams, netfilter_drop)?;
            eprintln!(
                "[observers] round {round}: {:<26} {:<40} {:>8.0} drops/s ({:.1}% of untraced), counted {}",
                traffic.label(),
                observer.label(),
                datagrams as f64 / secs,
                100.0 * untraced / secs,
                counted.map_or_else(|| "-".into(), |c| c.to_string())
            );
            runs.push(Run {
                round,
                traffic: traffic.label(),
                observer: observer.label(),
                datagrams,
                secs,
                drops_per_sec: datagrams as f64 / secs,
                untraced_secs: Some(untraced),
                counted,
                probe_ns,
            });
        }
    }
    let summarize = |list: &mut Vec<Summary>, traffic: Traffic, observer: Observer, n: u64| {
        list.push(summary(&runs, traffic, observer, n));
    };
    let (mut untraced, mut peers, mut parts) = (Vec::new(), Vec::new(), Vec::new());
    for &(traffic, observer, n) in &plan {
        let list = if matches!(observer, Observer::Probe(_)) {
            &mut parts
        } else {
            &mut peers
        };
        summarize(list, traffic, observer, n);
        if !untraced
            .iter()
            .any(|s: &Summary| s.traffic == traffic.label() && s.datagrams == n)
        {
            summarize(&mut untraced, traffic, Observer::Untraced, n);
        }
    }
    Ok(Results {
        datagrams: cfg.datagrams,
        part_datagrams: cfg.part_datagrams,
        rounds: cfg.rounds,
        untraced,
        peers,
        parts,
        runs,
    })
}

/// The medians of `observer`'s runs on `traffic`.
fn summary(runs: &[Run], traffic: Traffic, observer: Observer, datagrams: u64) -> Summary {
    let mine: Vec<&Run> = runs
        .iter()
        .filter(|r| {
            r.traffic == traffic.label()
                && r.observer == observer.label()
                && r.datagrams == datagrams
        })
        .collect();
    let of = |f: &dyn Fn(&Run) -> Option<f64>| {
        median(&mine.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
    };
    let kernel: Vec<f64> = mine.iter().filter_map(|r| r.probe_ns).collect();
    let complete = mine.iter().all(|r| match r.counted {
        Some(c) if observer.counts_exactly() => c == r.datagrams,
        Some(c) => c >= r.datagrams,
        None => true,
    });
    Summary {
        traffic: traffic.label(),
        flows: traffic.flows(),
        observer: observer.label(),
        datagrams,
        drops_per_sec: of(&|r| Some(r.drops_per_sec)),
        ratio: if observer == Observer::Untraced {
            1.0
        } else {
            of(&|r| r.untraced_secs.map(|u| u / r.secs))
        },
        ns_per_drop: of(&|r| {
            r.untraced_secs
                .map(|u| 1e9 * (r.secs - u) / r.datagrams as f64)
        }),
        complete,
        probe_ns: (!kernel.is_empty()).then(|| median(&kernel)),
    }
}

/// One storm under `observer`: its seconds, what the observer counted, and for the probe
/// alone its kernel time per run.
fn observe(
    bin: &Path,
    bed: &Bed,
    observer: Observer,
    traffic: Traffic,
    datagrams: u64,
    netfilter_drop: u32,
) -> Result<(f64, Option<u64>, Option<f64>)> {
    match observer {
        Observer::Untraced => Ok((bed.send(datagrams, traffic)?, None, None)),
        Observer::Floor => {
            let mut floor = Ebpf::load(FLOOR).context("loading the floor object")?;
            let prog: &mut RawTracePoint = floor
                .program_mut("floor_drop")
                .context("no program `floor_drop` in the floor object")?
                .try_into()?;
            prog.load()
                .context("loading the empty raw tracepoint program")?;
            prog.attach("kfree_skb")
                .context("attaching the empty program to kfree_skb")?;
            Ok((bed.send(datagrams, traffic)?, None, None))
        }
        Observer::Tracer => {
            let tracer = Tracer::watch(
                bin,
                bed.ns.name(),
                &["--iface", DEVICE, "--profile", "generic"],
            )?;
            let secs = bed.send(datagrams, traffic)?;
            // The summary reads the counters as they are at the end.
            let counted = firewall_drops(&tracer.stop()?)?;
            Ok((secs, Some(counted), None))
        }
        Observer::Bpftrace(i) => {
            let bpftrace = Bpftrace::start(&bed.ns, ONE_LINERS[i].1)?;
            let secs = bed.send(datagrams, traffic)?;
            Ok((secs, Some(bpftrace.stop(netfilter_drop)?), None))
        }
        Observer::Probe(parts) => {
            bed.ns
                .run_in(|| -> Result<(f64, Option<u64>, Option<f64>)> {
                    let datapath = probe(parts)?;
                    // The kernel's own account of the probe's time, on for these runs only: while it
                    // is on, every program on the machine reads the clock twice per run.
                    let stats = enable_stats(Stats::RunTime).ok();
                    let before = datapath.drop_probe_runs()?;
                    let secs = send_here(datagrams, traffic)?;
                    let after = datapath.drop_probe_runs()?;
                    drop(stats);
                    let probe_ns = match (before, after) {
                        (Some((t0, n0)), Some((t1, n1))) if n1 > n0 => {
                            Some(t1.saturating_sub(t0).as_nanos() as f64 / (n1 - n0) as f64)
                        }
                        _ => None,
                    };
                    let counted = datapath
                        .drop_counters()?
                        .iter()
                        .filter(|(k, _)| k.reason == netfilter_drop)
                        .map(|(_, n)| n)
                        .sum();
                    Ok((secs, Some(counted), probe_ns))
                })?
        }
    }
}

/// The drop probe with only `parts`, attached in the calling thread's namespace, as tracer
/// loads it otherwise (the generic profile, tracer's default event budget).
fn probe(parts: u32) -> Result<Datapath> {
    let btf = Btf::from_file(Path::new(VMLINUX))?;
    let cpus = aya::util::nr_cpus().map_or(1, |n| n as u32);
    let (mut cfg, _) = kernel_facts(&btf, current_netns()?, EventBudget::new(10, 1000, cpus))?;
    cfg.parts = parts;
    let catalog = Catalog::builtin("generic")?;
    let classes = class_table(&catalog.components)?;
    let mut datapath = Datapath::load(&classes, Vec::new(), 1, Some(cfg))?;
    datapath.attach(AttachMode::Auto)?;
    Ok(datapath)
}

/// This kernel's value of the reason NETFILTER_DROP.
fn netfilter_drop_reason() -> Result<u32> {
    let btf = Btf::from_file(Path::new(VMLINUX))?;
    let (_, reasons) = kernel_facts(&btf, 0, EventBudget::new(1, 1, 1))?;
    reasons
        .value("NETFILTER_DROP")
        .context("this kernel names no NETFILTER_DROP reason")
}
