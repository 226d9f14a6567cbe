//! The value checks and normalisations firewalld's file readers apply (`firewall/functions.py`,
//! `core/io/io_object.py`): port ranges and their coalescing, port protocols, addresses, object
//! names. A check that fails here is one that makes firewalld refuse the file.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::PortProto;
use crate::model::net::Cidr;

/// Longest zone name: nftables/iptables chain names are limited to 28 characters and the
/// longest chain firewalld builds is `POST_<zone>_allow` (`max_zone_name_len()`).
pub const MAX_ZONE_NAME: usize = 17;

/// A value firewalld's readers refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("protocol {0:?} is not one of tcp, udp, sctp, dccp")]
    PortProtocol(String),
    #[error("protocol number {0} is above 255")]
    ProtocolNumber(u32),
    #[error("{0:?} is not a protocol")]
    Protocol(String),
    #[error("{0:?} is not a port number")]
    PortNumber(String),
    /// A number above 65535 in the port spec.
    #[error("port number in {0:?} is too big")]
    PortTooBig(String),
    #[error("{0:?} is not a valid port or port range")]
    Port(String),
    #[error("{0:?} is not an IP address, network or MAC address")]
    SourceAddress(String),
    #[error("name can't be empty")]
    EmptyName,
    #[error("{c:?} is not allowed in name {name:?}")]
    NameCharacter { c: char, name: String },
    #[error("zone name {name:?} has {length} characters, at most {MAX_ZONE_NAME} are allowed")]
    ZoneNameLength { name: String, length: usize },
}

/// Protocols a `<port>`/`<source-port>`/`<forward-port>` may name (`check_tcpudp`).
pub fn check_port_proto(proto: &str) -> Result<(), ValueError> {
    match proto {
        "tcp" | "udp" | "sctp" | "dccp" => Ok(()),
        _ => Err(ValueError::PortProtocol(proto.to_string())),
    }
}

/// An IP protocol for `<protocol value=...>`: a number 0-255 or a name. firewalld looks names
/// up in /etc/protocols; this only checks that it looks like one.
pub fn check_protocol(proto: &str) -> Result<(), ValueError> {
    if let Ok(n) = proto.parse::<u32>() {
        return if n <= 255 {
            Ok(())
        } else {
            Err(ValueError::ProtocolNumber(n))
        };
    }
    if !proto.is_empty()
        && proto
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Ok(())
    } else {
        Err(ValueError::Protocol(proto.to_string()))
    }
}

/// A port spec as firewalld's `getPortRange` reads it: `N`, `N-M` (in either order) or a
/// service name from /etc/services. Returns (low, high) for numbers, `None` for a name (which
/// firewalld resolves on its host; the model keeps the name).
fn port_range(port: &str) -> Result<Option<(u32, u32)>, ValueError> {
    let num = |s: &str| -> Result<u32, ValueError> {
        let n: u32 = s
            .parse()
            .map_err(|_| ValueError::PortNumber(s.to_string()))?;
        if n > 65535 {
            return Err(ValueError::PortTooBig(port.to_string()));
        }
        Ok(n)
    };
    let port = port.trim();
    if port.chars().all(|c| c.is_ascii_digit()) && !port.is_empty() {
        let n = num(port)?;
        return Ok(Some((n, n)));
    }
    if let Some((a, b)) = port.split_once('-')
        && !a.is_empty()
        && !b.is_empty()
        && a.chars().all(|c| c.is_ascii_digit())
        && b.chars().all(|c| c.is_ascii_digit())
    {
        let (a, b) = (num(a)?, num(b)?);
        return Ok(Some((a.min(b), a.max(b))));
    }
    if !port.is_empty()
        && port
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && port.chars().any(|c| c.is_ascii_alphabetic())
    {
        return Ok(None);
    }
    Err(ValueError::Port(port.to_string()))
}

/// A port or range as numbers (`80`, `2379-2380`); `None` for a service name or a bad spec.
pub fn port_bounds(port: &str) -> Option<(u16, u16)> {
    match port_range(port) {
        Ok(Some((lo, hi))) => Some((u16::try_from(lo).ok()?, u16::try_from(hi).ok()?)),
        _ => None,
    }
}

fn range_str((a, b): (u32, u32)) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
}

/// Checks a port spec; on success returns it in firewalld's normal form (`portStr`:
/// `90-80` becomes `80-90`, `22-22` becomes `22`; names are kept).
pub fn normalize_port(port: &str) -> Result<String, ValueError> {
    Ok(match port_range(port)? {
        Some(r) => range_str(r),
        None => port.trim().to_string(),
    })
}

/// Adds a port to a zone's list the way firewalld's zone reader does: a port already covered by
/// a range of the same protocol is skipped; overlapping ranges are merged into one entry, which
/// goes to the end of the list. `port` must already be normalised.
pub fn add_coalesced(list: &mut Vec<PortProto>, port: &str, proto: &str) {
    let Ok(Some(new)) = port_range(port) else {
        // A service name: firewalld would have resolved it to a number first; without the
        // node's /etc/services keep it as an entry of its own.
        let entry = PortProto::new(port, proto);
        if !list.contains(&entry) {
            list.push(entry);
        }
        return;
    };
    let same: Vec<(u32, u32)> = list
        .iter()
        .filter(|p| p.proto == proto)
        .filter_map(|p| port_range(&p.port).ok().flatten())
        .collect();
    if same.iter().any(|&(lo, hi)| new.0 >= lo && new.1 <= hi) {
        return;
    }
    let mut sorted = same;
    sorted.sort_by_key(|r| r.0);
    let mut merged = new;
    let mut removed = Vec::new();
    for r in sorted {
        let covers = merged.0 <= r.0 && merged.1 >= r.1;
        let extends_end = merged.0 <= r.0 && merged.1 < r.1 && merged.1 >= r.0;
        let extends_start = merged.0 > r.0 && merged.1 >= r.1 && merged.0 <= r.1;
        if covers {
            removed.push(r);
        } else if extends_end {
            removed.push(r);
            merged = (merged.0, r.1);
        } else if extends_start {
            removed.push(r);
            merged = (r.0, merged.1);
        }
    }
    list.retain(|p| {
        p.proto != proto || !matches!(port_range(&p.port), Ok(Some(r)) if removed.contains(&r))
    });
    list.push(PortProto::new(range_str(merged), proto));
}

