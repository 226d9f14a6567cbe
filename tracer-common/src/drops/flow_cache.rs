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

/// The head word of a flow key's cache entry, the key's word `i` being `word(i)` (the probe
/// reads them where the key is, rather than copying it): a hash of its words, never 0 (0 marks
/// a free entry). Rotations fold the words, one multiplication mixes them.
#[inline(always)]
pub fn flow_cache_head_of(word: impl Fn(usize) -> u64) -> u64 {
    let mut folded = 0u64;
    for i in 0..FLOW_KEY_WORDS {
        folded ^= word(i).rotate_left((i as u32 * 23) % 64);
    }
    folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
}

/// The entry of the key whose head word is `head` within a CPU's part of the cache: the top
/// bits of the hash.
#[inline(always)]
pub fn flow_cache_index(head: u64) -> u32 {
    (head >> (64 - DROP_FLOW_CACHE_PER_CPU.trailing_zeros())) as u32
}

/// Slots of the flow table's filter: each counts the flows in the table whose key hashes to it
/// ([`flow_filter_index`]), so a drop whose slot counts 0 knows, without hashing and comparing
/// its 96-byte key in the table, that the table does not hold its flow. The probe adds one
/// before it inserts a flow (and takes it back if the insert fails); user space takes one
/// after it takes a flow out. A slot is never below the flows the table holds for it.
pub const DROP_FLOW_FILTER: u32 = 65536;

const _: () = assert!(DROP_FLOW_FILTER.is_power_of_two());

/// The filter slot of the key whose head word is `head`: the bits of the hash below those of
/// [`flow_cache_index`], high enough for the multiplication to have mixed every word into them.
#[inline(always)]
pub fn flow_filter_index(head: u64) -> u32 {
    let below_cache = 64 - DROP_FLOW_CACHE_PER_CPU.trailing_zeros();
    (head >> (below_cache - DROP_FLOW_FILTER.trailing_zeros())) as u32 & (DROP_FLOW_FILTER - 1)
}
