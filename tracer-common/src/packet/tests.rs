//! Host tests of the parser and the class rule on hand-built frames.

extern crate std;
use std::vec::Vec;

use super::*;
use crate::classes::{CLASS_MALFORMED, CLASS_OTHER, PortClasses, classify};
use crate::drops::Flow;

const MAC: [u8; 12] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];

/// An Ethernet header with `vlans` tags (two tags: 802.1ad outer, 802.1Q inner).
fn eth(ethertype: u16, vlans: &[u16]) -> Vec<u8> {
    let mut f = MAC.to_vec();
    let tpids: &[u16] = if vlans.len() == 2 {
        &[ETH_P_8021AD, ETH_P_8021Q]
    } else {
        &[ETH_P_8021Q]
    };
    for (tpid, vid) in tpids.iter().zip(vlans) {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

fn ipv4(proto: u8, options: usize, l4: &[u8]) -> Vec<u8> {
    let ihl = 20 + options;
    let mut h = std::vec![0u8; ihl];
    h[0] = 0x40 | (ihl / 4) as u8;
    h[2..4].copy_from_slice(&((ihl + l4.len()) as u16).to_be_bytes());
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&[10, 0, 0, 1]);
    h[16..20].copy_from_slice(&[10, 0, 0, 2]);
    h.extend_from_slice(l4);
    h
}

fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = std::vec![0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    h[6] = next;
    h[7] = 64;
    h[8..24].copy_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    h[24..40].copy_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    h.extend_from_slice(payload);
    h
}

fn tcp(sport: u16, dport: u16) -> Vec<u8> {
    let mut t = std::vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02;
    t
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = std::vec![0u8; 8];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(payload);
    u
}

fn frame(ethertype: u16, vlans: &[u16], l3: &[u8]) -> Vec<u8> {
    let mut f = eth(ethertype, vlans);
    f.extend_from_slice(l3);
    f
}

fn parse(f: &[u8]) -> Headers {
    parse_ethernet::<[u8], true>(f, 0)
}

/// A table with 6443/tcp as class 2, 4789/udp as 3, 10000-30000/tcp as 4 and 10250/tcp as 5.
fn port_class(port: u16) -> PortClasses {
    let mut p = PortClasses::default();
    match port {
        6443 => p.tcp = 2,
        4789 => p.udp = 3,
        10250 => p.tcp = 5,
        10000..=30000 => p.tcp = 4,
        _ => {}
    }
    p
}

fn proto_class(proto: u8) -> u8 {
    if proto == IPPROTO_VRRP {
        6
    } else {
        CLASS_OTHER
    }
}

fn class_of(f: &[u8]) -> u8 {
    classify(parse(f).seen(), port_class, proto_class)
}

#[test]
fn ipv4_tcp_with_ports_and_addresses() {
    let f = frame(ETH_P_IP, &[], &ipv4(IPPROTO_TCP, 0, &tcp(40000, 6443)));
    let h = parse(&f);
    assert_eq!(h.status, Status::Ip);
    assert_eq!(
        (h.family, h.proto, h.sport, h.dport),
        (4, IPPROTO_TCP, 40000, 6443)
    );
    assert_eq!((h.l3_off, h.l4_off, h.payload_off), (14, 34, 54));
    assert_eq!(&h.src[..4], &[10, 0, 0, 1]);
    assert_eq!(&h.dst[..4], &[10, 0, 0, 2]);
}

#[test]
fn ipv4_options_move_the_l4_header() {
    let f = frame(
        ETH_P_IP,
        &[],
        &ipv4(IPPROTO_UDP, 12, &udp(5555, 4789, &[0; 8])),
    );
    let h = parse(&f);
    assert_eq!((h.status, h.l4_off, h.dport), (Status::Ip, 14 + 32, 4789));
}

#[test]
fn vlan_and_qinq_tags_are_skipped() {
    for tags in [&[100u16][..], &[100, 200][..]] {
        let f = frame(ETH_P_IP, tags, &ipv4(IPPROTO_TCP, 0, &tcp(40000, 6443)));
        let h = parse(&f);
        assert_eq!(h.status, Status::Ip, "{tags:?}");
        assert_eq!(h.vlans as usize, tags.len());
        assert_eq!(h.l3_off as usize, 14 + 4 * tags.len());
        assert_eq!(class_of(&f), 2);
    }
}

#[test]
fn ipv6_extension_headers_are_walked() {
    // Hop-by-hop (8 bytes) then destination options (16 bytes) then UDP.
    let mut payload = std::vec![60u8, 0, 0, 0, 0, 0, 0, 0];
    payload.extend_from_slice(&[IPPROTO_UDP, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    payload.extend_from_slice(&udp(33000, 4789, &[0; 8]));
    let f = frame(ETH_P_IPV6, &[], &ipv6(0, &payload));
    let h = parse(&f);
    assert_eq!(
        (h.status, h.family, h.proto, h.dport),
        (Status::Ip, 6, IPPROTO_UDP, 4789)
    );
    assert_eq!(h.l4_off as usize, 14 + 40 + 24);
    assert_eq!(h.src[0], 0xfd);
    assert_eq!(class_of(&f), 3);
}

#[test]
fn ipv6_later_fragment_has_no_ports() {
    let frag = [IPPROTO_UDP, 0, 0x01, 0x00, 0, 0, 0, 1];
    let f = frame(ETH_P_IPV6, &[], &ipv6(44, &frag));
    let h = parse(&f);
    assert_eq!((h.status, h.proto), (Status::Fragment, IPPROTO_UDP));
    assert_eq!(class_of(&f), CLASS_OTHER);
}

#[test]
fn ipv4_later_fragment_has_no_ports() {
    let mut ip = ipv4(IPPROTO_UDP, 0, &[0; 16]);
    ip[6] = 0x00;
    ip[7] = 0x10; // offset 16 * 8 bytes
    let h = parse(&frame(ETH_P_IP, &[], &ip));
    assert_eq!(h.status, Status::Fragment);
}

#[test]
fn server_side_wins_in_both_directions() {
    let req = frame(ETH_P_IP, &[], &ipv4(IPPROTO_TCP, 0, &tcp(45000, 6443)));
    let rep = frame(ETH_P_IP, &[], &ipv4(IPPROTO_TCP, 0, &tcp(6443, 45000)));
    assert_eq!((class_of(&req), class_of(&rep)), (2, 2));
    // A client port inside a classed range (Longhorn's 10000-30000) does not steal the
    // reply of a lower server port.
    let rep = frame(ETH_P_IP, &[], &ipv4(IPPROTO_TCP, 0, &tcp(6443, 15000)));
    assert_eq!(class_of(&rep), 2);
    // The narrower entry inside a range keeps its own class.
    let kubelet = frame(ETH_P_IP, &[], &ipv4(IPPROTO_TCP, 0, &tcp(50000, 10250)));
    assert_eq!(class_of(&kubelet), 5);
}

#[test]
fn protocol_classes_need_no_ports() {
    let f = frame(
        ETH_P_IP,
        &[],
        &ipv4(IPPROTO_VRRP, 0, &[0x21, 1, 100, 1, 0, 1, 0, 0]),
    );
    assert_eq!(class_of(&f), 6);
}

#[test]
fn unknown_ports_and_non_ip_are_other() {
    let f = frame(ETH_P_IP, &[], &ipv4(IPPROTO_TCP, 0, &tcp(40000, 8080)));
    assert_eq!(class_of(&f), CLASS_OTHER);
    let arp = frame(0x0806, &[], &[0; 28]);
    assert_eq!(parse(&arp).status, Status::NotIp);
    assert_eq!(class_of(&arp), CLASS_OTHER);
}

#[test]
fn every_truncation_of_a_valid_frame_is_malformed_or_shorter_header() {
    let full = frame(ETH_P_IP, &[7], &ipv4(IPPROTO_TCP, 8, &tcp(40000, 6443)));
    for cut in 0..full.len() {
        assert_eq!(class_of(&full[..cut]), CLASS_MALFORMED, "cut at {cut}");
    }
    assert_eq!(class_of(&full), 2);
    let full6 = frame(ETH_P_IPV6, &[], &ipv6(IPPROTO_UDP, &udp(1, 4789, &[])));
    for cut in 0..full6.len() {
        assert_eq!(class_of(&full6[..cut]), CLASS_MALFORMED, "cut at {cut}");
    }
}

#[test]
fn inconsistent_headers_are_malformed() {
    let mut bad_version = ipv4(IPPROTO_TCP, 0, &tcp(1, 6443));
    bad_version[0] = 0x55;
    let mut short_ihl = ipv4(IPPROTO_TCP, 0, &tcp(1, 6443));
    short_ihl[0] = 0x44;
    let mut short_total = ipv4(IPPROTO_TCP, 0, &tcp(1, 6443));
    short_total[2..4].copy_from_slice(&10u16.to_be_bytes());
    let mut bad_doff = ipv4(IPPROTO_TCP, 0, &tcp(1, 6443));
    bad_doff[20 + 12] = 4 << 4;
    for ip in [bad_version, short_ihl, short_total, bad_doff] {
        assert_eq!(class_of(&frame(ETH_P_IP, &[], &ip)), CLASS_MALFORMED);
    }
    let mut v6_in_v4 = ipv6(IPPROTO_UDP, &udp(1, 4789, &[]));
    v6_in_v4[0] = 0x45;
    assert_eq!(
        class_of(&frame(ETH_P_IPV6, &[], &v6_in_v4)),
        CLASS_MALFORMED
    );
}

#[test]
fn vxlan_vni_needs_the_i_flag() {
    let hdr = [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0];
    assert_eq!(vxlan_vni(&hdr[..], 0), Some(0x12_34_56));
    let no_i = [0x00, 0, 0, 0, 0x12, 0x34, 0x56, 0];
    assert_eq!(vxlan_vni(&no_i[..], 0), None);
    assert_eq!(vxlan_vni(&hdr[..7], 0), None);
    let not_vxlan = [b'x'; 8];
    assert_eq!(vxlan_vni(&not_vxlan[..], 0), None);
}

#[test]
fn addresses_are_skipped_when_not_asked_for() {
    let f = frame(ETH_P_IP, &[], &ipv4(IPPROTO_TCP, 0, &tcp(40000, 6443)));
    let h = parse_ethernet::<[u8], false>(&f, 0);
    assert_eq!(h.src, [0; 16]);
    assert_eq!(h.dport, 6443);
}

/// The counting programs' shortcut agrees with the full parser on every frame: whole ones of
/// each kind it takes or leaves, and the same with bytes of their headers changed at random and
/// cut at every length (a fixed xorshift, so a failure repeats).
#[test]
fn the_counting_shortcut_agrees_with_the_full_parser() {
    let mut bases = std::vec![
        frame(ETH_P_IP, &[], &ipv4(IPPROTO_TCP, 0, &tcp(40000, 6443))),
        frame(
            ETH_P_IP,
            &[],
            &ipv4(IPPROTO_UDP, 0, &udp(5000, 4789, &[9; 40]))
        ),
        frame(ETH_P_IP, &[], &ipv4(IPPROTO_TCP, 8, &tcp(40000, 6443))),
        frame(ETH_P_IP, &[7], &ipv4(IPPROTO_TCP, 0, &tcp(40000, 6443))),
        frame(ETH_P_IP, &[], &ipv4(IPPROTO_VRRP, 0, &[0; 40])),
        frame(ETH_P_IPV6, &[], &ipv6(IPPROTO_TCP, &tcp(40000, 6443))),
        frame(
            ETH_P_IPV6,
            &[],
            &ipv6(IPPROTO_UDP, &udp(5000, 4789, &[1; 30]))
        ),
        frame(
            ETH_P_IPV6,
            &[],
            &ipv6(0, &[IPPROTO_TCP, 0, 0, 0, 0, 0, 0, 0])
        ),
    ];
    let mut tcp_options = tcp(1, 2);
    tcp_options[12] = 8 << 4;
    tcp_options.extend_from_slice(&[1; 12]);
    bases.push(frame(ETH_P_IP, &[], &ipv4(IPPROTO_TCP, 0, &tcp_options)));
    // Shorter than the frames quick_ethernet reads: quick_ip takes them.
    bases.push(frame(
        ETH_P_IP,
        &[],
        &ipv4(IPPROTO_UDP, 0, &udp(5000, 1, b"s")),
    ));
    bases.push(frame(
        ETH_P_IPV6,
        &[],
        &ipv6(IPPROTO_UDP, &udp(5000, 1, b"")),
    ));
    let same = |f: &[u8]| {
        let full = parse_ethernet::<[u8], false>(f, 0);
        assert_eq!(count_ethernet(f, 0), full.seen(), "{f:02x?}");
        if let Some(quick) = quick_ethernet(f, 0) {
            assert_eq!(quick, (full.seen(), full.l3()), "{f:02x?}");
        }
        // The drop probe's shortcut, after an untagged Ethernet header and from the IP header.
        if f.len() >= ETH_HLEN {
            let ethertype = be16([f[12], f[13]]);
            let full = parse_ethernet::<[u8], true>(f, 0);
            if let Some((seen, l3, addrs)) = quick_ip(f, ETH_HLEN, ethertype) {
                assert_eq!(
                    (seen, l3, Flow::quick(seen, l3, addrs)),
                    (full.seen(), full.l3(), Flow::of(&full)),
                    "{f:02x?}"
                );
            }
            let ip = &f[ETH_HLEN..];
            let full = parse_ip::<[u8], true>(ip, 0, ethertype);
            if let Some((seen, l3, addrs)) = quick_ip(ip, 0, ethertype) {
                assert_eq!(
                    (seen, l3, Flow::quick(seen, l3, addrs)),
                    (full.seen(), full.l3(), Flow::of(&full)),
                    "{ip:02x?}"
                );
            }
        }
    };
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for base in &bases {
        for len in 0..=base.len() {
            same(&base[..len]);
        }
        for _ in 0..20_000 {
            let mut f = base.clone();
            for _ in 0..=next() % 3 {
                // Mostly the bytes the parsers decide on: the headers before any payload.
                let at = (next() % 80) as usize % f.len();
                f[at] = next() as u8;
            }
            let cut = if next() % 4 == 0 {
                next() as usize % f.len()
            } else {
                0
            };
            let len = f.len() - cut;
            same(&f[..len]);
        }
    }
}

/// The drop probe's shortcut takes the packets a drop storm is made of: a short datagram from
/// its IP header (a packet leaving has no link-layer header yet), or after an Ethernet header,
/// with its addresses; and leaves what it does not read whole.
#[test]
fn the_drop_shortcut_takes_short_datagrams_with_their_addresses() {
    let ip = ipv4(IPPROTO_UDP, 0, &udp(43775, 1, b"storm"));
    let (seen, l3, addrs) = quick_ip(&ip[..], 0, ETH_P_IP).expect("taken");
    assert_eq!(
        (seen.proto, seen.sport, seen.dport),
        (IPPROTO_UDP, 43775, 1)
    );
    assert_eq!((l3.family, l3.off, seen.payload_off), (4, 0, 28));
    let flow = Flow::quick(seen, l3, addrs);
    assert_eq!(
        (flow.family, flow.proto, flow.sport, flow.dport),
        (4, IPPROTO_UDP, 43775, 1)
    );
    assert_eq!(&flow.src[..4], &[10, 0, 0, 1]);
    assert_eq!(&flow.dst[..4], &[10, 0, 0, 2]);
    assert!(flow.src[4..].iter().chain(&flow.dst[4..]).all(|&b| b == 0));
    let f = frame(ETH_P_IPV6, &[], &ipv6(IPPROTO_TCP, &tcp(40000, 6443)));
    let (seen, l3, addrs) = quick_ip(&f[..], ETH_HLEN, ETH_P_IPV6).expect("taken");
    let flow = Flow::quick(seen, l3, addrs);
    assert_eq!((flow.dport, flow.family, flow.dst[15]), (6443, 6, 2));
    // Options, a fragment, another protocol, a cut header: the full parser's.
    assert!(quick_ip(&ipv4(IPPROTO_TCP, 4, &tcp(1, 2))[..], 0, ETH_P_IP).is_none());
    assert!(quick_ip(&ipv4(IPPROTO_VRRP, 0, &[0; 20])[..], 0, ETH_P_IP).is_none());
    assert!(quick_ip(&ip[..27], 0, ETH_P_IP).is_none());
    let mut later = ip.clone();
    later[7] = 1;
    assert!(quick_ip(&later[..], 0, ETH_P_IP).is_none());
}
