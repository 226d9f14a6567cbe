//! The header parser every program runs: Ethernet with up to two VLAN tags, IPv4 with options,
//! IPv6 with its common extension headers, then the L4 header (TCP, UDP, SCTP, ICMP, ICMPv6,
//! VRRP). It reads through [`Packet`], one bounds-checked accessor, so the same code runs on
//! XDP frames, socket buffers, a copy of a dropped packet and host test slices.
//!
//! Parsing never fails: it reports what it found in [`Headers::status`], and a truncated or
//! inconsistent header yields [`Status::Malformed`] so the caller can count it.

use core::mem::size_of;

mod quick;
#[cfg(feature = "user")]
mod user;

pub use quick::{AddrWords, count_ethernet, quick_ethernet, quick_ip};

/// Read access to a packet, with the bounds check in one place.
///
/// Loads are at least two bytes wide: LLVM turns the check of a one-byte load
/// (`data + off + 1 > end`) into `end > data + off`, from which the verifier derives no
/// packet range. The kernel-side readers assert this at compile time.
pub trait Packet {
    /// Copies the `T` that starts `off` bytes into the packet, or `None` when the packet ends
    /// before `off + size_of::<T>()`. `T` is a plain byte array or a header struct, so any bit
    /// pattern is valid.
    fn load<T: Copy>(&self, off: usize) -> Option<T>;
}

impl Packet for [u8] {
    #[inline(always)]
    fn load<T: Copy>(&self, off: usize) -> Option<T> {
        let end = off.checked_add(size_of::<T>())?;
        let bytes = self.get(off..end)?;
        // SAFETY: `bytes` holds exactly size_of::<T>() bytes and T is plain old data.
        Some(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
    }
}

pub const ETH_HLEN: usize = 14;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;

pub use crate::protocols::{
    IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_VRRP,
};

/// How far the parser got. `u8` values so [`Headers`] has no padding surprises.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// An IP packet whose L4 header, when the protocol has one the parser knows, is complete.
    Ip = 0,
    /// Not IP (ARP, LLDP, a third VLAN tag...): nothing to classify.
    NotIp = 1,
    /// A header was cut short or contradicts itself.
    Malformed = 2,
    /// A later IP fragment: it carries no L4 header, so no ports.
    Fragment = 3,
}

/// What the parser learned about one packet. Addresses are filled only when asked for
/// (`parse_*::<true>`), because the counting path does not need them. Aligned to 8, so that
/// the kernel programs' copies of it on the stack are too (the verifier refuses misaligned
/// stack access).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct Headers {
    pub status: Status,
    /// 4, 6, or 0 when not IP.
    pub family: u8,
    /// The L4 protocol, after IPv6 extension headers.
    pub proto: u8,
    /// VLAN tags skipped in front of the IP header.
    pub vlans: u8,
    /// Source and destination port in host order; zero for protocols without ports.
    pub sport: u16,
    pub dport: u16,
    /// Offset of the IP header.
    pub l3_off: u16,
    /// Offset of the L4 header.
    pub l4_off: u16,
    /// Offset of the first byte after the L4 header: the length of all headers, which lets the
    /// caller turn a GSO super-packet into wire bytes.
    pub payload_off: u16,
    pub _reserved: u16,
    /// Source and destination address; IPv4 in the first four bytes.
    pub src: [u8; 16],
    pub dst: [u8; 16],
}

const _: () = assert!(size_of::<Headers>() == 48);

impl Headers {
    #[inline(always)]
    const fn new(status: Status) -> Self {
        Headers {
            status,
            family: 0,
            proto: 0,
            vlans: 0,
            sport: 0,
            dport: 0,
            l3_off: 0,
            l4_off: 0,
            payload_off: 0,
            _reserved: 0,
            src: [0; 16],
            dst: [0; 16],
        }
    }

    /// True when `sport`/`dport` hold real ports.
    #[inline(always)]
    pub fn has_ports(&self) -> bool {
        self.seen().has_ports()
    }

    /// What classifying and counting the packet needs of these headers.
    #[inline(always)]
    pub fn seen(&self) -> Seen {
        Seen {
            status: self.status,
            proto: self.proto,
            sport: self.sport,
            dport: self.dport,
            payload_off: self.payload_off,
        }
    }

    /// Where the IP header is, and its family.
    #[inline(always)]
    pub fn l3(&self) -> L3 {
        L3 {
            family: self.family,
            off: self.l3_off,
        }
    }
}

/// What classifying and counting a packet needs of its headers: their status, the L4
/// protocol and ports, and where the headers end. Small enough for registers, which matters to
/// the counting programs (a whole [`Headers`] lives on the stack).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub status: Status,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    /// [`Headers::payload_off`].
    pub payload_off: u16,
}

