//! Zeroing and storing plain structs a word at a time. LLVM merges a run of stores into a
//! `memset` (and compares arrays with `memcmp`), which the BPF backend emits as a call to a loop
//! over single bytes: zeroing a flow key that way took more instructions than the rest of the
//! drop probe. Volatile stores are never merged, so each stays one 8-byte store.

use tracer_common::{counters::Counter, drops::FlowCount};

/// Types of plain integers, 8-aligned and a whole number of words long, for which all zero
/// bits is a valid value.
///
/// # Safety
/// Implemented only for types that are all of that.
pub unsafe trait Words: Sized {}

// SAFETY: two u64s.
unsafe impl Words for Counter {}
// SAFETY: a u64 and two u32s.
unsafe impl Words for FlowCount {}

/// Writes `words` from `p` on, one 8-byte store each (never merged into a `memset`, should
/// they be zero).
///
/// # Safety
/// `p` must be 8-aligned and valid for writes of `N` words.
#[inline(always)]
pub unsafe fn store_words<const N: usize>(p: *mut u64, words: [u64; N]) {
    for (i, w) in words.into_iter().enumerate() {
        // SAFETY: within the N words the caller vouches for.
        unsafe { core::ptr::write_volatile(p.add(i), w) };
    }
}

/// Runs `f` with a `T` whose bytes are all zero, zeroed in place: returned by value, it is
/// copied, and LLVM turns the copy of a known zero back into a `memset`.
#[inline(always)]
pub fn with_zeroed<T: Words, R>(f: impl FnOnce(&T) -> R) -> R {
    const { assert!(align_of::<T>() >= 8 && size_of::<T>() % 8 == 0) };
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    // SAFETY: `v` is 8-aligned and size_of::<T>() / 8 words long (asserted above); all zero is
    // a valid T (`Words`), so it is initialized once every word is written.
    unsafe {
        let p = v.as_mut_ptr().cast::<u64>();
        for i in 0..size_of::<T>() / 8 {
            core::ptr::write_volatile(p.add(i), 0);
        }
        f(v.assume_init_ref())
    }
}
