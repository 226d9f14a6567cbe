//! The interfaces of the current network namespace and what the tracer needs to know of each:
//! up, loopback, link type, MTU, driver, and whether it is a virtual device; and which of them
//! `--iface` asks for ([`Patterns`]). Read with ioctls on a socket ([`crate::sys::netdev`]) so
//! the answer is right inside any namespace (sysfs shows the namespace it was mounted in,
//! which after `nsenter --net` is not ours).

use std::io;

use serde::{Deserialize, Serialize};

use crate::sys::netdev::{self, DeviceSocket};

mod patterns;

pub use patterns::Patterns;

/// What the tracer needs to know about an interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    pub up: bool,
    pub loopback: bool,
    /// ARPHRD_* link type; 1 is Ethernet.
    pub link_type: u16,
    /// Kernel driver (`veth`, `vxlan`, `virtio_net`...), when the device reports one.
    pub driver: Option<String>,
    /// No bus behind it: veth, bridge, vxlan, dummy... The cheap hook there is tc.
    pub is_virtual: bool,
    pub mtu: u32,
}

impl Interface {
    /// Packets start at the IP header (WireGuard, tun, ipip): there is no Ethernet header.
    pub fn has_l2(&self) -> bool {
        matches!(self.link_type, ARPHRD_ETHER | ARPHRD_LOOPBACK)
    }
}

const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;

/// Drivers of devices that have no bus but answer ETHTOOL_GDRVINFO anyway.
pub(crate) const VIRTUAL_DRIVERS: &[&str] = &[
    "veth",
    "vxlan",
    "bridge",
    "dummy",
    "tun",
    "wireguard",
    "ipip",
    "gre",
    "ip6_gre",
    "macvlan",
    "ipvlan",
    "vrf",
    "bonding",
    "team",
    "geneve",
    "openvswitch",
    "nlmon",
    "ifb",
    "802.1Q VLAN Support",
];

/// Every interface of the current network namespace, by index.
pub fn list() -> io::Result<Vec<Interface>> {
    let sock = DeviceSocket::new()?;
    let mut ifaces: Vec<Interface> = netdev::names_and_indexes()?
        .into_iter()
        // An interface can vanish between the listing and the ioctls: leave it out.
        .filter_map(|(name, index)| describe(&sock, name, index).ok())
        .collect();
    ifaces.sort_by_key(|i| i.index);
    Ok(ifaces)
}

/// The interface `name` of index `index`, as [`list`] describes it.
pub fn one(name: &str, index: u32) -> io::Result<Interface> {
    describe(&DeviceSocket::new()?, name.to_string(), index)
}

fn describe(sock: &DeviceSocket, name: String, index: u32) -> io::Result<Interface> {
    let info = sock.info(&name)?;
    let drv = sock.driver(&name);
    let loopback = info.is_loopback();
    let is_virtual = loopback
        || match &drv {
            Some((driver, bus)) => bus.is_empty() || VIRTUAL_DRIVERS.contains(&driver.as_str()),
            None => true,
        };
    Ok(Interface {
        name,
        index,
        up: info.is_up(),
        loopback,
        link_type: info.link_type,
        driver: drv.map(|(d, _)| d),
        is_virtual,
        mtu: info.mtu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed_and_virtual() {
        let ifaces = list().unwrap();
        let lo = ifaces
            .iter()
            .find(|i| i.loopback)
            .expect("every namespace has lo");
        assert_eq!(lo.name, "lo");
        assert!(lo.is_virtual);
        assert!(lo.has_l2());
    }
}
