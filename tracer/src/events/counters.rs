//! Named counter snapshots and the samples (totals plus rates) computed between two of them.

use std::{collections::BTreeMap, time::Instant};

use tracer_common::counters::DIR_INGRESS;

use tracer_common::counters::SIZE_BUCKETS;

use super::peers::{PeerEntry, PeerKey};
use crate::probes::{ClassTable, CounterRow, Datapath, PeerRow, ProbeError, Target};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn from_raw(d: u32) -> Self {
        if d == DIR_INGRESS {
            Direction::Ingress
        } else {
            Direction::Egress
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// Sort key: interfaces in the order they were given, the packets' own classes before the inner
/// classes of overlay packets, classes in catalog order.
type Key = (usize, Direction, bool, u8);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub iface: String,
    pub direction: Direction,
    pub class: String,
    /// Counts overlay (VXLAN) packets by the class of the packet they carry.
    pub inner: bool,
    pub packets: u64,
    pub bytes: u64,
    /// Packets per size bucket (`tracer_common::counters::SIZE_BOUNDS`); zero for inner rows.
    pub sizes: [u64; SIZE_BUCKETS],
}

#[cfg(test)]
impl Entry {
    /// An entry of eth0's ingress, for the tests of what reads entries.
    pub(crate) fn eth0_ingress(
        class: &str,
        inner: bool,
        packets: u64,
        bytes: u64,
        sizes: [u64; SIZE_BUCKETS],
    ) -> Entry {
        Entry {
            iface: "eth0".into(),
            direction: Direction::Ingress,
            class: class.into(),
            inner,
            packets,
            bytes,
            sizes,
        }
    }
}

/// All counters at one instant.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub at: Instant,
    entries: BTreeMap<Key, Entry>,
    /// Node-to-node traffic per peer.
    peers: BTreeMap<PeerKey, PeerEntry>,
}

impl Snapshot {
    pub fn empty(at: Instant) -> Self {
        Snapshot {
            at,
            entries: BTreeMap::new(),
            peers: BTreeMap::new(),
        }
    }

    /// The counters of `rows` (the packets' own classes) and `inner` (overlay packets by
    /// their inner class).
    pub fn new(
        at: Instant,
        rows: &[CounterRow],
        inner: &[CounterRow],
        targets: &[Option<Target>],
        classes: &ClassTable,
    ) -> Self {
        let entry = |r: &CounterRow, is_inner: bool| {
            let target = targets.get(r.target).and_then(Option::as_ref)?;
            let direction = Direction::from_raw(r.direction);
            let e = Entry {
                iface: target.name.clone(),
                direction,
                class: classes.name(r.class).to_string(),
                inner: is_inner,
                packets: r.packets,
                bytes: r.bytes,
                sizes: r.sizes,
            };
            Some(((r.target, direction, is_inner, r.class), e))
        };
        let entries = rows
            .iter()
            .filter_map(|r| entry(r, false))
            .chain(inner.iter().filter_map(|r| entry(r, true)))
            .collect();
        Snapshot {
            at,
            entries,
            peers: BTreeMap::new(),
        }
    }

    /// The same snapshot with the per-peer counters of `rows`.
    #[must_use]
    pub fn with_peers(
        mut self,
        rows: &[PeerRow],
        targets: &[Option<Target>],
        classes: &ClassTable,
    ) -> Self {
        self.peers = super::peers::entries(rows, targets, classes);
        self
    }

    /// Everything the datapath counts, now.
    pub fn capture(datapath: &Datapath, classes: &ClassTable) -> Result<Self, ProbeError> {
        Ok(Snapshot::new(
            Instant::now(),
            &datapath.counters()?,
            &datapath.inner_counters()?,
            datapath.targets(),
            classes,
        )
        .with_peers(&datapath.peer_counters()?, datapath.targets(), classes))
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Node-to-node traffic per (interface, direction, class, peer).
    pub fn peers(&self) -> impl Iterator<Item = &PeerEntry> {
        self.peers.values()
    }

    /// Totals and rates of every counter of `self`, measured against `before`.
    pub fn since(&self, before: &Snapshot) -> Vec<Sample> {
        let secs = self.at.duration_since(before.at).as_secs_f64();
        self.entries
            .iter()
            .map(|(key, e)| {
                let (p0, b0) = before
                    .entries
                    .get(key)
                    .map_or((0, 0), |b| (b.packets, b.bytes));
                let (dp, db) = (e.packets.saturating_sub(p0), e.bytes.saturating_sub(b0));
                let rate = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
                Sample {
                    entry: e.clone(),
                    new_packets: dp,
                    packets_per_sec: rate(dp),
                    bits_per_sec: rate(db) * 8.0,
                }
            })
            .collect()
    }
}

/// One counter with what changed over the last interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub entry: Entry,
    pub new_packets: u64,
    pub packets_per_sec: f64,
    pub bits_per_sec: f64,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    #[allow(
        clippy::float_cmp,
        reason = "whole counts over a whole number of seconds: the rates are exact in binary"
    )]
    fn rates_over_the_interval() {
        let mut classes = ClassTable::new();
        let api = classes.add_class("kube-apiserver").unwrap();
        let targets = vec![Some(Target {
            name: "eth0".into(),
            index: 2,
            has_l2: true,
            is_virtual: false,
        })];
        let t0 = Instant::now();
        let row = |packets, bytes| CounterRow {
            target: 0,
            direction: 0,
            class: api,
            packets,
            bytes,
            sizes: [0; SIZE_BUCKETS],
        };
        let a = Snapshot::new(t0, &[row(100, 6400)], &[], &targets, &classes);
        let b = Snapshot::new(
            t0 + Duration::from_secs(2),
            &[row(300, 19200)],
            &[],
            &targets,
            &classes,
        );
        let s = b.since(&a);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].entry.class, "kube-apiserver");
        assert_eq!(s[0].entry.direction, Direction::Ingress);
        assert_eq!(s[0].new_packets, 200);
        assert_eq!(s[0].packets_per_sec, 100.0);
        assert_eq!(s[0].bits_per_sec, 12800.0 * 8.0 / 2.0);
    }
}
