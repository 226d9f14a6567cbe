//! User-space side of the counter layout: lets aya read and write these through maps.

use super::{Counter, IfaceSlot, SizedCounter};

// SAFETY: repr(C) plain integers without padding (the size assertions check it);
// every bit pattern is a valid value.
unsafe impl aya::Pod for Counter {}
// SAFETY: repr(C) plain integers without padding (the size assertions check it);
// every bit pattern is a valid value.
unsafe impl aya::Pod for SizedCounter {}
// SAFETY: repr(C) plain integers without padding (the size assertions check it);
// every bit pattern is a valid value.
unsafe impl aya::Pod for IfaceSlot {}

/// A counter without a histogram read as one with empty buckets, so both arrays read the same.
impl From<Counter> for SizedCounter {
    fn from(c: Counter) -> Self {
        SizedCounter {
            packets: c.packets,
            bytes: c.bytes,
            ..SizedCounter::default()
        }
    }
}
