//! The fixture the watch, metrics and baseline tests share: namespaces A and B joined by a veth
//! pair, an address on their link nobody owns, and the frames B sends A.

use std::net::Ipv4Addr;

use bytes::Bytes;
use tracer_lab::synth::{Eth, L4, frame};

use super::{NetNs, Veth, joined};

pub const A: Veth = Veth {
    name: "va",
    mac: [0x02, 0, 0, 0, 0, 0x0a],
    ip: Ipv4Addr::new(10, 77, 0, 1),
};
pub const B: Veth = Veth {
    name: "vb",
    mac: [0x02, 0, 0, 0, 0, 0x0b],
    ip: Ipv4Addr::new(10, 77, 0, 2),
};
/// A source address B does not own: A's SYN-ACKs to it leave A but B answers them with nothing.
pub const SILENT: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 3);

pub fn pair() -> (NetNs, NetNs) {
    joined("", &A, &B)
}

/// A SYN from SILENT's port `sport` to A's port 6443: with [`super::silent_apiserver`] in A,
/// it is answered by exactly one SYN-ACK.
pub fn apiserver_syn(sport: u16) -> Bytes {
    frame(
        &Eth::new(B.mac, A.mac),
        SILENT.into(),
        A.ip.into(),
        &L4::syn(sport, 6443),
    )
}

/// A UDP datagram of 50 zero bytes from B's port `sport` to A's `dport`.
pub fn udp(sport: u16, dport: u16) -> Bytes {
    frame(
        &Eth::new(B.mac, A.mac),
        B.ip.into(),
        A.ip.into(),
        &L4::udp(sport, dport, &[0u8; 50]),
    )
}

/// `n` SYNs ([`apiserver_syn`]) from source ports 20000 on.
pub fn apiserver_syns(n: u16) -> Vec<Bytes> {
    (0..n).map(|i| apiserver_syn(20000 + i)).collect()
}

/// `n` UDP datagrams ([`udp`]) to A's `dport`, from source ports `sport0` on.
pub fn udp_to(n: u16, sport0: u16, dport: u16) -> Vec<Bytes> {
    (0..n).map(|i| udp(sport0 + i, dport)).collect()
}

/// `n` SYNs from B's ports `sport0` on to A's BGP port (179): with nothing listening there, A
/// answers each with a reset and drops the SYN.
pub fn bgp_syns(n: u16, sport0: u16) -> Vec<Bytes> {
    (0..n)
        .map(|i| {
            frame(
                &Eth::new(B.mac, A.mac),
                B.ip.into(),
                A.ip.into(),
                &L4::syn(sport0 + i, 179),
            )
        })
        .collect()
}
