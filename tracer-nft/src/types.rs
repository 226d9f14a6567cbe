//! nftables data types, as far as comparing constants needs them: which type a field or a set
//! key has, and how a JSON constant of that type becomes a number (`established` is ct state
//! bit 2, `tcp` is 6, `10.0.0.0/8` a range of addresses). Symbol values are the kernel's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::{
    Family,
    expr::{CtKey, Expr, FibQuery, Field, MetaKey, Pattern},
};

/// The data type of a field or set key component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Ipv4,
    Ipv6,
    Int,
    Ifname,
    InetProto,
    EtherType,
    NfProto,
    CtState,
    CtStatus,
    CtDir,
    PktType,
    FibType,
    IcmpType,
    Icmpv6Type,
    TcpFlags,
    /// A type this model does not know: numbers, addresses and names are still read.
    Unknown,
}

impl Ty {
    /// The type of a set key component named by a set's `type` (`ipv4_addr`, ...).
    pub(crate) fn from_set_type(name: &str) -> Ty {
        match name {
            "ipv4_addr" => Ty::Ipv4,
            "ipv6_addr" => Ty::Ipv6,
            "inet_service" | "mark" | "integer" | "dscp" | "ecn" => Ty::Int,
            "ifname" | "iface_index" => Ty::Ifname,
            "inet_proto" => Ty::InetProto,
            "ether_type" => Ty::EtherType,
            "nf_proto" => Ty::NfProto,
            "ct_state" => Ty::CtState,
            "ct_status" => Ty::CtStatus,
            "ct_dir" => Ty::CtDir,
            "pkt_type" => Ty::PktType,
            "fib_addrtype" => Ty::FibType,
            "icmp_type" => Ty::IcmpType,
            "icmpv6_type" => Ty::Icmpv6Type,
            "tcp_flag" => Ty::TcpFlags,
            _ => Ty::Unknown,
        }
    }

    /// The type of what `expr` reads, one per concatenated component.
    pub(crate) fn of(expr: &Expr) -> Vec<Ty> {
        match expr {
            Expr::Concat(parts) => parts.iter().flat_map(Ty::of).collect(),
            other => vec![Ty::of_single(other)],
        }
    }

    fn of_single(expr: &Expr) -> Ty {
        match expr {
            Expr::Meta(key) => match key {
                MetaKey::L4proto => Ty::InetProto,
                MetaKey::Protocol => Ty::EtherType,
                MetaKey::Nfproto => Ty::NfProto,
                MetaKey::Mark => Ty::Int,
                MetaKey::Iif | MetaKey::Oif | MetaKey::Iifname | MetaKey::Oifname => Ty::Ifname,
                MetaKey::Pkttype => Ty::PktType,
                MetaKey::Other(k) if k.ends_with("name") => Ty::Ifname,
                MetaKey::Other(_) => Ty::Unknown,
            },
            Expr::Payload(field) => match field {
                Field::IpSaddr | Field::IpDaddr => Ty::Ipv4,
                Field::Ip6Saddr | Field::Ip6Daddr => Ty::Ipv6,
                Field::IpProtocol | Field::Ip6Nexthdr => Ty::InetProto,
                Field::Sport(_) | Field::Dport(_) => Ty::Int,
                Field::IcmpType => Ty::IcmpType,
                Field::Icmpv6Type => Ty::Icmpv6Type,
                Field::Other { protocol, field } if protocol == "tcp" && field == "flags" => {
                    Ty::TcpFlags
                }
                Field::Other { protocol, field } => match (protocol.as_str(), field.as_str()) {
                    ("ether" | "vlan", "type") => Ty::EtherType,
                    _ => Ty::Unknown,
                },
            },
            Expr::Ct { key, family, .. } => match key {
                CtKey::State => Ty::CtState,
                CtKey::Status => Ty::CtStatus,
                CtKey::Mark | CtKey::ProtoSrc | CtKey::ProtoDst => Ty::Int,
                CtKey::Direction => Ty::CtDir,
                CtKey::L3proto => Ty::NfProto,
                CtKey::Protocol => Ty::InetProto,
                CtKey::Saddr | CtKey::Daddr => match family {
                    Some(Family::Ip) => Ty::Ipv4,
                    Some(Family::Ip6) => Ty::Ipv6,
                    _ => Ty::Unknown,
                },
                CtKey::Other(_) => Ty::Unknown,
            },
            Expr::Fib(FibQuery::DaddrType) => Ty::FibType,
            Expr::Fib(FibQuery::Other(_)) => Ty::Unknown,
            Expr::Binop { left, .. } => Ty::of_single(left),
            Expr::Concat(_) | Expr::Const(_) | Expr::Unsupported(_) => Ty::Unknown,
        }
    }

