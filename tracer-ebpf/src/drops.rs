//! The drop probe: for every packet the kernel frees as dropped in the tracer's network
//! namespace, count it exactly per (place, interface, reason, class) and per flow, and send a
//! sampled event with the packet's first bytes. Reads of kernel structures use offsets the
//! loader took from the running kernel's BTF.
//!
//! A drop storm is when an operator runs this, so each drop costs as few helper calls as it
//! can. As a BTF tracepoint (the loader's choice where the kernel takes it) the probe reads
//! the `sk_buff`, its device and its socket by plain loads, which the verifier checks against
//! the kernel's BTF and the JIT guards against faults; as a raw tracepoint, whose arguments
//! are mere numbers, by one copy of the `sk_buff` fields it needs (they lie within a few
//! hundred bytes) and one of the device's index and namespace (or of the socket's namespace)
//! ([`view`]). Both copy the packet's first bytes and parse the copy once; where the kernel
//! has `bpf_rdonly_cast` (6.2+), the BTF tracepoint parses the packet where it lies instead
//! ([`peek`]) and copies it only for an event or a VXLAN inner frame. The namespace is known
//! by its `struct net` address once seen; counts are per CPU ([`counts`]); the event budget
//! asks the clock only a few times a second ([`budget`]), so a drop that no event will report
//! pays for no event; and keys are zeroed, built and compared a word at a time
//! ([`crate::words`]), never by the byte loops LLVM's BPF backend calls for `memset` and
//! `memcmp`.
//!
//! This runs in any context that frees packets, but always through the kernel's raw tracepoint
//! runner (`__bpf_trace_run`), with preemption off and a per-program, per-CPU recursion guard:
//! a drop on a CPU where the probe is already running (an interrupt during a run) is skipped
//! and counted in the program's `recursion_misses`, never interleaved. So per-CPU state takes
//! plain adds.
//!
//! Two programs: the entry parses the outer packet; for VXLAN it tail-calls the second, which
//! decodes the inner frame. Verified together the two parses multiply each other's paths past
//! the verifier's limit; apart, each is small.

mod budget;
mod counts;
mod peek;
mod view;

use aya_ebpf::{
    EbpfContext,
    cty::c_void,
    helpers::generated::{bpf_get_smp_processor_id, bpf_probe_read_kernel},
    macros::map,
    maps::{PerCpuArray, ProgramArray, RingBuf},
};
use tracer_common::{
    classes::classify,
    counters::{STAGE_INNER, STAGES},
    drops::{
        CAPTURE, DROP_PART_EVENTS, DROP_PART_FLOWS, DROP_PART_INNER, DropConfig, DropCpuState,
        DropEvent, DropKey, DropScratch, EVENTS_BYTES, FLOW_KEY_WORDS, Flow, FlowKey, NO_ARG,
    },
    packet::{ETH_HLEN, Packet, parse_ethernet, parse_ip, quick_ip},
};

use self::{
    peek::KernelPacket,
    view::{SkbView, read, view_copied, view_direct},
};
use crate::{
    maps::{port_class, proto_class_table},
    overlay::vxlan_inner,
    readers::CopiedPacket,
};

#[unsafe(no_mangle)]
static DROP_CONFIG: DropConfig = DropConfig {
    skb_window: 0,
    skb_window_len: 0,
    skb_head: 0,
    skb_tail: 0,
    skb_len: 0,
    skb_mac_header: 0,
    skb_network_header: 0,
    skb_protocol: 0,
    skb_dev: 0,
    skb_sk: 0,
    dev_window: 0,
    dev_window_len: 0,
    dev_ifindex: 0,
    dev_nd_net: 0,
    sk_net: 0,
    net_inum: 0,
    netns_inum: 0,
    reason_arg: 0,
    location_arg: 0,
    reason_if_absent: 0,
    not_a_drop: 0,
    events_per_flow: 0,
    events_per_cpu: 0,
    ready: 0,
    parts: 0,
    peek_type: 0,
};

/// A field of the loader's configuration. Volatile, or the compiler folds in the defaults
/// above; the kernel, which knows the frozen values, still prunes what they rule out.
macro_rules! config {
    ($field:ident) => {
        // SAFETY: a plain read of a field of the static the loader rewrote.
        unsafe { core::ptr::read_volatile(&raw const $crate::drops::DROP_CONFIG.$field) }
    };
}
pub(crate) use config;

