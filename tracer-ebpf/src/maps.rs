//! The maps and load-time constants the programs share. The loader sizes the counter array and
//! sets `N_CLASSES` from the profile; nothing here is specific to a profile.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, PerCpuArray, ProgramArray},
};
use tracer_common::{
    classes::{CLASS_OTHER, MAX_CLASSES, PORT_TABLE_LEN, PROTO_TABLE_LEN, PortClasses},
    counters::{Counter, IFACE_ARRAY_LEN, IfaceSlot, InnerJob, MAX_IFACES, STAGES, SizedCounter},
    packet::{IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP},
};

/// Number of classes of the loaded profile, `other` and `malformed` included.
#[unsafe(no_mangle)]
static N_CLASSES: u32 = MAX_CLASSES as u32;

/// 1 when a class is bound to TCP, UDP or SCTP as a protocol: then their packets look up the
/// protocol table like any other's. 0 in every built-in profile, and then they need not.
#[unsafe(no_mangle)]
static PORT_PROTOCOL_CLASSES: u32 = 1;

/// Reads a global the loader rewrote: volatile, or the compiler folds the default in.
#[inline(always)]
pub fn n_classes() -> u32 {
    // SAFETY: a plain read of a static.
    unsafe { core::ptr::read_volatile(&N_CLASSES) }
}

/// Class of each port number, per transport protocol.
#[map]
pub static PORT_CLASSES: Array<PortClasses> = Array::with_max_entries(PORT_TABLE_LEN, 0);

/// Class bound to an IP protocol number (VRRP is protocol 112).
#[map]
pub static PROTO_CLASSES: Array<u8> = Array::with_max_entries(PROTO_TABLE_LEN, 0);

/// The classes flagged `CLASS_FLAG_VXLAN` (decode the inner frame) and `CLASS_FLAG_PEER`
/// (count per peer), a bit per class (there are at most 64): read-only globals the loader
/// sets, so that a class's flags are a shift of a register, not a table lookup on every
/// packet.
#[unsafe(no_mangle)]
static VXLAN_CLASSES: u64 = 0;
#[unsafe(no_mangle)]
static PEER_CLASSES: u64 = 0;

/// Watched interfaces with an index below `IFACE_ARRAY_LEN`, indexed by ifindex.
#[map]
pub static IFACES: Array<IfaceSlot> = Array::with_max_entries(IFACE_ARRAY_LEN, 0);

/// Watched interfaces with a larger index.
#[map]
pub static IFACES_HIGH: HashMap<u32, IfaceSlot> = HashMap::with_max_entries(MAX_IFACES, 0);

/// Packets, bytes and packets per size bucket per (interface slot, direction, class); resized
/// by the loader.
#[map]
pub static COUNTERS: PerCpuArray<SizedCounter> = PerCpuArray::with_max_entries(1, 0);

/// Packets and bytes of overlay packets per (slot, direction, class of the inner packet).
#[map]
pub static INNER_COUNTERS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(1, 0);

/// The tc programs' inner-frame stage, reached by tail call (the loader fills it).
#[map]
pub static TC_STAGES: ProgramArray = ProgramArray::with_max_entries(STAGES, 0);

/// The XDP program's inner-frame stage.
#[map]
pub static XDP_STAGES: ProgramArray = ProgramArray::with_max_entries(STAGES, 0);

/// The job the entry program leaves for its inner-frame stage, on this CPU.
#[map]
pub static INNER_JOB: PerCpuArray<InnerJob> = PerCpuArray::with_max_entries(1, 0);

/// Headers of a socket buffer that lie in its paged data, copied out for the parser (never to
/// the stack: see `readers`).
pub const PAGED_BYTES: usize = 128;

#[map]
pub static PAGED: PerCpuArray<[u8; PAGED_BYTES]> = PerCpuArray::with_max_entries(1, 0);

/// The slot of a watched interface, `None` when the interface is not watched.
#[inline(always)]
pub fn iface(ifindex: u32) -> Option<IfaceSlot> {
    let found = if ifindex < IFACE_ARRAY_LEN {
        IFACES.get(ifindex).copied()
    } else {
        unsafe { IFACES_HIGH.get(&ifindex).copied() }
    };
    found.filter(|s| s.slot != 0)
}

#[inline(always)]
pub fn port_class(port: u16) -> PortClasses {
    PORT_CLASSES.get(port as u32).copied().unwrap_or_default()
}

#[inline(always)]
pub fn proto_class(proto: u8) -> u8 {
    // SAFETY: a plain read of a static the loader rewrote (volatile, as in n_classes).
    let port_protocols = unsafe { core::ptr::read_volatile(&PORT_PROTOCOL_CLASSES) };
    if port_protocols == 0 && matches!(proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP) {
        return CLASS_OTHER;
    }
    PROTO_CLASSES
        .get(proto as u32)
        .copied()
        .unwrap_or(CLASS_OTHER)
}

/// The protocol table's class for `proto`, looked up for every protocol: what the drop probe
/// uses. Its code as [`proto_class`] compiles is refused by 6.12's verifier (a pointer it
/// loses track of in the full parser's paths), and a drop is not where 1 ns matters.
#[inline(always)]
pub fn proto_class_table(proto: u8) -> u8 {
    PROTO_CLASSES
        .get(proto as u32)
        .copied()
        .unwrap_or(CLASS_OTHER)
}

/// Whether `class` is flagged `CLASS_FLAG_VXLAN`.
#[inline(always)]
pub fn is_vxlan_class(class: u8) -> bool {
    // SAFETY: a plain read of a static the loader rewrote (volatile, as in n_classes).
    has_class(unsafe { core::ptr::read_volatile(&VXLAN_CLASSES) }, class)
}

/// Whether `class` is flagged `CLASS_FLAG_PEER`.
#[inline(always)]
pub fn is_peer_class(class: u8) -> bool {
    // SAFETY: as in is_vxlan_class.
    has_class(unsafe { core::ptr::read_volatile(&PEER_CLASSES) }, class)
}

/// Whether `class` is in the set `classes` (bit `class`); class numbers are below 64.
#[inline(always)]
fn has_class(classes: u64, class: u8) -> bool {
    const { assert!(MAX_CLASSES <= 64) };
    (classes >> (class & 63)) & 1 != 0
}
