//! The kernel's drop reasons as a type. A [`Reason`] is a name of `enum skb_drop_reason`
//! (without its `SKB_DROP_REASON_` prefix) with what tracer knows about it: a sentence on what
//! it means for cluster traffic, and whether it is a socket or queue tidying up rather than
//! traffic lost. [`Reasons`] maps the numbers the drop probe reports to reasons, built from
//! the names the running kernel's BTF gives (their numbering changes between kernel versions).

use std::{cmp::Ordering, collections::HashMap, fmt, hash::Hash};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::probes::drops::ReasonNames;

/// What a few reasons mean for cluster traffic, in a sentence each.
const EXPLANATIONS: &[(&str, &str)] = &[
    (
        Reason::NETFILTER_DROP,
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

/// Reasons that are a socket or queue tidying up, not traffic lost on the way: counted like
/// every drop, but kept apart from network drops when shown to people.
const HOUSEKEEPING: &[&str] = &[
    "QUEUE_PURGE",
    "SOCKET_CLOSE",
    "TCP_CLOSE",
    "TCP_ZEROWINDOW",
    "SOCKET_RCVBUFF",
];

/// One drop reason. Equal, ordered and hashed by name; serialized as its name.
#[derive(Clone, Debug)]
pub struct Reason {
    name: String,
    explain: Option<&'static str>,
    housekeeping: bool,
}

impl Reason {
    /// A firewall rule (nftables or iptables) dropped the packet.
    pub const NETFILTER_DROP: &'static str = "NETFILTER_DROP";

    /// The reason of this name (`NETFILTER_DROP`, without the `SKB_DROP_REASON_` prefix).
    pub fn named(name: impl Into<String>) -> Reason {
        let name = name.into();
        let explain = EXPLANATIONS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| *text);
        let housekeeping = HOUSEKEEPING.contains(&name.as_str());
        Reason {
            name,
            explain,
            housekeeping,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A sentence on what the reason means, for the reasons that matter to cluster traffic.
    pub fn explain(&self) -> Option<&'static str> {
        self.explain
    }

    /// A socket or queue tidying up (`QUEUE_PURGE` on every closed connection...), not
    /// traffic lost on the way.
    pub fn is_housekeeping(&self) -> bool {
        self.housekeeping
    }

    /// The firewall dropped it: the drop the node's ruleset can explain.
    pub fn is_firewall(&self) -> bool {
        self.name == Self::NETFILTER_DROP
    }
}

impl From<&str> for Reason {
    fn from(name: &str) -> Reason {
        Reason::named(name)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.name)
    }
}

impl PartialEq for Reason {
    fn eq(&self, other: &Reason) -> bool {
        self.name == other.name
    }
}

impl Eq for Reason {}

impl PartialEq<str> for Reason {
    fn eq(&self, name: &str) -> bool {
        self.name == name
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, name: &&str) -> bool {
        self.name == *name
    }
}

impl PartialOrd for Reason {
    fn partial_cmp(&self, other: &Reason) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Reason {
    fn cmp(&self, other: &Reason) -> Ordering {
        self.name.cmp(&other.name)
    }
}

impl Hash for Reason {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Reason, D::Error> {
        String::deserialize(d).map(Reason::named)
    }
}

/// The running kernel's reasons by the number the probe reports.
#[derive(Clone, Debug, Default)]
pub struct Reasons {
    by_value: HashMap<u32, Reason>,
    names: ReasonNames,
}

impl Reasons {
    pub fn new(names: ReasonNames) -> Reasons {
        let by_value = names
            .iter()
            .map(|(value, name)| (value, Reason::named(name)))
            .collect();
        Reasons { by_value, names }
    }

    /// The reason of this number; one this kernel does not name is called by its number.
    pub fn get(&self, value: u32) -> Reason {
        self.by_value
            .get(&value)
            .cloned()
            .unwrap_or_else(|| Reason::named(self.names.name(value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_carry_their_meaning_and_compare_by_name() {
        let names = ReasonNames::from_pairs([
            ("SKB_DROP_REASON_NETFILTER_DROP".to_string(), 7),
            ("SKB_DROP_REASON_QUEUE_PURGE".to_string(), 9),
        ]);
        let reasons = Reasons::new(names);
        let nf = reasons.get(7);
        assert_eq!(nf.name(), "NETFILTER_DROP");
        assert!(nf.is_firewall() && !nf.is_housekeeping());
        assert!(nf.explain().unwrap().contains("firewall rule"));
        let purge = reasons.get(9);
        assert!(purge.is_housekeeping() && purge.explain().is_none());
        assert_eq!(reasons.get(0xdead_0000).name(), "REASON_0xdead0000");
        assert_eq!(Reason::from("NETFILTER_DROP"), nf);
        // Tables pad it like the string it replaced.
        assert_eq!(format!("{nf:<16}|"), "NETFILTER_DROP  |");
        assert!(Reason::named("SOCKET_RCVBUFF").is_housekeeping());
        let json = serde_json::to_string(&nf).unwrap();
        assert_eq!(json, "\"NETFILTER_DROP\"");
        assert_eq!(serde_json::from_str::<Reason>(&json).unwrap(), nf);
    }
}