#[map]
static DROP_EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

/// The raw tracepoint probe's later stages, by index (the loader fills it).
#[map]
static DROP_STAGES: ProgramArray = ProgramArray::with_max_entries(STAGES, 0);

/// The BTF tracepoint probe's: a program array takes programs of one type only.
#[map]
static DROP_STAGES_BTF: ProgramArray = ProgramArray::with_max_entries(STAGES, 0);

/// Each CPU's state and scratch space (`DropScratch`); user space reads the statistics there.
#[map]
static SCRATCH: PerCpuArray<DropScratch> = PerCpuArray::with_max_entries(1, 0);

const NO_HEADER: u16 = 0xffff;

/// How an entry program reads the kernel (`tracer_common::drops::DropHook`): a raw tracepoint
/// copies the `sk_buff` fields and the packet; a BTF tracepoint loads the fields and copies
/// the packet; and, with `bpf_rdonly_cast`, reads the packet's headers in place too.
pub const RAW: u8 = 0;
pub const BTF: u8 = 1;
pub const PEEK: u8 = 2;

/// The parts of the probe that run (`DROP_PART_*`).
#[inline(always)]
fn parts() -> u32 {
    config!(parts)
}

/// This CPU's state and scratch space, for the run: no other run on this CPU uses it meanwhile
/// (see the module comment). A pointer: each user borrows only the fields it works on.
#[inline(always)]
fn scratch() -> Option<*mut DropScratch> {
    SCRATCH.get_ptr_mut(0)
}

/// This CPU's probe state (`DropCpuState`), for the run.
#[inline(always)]
fn state() -> Option<&'static mut DropCpuState> {
    // SAFETY: the per-CPU value, valid for the program's run; borrowed for this field only.
    scratch().map(|s| unsafe { &mut (*s).state })
}

/// Adds one to a per-CPU statistic (`STAT_*`).
#[inline(always)]
fn stat(index: u32) {
    if let Some(n) = state().and_then(|st| st.stats.get_mut(index as usize)) {
        *n += 1;
    }
}

/// The raw tracepoint's argument `n` (1 to 3; the skb is 0) of a tracepoint with `ARGS`
/// arguments; 0 for one it does not have.
#[inline(always)]
fn arg<const ARGS: u32, C: EbpfContext>(ctx: &C, n: u32) -> u64 {
    // Context reads need constant offsets, and LLVM turns a match of plain loads into one load
    // at a computed offset: volatile loads, then a choice among the values. Only arguments below
    // ARGS are read at all: the verifier refuses to attach a program that reads past the
    // tracepoint's arguments, and ARGS is a constant of each entry program.
    let args = ctx.as_ptr() as *const u64;
    // SAFETY: each offset is read only when the tracepoint has that many arguments.
    let (a1, a2, a3) = unsafe {
        (
            if ARGS > 1 {
                core::ptr::read_volatile(args.add(1))
            } else {
                0
            },
            if ARGS > 2 {
                core::ptr::read_volatile(args.add(2))
            } else {
                0
            },
            if ARGS > 3 {
                core::ptr::read_volatile(args.add(3))
            } else {
                0
            },
        )
    };
    match n {
        1 => a1,
        2 => a2,
        3 => a3,
        _ => 0,
    }
}

/// The entry stage: keep only drops of our namespace, read and classify the packet, then
/// account for it here or, for VXLAN, in the inner stage.
#[inline(always)]
pub fn observe<const ARGS: u32, const MODE: u8, C: EbpfContext>(ctx: &C) {
    let Some((ev, mut uncopied)) = outer::<ARGS, MODE, C>(ctx) else {
        return;
    };
    if ev.inner_off != 0 && parts() & DROP_PART_INNER != 0 {
        // The inner stage decodes the copy.
        if uncopied != 0 {
            fill(ev, uncopied);
            uncopied = 0;
        }
        if ev.cap_len != 0 {
            let stages = if MODE == RAW {
                &DROP_STAGES
            } else {
                &DROP_STAGES_BTF
            };
            // SAFETY: same program type, same context; returns only if the call fails.
            unsafe { stages.tail_call(ctx, STAGE_INNER) };
        }
    }
    account(ev, uncopied);
}

