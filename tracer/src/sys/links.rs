//! Following the namespace's interfaces as they come and go: an rtnetlink socket subscribed
//! to the link group (`RTMGRP_LINK`), whose `RTM_NEWLINK` and `RTM_DELLINK` notifications are
//! decoded into [`LinkEvent`]s. The kernel pushes them; nothing is polled. [`dump`] lists the
//! interfaces there are, decoded the same way.

use std::{
    io,
    os::fd::{AsFd, AsRawFd, RawFd},
};

use super::{
    netlink::{
        NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, Socket, u16_at, u32_at,
    },
    sockets::set_receive_buffer,
};

const RTMGRP_LINK: u32 = 1;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const IFINFOMSG_LEN: usize = 16;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINK: u16 = 5;
const IFLA_LINK_NETNSID: u16 = 37;
const NLA_TYPE_MASK: u16 = 0x3fff;
/// The receive buffer asked for: room for a few thousand notifications.
const BUFFER_BYTES: i32 = 1 << 20;

/// What happened to an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkChange {
    /// Created, or changed (renamed, up, down).
    New,
    Removed,
}

/// One notification about an interface of this namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkEvent {
    pub change: LinkChange,
    pub index: u32,
    pub name: String,
    /// For a veth: the index of its peer, in the namespace `peer_netns` names.
    pub peer_index: Option<u32>,
    /// The id this namespace gives the peer's namespace (`IFLA_LINK_NETNSID`); `None` when
    /// the peer is in this namespace.
    pub peer_netns: Option<i32>,
}

/// The subscribed socket; non-blocking, for a reader that waits for it to become readable.
pub struct LinkEvents {
    socket: Socket,
}

impl AsRawFd for LinkEvents {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl LinkEvents {
    /// Subscribes to the link notifications of the calling thread's network namespace.
    pub fn open() -> io::Result<LinkEvents> {
        let events = LinkEvents {
            socket: Socket::subscribed(libc::NETLINK_ROUTE, RTMGRP_LINK)?,
        };
        events.grow_buffer(BUFFER_BYTES);
        Ok(events)
    }

    /// The notifications waiting, in order; empty when none is (the socket would block).
    ///
    /// When the socket's buffer filled up, the kernel drops notifications, reports ENOBUFS
    /// once, and keeps dropping every new one until the queue is read empty. So a loss is
    /// answered here by emptying the socket first: from [`Notifications::Lost`] on, every
    /// change is notified again, and a listing the caller makes then misses none.
    pub fn read(&self) -> io::Result<Notifications> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut lost = false;
        loop {
            match self.socket.recv(&mut buf) {
                Ok(got) if !lost => out.extend(decode(got)),
                Ok(_) => {}
                Err(e) => match (e.kind(), e.raw_os_error()) {
                    (io::ErrorKind::WouldBlock, _) if lost => return Ok(Notifications::Lost),
                    (io::ErrorKind::WouldBlock, _) => return Ok(Notifications::Events(out)),
                    (_, Some(libc::ENOBUFS)) => lost = true,
                    (io::ErrorKind::Interrupted, _) => {}
                    _ => return Err(e),
                },
            }
        }
    }

    /// Asks for a receive buffer of `bytes`: beyond `net.core.rmem_max` with CAP_NET_ADMIN,
    /// else up to it. A burst of interfaces (a node starting its pods) then fits without a
    /// loss; one that does not is still made up for.
    fn grow_buffer(&self, bytes: i32) {
        let fd = self.socket.as_fd();
        if set_receive_buffer(fd, bytes, true).is_err() {
            let _ = set_receive_buffer(fd, bytes, false);
        }
    }
}

/// What one [`LinkEvents::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Notifications {
    /// The notifications that were waiting, in order; empty when none was.
    Events(Vec<LinkEvent>),
    /// Some were lost to a full socket buffer. The socket has been emptied since, so changes
    /// are notified again from now on; what happened before must be listed ([`dump`]).
    Lost,
}

/// Every interface of the calling thread's namespace, as `RTM_NEWLINK` messages of a dump
/// (`RTM_GETLINK` with `NLM_F_DUMP`): with each veth's peer index and namespace id, which the
/// interface list of [`super::netdev`] does not have.
pub fn dump() -> io::Result<Vec<LinkEvent>> {
    let sock = Socket::open(libc::NETLINK_ROUTE)?;
    let len = NLMSG_HDRLEN + IFINFOMSG_LEN;
    let mut request = Vec::with_capacity(len);
    request.extend_from_slice(&(len as u32).to_ne_bytes());
    request.extend_from_slice(&RTM_GETLINK.to_ne_bytes());
    request.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    request.extend_from_slice(&[0u8; 8]);
    request.extend_from_slice(&[0u8; IFINFOMSG_LEN]);
    sock.send(&request)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let got = sock.recv(&mut buf)?;
        out.extend(decode(got));
        if got.is_empty() || ends_dump(got) {
            return Ok(out);
        }
    }
}

