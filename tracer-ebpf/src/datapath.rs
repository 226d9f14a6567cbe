//! Counting: find the interface slot, parse, classify, add to the per-CPU counter of
//! (slot, direction, class). Plain adds are exact here: tc and XDP run with bottom halves
//! disabled, so nothing else on this CPU touches the same counter mid-update.

use aya_ebpf::programs::{TcContext, XdpContext};
use aya_log_ebpf::error;
use tracer_common::{
    classes::classify,
    counters::{DIR_INGRESS, IFACE_NO_L2, IfaceSlot, counter_index},
    packet::{ETH_P_IP, ETH_P_IPV6, Headers, Packet, parse_ethernet, parse_ip},
};

use crate::{
    maps::{COUNTERS, iface, n_classes, port_class, proto_class},
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
    count(ctx, slot, dir, &h, segs, bytes);
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
    count(ctx, slot, DIR_INGRESS, &h, 1, XdpPacket::len(ctx) as u64);
}

#[inline(always)]
fn count<C: aya_ebpf::EbpfContext>(
    ctx: &C,
    slot: IfaceSlot,
    dir: u32,
    h: &Headers,
    packets: u64,
    bytes: u64,
) {
    let class = classify(h, port_class, proto_class) as u32;
    let idx = counter_index(slot.slot as u32, dir, class, n_classes());
    match COUNTERS.get_ptr_mut(idx) {
        Some(c) => unsafe {
            (*c).packets += packets;
            (*c).bytes += bytes;
        },
        // Only a loader that sized the array wrong gets here.
        None => error!(
            ctx,
            "counter {} out of range (slot {}, class {})", idx, slot.slot, class
        ),
    }
}