    /// The value of a symbolic constant of this type.
    #[allow(
        clippy::too_many_lines,
        reason = "one table of nft's symbol names per type, read side by side with nft's own"
    )]
    fn symbol(self, s: &str) -> Option<u128> {
        let v: u32 = match self {
            // The names nft resolves with getprotobyname, and MPTCP's pseudo-protocol.
            Ty::InetProto => match s {
                "mptcp" => 262,
                _ => tracer_common::protocols::number(s)?.into(),
            },
            Ty::EtherType => match s {
                "ip" => 0x0800,
                "arp" => 0x0806,
                "ip6" => 0x86dd,
                "vlan" | "8021q" => 0x8100,
                "8021ad" => 0x88a8,
                _ => return None,
            },
            Ty::NfProto => match s {
                "ipv4" => 2,
                "ipv6" => 10,
                _ => return None,
            },
            Ty::CtState => match s {
                "invalid" => 1,
                "established" => 2,
                "related" => 4,
                "new" => 8,
                "untracked" => 64,
                _ => return None,
            },
            Ty::CtStatus => match s {
                "expected" => 1,
                "seen-reply" => 2,
                "assured" => 4,
                "confirmed" => 8,
                "snat" => 16,
                "dnat" => 32,
                "dying" => 512,
                _ => return None,
            },
            Ty::CtDir => match s {
                "original" => 0,
                "reply" => 1,
                _ => return None,
            },
            Ty::PktType => match s {
                "host" | "unicast" => 0,
                "broadcast" => 1,
                "multicast" => 2,
                "other" => 3,
                _ => return None,
            },
            Ty::FibType => match s {
                "unspec" => 0,
                "unicast" => 1,
                "local" => 2,
                "broadcast" => 3,
                "anycast" => 4,
                "multicast" => 5,
                "blackhole" => 6,
                "unreachable" => 7,
                "prohibit" => 8,
                _ => return None,
            },
            Ty::IcmpType => match s {
                "echo-reply" => 0,
                "destination-unreachable" => 3,
                "source-quench" => 4,
                "redirect" => 5,
                "echo-request" => 8,
                "router-advertisement" => 9,
                "router-solicitation" => 10,
                "time-exceeded" => 11,
                "parameter-problem" => 12,
                "timestamp-request" => 13,
                "timestamp-reply" => 14,
                "info-request" => 15,
                "info-reply" => 16,
                "address-mask-request" => 17,
                "address-mask-reply" => 18,
                _ => return None,
            },
            Ty::Icmpv6Type => match s {
                "destination-unreachable" => 1,
                "packet-too-big" => 2,
                "time-exceeded" => 3,
                "parameter-problem" => 4,
                "echo-request" => 128,
                "echo-reply" => 129,
                "mld-listener-query" => 130,
                "mld-listener-report" => 131,
                "mld-listener-done" | "mld-listener-reduction" => 132,
                "nd-router-solicit" => 133,
                "nd-router-advert" => 134,
                "nd-neighbor-solicit" => 135,
                "nd-neighbor-advert" => 136,
                "nd-redirect" => 137,
                "router-renumbering" => 138,
                "ind-neighbor-solicit" => 141,
                "ind-neighbor-advert" => 142,
                "mld2-listener-report" => 143,
                _ => return None,
            },
            Ty::TcpFlags => match s {
                "fin" => 0x01,
                "syn" => 0x02,
                "rst" => 0x04,
                "psh" => 0x08,
                "ack" => 0x10,
                "urg" => 0x20,
                "ecn" => 0x40,
                "cwr" => 0x80,
                _ => return None,
            },
            Ty::Ipv4 | Ty::Ipv6 | Ty::Int | Ty::Ifname | Ty::Unknown => return None,
        };
        Some(u128::from(v))
    }
}

