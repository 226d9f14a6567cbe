//! Drops as the user reads them: exact totals per (interface, class, reason), exact counts per
//! flow with a bounded number of flows remembered, and sampled events decoded into frames. The
//! probe counts per place too (the function that dropped the packet): a reason is read with
//! what its place tells ([`Reason::at`]), and totals of one reason in places that agree add up.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tracer_common::drops::{DropEvent, DropKey, Flow, FlowKey};

use super::{Reason, Reasons, peers::PeerDrops};
use crate::probes::{ClassTable, DropStats, symbols::KernelSymbols};

/// Flows remembered in user space; beyond this, the least recently changed of those the
/// kernel's table no longer holds are forgotten (the totals stay exact).
pub const MAX_FLOWS: usize = 20_000;

// Every flow the kernel's table holds stays remembered, with room to spare.
const _: () = assert!(MAX_FLOWS > tracer_common::drops::DROP_FLOWS as usize);

/// Names for the numbers the probe reports.
pub struct Names<'a> {
    pub classes: &'a ClassTable,
    pub reasons: &'a Reasons,
    /// Interface name for an index; "-" for none.
    pub iface: &'a dyn Fn(u32) -> String,
    /// The kernel's symbols, to name where a packet was dropped; `None` when the kernel hides
    /// its addresses.
    pub symbols: Option<&'a KernelSymbols>,
}

impl Names<'_> {
    /// The reason of a number, dropped at kernel address `location`.
    fn reason_at(&self, reason: u32, location: u64) -> Reason {
        let function = self.symbols.and_then(|s| s.function(location));
        self.reasons.at(reason, function)
    }
}

/// The function of a `function+0xoffset` place.
fn function_of(place: &str) -> &str {
    place.split_once('+').map_or(place, |(f, _)| f)
}

/// Exact drops on one interface, of one class, for one reason. Serialized as is in the JSON
/// summary of `tracer watch`, the reason with its housekeeping flag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropTotal {
    pub iface: String,
    pub class: String,
    #[serde(flatten, with = "super::reasons::as_fields")]
    pub reason: Reason,
    pub count: u64,
}

/// One endpoint pair, readable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub proto: u8,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub sport: u16,
    pub dport: u16,
}

impl Endpoints {
    pub fn of(f: &Flow) -> Self {
        let addr = |b: &[u8; 16]| -> Option<IpAddr> {
            match f.family {
                4 => Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]).into()),
                6 => Some(Ipv6Addr::from(*b).into()),
                _ => None,
            }
        };
        Endpoints {
            proto: f.proto,
            src: addr(&f.src),
            dst: addr(&f.dst),
            sport: f.sport,
            dport: f.dport,
        }
    }

    pub fn proto_name(&self) -> String {
        tracer_common::protocols::name(self.proto)
            .map_or_else(|| self.proto.to_string(), str::to_string)
    }
}

/// The inner flow of an encapsulated drop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inner {
    pub vni: u32,
    pub class: String,
    pub flow: Endpoints,
}

/// Exact drops of one flow for one reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropFlow {
    pub iface: String,
    pub class: String,
    pub reason: Reason,
    pub flow: Endpoints,
    pub inner: Option<Inner>,
    pub count: u64,
    /// `function+0xoffset` where the kernel dropped it, once a sample told.
    pub location: Option<String>,
}

impl DropFlow {
    fn new(key: &FlowKey, count: u64, location: Option<String>, names: &Names) -> Self {
        DropFlow {
            iface: (names.iface)(key.ifindex),
            class: names.classes.name(key.class).to_string(),
            reason: names
                .reasons
                .at(key.reason, location.as_deref().map(function_of)),
            flow: Endpoints::of(&key.outer),
            inner: (key.has_inner != 0).then(|| Inner {
                vni: key.vni,
                class: names.classes.name(key.inner_class).to_string(),
                flow: Endpoints::of(&key.inner),
            }),
            count,
            location,
        }
    }
}

