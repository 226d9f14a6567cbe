//! Layout of the datapath counters: which interface slot a packet's device maps to, and the
//! per-CPU array of packet and byte counts indexed by (slot, direction, class).

#[cfg(feature = "user")]
mod user;

pub const DIR_INGRESS: u32 = 0;
pub const DIR_EGRESS: u32 = 1;
pub const DIRECTIONS: u32 = 2;

/// Interfaces whose index is below this are found in an array (one load); the rest in a hash.
pub const IFACE_ARRAY_LEN: u32 = 4096;
/// Interfaces one tracer can watch at once.
pub const MAX_IFACES: u32 = 1024;

/// The device has no link-layer header: packets start at the IP header (WireGuard, tun, ipip).
pub const IFACE_NO_L2: u16 = 1;

/// Where a watched interface's counters live. `slot` counts from 1; 0 means not watched.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfaceSlot {
    pub slot: u16,
    pub flags: u16,
}

const _: () = assert!(core::mem::size_of::<IfaceSlot>() == 4);

/// Packets and bytes, as counted on one CPU (the loader sums the CPUs).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

const _: () = assert!(core::mem::size_of::<Counter>() == 16);

/// Index of the counter for (`slot`, `dir`, `class`) in an array sized
/// `counter_entries(slots, n_classes)`.
#[inline(always)]
pub const fn counter_index(slot: u32, dir: u32, class: u32, n_classes: u32) -> u32 {
    ((slot - 1) * DIRECTIONS + dir) * n_classes + class
}

/// Size of the counter array for `slots` interfaces and `n_classes` classes.
pub const fn counter_entries(slots: u32, n_classes: u32) -> u32 {
    slots * DIRECTIONS * n_classes
}
