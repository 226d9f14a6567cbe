//! The probe's exact counts, all per CPU and summed by the reader: drops per (place,
//! interface, reason, class) in slots found by a hash of the key (a hash table takes the keys
//! the slots have no room for), and drops per flow in a per-CPU cache of flows, direct-mapped
//! by a hash of the key, and a per-CPU hash table for the drops whose cache entry another flow
//! holds. The cache spares a storm of few flows the table's hashing of the whole 96-byte key,
//! most of what counting a flow cost.
//!
//! User space frees the cache entries of flows that went quiet, without losing a count: it
//! asks (`RETIRE_ASKED`), the next run on that CPU that looks at the entry answers
//! (`RETIRE_DONE`) and from then on counts elsewhere, and only then does user space take the
//! entry's count and free it. Runs on one CPU are one at a time, so when the answer is written
//! every count in the entry has been.
//!
//! The flow table admits a flow while it has room and never evicts one, so the count of every
//! flow in it is exact; the reader frees the room of flows that went quiet (it takes their last
//! count as it deletes them). A drop whose flow finds no room is counted in the totals and in
//! `STAT_UNTRACKED`, and the full table is not tried again for a while. In front of the table
//! a filter (`DROP_FLOW_FILTER`) counts the flows it holds per slot of a hash, with the sum of
//! their fingerprints, so a drop of a flow the table does not hold, nearly every drop of a
//! storm over more flows than it has room for, seldom pays for hashing and comparing its key
//! there: only when its slot counts two flows or more, or one with its own fingerprint.

use aya_ebpf::{
    bindings::{BPF_F_MMAPABLE, BPF_NOEXIST},
    helpers::generated::bpf_jiffies64,
    macros::map,
    maps::{Array, PerCpuArray, PerCpuHashMap},
};
use tracer_common::drops::{
    DROP_FLOW_CACHE_PER_CPU, DROP_FLOWS, DROP_KEYS, DROP_SLOT_PROBES, DROP_SLOTS, DropKey,
    DropSlot, FLOW_KEY_WORDS, FlowCacheEntry, FlowCount, FlowKey, OUTER_KEY_WORDS, RETIRE_ASKED,
    RETIRE_DONE, RETIRE_NONE, STAT_UNCOUNTED, STAT_UNTRACKED, flow_cache_head_of, flow_cache_index,
    flow_filter_index, flow_filter_may_hold, flow_filter_term, flow_key_has_inner,
};

use super::stat;
use crate::words::with_zeroed;

/// Exact drops per key: the slots, each CPU's `DROP_SLOTS` in turn (sized by the loader for the
/// CPUs the kernel may have), mapped into user space. A plain array indexed by CPU rather than
/// a per-CPU one: its entry is at a fixed place, without the load of a per-CPU pointer.
#[map]
static DROP_SLOT_COUNTS: Array<DropSlot> = Array::with_max_entries(DROP_SLOTS, BPF_F_MMAPABLE);

/// Exact drops per key the slots had no room for.
#[map]
static DROPS: PerCpuHashMap<DropKey, u64> = PerCpuHashMap::with_max_entries(DROP_KEYS, 0);

/// Exact drops per flow, with each CPU's event budget for the flow.
#[map]
static DROP_FLOW_COUNTS: PerCpuHashMap<FlowKey, FlowCount> =
    PerCpuHashMap::with_max_entries(DROP_FLOWS, 0);

/// The flow cache: each CPU's `DROP_FLOW_CACHE_PER_CPU` entries in turn, sized by the loader
/// for the CPUs the kernel may have; mapped into user space.
#[map]
static DROP_FLOW_CACHE: Array<FlowCacheEntry> =
    Array::with_max_entries(DROP_FLOW_CACHE_PER_CPU, BPF_F_MMAPABLE);

/// The flow table's filter, `tracer_common::drops::DROP_FLOW_FILTER` slots (the loader sizes
/// it), shared by every CPU and mapped into user space, which takes one from a slot after it
/// takes a flow out of the table.
#[map]
static DROP_FLOW_FILTER_SLOTS: Array<u64> = Array::with_max_entries(1, BPF_F_MMAPABLE);

const HEAD_WORD: usize = FlowCacheEntry::HEAD_WORD;
const KEY_WORD: usize = FlowCacheEntry::KEY_WORD;
const COUNT_WORD: usize = FlowCacheEntry::COUNT_WORD;
const RETIRE_WORD: usize = FlowCacheEntry::RETIRE_WORD;

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

