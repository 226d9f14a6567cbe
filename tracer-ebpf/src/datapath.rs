//! Counting: find the interface slot, parse, classify, add to the per-CPU counter of
//! (slot, direction, class) and to its packet-size bucket, kept in the same entry. For overlay
//! (VXLAN) classes the inner frame is counted under its own class too: here when the parser's
//! shortcut reads both the outer and the inner frame (untagged IPv4 or IPv6 with a whole TCP
//! or UDP header, nearly all), else by a second program reached by tail call, since the two
//! full parses verified together would multiply each other's paths past the verifier's limit.
//! Plain adds are exact here: tc and XDP run with bottom halves disabled, so nothing else on
//! this CPU touches a counter (or the hand-over entry) mid-update.

use aya_ebpf::{
    EbpfContext,
    programs::{TcContext, XdpContext},
};
use aya_log_ebpf::error;
use tracer_common::{
    classes::classify,
    counters::{
        DIR_INGRESS, IFACE_NO_L2, IfaceSlot, SIZE_BUCKETS, STAGE_INNER, counter_index, size_bucket,
    },
    packet::{
        ETH_P_IP, ETH_P_IPV6, L3, Packet, Seen, count_ethernet, parse_ethernet, parse_ip,
        quick_ethernet,
    },
};

use crate::{
    maps::{
        COUNTERS, INNER_COUNTERS, INNER_JOB, TC_STAGES, XDP_STAGES, iface, n_classes, port_class,
        proto_class,
    },
    overlay::vxlan_inner,
    readers::{SkbPacket, XdpPacket},
};

/// How far a program built from this code goes. tracer's own programs go all the way; the
/// benchmark's (`floor.rs`) stop after each part, so that it can tell what each costs. A part
/// that a program ends with hands its result to [`keep`], or the compiler would drop it.
pub const UPTO_IFACE: u32 = 1;
pub const UPTO_PARSE: u32 = 2;
pub const UPTO_SEGS: u32 = 3;
pub const UPTO_CLASS: u32 = 4;
pub const UPTO_ALL: u32 = 5;

/// Makes `v` count as used: a volatile store to the stack.
#[inline(always)]
fn keep<T>(v: T) {
    let mut sink = core::mem::MaybeUninit::<T>::uninit();
    // SAFETY: a write into a local of the right type.
    unsafe { core::ptr::write_volatile(sink.as_mut_ptr(), v) };
}

/// The parsed headers as one value for [`keep`].
#[inline(always)]
fn parsed(h: Seen) -> u64 {
    u64::from(h.status as u8)
        | u64::from(h.proto) << 8
        | u64::from(h.sport) << 16
        | u64::from(h.dport) << 32
        | u64::from(h.payload_off) << 48
}

#[inline(always)]
pub fn observe_skb<const UPTO: u32>(ctx: &TcContext, dir: u32) {
    // SAFETY: the context the kernel passed, valid for the run.
    let skb = unsafe { &*ctx.skb.skb };
    let Some(slot) = iface(skb.ifindex) else {
        return;
    };
    if UPTO == UPTO_IFACE {
        return keep(slot);
    }
    let pkt = SkbPacket::new(ctx);
    // The frames the shortcut reads go to the counter on a path of their own: merged with the
    // full parser's, what either found would wait on the stack.
    let (h, l3) = if slot.flags & IFACE_NO_L2 != 0 {
        let h = parse_ip::<_, false>(&pkt, 0, u16::from_be(skb.protocol as u16));
        (h.seen(), h.l3())
    } else if let Some((h, l3)) = quick_ethernet(&pkt, 0) {
        return account_skb::<UPTO, true>(ctx, &pkt, slot, dir, h, l3);
    } else {
        let h = parse_ethernet::<_, false>(&pkt, 0);
        (h.seen(), h.l3())
    };
    account_skb::<UPTO, false>(ctx, &pkt, slot, dir, h, l3);
}

