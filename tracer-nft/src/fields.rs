//! Reading fields from a [`Packet`] description. A field can be known, absent (the packet has
//! no such header: the kernel's implicit protocol dependency, or its missing conntrack entry,
//! makes every comparison with it false, `!=` included), partly known (some ct status bits),
//! one of two values (the connection direction of an established packet), or unknown with a
//! reason. Marks are tracked as rules set them.

use std::net::IpAddr;

use super::{
    Family, Hook,
    expr::{BinOp, CtDir, CtKey, Expr, FibQuery, Field, L4, MetaKey},
    packet::{CtState, Packet},
    types::addr_num,
};

/// One field value.
#[derive(Clone, Copy, Debug)]
pub(crate) enum V<'a> {
    Num(u128),
    Name(&'a str),
    /// A component of a concatenation that cannot be read (the tuple says why).
    Unknown,
}

/// What reading an expression gives.
#[derive(Debug)]
pub(crate) enum Got<'a> {
    One(V<'a>),
    /// A concatenation, and why a component is [`V::Unknown`] if one is.
    Tuple(Vec<V<'a>>, Option<String>),
    /// Bits of which only some are known (`unknown` has the others set).
    Partial {
        bits: u128,
        unknown: u128,
        why: &'static str,
    },
    /// One of two values.
    Either(u128, u128, &'static str),
    /// The packet has no such field: comparisons are false.
    Absent,
    Unknown(String),
}

/// A value the rules can change while the packet travels (marks).
#[derive(Clone, Debug)]
pub(crate) enum Tracked {
    Known(u128),
    /// No conntrack entry to hold it.
    Absent,
    Unknown(String),
}

/// The packet and what rules have changed so far.
pub(crate) struct Ctx<'p> {
    pub pkt: &'p Packet,
    pub mark: Tracked,
    pub ct_mark: Tracked,
}

/// Whether the header after IP of protocol `proto` starts with source and destination ports.
fn has_ports(proto: u8) -> bool {
    L4::NUMBERED.iter().any(|l4| l4.number() == Some(proto))
}

impl<'p> Ctx<'p> {
    pub(crate) fn new(pkt: &'p Packet) -> Self {
        let ct_mark = match pkt.ct_state {
            CtState::New => Tracked::Known(0),
            CtState::Established | CtState::Related => {
                Tracked::Unknown("the mark of an existing connection is not known".into())
            }
            CtState::Invalid | CtState::Untracked => Tracked::Absent,
        };
        Ctx {
            pkt,
            mark: Tracked::Known(pkt.mark.into()),
            ct_mark,
        }
    }

    fn v4(&self) -> bool {
        self.pkt.ip_family() == Family::Ip
    }

    /// The packet's netfilter protocol family (`meta nfproto`, `ct l3proto`): NFPROTO_IPV4 or
    /// NFPROTO_IPV6.
    fn nfproto(&self) -> u128 {
        if self.v4() { 2 } else { 10 }
    }

    /// Reads what `e` names from the packet.
    pub(crate) fn value(&self, e: &Expr) -> Got<'p> {
        let p = self.pkt;
        let num = |n: u128| Got::One(V::Num(n));
        match e {
            Expr::Meta(key) => match key {
                MetaKey::L4proto => num(p.l4proto.into()),
                MetaKey::Protocol => num(if self.v4() { 0x0800 } else { 0x86dd }),
                MetaKey::Nfproto => num(self.nfproto()),
                MetaKey::Mark => tracked(&self.mark),
                MetaKey::Iif | MetaKey::Iifname => self.iif(),
                MetaKey::Oif | MetaKey::Oifname => self.oif(),
                MetaKey::Pkttype => self.pkttype(),
                MetaKey::Other(k) => {
                    Got::Unknown(format!("meta {k} is not part of the packet description"))
                }
            },
            Expr::Payload(field) => self.payload(field),
            Expr::Ct { key, dir, family } => self.ct(key, *dir, *family),
            Expr::Fib(FibQuery::DaddrType) => self.fib_daddr_type(),
            Expr::Fib(FibQuery::Other(text)) => Got::Unknown(format!(
                "`{text}` is a routing lookup, which needs the node's routing table"
            )),
            Expr::Binop { op, left, right } => apply(self.value(left), *op, *right),
            Expr::Concat(parts) => {
                // An unknown component still lets a lookup fail on the others (`meta l4proto .
                // th dport @svc` cannot match an ICMP packet whatever its "port").
                let mut vals = Vec::with_capacity(parts.len());
                let mut why = None;
                for part in parts {
                    match self.value(part) {
                        Got::One(v) => vals.push(v),
                        Got::Absent => return Got::Absent,
                        Got::Unknown(w) => {
                            why.get_or_insert(w);
                            vals.push(V::Unknown);
                        }
                        Got::Partial { why: w, .. } | Got::Either(_, _, w) => {
                            why.get_or_insert(w.to_string());
                            vals.push(V::Unknown);
                        }
                        Got::Tuple(vs, w) => {
                            if let Some(w) = w {
                                why.get_or_insert(w);
                            }
                            vals.extend(vs);
                        }
                    }
                }
                Got::Tuple(vals, why)
            }
            Expr::Const(n) => num(*n),
            Expr::Unsupported(text) => Got::Unknown(format!(
                "`{text}` cannot be evaluated on a packet description"
            )),
        }
    }

    fn iif(&self) -> Got<'p> {
        match self.pkt.hook {
            // The kernel reads a missing device as ifindex 0 and name "": never equal to one.
            Hook::Output => Got::One(V::Name("")),
            Hook::Postrouting | Hook::Egress => {
                Got::One(V::Name(self.pkt.iif.as_deref().unwrap_or("")))
            }
            _ => match &self.pkt.iif {
                Some(name) => Got::One(V::Name(name)),
                None => Got::Unknown("the packet's input interface is not given".into()),
            },
        }
    }

    fn oif(&self) -> Got<'p> {
        match self.pkt.hook {
            Hook::Prerouting | Hook::Input | Hook::Ingress => Got::One(V::Name("")),
            _ => match &self.pkt.oif {
                Some(name) => Got::One(V::Name(name)),
                None => Got::Unknown("the packet's output interface is not given".into()),
            },
        }
    }

    fn pkttype(&self) -> Got<'p> {
        let p = self.pkt;
        if p.daddr.is_multicast() {
            Got::One(V::Num(2))
        } else if p.daddr == IpAddr::V4(std::net::Ipv4Addr::BROADCAST) {
            Got::One(V::Num(1))
        } else if p.daddr_is_local || p.hook == Hook::Forward || !self.v4() {
            Got::One(V::Num(0))
        } else {
            Got::Either(
                0,
                1,
                "whether the destination is a subnet broadcast is not known",
            )
        }
    }

    fn fib_daddr_type(&self) -> Got<'p> {
        let p = self.pkt;
        if p.daddr.is_multicast() {
            Got::One(V::Num(5))
        } else if p.daddr == IpAddr::V4(std::net::Ipv4Addr::BROADCAST) {
            Got::One(V::Num(3))
        } else if p.daddr_is_local {
            Got::One(V::Num(2))
        } else if !self.v4() {
            Got::One(V::Num(1))
        } else {
            Got::Either(
                1,
                3,
                "whether the destination is a subnet broadcast (fib type broadcast) is not known",
            )
        }
    }

    fn has_header(&self, protocol: &str) -> Option<bool> {
        if let Some(l4) = L4::from_name(protocol) {
            // `th` is whatever transport header follows.
            return Some(l4.number().is_none_or(|n| n == self.pkt.l4proto));
        }
        Some(match protocol {
            "ip" => self.v4(),
            "ip6" => !self.v4(),
            "icmp" => self.icmp_type_field() == Some(Field::IcmpType),
            "icmpv6" => self.icmp_type_field() == Some(Field::Icmpv6Type),
            _ => return None,
        })
    }

    /// The ICMP type field the packet has: `icmp type` for ICMP in IPv4, `icmpv6 type` for
    /// ICMPv6 in IPv6.
    fn icmp_type_field(&self) -> Option<Field> {
        match (self.pkt.l4proto, self.v4()) {
            (1, true) => Some(Field::IcmpType),
            (58, false) => Some(Field::Icmpv6Type),
            _ => None,
        }
    }

    fn payload(&self, field: &Field) -> Got<'p> {
        let p = self.pkt;
        let v4 = self.v4();
        let addr = |present: bool, ip: IpAddr| {
            if present {
                Got::One(V::Num(addr_num(ip)))
            } else {
                Got::Absent
            }
        };
        match field {
            Field::IpSaddr => addr(v4, p.saddr),
            Field::IpDaddr => addr(v4, p.daddr),
            Field::Ip6Saddr => addr(!v4, p.saddr),
            Field::Ip6Daddr => addr(!v4, p.daddr),
            Field::IpProtocol if v4 => Got::One(V::Num(p.l4proto.into())),
            Field::Ip6Nexthdr if !v4 => Got::One(V::Num(p.l4proto.into())),
            Field::IpProtocol | Field::Ip6Nexthdr => Got::Absent,
            Field::Sport(l4) => self.port(*l4, p.sport),
            Field::Dport(l4) => self.port(*l4, p.dport),
            Field::IcmpType | Field::Icmpv6Type => {
                let present = self.icmp_type_field().as_ref() == Some(field);
                match (present, p.icmp_type) {
                    (false, _) => Got::Absent,
                    (true, Some(t)) => Got::One(V::Num(t.into())),
                    (true, None) => Got::Unknown("the packet description has no ICMP type".into()),
                }
            }
            Field::Other { protocol, field } => match self.has_header(protocol) {
                Some(false) => Got::Absent,
                _ => Got::Unknown(format!(
                    "{protocol} {field} is not part of the packet description"
                )),
            },
        }
    }

    fn port(&self, l4: L4, port: u16) -> Got<'p> {
        let proto = self.pkt.l4proto;
        let wanted = match l4.number() {
            Some(n) => n,
            None if has_ports(proto) => proto,
            // `th dport` reads bytes 2-3 of whatever follows the IP header.
            None => {
                return Got::Unknown(format!(
                    "th ports of IP protocol {proto} are not part of the packet description"
                ));
            }
        };
        if proto == wanted {
            Got::One(V::Num(port.into()))
        } else {
            Got::Absent
        }
    }

    fn ct(&self, key: &CtKey, dir: Option<CtDir>, family: Option<Family>) -> Got<'p> {
        let p = self.pkt;
        let state = p.ct_state;
        if *key == CtKey::State {
            return Got::One(V::Num(match state {
                CtState::Invalid => 1,
                CtState::Established => 2,
                CtState::Related => 4,
                CtState::New => 8,
                CtState::Untracked => 64,
            }));
        }
        // Without a conntrack entry every other ct expression breaks the rule.
        if matches!(state, CtState::Invalid | CtState::Untracked) {
            return Got::Absent;
        }
        const SNAT_DNAT: u128 = 16 | 32;
        let direction_unknown = "whether the packet goes in its connection's original or reply \
                                 direction is not known";
        match key {
            CtKey::State => unreachable!("handled above"),
            // No NAT is modelled: snat and dnat are clear (see `evaluate`).
            CtKey::Status => match state {
                CtState::New => Got::One(V::Num(0)),
                CtState::Established => Got::Partial {
                    bits: 2 | 8,
                    unknown: !(2 | 8 | SNAT_DNAT),
                    why: "the status bits of an existing connection are not all known",
                },
                _ => Got::Partial {
                    bits: 0,
                    unknown: !SNAT_DNAT,
                    why: "the status bits of a related connection are not known",
                },
            },
            CtKey::Mark => tracked(&self.ct_mark),
            CtKey::Direction => match state {
                CtState::New => Got::One(V::Num(0)),
                _ => Got::Either(0, 1, direction_unknown),
            },
            CtKey::L3proto => Got::One(V::Num(self.nfproto())),
            CtKey::Protocol => Got::One(V::Num(p.l4proto.into())),
            CtKey::Saddr | CtKey::Daddr | CtKey::ProtoSrc | CtKey::ProtoDst => {
                let is_addr = matches!(key, CtKey::Saddr | CtKey::Daddr);
                let wrong_family = family.is_some_and(|f| p.is_other_family(f));
                if is_addr && wrong_family {
                    return Got::Absent;
                }
                if !is_addr && !has_ports(p.l4proto) {
                    return Got::Unknown(format!(
                        "ct ports of IP protocol {} are not part of the packet description",
                        p.l4proto
                    ));
                }
                let (src, dst) = if is_addr {
                    (addr_num(p.saddr), addr_num(p.daddr))
                } else {
                    (p.sport.into(), p.dport.into())
                };
                let wants_src = matches!(key, CtKey::Saddr | CtKey::ProtoSrc);
                // The packet's own tuple is the original one of a new connection; without NAT
                // the reply tuple is its mirror.
                let (orig, reply) = if wants_src { (src, dst) } else { (dst, src) };
                let (a, b) = match dir.unwrap_or(CtDir::Original) {
                    CtDir::Original => (orig, reply),
                    CtDir::Reply => (reply, orig),
                };
                match state {
                    CtState::New => Got::One(V::Num(a)),
                    _ if a == b => Got::One(V::Num(a)),
                    _ => Got::Either(a, b, direction_unknown),
                }
            }
            CtKey::Other(k) => {
                Got::Unknown(format!("ct {k} is not part of the packet description"))
            }
        }
    }
}

