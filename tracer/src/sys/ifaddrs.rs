//! The IPv4 and IPv6 addresses of the current network namespace's interfaces, from
//! `getifaddrs`.

use std::{
    ffi::CStr,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

/// An address of an interface with its prefix length, as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// The interface's name.
    pub iface: String,
    /// The address.
    pub addr: IpAddr,
    /// The prefix length, from the netmask.
    pub prefix: u8,
}

/// Every IPv4 and IPv6 address of the namespace's interfaces (other families are left out).
pub fn addresses() -> io::Result<Vec<InterfaceAddress>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a pointer to a list it allocated into `head`, a valid place
    // for it, or returns -1 (checked) and writes nothing.
    if unsafe { libc::getifaddrs(&raw mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut p = head;
    while !p.is_null() {
        // SAFETY: `p` is `head` or an `ifa_next` of the list, not null (checked), and the list
        // lives until freed below.
        let ifa = unsafe { &*p };
        p = ifa.ifa_next;
        // SAFETY: both pointers are null (checked first) or point at a sockaddr of the list.
        if let Some(entry) = unsafe { entry(ifa) } {
            out.push(entry);
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once; nothing borrowed from it is kept.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// Just the addresses of [`addresses`]; none, with a note in the log, when they cannot be read
/// (what reads them then knows no address of this node rather than failing the run).
pub fn ips() -> Vec<IpAddr> {
    match addresses() {
        Ok(list) => list.into_iter().map(|a| a.addr).collect(),
        Err(e) => {
            log::debug!("listing this node's addresses: {e}");
            Vec::new()
        }
    }
}

/// The address of one entry, if it is an IPv4 or IPv6 one.
///
/// # Safety
/// `ifa` must be an entry of a live getifaddrs list: `ifa_name` a NUL-terminated string,
/// `ifa_addr` and `ifa_netmask` null or pointing at sockaddrs of the family `ifa_addr` names.
unsafe fn entry(ifa: &libc::ifaddrs) -> Option<InterfaceAddress> {
    if ifa.ifa_addr.is_null() || ifa.ifa_netmask.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees a NUL-terminated name.
    let iface = unsafe { CStr::from_ptr(ifa.ifa_name) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: `ifa_addr` is not null and points at a sockaddr, which starts with its family.
    let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
    let (addr, prefix) = match family {
        libc::AF_INET => {
            // SAFETY: the family is AF_INET, so both point at a sockaddr_in (the netmask has
            // the address' family), which is copied out. getifaddrs allocates each with the
            // alignment of its type, but a `*mut sockaddr` does not say so: read_unaligned
            // needs no alignment.
            let (a, m) = unsafe {
                (
                    ifa.ifa_addr.cast::<libc::sockaddr_in>().read_unaligned(),
                    ifa.ifa_netmask.cast::<libc::sockaddr_in>().read_unaligned(),
                )
            };
            (
                IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr))),
                u32::from_be(m.sin_addr.s_addr).count_ones() as u8,
            )
        }
        libc::AF_INET6 => {
            // SAFETY: the family is AF_INET6, so both point at a sockaddr_in6, copied out as
            // above.
            let (a, m) = unsafe {
                (
                    ifa.ifa_addr.cast::<libc::sockaddr_in6>().read_unaligned(),
                    ifa.ifa_netmask
                        .cast::<libc::sockaddr_in6>()
                        .read_unaligned(),
                )
            };
            let prefix = m
                .sin6_addr
                .s6_addr
                .iter()
                .map(|b| b.count_ones())
                .sum::<u32>() as u8;
            (IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr)), prefix)
        }
        _ => return None,
    };
    Some(InterfaceAddress {
        iface,
        addr,
        prefix,
    })
}
