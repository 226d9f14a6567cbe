//! Reading the drop probe's maps: exact drop counts (each CPU's slots, mapped into our memory,
//! and the hash table beside them), per-flow counts (the flow cache, mapped into our memory,
//! and the flow table), taking the counts of quiet flows out of both, the probe's statistics,
//! and the ring buffer of sampled events.

use std::{
    collections::HashMap,
    os::fd::AsFd,
    sync::atomic::{AtomicU64, Ordering},
};

use aya::{
    Ebpf,
    maps::{Map, MapData, MapError, PerCpuArray, PerCpuHashMap, RingBuf},
};
use tracer_common::drops::{
    DROP_FLOW_CACHE_PER_CPU, DROP_FLOW_FILTER, DROP_SLOTS, DropKey, DropScratch, DropSlot,
    FlowCacheEntry, FlowCount, FlowKey, RETIRE_ASKED, RETIRE_DONE, RETIRE_NONE, STAT_EVENTS_LOST,
    STAT_EVENTS_SUPPRESSED, STAT_UNCOUNTED, STAT_UNTRACKED, STATS_LEN, flow_filter_index,
    flow_filter_term,
};

use super::{Datapath, DropStats, map_err, map_shared, open_map};
use crate::{
    probes::ProbeError,
    sys::{self, shared::SharedArray},
};

const FLOWS: &str = "DROP_FLOW_COUNTS";
pub(super) const FLOW_CACHE: &str = "DROP_FLOW_CACHE";
pub(super) const FLOW_FILTER: &str = "DROP_FLOW_FILTER_SLOTS";

const HEAD: usize = FlowCacheEntry::HEAD_WORD;
const KEY: usize = FlowCacheEntry::KEY_WORD;
const COUNT: usize = FlowCacheEntry::COUNT_WORD;
const RETIRE: usize = FlowCacheEntry::RETIRE_WORD;

pub(super) const SLOTS: &str = "DROP_SLOT_COUNTS";
/// Words of a counter slot (`DropSlot`): the count, then the key's three.
const SLOT_WORDS: usize = size_of::<DropSlot>() / 8;

const _: () = assert!(std::mem::offset_of!(DropSlot, count) == 0 && SLOT_WORDS == 4);

/// Entries of the drop counter slots for `cpus` CPUs.
pub(super) fn slot_entries(cpus: usize) -> usize {
    cpus * DROP_SLOTS as usize
}

/// Maps the drop counter slots of `cpus` CPUs into our memory; `None` for an object without
/// them.
pub(super) fn map_slots(ebpf: &Ebpf, cpus: usize) -> Result<Option<SharedArray>, ProbeError> {
    map_shared(ebpf, SLOTS, slot_entries(cpus) * size_of::<DropSlot>())
}

/// Entries of the flow cache for `cpus` CPUs.
pub(super) fn flow_cache_entries(cpus: usize) -> usize {
    cpus * DROP_FLOW_CACHE_PER_CPU as usize
}

/// Maps the flow table's filter (`DROP_FLOW_FILTER` slots); `None` for an object without it.
pub(super) fn map_flow_filter(ebpf: &Ebpf) -> Result<Option<SharedArray>, ProbeError> {
    map_shared(ebpf, FLOW_FILTER, DROP_FLOW_FILTER as usize * 8)
}

/// The drop probe's flow cache, mapped into our memory, and what was seen of it.
pub(super) struct FlowCache {
    shared: SharedArray,
    /// Each entry's count at the last [`Datapath::tend_drop_flow_cache`], 0 for a free one.
    seen: Vec<u64>,
}

impl FlowCache {
    /// Maps the flow cache of `cpus` CPUs; `None` for an object without one.
    pub(super) fn map(ebpf: &Ebpf, cpus: usize) -> Result<Option<FlowCache>, ProbeError> {
        let entries = flow_cache_entries(cpus);
        let shared = map_shared(ebpf, FLOW_CACHE, entries * size_of::<FlowCacheEntry>())?;
        Ok(shared.map(|shared| FlowCache {
            shared,
            seen: vec![0; entries],
        }))
    }

    /// Each entry's words and, when it is held, its key: the probe writes an entry's head
    /// last when it claims it, and the key does not change while the head is set (only we free
    /// entries).
    fn entries(&self) -> impl Iterator<Item = (&[AtomicU64], Option<FlowKey>)> {
        self.shared
            .words()
            .chunks_exact(FlowCacheEntry::WORDS)
            .map(|w| {
                let held = w[HEAD].load(Ordering::Acquire) != 0;
                let key = held.then(|| {
                    FlowKey::from_words(std::array::from_fn(|j| w[KEY + j].load(Ordering::Relaxed)))
                });
                (w, key)
            })
    }
}

