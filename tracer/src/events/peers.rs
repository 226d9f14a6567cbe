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
    targets: &[Option<Target>],
    classes: &ClassTable,
) -> BTreeMap<PeerKey, PeerEntry> {
    rows.iter()
        .filter_map(|r| {
            let target = targets.get(r.target).and_then(Option::as_ref)?;
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

/// What this node sent one peer and got back from it, for one class, all interfaces together:
/// totals since the start, and what moved in the last interval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerBalance {
    pub peer: IpAddr,
    pub class: String,
    pub out_packets: u64,
    pub in_packets: u64,
    pub out_bytes: u64,
    pub in_bytes: u64,
    /// Packets sent to and received from the peer in the last interval.
    pub new_out: u64,
    pub new_in: u64,
    /// False when at least [`UNANSWERED_MIN`] packets went to the peer in the last interval
    /// and not one came back: the peer's traffic does not come back (which side loses it is
    /// not known from here).
    pub answered: bool,
}

/// Packets sent in one interval, none back, before a peer counts as not answering: a lone
/// datagram (a VXLAN-encapsulated ARP request) proves nothing.
pub const UNANSWERED_MIN: u64 = 3;

/// The balance of every (peer, class) that exchanged traffic, `now` against `before`.
pub fn balances<'a>(
    now: impl Iterator<Item = &'a PeerEntry>,
    before: impl Iterator<Item = &'a PeerEntry>,
) -> Vec<PeerBalance> {
    // (out packets, in packets, out bytes, in bytes), now and before.
    type Sums = BTreeMap<(IpAddr, String), [u64; 4]>;
    let sum = |entries: &mut dyn Iterator<Item = &'a PeerEntry>| {
        let mut sums = Sums::new();
        for e in entries {
            let s = sums.entry((e.peer, e.class.clone())).or_default();
            let (p, b) = match e.direction {
                Direction::Egress => (0, 2),
                Direction::Ingress => (1, 3),
            };
            s[p] += e.packets;
            s[b] += e.bytes;
        }
        sums
    };
    let (now, before) = (sum(&mut { now }), sum(&mut { before }));
    now.into_iter()
        .map(|((peer, class), n)| {
            let b = before
                .get(&(peer, class.clone()))
                .copied()
                .unwrap_or_default();
            let (new_out, new_in) = (n[0].saturating_sub(b[0]), n[1].saturating_sub(b[1]));
            PeerBalance {
                peer,
                class,
                out_packets: n[0],
                in_packets: n[1],
                out_bytes: n[2],
                in_bytes: n[3],
                new_out,
                new_in,
                answered: !(new_out >= UNANSWERED_MIN && new_in == 0),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(direction: Direction, peer: &str, packets: u64) -> PeerEntry {
        PeerEntry {
            iface: "eth0".into(),
            direction,
            class: "calico-vxlan".into(),
            peer: peer.parse().unwrap(),
            packets,
            bytes: packets * 100,
        }
    }

    #[test]
    fn a_peer_that_sends_nothing_back_is_named() {
        let before = [
            entry(Direction::Egress, "10.0.0.2", 10),
            entry(Direction::Ingress, "10.0.0.2", 10),
            entry(Direction::Egress, "10.0.0.3", 10),
            entry(Direction::Ingress, "10.0.0.3", 10),
        ];
        let now = [
            entry(Direction::Egress, "10.0.0.2", 44),
            entry(Direction::Ingress, "10.0.0.2", 10),
            entry(Direction::Egress, "10.0.0.3", 20),
            entry(Direction::Ingress, "10.0.0.3", 19),
        ];
        let b = balances(now.iter(), before.iter());
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].peer.to_string(), "10.0.0.2");
        assert_eq!((b[0].out_packets, b[0].in_packets), (44, 10));
        assert_eq!((b[0].new_out, b[0].new_in), (34, 0));
        assert!(!b[0].answered);
        assert!(b[1].answered);
        // Two packets out and none back: too few to say anything.
        let now = [entry(Direction::Egress, "10.0.0.2", 12)];
        assert!(balances(now.iter(), before[..1].iter())[0].answered);
    }
}
