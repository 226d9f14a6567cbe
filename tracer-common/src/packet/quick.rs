//! The counting programs' parser: what [`parse_ethernet`] finds without addresses, for the
//! frames a node carries most (untagged Ethernet, IPv4 without options and not a later
//! fragment, or IPv6 without extension headers, then a whole TCP or UDP header) read with one
//! bounds check into registers; every other frame goes through [`parse_ethernet`], which gives
//! the same answer (the tests check both on every kind of frame, broken ones included).
//! [`quick_ip`] is the same shortcut from the IP header on, with the addresses: the drop
//! probe's, whose packets are copied (a bounds check is a compare there) and often start at
//! their IP header.

use super::{
    ETH_HLEN, ETH_P_IP, ETH_P_IPV6, IPPROTO_TCP, IPPROTO_UDP, L3, Packet, Seen, Status, be16,
    parse_ethernet,
};

/// IPv4 + TCP, the longest frame the IPv4 shortcut reads.
const V4: usize = ETH_HLEN + 20 + 20;
/// IPv6 + TCP.
const V6: usize = ETH_HLEN + 40 + 20;

/// [`parse_ethernet`] without addresses, as a [`Seen`], for a frame at `off`.
#[inline(always)]
pub fn count_ethernet<P: Packet + ?Sized>(pkt: &P, off: usize) -> Seen {
    match quick_ethernet(pkt, off) {
        Some((seen, _)) => seen,
        None => parse_ethernet::<P, false>(pkt, off).seen(),
    }
}

/// The shortcut alone, with where the IP header is; `None` where it does not apply, for
/// callers that take the two paths apart.
#[inline(always)]
pub fn quick_ethernet<P: Packet + ?Sized>(pkt: &P, off: usize) -> Option<(Seen, L3)> {
    let b = pkt.load::<[u8; V4]>(off)?;
    // Each arm reads the transport header's ports as one big-endian word, so that what the
    // arms hand on is a few registers rather than bytes to be put together after they merge.
    let (family, l4, proto, ports, doff) = match be16([b[12], b[13]]) {
        ETH_P_IP => {
            // Version 4 with a 20-byte header; a total length that holds it (0 is a GSO
            // super-packet's); not a later fragment.
            let tot_len = be16([b[16], b[17]]);
            let frag_offset = be16([b[20], b[21]]) & 0x1fff;
            if b[14] != 0x45 || (tot_len != 0 && tot_len < 20) || frag_offset != 0 {
                return None;
            }
            let l4 = ETH_HLEN + 20;
            (4, l4, b[23], be32(&b, l4), b[l4 + 12])
        }
        ETH_P_IPV6 => {
            let b = pkt.load::<[u8; V6]>(off)?;
            if b[14] >> 4 != 6 {
                return None;
            }
            let l4 = ETH_HLEN + 40;
            (6, l4, b[20], be32(&b, l4), b[l4 + 12])
        }
        _ => return None,
    };
    let header_len = match proto {
        IPPROTO_TCP => {
            let doff = (doff >> 4) as usize * 4;
            if doff < 20 {
                return None;
            }
            doff
        }
        IPPROTO_UDP => 8,
        _ => return None,
    };
    Some((
        Seen {
            status: Status::Ip,
            proto,
            sport: (ports >> 16) as u16,
            dport: ports as u16,
            payload_off: (off + l4 + header_len) as u16,
        },
        L3 {
            family,
            off: (off + ETH_HLEN) as u16,
        },
    ))
}

/// The big-endian word at `at` in `b`.
#[inline(always)]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The addresses of a packet the drop probe's shortcut read, source then destination, as the
/// four words (in memory order) of their 32 bytes as [`super::Headers`] holds them (an IPv4
/// address in the first four bytes of its 16, the rest 0): the words go into the flow key as
/// they are, where bytes would be put together one by one.
pub type AddrWords = [u64; 4];

/// What [`super::parse_ip`] finds, addresses included (as [`AddrWords`]), for a packet whose IP
/// header is at `off` and is the version `ethertype` names, when it is one the shortcut takes
/// (as [`quick_ethernet`]'s); `None` otherwise, for the full parser.
#[inline(always)]
pub fn quick_ip<P: Packet + ?Sized>(
    pkt: &P,
    off: usize,
    ethertype: u16,
) -> Option<(Seen, L3, AddrWords)> {
    let (family, l4, proto, addrs) = match ethertype {
        ETH_P_IP => {
            let b = pkt.load::<[u8; 20]>(off)?;
            let tot_len = be16([b[2], b[3]]);
            let frag_offset = be16([b[6], b[7]]) & 0x1fff;
            if b[0] != 0x45 || (tot_len != 0 && tot_len < 20) || frag_offset != 0 {
                return None;
            }
            let v4 =
                |at: usize| u64::from(u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]));
            (4, off + 20, b[9], [v4(12), 0, v4(16), 0])
        }
        ETH_P_IPV6 => {
            let b = pkt.load::<[u8; 40]>(off)?;
            if b[0] >> 4 != 6 {
                return None;
            }
            let w = |at: usize| ne64(&b, at);
            (6, off + 40, b[6], [w(8), w(16), w(24), w(32)])
        }
        _ => return None,
    };
    let (ports, header_len) = match proto {
        IPPROTO_TCP => {
            let t = pkt.load::<[u8; 20]>(l4)?;
            let doff = (t[12] >> 4) as usize * 4;
            if doff < 20 {
                return None;
            }
            (be32(&t, 0), doff)
        }
        IPPROTO_UDP => (be32(&pkt.load::<[u8; 8]>(l4)?, 0), 8),
        _ => return None,
    };
    Some((
        Seen {
            status: Status::Ip,
            proto,
            sport: (ports >> 16) as u16,
            dport: ports as u16,
            payload_off: (l4 + header_len) as u16,
        },
        L3 {
            family,
            off: off as u16,
        },
        addrs,
    ))
}

/// The word whose bytes, in memory order, are the eight at `at` in `b`.
#[inline(always)]
fn ne64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(w)
}
