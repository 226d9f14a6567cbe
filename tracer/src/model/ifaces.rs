//! The interfaces of the current network namespace, read with ioctls on a socket so the answer
//! is right inside any namespace (sysfs shows the namespace it was mounted in, which after
//! `nsenter --net` is not ours).

use std::{ffi::CStr, io, mem, os::fd::AsRawFd};

/// What the tracer needs to know about an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
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
const ETHTOOL_GDRVINFO: u32 = 3;

#[repr(C)]
struct EthtoolDrvinfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

/// Drivers of devices that have no bus but answer ETHTOOL_GDRVINFO anyway.
const VIRTUAL_DRIVERS: &[&str] = &[
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

struct Socket(std::os::fd::OwnedFd);

impl Socket {
    fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the fd is owned below.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        Ok(Socket(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }))
    }

    fn ifreq(&self, name: &str, request: libc::c_ulong) -> io::Result<libc::ifreq> {
        let mut req: libc::ifreq = unsafe { mem::zeroed() };
        for (dst, src) in req
            .ifr_name
            .iter_mut()
            .zip(name.as_bytes().iter().take(libc::IFNAMSIZ - 1))
        {
            *dst = *src as libc::c_char;
        }
        // SAFETY: req is a valid ifreq for these SIOCGIF* requests.
        if unsafe { libc::ioctl(self.0.as_raw_fd(), request as _, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(req)
    }

    fn drvinfo(&self, name: &str) -> Option<(String, String)> {
        let mut info: EthtoolDrvinfo = unsafe { mem::zeroed() };
        info.cmd = ETHTOOL_GDRVINFO;
        let mut req: libc::ifreq = unsafe { mem::zeroed() };
        for (dst, src) in req
            .ifr_name
            .iter_mut()
            .zip(name.as_bytes().iter().take(libc::IFNAMSIZ - 1))
        {
            *dst = *src as libc::c_char;
        }
        req.ifr_ifru.ifru_data = (&mut info as *mut EthtoolDrvinfo).cast();
        // SAFETY: ifru_data points at a live ethtool_drvinfo for the duration of the call.
        if unsafe { libc::ioctl(self.0.as_raw_fd(), libc::SIOCETHTOOL as _, &mut req) } < 0 {
            return None;
        }
        let text = |b: &[u8]| {
            CStr::from_bytes_until_nul(b)
                .ok()
                .map(|s| s.to_string_lossy().into_owned())
        };
        Some((
            text(&info.driver)?,
            text(&info.bus_info).unwrap_or_default(),
        ))
    }
}

/// Every interface of the current network namespace, by index.
pub fn list() -> io::Result<Vec<Interface>> {
    let sock = Socket::new()?;
    let mut out = Vec::new();
    // SAFETY: if_nameindex returns a list terminated by a zero entry, freed below.
    unsafe {
        let head = libc::if_nameindex();
        if head.is_null() {
            return Err(io::Error::last_os_error());
        }
        let mut p = head;
        while (*p).if_index != 0 {
            let name = CStr::from_ptr((*p).if_name).to_string_lossy().into_owned();
            out.push((name, (*p).if_index));
            p = p.add(1);
        }
        libc::if_freenameindex(head);
    }
    let mut ifaces: Vec<Interface> = out
        .into_iter()
        // An interface can vanish between the listing and the ioctls: leave it out.
        .filter_map(|(name, index)| describe(&sock, name, index).ok())
        .collect();
    ifaces.sort_by_key(|i| i.index);
    Ok(ifaces)
}

fn describe(sock: &Socket, name: String, index: u32) -> io::Result<Interface> {
    // SAFETY: the union members read are the ones these requests fill in.
    let flags = unsafe { sock.ifreq(&name, libc::SIOCGIFFLAGS)?.ifr_ifru.ifru_flags } as i32;
    let link_type = unsafe {
        sock.ifreq(&name, libc::SIOCGIFHWADDR)?
            .ifr_ifru
            .ifru_hwaddr
            .sa_family
    };
    let mtu = unsafe { sock.ifreq(&name, libc::SIOCGIFMTU)?.ifr_ifru.ifru_mtu } as u32;
    let drv = sock.drvinfo(&name);
    let loopback = flags & libc::IFF_LOOPBACK != 0;
    let is_virtual = loopback
        || match &drv {
            Some((driver, bus)) => bus.is_empty() || VIRTUAL_DRIVERS.contains(&driver.as_str()),
            None => true,
        };
    Ok(Interface {
        name,
        index,
        up: flags & libc::IFF_UP != 0,
        loopback,
        link_type,
        driver: drv.map(|(d, _)| d),
        is_virtual,
        mtu,
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
