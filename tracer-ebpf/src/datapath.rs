//! Counting: find the interface slot, parse, classify, add to the per-CPU counter of
//! (slot, direction, class) and to its packet-size bucket, kept in the same entry. For overlay
//! (VXLAN) classes a second program, reached by tail call, decodes the inner frame and counts
//! it under its own class: verified together, the two parses would multiply each other's paths
//! past the verifier's limit. Plain adds are exact here: tc and XDP run with bottom halves
//! disabled, so nothing else on this CPU touches a counter (or the hand-over entry) mid-update.

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
    packet::{ETH_P_IP, ETH_P_IPV6, Headers, Packet, parse_ethernet, parse_ip},
};

use crate::{
    maps::{
        COUNTERS, INNER_COUNTERS, INNER_JOB, TC_STAGES, XDP_STAGES, iface, n_classes, port_class,
        proto_class,
    },
    overlay::vxlan_inner,
    readers::{SkbPacket, XdpPacket},
};

#[inline(always)]
pub fn observe_skb(ctx: &TcContext, dir: u32) {
    let skb = unsafe { &*ctx.skb.skb };
    let Some(slot) = iface(skb.ifindex) else {
        return;
    };
    let pkt = SkbPacket::new(ctx);
    let h = if slot.flags & IFACE_NO_L2 != 0 {
        parse_ip::<_, false>(&pkt, 0, u16::from_be(skb.protocol as u16))
    } else {
        parse_ethernet::<_, false>(&pkt, 0)
    };
    // A GSO super-packet leaves as gso_segs packets, each with its own copy of the headers.
    let segs = if skb.gso_segs > 1 {
        skb.gso_segs as u64
    } else {
        1
    };
    let bytes = skb.len as u64 + (segs - 1) * h.payload_off as u64;
    if count(ctx, &pkt, slot, dir, &h, segs, bytes) {
        // SAFETY: same program type and context; returns only when the call fails.
        unsafe { TC_STAGES.tail_call(ctx, STAGE_INNER) };
    }
}

#[inline(always)]
pub fn observe_xdp(ctx: &XdpContext) {
    let Some(slot) = iface(ctx.ingress_ifindex() as u32) else {
        return;
    };
    let pkt = XdpPacket::new(ctx);
    let h = if slot.flags & IFACE_NO_L2 != 0 {
        let ethertype = match pkt.load::<[u8; 2]>(0).map(|b| b[0] >> 4) {
            Some(4) => ETH_P_IP,
            Some(6) => ETH_P_IPV6,
            _ => 0,
        };
        parse_ip::<_, false>(&pkt, 0, ethertype)
    } else {
        parse_ethernet::<_, false>(&pkt, 0)
    };
    if count(
        ctx,
        &pkt,
        slot,
        DIR_INGRESS,
        &h,
        1,
        XdpPacket::len(ctx) as u64,
    ) {
        // SAFETY: as in observe_skb.
        unsafe { XDP_STAGES.tail_call(ctx, STAGE_INNER) };
    }
}

/// Counts the packet; true when it carries an inner frame for the second stage, whose job
/// is then waiting in INNER_JOB.
#[inline(always)]
fn count<C: EbpfContext, P: Packet>(
    ctx: &C,
    pkt: &P,
    slot: IfaceSlot,
    dir: u32,
    h: &Headers,
    packets: u64,
    bytes: u64,
) -> bool {
    let class = classify(h, port_class, proto_class);
    let idx = counter_index(slot.slot as u32, dir, class as u32, n_classes());
    let Some(c) = COUNTERS.get_ptr_mut(idx) else {
        // Only a loader that sized the array wrong gets here.
        error!(
            ctx,
            "counter {} out of range (slot {}, class {})", idx, slot.slot, class
        );
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
    crate::peers::count_peer(pkt, slot.slot, dir, class, h, packets, bytes);
    let Some((_, inner_off)) = vxlan_inner(pkt, h, class) else {
        return false;
    };
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
    let inner = parse_ethernet::<_, false>(pkt, job.off as usize);
    let class = classify(&inner, port_class, proto_class);
    let idx = counter_index(job.slot, job.dir, class as u32, n_classes());
    if let Some(c) = INNER_COUNTERS.get_ptr_mut(idx) {
        // SAFETY: a per-CPU map value pointer, valid for this run.
        unsafe {
            (*c).packets += job.packets;
            (*c).bytes += job.bytes;
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
