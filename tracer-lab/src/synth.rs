//! Synthetic packets with correct checksums: Ethernet (with VLAN tags), IPv4 or IPv6, and TCP,
//! UDP, ICMP or VRRP, plus VXLAN encapsulation. The tests, the benchmark and the lab's traffic
//! generator build their frames here, so what they send is what a real host would.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;

/// The link layer of a frame.
#[derive(Clone, Debug)]
pub struct Eth {
    pub src: [u8; 6],
    pub dst: [u8; 6],
    /// VLAN ids, outermost first. Two tags make a QinQ frame (802.1ad outer).
    pub vlans: Vec<u16>,
}

impl Eth {
    pub fn new(src: [u8; 6], dst: [u8; 6]) -> Self {
        Eth {
            src,
            dst,
            vlans: Vec::new(),
        }
    }

    pub fn with_vlans(mut self, vlans: &[u16]) -> Self {
        self.vlans = vlans.to_vec();
        self
    }

    fn put(&self, buf: &mut BytesMut, ethertype: u16) {
        buf.put_slice(&self.dst);
        buf.put_slice(&self.src);
        for (i, vid) in self.vlans.iter().enumerate() {
            let tpid = if i == 0 && self.vlans.len() > 1 {
                0x88a8
            } else {
                0x8100
            };
            buf.put_u16(tpid);
            buf.put_u16(*vid & 0x0fff);
        }
        buf.put_u16(ethertype);
    }
}

/// The multicast MAC an IPv4 multicast group maps to (224.0.0.18 -> 01:00:5e:00:00:12).
pub fn multicast_mac(group: Ipv4Addr) -> [u8; 6] {
    let o = group.octets();
    [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
}

pub const TCP_SYN: u8 = 0x02;
pub const TCP_ACK: u8 = 0x10;
pub const VRRP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// The transport part of a packet.
#[derive(Clone, Debug)]
pub enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        flags: u8,
        payload: Bytes,
    },
    Udp {
        sport: u16,
        dport: u16,
        payload: Bytes,
    },
    /// ICMP echo request (ICMPv6 on IPv6).
    Echo { id: u16, seq: u16 },
    /// A VRRPv2 advertisement for one virtual router.
    Vrrp {
        vrid: u8,
        priority: u8,
        addr: Ipv4Addr,
    },
    /// Any IP protocol with an opaque payload.
    Raw { proto: u8, payload: Bytes },
}

impl L4 {
    pub fn syn(sport: u16, dport: u16) -> Self {
        L4::Tcp {
            sport,
            dport,
            flags: TCP_SYN,
            payload: Bytes::new(),
        }
    }

    pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Self {
        L4::Udp {
            sport,
            dport,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    fn proto(&self, v6: bool) -> u8 {
        match self {
            L4::Tcp { .. } => 6,
            L4::Udp { .. } => 17,
            L4::Echo { .. } => {
                if v6 {
                    58
                } else {
                    1
                }
            }
            L4::Vrrp { .. } => 112,
            L4::Raw { proto, .. } => *proto,
        }
    }

    /// The transport header and payload, checksummed against `pseudo` (the IPv6 or
    /// IPv4 pseudo-header sum; unused by protocols without one: ICMPv4, VRRP, raw).
    fn bytes(&self, pseudo: u32, v6: bool) -> BytesMut {
        let mut b = BytesMut::new();
        match self {
            L4::Tcp {
                sport,
                dport,
                flags,
                payload,
            } => {
                b.put_u16(*sport);
                b.put_u16(*dport);
                b.put_u32(0x1000_0000); // sequence
                b.put_u32(u32::from(flags & TCP_ACK != 0));
                b.put_u8(5 << 4);
                b.put_u8(*flags);
                b.put_u16(64240);
                b.put_u16(0);
                b.put_u16(0);
                b.put_slice(payload);
                let len = b.len() as u32;
                let sum = checksum(&b, pseudo + len);
                b[16..18].copy_from_slice(&sum.to_be_bytes());
            }
            L4::Udp {
                sport,
                dport,
                payload,
            } => {
                let len = 8 + payload.len() as u16;
                b.put_u16(*sport);
                b.put_u16(*dport);
                b.put_u16(len);
                b.put_u16(0);
                b.put_slice(payload);
                let mut sum = checksum(&b, pseudo + u32::from(len));
                if sum == 0 {
                    sum = 0xffff;
                }
                b[6..8].copy_from_slice(&sum.to_be_bytes());
            }
            L4::Echo { id, seq } => {
                b.put_u8(if v6 { 128 } else { 8 });
                b.put_u8(0);
                b.put_u16(0);
                b.put_u16(*id);
                b.put_u16(*seq);
                b.put_slice(b"tracer-echo-payload!");
                let extra = if v6 { pseudo + b.len() as u32 } else { 0 };
                let sum = checksum(&b, extra);
                b[2..4].copy_from_slice(&sum.to_be_bytes());
            }
            L4::Vrrp {
                vrid,
                priority,
                addr,
            } => {
                b.put_u8(0x21); // version 2, advertisement
                b.put_u8(*vrid);
                b.put_u8(*priority);
                b.put_u8(1); // one address
                b.put_u8(0); // no authentication
                b.put_u8(1); // advertisement interval, seconds
                b.put_u16(0);
                b.put_slice(&addr.octets());
                b.put_u64(0); // authentication data (unused)
                let sum = checksum(&b, 0);
                b[6..8].copy_from_slice(&sum.to_be_bytes());
            }
            L4::Raw { payload, .. } => b.put_slice(payload),
        }
        b
    }
}

/// One's complement sum of `data` plus `initial`, folded and inverted.
pub fn checksum(data: &[u8], initial: u32) -> u16 {
    let mut sum = u64::from(initial);
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from(chunk[0]) << 8
        };
        sum += u64::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn sum_words(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

/// An IPv4 packet (without link layer) carrying `l4`.
pub fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, l4: &L4) -> BytesMut {
    let proto = l4.proto(false);
    let pseudo = sum_words(&src.octets()) + sum_words(&dst.octets()) + u32::from(proto);
    let body = l4.bytes(pseudo, false);
    let mut b = BytesMut::with_capacity(20 + body.len());
    b.put_u8(0x45);
    b.put_u8(0);
    b.put_u16(20 + body.len() as u16);
    b.put_u16(0x1234);
    b.put_u16(0x4000); // don't fragment
    b.put_u8(ttl);
    b.put_u8(proto);
    b.put_u16(0);
    b.put_slice(&src.octets());
    b.put_slice(&dst.octets());
    let sum = checksum(&b[..20], 0);
    b[10..12].copy_from_slice(&sum.to_be_bytes());
    b.put_slice(&body);
    b
}

/// An IPv6 packet (without link layer) carrying `l4`.
pub fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, l4: &L4) -> BytesMut {
    let proto = l4.proto(true);
    let pseudo = sum_words(&src.octets()) + sum_words(&dst.octets()) + u32::from(proto);
    let body = l4.bytes(pseudo, true);
    let mut b = BytesMut::with_capacity(40 + body.len());
    b.put_u32(0x6000_0000);
    b.put_u16(body.len() as u16);
    b.put_u8(proto);
    b.put_u8(hop_limit);
    b.put_slice(&src.octets());
    b.put_slice(&dst.octets());
    b.put_slice(&body);
    b
}

/// A complete frame: link layer, IP (version from the addresses) and `l4`.
pub fn frame(eth: &Eth, src: IpAddr, dst: IpAddr, l4: &L4) -> Bytes {
    let mut b = BytesMut::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let ttl = if matches!(l4, L4::Vrrp { .. }) {
                255
            } else {
                64
            };
            eth.put(&mut b, ETH_P_IP);
            b.put_slice(&ipv4_packet(s, d, ttl, l4));
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            eth.put(&mut b, ETH_P_IPV6);
            b.put_slice(&ipv6_packet(s, d, 64, l4));
        }
        _ => panic!("source and destination of different IP versions"),
    }
    b.freeze()
}

