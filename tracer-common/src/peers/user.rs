//! User-space side of the per-peer key: lets aya read it from the map, and names its address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::PeerKey;

// SAFETY: repr(C) plain integers and byte arrays without padding (the size assertion checks
// it); every bit pattern is a valid value.
unsafe impl aya::Pod for PeerKey {}

impl PeerKey {
    /// The peer's address; `None` for a key of a family other than IPv4 and IPv6.
    pub fn peer(&self) -> Option<IpAddr> {
        let b = self.addr;
        match self.family {
            4 => Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]).into()),
            6 => Some(Ipv6Addr::from(b).into()),
            _ => None,
        }
    }

    /// The key whose memory is these three words (the head word, then the address), as the
    /// datapath writes it into the per-peer cache.
    pub fn from_words(words: [u64; 3]) -> PeerKey {
        // SAFETY: both are 24 bytes (asserted beside PeerKey) of plain integers without
        // padding, and every bit pattern is a PeerKey.
        unsafe { core::mem::transmute::<[u64; 3], PeerKey>(words) }
    }
}
