//! Per-peer accounting of node-to-node traffic: for classes flagged [`CLASS_FLAG_PEER`]
//! (overlays such as VXLAN and WireGuard, and BGP sessions) the datapath also counts packets
//! and bytes per (interface slot, direction, class, peer address), where the peer is the other
//! end of the outer packet: its destination when it leaves, its source when it arrives. That is
//! what lets two nodes' counters be joined: what one sent to a peer against what the peer saw
//! arrive from it.
//!
//! [`CLASS_FLAG_PEER`]: crate::classes::CLASS_FLAG_PEER

use crate::packet::{L3, Packet};

#[cfg(feature = "user")]
mod user;

/// Entries of the per-peer table: peers times watched interfaces times directions and classes.
/// The table is allocated as it fills, so a large bound costs nothing until it is used.
pub const MAX_PEER_KEYS: u32 = 65536;

/// The key of one per-peer counter.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey {
    /// The interface slot, as in [`crate::counters::IfaceSlot`].
    pub slot: u16,
    /// `DIR_INGRESS` or `DIR_EGRESS`.
    pub dir: u8,
    pub class: u8,
    /// 4 or 6.
    pub family: u8,
    pub _reserved: [u8; 3],
    /// The peer's address; IPv4 in the first four bytes.
    pub addr: [u8; 16],
}

const _: () = assert!(core::mem::size_of::<PeerKey>() == 24);

impl PeerKey {
    /// The first word of the key of these fields (the address words follow), in memory
    /// order: the datapath builds the key a word at a time, never with the bytewise copies
    /// LLVM's BPF backend emits as loops of single bytes.
    #[inline(always)]
    pub const fn head_word(slot: u16, dir: u8, class: u8, family: u8) -> u64 {
        let b = slot.to_ne_bytes();
        u64::from_ne_bytes([b[0], b[1], dir, class, family, 0, 0, 0])
    }
}

/// Entries of the per-peer cache for each CPU (a power of two).
///
/// The hash table above costs a packet a hash of its 24-byte key and a bucket walk, about as
/// much as the rest of its accounting. So each CPU first tries an entry of its own part of a
/// plain array, chosen by a hash of the key (direct-mapped): the packet is added there when
/// the entry holds its key, or claims the entry when it is empty; only a packet whose entry
/// another key holds goes to the hash table. Every packet is counted in exactly one place, so
/// a peer's count is the sum of its cache entries (one per CPU at most) and its table values.
/// User space maps the array into its memory and reads it without a system call.
pub const PEER_CACHE_PER_CPU: u32 = 256;

const _: () = assert!(PEER_CACHE_PER_CPU.is_power_of_two());

/// One entry of the per-peer cache: a key and its count on the entry's CPU. A key whose first
/// word is zero (slot 0, never a watched interface) marks an empty entry; the datapath writes
/// that word last when it claims one, user space clears it last when it empties one.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCacheEntry {
    pub key: PeerKey,
    pub counter: crate::counters::Counter,
}

const _: () = assert!(core::mem::size_of::<PeerCacheEntry>() == 40);
// A CPU's part is a whole number of cache lines, so no two CPUs write one line.
const _: () = assert!(
    (PEER_CACHE_PER_CPU as usize * core::mem::size_of::<PeerCacheEntry>()).is_multiple_of(64)
);

/// The entry of the key whose words are `head`, `lo` and `hi` ([`PeerKey::head_word`] and
/// [`peer_addr`]'s) within a CPU's part of the cache.
#[inline(always)]
pub fn peer_cache_index(head: u64, lo: u64, hi: u64) -> u32 {
    // Fibonacci hashing of the words folded together: the top bits of the product.
    let folded = head ^ lo.rotate_left(21) ^ hi.rotate_left(42);
    (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - PEER_CACHE_PER_CPU.trailing_zeros()))
        as u32
}

