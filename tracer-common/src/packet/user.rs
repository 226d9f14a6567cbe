//! User-space conversions of parsed headers to `std` types.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Headers;

impl Headers {
    /// Source and destination address, when the packet was IP and addresses were parsed.
    pub fn addrs(&self) -> Option<(IpAddr, IpAddr)> {
        match self.family {
            4 => Some((ipv4(&self.src).into(), ipv4(&self.dst).into())),
            6 => Some((
                Ipv6Addr::from(self.src).into(),
                Ipv6Addr::from(self.dst).into(),
            )),
            _ => None,
        }
    }
}

fn ipv4(b: &[u8; 16]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}
