//! Interfaces that come and go while the datapath runs: a new one takes a free slot (its
//! entry in the interface table, its programs attached); a removed one stops counting at once
//! but keeps its counters for one more reading ([`Datapath::release`]), after which
//! [`Datapath::reap`] zeroes them, forgets its peers and frees the slot for the next.

use aya::maps::{Array, HashMap, MapData, PerCpuArray, PerCpuHashMap, PerCpuValues};
use tracer_common::{
    counters::{
        Counter, DIRECTIONS, IFACE_ARRAY_LEN, IFACE_NO_L2, IfaceSlot, SizedCounter, counter_index,
    },
    peers::PeerKey,
};

use super::{
    Datapath, Target, load::possible_cpus, map_err, open_map_mut, peer_maps::clear_peer_cache,
};
use crate::probes::ProbeError;

impl Datapath {
    /// Watches one more interface in a free slot and attaches its programs; the slot's
    /// position. Fails when every slot is taken, or attaching fails (the slot stays free).
    pub fn add_target(&mut self, target: Target) -> Result<usize, ProbeError> {
        let Some(i) = self.targets.iter().position(Option::is_none) else {
            return Err(ProbeError::NoFreeSlot {
                iface: target.name,
                capacity: self.targets.len(),
            });
        };
        let slot = IfaceSlot {
            slot: i as u16 + 1,
            flags: if target.has_l2 { 0 } else { IFACE_NO_L2 },
        };
        set_iface(self, target.index, Some(slot))?;
        self.targets[i] = Some(target);
        if let Err(e) = self.attach_slot(i) {
            self.detach_slot(i);
            let index = self.targets[i].take().map_or(0, |t| t.index);
            set_iface(self, index, None)?;
            return Err(e);
        }
        Ok(i)
    }

    /// Stops watching the interface of index `ifindex` (removed, renamed away): it counts no
    /// more, its programs are detached, and its counters stay readable until the next
    /// [`Datapath::reap`]. Its name, when it was watched.
    pub fn release(&mut self, ifindex: u32) -> Result<Option<String>, ProbeError> {
        let found = self.targets.iter().enumerate().position(|(i, t)| {
            t.as_ref().is_some_and(|t| t.index == ifindex) && !self.leaving.contains(&i)
        });
        let Some(i) = found else {
            return Ok(None);
        };
        set_iface(self, ifindex, None)?;
        self.detach_slot(i);
        self.leaving.push(i);
        Ok(self.targets[i].as_ref().map(|t| t.name.clone()))
    }

    /// Frees the slots released before the last reading of the counters: their counters back
    /// to zero, their peers' entries removed.
    pub fn reap(&mut self) -> Result<(), ProbeError> {
        if self.leaving.is_empty() {
            return Ok(());
        }
        let leaving = std::mem::take(&mut self.leaving);
        let cpus = possible_cpus()?;
        zero::<SizedCounter>(self, "COUNTERS", &leaving, cpus)?;
        zero::<Counter>(self, "INNER_COUNTERS", &leaving, cpus)?;
        let mut peers: PerCpuHashMap<&mut MapData, PeerKey, Counter> =
            open_map_mut(&mut self.ebpf, "PEER_COUNTERS")?;
        let gone: Vec<PeerKey> = peers
            .keys()
            .filter_map(Result::ok)
            .filter(|k| leaving.contains(&(usize::from(k.slot).wrapping_sub(1))))
            .collect();
        for k in gone {
            // Counted again between listing and removing only if the slot were live: it is not.
            let _ = peers.remove(&k);
        }
        if let Some(cache) = &self.peer_cache {
            clear_peer_cache(cache, &leaving);
        }
        for i in leaving {
            self.targets[i] = None;
        }
        Ok(())
    }

    /// The interface of index `ifindex`, when it is watched (and not being released).
    pub fn watching(&self, ifindex: u32) -> Option<&Target> {
        self.targets.iter().enumerate().find_map(|(i, t)| {
            t.as_ref()
                .filter(|t| t.index == ifindex && !self.leaving.contains(&i))
        })
    }

    /// Whether slot position `i` was released and waits to be reaped.
    pub fn is_leaving(&self, i: usize) -> bool {
        self.leaving.contains(&i)
    }

    /// Slots holding an interface, the ones still to be reaped included.
    pub fn slots_in_use(&self) -> usize {
        self.targets.iter().filter(|t| t.is_some()).count()
    }
}

/// Points the interface table's entry for `ifindex` at `slot`, or clears it.
fn set_iface(dp: &mut Datapath, ifindex: u32, slot: Option<IfaceSlot>) -> Result<(), ProbeError> {
    if ifindex < IFACE_ARRAY_LEN {
        let mut array: Array<&mut MapData, IfaceSlot> = open_map_mut(&mut dp.ebpf, "IFACES")?;
        array
            .set(ifindex, slot.unwrap_or_default(), 0)
            .map_err(map_err("IFACES"))
    } else {
        let mut hash: HashMap<&mut MapData, u32, IfaceSlot> =
            open_map_mut(&mut dp.ebpf, "IFACES_HIGH")?;
        match slot {
            Some(s) => hash.insert(ifindex, s, 0).map_err(map_err("IFACES_HIGH")),
            None => match hash.remove(&ifindex) {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
                Err(e) => Err(map_err("IFACES_HIGH")(e)),
            },
        }
    }
}

/// Zeroes every counter of the slots at positions `slots` in the per-CPU array `name`.
fn zero<V: aya::Pod + Default>(
    dp: &mut Datapath,
    name: &'static str,
    slots: &[usize],
    cpus: usize,
) -> Result<(), ProbeError> {
    let n_classes = dp.n_classes;
    let mut array: PerCpuArray<&mut MapData, V> = open_map_mut(&mut dp.ebpf, name)?;
    for &i in slots {
        for direction in 0..DIRECTIONS {
            for class in 0..n_classes {
                let idx = counter_index(i as u32 + 1, direction, class, n_classes);
                let zeros = PerCpuValues::try_from(vec![V::default(); cpus])
                    .map_err(|e| map_err(name)(aya::maps::MapError::from(e)))?;
                array.set(idx, zeros, 0).map_err(map_err(name))?;
            }
        }
    }
    Ok(())
}