/// The peer's address of a packet whose IP header is `at` (parsed without addresses, as the
/// datapath does):
/// the destination of one leaving (`egress`), the source of one arriving, read from the IP
/// header as two native-endian words of [`PeerKey::addr`] (an IPv4 address in the low four
/// bytes of the first). Words, not an array: they stay in registers. `None` when the packet
/// is not IP or its header is cut short.
#[inline(always)]
pub fn peer_addr<P: Packet + ?Sized>(pkt: &P, at: L3, egress: bool) -> Option<(u64, u64)> {
    let off = at.off as usize;
    match at.family {
        4 => {
            let a = pkt.load::<u32>(off + if egress { 16 } else { 12 })?;
            Some((u64::from(a), 0))
        }
        6 => {
            let at = off + if egress { 24 } else { 8 };
            Some((pkt.load::<u64>(at)?, pkt.load::<u64>(at + 8)?))
        }
        _ => None,
    }
}

/// The key's address bytes from [`peer_addr`]'s words.
#[inline(always)]
pub fn addr_bytes(words: (u64, u64)) -> [u8; 16] {
    let mut addr = [0u8; 16];
    addr[..8].copy_from_slice(&words.0.to_ne_bytes());
    addr[8..].copy_from_slice(&words.1.to_ne_bytes());
    addr
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{parse_ethernet, parse_ip};

    struct Bytes<'a>(&'a [u8]);

    impl Packet for Bytes<'_> {
        fn load<T: Copy>(&self, off: usize) -> Option<T> {
            let end = off.checked_add(core::mem::size_of::<T>())?;
            let b = self.0.get(off..end)?;
            // SAFETY: `b` holds exactly size_of::<T>() bytes; T is plain data here.
            Some(unsafe { b.as_ptr().cast::<T>().read_unaligned() })
        }
    }

    #[test]
    fn a_key_built_of_words_is_the_key_of_its_fields() {
        let key = PeerKey {
            slot: 0x0102,
            dir: 1,
            class: 42,
            family: 4,
            _reserved: [0; 3],
            addr: addr_bytes((0x0403_020a, 0)),
        };
        let words = [PeerKey::head_word(0x0102, 1, 42, 4), 0x0403_020a, 0];
        // SAFETY: both are 24 bytes of plain integers.
        let bytes: [u8; 24] = unsafe { core::mem::transmute(words) };
        // SAFETY: as above.
        assert_eq!(bytes, unsafe {
            core::mem::transmute::<PeerKey, [u8; 24]>(key)
        });
    }

    #[test]
    fn the_peer_is_the_far_end() {
        let mut f = [0u8; 14 + 20 + 8];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&28u16.to_be_bytes());
        f[23] = 17;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[34..36].copy_from_slice(&4789u16.to_be_bytes());
        f[36..38].copy_from_slice(&4789u16.to_be_bytes());
        f[38..40].copy_from_slice(&8u16.to_be_bytes());
        let h = parse_ethernet::<_, false>(&Bytes(&f), 0);
        let bytes = |egress| addr_bytes(peer_addr(&Bytes(&f), h.l3(), egress).unwrap());
        assert_eq!(
            bytes(true),
            [10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(bytes(false)[..4], [10, 0, 0, 1]);

        let mut v6 = [0u8; 40 + 8];
        v6[0] = 0x60;
        v6[4..6].copy_from_slice(&8u16.to_be_bytes());
        v6[6] = 17;
        v6[8 + 15] = 1;
        v6[24 + 15] = 2;
        let h = parse_ip::<_, false>(&Bytes(&v6), 0, crate::packet::ETH_P_IPV6);
        assert_eq!(
            addr_bytes(peer_addr(&Bytes(&v6), h.l3(), true).unwrap())[15],
            2
        );
        assert_eq!(
            addr_bytes(peer_addr(&Bytes(&v6), h.l3(), false).unwrap())[15],
            1
        );
        assert!(peer_addr(&Bytes(&v6[..20]), h.l3(), true).is_none());
    }
}
