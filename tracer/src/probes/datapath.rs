//! The loaded datapath: one eBPF object whose programs are attached to every watched
//! interface, with the tables the loader filled and the counters the programs keep.
//!
//! Programs are attached through bpf links (TCX for tc, XDP links), which the kernel removes
//! when the last descriptor closes, so even `kill -9` leaves nothing attached; before TCX
//! (6.6), tc programs are netlink filters that [`super::tc`] finds and removes after a killed
//! run. Which programs load and how they attach follows [`super::features`].

use std::{io, os::fd::AsFd};

use aya::{
    Ebpf, Pod,
    maps::{Map, MapData, MapError, PerCpuArray},
    programs::{ProgramError, TestRun, TestRunOptions, TestRunResult},
};
use tracer_common::{
    counters::{Counter, DIRECTIONS, SIZE_BUCKETS, SizedCounter, counter_index},
    drops::DropHook,
};

use super::{
    AttachMode, ProbeError,
    attach::{Hook, explain},
};
use crate::sys::shared::SharedArray;

mod drop_maps;
mod hooks;
mod load;
mod peer_maps;
mod slots;
mod tables;

pub use peer_maps::PeerRow;

/// The programs in the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    TcIngress,
    TcEgress,
    XdpIngress,
}

impl Program {
    pub const ALL: [Program; 3] = [Program::TcIngress, Program::TcEgress, Program::XdpIngress];

    pub fn name(self) -> &'static str {
        match self {
            Program::TcIngress => "tc_ingress",
            Program::TcEgress => "tc_egress",
            Program::XdpIngress => "xdp_ingress",
        }
    }
}

/// An interface to watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub index: u32,
    /// False for devices whose packets start at the IP header.
    pub has_l2: bool,
    /// Virtual devices get tc in `--attach auto`.
    pub is_virtual: bool,
}

/// The packets and bytes counted on one interface, in one direction, for one class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterRow {
    /// The interface's slot, its position in [`Datapath::targets`].
    pub target: usize,
    /// `DIR_INGRESS` or `DIR_EGRESS`.
    pub direction: u32,
    pub class: u8,
    pub packets: u64,
    pub bytes: u64,
    /// Packets per size bucket (`tracer_common::counters::SIZE_BOUNDS`); zero in the rows of
    /// [`Datapath::inner_counters`], which keep no histogram.
    pub sizes: [u64; SIZE_BUCKETS],
}

/// What the drop probe could not pass on: events lost to a full ring buffer, events held
/// back by the budgets (their drops are counted), drops the counter table had no room for
/// (they are in no counter), drops whose flow the flow table had no room for (they are in the
/// totals, not in any flow's count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropStats {
    pub events_lost: u64,
    pub events_suppressed: u64,
    pub uncounted: u64,
    pub untracked: u64,
}

/// The datapath's second stages (inner frames of overlay packets) and their program arrays.
const INNER_PROGRAMS: &[(&str, &str)] = &[("TC_STAGES", "tc_inner"), ("XDP_STAGES", "xdp_inner")];

/// The datapath's programs, which [`Datapath::load`] loads; the drop probe's come after them
/// ([`load::load_drop_probe`]).
fn program_names() -> impl Iterator<Item = &'static str> {
    Program::ALL
        .iter()
        .map(|p| p.name())
        .chain(INNER_PROGRAMS.iter().map(|(_, n)| *n))
}

/// Wraps an error of the map `map`.
fn map_err(map: &'static str) -> impl Fn(MapError) -> ProbeError + Copy {
    move |source| ProbeError::Map { map, source }
}

/// The object's map `name`, as the typed view `M`.
fn open_map<'a, M>(ebpf: &'a Ebpf, name: &'static str) -> Result<M, ProbeError>
where
    M: TryFrom<&'a Map, Error = MapError>,
{
    let map = ebpf
        .map(name)
        .unwrap_or_else(|| panic!("object defines {name}"));
    M::try_from(map).map_err(map_err(name))
}

/// Maps the `BPF_F_MMAPABLE` array `name`, `bytes` long, into our memory; `None` for an object
/// without it.
fn map_shared(
    ebpf: &Ebpf,
    name: &'static str,
    bytes: usize,
) -> Result<Option<SharedArray>, ProbeError> {
    let Some(Map::Array(data)) = ebpf.map(name) else {
        return Ok(None);
    };
    SharedArray::map(data.fd().as_fd(), bytes)
        .map(Some)
        .map_err(|io_error| ProbeError::Map {
            map: name,
            source: MapError::SyscallError(aya::sys::SyscallError {
                call: "mmap",
                io_error,
            }),
        })
}

