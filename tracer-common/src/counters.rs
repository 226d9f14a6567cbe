//! Layout of the datapath counters: which interface slot a packet's device maps to, and the
//! per-CPU arrays indexed by (slot, direction, class): packet and byte counts with a packet-size
//! histogram for the packets' own class, packet and byte counts for the inner class of overlay
//! packets.

#[cfg(feature = "user")]
mod user;

pub const DIR_INGRESS: u32 = 0;
pub const DIR_EGRESS: u32 = 1;
pub const DIRECTIONS: u32 = 2;

/// Interfaces whose index is below this are found in an array (one load); the rest in a hash.
pub const IFACE_ARRAY_LEN: u32 = 4096;
/// Interfaces one tracer can watch at once (pod veths on a busy node: thousands).
pub const MAX_IFACES: u32 = 4096;

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

/// Packets, bytes and packets per size bucket (`SIZE_BOUNDS`), as counted on one CPU: the
/// datapath's counter of a packet's own class. The histogram sits in the counter's own entry,
/// so one lookup serves all three.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SizedCounter {
    pub packets: u64,
    pub bytes: u64,
    pub sizes: [u64; SIZE_BUCKETS],
}

const _: () = assert!(core::mem::size_of::<SizedCounter>() == 16 + 8 * SIZE_BUCKETS);

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

/// Index of a second stage (inner-frame decoding) in its program array, and the size of such an
/// array. Each kind of entry program has an array of its own (tc, XDP, the drop probe), since
/// the kernel ties a program array to one program type.
pub const STAGE_INNER: u32 = 0;
pub const STAGES: u32 = 1;

/// What the datapath's entry program hands its inner-frame stage: the counter to add the
/// inner packet to (its class filled in there) and where the inner frame starts.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InnerJob {
    pub slot: u32,
    pub dir: u32,
    /// Offset of the inner Ethernet header.
    pub off: u32,
    pub _reserved: u32,
    pub packets: u64,
    pub bytes: u64,
}

const _: () = assert!(core::mem::size_of::<InnerJob>() == 32);

/// Upper bounds (bytes, inclusive) of the packet-size buckets; the last bucket has no bound.
/// Ethernet minimum, powers of two, the 1518-byte standard frame, a 9018-byte jumbo frame.
pub const SIZE_BOUNDS: [u32; SIZE_BUCKETS - 1] = [64, 128, 256, 512, 1024, 1518, 9018];
pub const SIZE_BUCKETS: usize = 8;

// The datapath indexes the histogram with `bucket & (SIZE_BUCKETS - 1)`: a mask, not a bounds
// check, only while this is a power of two.
const _: () = assert!(SIZE_BUCKETS.is_power_of_two());

/// The bucket of a packet of `len` bytes.
#[inline(always)]
pub fn size_bucket(len: u64) -> u32 {
    let mut b = 0;
    while b < SIZE_BUCKETS - 1 && len > u64::from(SIZE_BOUNDS[b]) {
        b += 1;
    }
    b as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_inclusive_upper_bounds() {
        assert_eq!(size_bucket(60), 0);
        assert_eq!(size_bucket(64), 0);
        assert_eq!(size_bucket(65), 1);
        assert_eq!(size_bucket(1518), 5);
        assert_eq!(size_bucket(1519), 6);
        assert_eq!(size_bucket(65_000), 7);
    }
}