/// Whether a datagram holds the dump's last message (`NLMSG_DONE`) or an error.
fn ends_dump(mut b: &[u8]) -> bool {
    while let (Some(len), Some(kind)) = (u32_at(b, 0), u16_at(b, 4)) {
        if kind == NLMSG_DONE || kind == NLMSG_ERROR {
            return true;
        }
        let len = len as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            return true;
        }
        b = &b[len.next_multiple_of(4).min(b.len())..];
    }
    false
}

/// The link notifications in one datagram; anything else, or cut short, is skipped.
pub fn decode(mut b: &[u8]) -> Vec<LinkEvent> {
    let mut out = Vec::new();
    while b.len() >= NLMSG_HDRLEN {
        let Some(len) = u32_at(b, 0).map(|l| l as usize) else {
            break;
        };
        if len < NLMSG_HDRLEN || len > b.len() {
            break;
        }
        let kind = u16_at(b, 4).unwrap_or(0);
        let change = match kind {
            RTM_NEWLINK => Some(LinkChange::New),
            RTM_DELLINK => Some(LinkChange::Removed),
            _ => None,
        };
        if let Some(e) = change.and_then(|c| link(c, &b[NLMSG_HDRLEN..len])) {
            out.push(e);
        }
        b = &b[len.next_multiple_of(4).min(b.len())..];
    }
    out
}

/// An ifinfomsg and its attributes.
fn link(change: LinkChange, b: &[u8]) -> Option<LinkEvent> {
    let index = u32_at(b, 4)?;
    let mut e = LinkEvent {
        change,
        index,
        name: String::new(),
        peer_index: None,
        peer_netns: None,
    };
    let mut attrs = b.get(IFINFOMSG_LEN..)?;
    while attrs.len() >= 4 {
        let len = usize::from(u16_at(attrs, 0)?);
        if len < 4 || len > attrs.len() {
            break;
        }
        let value = &attrs[4..len];
        match u16_at(attrs, 2)? & NLA_TYPE_MASK {
            IFLA_IFNAME => {
                let end = value.iter().position(|c| *c == 0).unwrap_or(value.len());
                e.name = String::from_utf8_lossy(&value[..end]).into_owned();
            }
            IFLA_LINK => e.peer_index = u32_at(value, 0),
            IFLA_LINK_NETNSID => e.peer_netns = u32_at(value, 0).map(|v| v as i32),
            _ => {}
        }
        attrs = &attrs[len.next_multiple_of(4).min(attrs.len())..];
    }
    (!e.name.is_empty()).then_some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(value);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn message(kind: u16, index: u32, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut body = vec![0u8; IFINFOMSG_LEN];
        body[4..8].copy_from_slice(&index.to_ne_bytes());
        for a in attrs {
            body.extend_from_slice(a);
        }
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn new_and_removed_links_with_their_peer() {
        let mut datagram = message(
            RTM_NEWLINK,
            7,
            &[
                attr(IFLA_IFNAME, b"veth12\0"),
                attr(IFLA_LINK, &3u32.to_ne_bytes()),
                attr(IFLA_LINK_NETNSID, &2i32.to_ne_bytes()),
            ],
        );
        datagram.extend(message(RTM_DELLINK, 8, &[attr(IFLA_IFNAME, b"cali1\0")]));
        // Not a link message: skipped.
        datagram.extend(message(20, 9, &[attr(IFLA_IFNAME, b"x\0")]));
        let events = decode(&datagram);
        assert_eq!(
            events,
            vec![
                LinkEvent {
                    change: LinkChange::New,
                    index: 7,
                    name: "veth12".into(),
                    peer_index: Some(3),
                    peer_netns: Some(2),
                },
                LinkEvent {
                    change: LinkChange::Removed,
                    index: 8,
                    name: "cali1".into(),
                    peer_index: None,
                    peer_netns: None,
                },
            ]
        );
        // Cut short anywhere: no panic, only whole messages.
        for cut in 0..datagram.len() {
            let _ = decode(&datagram[..cut]);
        }
    }
}
