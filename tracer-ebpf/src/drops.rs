//! The drop probe: for every packet the kernel frees as dropped in the tracer's network
//! namespace, count it exactly per (interface, class, reason) and per flow, and send a sampled
//! event with the packet's first bytes. Reads of the `sk_buff` use offsets the loader took from
//! the running kernel's BTF.
//!
//! This runs in any context that frees packets, but always through the kernel's raw tracepoint
//! runner (`__bpf_trace_run`), with preemption off and a per-program, per-CPU recursion guard:
//! a drop on a CPU where the probe is already running (an interrupt during a run) is skipped
//! and counted in the program's `recursion_misses`, never interleaved. So the per-CPU maps take
//! plain adds, and only the per-flow table, shared by all CPUs, needs atomic ones.
//!
//! Two programs: the entry parses the outer packet; for VXLAN it tail-calls the second, which
//! decodes the inner frame. Verified together the two parses multiply each other's paths past
//! the verifier's limit; apart, each is small.

use aya_ebpf::{
    EbpfContext,
    bindings::BPF_NOEXIST,
    helpers::{bpf_ktime_get_ns, bpf_probe_read_kernel, bpf_probe_read_kernel_buf},
    macros::map,
    maps::{LruHashMap, PerCpuArray, PerCpuHashMap, ProgramArray, RingBuf},
    programs::RawTracePointContext,
};
use tracer_common::{
    classes::classify,
    counters::{STAGE_INNER, STAGES},
    drops::{
        CAPTURE, DROP_FLOWS, DROP_KEYS, DROP_PART_EVENTS, DROP_PART_FLOWS, DROP_PART_INNER,
        DropConfig, DropEvent, DropKey, EVENTS_BYTES, EventWindow, Flow, FlowKey, FlowState,
        NO_ARG, STAT_EVENTS_LOST, STAT_EVENTS_SUPPRESSED, STAT_UNCOUNTED, STATS_LEN,
    },
    packet::{ETH_HLEN, parse_ethernet, parse_ip},
};

use crate::{
    maps::{port_class, proto_class},
    overlay::vxlan_inner,
    readers::CopiedPacket,
};

#[unsafe(no_mangle)]
static DROP_CONFIG: DropConfig = DropConfig {
    skb_head: 0,
    skb_tail: 0,
    skb_len: 0,
    skb_mac_header: 0,
    skb_network_header: 0,
    skb_protocol: 0,
    skb_dev: 0,
    skb_sk: 0,
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
    _reserved: 0,
};

/// Exact drops per (interface, class, reason).
#[map]
static DROPS: PerCpuHashMap<DropKey, u64> = PerCpuHashMap::with_max_entries(DROP_KEYS, 0);

/// Exact drops per flow, with the event budget; the least recently dropped flows make room.
#[map]
static DROP_FLOW_COUNTS: LruHashMap<FlowKey, FlowState> =
    LruHashMap::with_max_entries(DROP_FLOWS, 0);

/// Events lost, events held back by the per-flow budget, drops the key table had no room for.
#[map]
static DROP_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STATS_LEN, 0);

#[map]
static DROP_EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

/// The probe's later stages, by index (the loader fills it).
#[map]
static DROP_STAGES: ProgramArray = ProgramArray::with_max_entries(STAGES, 0);

/// This CPU's event budget.
#[map]
static EVENT_WINDOW: PerCpuArray<EventWindow> = PerCpuArray::with_max_entries(1, 0);

/// Where an event is assembled: too big for the 512-byte stack.
#[map]
static SCRATCH: PerCpuArray<DropEvent> = PerCpuArray::with_max_entries(1, 0);

const NO_HEADER: u16 = 0xffff;

/// The parts of the probe that run (`DROP_PART_*`).
#[inline(always)]
fn parts() -> u32 {
    // SAFETY: reading the config global the loader rewrote; volatile, as in `outer`.
    unsafe { core::ptr::read_volatile(&DROP_CONFIG.parts) }
}

#[inline(always)]
fn read<T>(base: u64, off: u32) -> Option<T> {
    if base == 0 {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel faults safely on a bad address.
    unsafe { bpf_probe_read_kernel((base + off as u64) as *const T).ok() }
}

/// Adds to a per-CPU counter: no other run touches it meanwhile (see the module comment).
#[inline(always)]
fn add(counter: *mut u64, n: u64) {
    // SAFETY: a per-CPU map value pointer the kernel handed out, valid for the program's run.
    unsafe { *counter += n };
}

/// Adds to a counter other CPUs may be adding to at the same time.
#[inline(always)]
fn atomic_add(counter: *mut u64, n: u64) {
    // The BPF target declares no atomics to core::sync, but the instruction set has atomic
    // add (BPF_ATOMIC | BPF_ADD): reach it through the intrinsic.
    // SAFETY: a map value pointer the kernel handed out, valid for the program's run.
    unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
            counter, n,
        )
    };
}

#[inline(always)]
fn stat(index: u32) {
    if let Some(p) = DROP_STATS.get_ptr_mut(index) {
        add(p, 1);
    }
}