impl Datapath {
    /// Exact drops per (place, interface index, reason, class), summed over CPUs and over the
    /// slots and the hash table a key may be counted in.
    pub fn drop_counters(&self) -> Result<Vec<(DropKey, u64)>, ProbeError> {
        let mut totals: HashMap<DropKey, u64> = HashMap::new();
        if let Some(slots) = &self.drop_slots {
            // A free slot counts 0; a taken one keeps its key for good, written before the
            // count that made it taken.
            for w in slots.words().chunks_exact(SLOT_WORDS) {
                let count = w[0].load(Ordering::Acquire);
                if count > 0 {
                    let words = [1, 2, 3].map(|j| w[j].load(Ordering::Relaxed));
                    *totals.entry(*DropKey::from_words(&words)).or_default() += count;
                }
            }
        }
        let hashed: PerCpuHashMap<&MapData, DropKey, u64> = open_map(&self.ebpf, "DROPS")?;
        for item in &hashed {
            let (key, per_cpu) = item.map_err(map_err("DROPS"))?;
            *totals.entry(key).or_default() += per_cpu.iter().sum::<u64>();
        }
        Ok(totals.into_iter().collect())
    }

    /// Exact drops per flow in the flow cache, summed over its entries (one per CPU at most).
    pub fn cached_drop_flows(&self) -> Vec<(FlowKey, u64)> {
        let Some(cache) = &self.flow_cache else {
            return Vec::new();
        };
        let mut sums: HashMap<FlowKey, u64> = HashMap::new();
        for (w, key) in cache.entries() {
            if let Some(key) = key {
                *sums.entry(key).or_default() += w[COUNT].load(Ordering::Relaxed);
            }
        }
        sums.into_iter().collect()
    }

    /// Takes the flow cache's entries back from flows that went quiet, without losing a count
    /// (see `tracer-ebpf`'s `drops::counts`): frees the entries whose release the probe
    /// answered, returning their final counts, and asks for those whose count has not moved
    /// since the last call. A flow's count is then in what this returned and in the flow
    /// table and cache as read after it.
    pub fn tend_drop_flow_cache(&mut self) -> Vec<(FlowKey, u64)> {
        let Some(cache) = self.flow_cache.as_mut() else {
            return Vec::new();
        };
        let mut taken = Vec::new();
        let mut seen = std::mem::take(&mut cache.seen);
        for ((w, key), seen) in cache.entries().zip(&mut seen) {
            let Some(key) = key else {
                *seen = 0;
                continue;
            };
            match w[RETIRE].load(Ordering::Acquire) {
                RETIRE_DONE => {
                    // No run counts in it any more, and the answer came after the last count.
                    taken.push((key, w[COUNT].load(Ordering::Relaxed)));
                    w[HEAD].store(0, Ordering::Release);
                    *seen = 0;
                }
                RETIRE_NONE => {
                    let count = w[COUNT].load(Ordering::Relaxed);
                    if count == *seen {
                        w[RETIRE].store(RETIRE_ASKED, Ordering::Release);
                    }
                    *seen = count;
                }
                // Asked, not answered yet: no drop has looked at the entry since.
                _ => debug_assert_eq!(w[RETIRE].load(Ordering::Relaxed), RETIRE_ASKED),
            }
        }
        cache.seen = seen;
        taken
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

    /// The flow table's filter: each slot the sum of the terms
    /// (`tracer_common::drops::flow_filter_term`) of the flows in the table whose key hashes to
    /// it (`flow_filter_index`), and of a flow on its way in or out. Empty without the drop
    /// probe.
    pub fn flow_filter(&self) -> Vec<u64> {
        self.flow_filter.as_ref().map_or_else(Vec::new, |f| {
            f.words()
                .iter()
                .map(|w| w.load(Ordering::Acquire))
                .collect()
        })
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
                    // Out of the table, so out of its filter slot: the probe added its term to
                    // the slot before the flow went in (see `tracer-ebpf`'s `drops::counts`).
                    if let Some(filter) = &self.flow_filter {
                        let head = key.head();
                        filter.words()[flow_filter_index(head) as usize]
                            .fetch_sub(flow_filter_term(head), Ordering::AcqRel);
                    }
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

    /// The probe's statistics, summed over CPUs (each CPU keeps them in its state, at the
    /// head of its scratch space).
    pub fn drop_stats(&self) -> Result<DropStats, ProbeError> {
        let scratch: PerCpuArray<&MapData, DropScratch> = open_map(&self.ebpf, "SCRATCH")?;
        let per_cpu = scratch.get(&0, 0).map_err(map_err("SCRATCH"))?;
        let mut sums = [0u64; STATS_LEN as usize];
        for s in per_cpu.iter() {
            for (sum, n) in sums.iter_mut().zip(s.state.stats) {
                *sum += n;
            }
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
