//! User-space side of the drop probe's layouts: aya Pod impls.

use super::{DropConfig, DropKey, FlowKey, FlowState};

// SAFETY: repr(C) structs of integers and byte arrays without implicit padding (sizes asserted).
unsafe impl aya::Pod for DropConfig {}
unsafe impl aya::Pod for DropKey {}
unsafe impl aya::Pod for FlowKey {}
unsafe impl aya::Pod for FlowState {}
