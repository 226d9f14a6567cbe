//! firewalld's ICMP type names and the ICMP types they match, from its nftables backend's table
//! (`ICMP_TYPES_FRAGMENTS` in firewalld 1.3.3 `core/nftables.py`). A name that also fixes the
//! ICMP code (`port-unreachable` is destination-unreachable code 3) is listed with it: a packet
//! description without a code cannot tell whether it matches.

/// (name, ICMP type, code) for IPv4.
const V4: &[(&str, u8, Option<u8>)] = &[
    ("communication-prohibited", 3, Some(13)),
    ("destination-unreachable", 3, None),
    ("echo-reply", 0, None),
    ("echo-request", 8, None),
    ("fragmentation-needed", 3, Some(4)),
    ("host-precedence-violation", 3, Some(14)),
    ("host-prohibited", 3, Some(10)),
    ("host-redirect", 5, Some(1)),
    ("host-unknown", 3, Some(7)),
    ("host-unreachable", 3, Some(1)),
    ("ip-header-bad", 12, Some(1)),
    ("network-prohibited", 3, Some(8)),
    ("network-redirect", 5, Some(0)),
    ("network-unknown", 3, Some(6)),
    ("network-unreachable", 3, Some(0)),
    ("parameter-problem", 12, None),
    ("port-unreachable", 3, Some(3)),
    ("precedence-cutoff", 3, Some(15)),
    ("protocol-unreachable", 3, Some(2)),
    ("redirect", 5, None),
    ("required-option-missing", 12, Some(1)),
    ("router-advertisement", 9, None),
    ("router-solicitation", 10, None),
    ("source-quench", 4, None),
    ("source-route-failed", 3, Some(5)),
    ("time-exceeded", 11, None),
    ("timestamp-reply", 14, None),
    ("timestamp-request", 13, None),
    ("tos-host-redirect", 5, Some(3)),
    ("tos-host-unreachable", 3, Some(12)),
    ("tos-network-redirect", 5, Some(2)),
    ("tos-network-unreachable", 3, Some(11)),
    ("ttl-zero-during-reassembly", 11, Some(1)),
    ("ttl-zero-during-transit", 11, Some(0)),
];

/// (name, ICMPv6 type, code) for IPv6.
const V6: &[(&str, u8, Option<u8>)] = &[
    ("address-unreachable", 1, Some(3)),
    ("bad-header", 4, Some(0)),
    ("beyond-scope", 1, Some(2)),
    ("communication-prohibited", 1, Some(1)),
    ("destination-unreachable", 1, None),
    ("echo-reply", 129, None),
    ("echo-request", 128, None),
    ("failed-policy", 1, Some(5)),
    ("neighbour-advertisement", 136, None),
    ("neighbour-solicitation", 135, None),
    ("no-route", 1, Some(0)),
    ("packet-too-big", 2, None),
    ("parameter-problem", 4, None),
    ("port-unreachable", 1, Some(4)),
    ("redirect", 137, None),
    ("reject-route", 1, Some(6)),
    ("router-advertisement", 134, None),
    ("router-solicitation", 133, None),
    ("time-exceeded", 3, None),
    ("ttl-zero-during-reassembly", 3, Some(1)),
    ("ttl-zero-during-transit", 3, Some(0)),
    ("unknown-header-type", 4, Some(1)),
    ("unknown-option", 4, Some(2)),
];

/// The (type, code) firewalld matches for `name` in IPv4 (`v6` false) or IPv6; `None` when
/// firewalld has no rule for it in that family.
pub fn icmp_type(name: &str, v6: bool) -> Option<(u8, Option<u8>)> {
    let table = if v6 { V6 } else { V4 };
    table
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, t, c)| (*t, *c))
}

/// The firewalld name of an ICMP type that no code narrows (`echo-request` for type 8).
pub fn icmp_name(icmp_type: u8, v6: bool) -> Option<&'static str> {
    let table = if v6 { V6 } else { V4 };
    table
        .iter()
        .find(|(_, t, c)| *t == icmp_type && c.is_none())
        .map(|(n, _, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_types() {
        assert_eq!(icmp_type("echo-request", false), Some((8, None)));
        assert_eq!(icmp_type("echo-request", true), Some((128, None)));
        assert_eq!(icmp_type("port-unreachable", false), Some((3, Some(3))));
        assert_eq!(icmp_type("neighbour-solicitation", false), None);
        assert_eq!(icmp_name(8, false), Some("echo-request"));
        assert_eq!(icmp_name(3, false), Some("destination-unreachable"));
    }
}