/// An address as the number the kernel compares.
pub(crate) fn addr_num(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// One JSON constant (value, prefix, range, flag list) of type `ty` as a pattern; a constant
/// that cannot be read becomes [`Pattern::Unresolved`] so that comparing with it is unknown.
pub(crate) fn pattern(v: &Value, ty: Ty) -> Pattern {
    match pattern_checked(v, ty) {
        Ok(p) => p,
        Err(why) => Pattern::Unresolved(why),
    }
}

fn pattern_checked(v: &Value, ty: Ty) -> Result<Pattern, String> {
    match v {
        Value::String(s) if ty == Ty::Ifname => Ok(ifname(s)),
        Value::Object(o) => {
            if let Some(p) = o.get("prefix") {
                return prefix(p, ty);
            }
            if let Some(Value::Array(r)) = o.get("range")
                && r.len() == 2
            {
                let lo = number(&r[0], ty)?;
                let hi = number(&r[1], ty)?;
                return Ok(Pattern::Range { lo, hi });
            }
            if let Some(e) = o.get("elem").and_then(|e| e.get("val")) {
                return pattern_checked(e, ty);
            }
            Err(format!("cannot compare with {v}"))
        }
        _ => {
            let n = number(v, ty)?;
            Ok(Pattern::Range { lo: n, hi: n })
        }
    }
}

/// `"eth0"` exactly, or `"cali*"` as a prefix (`\*` is a literal star).
fn ifname(s: &str) -> Pattern {
    match s.strip_suffix('*') {
        Some(head) if !head.ends_with('\\') => Pattern::NamePrefix(head.to_string()),
        _ => Pattern::Name(s.replace("\\*", "*")),
    }
}

fn prefix(p: &Value, ty: Ty) -> Result<Pattern, String> {
    let addr = p.get("addr").and_then(Value::as_str);
    let len = p.get("len").and_then(Value::as_u64);
    let (Some(addr), Some(len)) = (addr, len) else {
        return Err(format!("malformed prefix {p}"));
    };
    let (base, bits) = match addr.parse::<IpAddr>() {
        Ok(ip @ IpAddr::V4(_)) if ty != Ty::Ipv6 => (addr_num(ip), 32u32),
        Ok(ip @ IpAddr::V6(_)) if ty != Ty::Ipv4 => (addr_num(ip), 128u32),
        _ => {
            return Err(format!(
                "{addr}/{len} is not an address prefix of this field"
            ));
        }
    };
    let len = len as u32;
    if len > bits {
        return Err(format!("{addr}/{len}: prefix longer than the address"));
    }
    let host = match bits - len {
        128 => u128::MAX,
        n => (1u128 << n) - 1,
    };
    Ok(Pattern::Range {
        lo: base & !host,
        hi: base | host,
    })
}

/// A numeric JSON constant of type `ty`: number, boolean, address, symbol, or a flag list
/// (OR of its bits).
pub(crate) fn number(v: &Value, ty: Ty) -> Result<u128, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(u128::from)
            .ok_or_else(|| format!("{n} is not a non-negative integer")),
        Value::Bool(b) => Ok(u128::from(*b)),
        Value::Array(flags) => flags
            .iter()
            .try_fold(0u128, |acc, f| number(f, ty).map(|bit| acc | bit)),
        Value::String(s) => string_number(s, ty),
        other => Err(format!("cannot compare with {other}")),
    }
}

fn string_number(s: &str, ty: Ty) -> Result<u128, String> {
    if let Some(v) = ty.symbol(s) {
        return Ok(v);
    }
    match ty {
        Ty::Ipv4 => {
            return s
                .parse::<Ipv4Addr>()
                .map(|a| u128::from(u32::from(a)))
                .map_err(|_| format!("{s:?} is not an IPv4 address"));
        }
        Ty::Ipv6 => {
            return s
                .parse::<Ipv6Addr>()
                .map(u128::from)
                .map_err(|_| format!("{s:?} is not an IPv6 address"));
        }
        _ => {}
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(addr_num(ip));
    }
    let parsed = match s.strip_prefix("0x") {
        Some(hex) => u128::from_str_radix(hex, 16),
        None => s.parse::<u128>(),
    };
    parsed.map_err(|_| format!("unknown constant {s:?}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn constants_become_ranges() {
        assert_eq!(
            pattern(
                &json!({"prefix": {"addr": "10.244.0.0", "len": 16}}),
                Ty::Ipv4
            ),
            Pattern::Range {
                lo: 0x0af4_0000,
                hi: 0x0af4_ffff
            }
        );
        assert_eq!(
            pattern(&json!({"range": [8000, 8100]}), Ty::Int),
            Pattern::Range { lo: 8000, hi: 8100 }
        );
        assert_eq!(
            pattern(&json!("established"), Ty::CtState),
            Pattern::Range { lo: 2, hi: 2 }
        );
        assert_eq!(number(&json!(["syn", "ack"]), Ty::TcpFlags), Ok(0x12));
        assert_eq!(
            pattern(&json!("cali*"), Ty::Ifname),
            Pattern::NamePrefix("cali".into())
        );
        assert_eq!(
            pattern(&json!("eth0"), Ty::Ifname),
            Pattern::Name("eth0".into())
        );
        assert!(matches!(
            pattern(&json!("nonsense"), Ty::CtState),
            Pattern::Unresolved(_)
        ));
        let all6 = pattern(&json!({"prefix": {"addr": "::", "len": 0}}), Ty::Ipv6);
        assert_eq!(
            all6,
            Pattern::Range {
                lo: 0,
                hi: u128::MAX
            }
        );
    }
}
