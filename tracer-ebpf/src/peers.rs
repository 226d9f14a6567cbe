//! Per-peer counters of node-to-node classes (`tracer_common::peers`): the datapath hands
//! every counted packet here, and those of a class flagged `CLASS_FLAG_PEER` are added to the
//! counter of their peer, the outer destination on egress and the outer source on ingress:
//! in this CPU's entry of the per-peer cache when it holds the peer's key or is free, in the
//! hash table otherwise.

use aya_ebpf::{
    bindings::{BPF_F_MMAPABLE, BPF_F_NO_PREALLOC, BPF_NOEXIST},
    helpers::generated::bpf_get_smp_processor_id,
    macros::map,
    maps::{Array, PerCpuHashMap},
};
use tracer_common::{
    counters::{Counter, DIR_EGRESS},
    packet::{L3, Packet},
    peers::{
        MAX_PEER_KEYS, PEER_CACHE_PER_CPU, PeerCacheEntry, PeerKey, peer_addr, peer_cache_index,
    },
};

use crate::{maps::is_peer_class, words::with_zeroed};

/// 1 to count per peer; the loader sets 0 where the verifier finds the programs too large
/// with it. A read-only global: the verifier knows its value and skips what it turns off.
#[unsafe(no_mangle)]
static COUNT_PEERS: u32 = 1;

/// Packets and bytes per (slot, direction, class, peer), of the packets whose cache entry
/// another key holds. Allocated as peers appear; user space removes the entries of an
/// interface it stops watching.
#[map]
static PEER_COUNTERS: PerCpuHashMap<PeerKey, Counter> =
    PerCpuHashMap::with_max_entries(MAX_PEER_KEYS, BPF_F_NO_PREALLOC);

/// The per-peer cache (`tracer_common::peers::PEER_CACHE_PER_CPU`): each CPU's part in turn,
/// sized by the loader for the CPUs the kernel may have; mapped into user space.
#[map]
static PEER_CACHE: Array<PeerCacheEntry> =
    Array::with_max_entries(PEER_CACHE_PER_CPU, BPF_F_MMAPABLE);

/// Where a packet was counted (slot, direction, class, address family), packed in one
/// register: a BPF function takes at most five arguments.
#[derive(Clone, Copy)]
pub struct PeerAt(u64);

impl PeerAt {
    #[inline(always)]
    fn new(slot: u16, dir: u32, class: u8, family: u8) -> Self {
        PeerAt(
            (u64::from(slot) << 24)
                | (u64::from(dir & 0xff) << 16)
                | (u64::from(class) << 8)
                | u64::from(family),
        )
    }
}

/// Counts a packet (or a GSO super-packet of `packets`) of `class` for its peer, when the
/// class is counted per peer. Inlined into the datapath: the class test and the address
/// read, into registers; the map update is a function of its own ([`add`]).
#[inline(always)]
pub fn count_peer<P: Packet>(
    pkt: &P,
    slot: u16,
    dir: u32,
    class: u8,
    at: L3,
    packets: u64,
    bytes: u64,
) {
    // SAFETY: a global the loader rewrote; volatile, or the compiler folds the default in.
    if unsafe { core::ptr::read_volatile(&COUNT_PEERS) } == 0 {
        return;
    }
    if !is_peer_class(class) {
        return;
    }
    // The datapath parses without addresses; only these packets need one.
    let Some(words) = peer_addr(pkt, at, dir == DIR_EGRESS) else {
        return;
    };
    add(
        words.0,
        words.1,
        PeerAt::new(slot, dir, class, at.family),
        packets,
        bytes,
    );
}

/// Adds to the counter of the peer `lo`/`hi` (its address words) at `at`.
///
/// A function of its own in the program (a BPF-to-BPF call), not inlined: its stack frame,
/// with the key, is gone when it returns, so every path through the map update leaves the
/// caller in the same state and the verifier does not carry them into the rest of the
/// program. Inlined, the 5.10 verifier gave up on the tc program at a million instructions.
#[inline(never)]
fn add(lo: u64, hi: u64, at: PeerAt, packets: u64, bytes: u64) {
    let head = PeerKey::head_word(
        (at.0 >> 24) as u16,
        (at.0 >> 16) as u8,
        (at.0 >> 8) as u8,
        at.0 as u8,
    );
    // SAFETY: a helper without arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let entry = cpu * PEER_CACHE_PER_CPU + peer_cache_index(head, lo, hi);
    if let Some(e) = PEER_CACHE.get_ptr_mut(entry) {
        let w = e.cast::<u64>();
        // SAFETY: an entry of this CPU's part, which only this CPU's programs write (with
        // bottom halves off, one at a time) and user space empties only once no program can
        // count its key; the words are the key's as PeerKey lays them out, then the counter's.
        // Volatile: user space relies on the order of the stores.
        unsafe {
            let held = core::ptr::read_volatile(w);
            if held == head && *w.add(1) == lo && *w.add(2) == hi {
                (*e).counter.packets += packets;
                (*e).counter.bytes += bytes;
                return;
            }
            if held == 0 {
                core::ptr::write_volatile(w.add(1), lo);
                core::ptr::write_volatile(w.add(2), hi);
                core::ptr::write_volatile(w.add(3), packets);
                core::ptr::write_volatile(w.add(4), bytes);
                core::ptr::write_volatile(w, head);
                return;
            }
        }
    }
    // The entry holds another key: the hash table.
    let words = [head, lo, hi];
    // SAFETY: three words are a PeerKey's 24 bytes (its address is `lo` then `hi`, as
    // `addr_bytes` lays them out), aligned beyond its 2 bytes; every bit pattern is a key.
    let key = unsafe { &*words.as_ptr().cast::<PeerKey>() };
    let counter = match PEER_COUNTERS.get_ptr_mut(key) {
        Some(p) => p,
        None => {
            // Another CPU may create it first: NOEXIST then look up, both land in one entry.
            let _ =
                with_zeroed(|zero: &Counter| PEER_COUNTERS.insert(key, zero, BPF_NOEXIST as u64));
            match PEER_COUNTERS.get_ptr_mut(key) {
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
