//! Reading the per-peer counters of node-to-node classes (`tracer_common::peers`).

use std::net::IpAddr;

use aya::maps::{MapData, MapError, PerCpuHashMap};
use tracer_common::{counters::Counter, peers::PeerKey};

use super::{Datapath, map_err, open_map};
use crate::probes::ProbeError;

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
    /// Every per-peer counter, summed over CPUs.
    pub fn peer_counters(&self) -> Result<Vec<PeerRow>, ProbeError> {
        let map: PerCpuHashMap<&MapData, PeerKey, Counter> = open_map(&self.ebpf, "PEER_COUNTERS")?;
        let mut rows = Vec::new();
        for item in &map {
            let (key, per_cpu) = match item {
                Ok(kv) => kv,
                // Removed (its interface released) between listing and reading.
                Err(MapError::KeyNotFound) => continue,
                Err(source) => return Err(map_err("PEER_COUNTERS")(source)),
            };
            let (Some(peer), Some(target)) = (key.peer(), (key.slot as usize).checked_sub(1))
            else {
                continue;
            };
            let (packets, bytes) = per_cpu
                .iter()
                .fold((0, 0), |(p, b), c| (p + c.packets, b + c.bytes));
            if packets > 0 {
                rows.push(PeerRow {
                    target,
                    direction: u32::from(key.dir),
                    class: key.class,
                    peer,
                    packets,
                    bytes,
                });
            }
        }
        Ok(rows)
    }
}
