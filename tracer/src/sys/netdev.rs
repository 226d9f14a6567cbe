//! Network devices of the current network namespace, read with `if_nameindex` and ioctls on a
//! datagram socket, so the answer is right inside any namespace (sysfs shows the namespace it
//! was mounted in, which after `nsenter --net` is not ours).

use std::{
    ffi::CStr,
    io, mem,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

/// Every interface of the namespace, as (name, index), in the kernel's order.
pub fn names_and_indexes() -> io::Result<Vec<(String, u32)>> {
    // SAFETY: if_nameindex takes no arguments and returns either NULL (checked) or a list it
    // allocated, which is only freed below.
    let head = unsafe { libc::if_nameindex() };
    if head.is_null() {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut p = head;
    loop {
        // SAFETY: `p` points into the list: it starts at its head and only advances past an
        // entry whose index is not 0, and the list ends with an entry whose index is 0.
        let entry = unsafe { &*p };
        if entry.if_index == 0 {
            break;
        }
        // SAFETY: every entry before the terminator has a NUL-terminated name that lives
        // until the list is freed; it is copied out before that.
        let name = unsafe { CStr::from_ptr(entry.if_name) };
        out.push((name.to_string_lossy().into_owned(), entry.if_index));
        // SAFETY: this entry is not the terminator, so the next one is still in the list.
        p = unsafe { p.add(1) };
    }
    // SAFETY: `head` came from if_nameindex and is freed once; no reference into it is kept.
    unsafe { libc::if_freenameindex(head) };
    Ok(out)
}

/// What `SIOCGIFFLAGS`, `SIOCGIFHWADDR` and `SIOCGIFMTU` say about one interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `IFF_*` flags.
    pub flags: i32,
    /// ARPHRD_* link type (the hardware address' family).
    pub link_type: u16,
    /// The MTU.
    pub mtu: u32,
}

impl DeviceInfo {
    /// `IFF_UP`.
    pub fn is_up(&self) -> bool {
        self.flags & libc::IFF_UP != 0
    }

    /// `IFF_LOOPBACK`.
    pub fn is_loopback(&self) -> bool {
        self.flags & libc::IFF_LOOPBACK != 0
    }
}

const ETHTOOL_GDRVINFO: u32 = 3;

/// `struct ethtool_drvinfo` of `<linux/ethtool.h>`.
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

/// A socket to ask the kernel about devices with ioctls.
pub struct DeviceSocket(OwnedFd);

impl DeviceSocket {
    /// An `AF_INET` datagram socket, closed on drop (and on exec).
    pub fn new() -> io::Result<Self> {
        // SAFETY: socket takes plain integers and returns a new descriptor or -1 (checked).
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns or closes.
        Ok(DeviceSocket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Flags, link type and MTU of the interface `name`.
    pub fn info(&self, name: &str) -> io::Result<DeviceInfo> {
        let flags = self.ifreq(name, libc::SIOCGIFFLAGS)?;
        let hwaddr = self.ifreq(name, libc::SIOCGIFHWADDR)?;
        let mtu = self.ifreq(name, libc::SIOCGIFMTU)?;
        // SAFETY: each request fills in the union member read from its answer: SIOCGIFFLAGS
        // `ifru_flags`, SIOCGIFHWADDR `ifru_hwaddr`, SIOCGIFMTU `ifru_mtu`; all are plain
        // integers, valid for any bits.
        let info = unsafe {
            DeviceInfo {
                flags: i32::from(flags.ifr_ifru.ifru_flags),
                link_type: hwaddr.ifr_ifru.ifru_hwaddr.sa_family,
                mtu: mtu.ifr_ifru.ifru_mtu as u32,
            }
        };
        Ok(info)
    }

    /// The driver and bus of the interface `name` (`ETHTOOL_GDRVINFO`); the bus is empty for
    /// a device without one. `None` when the device does not answer, or names no driver.
    pub fn driver(&self, name: &str) -> Option<(String, String)> {
        // SAFETY: ethtool_drvinfo is integers and byte arrays, for which all zeroes is valid.
        let mut info: EthtoolDrvinfo = unsafe { mem::zeroed() };
        info.cmd = ETHTOOL_GDRVINFO;
        let mut req = ifreq_named(name);
        req.ifr_ifru.ifru_data = (&raw mut info).cast();
        // SAFETY: `req` is a valid ifreq whose `ifru_data` points at `info`, a live
        // ethtool_drvinfo the kernel fills in (its `cmd` says which), for the whole call.
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

    /// Asks `request` (a `SIOCGIF*` that only reads the name and fills in the union) of the
    /// interface `name`.
    fn ifreq(&self, name: &str, request: libc::c_ulong) -> io::Result<libc::ifreq> {
        let mut req = ifreq_named(name);
        // SAFETY: `req` is a valid ifreq that lives for the call; the SIOCGIF* requests used
        // here read `ifr_name` and write only inside the ifreq's union.
        if unsafe { libc::ioctl(self.0.as_raw_fd(), request as _, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(req)
    }
}

/// An ifreq holding `name` (cut to `IFNAMSIZ - 1` bytes, so it stays NUL-terminated).
fn ifreq_named(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is a name array and a union of integers, addresses and pointers, for all
    // of which all zeroes is valid (a null pointer is never dereferenced by these requests).
    let mut req: libc::ifreq = unsafe { mem::zeroed() };
    for (dst, src) in req
        .ifr_name
        .iter_mut()
        .zip(name.as_bytes().iter().take(libc::IFNAMSIZ - 1))
    {
        *dst = *src as libc::c_char;
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_answers_every_question() {
        let names = names_and_indexes().unwrap();
        let (name, _) = names.iter().find(|(n, _)| n == "lo").expect("lo");
        let sock = DeviceSocket::new().unwrap();
        let info = sock.info(name).unwrap();
        assert!(info.is_loopback());
        assert_eq!(info.link_type, 772, "ARPHRD_LOOPBACK");
        assert!(sock.info("no-such-device0").is_err());
    }
}
