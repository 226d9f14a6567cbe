//! The kernel's drop reasons as a type. A [`Reason`] is a name of `enum skb_drop_reason`
//! (without its `SKB_DROP_REASON_` prefix) with what tracer knows about it: a sentence on what
//! it means for cluster traffic, and whether it is a socket or queue tidying up rather than
//! traffic lost. Where the kernel dropped a packet can say more than its reason: an ICMP echo
//! reply freed as `NO_SOCKET` in `icmp_rcv` after ping's raw socket took its copy is delivery,
//! not loss, and a `NOT_SPECIFIED` drop in `ip_fragment` is a packet too big for the path;
//! [`Reason::at`] applies what the place tells. [`Reasons`] maps the numbers the drop probe
//! reports to reasons, built from the names the running kernel's BTF gives (their numbering
//! changes between kernel versions).

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

/// What the function that dropped a packet adds to the reason the kernel gave: for each
/// (reason, function), whether it is housekeeping, and the sentence that explains it. Only
/// places where the pair is unambiguous are listed.
const BY_PLACE: &[(&str, &str, bool, &str)] = &[
    (
        "NO_SOCKET",
        "icmp_rcv",
        true,
        "an ICMP echo reply no ping socket took: ping run as root reads its own copy on a raw socket, so it was delivered",
    ),
    (
        "NO_SOCKET",
        "ping_rcv",
        true,
        "an ICMP echo reply no ping socket took: ping run as root reads its own copy on a raw socket, so it was delivered",
    ),
    (
        "NO_SOCKET",
        "icmpv6_rcv",
        true,
        "an ICMPv6 echo reply no ping socket took: ping run as root reads its own copy on a raw socket, so it was delivered",
    ),
    (
        "NOT_SPECIFIED",
        "skb_queue_purge",
        true,
        "a socket's queue emptied as it closed (kernels before 5.17 give no reason)",
    ),
    (
        "NOT_SPECIFIED",
        "ip_fragment",
        false,
        "larger than the path MTU with don't-fragment set (an ICMP 'fragmentation needed' went back): lower the overlay and the pods' MTU",
    ),
    (
        "NOT_SPECIFIED",
        "ip6_fragment",
        false,
        "larger than the path MTU (IPv6 routers never fragment): lower the overlay and the pods' MTU",
    ),
    (
        "NOT_SPECIFIED",
        "nf_hook_slow",
        false,
        "a firewall rule dropped it (netfilter's verdict; kernels before 5.17 give no reason)",
    ),
];

/// One drop reason. Equal, ordered and hashed by name and housekeeping (the same reason can
/// be delivery in one place and loss in another); serialized as its name.
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

    /// The reason of this name, dropped in `function` (`icmp_rcv`, without `+0x..`): what
    /// the place tells about it applied.
    pub fn at(name: impl Into<String>, function: Option<&str>) -> Reason {
        let mut r = Reason::named(name);
        if let Some((_, _, housekeeping, why)) =
            function.and_then(|f| BY_PLACE.iter().find(|(n, at, ..)| *n == r.name && *at == f))
        {
            r.housekeeping = *housekeeping;
            r.explain = Some(why);
        }
        r
    }

    /// This reason, marked housekeeping or not (as a record written with its place said).
    #[must_use]
    pub fn with_housekeeping(mut self, housekeeping: bool) -> Reason {
        self.housekeeping = housekeeping;
        self
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

    /// The firewall dropped it: the drop the node's ruleset can explain (before 5.17, a
    /// drop without reason in netfilter's verdict is one too).
    pub fn is_firewall(&self) -> bool {
        self.name == Self::NETFILTER_DROP
            || (self.name == "NOT_SPECIFIED"
                && self
                    .explain
                    .is_some_and(|e| e.starts_with("a firewall rule")))
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
        self.name == other.name && self.housekeeping == other.housekeeping
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
        (&self.name, self.housekeeping).cmp(&(&other.name, other.housekeeping))
    }
}

impl Hash for Reason {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.housekeeping.hash(state);
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

/// A reason as records hold it: `"reason": NAME, "housekeeping": BOOL`, side by side (use with
/// `#[serde(flatten, with = "as_fields")]`). The flag keeps what the place told when the record
/// is read back; a record written before it existed gets the reason's own.
pub mod as_fields {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Reason;

    #[derive(Serialize, Deserialize)]
    struct Fields {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        housekeeping: Option<bool>,
    }

    pub fn serialize<S: Serializer>(r: &Reason, s: S) -> Result<S::Ok, S::Error> {
        Fields {
            reason: r.name.clone(),
            housekeeping: Some(r.housekeeping),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Reason, D::Error> {
        let f = Fields::deserialize(d)?;
        let reason = Reason::named(f.reason);
        Ok(match f.housekeeping {
            Some(h) => reason.with_housekeeping(h),
            None => reason,
        })
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

    /// The reason of this number, dropped in `function` (see [`Reason::at`]).
    pub fn at(&self, value: u32, function: Option<&str>) -> Reason {
        let reason = self.get(value);
        match function {
            Some(_) => Reason::at(reason.name, function),
            None => reason,
        }
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

    #[test]
    fn the_place_of_a_drop_refines_its_reason() {
        // An echo reply ping's raw socket already read: delivered, not lost.
        let reply = Reason::at("NO_SOCKET", Some("icmp_rcv"));
        assert!(reply.is_housekeeping());
        assert!(reply.explain().unwrap().contains("raw socket"));
        // The same reason elsewhere is a port nothing listens on: lost.
        let port = Reason::at("NO_SOCKET", Some("__udp4_lib_rcv"));
        assert!(!port.is_housekeeping());
        assert_ne!(reply, port, "one reason, two meanings: two rows");
        assert_eq!(port, Reason::named("NO_SOCKET"));
        // A drop without reason explained by where it happened.
        let too_big = Reason::at("NOT_SPECIFIED", Some("ip_fragment"));
        assert!(too_big.explain().unwrap().contains("MTU") && !too_big.is_housekeeping());
        let verdict = Reason::at("NOT_SPECIFIED", Some("nf_hook_slow"));
        assert!(verdict.is_firewall());
        assert!(!Reason::at("NOT_SPECIFIED", Some("ip6_mc_input")).is_firewall());
        // Records keep the flag: read back, the reason is the same.
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Row {
            #[serde(flatten, with = "as_fields")]
            reason: Reason,
        }
        let json = serde_json::to_string(&Row {
            reason: reply.clone(),
        })
        .unwrap();
        assert_eq!(json, r#"{"reason":"NO_SOCKET","housekeeping":true}"#);
        assert_eq!(serde_json::from_str::<Row>(&json).unwrap().reason, reply);
        let old = serde_json::from_str::<Row>(r#"{"reason":"QUEUE_PURGE"}"#).unwrap();
        assert!(old.reason.is_housekeeping());
    }
}
