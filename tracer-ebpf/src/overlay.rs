//! Overlay packets: which outer packets carry a VXLAN inner frame for a second stage to decode.
//! The datapath and the drop probe decide it the same way.

use tracer_common::packet::{IPPROTO_UDP, Packet, Seen, VXLAN_HLEN, vxlan_vni};

use crate::maps::is_vxlan_class;

/// The VNI and the offset of the inner Ethernet header of `pkt`, parsed as `h` and classified
/// as `class`, when it is a UDP datagram of a class flagged VXLAN with a valid VXLAN header.
#[inline(always)]
pub fn vxlan_inner<P: Packet + ?Sized>(pkt: &P, h: Seen, class: u8) -> Option<(u32, usize)> {
    if h.proto != IPPROTO_UDP || !h.has_ports() || !is_vxlan_class(class) {
        return None;
    }
    let off = h.payload_off as usize;
    let vni = vxlan_vni(pkt, off)?;
    Some((vni, off + VXLAN_HLEN))
}
