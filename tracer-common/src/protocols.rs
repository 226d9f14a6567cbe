//! IP protocols: the numbers the parser matches on, and the one table of their names. The names
//! are those of `/etc/protocols`, which nft and firewalld resolve protocol names with
//! (`getprotobyname`): `ipencap` is 4 (IP in IP, Calico's IPIP mode) and `ipip` is 94, as nft
//! prints them. The first name of a number is the one printed; later ones are aliases accepted
//! when reading.

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const IPPROTO_VRRP: u8 = 112;
pub const IPPROTO_SCTP: u8 = 132;

/// Name and number of the IP protocols a node's firewall or traffic names.
pub const IP_PROTOCOLS: &[(&str, u8)] = &[
    ("icmp", IPPROTO_ICMP),
    ("igmp", 2),
    ("ipencap", 4),
    ("tcp", IPPROTO_TCP),
    ("egp", 8),
    ("udp", IPPROTO_UDP),
    ("dccp", 33),
    ("ipv6", 41),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("ipv6-icmp", IPPROTO_ICMPV6),
    ("icmpv6", IPPROTO_ICMPV6),
    ("ospf", 89),
    ("ipip", 94),
    ("pim", 103),
    ("comp", 108),
    ("vrrp", IPPROTO_VRRP),
    ("l2tp", 115),
    ("sctp", IPPROTO_SCTP),
    ("udplite", 136),
];

/// The name a protocol number is printed with, when it has one.
pub fn name(number: u8) -> Option<&'static str> {
    IP_PROTOCOLS
        .iter()
        .find(|(_, n)| *n == number)
        .map(|(name, _)| *name)
}

/// The number of a protocol name (lower case, aliases included).
pub fn number(name: &str) -> Option<u8> {
    IP_PROTOCOLS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, number)| *number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        for (n, number_) in IP_PROTOCOLS {
            assert_eq!(number(n), Some(*number_));
            assert_eq!(number(name(*number_).unwrap()), Some(*number_));
        }
        assert_eq!(name(4), Some("ipencap"));
        assert_eq!(number("ipip"), Some(94));
        assert_eq!(name(58), Some("ipv6-icmp"));
        assert_eq!(number("icmpv6"), Some(58));
        assert_eq!(name(200), None);
    }
}