/// The UDP payload of a VXLAN packet: the 8-byte header with VNI `vni`, then `inner`.
pub fn vxlan_payload(vni: u32, inner: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + inner.len());
    b.put_u32(0x0800_0000);
    b.put_u32(vni << 8);
    b.put_slice(inner);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::packet::{Headers, Status, parse_ethernet};

    fn parse(f: &[u8]) -> Headers {
        parse_ethernet::<[u8], true>(f, 0)
    }

    #[test]
    fn checksums_verify_to_zero() {
        let f = frame(
            &Eth::new([2; 6], [4; 6]),
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            &L4::syn(40000, 6443),
        );
        // IPv4 header
        assert_eq!(checksum(&f[14..34], 0), 0);
        // TCP with pseudo-header
        let pseudo = sum_words(&f[26..34]) + 6 + (f.len() - 34) as u32;
        assert_eq!(checksum(&f[34..], pseudo), 0);
    }

    #[test]
    fn frames_parse_as_built() {
        let eth = Eth::new([2; 6], [4; 6]).with_vlans(&[10, 20]);
        let f = frame(
            &eth,
            "fd00::1".parse().unwrap(),
            "fd00::2".parse().unwrap(),
            &L4::udp(1, 8472, b"x"),
        );
        let h = parse(&f);
        assert_eq!(
            (h.status, h.family, h.dport, h.vlans),
            (Status::Ip, 6, 8472, 2)
        );
        let vrrp = frame(
            &Eth::new([2; 6], multicast_mac(VRRP_GROUP)),
            "10.0.0.1".parse().unwrap(),
            VRRP_GROUP.into(),
            &L4::Vrrp {
                vrid: 51,
                priority: 100,
                addr: "10.0.0.100".parse().unwrap(),
            },
        );
        assert_eq!(parse(&vrrp).proto, 112);
        assert_eq!(&vrrp[0..6], &[0x01, 0x00, 0x5e, 0, 0, 18]);
    }

    #[test]
    fn vxlan_carries_the_inner_frame() {
        let inner = frame(
            &Eth::new([6; 6], [8; 6]),
            "10.244.1.2".parse().unwrap(),
            "10.244.2.3".parse().unwrap(),
            &L4::syn(5555, 80),
        );
        let outer = frame(
            &Eth::new([2; 6], [4; 6]),
            "192.168.0.1".parse().unwrap(),
            "192.168.0.2".parse().unwrap(),
            &L4::Udp {
                sport: 40000,
                dport: 4789,
                payload: vxlan_payload(4096, &inner),
            },
        );
        let h = parse(&outer);
        assert_eq!(
            tracer_common::packet::vxlan_vni(&outer[..], h.payload_off as usize),
            Some(4096)
        );
        let inner_h = parse_ethernet::<[u8], true>(&outer[..], h.payload_off as usize + 8);
        assert_eq!(inner_h.dport, 80);
    }
}