/// The inner stage: decode the inner frame the entry stage found, then account.
#[inline(always)]
pub fn observe_inner() {
    let Some(s) = scratch() else {
        return;
    };
    // SAFETY: the event the entry stage filled, on this CPU; borrowed for this field only.
    let ev = unsafe { &mut (*s).ev };
    let pkt = CopiedPacket::new(&ev.data, ev.cap_len as usize);
    let inner = parse_ethernet::<_, true>(&pkt, ev.inner_off as usize);
    ev.key.has_inner = 1;
    ev.key.inner_class = classify(inner.seen(), port_class, proto_class_table);
    store_flow(&mut ev.key.inner, &Flow::of(&inner));
    account(ev, 0);
}

/// Whether `net` is the tracer's namespace. Its address is remembered once seen: our
/// namespace lives as long as the tracer in it, so no other namespace can have that address
/// meanwhile, and comparing it spares the read of the namespace's inode number.
#[inline(always)]
fn ours(state: &mut DropCpuState, net: u64) -> bool {
    if state.our_net != 0 {
        return net == state.our_net;
    }
    if read::<u32>(net, config!(net_inum)) != Some(config!(netns_inum)) {
        return false;
    }
    state.our_net = net;
    true
}

/// The drop as an event being assembled, classified, and the address of its packet's bytes
/// when they are still to be copied into it (0: copied, or none).
#[inline(always)]
fn outer<const ARGS: u32, const MODE: u8, C: EbpfContext>(
    ctx: &C,
) -> Option<(&'static mut DropEvent, u64)> {
    if config!(ready) == 0 {
        return None;
    }
    // Before 5.17 the tracepoint has no reason: every kfree_skb is a drop (consume_skb is the
    // tracepoint of packets freed after use).
    let reason = if config!(reason_arg) == NO_ARG {
        config!(reason_if_absent)
    } else {
        arg::<ARGS, C>(ctx, config!(reason_arg)) as u32
    };
    if reason <= config!(not_a_drop) {
        return None;
    }
    // SAFETY: the first argument, which every variant has.
    let skb: u64 = unsafe { core::ptr::read_volatile(ctx.as_ptr() as *const u64) };
    // SAFETY: see `scratch`; the fields are borrowed apart below.
    let s = unsafe { &mut *scratch()? };
    let view = if MODE == RAW {
        view_copied(skb, s)?
    } else {
        view_direct(skb)?
    };
    if !ours(&mut s.state, view.net) {
        return None;
    }
    let ev = &mut s.ev;
    // SAFETY: the key is 8-aligned in the event and a whole number of words long (both
    // asserted in tracer-common); all zero is a valid key.
    unsafe {
        crate::words::store_words((&raw mut ev.key).cast(), [0; FLOW_KEY_WORDS]);
    }
    ev.key.ifindex = view.ifindex;
    ev.key.reason = reason;
    ev.location = arg::<ARGS, C>(ctx, config!(location_arg));
    ev.len = view.len;
    ev.inner_off = 0;
    let src = locate_packet(&view, ev);
    let uncopied = if MODE == PEEK {
        src
    } else {
        fill(ev, src);
        0
    };
    let len = usize::from(ev.cap_len);
    if len != 0 {
        ev.inner_off = if MODE == PEEK {
            classify_packet(
                &KernelPacket::new(src, len),
                ev.l2,
                ev.protocol,
                &mut ev.key,
            )
        } else {
            classify_packet(
                &CopiedPacket::new(&ev.data, len),
                ev.l2,
                ev.protocol,
                &mut ev.key,
            )
        };
    }
    Some((ev, uncopied))
}

/// Counts the drop per (place, interface, class, reason) and per flow, and offers it as an
/// event to the budgets.
#[inline(always)]
fn account(ev: &mut DropEvent, uncopied: u64) {
    // SAFETY: a helper without arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    counts::count_drop(
        cpu,
        &DropKey::words_of(ev.location, ev.key.ifindex, ev.key.reason, ev.key.class),
    );
    let parts = parts();
    let flow = if parts & DROP_PART_FLOWS == 0 {
        None
    } else {
        counts::count_flow(cpu, &ev.key)
    };
    if parts & DROP_PART_EVENTS != 0 {
        budget::offer(ev, flow, uncopied);
    }
}

