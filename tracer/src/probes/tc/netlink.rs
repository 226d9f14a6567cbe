//! The few rtnetlink requests tc cleanup needs and aya does not expose: list the filters on a
//! clsact hook with their priority, handle, BPF program name and id; delete one filter; delete
//! the clsact qdisc. One request at a time on a fresh socket, answered before the next.

use std::io;

use crate::sys::netlink::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, Socket, u16_at,
    u32_at,
};

const TCMSG_LEN: usize = 20;
const RTM_DELQDISC: u16 = 37;
const RTM_NEWTFILTER: u16 = 44;
const RTM_DELTFILTER: u16 = 45;
const RTM_GETTFILTER: u16 = 46;
const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
const TCA_BPF_NAME: u16 = 7;
const TCA_BPF_ID: u16 = 11;
const NLA_TYPE_MASK: u16 = 0x3fff;
const ETH_P_ALL: u16 = 0x0003;

/// The clsact qdisc's handle and parent.
const CLSACT_HANDLE: u32 = 0xffff_0000;
const TC_H_CLSACT: u32 = 0xffff_fff1;
/// The parents of filters on clsact's ingress and egress hooks.
pub const PARENT_INGRESS: u32 = 0xffff_fff2;
pub const PARENT_EGRESS: u32 = 0xffff_fff3;

/// One tc filter as the kernel lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub priority: u16,
    pub handle: u32,
    /// The classifier: "bpf" for BPF programs.
    pub kind: String,
    /// The name the loader gave the BPF program's filter (aya: the program's name).
    pub bpf_name: Option<String>,
    /// The id of the BPF program the filter runs.
    pub prog_id: Option<u32>,
}

/// A netlink request: header, tcmsg, no attributes.
fn tc_request(kind: u16, flags: u16, ifindex: u32, parent: u32, handle: u32, info: u32) -> Vec<u8> {
    let len = (NLMSG_HDRLEN + TCMSG_LEN) as u32;
    let mut msg = Vec::with_capacity(len as usize);
    msg.extend_from_slice(&len.to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
    msg.extend_from_slice(&[0u8; 4]); // family AF_UNSPEC, padding
    msg.extend_from_slice(&(ifindex as i32).to_ne_bytes());
    msg.extend_from_slice(&handle.to_ne_bytes());
    msg.extend_from_slice(&parent.to_ne_bytes());
    msg.extend_from_slice(&info.to_ne_bytes());
    msg
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed netlink reply: {what}"),
    )
}

/// Sends `msg` and returns the payloads of the replies until the dump ends or the kernel
/// acknowledges; an error reply becomes its errno.
fn transact(msg: &[u8]) -> io::Result<Vec<(u16, Vec<u8>)>> {
    let sock = Socket::open(libc::NETLINK_ROUTE)?;
    sock.send(msg)?;
    let mut replies = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let mut rest = sock.recv(&mut buf)?;
        while rest.len() >= NLMSG_HDRLEN {
            let len = u32_at(rest, 0).ok_or_else(|| malformed("header"))? as usize;
            let kind = u16_at(rest, 4).ok_or_else(|| malformed("header"))?;
            if len < NLMSG_HDRLEN || len > rest.len() {
                return Err(malformed("message length"));
            }
            let payload = &rest[NLMSG_HDRLEN..len];
            match kind {
                NLMSG_DONE => return Ok(replies),
                NLMSG_ERROR => {
                    let errno = u32_at(payload, 0).ok_or_else(|| malformed("error"))? as i32;
                    return if errno == 0 {
                        Ok(replies)
                    } else {
                        Err(io::Error::from_raw_os_error(-errno))
                    };
                }
                _ => replies.push((kind, payload.to_vec())),
            }
            rest = &rest[len.next_multiple_of(4).min(rest.len())..];
        }
    }
}

