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
//! hundred bytes) and one of the device's index and namespace (or of the socket's namespace).
//! Either way one copy of the packet's first bytes, parsed once; the namespace is known by its `struct net` address once
//! seen; counts are per CPU ([`counts`]); the event budget asks the clock only a few times
//! a second ([`budget`]), so a drop that no event will report pays for no event; and keys are
//! zeroed, built and compared a word at a time ([`crate::words`]), never by the byte loops
//! LLVM's BPF backend calls for `memset` and `memcmp`.
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
        DropEvent, DropKey, DropScratch, EVENTS_BYTES, Flow, FlowKey, NO_ARG,
    },
    packet::{ETH_HLEN, Packet, parse_ethernet, parse_ip, quick_ip},
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
    _reserved: 0,
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

/// The parts of the probe that run (`DROP_PART_*`).
#[inline(always)]
fn parts() -> u32 {
    config!(parts)
}

/// One kernel value at `base + off`.
#[inline(always)]
fn read<T>(base: u64, off: u32) -> Option<T> {
    if base == 0 {
        return None;
    }
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    let size = core::mem::size_of::<T>() as u32;
    // SAFETY: the helper faults safely on a bad address and writes `size` bytes into `v`.
    let ret = unsafe {
        bpf_probe_read_kernel(
            v.as_mut_ptr().cast::<c_void>(),
            size,
            (base + u64::from(off)) as *const c_void,
        )
    };
    // SAFETY: on success the helper filled `v`.
    (ret == 0).then(|| unsafe { v.assume_init() })
}

/// Copies `len` (at most `N - 8`) bytes of kernel memory at `src` into `buf`.
#[inline(always)]
fn read_into<const N: usize>(buf: &mut [u8; N], src: u64, len: u32) -> Option<()> {
    let len = len.min((N - 8) as u32);
    // SAFETY: the helper faults safely on a bad address; `buf` holds at least `len` bytes.
    let ret = unsafe {
        bpf_probe_read_kernel(buf.as_mut_ptr().cast::<c_void>(), len, src as *const c_void)
    };
    (ret == 0).then_some(())
}

/// The field at `off` of a struct whose bytes from `base` on are copied into `buf`.
#[inline(always)]
fn field<T: Copy, const N: usize>(buf: &[u8; N], off: u32, base: u32) -> T {
    const { assert!(core::mem::size_of::<T>() <= 8) };
    // The loader checked that every field lies inside the window; the mask (N - 8 is a power
    // of two) shows the verifier that the read stays inside the buffer.
    let at = off.wrapping_sub(base) as usize & (N - 9);
    // SAFETY: at + size_of::<T>() <= N - 8 + 8.
    unsafe { buf.as_ptr().add(at).cast::<T>().read_unaligned() }
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

/// The entry stage: keep only drops of our namespace, copy and classify the packet, then
/// account for it here or, for VXLAN, in the inner stage.
#[inline(always)]
pub fn observe<const ARGS: u32, const BTF: bool, C: EbpfContext>(ctx: &C) {
    let Some(ev) = outer::<ARGS, BTF, C>(ctx) else {
        return;
    };
    if ev.inner_off != 0 && parts() & DROP_PART_INNER != 0 {
        let stages = if BTF { &DROP_STAGES_BTF } else { &DROP_STAGES };
        // SAFETY: same program type, same context; returns only if the call fails.
        unsafe { stages.tail_call(ctx, STAGE_INNER) };
    }
    account(ev);
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
    ev.key.inner = Flow::of(&inner);
    account(ev);
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

/// What the probe takes from the `sk_buff` and from its device or socket.
pub(crate) struct SkbView {
    /// The `struct net` of the device, or of the socket for a packet without a device yet.
    net: u64,
    /// 0 for a packet without a device.
    ifindex: u32,
    len: u32,
    head: u64,
    tail: u32,
    mac_header: u16,
    network_header: u16,
    /// Network byte order, as in the `sk_buff`.
    protocol: u16,
}

/// The view through `bpf_probe_read_kernel`: one copy of the `sk_buff` fields, one of the
/// device's (or of the socket's namespace). For raw tracepoints, whose `skb` is a number.
#[inline(always)]
fn view_copied(skb: u64, s: &mut DropScratch) -> Option<SkbView> {
    let window = config!(skb_window);
    read_into(&mut s.skb, skb + u64::from(window), config!(skb_window_len))?;
    let dev: u64 = field(&s.skb, config!(skb_dev), window);
    // The namespace of the device, or of the socket for packets without one yet.
    let (net, ifindex) = if dev == 0 {
        let sk: u64 = field(&s.skb, config!(skb_sk), window);
        (read::<u64>(sk, config!(sk_net))?, 0)
    } else if config!(dev_window_len) != 0 {
        let base = config!(dev_window);
        read_into(&mut s.dev, dev + u64::from(base), config!(dev_window_len))?;
        (
            field::<u64, _>(&s.dev, config!(dev_nd_net), base),
            field::<u32, _>(&s.dev, config!(dev_ifindex), base),
        )
    } else {
        (
            read::<u64>(dev, config!(dev_nd_net))?,
            read::<u32>(dev, config!(dev_ifindex))?,
        )
    };
    let skb = &s.skb;
    Some(SkbView {
        net,
        ifindex,
        len: field(skb, config!(skb_len), window),
        head: field(skb, config!(skb_head), window),
        tail: field(skb, config!(skb_tail), window),
        mac_header: field(skb, config!(skb_mac_header), window),
        network_header: field(skb, config!(skb_network_header), window),
        protocol: field(skb, config!(skb_protocol), window),
    })
}

/// A field of a BTF-typed kernel object: a plain load the verifier checks against the
/// kernel's BTF and the JIT guards, so a bad address reads 0 instead of faulting.
#[inline(always)]
fn btf_field<T: Copy>(base: u64, off: u32) -> T {
    // SAFETY: only in BTF tracepoint programs, where `base` is a BTF-typed pointer (or a field
    // loaded through one) and `off` a member's offset from BTF: the kernel turns the load
    // into a guarded one.
    unsafe { core::ptr::read_volatile((base + u64::from(off)) as *const T) }
}

/// The view by direct loads, for BTF tracepoints, whose `skb` the verifier knows the type of:
/// no helper call.
#[inline(always)]
fn view_direct(skb: u64) -> Option<SkbView> {
    let dev: u64 = btf_field(skb, config!(skb_dev));
    // Pointers loaded from the `sk_buff` may be null, and newer verifiers want them checked
    // before any offset is added, even though the load would read 0.
    let (net, ifindex) = if dev == 0 {
        let sk: u64 = btf_field(skb, config!(skb_sk));
        if sk == 0 {
            return None;
        }
        (btf_field(sk, config!(sk_net)), 0)
    } else {
        (
            btf_field(dev, config!(dev_nd_net)),
            btf_field(dev, config!(dev_ifindex)),
        )
    };
    Some(SkbView {
        net,
        ifindex,
        len: btf_field(skb, config!(skb_len)),
        head: btf_field(skb, config!(skb_head)),
        tail: btf_field(skb, config!(skb_tail)),
        mac_header: btf_field(skb, config!(skb_mac_header)),
        network_header: btf_field(skb, config!(skb_network_header)),
        protocol: btf_field(skb, config!(skb_protocol)),
    })
}

#[inline(always)]
fn outer<const ARGS: u32, const BTF: bool, C: EbpfContext>(
    ctx: &C,
) -> Option<&'static mut DropEvent> {
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
    let view = if BTF {
        view_direct(skb)?
    } else {
        view_copied(skb, s)?
    };
    if !ours(&mut s.state, view.net) {
        return None;
    }
    let ev = &mut s.ev;
    // SAFETY: the key is 8-aligned in the event and a whole number of words long (both
    // asserted in tracer-common); all zero is a valid key.
    unsafe {
        crate::words::zero_words::<{ size_of::<FlowKey>() / 8 }>((&raw mut ev.key).cast());
    }
    ev.key.ifindex = view.ifindex;
    ev.key.reason = reason;
    ev.location = arg::<ARGS, C>(ctx, config!(location_arg));
    ev.len = view.len;
    ev.inner_off = 0;
    copy_packet(&view, ev);
    classify_event(ev);
    Some(ev)
}

/// Counts the drop per (place, interface, class, reason) and per flow, and offers it as an
/// event to the budgets.
#[inline(always)]
fn account(ev: &mut DropEvent) {
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
        budget::offer(ev, flow);
    }
}

