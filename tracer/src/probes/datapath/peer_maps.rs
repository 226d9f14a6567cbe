//! Reading the per-peer counters of node-to-node classes (`tracer_common::peers`): the hash
//! table's per-CPU values and the per-peer cache's entries, mapped into our memory, added up
//! per key.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    sync::atomic::{AtomicU64, Ordering},
};

use aya::{
    Ebpf,
    maps::{MapData, MapError, PerCpuHashMap},
};
use tracer_common::{
    counters::Counter,
    peers::{PEER_CACHE_PER_CPU, PeerCacheEntry, PeerKey},
};

use super::{Datapath, map_err, map_shared, open_map};
use crate::{probes::ProbeError, sys::shared::SharedArray};

/// The per-peer cache's map.
pub(super) const PEER_CACHE: &str = "PEER_CACHE";

/// Words of one cache entry: the key's three, then packets and bytes.
const ENTRY_WORDS: usize = size_of::<PeerCacheEntry>() / 8;

/// Entries of the per-peer cache for `cpus` CPUs.
pub(super) fn peer_cache_entries(cpus: usize) -> usize {
    cpus * PEER_CACHE_PER_CPU as usize
}

/// Maps the per-peer cache of `cpus` CPUs into our memory; `None` for an object without one
/// (the benchmark's programs that stop short of counting).
pub(super) fn map_peer_cache(ebpf: &Ebpf, cpus: usize) -> Result<Option<SharedArray>, ProbeError> {
    map_shared(
        ebpf,
        PEER_CACHE,
        peer_cache_entries(cpus) * size_of::<PeerCacheEntry>(),
    )
}

/// The cache's claimed entries: key, packets, bytes. The datapath writes an entry's head word
/// last when it claims it, so a head seen set comes with its whole address.
fn cache_entries(words: &[AtomicU64]) -> impl Iterator<Item = (&[AtomicU64], PeerKey)> {
    words.chunks_exact(ENTRY_WORDS).filter_map(|w| {
        let head = w[0].load(Ordering::Acquire);
        (head != 0).then(|| {
            let key = PeerKey::from_words([
                head,
                w[1].load(Ordering::Relaxed),
                w[2].load(Ordering::Relaxed),
            ]);
            (w, key)
        })
    })
}

/// Empties the cache's entries of the interface slots at `leaving` (positions, slot - 1),
/// which no program counts any more: the counts first, the head word last, so the datapath
/// never claims an entry whose old counts are still there.
pub(super) fn clear_peer_cache(cache: &SharedArray, leaving: &[usize]) {
    for (w, key) in cache_entries(cache.words()) {
        if leaving.contains(&usize::from(key.slot).wrapping_sub(1)) {
            w[3].store(0, Ordering::Relaxed);
            w[4].store(0, Ordering::Relaxed);
            w[0].store(0, Ordering::Release);
        }
    }
}

/// The packets and bytes one interface exchanged with one peer, in one direction, of one class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerRow {
    /// Position of the interface in the datapath's targets.
    pub target: usize,
    /// `DIR_INGRESS` or `DIR_EGRESS`.
    pub direction: u32,
    pub class: u8,
    pub peer: IpAddr,
    pub packets: u64,
    pub bytes: u64,
}

impl Datapath {
    /// Every per-peer counter, summed over CPUs and over the cache and the hash table.
    pub fn peer_counters(&self) -> Result<Vec<PeerRow>, ProbeError> {
        let map: PerCpuHashMap<&MapData, PeerKey, Counter> = open_map(&self.ebpf, "PEER_COUNTERS")?;
        let mut sums: BTreeMap<PeerKey, (u64, u64)> = BTreeMap::new();
        for item in &map {
            let (key, per_cpu) = match item {
                Ok(kv) => kv,
                // Removed (its interface released) between listing and reading.
                Err(MapError::KeyNotFound) => continue,
                Err(source) => return Err(map_err("PEER_COUNTERS")(source)),
            };
            let sum = sums.entry(key).or_default();
            for c in per_cpu.iter() {
                *sum = (sum.0 + c.packets, sum.1 + c.bytes);
            }
        }
        if let Some(cache) = &self.peer_cache {
            for (w, key) in cache_entries(cache.words()) {
                let sum = sums.entry(key).or_default();
                *sum = (
                    sum.0 + w[3].load(Ordering::Relaxed),
                    sum.1 + w[4].load(Ordering::Relaxed),
                );
            }
        }
        Ok(sums
            .into_iter()
            .filter_map(|(key, (packets, bytes))| {
                let peer = key.peer()?;
                let target = (key.slot as usize).checked_sub(1)?;
                (packets > 0).then_some(PeerRow {
                    target,
                    direction: u32::from(key.dir),
                    class: key.class,
                    peer,
                    packets,
                    bytes,
                })
            })
            .collect())
    }
}
