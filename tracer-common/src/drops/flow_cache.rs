//! The per-flow counting structures in front of the probe's flow table: each CPU's flow cache
//! (entries of flows, claimed by the probe and given back through `retire`) and the filter that
//! counts, per slot of the same hash, the flows the table holds (shared by every CPU; it counts
//! flows, not drops, so a drop only reads it). Both are plain arrays mapped into user space and
//! read and written a word at a time.

use super::{FLOW_KEY_WORDS, FlowCount, FlowKey};

/// Entries of the flow cache per CPU: before the flow table, a drop tries one entry of its
/// CPU's part of a plain array, chosen by a hash of its key ([`flow_cache_head_of`]); the flow
/// table takes only the drops whose entry another flow holds.
pub const DROP_FLOW_CACHE_PER_CPU: u32 = 128;

const _: () = assert!(DROP_FLOW_CACHE_PER_CPU.is_power_of_two());

/// [`FlowCacheEntry::retire`]: the entry counts its flow.
pub const RETIRE_NONE: u64 = 0;
/// User space asks for the entry back (its flow went quiet).
pub const RETIRE_ASKED: u64 = 1;
/// The probe saw the request and no run on that CPU counts in the entry any more: its count is
/// final, and user space takes it and frees the entry.
pub const RETIRE_DONE: u64 = 2;

/// One entry of the flow cache: a flow and its drops on the entry's CPU. Only that CPU's
/// probe runs write it (one at a time), except that user space asks for it back through
/// `retire` and, once the probe answered [`RETIRE_DONE`], takes its count and frees it (`head`
/// 0). The probe claims a free entry writing `head` last; user space frees one writing `head`
/// last. So a count is never lost between the two: a drop either finds the entry its own, or
/// goes to the flow table.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCacheEntry {
    /// 0 when free, else the key's [`flow_cache_head_of`].
    pub head: u64,
    pub key: FlowKey,
    pub count: FlowCount,
    /// `RETIRE_*`.
    pub retire: u64,
}

const _: () = assert!(core::mem::size_of::<FlowCacheEntry>() == 128);

/// Where each part of an entry is, in words: the probe and user space read and write entries a
/// word at a time (user space through atomics on its mapping).
impl FlowCacheEntry {
    pub const HEAD_WORD: usize = 0;
    /// The key's first word.
    pub const KEY_WORD: usize = 1;
    /// The count (the first word of `count`).
    pub const COUNT_WORD: usize = Self::KEY_WORD + FLOW_KEY_WORDS;
    pub const RETIRE_WORD: usize = Self::COUNT_WORD + core::mem::size_of::<FlowCount>() / 8;
    /// Words of an entry.
    pub const WORDS: usize = core::mem::size_of::<FlowCacheEntry>() / 8;
}

const _: () = assert!(
    core::mem::offset_of!(FlowCacheEntry, head) == FlowCacheEntry::HEAD_WORD * 8
        && core::mem::offset_of!(FlowCacheEntry, key) == FlowCacheEntry::KEY_WORD * 8
        && core::mem::offset_of!(FlowCacheEntry, count) == FlowCacheEntry::COUNT_WORD * 8
        && core::mem::offset_of!(FlowCacheEntry, retire) == FlowCacheEntry::RETIRE_WORD * 8
);

/// The words of a flow key before its inner flow: all of a key without one that can be
/// nonzero, since the probe builds every key zeroed and only the inner frame's stage fills
/// `inner` (and sets `has_inner`).
pub const OUTER_KEY_WORDS: usize = core::mem::offset_of!(FlowKey, inner) / 8;

/// Where `has_inner` is in the key's word 1.
const HAS_INNER_SHIFT: usize = 8 * (core::mem::offset_of!(FlowKey, has_inner) - 8);

const _: () = assert!(core::mem::offset_of!(FlowKey, has_inner) / 8 == 1);

/// Whether the key whose word 1 is `word1` has an inner flow: if not, its words from
/// [`OUTER_KEY_WORDS`] on are 0, and neither its head nor a comparison need look at them.
#[inline(always)]
pub fn flow_key_has_inner(word1: u64) -> bool {
    (word1 >> HAS_INNER_SHIFT) as u8 != 0
}