/// The raw tracepoint's argument `n` (1 to 3; the skb is 0) of a tracepoint with `ARGS`
/// arguments; 0 for one it does not have.
#[inline(always)]
fn arg<const ARGS: u32>(ctx: &RawTracePointContext, n: u32) -> u64 {
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

/// The entry stage: keep only drops of our namespace, copy and classify the packet, then
/// account for it here or, for VXLAN, in the inner stage.
#[inline(always)]
pub fn observe<const ARGS: u32>(ctx: &RawTracePointContext) {
    let Some(ev) = outer::<ARGS>(ctx) else {
        return;
    };
    if ev.inner_off != 0 && parts() & DROP_PART_INNER != 0 {
        // SAFETY: same program type, same context; returns only if the call fails.
        unsafe { DROP_STAGES.tail_call(ctx, STAGE_INNER) };
    }
    account(ev);
}

/// The inner stage: decode the inner frame the entry stage found, then account.
#[inline(always)]
pub fn observe_inner() {
    let Some(ev) = SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: the per-CPU scratch entry the entry stage filled, on this CPU.
    let ev = unsafe { &mut *ev };
    let pkt = CopiedPacket::new(&ev.data, ev.cap_len as usize);
    let inner = parse_ethernet::<_, true>(&pkt, ev.inner_off as usize);
    ev.key.has_inner = 1;
    ev.key.inner_class = classify(&inner, port_class, proto_class);
    ev.key.inner = Flow::of(&inner);
    account(ev);
}

#[inline(always)]
fn outer<const ARGS: u32>(ctx: &RawTracePointContext) -> Option<&'static mut DropEvent> {
    // SAFETY: the loader rewrote the static; volatile keeps the compiler from folding defaults.
    let c = unsafe { core::ptr::read_volatile(&DROP_CONFIG) };
    if c.ready == 0 {
        return None;
    }
    // Before 5.17 the tracepoint has no reason: every kfree_skb is a drop (consume_skb is the
    // tracepoint of packets freed after use).
    let reason = if c.reason_arg == NO_ARG {
        c.reason_if_absent
    } else {
        arg::<ARGS>(ctx, c.reason_arg) as u32
    };
    if reason <= c.not_a_drop {
        return None;
    }
    let skb: u64 = ctx.arg(0);
    // The namespace of the device, or of the socket for packets without one yet.
    let dev: u64 = read(skb, c.skb_dev).unwrap_or(0);
    let net: u64 = if dev != 0 {
        read(dev, c.dev_nd_net)?
    } else {
        read(read::<u64>(skb, c.skb_sk)?, c.sk_net)?
    };
    if read::<u32>(net, c.net_inum)? != c.netns_inum {
        return None;
    }
    // SAFETY: the per-CPU scratch entry, used by one program run at a time on this CPU.
    let ev = unsafe { &mut *SCRATCH.get_ptr_mut(0)? };
    ev.key = FlowKey::default();
    // read() gives None for a packet without a device (dev 0): ifindex 0.
    ev.key.ifindex = read(dev, c.dev_ifindex).unwrap_or(0);
    ev.key.reason = reason;
    ev.location = arg::<ARGS>(ctx, c.location_arg);
    ev.len = read(skb, c.skb_len).unwrap_or(0);
    ev.inner_off = 0;
    copy_packet(skb, &c, ev);
    classify_event(ev);
    Some(ev)
}

/// Counts the drop per (interface, class, reason) and per flow, and sends an event when the
/// flow's budget allows.
#[inline(always)]
fn account(ev: &mut DropEvent) {
    let key = DropKey {
        location: ev.location,
        ifindex: ev.key.ifindex,
        reason: ev.key.reason,
        class: ev.key.class,
        _reserved: [0; 7],
    };
    match counter(&key) {
        Some(p) => add(p, 1),
        None => stat(STAT_UNCOUNTED),
    }
    // SAFETY: reading the config global, as above.
    let (per_flow, per_cpu) = unsafe {
        (
            core::ptr::read_volatile(&DROP_CONFIG.events_per_flow),
            core::ptr::read_volatile(&DROP_CONFIG.events_per_cpu),
        )
    };
    let parts = parts();
    if parts & (DROP_PART_FLOWS | DROP_PART_EVENTS) == 0 {
        return;
    }
    // One clock read serves both budgets and the event's timestamp.
    let now = unsafe { bpf_ktime_get_ns() };
    // The flow is counted first, whatever the CPU's budget says.
    let flow_allows = parts & DROP_PART_FLOWS == 0 || flow_wants_event(&ev.key, per_flow, now);
    if parts & DROP_PART_EVENTS == 0 {
        return;
    }
    if flow_allows && cpu_wants_event(per_cpu, now) {
        ev.ts_ns = now;
        if DROP_EVENTS.output::<DropEvent>(&*ev, 0).is_err() {
            stat(STAT_EVENTS_LOST);
        }
    } else {
        stat(STAT_EVENTS_SUPPRESSED);
    }
}

