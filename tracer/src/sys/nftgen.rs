//! The generation of this network namespace's nftables ruleset: a number the kernel raises
//! with every committed change (by `nft`, firewalld's nftables backend, iptables-nft,
//! kube-proxy, Calico...), asked with one `NFT_MSG_GETGEN` request on a netfilter netlink
//! socket. Asking once an interval notices every change with no child process to keep alive
//! (or to leak when the tracer is killed) and no `nft` binary on the node.

use std::io;

use super::netlink::{NLM_F_REQUEST, NLMSG_ERROR, NLMSG_HDRLEN, Socket, u16_at, u32_at};

/// `NFNL_SUBSYS_NFTABLES`, in the high byte of a netfilter message's type.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_GETGEN: u16 = 16;
const NFT_MSG_NEWGEN: u16 = 15;
/// The generation id attribute of an `NFT_MSG_NEWGEN` answer (a big-endian u32).
const NFTA_GEN_ID: u16 = 1;
/// `struct nfgenmsg`: family, version, resource id.
const NFGENMSG_LEN: usize = 4;

/// A netfilter netlink socket of the calling thread's namespace, for generation requests.
pub struct Generation {
    socket: Socket,
    seq: u32,
}

impl Generation {
    /// Opens the socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Generation> {
        Ok(Generation {
            socket: Socket::open(libc::NETLINK_NETFILTER)?,
            seq: 0,
        })
    }

    /// The ruleset's generation now.
    pub fn get(&mut self) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        self.socket.send(&request(self.seq))?;
        let mut buf = [0u8; 512];
        loop {
            match answer(self.socket.recv(&mut buf)?, self.seq) {
                Answer::Generation(g) => return Ok(g),
                Answer::Error(e) => return Err(io::Error::from_raw_os_error(e)),
                // An answer to an earlier request that timed out on our side: skip it.
                Answer::Other => {}
                Answer::Malformed => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "malformed answer to NFT_MSG_GETGEN",
                    ));
                }
            }
        }
    }
}

/// An `NFT_MSG_GETGEN` request numbered `seq`.
fn request(seq: u32) -> Vec<u8> {
    let len = NLMSG_HDRLEN + NFGENMSG_LEN;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&(NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN).to_ne_bytes());
    m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // AF_UNSPEC, NFNETLINK_V0, resource id 0.
    m.extend_from_slice(&[0u8; NFGENMSG_LEN]);
    m
}

#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Generation(u32),
    /// The kernel refused the request with this errno.
    Error(i32),
    /// A message for another request.
    Other,
    Malformed,
}

/// Reads the first message of a datagram as the answer to request `seq`.
fn answer(b: &[u8], seq: u32) -> Answer {
    let (Some(len), Some(kind), Some(got_seq)) = (u32_at(b, 0), u16_at(b, 4), u32_at(b, 8)) else {
        return Answer::Malformed;
    };
    let len = len as usize;
    if len < NLMSG_HDRLEN || len > b.len() {
        return Answer::Malformed;
    }
    if got_seq != seq {
        return Answer::Other;
    }
    let body = &b[NLMSG_HDRLEN..len];
    if kind == NLMSG_ERROR {
        return match body.get(..4) {
            Some(e) => Answer::Error(-i32::from_ne_bytes(e.try_into().unwrap_or_default())),
            None => Answer::Malformed,
        };
    }
    if kind != NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWGEN {
        return Answer::Other;
    }
    let mut attrs = body.get(NFGENMSG_LEN..).unwrap_or_default();
    while let (Some(alen), Some(akind)) = (u16_at(attrs, 0), u16_at(attrs, 2)) {
        let alen = usize::from(alen);
        if alen < 4 || alen > attrs.len() {
            break;
        }
        // The type's top bits are flags (nested, byte order).
        if akind & 0x3fff == NFTA_GEN_ID && alen >= 8 {
            return Answer::Generation(u32::from_be_bytes(
                attrs[4..8].try_into().unwrap_or_default(),
            ));
        }
        attrs = &attrs[alen.next_multiple_of(4).min(attrs.len())..];
    }
    Answer::Malformed
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn message(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn answers_are_read_by_their_request_number() {
        let newgen = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWGEN;
        // nfgenmsg, then a process id attribute before the generation id.
        let mut body = vec![0, 0, 0, 0];
        body.extend_from_slice(&[8, 0, 2, 0, 0, 0, 0, 7]);
        body.extend_from_slice(&[8, 0, 1, 0, 0, 0, 1, 2]);
        assert_eq!(
            answer(&message(newgen, 5, &body), 5),
            Answer::Generation(258)
        );
        assert_eq!(answer(&message(newgen, 4, &body), 5), Answer::Other);
        let refused = (-libc::EPERM).to_ne_bytes();
        assert_eq!(
            answer(&message(NLMSG_ERROR, 5, &refused), 5),
            Answer::Error(libc::EPERM)
        );
        assert_eq!(
            answer(&message(newgen, 5, &body)[..12], 5),
            Answer::Malformed
        );
        assert_eq!(answer(&message(newgen, 5, &[0; 4]), 5), Answer::Malformed);
    }

    /// Real nftables in a namespace of the test's own: the generation moves with a committed
    /// change and only then.
    #[test]
    fn the_generation_moves_with_each_change_to_the_ruleset() {
        let run = || -> io::Result<(u32, u32, u32)> {
            // SAFETY: unshare affects only this thread, which the test owns and ends.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            let mut g = Generation::open()?;
            let before = g.get()?;
            let again = g.get()?;
            let ok = Command::new("nft")
                .args(["add", "table", "inet", "tracer_gen_test"])
                .status()?
                .success();
            assert!(ok, "nft add table failed");
            Ok((before, again, g.get()?))
        };
        let (before, again, after) = std::thread::spawn(run).join().unwrap().unwrap();
        assert_eq!(before, again, "no change, same generation");
        assert_ne!(before, after, "a new table is a new generation");
    }
}
