//! What the drop probe on `kfree_skb` shares with user space: the kernel facts the loader reads
//! from BTF and hands over at load time, the keys and slots of the exact drop counters, the
//! per-flow counts (their cache and the flow table's filter, in `flow_cache`), and the sampled
//! event sent through the ring buffer. Every count of drops the probe keeps is per CPU, summed
//! in user space: no drop waits on another CPU's cache line.

use crate::packet::{AddrWords, Headers, L3, Seen};

mod flow_cache;
#[cfg(feature = "user")]
mod user;

pub use flow_cache::*;

/// Bytes of each dropped packet copied for parsing and for the pcap file: room for outer
/// Ethernet, IP and UDP, VXLAN, and the inner Ethernet, IP and TCP with options. A power of two:
/// the kernel reader masks offsets with `CAPTURE - 1`.
pub const CAPTURE: usize = 256;
/// Room after the copied bytes, so a header read at any masked offset stays inside the buffer
/// as far as the verifier can tell (no header the parser reads is longer).
pub const CAPTURE_SLACK: usize = 64;

/// Indexes of the per-CPU drop statistics.
pub const STAT_EVENTS_LOST: u32 = 0;
pub const STAT_EVENTS_SUPPRESSED: u32 = 1;
pub const STAT_UNCOUNTED: u32 = 2;
/// Drops counted in the totals whose flow the flow table had no room for.
pub const STAT_UNTRACKED: u32 = 3;
pub const STATS_LEN: u32 = 4;

/// Per-CPU counter slots ([`DropSlot`]), found by a hash of the key, and how many slots a key
/// may try before it goes to the hash table of [`DROP_KEYS`] entries.
pub const DROP_SLOTS: u32 = 256;
pub const DROP_SLOT_PROBES: u32 = 4;
/// Entries of the drop counter hash table (keys the slots had no room for) and of the
/// per-flow table.
pub const DROP_KEYS: u32 = 8192;
pub const DROP_FLOWS: u32 = 16384;

/// The most bytes of an `sk_buff` the probe reads in one go (the fields it needs lie within
/// this on every kernel), and of a `net_device` (its `ifindex` and `nd_net`, where they are
/// this close; else two reads).
pub const SKB_WINDOW: u32 = 256;
pub const DEV_WINDOW: u32 = 64;
/// Ring buffer for drop events.
pub const EVENTS_BYTES: u32 = 4 << 20;

/// Parts of the drop probe beyond counting per (place, interface, reason, class), as bits of
/// [`DropConfig::parts`]. tracer runs them all; the benchmark switches them on one at a time to
/// show what each costs a dropping sender.
pub const DROP_PART_FLOWS: u32 = 1;
/// Sampled events (with the budgets that bound them).
pub const DROP_PART_EVENTS: u32 = 2;
/// Decoding the inner frame of VXLAN packets (the second stage).
pub const DROP_PART_INNER: u32 = 4;
pub const DROP_PARTS_ALL: u32 = DROP_PART_FLOWS | DROP_PART_EVENTS | DROP_PART_INNER;

/// A tracepoint argument the running kernel does not pass.
pub const NO_ARG: u32 = u32::MAX;

/// How the drop probe hooks `kfree_skb`, from the cheapest a drop storm pays for. A BTF
/// tracepoint program (5.5+) is told the types of the tracepoint's arguments, so it reads the
/// `sk_buff`, its device and its socket by plain loads; a raw tracepoint program sees numbers
/// and copies them with helper calls. With `bpf_rdonly_cast` (6.2+) the BTF program also reads
/// the packet's headers where they lie, and copies the packet only for an event or a VXLAN
/// inner frame. The loader tries them in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropHook {
    /// BTF tracepoint reading the packet in place.
    BtfPeek,
    /// BTF tracepoint copying the packet's first bytes.
    Btf,
    /// Raw tracepoint copying the `sk_buff` fields and the packet's first bytes.
    Raw,
}

