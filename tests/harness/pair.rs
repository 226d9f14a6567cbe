//! The fixture the watch and metrics tests share: namespaces A and B joined by a veth pair, an
//! address on their link nobody owns, and the frames B sends A.

use std::net::Ipv4Addr;

use bytes::Bytes;
use tracer::synth::{Eth, L4, frame};

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

/// `n` SYNs from SILENT to A's port 6443, from source ports 20000 on: with
/// [`super::silent_apiserver`] in A, each is answered by exactly one SYN-ACK.
pub fn apiserver_syns(n: u16) -> Vec<Bytes> {
    let to_a = Eth::new(B.mac, A.mac);
    (0..n)
        .map(|i| frame(&to_a, SILENT.into(), A.ip.into(), &L4::syn(20000 + i, 6443)))
        .collect()
}

/// `n` UDP datagrams of 50 zero bytes from B to A's `dport`, from source ports `sport0` on.
pub fn udp_to(n: u16, sport0: u16, dport: u16) -> Vec<Bytes> {
    let to_a = Eth::new(B.mac, A.mac);
    (0..n)
        .map(|i| {
            frame(
                &to_a,
                B.ip.into(),
                A.ip.into(),
                &L4::udp(sport0 + i, dport, &[0u8; 50]),
            )
        })
        .collect()
}