/// The attributes in `b`: (type, payload).
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = u16_at(b, 0)? as usize;
        let kind = u16_at(b, 2)? & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            return None;
        }
        let data = &b[4..len];
        b = &b[len.next_multiple_of(4).min(b.len())..];
        Some((kind, data))
    })
}

fn c_string(data: &[u8]) -> String {
    let end = data.iter().position(|&c| c == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

/// Parses one RTM_NEWTFILTER payload; None for the entries without a handle (a priority's
/// classifier itself rather than one of its filters).
fn parse_filter(payload: &[u8]) -> Option<Filter> {
    let handle = u32_at(payload, 8)?;
    let info = u32_at(payload, 16)?;
    if handle == 0 {
        return None;
    }
    let mut filter = Filter {
        priority: (info >> 16) as u16,
        handle,
        ..Filter::default()
    };
    for (kind, data) in attrs(payload.get(TCMSG_LEN..)?) {
        match kind {
            TCA_KIND => filter.kind = c_string(data),
            TCA_OPTIONS => {
                for (kind, data) in attrs(data) {
                    match kind {
                        TCA_BPF_NAME => filter.bpf_name = Some(c_string(data)),
                        TCA_BPF_ID => filter.prog_id = u32_at(data, 0),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Some(filter)
}

/// The filters on clsact hook `parent` ([`PARENT_INGRESS`] or [`PARENT_EGRESS`]) of an
/// interface; none when it has no clsact qdisc.
pub fn filters(ifindex: u32, parent: u32) -> io::Result<Vec<Filter>> {
    let req = tc_request(RTM_GETTFILTER, NLM_F_DUMP, ifindex, parent, 0, 0);
    match transact(&req) {
        Ok(replies) => Ok(replies
            .iter()
            .filter(|(kind, _)| *kind == RTM_NEWTFILTER)
            .filter_map(|(_, p)| parse_filter(p))
            .collect()),
        // No clsact qdisc: nothing attached there.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Deletes the filter at (`priority`, `handle`) of hook `parent`.
pub fn delete_filter(ifindex: u32, parent: u32, priority: u16, handle: u32) -> io::Result<()> {
    let info = (u32::from(priority) << 16) | u32::from(ETH_P_ALL.to_be());
    let req = tc_request(RTM_DELTFILTER, NLM_F_ACK, ifindex, parent, handle, info);
    transact(&req).map(drop)
}

/// Deletes the interface's clsact qdisc, and with it any filter still on it.
pub fn delete_clsact(ifindex: u32) -> io::Result<()> {
    let req = tc_request(
        RTM_DELQDISC,
        NLM_F_ACK,
        ifindex,
        TC_H_CLSACT,
        CLSACT_HANDLE,
        0,
    );
    transact(&req).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(data);
        a.resize(a.len().next_multiple_of(4), 0);
        a
    }

    #[test]
    fn a_bpf_filter_is_read_with_its_name_and_program() {
        let mut options = attr(TCA_BPF_NAME, b"tc_ingress\0");
        options.extend(attr(TCA_BPF_ID, &42u32.to_ne_bytes()));
        let mut payload = tc_request(0, 0, 3, PARENT_INGRESS, 0x7ace, (1 << 16) | 0x0300)
            [NLMSG_HDRLEN..]
            .to_vec();
        payload.extend(attr(TCA_KIND, b"bpf\0"));
        payload.extend(attr(TCA_OPTIONS, &options));
        let f = parse_filter(&payload).unwrap();
        assert_eq!(
            f,
            Filter {
                priority: 1,
                handle: 0x7ace,
                kind: "bpf".into(),
                bpf_name: Some("tc_ingress".into()),
                prog_id: Some(42),
            }
        );
        // The entry of the priority itself (handle 0) is no filter.
        let head = tc_request(0, 0, 3, PARENT_INGRESS, 0, 1 << 16)[NLMSG_HDRLEN..].to_vec();
        assert_eq!(parse_filter(&head), None);
    }
}
