//! The drop storm's test bed and sender, shared by sections 4 and 4b. In a fresh namespace an
//! nftables output rule drops every datagram to one address (on the link, with a permanent
//! neighbour entry, so no ARP); the sender is a loop of `sendto` calls on one UDP socket in
//! this process, native code with nothing between the calls, so the sender is never the
//! bottleneck: every datagram is dropped in the sender's own system call (EPERM), none can be
//! lost on a queue, and the rate at which the calls return is the rate of drops.

use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    time::Instant,
};

use anyhow::{Context, Result};
use bytes::Bytes;
use tracer_common::packet::{ETH_HLEN, VXLAN_HLEN};
use tracer_lab::synth::{Eth, L4, frame, vxlan_payload};

use crate::netns::{self, NetNs};

const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 2);
/// The dropped destination.
const DROPPED: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 9);
/// The device the dropped datagrams would leave by.
pub const DEVICE: &str = "bn0";
/// VXLAN's port, a VXLAN class (`calico-vxlan`) in the generic profile.
const VXLAN_PORT: u16 = 4789;

/// What the storm sends: plain UDP datagrams to `flows` destination ports, or VXLAN datagrams
/// whose inner TCP flows (to 6443) differ in their `flows` source ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Traffic {
    Udp { flows: u16 },
    Vxlan { flows: u16 },
}

impl Traffic {
    pub fn flows(self) -> u16 {
        match self {
            Traffic::Udp { flows } | Traffic::Vxlan { flows } => flows,
        }
    }

    pub fn label(self) -> String {
        match self {
            Traffic::Udp { flows: 1 } => "udp, 1 flow".into(),
            Traffic::Udp { flows } => format!("udp, {flows} flows"),
            Traffic::Vxlan { flows: 1 } => "vxlan, 1 inner flow".into(),
            Traffic::Vxlan { flows } => format!("vxlan, {flows} inner flows"),
        }
    }
}

/// The storm's namespace (and the peer its device is paired with), with the dropping rule.
pub struct Bed {
    pub ns: NetNs,
    _peer: NetNs,
}

impl Bed {
    pub fn new(tag: &str) -> Result<Bed> {
        let (ns, peer) = netns::pair(tag, LOCAL, &format!("{tag}p"), PEER)?;
        ns.nft(&format!(
            "table inet bnstorm {{\n chain output {{\n type filter hook output priority 0;\n ip daddr {DROPPED} drop\n }}\n}}\n"
        ))?;
        ns.ip(&[
            "neigh",
            "add",
            &DROPPED.to_string(),
            "lladdr",
            "02:00:00:00:00:09",
            "dev",
            DEVICE,
            "nud",
            "permanent",
        ])?;
        Ok(Bed { ns, _peer: peer })
    }

    /// Sends the storm from inside the bed's namespace; the seconds it took.
    pub fn send(&self, datagrams: u64, traffic: Traffic) -> Result<f64> {
        self.ns.run_in(|| send_here(datagrams, traffic))?
    }
}

/// Sends the storm from the calling thread, which is inside a bed's namespace; the seconds it
/// took.
pub fn send_here(datagrams: u64, traffic: Traffic) -> Result<f64> {
    let sock = UdpSocket::bind((LOCAL, 0)).context("binding the storm's socket")?;
    let flows = u64::from(traffic.flows().max(1));
    let (mut payload, patch) = payload(traffic);
    let started = Instant::now();
    for i in 0..datagrams {
        let flow = (i % flows) as u16;
        let port = match patch {
            Some(at) => {
                payload[at..at + 2].copy_from_slice(&(10_000 + flow).to_be_bytes());
                VXLAN_PORT
            }
            None => 1 + flow,
        };
        // EPERM for every one of them: the rule drops it on the way out.
        let _ = sock.send_to(&payload, SocketAddrV4::new(DROPPED, port));
    }
    Ok(started.elapsed().as_secs_f64())
}

/// The datagram's payload, and where the flow number goes in it (VXLAN: the inner TCP source
/// port; plain UDP varies the destination port instead).
fn payload(traffic: Traffic) -> (Vec<u8>, Option<usize>) {
    match traffic {
        Traffic::Udp { .. } => (b"storm".to_vec(), None),
        Traffic::Vxlan { .. } => {
            let eth = Eth::new([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
            let inner: Bytes = frame(
                &eth,
                Ipv4Addr::new(10, 244, 1, 2).into(),
                Ipv4Addr::new(10, 244, 2, 2).into(),
                &L4::syn(10_000, 6443),
            );
            // VXLAN header, inner Ethernet, a 20-byte IPv4 header, then the TCP source port.
            let at = VXLAN_HLEN + ETH_HLEN + 20;
            (vxlan_payload(4096, &inner).to_vec(), Some(at))
        }
    }
}