/// Where the packet's bytes start (its Ethernet header when it has one, else its IP header):
/// sets `cap_len` to how many of them the event takes (0: none), `l2` and `protocol`, and
/// returns their address (0: none).
#[inline(always)]
fn locate_packet(skb: &SkbView, ev: &mut DropEvent) -> u64 {
    ev.cap_len = 0;
    ev.l2 = 0;
    ev.protocol = u16::from_be(skb.protocol);
    let (head, tail, mac, nh) = (skb.head, skb.tail, skb.mac_header, skb.network_header);
    if head == 0 {
        return 0;
    }
    let (start, l2) =
        if mac != NO_HEADER && nh != NO_HEADER && u32::from(nh) >= u32::from(mac) + ETH_HLEN as u32
        {
            (u32::from(mac), 1)
        } else if nh != NO_HEADER {
            (u32::from(nh), 0)
        } else {
            return 0;
        };
    let len = tail.saturating_sub(start).min(CAPTURE as u32);
    if len == 0 {
        return 0;
    }
    ev.cap_len = len as u16;
    ev.l2 = l2;
    head + u64::from(start)
}

/// Copies the `cap_len` bytes at `src` into the event; it holds none (`cap_len` and `l2` 0)
/// if that fails.
#[inline(always)]
pub(crate) fn fill(ev: &mut DropEvent, src: u64) {
    if src == 0 {
        ev.cap_len = 0;
        ev.l2 = 0;
        return;
    }
    let len = u32::from(ev.cap_len).min(CAPTURE as u32);
    // SAFETY: faults are caught by the helper; len is at most CAPTURE, the buffer longer.
    let ret = unsafe {
        bpf_probe_read_kernel(
            ev.data.as_mut_ptr().cast::<c_void>(),
            len,
            src as *const c_void,
        )
    };
    if ret != 0 {
        ev.cap_len = 0;
        ev.l2 = 0;
    }
}

/// Classifies the packet `pkt` (from its Ethernet header when `l2` is 1, else from its IP
/// header of ethertype `protocol`) into `key`: its outer flow and class and, for VXLAN
/// classes, the VNI; returns where the inner frame starts (0: none).
#[inline(always)]
fn classify_packet<P: Packet>(pkt: &P, l2: u8, protocol: u16, key: &mut FlowKey) -> u16 {
    // The shortcut first (an untagged Ethernet header, or none): most drops are packets it
    // reads. Each path stores its flow itself: merged, the flows the two paths found would
    // wait on the stack, and the shortcut's path would pay for setting up the full parser's.
    let quick = if l2 == 0 {
        quick_ip(pkt, 0, protocol)
    } else {
        pkt.load::<[u8; 2]>(12)
            .and_then(|t| quick_ip(pkt, ETH_HLEN, u16::from_be_bytes(t)))
    };
    let seen = match quick {
        Some((seen, l3, addrs)) => {
            store_flow(&mut key.outer, &Flow::quick(seen, l3, addrs));
            seen
        }
        None => {
            let h = if l2 != 0 {
                parse_ethernet::<_, true>(pkt, 0)
            } else {
                parse_ip::<_, true>(pkt, 0, protocol)
            };
            store_flow(&mut key.outer, &Flow::of(&h));
            h.seen()
        }
    };
    key.class = classify(seen, port_class, proto_class_table);
    let (vni, inner_off) = vxlan_inner(pkt, seen, key.class).unwrap_or((0, 0));
    key.vni = vni;
    inner_off as u16
}

/// Writes `flow` into `to`, a flow of a key in the event, a word at a time: stored as a value,
/// a flow LLVM knows to be zero (a packet the parser found nothing in) becomes a `memset`.
#[inline(always)]
fn store_flow(to: &mut Flow, flow: &Flow) {
    // SAFETY: the key is 8-aligned in the event and its flows on word boundaries of it (both
    // asserted in tracer-common): `to` is FLOW_WORDS writable, aligned words.
    unsafe { crate::words::store_words(core::ptr::from_mut(to).cast::<u64>(), flow.words()) };
}