/// Where a packet's IP header starts and its family ([`Headers::l3_off`], [`Headers::family`]):
/// what the per-peer counters read the peer's address with. Apart from [`Seen`], which must
/// stay one register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L3 {
    /// 4, 6, or 0 when not IP.
    pub family: u8,
    pub off: u16,
}

impl Seen {
    /// True when `sport`/`dport` hold real ports.
    #[inline(always)]
    pub fn has_ports(&self) -> bool {
        self.status as u8 == Status::Ip as u8
            && matches!(self.proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP)
    }
}

/// IPv6 extension headers the parser walks through; more than this many is treated as a
/// packet it cannot see into (status `Ip`, no ports), not as malformed.
const MAX_IPV6_EXT: usize = 6;

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

/// Parses a frame whose Ethernet header starts at `off`.
#[inline(always)]
pub fn parse_ethernet<P: Packet + ?Sized, const ADDRS: bool>(pkt: &P, off: usize) -> Headers {
    let Some(eth) = pkt.load::<[u8; ETH_HLEN]>(off) else {
        return Headers::new(Status::Malformed);
    };
    let mut ethertype = be16([eth[12], eth[13]]);
    let mut off = off + ETH_HLEN;
    let mut vlans = 0u8;
    // Two tags cover 802.1Q and QinQ (802.1ad outer + 802.1Q inner).
    for _ in 0..2 {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        let Some(tag) = pkt.load::<[u8; 4]>(off) else {
            return Headers::new(Status::Malformed);
        };
        ethertype = be16([tag[2], tag[3]]);
        off += 4;
        vlans += 1;
    }
    let mut h = parse_ip::<P, ADDRS>(pkt, off, ethertype);
    h.vlans = vlans;
    h
}

/// Parses a packet whose IP header starts at `off`, `ethertype` saying which IP version
/// is expected there (devices without an L2 header hand the protocol over separately).
#[inline(always)]
pub fn parse_ip<P: Packet + ?Sized, const ADDRS: bool>(
    pkt: &P,
    off: usize,
    ethertype: u16,
) -> Headers {
    match ethertype {
        ETH_P_IP => parse_ipv4::<P, ADDRS>(pkt, off),
        ETH_P_IPV6 => parse_ipv6::<P, ADDRS>(pkt, off),
        _ => Headers::new(Status::NotIp),
    }
}

#[inline(always)]
fn parse_ipv4<P: Packet + ?Sized, const ADDRS: bool>(pkt: &P, off: usize) -> Headers {
    let Some(ip) = pkt.load::<network_types::ip::Ipv4Hdr>(off) else {
        return Headers::new(Status::Malformed);
    };
    let ihl = ip.ihl() as usize;
    let tot_len = ip.tot_len() as usize;
    // tot_len 0 is legitimate on GSO super-packets larger than 64 KiB (BIG TCP).
    if ip.version() != 4 || ihl < 20 || (tot_len != 0 && tot_len < ihl) {
        return Headers::new(Status::Malformed);
    }
    let mut h = Headers::new(Status::Ip);
    h.family = 4;
    h.proto = ip.proto;
    h.l3_off = off as u16;
    if ADDRS {
        h.src = v4_in_16(ip.src_addr);
        h.dst = v4_in_16(ip.dst_addr);
    }
    if ip.frag_offset() != 0 {
        h.status = Status::Fragment;
        h.l4_off = (off + ihl) as u16;
        h.payload_off = h.l4_off;
        return h;
    }
    // The options must be present too, or the L4 offset points into nothing. Checked for every
    // header, options or not (without them it is the header's own last bytes): a branch on
    // `ihl > 20` lets 6.12's verifier know `ihl` on one side by its low 32 bits only, and it
    // then refuses the L4 offset built from it as a pointer.
    if pkt.load::<[u8; 2]>(off + ihl - 2).is_none() {
        return Headers::new(Status::Malformed);
    }
    parse_l4(pkt, off + ihl, h)
}

/// An IPv4 address in the first four of 16 bytes, the rest zero. Built as one 128-bit value:
/// copying four bytes into zeroed ones leaves LLVM a 12-byte `memset`, which the BPF backend
/// emits as a call to a byte-at-a-time loop.
#[inline(always)]
fn v4_in_16(a: [u8; 4]) -> [u8; 16] {
    u128::from(u32::from_ne_bytes(a)).to_ne_bytes()
}

