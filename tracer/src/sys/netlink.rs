//! What every netlink request here shares: the header's constants, a socket of one netlink
//! family for one request at a time and its answer, and reading the native-endian integers
//! of headers and attributes out of a datagram without trusting its lengths.

use std::{
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd},
};

pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLM_F_REQUEST: u16 = 1;
pub const NLM_F_ACK: u16 = 4;
pub const NLM_F_DUMP: u16 = 0x300;

/// A netlink socket of `protocol` (`NETLINK_ROUTE`, `NETLINK_NETFILTER`...) in the calling
/// thread's network namespace: blocking and in no group ([`Socket::open`]), or subscribed.
pub struct Socket(OwnedFd);

impl Socket {
    pub fn open(protocol: i32) -> io::Result<Socket> {
        Socket::with_flags(protocol, 0)
    }

    /// A non-blocking socket of `protocol` joined to the multicast `groups` (a bit mask), for
    /// a reader that waits for it to become readable.
    pub fn subscribed(protocol: i32, groups: u32) -> io::Result<Socket> {
        let socket = Socket::with_flags(protocol, libc::SOCK_NONBLOCK)?;
        // SAFETY: an all-zero sockaddr_nl is valid; the fields are then set.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        addr.nl_groups = groups;
        // SAFETY: binds our socket to an address that lives through the call.
        let rc = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                (&raw const addr).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(socket)
    }

    fn with_flags(protocol: i32, flags: i32) -> io::Result<Socket> {
        // SAFETY: plain socket call; the descriptor is owned right away.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | flags,
                protocol,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nothing else owns.
        Ok(Socket(unsafe { OwnedFd::from_raw_fd(raw) }))
    }

    /// Sends one request to the kernel.
    pub fn send(&self, msg: &[u8]) -> io::Result<()> {
        // SAFETY: sends a buffer we own, of its own length.
        if unsafe { libc::send(self.0.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receives one datagram into `buf`; what it filled.
    pub fn recv<'a>(&self, buf: &'a mut [u8]) -> io::Result<&'a [u8]> {
        // SAFETY: receives into a buffer we own, at most its length.
        let n = unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(&buf[..n.cast_unsigned()])
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// The native-endian u16 at `at`, if `b` holds it.
pub fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// The native-endian u32 at `at`, if `b` holds it.
pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
