//! Traffic classes: their numbering, the lookup tables the loader fills from the port catalog,
//! and the rule that turns parsed headers into a class. The tables are indexed by port and by
//! IP protocol so a lookup is one array access in the kernel.

use crate::packet::{IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, Seen, Status};

#[cfg(feature = "user")]
mod user;

/// Traffic that matched no catalog entry.
pub const CLASS_OTHER: u8 = 0;
/// Traffic whose headers were truncated or inconsistent.
pub const CLASS_MALFORMED: u8 = 1;
/// The first class number the catalog hands out.
pub const FIRST_CATALOG_CLASS: u8 = 2;
/// Classes a profile may use, `other` and `malformed` included.
pub const MAX_CLASSES: usize = 64;

/// Entries of the port table: one per port number.
pub const PORT_TABLE_LEN: u32 = 65536;
/// Entries of the protocol table: one per IP protocol number.
pub const PROTO_TABLE_LEN: u32 = 256;

/// Class flag: the class carries VXLAN, decode the inner frame.
pub const CLASS_FLAG_VXLAN: u8 = 1;
/// Class flag: traffic between nodes (an overlay, BGP sessions): count it per peer address too
/// (`crate::peers`).
pub const CLASS_FLAG_PEER: u8 = 2;

/// The class of one port number for each transport protocol with ports.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortClasses {
    pub tcp: u8,
    pub udp: u8,
    pub sctp: u8,
    pub _reserved: u8,
}

const _: () = assert!(core::mem::size_of::<PortClasses>() == 4);

impl PortClasses {
    /// The class this port has for `proto`, `CLASS_OTHER` when none.
    #[inline(always)]
    pub fn get(&self, proto: u8) -> u8 {
        match proto {
            IPPROTO_TCP => self.tcp,
            IPPROTO_UDP => self.udp,
            IPPROTO_SCTP => self.sctp,
            _ => CLASS_OTHER,
        }
    }

    /// Sets the class for `proto`; protocols without ports are ignored.
    pub fn set(&mut self, proto: u8, class: u8) {
        match proto {
            IPPROTO_TCP => self.tcp = class,
            IPPROTO_UDP => self.udp = class,
            IPPROTO_SCTP => self.sctp = class,
            _ => {}
        }
    }
}

/// Picks the class of a packet.
///
/// A class bound to the IP protocol (VRRP is protocol 112, not a port) wins. Otherwise the
/// ports decide, and the class belongs to the server side of the flow, so a request to 6443
/// and the reply from 6443 both count as `kube-apiserver`. When both ports carry a class the
/// lower port is taken as the server's: listening ports sit below the ephemeral range, and
/// the choice is the same in both directions.
#[inline(always)]
pub fn classify(
    h: Seen,
    port_class: impl Fn(u16) -> PortClasses,
    proto_class: impl Fn(u8) -> u8,
) -> u8 {
    match h.status {
        Status::Malformed => return CLASS_MALFORMED,
        Status::NotIp => return CLASS_OTHER,
        Status::Ip | Status::Fragment => {}
    }
    let by_proto = proto_class(h.proto);
    if by_proto != CLASS_OTHER || !h.has_ports() {
        return by_proto;
    }
    let to = port_class(h.dport).get(h.proto);
    let from = port_class(h.sport).get(h.proto);
    match (to, from) {
        (CLASS_OTHER, from) => from,
        (to, CLASS_OTHER) => to,
        (to, from) => {
            if h.dport <= h.sport {
                to
            } else {
                from
            }
        }
    }
}