/// The head word of a flow key's cache entry, the key's word `i` being `word(i)` (the probe
/// reads them where the key is, rather than copying it): a hash of its words, never 0 (0 marks
/// a free entry). Rotations fold the words, one multiplication mixes them. The inner flow's
/// words count only in a key that has one ([`flow_key_has_inner`]): in any other they are 0,
/// and fold to nothing.
#[inline(always)]
pub fn flow_cache_head_of(word: impl Fn(usize) -> u64) -> u64 {
    let fold = |i: usize| word(i).rotate_left((i as u32 * 23) % 64);
    let mut folded = 0u64;
    for i in 0..OUTER_KEY_WORDS {
        folded ^= fold(i);
    }
    if flow_key_has_inner(word(1)) {
        for i in OUTER_KEY_WORDS..FLOW_KEY_WORDS {
            folded ^= fold(i);
        }
    }
    folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
}

/// The entry of the key whose head word is `head` within a CPU's part of the cache: the top
/// bits of the hash.
#[inline(always)]
pub fn flow_cache_index(head: u64) -> u32 {
    (head >> (64 - DROP_FLOW_CACHE_PER_CPU.trailing_zeros())) as u32
}

/// Slots of the flow table's filter: each holds, for the flows in the table whose key hashes to
/// it ([`flow_filter_index`]), the sum of their terms ([`flow_filter_term`]): their number in
/// the low 16 bits, the sum of their fingerprints above. So a drop whose slot counts no flow, or
/// one flow with another fingerprint, knows without hashing and comparing its 96-byte key in the
/// table that the table does not hold its flow ([`flow_filter_may_hold`]). The probe adds a
/// flow's term before it inserts the flow (and takes it back if the insert fails); user space
/// takes it after it takes the flow out. A slot always includes the terms of the flows the table
/// holds for it.
pub const DROP_FLOW_FILTER: u32 = 65536;

const _: () = assert!(DROP_FLOW_FILTER.is_power_of_two());

/// The bits of a filter slot that count its flows: more than the table holds, and than the
/// flows on their way in besides (one per CPU at most), could ever add up to.
pub const FLOW_FILTER_COUNT_BITS: u32 = 16;

const _: () = assert!(super::DROP_FLOWS < (1 << FLOW_FILTER_COUNT_BITS) / 2);

/// The head word `head` mixed for the filter: the head's high bits folded down and multiplied
/// up, so that every bit of it reaches the top bits (the slot) and the low ones (the
/// fingerprint). The head alone spreads flows that differ only in their keys' high bits
/// poorly (a multiplication carries upwards only); and both steps are invertible, so two keys
/// of different heads never share both a slot and a fingerprint.
#[inline(always)]
fn filter_mix(head: u64) -> u64 {
    (head ^ (head >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

/// The filter slot of the key whose head word is `head`: the top bits of [`filter_mix`].
#[inline(always)]
pub fn flow_filter_index(head: u64) -> u32 {
    (filter_mix(head) >> (64 - DROP_FLOW_FILTER.trailing_zeros())) as u32
}

/// What one flow adds to its filter slot: 1 in the count, and above it a fingerprint, the low
/// bits of [`filter_mix`]. Flows that share a slot share the top bits of the mix, so their
/// fingerprints differ unless their heads are equal.
#[inline(always)]
pub fn flow_filter_term(head: u64) -> u64 {
    (filter_mix(head) << FLOW_FILTER_COUNT_BITS) | 1
}

/// Whether the table may hold the flow whose term is `term`, its filter slot holding `slot`:
/// not when the slot counts no flow, nor when it counts one whose term is another (the flow's
/// own term would be there, and would be the only one). Sums wrap: the count stays below
/// `1 << FLOW_FILTER_COUNT_BITS`, so only the fingerprints' sum, above it, wraps.
#[inline(always)]
pub fn flow_filter_may_hold(slot: u64, term: u64) -> bool {
    match slot & ((1 << FLOW_FILTER_COUNT_BITS) - 1) {
        0 => false,
        1 => slot == term,
        _ => true,
    }
}
