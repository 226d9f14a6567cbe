//! Socket options the tracer and its benchmark set: the receive buffer of a socket that must
//! not lose what arrives in a burst.

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd},
};

/// Asks for a receive buffer of `bytes` (the kernel doubles it for its bookkeeping). With
/// `force` (SO_RCVBUFFORCE, needs CAP_NET_ADMIN) it may exceed `net.core.rmem_max`; without
/// (SO_RCVBUF) the kernel caps it there.
pub fn set_receive_buffer(fd: BorrowedFd<'_>, bytes: i32, force: bool) -> io::Result<()> {
    let option = if force {
        libc::SO_RCVBUFFORCE
    } else {
        libc::SO_RCVBUF
    };
    // SAFETY: sets an integer option of a socket the caller holds open, from a value that
    // lives through the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&raw const bytes).cast(),
            std::mem::size_of::<i32>() as u32,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