impl DropHook {
    /// Every hook, the loader's preference first.
    pub const ALL: [DropHook; 3] = [DropHook::BtfPeek, DropHook::Btf, DropHook::Raw];

    /// What the hook is called, for messages.
    pub const fn name(self) -> &'static str {
        match self {
            DropHook::BtfPeek => "BTF tracepoint reading packets in place",
            DropHook::Btf => "BTF tracepoint",
            DropHook::Raw => "raw tracepoint",
        }
    }
}

/// The drop probe's entry program for a `kfree_skb` tracepoint with `n` arguments: (skb,
/// location) before 5.17, (skb, location, reason) up to 6.9, (skb, location, reason, rx_sk)
/// since 6.10. A program may not read past the arguments the kernel gives it, so each count
/// has its own program. `bpf_rdonly_cast` came with 6.2, so reading in place needs 3 or 4.
pub const fn drop_program(n: u32, hook: DropHook) -> Option<&'static str> {
    match (n, hook) {
        (3, DropHook::BtfPeek) => Some("kfree_skb_peek_3"),
        (4, DropHook::BtfPeek) => Some("kfree_skb_peek_4"),
        (2, DropHook::Btf) => Some("kfree_skb_btf_2"),
        (3, DropHook::Btf) => Some("kfree_skb_btf_3"),
        (4, DropHook::Btf) => Some("kfree_skb_btf_4"),
        (2, DropHook::Raw) => Some("kfree_skb_2"),
        (3, DropHook::Raw) => Some("kfree_skb_3"),
        (4, DropHook::Raw) => Some("kfree_skb_4"),
        _ => None,
    }
}

/// The drop probe's second stage (VXLAN inner frames), reached by tail call: it has to be of
/// the entry program's type and hook.
pub const fn drop_inner_program(hook: DropHook) -> &'static str {
    match hook {
        DropHook::BtfPeek | DropHook::Btf => "kfree_skb_btf_inner",
        DropHook::Raw => "kfree_skb_inner",
    }
}

/// The call instruction of `bpf_rdonly_cast` in the programs that read packets in place: a
/// kernel function call (`BPF_PSEUDO_KFUNC_CALL`) whose target, the function's BTF id in the
/// running kernel, the loader writes over [`PEEK_CALL_IMM`] before loading the object.
pub const PEEK_CALL_INSN: u64 = 0x7ace_0001_0000_2085;
/// The placeholder target of [`PEEK_CALL_INSN`], unique in the object.
pub const PEEK_CALL_IMM: u32 = 0x7ace_0001;
/// The most bytes one read of a packet in place takes: the kernel checks each read against the
/// type the address is cast to, whose first member is an array this long at least.
pub const PEEK_BYTES: u32 = 64;

/// Kernel facts for the drop probe, all read from the running kernel's BTF by the loader:
/// no struct offset is written into the program. Offsets are from the start of their struct;
/// the probe reads `skb_window_len` bytes of the `sk_buff` from `skb_window` in one call and
/// takes the `skb_*` fields from that copy, and likewise the `net_device` when
/// `dev_window_len` is not 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropConfig {
    pub skb_window: u32,
    /// At most [`SKB_WINDOW`].
    pub skb_window_len: u32,
    pub skb_head: u32,
    pub skb_tail: u32,
    pub skb_len: u32,
    pub skb_mac_header: u32,
    pub skb_network_header: u32,
    pub skb_protocol: u32,
    pub skb_dev: u32,
    pub skb_sk: u32,
    pub dev_window: u32,
    /// At most [`DEV_WINDOW`]; 0 when `ifindex` and `nd_net` are too far apart for one read.
    pub dev_window_len: u32,
    pub dev_ifindex: u32,
    pub dev_nd_net: u32,
    pub sk_net: u32,
    pub net_inum: u32,
    /// Inode number of the network namespace whose drops are kept.
    pub netns_inum: u32,
    /// Positions of `reason` and `location` among the raw tracepoint's arguments; `reason_arg`
    /// is [`NO_ARG`] on kernels whose tracepoint has no reason (before 5.17).
    pub reason_arg: u32,
    pub location_arg: u32,
    /// The reason counted when the tracepoint passes none.
    pub reason_if_absent: u32,
    /// Reasons up to this value are not drops (SKB_NOT_DROPPED_YET, SKB_CONSUMED).
    pub not_a_drop: u32,
    /// Events per flow and reason per second on each CPU; the rest are counted, not sent.
    pub events_per_flow: u32,
    /// Events per CPU per second over all flows: a storm of many flows costs no more.
    pub events_per_cpu: u32,
    /// Zero until the loader fills the struct: the probe does nothing before.
    pub ready: u32,
    /// Which parts run (`DROP_PART_*`); [`DROP_PARTS_ALL`] but in the benchmark.
    pub parts: u32,
    /// The BTF id of the struct that packet bytes are read as when read in place (its first
    /// member an array of at least [`PEEK_BYTES`]); 0 where the kernel has none.
    pub peek_type: u32,
}