#[inline(always)]
fn parse_ipv6<P: Packet + ?Sized, const ADDRS: bool>(pkt: &P, off: usize) -> Headers {
    // The fixed 8 bytes first: the counting path has no use for the 32 bytes of addresses.
    let Some(fixed) = pkt.load::<[u8; 8]>(off) else {
        return Headers::new(Status::Malformed);
    };
    if fixed[0] >> 4 != 6 {
        return Headers::new(Status::Malformed);
    }
    let mut h = Headers::new(Status::Ip);
    h.family = 6;
    h.l3_off = off as u16;
    if ADDRS {
        let Some(addrs) = pkt.load::<[u8; 32]>(off + 8) else {
            return Headers::new(Status::Malformed);
        };
        h.src.copy_from_slice(&addrs[..16]);
        h.dst.copy_from_slice(&addrs[16..]);
    } else if pkt.load::<[u8; 2]>(off + 38).is_none() {
        return Headers::new(Status::Malformed);
    }
    let mut next = fixed[6];
    let mut l4 = off + 40;
    for _ in 0..MAX_IPV6_EXT {
        match next {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6: length in
            // 8-octet units, not counting the first 8.
            0 | 43 | 60 | 135 | 139 | 140 => {
                let Some(ext) = pkt.load::<[u8; 2]>(l4) else {
                    return Headers::new(Status::Malformed);
                };
                next = ext[0];
                l4 += (ext[1] as usize + 1) * 8;
            }
            // Authentication header: length in 4-octet units, not counting the first 2.
            51 => {
                let Some(ext) = pkt.load::<[u8; 2]>(l4) else {
                    return Headers::new(Status::Malformed);
                };
                next = ext[0];
                l4 += (ext[1] as usize + 2) * 4;
            }
            44 => {
                let Some(frag) = pkt.load::<[u8; 8]>(l4) else {
                    return Headers::new(Status::Malformed);
                };
                next = frag[0];
                l4 += 8;
                if be16([frag[2], frag[3]]) & 0xfff8 != 0 {
                    h.status = Status::Fragment;
                    h.proto = next;
                    h.l4_off = l4 as u16;
                    h.payload_off = h.l4_off;
                    return h;
                }
            }
            _ => break,
        }
    }
    h.proto = next;
    parse_l4(pkt, l4, h)
}

#[inline(always)]
fn parse_l4<P: Packet + ?Sized>(pkt: &P, off: usize, mut h: Headers) -> Headers {
    h.l4_off = off as u16;
    let header_len = match h.proto {
        IPPROTO_TCP => {
            let Some(tcp) = pkt.load::<[u8; 20]>(off) else {
                return Headers::new(Status::Malformed);
            };
            let doff = (tcp[12] >> 4) as usize * 4;
            if doff < 20 {
                return Headers::new(Status::Malformed);
            }
            h.sport = be16([tcp[0], tcp[1]]);
            h.dport = be16([tcp[2], tcp[3]]);
            doff
        }
        IPPROTO_UDP | IPPROTO_SCTP => {
            // UDP's header is 8 bytes; SCTP's common header is 12, ports first.
            let len = if h.proto == IPPROTO_UDP { 8 } else { 12 };
            let Some(ports) = pkt.load::<[u8; 8]>(off) else {
                return Headers::new(Status::Malformed);
            };
            if len == 12 && pkt.load::<[u8; 4]>(off + 8).is_none() {
                return Headers::new(Status::Malformed);
            }
            h.sport = be16([ports[0], ports[1]]);
            h.dport = be16([ports[2], ports[3]]);
            len
        }
        // ICMP and VRRP (v2 and v3) have an 8-byte fixed header, ICMPv6 a 4-byte one.
        IPPROTO_ICMP | IPPROTO_VRRP => {
            if pkt.load::<[u8; 8]>(off).is_none() {
                return Headers::new(Status::Malformed);
            }
            8
        }
        IPPROTO_ICMPV6 => {
            if pkt.load::<[u8; 4]>(off).is_none() {
                return Headers::new(Status::Malformed);
            }
            4
        }
        _ => 0,
    };
    h.payload_off = (off + header_len) as u16;
    h
}

/// The fixed part of a VXLAN header (RFC 7348): flags, reserved, VNI, reserved.
pub const VXLAN_HLEN: usize = 8;

/// Reads the VNI of a VXLAN header at `off`; `None` when the header is cut short, its I flag
/// (valid VNI) is not set, or its last byte, reserved in VXLAN and its GBP and GPE
/// extensions alike, is not zero: then the datagram is not VXLAN at all.
#[inline(always)]
pub fn vxlan_vni<P: Packet + ?Sized>(pkt: &P, off: usize) -> Option<u32> {
    let hdr = pkt.load::<[u8; VXLAN_HLEN]>(off)?;
    if hdr[0] & 0x08 == 0 || hdr[7] != 0 {
        return None;
    }
    Some(u32::from_be_bytes([0, hdr[4], hdr[5], hdr[6]]))
}

#[cfg(test)]
mod tests;
