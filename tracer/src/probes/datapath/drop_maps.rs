//! Reading the drop probe's maps: exact drop counts (per-CPU slots and the hash table beside
//! them), per-flow counts, taking the counts of quiet flows out of the flow table, the
//! probe's statistics, and the ring buffer of sampled events.

use std::{collections::HashMap, os::fd::AsFd};

use aya::maps::{Map, MapData, MapError, PerCpuArray, PerCpuHashMap, RingBuf};
use tracer_common::drops::{
    DROP_SLOTS, DropKey, DropSlot, FlowCount, FlowKey, STAT_EVENTS_LOST, STAT_EVENTS_SUPPRESSED,
    STAT_UNCOUNTED, STAT_UNTRACKED, STATS_LEN,
};

use super::{Datapath, DropStats, map_err, open_map};
use crate::{probes::ProbeError, sys};

const FLOWS: &str = "DROP_FLOW_COUNTS";

impl Datapath {
    /// Exact drops per (place, interface index, reason, class), summed over CPUs and over the
    /// slots and the hash table a key may be counted in.
    pub fn drop_counters(&self) -> Result<Vec<(DropKey, u64)>, ProbeError> {
        let mut totals: HashMap<DropKey, u64> = HashMap::new();
        let slots: PerCpuArray<&MapData, DropSlot> = open_map(&self.ebpf, "DROP_SLOT_COUNTS")?;
        for i in 0..DROP_SLOTS {
            let per_cpu = slots.get(&i, 0).map_err(map_err("DROP_SLOT_COUNTS"))?;
            // A free slot counts 0; a taken one keeps its key for good.
            for slot in per_cpu.iter().filter(|s| s.count > 0) {
                *totals.entry(slot.key).or_default() += slot.count;
            }
        }
        let hashed: PerCpuHashMap<&MapData, DropKey, u64> = open_map(&self.ebpf, "DROPS")?;
        for item in &hashed {
            let (key, per_cpu) = item.map_err(map_err("DROPS"))?;
            *totals.entry(key).or_default() += per_cpu.iter().sum::<u64>();
        }
        Ok(totals.into_iter().collect())
    }

    /// Exact drops per flow, for the flows the kernel's table holds, summed over CPUs.
    pub fn drop_flows(&self) -> Result<Vec<(FlowKey, u64)>, ProbeError> {
        let flows: PerCpuHashMap<&MapData, FlowKey, FlowCount> = open_map(&self.ebpf, FLOWS)?;
        let mut rows = Vec::new();
        for item in &flows {
            match item {
                Ok((key, per_cpu)) => rows.push((key, per_cpu.iter().map(|c| c.count).sum())),
                // A flow taken out between listing its key and reading it.
                Err(MapError::KeyNotFound) => {}
                Err(source) => return Err(map_err(FLOWS)(source)),
            }
        }
        Ok(rows)
    }

    /// Takes `keys` out of the flow table, each with its last count (summed over CPUs), in one
    /// step per flow, so that no drop counted meanwhile is lost: the flow's next drop starts a
    /// new entry at zero. `None` when the kernel cannot (before 5.14).
    pub fn take_drop_flows(
        &self,
        keys: &[FlowKey],
    ) -> Result<Option<Vec<(FlowKey, u64)>>, ProbeError> {
        let Some(Map::PerCpuHashMap(data)) = self.ebpf.map(FLOWS) else {
            panic!("object defines {FLOWS} as a per-CPU hash map");
        };
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| ProbeError::Map {
            map: FLOWS,
            source: MapError::IoError(e),
        })?;
        let stride = size_of::<FlowCount>().next_multiple_of(8);
        let mut values = vec![0u8; stride * cpus];
        let mut taken = Vec::new();
        for key in keys {
            // SAFETY: FlowKey is repr(C) plain data without implicit padding (size asserted).
            let key_bytes = unsafe {
                std::slice::from_raw_parts(
                    std::ptr::from_ref(key).cast::<u8>(),
                    size_of::<FlowKey>(),
                )
            };
            match sys::bpf::lookup_and_delete(data.fd().as_fd(), key_bytes, &mut values) {
                Ok(true) => {
                    let count = values
                        .chunks_exact(stride)
                        .map(|v| u64::from_ne_bytes(v[..8].try_into().expect("8 bytes")))
                        .sum();
                    taken.push((*key, count));
                }
                Ok(false) => {}
                Err(e) if sys::bpf::unsupported(&e) => return Ok(None),
                Err(e) => {
                    return Err(ProbeError::Map {
                        map: FLOWS,
                        source: MapError::IoError(e),
                    });
                }
            }
        }
        Ok(Some(taken))
    }

    pub fn drop_stats(&self) -> Result<DropStats, ProbeError> {
        let stats: PerCpuArray<&MapData, u64> = open_map(&self.ebpf, "DROP_STATS")?;
        let mut sums = [0u64; STATS_LEN as usize];
        for (i, sum) in sums.iter_mut().enumerate() {
            let per_cpu = stats.get(&(i as u32), 0).map_err(map_err("DROP_STATS"))?;
            *sum = per_cpu.iter().sum();
        }
        Ok(DropStats {
            events_lost: sums[STAT_EVENTS_LOST as usize],
            events_suppressed: sums[STAT_EVENTS_SUPPRESSED as usize],
            uncounted: sums[STAT_UNCOUNTED as usize],
            untracked: sums[STAT_UNTRACKED as usize],
        })
    }

    /// The ring buffer of sampled drop events, for a reader of its own.
    pub fn take_drop_events(&mut self) -> Option<RingBuf<MapData>> {
        let map = self.ebpf.take_map("DROP_EVENTS")?;
        RingBuf::try_from(map).ok()
    }
}