/// The object's map `name`, as the typed view `M` for writing.
fn open_map_mut<'a, M>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<M, ProbeError>
where
    M: TryFrom<&'a mut Map, Error = MapError>,
{
    let map = ebpf
        .map_mut(name)
        .unwrap_or_else(|| panic!("object defines {name}"));
    M::try_from(map).map_err(map_err(name))
}

/// The error for a program the object does not have.
fn missing(name: &'static str) -> ProbeError {
    ProbeError::Rejected {
        program: name,
        reason: "missing from the object".into(),
    }
}

pub struct Datapath {
    ebpf: Ebpf,
    /// The watched interface of each slot (slot `i + 1` in the kernel's tables); `None` for a
    /// free slot.
    targets: Vec<Option<Target>>,
    n_classes: u32,
    /// The drop probe's entry program and how it hooks `kfree_skb`, when drops are watched.
    drop_program: Option<(&'static str, DropHook)>,
    /// Every program loaded.
    programs: Vec<&'static str>,
    hooks: Vec<Option<Hook>>,
    /// The links of each slot's programs, detached when the slot is released.
    links: Vec<Vec<hooks::Link>>,
    /// Slots released since the last [`Datapath::reap`]: no longer counting, their counters
    /// still readable.
    leaving: Vec<usize>,
    /// How ingress programs attach, for the interfaces added later.
    mode: AttachMode,
    /// The programs count per peer.
    peers: bool,
    /// The per-peer cache, mapped into our memory (`peer_maps`).
    peer_cache: Option<SharedArray>,
    /// The drop probe's counter slots, mapped into our memory (`drop_maps`), when drops are
    /// watched.
    drop_slots: Option<SharedArray>,
    /// The drop probe's flow cache, mapped into our memory (`drop_maps`), when drops are
    /// watched.
    flow_cache: Option<drop_maps::FlowCache>,
    /// The drop probe's flow table filter, mapped into our memory (`drop_maps`), when drops are
    /// watched.
    flow_filter: Option<SharedArray>,
    logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
    /// Declared after `ebpf`, so it runs once the programs' filters are detached.
    clsact: hooks::ClsactGuard,
}

impl Datapath {
    /// The channel of the programs' log messages, for a task that drains it into `log`.
    pub fn take_logger(&mut self) -> Option<aya_log::EbpfLogger<&'static dyn log::Log>> {
        self.logger.take()
    }

    /// The interface of each slot; `None` for a free one.
    pub fn targets(&self) -> &[Option<Target>] {
        &self.targets
    }

    /// Kernel ids of the loaded programs, as `bpftool prog show` lists them.
    pub fn program_ids(&self) -> Vec<(&'static str, u32)> {
        self.programs
            .iter()
            .copied()
            .filter_map(|name| {
                let info = self.ebpf.program(name)?.info().ok()?;
                Some((name, info.id()))
            })
            .collect()
    }

    /// How the drop probe hooks `kfree_skb`, when drops are watched.
    pub fn drop_hook(&self) -> Option<DropHook> {
        self.drop_program.map(|(_, hook)| hook)
    }

    /// The drop probe's time in the kernel and its number of runs so far, as the kernel counts
    /// them while run-time statistics are on (`aya::sys::enable_stats`, 5.8+; both stay put
    /// otherwise). The second stage's time is in the entry program's, which tail-calls it.
    /// `None` without the drop probe.
    pub fn drop_probe_runs(&self) -> Result<Option<(std::time::Duration, u64)>, ProbeError> {
        let Some((name, _)) = self.drop_program else {
            return Ok(None);
        };
        let prog = self.ebpf.program(name).ok_or_else(|| missing(name))?;
        let info = prog.info().map_err(|e| ProbeError::Rejected {
            program: name,
            reason: e.to_string(),
        })?;
        Ok(Some((info.run_time(), info.run_count())))
    }

    /// The ingress hook each target got, once attached.
    pub fn hooks(&self) -> &[Option<Hook>] {
        &self.hooks
    }