fn tracked<'p>(t: &Tracked) -> Got<'p> {
    match t {
        Tracked::Known(n) => Got::One(V::Num(*n)),
        Tracked::Absent => Got::Absent,
        Tracked::Unknown(why) => Got::Unknown(why.clone()),
    }
}

fn binop(op: BinOp, x: u128, c: u128) -> u128 {
    let shift = u32::try_from(c).unwrap_or(u32::MAX);
    match op {
        BinOp::And => x & c,
        BinOp::Or => x | c,
        BinOp::Xor => x ^ c,
        BinOp::Shl => x.checked_shl(shift).unwrap_or(0),
        BinOp::Shr => x.checked_shr(shift).unwrap_or(0),
    }
}

fn apply(got: Got<'_>, op: BinOp, c: u128) -> Got<'_> {
    match got {
        Got::One(V::Num(x)) => Got::One(V::Num(binop(op, x, c))),
        Got::Either(a, b, why) => Got::Either(binop(op, a, c), binop(op, b, c), why),
        Got::Partial { bits, unknown, why } => {
            let unknown = match op {
                BinOp::And => unknown & c,
                BinOp::Or => unknown & !c,
                BinOp::Xor => unknown,
                BinOp::Shl | BinOp::Shr => binop(op, unknown, c),
            };
            let bits = binop(op, bits, c);
            if unknown == 0 {
                Got::One(V::Num(bits))
            } else {
                Got::Partial { bits, unknown, why }
            }
        }
        Got::One(V::Name(_) | V::Unknown) | Got::Tuple(..) => {
            Got::Unknown("bitwise operation on a name or concatenation".into())
        }
        other => other,
    }
}
