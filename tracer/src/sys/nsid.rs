//! The id this network namespace gives another one, asked of the kernel over rtnetlink
//! (`RTM_GETNSID` with the other namespace's descriptor in `NETNSA_FD`): the number a veth's
//! `IFLA_LINK_NETNSID` names its peer's namespace by. Opening a namespace file (such as a pod
//! sandbox's `/run/netns/cni-...`) and asking for its id tells which namespace a veth leads to.

use std::{fs::File, io, os::fd::AsRawFd, path::Path};

use super::netlink::{NLM_F_REQUEST, NLMSG_ERROR, NLMSG_HDRLEN, Socket, u16_at, u32_at};

const RTM_NEWNSID: u16 = 88;
const RTM_GETNSID: u16 = 90;
/// `struct rtgenmsg`, padded to four bytes.
const RTGENMSG_LEN: usize = 4;
const NETNSA_NSID: u16 = 1;
const NETNSA_FD: u16 = 3;

/// The id the calling thread's namespace gives the namespace at `path`; `None` when it has
/// given it none (no link of ours leads there).
pub fn id_of(path: &Path) -> io::Result<Option<i32>> {
    let ns = File::open(path)?;
    let fd = ns.as_raw_fd();
    let sock = Socket::open(libc::NETLINK_ROUTE)?;
    sock.send(&request(fd.cast_unsigned()))?;
    let mut buf = [0u8; 1024];
    decode(sock.recv(&mut buf)?)
}

/// The `RTM_GETNSID` request for the namespace open as `fd`.
fn request(fd: u32) -> Vec<u8> {
    let len = NLMSG_HDRLEN + RTGENMSG_LEN + 8;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&RTM_GETNSID.to_ne_bytes());
    m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    m.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel's
    m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    m.extend_from_slice(&8u16.to_ne_bytes());
    m.extend_from_slice(&NETNSA_FD.to_ne_bytes());
    m.extend_from_slice(&fd.to_ne_bytes());
    m
}

/// The kernel's answer: the id (`-1`: none assigned), or the error it returned.
fn decode(b: &[u8]) -> io::Result<Option<i32>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "short RTM_GETNSID answer");
    let len = u32_at(b, 0).ok_or_else(bad)? as usize;
    let body = b.get(NLMSG_HDRLEN..len).ok_or_else(bad)?;
    match u16_at(b, 4).ok_or_else(bad)? {
        NLMSG_ERROR => {
            let errno = u32_at(body, 0).ok_or_else(bad)?.cast_signed();
            Err(io::Error::from_raw_os_error(-errno))
        }
        RTM_NEWNSID => {
            let mut attrs = body.get(RTGENMSG_LEN..).ok_or_else(bad)?;
            while attrs.len() >= 4 {
                let alen = usize::from(u16_at(attrs, 0).ok_or_else(bad)?);
                if alen < 4 || alen > attrs.len() {
                    break;
                }
                if u16_at(attrs, 2) == Some(NETNSA_NSID) {
                    let id = u32_at(attrs, 4).ok_or_else(bad)?.cast_signed();
                    return Ok((id >= 0).then_some(id));
                }
                attrs = &attrs[alen.next_multiple_of(4).min(attrs.len())..];
            }
            Ok(None)
        }
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected netlink message {other} for RTM_GETNSID"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn ids_none_and_errors() {
        let mut body = vec![0u8; RTGENMSG_LEN];
        body.extend_from_slice(&8u16.to_ne_bytes());
        body.extend_from_slice(&NETNSA_NSID.to_ne_bytes());
        body.extend_from_slice(&3i32.to_ne_bytes());
        assert_eq!(decode(&answer(RTM_NEWNSID, &body)).unwrap(), Some(3));
        body.truncate(RTGENMSG_LEN + 4);
        body.extend_from_slice(&(-1i32).to_ne_bytes());
        assert_eq!(decode(&answer(RTM_NEWNSID, &body)).unwrap(), None);
        let err = decode(&answer(NLMSG_ERROR, &(-libc::EINVAL).to_ne_bytes())).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        for cut in 0..body.len() {
            let _ = decode(&answer(RTM_NEWNSID, &body)[..cut]);
        }
    }

    #[test]
    fn own_namespace_answers() {
        // Our own namespace: the kernel answers (with an id or none), it does not fail.
        id_of(Path::new("/proc/self/ns/net")).unwrap();
    }
}