/// The rest of [`observe_skb`], once the headers are parsed.
#[inline(always)]
fn account_skb<const UPTO: u32, const QUICK: bool>(
    ctx: &TcContext,
    pkt: &SkbPacket,
    slot: IfaceSlot,
    dir: u32,
    h: Seen,
    l3: L3,
) {
    if UPTO == UPTO_PARSE {
        return keep(parsed(h));
    }
    // SAFETY: the context the kernel passed, valid for the run.
    let skb = unsafe { &*ctx.skb.skb };
    // A GSO super-packet leaves as gso_segs packets, each with its own copy of the headers.
    let segs = skb.gso_segs;
    let len = u64::from(skb.len);
    if UPTO == UPTO_SEGS {
        return keep(u64::from(segs) ^ len);
    }
    let class = classify(h, port_class, proto_class);
    if UPTO == UPTO_CLASS {
        return keep(class);
    }
    // The other packets, nearly all, count on a path of their own, where their one packet
    // and its size are known without arithmetic.
    let inner = if segs > 1 {
        let segs = u64::from(segs);
        let bytes = len + (segs - 1) * u64::from(h.payload_off);
        count::<_, _, QUICK>(ctx, pkt, slot, dir, (h, l3), class, segs, bytes)
    } else {
        count::<_, _, QUICK>(ctx, pkt, slot, dir, (h, l3), class, 1, len)
    };
    if inner {
        // SAFETY: same program type and context; returns only when the call fails.
        unsafe { TC_STAGES.tail_call(ctx, STAGE_INNER) };
    }
}

#[inline(always)]
pub fn observe_xdp<const UPTO: u32>(ctx: &XdpContext) {
    let Some(slot) = iface(ctx.ingress_ifindex() as u32) else {
        return;
    };
    if UPTO == UPTO_IFACE {
        return keep(slot);
    }
    // Taken first, while no register needs spilling: the verifier refuses a packet pointer
    // spilled as the 32 bits the context field has.
    let bytes = XdpPacket::len(ctx) as u64;
    let pkt = XdpPacket::new(ctx);
    // As in observe_skb.
    let h: (Seen, L3) = if slot.flags & IFACE_NO_L2 != 0 {
        let ethertype = match pkt.load::<[u8; 2]>(0).map(|b| b[0] >> 4) {
            Some(4) => ETH_P_IP,
            Some(6) => ETH_P_IPV6,
            _ => 0,
        };
        let h = parse_ip::<_, false>(&pkt, 0, ethertype);
        (h.seen(), h.l3())
    } else if let Some((h, l3)) = quick_ethernet(&pkt, 0) {
        return account_xdp::<UPTO, true>(ctx, &pkt, slot, (h, l3), bytes);
    } else {
        let h = parse_ethernet::<_, false>(&pkt, 0);
        (h.seen(), h.l3())
    };
    account_xdp::<UPTO, false>(ctx, &pkt, slot, h, bytes);
}

/// The rest of [`observe_xdp`], once the headers are parsed.
#[inline(always)]
fn account_xdp<const UPTO: u32, const QUICK: bool>(
    ctx: &XdpContext,
    pkt: &XdpPacket,
    slot: IfaceSlot,
    (h, l3): (Seen, L3),
    bytes: u64,
) {
    if UPTO == UPTO_PARSE {
        return keep(parsed(h));
    }
    let class = classify(h, port_class, proto_class);
    if UPTO == UPTO_CLASS {
        return keep(class);
    }
    if count::<_, _, QUICK>(ctx, pkt, slot, DIR_INGRESS, (h, l3), class, 1, bytes) {
        // SAFETY: as in observe_skb.
        unsafe { XDP_STAGES.tail_call(ctx, STAGE_INNER) };
    }
}

/// Says that a counter index was out of range, which only a loader that sized the array wrong
/// causes. Inlined: as a function of its own it would sit at the start of a section of its
/// own, and the loader resolved calls to it as calls to the per-peer update, the function at
/// the start of `.text` (the kernel refused the program: `R5 !read_ok`).
#[inline(always)]
fn out_of_range<C: EbpfContext>(ctx: &C, idx: u32, slot: u16, class: u8) {
    error!(
        ctx,
        "counter {} out of range (slot {}, class {})", idx, slot, class
    );
}