const _: () = assert!(core::mem::size_of::<DropConfig>() == 104);

/// Exact drop count per interface, class, reason and place: the kernel's reason alone does not
/// always say what happened (an ICMP echo reply freed as `NO_SOCKET` after ping's raw socket
/// took its copy, a `NOT_SPECIFIED` drop in `ip_fragment`), where it happened does.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DropKey {
    /// The kernel address that dropped it (the tracepoint's `location`); 0 when unknown.
    pub location: u64,
    pub ifindex: u32,
    pub reason: u32,
    pub class: u8,
    pub _reserved: [u8; 7],
}

const _: () = assert!(core::mem::size_of::<DropKey>() == 24);

const _: () = assert!(core::mem::align_of::<DropKey>() == 8);

impl DropKey {
    /// The key of these fields as the three words it is made of (`repr(C)`, padding zero), to
    /// build, compare and hash it a word at a time: the probe never copies or compares it
    /// bytewise, which LLVM's BPF backend does in a loop of single bytes.
    #[inline(always)]
    pub const fn words_of(location: u64, ifindex: u32, reason: u32, class: u8) -> [u64; 3] {
        // The second word holds `ifindex` then `reason`, the third `class` then zeros, in
        // memory order.
        if cfg!(target_endian = "little") {
            [
                location,
                ifindex as u64 | (reason as u64) << 32,
                class as u64,
            ]
        } else {
            [
                location,
                (ifindex as u64) << 32 | reason as u64,
                (class as u64) << 56,
            ]
        }
    }

    /// The key as three words (aligned reads: a `DropKey` is 8-aligned).
    #[inline(always)]
    pub fn words(&self) -> [u64; 3] {
        let p = core::ptr::from_ref(self).cast::<u64>();
        // SAFETY: 24 bytes of plain integers (size and alignment asserted) read as three u64s.
        unsafe { [p.read(), p.add(1).read(), p.add(2).read()] }
    }

    /// The key made of `words` (see [`DropKey::words_of`]), in place: a reference to them.
    #[inline(always)]
    pub fn from_words(words: &[u64; 3]) -> &DropKey {
        // SAFETY: same size and alignment (asserted), and every bit pattern is a valid key.
        unsafe { &*core::ptr::from_ref(words).cast::<DropKey>() }
    }
}

/// One per-CPU counter slot: a key and its drops on that CPU. A slot is taken once, by the
/// first drop of its key on that CPU, and then counts that key for good (its key never
/// changes); `count` comes first and is 0 in a free slot, so a reader that sees a count sees
/// the key written before it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropSlot {
    pub count: u64,
    pub key: DropKey,
}

const _: () = assert!(core::mem::size_of::<DropSlot>() == 32);

/// One endpoint pair: protocol, ports and addresses (IPv4 in the first four bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flow {
    pub family: u8,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    pub _reserved: u16,
    pub src: [u8; 16],
    pub dst: [u8; 16],
}

