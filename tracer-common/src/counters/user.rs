//! User-space side of the counter layout: lets aya read and write these through maps.

use super::{Counter, IfaceSlot};

// SAFETY: both are repr(C) plain integers without padding (checked by the size assertions).
unsafe impl aya::Pod for Counter {}
unsafe impl aya::Pod for IfaceSlot {}