/// Counts the packet; true when it carries an inner frame for the second stage, whose job
/// is then waiting in INNER_JOB.
#[inline(always)]
#[allow(
    clippy::too_many_arguments,
    reason = "the parts of one packet's accounting, passed in registers"
)]
fn count<C: EbpfContext, P: Packet, const QUICK: bool>(
    ctx: &C,
    pkt: &P,
    slot: IfaceSlot,
    dir: u32,
    (h, l3): (Seen, L3),
    class: u8,
    packets: u64,
    bytes: u64,
) -> bool {
    let idx = counter_index(slot.slot as u32, dir, class as u32, n_classes());
    let Some(c) = COUNTERS.get_ptr_mut(idx) else {
        out_of_range(ctx, idx, slot.slot, class);
        return false;
    };
    // Divide only for GSO super-packets: a division costs more than the rest of this. max(1)
    // lets the compiler drop the division-by-zero panic path, which the verifier rejects.
    let size = if packets == 1 {
        bytes
    } else {
        bytes / packets.max(1)
    };
    // size_bucket is below SIZE_BUCKETS already; the mask (SIZE_BUCKETS is a power of two)
    // shows it to the compiler and the verifier, so there is no bounds-check panic path.
    let bucket = size_bucket(size) as usize & (SIZE_BUCKETS - 1);
    // SAFETY: a per-CPU map value pointer, valid for this run.
    unsafe {
        (*c).packets += packets;
        (*c).bytes += bytes;
        (*c).sizes[bucket] += packets;
    }
    crate::peers::count_peer(pkt, slot.slot, dir, class, l3, packets, bytes);
    let Some((_, inner_off)) = vxlan_inner(pkt, h, class) else {
        return false;
    };
    // After the shortcut, an inner frame the shortcut reads too is counted here; every other
    // goes to the second stage. (The full parser's paths, which the verifier walks many more
    // of, are left as they were, so that what this adds is walked once per outer shortcut.)
    if QUICK && let Some((inner, _)) = quick_ethernet(pkt, inner_off) {
        add_inner(slot.slot as u32, dir, inner, packets, bytes);
        return false;
    }
    let Some(job) = INNER_JOB.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: this CPU's entry, read by the stage this program tail-calls next.
    unsafe {
        (*job).slot = slot.slot as u32;
        (*job).dir = dir;
        (*job).off = inner_off as u32;
        (*job).packets = packets;
        (*job).bytes = bytes;
    }
    true
}

/// Inner frames start after the outer headers: far below this.
const MAX_INNER_OFF: u32 = 512;

/// The second stage: classify the inner frame of the job the entry program left.
#[inline(always)]
fn count_inner<P: Packet>(pkt: &P) {
    let Some(job) = INNER_JOB.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's entry, written by the entry program that tail-called us.
    let job = unsafe { *job };
    // The offset comes from a map, unbounded for the verifier; a real one is a few dozen bytes.
    if job.off > MAX_INNER_OFF {
        return;
    }
    let inner = count_ethernet(pkt, job.off as usize);
    add_inner(job.slot, job.dir, inner, job.packets, job.bytes);
}

/// Classifies an inner frame parsed as `inner` and adds it to the inner counter of its class.
#[inline(always)]
fn add_inner(slot: u32, dir: u32, inner: Seen, packets: u64, bytes: u64) {
    let class = classify(inner, port_class, proto_class);
    let idx = counter_index(slot, dir, class as u32, n_classes());
    if let Some(c) = INNER_COUNTERS.get_ptr_mut(idx) {
        // SAFETY: a per-CPU map value pointer, valid for this run.
        unsafe {
            (*c).packets += packets;
            (*c).bytes += bytes;
        }
    }
}

#[inline(always)]
pub fn observe_skb_inner(ctx: &TcContext) {
    count_inner(&SkbPacket::new(ctx));
}

#[inline(always)]
pub fn observe_xdp_inner(ctx: &XdpContext) {
    count_inner(&XdpPacket::new(ctx));
}