const _: () = assert!(core::mem::size_of::<Flow>() == 40);

/// Words of a [`Flow`].
pub const FLOW_WORDS: usize = size_of::<Flow>() / 8;

impl Flow {
    /// The flow of a packet the parser's shortcut read ([`crate::packet::quick_ip`]): the same
    /// as [`Flow::of`] its headers. Put together as the words of its memory, the addresses as
    /// they came, so that storing it is a few word stores.
    #[inline(always)]
    pub fn quick(seen: Seen, l3: L3, addrs: AddrWords) -> Self {
        let [s0, s1] = seen.sport.to_ne_bytes();
        let [d0, d1] = seen.dport.to_ne_bytes();
        let head = u64::from_ne_bytes([l3.family, seen.proto, s0, s1, d0, d1, 0, 0]);
        Flow::from_words([head, addrs[0], addrs[1], addrs[2], addrs[3]])
    }

    /// The flow whose bytes are `words`, in memory order (as [`FlowKey::from_words`]).
    #[inline(always)]
    pub fn from_words(words: [u64; FLOW_WORDS]) -> Self {
        let mut bytes = [0u8; size_of::<Flow>()];
        for (chunk, w) in bytes.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&w.to_ne_bytes());
        }
        // SAFETY: same size; every bit pattern is a valid Flow (integers and byte arrays).
        unsafe { core::mem::transmute::<[u8; size_of::<Flow>()], Flow>(bytes) }
    }

    /// The flow's bytes as words, in memory order (as [`FlowKey::words`]): what the probe
    /// stores a word at a time. Put together from bytes, the shape the benchmark measured:
    /// read as whole words, LLVM compiles the probe differently.
    #[inline(always)]
    pub fn words(&self) -> [u64; FLOW_WORDS] {
        // SAFETY: same size; a Flow is plain integers and byte arrays, no padding.
        let bytes = unsafe { core::mem::transmute::<Flow, [u8; size_of::<Flow>()]>(*self) };
        let mut words = [0u64; FLOW_WORDS];
        for (w, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *w = u64::from_ne_bytes(b);
        }
        words
    }

    #[inline(always)]
    pub fn of(h: &Headers) -> Self {
        Flow {
            family: h.family,
            proto: h.proto,
            sport: h.sport,
            dport: h.dport,
            _reserved: 0,
            src: h.src,
            dst: h.dst,
        }
    }
}

/// A dropped flow: where, why, and the outer and (for VXLAN) inner endpoints.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub ifindex: u32,
    pub reason: u32,
    /// VXLAN network identifier; zero without an inner frame.
    pub vni: u32,
    pub class: u8,
    pub inner_class: u8,
    /// 1 when `inner` holds a decoded inner frame.
    pub has_inner: u8,
    pub _reserved: u8,
    pub outer: Flow,
    pub inner: Flow,
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == 96);

// Both flows lie on word boundaries of the key, so the probe stores them a word at a time.
const _: () = assert!(
    core::mem::offset_of!(FlowKey, outer) % 8 == 0
        && core::mem::offset_of!(FlowKey, inner) % 8 == 0
);

impl FlowKey {
    /// The key whose bytes are `words`, in memory order.
    #[inline(always)]
    pub fn from_words(words: [u64; FLOW_KEY_WORDS]) -> FlowKey {
        // SAFETY: same size (asserted); every bit pattern is a valid key.
        unsafe { core::mem::transmute::<[u64; FLOW_KEY_WORDS], FlowKey>(words) }
    }

    /// The key's bytes as words, in memory order (the probe reads them in place instead).
    pub fn words(&self) -> [u64; FLOW_KEY_WORDS] {
        // SAFETY: 96 bytes of plain integers (size asserted) read as twelve u64s; unaligned
        // reads, a FlowKey is only 4-aligned.
        unsafe {
            core::ptr::from_ref(self)
                .cast::<[u64; FLOW_KEY_WORDS]>()
                .read_unaligned()
        }
    }

