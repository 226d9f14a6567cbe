//! Per-peer counters of node-to-node classes (`tracer_common::peers`): the datapath hands
//! every counted packet here, and those of a class flagged `CLASS_FLAG_PEER` are added to the
//! counter of their peer, the outer destination on egress and the outer source on ingress.

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, BPF_NOEXIST},
    macros::map,
    maps::PerCpuHashMap,
};
use tracer_common::{
    classes::{CLASS_FLAG_PEER, FIRST_CATALOG_CLASS},
    counters::{Counter, DIR_EGRESS},
    packet::{Packet, Seen},
    peers::{MAX_PEER_KEYS, PeerKey, peer_addr},
};

use crate::maps::class_flags;

/// Packets and bytes per (slot, direction, class, peer). Allocated as peers appear; user space
/// removes the entries of an interface it stops watching.
#[map]
static PEER_COUNTERS: PerCpuHashMap<PeerKey, Counter> =
    PerCpuHashMap::with_max_entries(MAX_PEER_KEYS, BPF_F_NO_PREALLOC);

/// Adds a packet (or a GSO super-packet of `packets`) of `class` to its peer's counter, when
/// the class is counted per peer.
#[inline(always)]
pub fn count_peer<P: Packet>(
    pkt: &P,
    slot: u16,
    dir: u32,
    class: u8,
    h: Seen,
    packets: u64,
    bytes: u64,
) {
    // Traffic of no catalog class never is: skip the flags lookup for it.
    if class < FIRST_CATALOG_CLASS || class_flags(class) & CLASS_FLAG_PEER == 0 {
        return;
    }
    // The datapath parses without addresses; only these packets need one.
    let Some(addr) = peer_addr(pkt, h, dir == DIR_EGRESS) else {
        return;
    };
    let key = PeerKey {
        slot,
        dir: dir as u8,
        class,
        family: h.family,
        _reserved: [0; 3],
        addr,
    };
    let counter = match PEER_COUNTERS.get_ptr_mut(&key) {
        Some(p) => p,
        None => {
            // Another CPU may create it first: NOEXIST then look up, both land in one entry.
            let _ = PEER_COUNTERS.insert(&key, &Counter::default(), BPF_NOEXIST as u64);
            match PEER_COUNTERS.get_ptr_mut(&key) {
                Some(p) => p,
                None => return,
            }
        }
    };
    // SAFETY: this CPU's value of a per-CPU map entry, valid for this run; tc and XDP run with
    // bottom halves off, so nothing else on this CPU adds to it meanwhile.
    unsafe {
        (*counter).packets += packets;
        (*counter).bytes += bytes;
    }
}
