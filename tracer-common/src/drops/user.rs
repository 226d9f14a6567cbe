//! User-space side of the drop probe's layouts: aya Pod impls.

use super::{DropConfig, DropKey, DropScratch, FlowCount, FlowKey};

// SAFETY: repr(C) integers and byte arrays without implicit padding (sizes asserted);
// every bit pattern is a valid value.
unsafe impl aya::Pod for DropConfig {}
// SAFETY: repr(C) integers and byte arrays without implicit padding (sizes asserted);
// every bit pattern is a valid value.
unsafe impl aya::Pod for DropKey {}
// SAFETY: repr(C) integers and byte arrays without implicit padding (sizes asserted);
// every bit pattern is a valid value.
unsafe impl aya::Pod for FlowKey {}
// SAFETY: repr(C) integers and byte arrays without implicit padding (sizes asserted);
// every bit pattern is a valid value.
unsafe impl aya::Pod for FlowCount {}
// SAFETY: repr(C) integers and byte arrays without implicit padding (sizes asserted);
// every bit pattern is a valid value.
unsafe impl aya::Pod for DropScratch {}
