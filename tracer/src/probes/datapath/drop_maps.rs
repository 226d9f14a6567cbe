//! Reading the drop probe's maps: exact drop counts, per-flow counts, the probe's statistics,
//! and the ring buffer of sampled events.

use aya::maps::{HashMap, MapData, PerCpuArray, PerCpuHashMap, RingBuf};
use tracer_common::drops::{
    DropKey, FlowKey, FlowState, STAT_EVENTS_LOST, STAT_EVENTS_SUPPRESSED, STAT_UNCOUNTED,
    STATS_LEN,
};

use super::{Datapath, DropStats, map_err, open_map};
use crate::probes::ProbeError;

impl Datapath {
    /// Exact drops per (interface index, reason, class), summed over CPUs.
    pub fn drop_counters(&self) -> Result<Vec<(DropKey, u64)>, ProbeError> {
        let drops: PerCpuHashMap<&MapData, DropKey, u64> = open_map(&self.ebpf, "DROPS")?;
        let mut rows = Vec::new();
        for item in &drops {
            let (key, per_cpu) = item.map_err(map_err("DROPS"))?;
            rows.push((key, per_cpu.iter().sum()));
        }
        Ok(rows)
    }

    /// Exact drops per flow, for the flows the kernel's table still holds.
    pub fn drop_flows(&self) -> Result<Vec<(FlowKey, u64)>, ProbeError> {
        let flows: HashMap<&MapData, FlowKey, FlowState> =
            open_map(&self.ebpf, "DROP_FLOW_COUNTS")?;
        let mut rows = Vec::new();
        for item in &flows {
            match item {
                Ok((key, state)) => rows.push((key, state.count)),
                // An LRU entry can vanish between listing its key and reading it.
                Err(aya::maps::MapError::KeyNotFound) => {}
                Err(source) => return Err(map_err("DROP_FLOW_COUNTS")(source)),
            }
        }
        Ok(rows)
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
        })
    }

    /// The ring buffer of sampled drop events, for a reader of its own.
    pub fn take_drop_events(&mut self) -> Option<RingBuf<MapData>> {
        let map = self.ebpf.take_map("DROP_EVENTS")?;
        RingBuf::try_from(map).ok()
    }
}
