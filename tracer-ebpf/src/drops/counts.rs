//! The probe's exact counts, all per CPU and summed by the reader: drops per (place,
//! interface, reason, class) in slots found by a hash of the key (a hash table takes the keys
//! the slots have no room for), and drops per flow in a per-CPU hash table.
//!
//! The flow table admits a flow while it has room and never evicts one, so the count of every
//! flow in it is exact; the reader frees the room of flows that went quiet (it takes their last
//! count as it deletes them). A drop whose flow finds no room is counted in the totals and in
//! `STAT_UNTRACKED`, and the full table is not tried again for a while.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::generated::bpf_jiffies64,
    macros::map,
    maps::{PerCpuArray, PerCpuHashMap},
};
use tracer_common::drops::{
    DROP_FLOWS, DROP_KEYS, DROP_SLOT_PROBES, DROP_SLOTS, DropKey, DropSlot, FlowCount, FlowKey,
    STAT_UNCOUNTED, STAT_UNTRACKED,
};

use super::stat;
use crate::words::with_zeroed;

/// Exact drops per key, this CPU's: the slots.
#[map]
static DROP_SLOT_COUNTS: PerCpuArray<DropSlot> = PerCpuArray::with_max_entries(DROP_SLOTS, 0);

/// Exact drops per key the slots had no room for.
#[map]
static DROPS: PerCpuHashMap<DropKey, u64> = PerCpuHashMap::with_max_entries(DROP_KEYS, 0);

/// Exact drops per flow, with each CPU's event budget for the flow.
#[map]
static DROP_FLOW_COUNTS: PerCpuHashMap<FlowKey, FlowCount> =
    PerCpuHashMap::with_max_entries(DROP_FLOWS, 0);

/// The jiffies before which this CPU does not try the full flow table again.
#[map]
static FLOW_RETRY: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// How long a CPU leaves a full flow table alone: a failed insert looks through every CPU's
/// free list.
const RETRY_JIFFIES: u64 = 64;

const EEXIST: i32 = 17;

/// The first slot a key tries: a multiplicative hash of its words.
#[inline(always)]
fn slot_of(w: &[u64; 3]) -> u32 {
    let h =
        (w[0] ^ w[1].rotate_left(29) ^ w[2].rotate_left(47)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 32) as u32
}

/// Counts one drop of the key made of `words` ([`DropKey::words_of`]) on this CPU.
#[inline(always)]
pub fn count_drop(words: &[u64; 3]) {
    let first = slot_of(words);
    for i in 0..DROP_SLOT_PROBES {
        let Some(s) = DROP_SLOT_COUNTS.get_ptr_mut(first.wrapping_add(i) & (DROP_SLOTS - 1)) else {
            break;
        };
        // SAFETY: this CPU's slot, valid for the program's run; no other run writes it. The
        // key is 8-aligned in the slot, so it is read and written as three words.
        unsafe {
            let count = (*s).count;
            let key = (&raw mut (*s).key).cast::<u64>();
            if count == 0 {
                // Key first, then the count that makes the slot taken: volatile stores stay
                // in this order, and x86 makes them visible to a reader in it.
                for (j, w) in words.iter().enumerate() {
                    core::ptr::write_volatile(key.add(j), *w);
                }
                core::ptr::write_volatile(&raw mut (*s).count, 1);
                return;
            }
            if key.read() == words[0]
                && key.add(1).read() == words[1]
                && key.add(2).read() == words[2]
            {
                (*s).count = count + 1;
                return;
            }
        }
    }
    match hashed(DropKey::from_words(words)) {
        // SAFETY: this CPU's value, valid for the program's run.
        Some(p) => unsafe { *p += 1 },
        None => stat(STAT_UNCOUNTED),
    }
}

/// The per-CPU counter of `key` in the hash table, created at zero if needed. Inserting with
/// NOEXIST and looking up again means two racing first drops both land in the same entry.
#[inline(always)]
fn hashed(key: &DropKey) -> Option<*mut u64> {
    if let Some(p) = DROPS.get_ptr_mut(key) {
        return Some(p);
    }
    let _ = DROPS.insert(key, &0, u64::from(BPF_NOEXIST));
    DROPS.get_ptr_mut(key)
}

/// Counts one drop of the flow `key` on this CPU; its entry, or `None` when the table had no
/// room for it (the drop is then counted in `STAT_UNTRACKED`).
#[inline(always)]
pub fn count_flow(key: &FlowKey) -> Option<*mut FlowCount> {
    let p = match DROP_FLOW_COUNTS.get_ptr_mut(key) {
        Some(p) => p,
        None => admit(key)?,
    };
    // SAFETY: this CPU's value, valid for the program's run.
    unsafe { (*p).count += 1 };
    Some(p)
}

/// Makes an entry for a new flow, if the table has room.
#[inline(always)]
fn admit(key: &FlowKey) -> Option<*mut FlowCount> {
    let retry = FLOW_RETRY.get_ptr_mut(0)?;
    // SAFETY: plain helper call (inlined by the kernel into a load of jiffies).
    let now = unsafe { bpf_jiffies64() };
    // SAFETY: this CPU's value, valid for the program's run.
    if now < unsafe { *retry } {
        stat(STAT_UNTRACKED);
        return None;
    }
    if let Err(e) =
        with_zeroed(|zero: &FlowCount| DROP_FLOW_COUNTS.insert(key, zero, u64::from(BPF_NOEXIST)))
    {
        if e != -EEXIST {
            // SAFETY: as above.
            unsafe { *retry = now + RETRY_JIFFIES };
            stat(STAT_UNTRACKED);
            return None;
        }
    }
    let p = DROP_FLOW_COUNTS.get_ptr_mut(key);
    if p.is_none() {
        stat(STAT_UNTRACKED);
    }
    p
}
