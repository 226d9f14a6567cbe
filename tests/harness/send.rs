//! Sending exact frames out of an interface of a namespace with an AF_PACKET socket. Frames
//! go out in small paced batches so the receiver's backlog queue never overflows: every frame
//! sent reaches the traced interface.

use std::{ffi::CString, mem, time::Duration};

use bytes::Bytes;

use super::NetNs;

const BATCH: usize = 50;

pub fn send_frames(ns: &NetNs, iface: &str, frames: &[Bytes]) {
    ns.enter(|| {
        let name = CString::new(iface).unwrap();
        // SAFETY: plain libc calls on a socket we own and close.
        unsafe {
            let ifindex = libc::if_nametoindex(name.as_ptr());
            assert_ne!(ifindex, 0, "no interface {iface} in {}", ns.name);
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(
                fd >= 0,
                "AF_PACKET socket: {}",
                std::io::Error::last_os_error()
            );
            let mut addr: libc::sockaddr_ll = mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_ifindex = ifindex as i32;
            addr.sll_halen = 6;
            for (i, frame) in frames.iter().enumerate() {
                let sent = libc::sendto(
                    fd,
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&addr as *const libc::sockaddr_ll).cast(),
                    mem::size_of::<libc::sockaddr_ll>() as u32,
                );
                assert_eq!(
                    sent,
                    frame.len() as isize,
                    "sendto frame {i}: {}",
                    std::io::Error::last_os_error()
                );
                if (i + 1) % BATCH == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            libc::close(fd);
        }
    });
}