/// Copies the packet from its Ethernet header when it has one, else from its IP header.
#[inline(always)]
fn copy_packet(skb: u64, c: &DropConfig, ev: &mut DropEvent) {
    ev.cap_len = 0;
    ev.l2 = 0;
    ev.protocol = u16::from_be(read::<u16>(skb, c.skb_protocol).unwrap_or(0));
    let (Some(head), Some(tail), Some(mac), Some(nh)) = (
        read::<u64>(skb, c.skb_head),
        read::<u32>(skb, c.skb_tail),
        read::<u16>(skb, c.skb_mac_header),
        read::<u16>(skb, c.skb_network_header),
    ) else {
        return;
    };
    let (start, l2) =
        if mac != NO_HEADER && nh != NO_HEADER && nh as u32 >= mac as u32 + ETH_HLEN as u32 {
            (mac as u32, 1)
        } else if nh != NO_HEADER {
            (nh as u32, 0)
        } else {
            return;
        };
    let avail = tail.saturating_sub(start) as usize;
    let len = if avail > CAPTURE { CAPTURE } else { avail };
    if len == 0 {
        return;
    }
    // SAFETY: faults are caught by the helper; len is at most CAPTURE.
    if unsafe { bpf_probe_read_kernel_buf((head + start as u64) as *const u8, &mut ev.data[..len]) }
        .is_ok()
    {
        ev.cap_len = len as u16;
        ev.l2 = l2;
    }
}

/// Classifies the copied packet and, for VXLAN classes, its inner frame.
#[inline(always)]
fn classify_event(ev: &mut DropEvent) {
    if ev.cap_len == 0 {
        return;
    }
    let pkt = CopiedPacket::new(&ev.data, ev.cap_len as usize);
    let h = if ev.l2 != 0 {
        parse_ethernet::<_, true>(&pkt, 0)
    } else {
        parse_ip::<_, true>(&pkt, 0, ev.protocol)
    };
    let class = classify(&h, port_class, proto_class);
    ev.key.class = class;
    ev.key.outer = Flow::of(&h);
    if let Some((vni, inner_off)) = vxlan_inner(&pkt, &h, class) {
        ev.key.vni = vni;
        ev.inner_off = inner_off as u16;
    }
}

/// The per-CPU counter of `key`, created at zero if needed. Inserting with NOEXIST and
/// looking up again means two racing first drops both land in the same counter.
#[inline(always)]
fn counter(key: &DropKey) -> Option<*mut u64> {
    if let Some(p) = DROPS.get_ptr_mut(key) {
        return Some(p);
    }
    let _ = DROPS.insert(key, &0, BPF_NOEXIST as u64);
    DROPS.get_ptr_mut(key)
}

/// Whether this CPU's event budget for the current second allows one more event, which it
/// then takes. Per-CPU and run with preemption off: no other writer. `now` is
/// `bpf_ktime_get_ns`.
#[inline(always)]
fn cpu_wants_event(per_second: u32, now: u64) -> bool {
    let Some(w) = EVENT_WINDOW.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: this CPU's entry, valid for the program's run.
    unsafe { take_event::<false>(w, per_second, now) }
}

/// Counts the drop against its flow and says whether the flow's event budget for the current
/// second allows one more event. `now` is `bpf_ktime_get_ns`.
#[inline(always)]
fn flow_wants_event(key: &FlowKey, per_second: u32, now: u64) -> bool {
    let state = match DROP_FLOW_COUNTS.get_ptr_mut(key) {
        Some(p) => p,
        None => {
            let fresh = FlowState {
                count: 0,
                window: EventWindow {
                    start_ns: now,
                    events: 0,
                },
            };
            let _ = DROP_FLOW_COUNTS.insert(key, &fresh, BPF_NOEXIST as u64);
            match DROP_FLOW_COUNTS.get_ptr_mut(key) {
                Some(p) => p,
                None => return true,
            }
        }
    };
    // SAFETY: map value pointers stay valid for the program's run.
    unsafe {
        atomic_add(&raw mut (*state).count, 1);
        // The window may be reset twice by racing CPUs: that only costs an extra event.
        take_event::<true>(&raw mut (*state).window, per_second, now)
    }
}

/// Whether the budget `w` allows one more event in the second that `now` is in, which it then
/// takes; a window older than a second starts over at `now`. ATOMIC for a budget other CPUs
/// take from too (a flow's), plain adds for this CPU's own.
///
/// # Safety
/// `w` is a map value pointer, valid for the program's run.
#[inline(always)]
unsafe fn take_event<const ATOMIC: bool>(w: *mut EventWindow, per_second: u32, now: u64) -> bool {
    unsafe {
        if now.wrapping_sub((*w).start_ns) > 1_000_000_000 {
            (*w).start_ns = now;
            (*w).events = 0;
        }
        if (*w).events >= per_second as u64 {
            return false;
        }
        if ATOMIC {
            atomic_add(&raw mut (*w).events, 1);
        } else {
            add(&raw mut (*w).events, 1);
        }
    }
    true
}
