//! What the kernel's drop reasons mean for cluster traffic, in a sentence each. The names are
//! those of `enum skb_drop_reason` without the SKB_DROP_REASON_ prefix.

const EXPLANATIONS: &[(&str, &str)] = &[
    (
        "NETFILTER_DROP",
        "a firewall rule dropped it (nftables or iptables, including rules firewalld, kube-proxy or the CNI installed)",
    ),
    (
        "IP_RPFILTER",
        "reverse-path filter: the reply route to the source leaves by another interface and rp_filter is strict (1)",
    ),
    (
        "PKT_TOO_BIG",
        "larger than the path MTU and not allowed to fragment: lower the overlay MTU (VXLAN needs 50 bytes of headroom)",
    ),
    (
        "FRAG_REASM_TIMEOUT",
        "a fragment waited too long for the rest of its packet: fragments are being lost, often by an MTU mismatch",
    ),
    (
        "FRAG_TOO_FAR",
        "fragment reassembly gave up on an out-of-order fragment",
    ),
    (
        "IP_INNOROUTES",
        "no route for the destination of an incoming packet",
    ),
    (
        "IP_OUTNOROUTES",
        "no route for the destination of an outgoing packet (a k3s node needs a default route)",
    ),
    (
        "IP_INADDRERRORS",
        "the destination address is not valid here",
    ),
    (
        "UDP_CSUM",
        "UDP checksum wrong: check checksum offload on the overlay device or the NIC",
    ),
    ("TCP_CSUM", "TCP checksum wrong: check checksum offload"),
    ("IP_CSUM", "IPv4 header checksum wrong"),
    (
        "VXLAN_INVALID_HDR",
        "a VXLAN packet whose header is not valid (flags, or an encapsulation the device does not expect)",
    ),
    (
        "VXLAN_VNI_NOT_FOUND",
        "a VXLAN packet for a VNI no local VXLAN device serves",
    ),
    (
        "VXLAN_INVALID_SMAC",
        "a VXLAN packet whose inner source MAC is invalid",
    ),
    (
        "VXLAN_ENTRY_EXISTS",
        "the VXLAN forwarding database refused the source: its MAC is known on another remote",
    ),
    (
        "NO_SOCKET",
        "nothing listens on that port: the service is down, or the port is not the one the peer uses",
    ),
    ("SOCKET_FILTER", "a socket filter dropped it"),
    ("SOCKET_RCVBUFF", "the receiving socket's buffer was full"),
    (
        "NEIGH_FAILED",
        "neighbour (ARP/NDP) resolution failed: the next hop does not answer",
    ),
    (
        "NEIGH_QUEUEFULL",
        "too many packets waited for neighbour (ARP/NDP) resolution",
    ),
    ("OTHERHOST", "addressed to another host's MAC"),
    (
        "IPV6DISABLED",
        "IPv6 is disabled on the receiving interface",
    ),
    ("TC_INGRESS", "a tc ingress program or filter dropped it"),
    ("TC_EGRESS", "a tc egress program or filter dropped it"),
    (
        "QDISC_DROP",
        "the queueing discipline dropped it (queue full)",
    ),
    ("CPU_BACKLOG", "the CPU's receive backlog was full"),
    ("XDP", "an XDP program dropped it"),
    ("IP_INHDR", "the IP header is invalid"),
    (
        "UNICAST_IN_L2_MULTICAST",
        "a unicast IP packet inside a link-layer multicast or broadcast frame",
    ),
];

/// A sentence on what `reason` means, for the reasons that matter to cluster traffic.
pub fn explain(reason: &str) -> Option<&'static str> {
    EXPLANATIONS
        .iter()
        .find(|(name, _)| *name == reason)
        .map(|(_, text)| *text)
}

/// Reasons that are a socket or queue tidying up, not traffic lost on the way: counted like
/// every drop, but kept apart from network drops when shown to people.
const HOUSEKEEPING: &[&str] = &[
    "QUEUE_PURGE",
    "SOCKET_CLOSE",
    "TCP_CLOSE",
    "TCP_ZEROWINDOW",
    "SOCKET_RCVBUFF",
];

pub fn is_housekeeping(reason: &str) -> bool {
    HOUSEKEEPING.contains(&reason)
}