/// What changed since the last update.
#[derive(Debug, Default)]
pub struct DropChanges {
    pub flows: Vec<DropFlow>,
    pub stats: Option<DropStats>,
}

/// What is remembered of a flow: its count, how the kernel's table holds it, when it last
/// changed, where it was dropped.
#[derive(Default)]
struct Memo {
    /// Every drop of the flow so far: `taken` plus `kernel`.
    count: u64,
    /// The count of the kernel's entry for the flow, as last read.
    kernel: u64,
    /// The last counts of the entries taken out of the kernel's table (to make room there).
    taken: u64,
    round: u64,
    location: Option<String>,
}

/// Cumulative drop state across the run.
#[derive(Default)]
pub struct DropTracker {
    /// By (interface, class, reason, place).
    totals: BTreeMap<(u32, u8, u32, u64), u64>,
    flows: HashMap<FlowKey, Memo>,
    /// Drops of node-to-node classes per outer address pair.
    peers: PeerDrops,
    stats: DropStats,
    round: u64,
}

impl DropTracker {
    /// Takes the probe's current counters, flows (`flows`, the kernel's table as just read,
    /// without the entries then taken out of it: `taken`, with their last counts) and
    /// statistics; returns the flows whose count moved (with cumulative counts) and the
    /// statistics if they moved.
    pub fn update(
        &mut self,
        counters: &[(DropKey, u64)],
        flows: &[(FlowKey, u64)],
        taken: &[(FlowKey, u64)],
        stats: DropStats,
        names: &Names,
    ) -> DropChanges {
        self.round += 1;
        for (k, n) in counters {
            self.totals
                .insert((k.ifindex, k.class, k.reason, k.location), *n);
        }
        let mut changes = DropChanges::default();
        // The kernel never forgets a flow of its own accord: an entry is gone only when it was
        // taken, with its last count, and the flow's next drop starts a new one at zero.
        for (key, last) in taken {
            let memo = self.flows.entry(*key).or_default();
            memo.taken += last;
            memo.kernel = 0;
        }
        for (key, kernel) in flows {
            self.flows.entry(*key).or_default().kernel = *kernel;
        }
        for (key, _) in taken.iter().chain(flows) {
            let Some(memo) = self.flows.get_mut(key) else {
                continue;
            };
            let seen = memo.taken + memo.kernel;
            if seen != memo.count {
                self.peers
                    .note(key, seen.saturating_sub(memo.count), names.classes);
                memo.count = seen;
                memo.round = self.round;
                changes
                    .flows
                    .push(DropFlow::new(key, seen, memo.location.clone(), names));
            }
        }
        if self.flows.len() > MAX_FLOWS {
            // Only flows the kernel's table no longer holds are forgotten: one it still holds
            // would come back at the next read with its whole count, counted again (per peer
            // too). The table holds fewer than MAX_FLOWS, so there are always enough others.
            let resident: HashSet<&FlowKey> = flows.iter().map(|(k, _)| k).collect();
            let mut by_age: Vec<(u64, FlowKey)> = self
                .flows
                .iter()
                .filter(|(k, _)| !resident.contains(k))
                .map(|(k, m)| (m.round, *k))
                .collect();
            by_age.sort_unstable_by_key(|(r, _)| *r);
            for (_, k) in by_age.iter().take(self.flows.len() - MAX_FLOWS) {
                self.flows.remove(k);
            }
        }
        if stats != self.stats {
            self.stats = stats;
            changes.stats = Some(stats);
        }
        changes
    }

    /// The totals per (interface, class, reason): the places of one reason that mean the same
    /// add up, those that do not (delivery in one, loss in another) stay apart.
    pub fn totals(&self, names: &Names) -> Vec<DropTotal> {
        let mut by_reason: BTreeMap<(u32, u8, Reason), u64> = BTreeMap::new();
        for ((ifindex, class, reason, location), count) in &self.totals {
            let reason = names.reason_at(*reason, *location);
            *by_reason.entry((*ifindex, *class, reason)).or_default() += count;
        }
        by_reason
            .into_iter()
            .map(|((ifindex, class, reason), count)| DropTotal {
                iface: (names.iface)(ifindex),
                class: names.classes.name(class).to_string(),
                reason,
                count,
            })
            .collect()
    }