/// Copies the packet from its Ethernet header when it has one, else from its IP header.
#[inline(always)]
fn copy_packet(skb: &SkbView, ev: &mut DropEvent) {
    ev.cap_len = 0;
    ev.l2 = 0;
    ev.protocol = u16::from_be(skb.protocol);
    let (head, tail, mac, nh) = (skb.head, skb.tail, skb.mac_header, skb.network_header);
    if head == 0 {
        return;
    }
    let (start, l2) =
        if mac != NO_HEADER && nh != NO_HEADER && u32::from(nh) >= u32::from(mac) + ETH_HLEN as u32
        {
            (u32::from(mac), 1)
        } else if nh != NO_HEADER {
            (u32::from(nh), 0)
        } else {
            return;
        };
    let avail = tail.saturating_sub(start);
    let len = avail.min(CAPTURE as u32);
    if len == 0 {
        return;
    }
    // SAFETY: faults are caught by the helper; len is at most CAPTURE, the buffer longer.
    let ret = unsafe {
        bpf_probe_read_kernel(
            ev.data.as_mut_ptr().cast::<c_void>(),
            len,
            (head + u64::from(start)) as *const c_void,
        )
    };
    if ret == 0 {
        ev.cap_len = len as u16;
        ev.l2 = l2;
    }
}

/// Classifies the copied packet and, for VXLAN classes, finds its inner frame.
#[inline(always)]
fn classify_event(ev: &mut DropEvent) {
    if ev.cap_len == 0 {
        return;
    }
    let pkt = CopiedPacket::new(&ev.data, ev.cap_len as usize);
    // The shortcut first (an untagged Ethernet header, or none): most drops are packets it
    // reads, and it reads them straight into the key; every other goes to the full parser.
    let quick = if ev.l2 == 0 {
        quick_ip(&pkt, 0, ev.protocol)
    } else {
        pkt.load::<[u8; 2]>(12)
            .and_then(|t| quick_ip(&pkt, ETH_HLEN, u16::from_be_bytes(t)))
    };
    let seen = match quick {
        Some((seen, l3, src, dst)) => {
            ev.key.outer = Flow::quick(seen, l3, src, dst);
            seen
        }
        None => {
            let h = if ev.l2 != 0 {
                parse_ethernet::<_, true>(&pkt, 0)
            } else {
                parse_ip::<_, true>(&pkt, 0, ev.protocol)
            };
            ev.key.outer = Flow::of(&h);
            h.seen()
        }
    };
    let class = classify(seen, port_class, proto_class_table);
    ev.key.class = class;
    if let Some((vni, inner_off)) = vxlan_inner(&pkt, seen, class) {
        ev.key.vni = vni;
        ev.inner_off = inner_off as u16;
    }
}