    /// The key's [`flow_cache_head_of`].
    pub fn head(&self) -> u64 {
        let w = self.words();
        flow_cache_head_of(|i| w[i])
    }
}

/// A flow's drops on one CPU, with the events that CPU sent for it in its current event
/// window (`window`, the CPU's window number).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCount {
    pub count: u64,
    pub window: u32,
    pub events: u32,
}

const _: () = assert!(core::mem::size_of::<FlowCount>() == 16);

/// Words of a [`FlowKey`].
pub const FLOW_KEY_WORDS: usize = core::mem::size_of::<FlowKey>() / 8;

const _: () = assert!(core::mem::align_of::<FlowKey>() <= 8 && FLOW_KEY_WORDS * 8 == 96);

/// A sampled drop, with the first bytes of the packet.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DropEvent {
    /// CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// Address of the kernel function that dropped the packet.
    pub location: u64,
    pub key: FlowKey,
    /// Length of the whole packet (skb->len).
    pub len: u32,
    /// Bytes of `data` that hold packet bytes.
    pub cap_len: u16,
    /// 1 when `data` starts with an Ethernet header, 0 when at the IP header.
    pub l2: u8,
    pub _reserved: u8,
    /// The packet's ethertype (skb->protocol), host order.
    pub protocol: u16,
    /// Where the inner Ethernet frame of a VXLAN packet starts in `data` (0: none).
    pub inner_off: u16,
    pub _reserved2: [u8; 4],
    pub data: [u8; CAPTURE + CAPTURE_SLACK],
}

const _: () = assert!(core::mem::size_of::<DropEvent>() == 448);
// The probe zeroes the key in place a word at a time.
const _: () = assert!(core::mem::align_of::<DropEvent>() == 8);
const _: () = assert!(core::mem::offset_of!(DropEvent, key).is_multiple_of(8));
const _: () = assert!(core::mem::size_of::<FlowKey>().is_multiple_of(8));

/// The drop probe's own state on one CPU: the address of the tracer's `struct net` once a
/// drop on this CPU showed it (0 before), the event window, and the statistics (`STAT_*`).
/// It heads the CPU's scratch space ([`DropScratch`]), whose first cache line every drop
/// touches anyway: a map of its own would cost a drop two more lines (the map's per-CPU
/// pointer and the value).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCpuState {
    pub our_net: u64,
    /// When the event window started (`bpf_ktime_get_ns`).
    pub window_start_ns: u64,
    /// The jiffies at which the window looks at the clock again.
    pub window_check_at: u64,
    /// Counts the windows, so that a flow's budget knows when it is a new one.
    pub window_number: u32,
    /// Events sent in this window.
    pub window_events: u32,
    pub stats: [u64; STATS_LEN as usize],
}

const _: () = assert!(core::mem::size_of::<DropCpuState>() == 64);

/// What one probe run works in, on its CPU: the event being assembled, then the state that
/// outlives the run and the copied `sk_buff` and `net_device` fields (with room for a field at
/// any masked offset); too big for the BPF stack. The event comes first: every drop writes and
/// reads its key, and its fields within the first 128 bytes are each one short instruction
/// for the x86 JIT (an 8-bit displacement; beyond, a 32-bit one, three bytes more each).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DropScratch {
    pub ev: DropEvent,
    pub state: DropCpuState,
    pub skb: [u8; SKB_WINDOW as usize + 8],
    pub dev: [u8; DEV_WINDOW as usize + 8],
}

const _: () = assert!(core::mem::size_of::<DropScratch>() == 64 + 264 + 72 + 448);
const _: () = assert!(core::mem::offset_of!(DropScratch, ev) == 0);
// The key and the fields after it, up to `data`, lie within the first 128 bytes.
const _: () = assert!(core::mem::offset_of!(DropEvent, data) <= 128);

#[cfg(test)]
mod tests;
