//! Node-to-node traffic per peer: the datapath's per-peer counters named (interface,
//! direction, class, peer address), and the drop probe's exact per-flow counts of the same
//! classes added up per peer, class and reason. The peer of a dropped packet is the end of its
//! outer flow that is not one of this node's addresses.

use std::{collections::BTreeMap, net::IpAddr};

use serde::{Deserialize, Serialize};
use tracer_common::{classes::CLASS_FLAG_PEER, drops::FlowKey};

use super::{
    Direction, Reason,
    drops::{Endpoints, Names},
};
use crate::probes::{ClassTable, PeerRow, Target};

/// Packets and bytes one interface exchanged with one peer, cumulative.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerEntry {
    pub iface: String,
    pub direction: Direction,
    pub class: String,
    pub peer: IpAddr,
    pub packets: u64,
    pub bytes: u64,
}

/// Sort key: interface order, direction, class number, peer.
pub(super) type PeerKey = (usize, Direction, u8, IpAddr);

/// The named entries of `rows`, in a stable order.
pub(super) fn entries(
    rows: &[PeerRow],
    targets: &[Target],
    classes: &ClassTable,
) -> BTreeMap<PeerKey, PeerEntry> {
    rows.iter()
        .filter_map(|r| {
            let target = targets.get(r.target)?;
            let direction = Direction::from_raw(r.direction);
            let e = PeerEntry {
                iface: target.name.clone(),
                direction,
                class: classes.name(r.class).to_string(),
                peer: r.peer,
                packets: r.packets,
                bytes: r.bytes,
            };
            Some(((r.target, direction, r.class, r.peer), e))
        })
        .collect()
}

/// Exact drops of one class to or from one peer, for one reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerDrop {
    pub peer: IpAddr,
    pub class: String,
    pub reason: Reason,
    pub count: u64,
}

/// Outer source, outer destination, class, raw reason.
type PairKey = (Option<IpAddr>, Option<IpAddr>, u8, u32);

/// Drops of node-to-node classes per outer address pair, cumulative: fed the growth of each
/// flow's exact count, so flows the kernel's or user space's tables forget keep their share.
#[derive(Debug, Default)]
pub struct PeerDrops {
    pairs: BTreeMap<PairKey, u64>,
}

impl PeerDrops {
    /// Adds `delta` drops of the flow `key` when its outer class is counted per peer.
    pub fn note(&mut self, key: &FlowKey, delta: u64, classes: &ClassTable) {
        let flags = classes
            .flags()
            .get(key.class as usize)
            .copied()
            .unwrap_or(0);
        if delta == 0 || flags & CLASS_FLAG_PEER == 0 {
            return;
        }
        let outer = Endpoints::of(&key.outer);
        *self
            .pairs
            .entry((outer.src, outer.dst, key.class, key.reason))
            .or_default() += delta;
    }

    /// The drops per (peer, class, reason). The peer is the destination when the source is
    /// one of `own` (this node sent it), the source otherwise.
    pub fn totals(&self, names: &Names, own: &[IpAddr]) -> Vec<PeerDrop> {
        let mut by_peer: BTreeMap<(IpAddr, u8, Reason), u64> = BTreeMap::new();
        for ((src, dst, class, reason), count) in &self.pairs {
            let sent = src.is_some_and(|s| own.contains(&s));
            let Some(peer) = (if sent { *dst } else { *src }) else {
                continue;
            };
            let reason = names.reasons.at(*reason, None);
            *by_peer.entry((peer, *class, reason)).or_default() += count;
        }
        by_peer
            .into_iter()
            .map(|((peer, class, reason), count)| PeerDrop {
                peer,
                class: names.classes.name(class).to_string(),
                reason,
                count,
            })
            .collect()
    }
}