/// A MAC address `xx:xx:xx:xx:xx:xx` (`check_mac`).
pub fn is_mac(s: &str) -> bool {
    s.len() == 17
        && s.char_indices().all(|(i, c)| {
            if i % 3 == 2 {
                c == ':'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// A source address for a zone binding: IPv4 with an optional `/len` or `/netmask`, IPv6 with
/// an optional `/len`, or a MAC address (`checkIPnMask`, `checkIP6nMask`, `check_mac`).
pub fn check_source_address(s: &str) -> Result<(), ValueError> {
    if is_mac(s) || parse_cidr(s).is_some() {
        Ok(())
    } else {
        Err(ValueError::SourceAddress(s.to_string()))
    }
}

/// Parses `ADDR[/LEN]` (or `A.B.C.D/N.N.N.N` for IPv4) into the network address and prefix
/// length. Host bits are allowed, as in firewalld.
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, mask) = match s.split_once('/') {
        Some((a, m)) if !a.is_empty() && !m.is_empty() => (a, Some(m)),
        Some(_) => return None,
        None => (s, None),
    };
    if let Ok(v4) = addr.parse::<Ipv4Addr>() {
        let len = match mask {
            None => 32,
            Some(m) if m.contains('.') => {
                let bits = u32::from(m.parse::<Ipv4Addr>().ok()?);
                // A netmask must be contiguous ones.
                if bits.leading_ones() + bits.trailing_zeros() != 32 {
                    return None;
                }
                bits.leading_ones() as u8
            }
            Some(m) => m.parse::<u8>().ok().filter(|&n| n <= 32)?,
        };
        return Some((IpAddr::V4(v4), len));
    }
    let v6 = addr.parse::<Ipv6Addr>().ok()?;
    let len = match mask {
        None => 128,
        Some(m) => m.parse::<u8>().ok().filter(|&n| n <= 128)?,
    };
    Some((IpAddr::V6(v6), len))
}

/// A zone source as a network, as [`parse_cidr`] reads it (`10.0.0.0/255.0.0.0` included);
/// `None` for a MAC address, an ipset or anything else that is not an address.
pub fn source_cidr(source: &str) -> Option<Cidr> {
    parse_cidr(source).and_then(|(net, len)| Cidr::new(net, len))
}

/// Whether the network `cidr` (as [`parse_cidr`] reads it) contains `ip`. Families never mix:
/// firewalld matches IPv4 sources with `ip saddr` and IPv6 ones with `ip6 saddr`.
pub fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    source_cidr(cidr).is_some_and(|net| net.contains(ip))
}

/// A zone or service name from its file name (`check_name`): letters, digits, `_`, `-`; zones
/// at most [`MAX_ZONE_NAME`] characters.
pub fn check_object_name(name: &str, is_zone: bool) -> Result<(), ValueError> {
    if name.is_empty() {
        return Err(ValueError::EmptyName);
    }
    if let Some(c) = name
        .chars()
        .find(|c| !c.is_alphanumeric() && !matches!(c, '_' | '-'))
    {
        return Err(ValueError::NameCharacter {
            c,
            name: name.to_string(),
        });
    }
    if is_zone && name.chars().count() > MAX_ZONE_NAME {
        return Err(ValueError::ZoneNameLength {
            name: name.to_string(),
            length: name.chars().count(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(list: &[PortProto]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn coalescing_follows_firewalld() {
        let mut l = Vec::new();
        for (p, proto) in [
            ("80", "tcp"),
            ("85-90", "tcp"),
            ("88", "tcp"),
            ("80", "udp"),
            ("70-86", "tcp"),
            ("91", "tcp"),
        ] {
            add_coalesced(&mut l, &normalize_port(p).unwrap(), proto);
        }
        // 88 is inside 85-90; 70-86 swallows 80 and extends 85-90; 91 is adjacent, not merged.
        assert_eq!(ports(&l), ["80/udp", "70-90/tcp", "91/tcp"], "{l:?}");
    }

    #[test]
    fn ports_and_addresses() {
        assert_eq!(normalize_port("2380-2379").unwrap(), "2379-2380");
        assert_eq!(normalize_port("22-22").unwrap(), "22");
        assert!(normalize_port("70000").is_err());
        assert!(normalize_port("1-2-3").is_err());
        assert!(check_source_address("10.0.0.0/255.0.0.0").is_ok());
        assert!(check_source_address("10.0.0.0/255.0.255.0").is_err());
        assert!(check_source_address("fd00::/8").is_ok());
        assert!(check_source_address("00:11:22:aa:BB:cc").is_ok());
        assert!(check_source_address("10.0.0.0/33").is_err());
        assert!(cidr_contains(
            "10.244.0.0/16",
            "10.244.3.4".parse().unwrap()
        ));
        assert!(!cidr_contains(
            "10.244.0.0/16",
            "10.245.0.1".parse().unwrap()
        ));
        assert!(cidr_contains("0.0.0.0/0", "1.2.3.4".parse().unwrap()));
        assert!(!cidr_contains("::/0", "1.2.3.4".parse().unwrap()));
        assert!(cidr_contains("fd00::/8", "fd12::1".parse().unwrap()));
    }
}
