//! User-space side of the class tables: lets aya copy them into maps.

use super::PortClasses;

// SAFETY: repr(C), four u8 fields, no padding; every bit pattern is valid.
unsafe impl aya::Pod for PortClasses {}
