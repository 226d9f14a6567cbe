//! The families of node-to-node traffic: the node's own addresses, packets and bytes per
//! overlay or BGP peer, and the drops of that traffic per peer. A rule joins one node's egress
//! to a peer with that peer's ingress from it, finding the peer's node through its address.

use std::net::IpAddr;

use super::{Exposition, family, sample};
use crate::events::{PeerDrop, PeerEntry};

/// `tracer_node_address_info{node,address} 1` per address of the node.
pub(super) fn addresses(o: &mut Exposition, addresses: &[IpAddr]) {
    const NAME: &str = "tracer_node_address_info";
    family(
        o,
        NAME,
        "gauge",
        "An address of this node (loopback left out), to map a peer address to its node; always 1.",
    );
    for a in addresses.iter().filter(|a| !a.is_loopback()) {
        sample(o, NAME, &[("address", &a.to_string())], 1);
    }
}

/// Packets and bytes per (interface, direction, peer, class).
pub(super) fn traffic(o: &mut Exposition, peers: &[PeerEntry]) {
    for (name, help, value) in [
        (
            "tracer_overlay_peer_packets_total",
            "Packets of node-to-node classes (overlays, BGP) per interface, direction and peer: the outer destination on egress, the outer source on ingress.",
            (|p: &PeerEntry| p.packets) as fn(&PeerEntry) -> u64,
        ),
        (
            "tracer_overlay_peer_bytes_total",
            "Bytes (whole frames) of node-to-node classes per interface, direction and peer.",
            |p: &PeerEntry| p.bytes,
        ),
    ] {
        family(o, name, "counter", help);
        for p in peers {
            let peer = p.peer.to_string();
            sample(
                o,
                name,
                &[
                    ("iface", &p.iface),
                    ("direction", p.direction.as_str()),
                    ("peer", &peer),
                    ("class", &p.class),
                ],
                value(p),
            );
        }
    }
}

/// Exact drops of node-to-node traffic per (peer, class, reason).
pub(super) fn drops(o: &mut Exposition, drops: &[PeerDrop]) {
    const NAME: &str = "tracer_overlay_peer_drops_total";
    family(
        o,
        NAME,
        "counter",
        "Packets of node-to-node classes to or from a peer that this node's kernel dropped, by kernel drop reason.",
    );
    for d in drops {
        let peer = d.peer.to_string();
        sample(
            o,
            NAME,
            &[
                ("peer", &peer),
                ("class", &d.class),
                ("reason", d.reason.name()),
            ],
            d.count,
        );
    }
}