/// Counts one drop of the key made of `words` ([`DropKey::words_of`]) on `cpu`, this CPU.
#[inline(always)]
pub fn count_drop(cpu: u32, words: &[u64; 3]) {
    let first = slot_of(words);
    for i in 0..DROP_SLOT_PROBES {
        let at = cpu * DROP_SLOTS + (first.wrapping_add(i) & (DROP_SLOTS - 1));
        let Some(s) = DROP_SLOT_COUNTS.get_ptr_mut(at) else {
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

/// Counts one drop of the flow `key` on this CPU; its count, or `None` when neither the cache
/// nor the table had room for it (the drop is then counted in `STAT_UNTRACKED`). `key` is
/// 8-aligned (in the event, asserted in tracer-common).
#[inline(always)]
pub fn count_flow(cpu: u32, key: &FlowKey) -> Option<*mut FlowCount> {
    let k = core::ptr::from_ref(key).cast::<u64>();
    // SAFETY: the key is 8-aligned and 12 words long; read a word at a time where it is (a
    // copy would be a bytewise memcpy).
    let word = |i: usize| unsafe { k.add(i).read() };
    let head = flow_cache_head_of(word);
    if let Some(p) = cached(cpu, head, word) {
        return Some(p);
    }
    let filter = DROP_FLOW_FILTER_SLOTS.get_ptr_mut(flow_filter_index(head))?;
    let term = flow_filter_term(head);
    // Every flow in the table added its term to its slot before it went in, and takes it back
    // only once out; so a slot without the flow's term proves the table does not hold it.
    // SAFETY: a slot of the shared filter, valid for the program's run.
    let found = if flow_filter_may_hold(unsafe { core::ptr::read_volatile(filter) }, term) {
        DROP_FLOW_COUNTS.get_ptr_mut(key)
    } else {
        None
    };
    let p = match found {
        Some(p) => p,
        None => admit(key, filter, term)?,
    };
    // SAFETY: this CPU's value, valid for the program's run.
    unsafe { (*p).count += 1 };
    Some(p)
}

/// Adds `n` to a slot of the filter (wrapping: `n.wrapping_neg()` takes `n` back), atomically,
/// as user space and other CPUs change it too. The old value is not used, so this is the plain
/// atomic add that every kernel's verifier takes (a fetching one needs 5.12).
#[inline(always)]
fn filter_add(slot: *mut u64, n: u64) {
    // SAFETY: a slot of the shared filter, valid for the program's run.
    unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
            slot, n,
        )
    };
}

/// Makes an entry for a new flow, if the table has room, adding its `term` to its `filter` slot
/// first.
#[inline(always)]
fn admit(key: &FlowKey, filter: *mut u64, term: u64) -> Option<*mut FlowCount> {
    let retry = FLOW_RETRY.get_ptr_mut(0)?;
    // SAFETY: plain helper call (inlined by the kernel into a load of jiffies).
    let now = unsafe { bpf_jiffies64() };
    // SAFETY: this CPU's value, valid for the program's run.
    if now < unsafe { *retry } {
        stat(STAT_UNTRACKED);
        return None;
    }
    // Before the insert, so that no drop finds the flow in the table and its slot without the
    // flow's term.
    filter_add(filter, term);
    if let Err(e) =
        with_zeroed(|zero: &FlowCount| DROP_FLOW_COUNTS.insert(key, zero, u64::from(BPF_NOEXIST)))
    {
        // Not ours: the entry another CPU made (its add stays), or none.
        filter_add(filter, term.wrapping_neg());
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

/// Counts one drop of the key whose words are `word(i)` and head word `head` in its entry of
/// this CPU's flow cache when the entry is the key's or free (claiming it), and returns the
/// entry's count; `None` when the flow table is to count it: another flow holds the entry, or
/// user space asked for it back.
#[inline(always)]
fn cached(cpu: u32, head: u64, word: impl Fn(usize) -> u64) -> Option<*mut FlowCount> {
    let e = DROP_FLOW_CACHE.get_ptr_mut(cpu * DROP_FLOW_CACHE_PER_CPU + flow_cache_index(head))?;
    let w = e.cast::<u64>();
    // SAFETY: an entry of this CPU's part, written by this CPU's runs one at a time and by user
    // space only as the module comment says; volatile where user space relies on the order.
    unsafe {
        let held = core::ptr::read_volatile(w.add(HEAD_WORD));
        // Equal heads and outer words (word 1 holds `has_inner`) leave the inner words, which
        // differ only between keys with an inner flow: without one, both keys' are 0.
        let same = |words: core::ops::Range<usize>| {
            words.into_iter().all(|i| *w.add(KEY_WORD + i) == word(i))
        };
        if held == head
            && same(0..OUTER_KEY_WORDS)
            && (!flow_key_has_inner(word(1)) || same(OUTER_KEY_WORDS..FLOW_KEY_WORDS))
        {
            let retire = core::ptr::read_volatile(w.add(RETIRE_WORD));
            if retire == RETIRE_NONE {
                (*e).count.count += 1;
                return Some(&raw mut (*e).count);
            }
        } else if held == 0 {
            for i in 0..FLOW_KEY_WORDS {
                core::ptr::write_volatile(w.add(KEY_WORD + i), word(i));
            }
            core::ptr::write_volatile(w.add(COUNT_WORD), 1);
            core::ptr::write_volatile(w.add(COUNT_WORD + 1), 0);
            core::ptr::write_volatile(w.add(RETIRE_WORD), RETIRE_NONE);
            core::ptr::write_volatile(w.add(HEAD_WORD), head);
            return Some(&raw mut (*e).count);
        }
        // Not counted here: if user space asked for the entry, it may have it now.
        if core::ptr::read_volatile(w.add(RETIRE_WORD)) == RETIRE_ASKED {
            core::ptr::write_volatile(w.add(RETIRE_WORD), RETIRE_DONE);
        }
    }
    None
}