    /// The flows of `flows`, a fresh read of the kernel's table, whose count has not moved
    /// since the last [`DropTracker::update`]: the ones to take out when the table needs room.
    pub fn quiet(&self, flows: &[(FlowKey, u64)]) -> Vec<FlowKey> {
        flows
            .iter()
            .filter(|(k, n)| self.flows.get(k).is_some_and(|m| m.kernel == *n))
            .map(|(k, _)| *k)
            .collect()
    }

    /// Remembers where the kernel dropped a sampled flow.
    pub fn note_sample(&mut self, sample: &DropSample) {
        if let (Some(memo), Some(at)) = (self.flows.get_mut(&sample.key), &sample.location) {
            memo.location = Some(at.clone());
        } else if let Some(at) = &sample.location {
            // Samples can arrive before the flow table is next read.
            self.flows.insert(
                sample.key,
                Memo {
                    round: self.round,
                    location: Some(at.clone()),
                    ..Memo::default()
                },
            );
        }
    }

    /// The `n` flows with the most network drops, most first; sockets tidying up
    /// ([`Reason::is_housekeeping`]) is not network loss and is left out.
    pub fn top_flows(&self, n: usize, names: &Names) -> Vec<DropFlow> {
        let mut all: Vec<(&FlowKey, &Memo)> =
            self.flows.iter().filter(|(_, m)| m.count > 0).collect();
        all.sort_unstable_by_key(|(_, m)| std::cmp::Reverse(m.count));
        all.into_iter()
            .map(|(k, m)| DropFlow::new(k, m.count, m.location.clone(), names))
            .filter(|f| !f.reason.is_housekeeping())
            .take(n)
            .collect()
    }

    pub fn stats(&self) -> DropStats {
        self.stats
    }

    /// Drops of node-to-node classes per peer ([`PeerDrops::totals`]).
    pub fn peer_totals(&self, names: &Names, own: &[IpAddr]) -> Vec<super::peers::PeerDrop> {
        self.peers.totals(names, own)
    }

    pub fn flows_remembered(&self) -> usize {
        self.flows.len()
    }
}

/// A sampled drop with its packet bytes.
#[derive(Clone, Debug)]
pub struct DropSample {
    /// CLOCK_MONOTONIC nanoseconds, as the kernel stamped it.
    pub monotonic_ns: u64,
    pub key: FlowKey,
    pub flow: DropFlow,
    /// `function+0xoffset` where the kernel dropped it.
    pub location: Option<String>,
    /// Length of the whole packet.
    pub len: u32,
    /// The captured bytes, always starting with an Ethernet header (a zero one is put in
    /// front of packets captured from their IP header).
    pub frame: Bytes,
}

/// Decodes one ring-buffer record; `None` for a record of the wrong size.
pub fn decode(record: &[u8], names: &Names) -> Option<DropSample> {
    if record.len() < std::mem::size_of::<DropEvent>() {
        return None;
    }
    // SAFETY: the record holds a whole DropEvent (plain integers and bytes).
    let ev: DropEvent = unsafe { std::ptr::read_unaligned(record.as_ptr().cast()) };
    let data = &ev.data[..(ev.cap_len as usize).min(tracer_common::drops::CAPTURE)];
    let frame = if ev.l2 != 0 {
        Bytes::copy_from_slice(data)
    } else {
        let mut b = BytesMut::with_capacity(14 + data.len());
        b.put_bytes(0, 12);
        b.put_u16(ev.protocol);
        b.put_slice(data);
        b.freeze()
    };
    let location = names.symbols.and_then(|s| s.resolve(ev.location));
    Some(DropSample {
        monotonic_ns: ev.ts_ns,
        key: ev.key,
        flow: DropFlow::new(&ev.key, 1, location.clone(), names),
        location,
        len: ev.len.max(data.len() as u32),
        frame,
    })
}

#[cfg(test)]
mod tests;