    fn program_by_name<'a, T>(&'a mut self, name: &'static str) -> Result<&'a mut T, ProbeError>
    where
        &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
    {
        let prog = self.ebpf.program_mut(name).ok_or_else(|| missing(name))?;
        <&mut T>::try_from(prog).map_err(|e| ProbeError::Rejected {
            program: name,
            reason: e.to_string(),
        })
    }

    /// Every non-zero counter with its packet-size histogram, summed over CPUs.
    pub fn counters(&self) -> Result<Vec<CounterRow>, ProbeError> {
        self.read_counters::<SizedCounter>("COUNTERS")
    }

    /// Every non-zero counter of overlay packets by their inner class, summed over CPUs.
    pub fn inner_counters(&self) -> Result<Vec<CounterRow>, ProbeError> {
        self.read_counters::<Counter>("INNER_COUNTERS")
    }

    /// The rows of the counter array `name`, whose values are `V` (read as a `SizedCounter`:
    /// a plain `Counter` has empty buckets).
    fn read_counters<V: Pod + Into<SizedCounter>>(
        &self,
        name: &'static str,
    ) -> Result<Vec<CounterRow>, ProbeError> {
        let counters: PerCpuArray<&MapData, V> = open_map(&self.ebpf, name)?;
        let mut rows = Vec::new();
        let used = self.targets.iter().enumerate().filter(|(_, t)| t.is_some());
        for (target, _) in used {
            for direction in 0..DIRECTIONS {
                for class in 0..self.n_classes {
                    let idx = counter_index(target as u32 + 1, direction, class, self.n_classes);
                    let per_cpu = counters.get(&idx, 0).map_err(map_err(name))?;
                    let mut total = SizedCounter::default();
                    for &c in per_cpu.iter() {
                        let c: SizedCounter = c.into();
                        total.packets += c.packets;
                        total.bytes += c.bytes;
                        for (t, n) in total.sizes.iter_mut().zip(c.sizes) {
                            *t += n;
                        }
                    }
                    if total.packets > 0 {
                        rows.push(CounterRow {
                            target,
                            direction,
                            class: class as u8,
                            packets: total.packets,
                            bytes: total.bytes,
                            sizes: total.sizes,
                        });
                    }
                }
            }
        }
        Ok(rows)
    }

    /// Runs a loaded program on `frame` with BPF_PROG_TEST_RUN, `repeat` times. The packet
    /// arrives on loopback, so include `lo` in the targets to have it counted.
    pub fn test_run(
        &self,
        program: Program,
        frame: &[u8],
        repeat: u32,
    ) -> Result<TestRunResult, ProbeError> {
        self.test_run_program(program.name(), frame, repeat)
    }

    /// [`Datapath::test_run`] for a loaded XDP or tc program given by name.
    pub fn test_run_program(
        &self,
        name: &'static str,
        frame: &[u8],
        repeat: u32,
    ) -> Result<TestRunResult, ProbeError> {
        let opts = TestRunOptions {
            data_in: Some(frame),
            repeat,
            ..TestRunOptions::default()
        };
        let prog = self.ebpf.program(name).ok_or_else(|| missing(name))?;
        let result = match prog {
            aya::programs::Program::Xdp(p) => p.test_run(opts),
            aya::programs::Program::SchedClassifier(p) => p.test_run(opts),
            _ => {
                return Err(ProbeError::Rejected {
                    program: name,
                    reason: "not an XDP or tc program".into(),
                });
            }
        };
        result.map_err(|source| ProbeError::TestRun {
            program: name,
            source,
        })
    }
}

/// The errno behind an aya error, wherever it sits in the source chain.
fn errno(err: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return io.raw_os_error();
        }
        cur = e.source();
    }
    None
}

fn attach_error(iface: &str, hook: Hook, err: &ProgramError) -> ProbeError {
    let reason = match explain(hook, errno(err)) {
        Some(why) => why.to_string(),
        None => chain(err),
    };
    ProbeError::Attach {
        iface: iface.to_string(),
        hook,
        reason,
    }
}

fn rejection(err: &ProgramError) -> String {
    match err {
        // The verifier log is long; its last lines say what it objected to.
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            log::debug!("verifier log:\n{log}");
            let tail: Vec<&str> = log.lines().rev().take(6).collect();
            format!(
                "{io_error}; verifier: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )
        }
        e => chain(e),
    }
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        s.push_str(": ");
        s.push_str(&e.to_string());
        cur = e.source();
    }
    s
}
