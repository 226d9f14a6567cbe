//! [`Packet`] implementations over the two kinds of packet memory: an XDP frame and a socket
//! buffer. Both check bounds against the packet end before every read, the pattern the
//! verifier accepts for direct packet access.

use core::mem::size_of;

use aya_ebpf::{
    helpers::generated::bpf_skb_load_bytes,
    programs::{TcContext, XdpContext},
};
use tracer_common::{
    drops::{CAPTURE, CAPTURE_SLACK},
    packet::Packet,
};

use crate::maps::{PAGED, PAGED_BYTES};

/// The linear data of an XDP frame.
pub struct XdpPacket {
    data: usize,
    end: usize,
}

impl XdpPacket {
    #[inline(always)]
    pub fn new(ctx: &XdpContext) -> Self {
        XdpPacket {
            data: ctx.data(),
            end: ctx.data_end(),
        }
    }

    /// The frame length, from fresh volatile loads of the context. Were it computed as
    /// `end - data` from the fields above, LLVM would rewrite the bounds checks of `load` as
    /// comparisons against that scalar, which the verifier cannot follow.
    #[inline(always)]
    pub fn len(ctx: &XdpContext) -> usize {
        // SAFETY: ctx.ctx points at the xdp_md the kernel passed in.
        unsafe {
            let md = ctx.ctx;
            let end = core::ptr::read_volatile(&(*md).data_end);
            let data = core::ptr::read_volatile(&(*md).data);
            end.wrapping_sub(data) as usize
        }
    }
}

impl Packet for XdpPacket {
    #[inline(always)]
    fn load<T: Copy>(&self, off: usize) -> Option<T> {
        const {
            assert!(
                size_of::<T>() >= 2,
                "one-byte loads defeat the verifier's range tracking"
            )
        };
        let start = self.data + off;
        if start + size_of::<T>() > self.end {
            return None;
        }
        // SAFETY: the verifier-checked range [start, start + size_of::<T>()) is packet data.
        Some(unsafe { (start as *const T).read_unaligned() })
    }
}

/// A socket buffer: reads from its linear part directly, and through
/// `bpf_skb_load_bytes` when a header lies in paged data (large GSO packets on egress).
pub struct SkbPacket<'a> {
    ctx: &'a TcContext,
    data: usize,
    end: usize,
    /// Part of the packet lies in paged data, beyond `end`.
    paged: bool,
}

impl<'a> SkbPacket<'a> {
    #[inline(always)]
    pub fn new(ctx: &'a TcContext) -> Self {
        let (data, end) = (ctx.data(), ctx.data_end());
        SkbPacket {
            ctx,
            data,
            end,
            paged: data + ctx.len() as usize > end,
        }
    }
}

impl Packet for SkbPacket<'_> {
    #[inline(always)]
    fn load<T: Copy>(&self, off: usize) -> Option<T> {
        const {
            assert!(
                size_of::<T>() >= 2,
                "one-byte loads defeat the verifier's range tracking"
            )
        };
        let start = self.data + off;
        if start + size_of::<T>() <= self.end {
            // SAFETY: as for XdpPacket, the range was checked against data_end.
            return Some(unsafe { (start as *const T).read_unaligned() });
        }
        // A linear packet has nothing more to give: the header is truncated, and a helper call
        // would only fail more slowly.
        if !self.paged {
            return None;
        }
        // Copied into map memory, not the stack: the parser reads fields at any alignment,
        // which the verifier allows everywhere but on the stack.
        const { assert!(size_of::<T>() <= PAGED_BYTES) };
        let buf = PAGED.get_ptr_mut(0)?;
        // SAFETY: the helper writes size_of::<T>() bytes into this CPU's buffer, which holds
        // PAGED_BYTES; it is read back only when the helper succeeded.
        unsafe {
            let ret = bpf_skb_load_bytes(
                self.ctx.skb.skb.cast(),
                off as u32,
                buf.cast(),
                size_of::<T>() as u32,
            );
            (ret == 0).then(|| buf.cast::<T>().read_unaligned())
        }
    }
}

/// The first bytes of a dropped packet, copied into map memory.
pub struct CopiedPacket<'a> {
    data: &'a [u8; CAPTURE + CAPTURE_SLACK],
    /// At most CAPTURE.
    len: usize,
}

impl<'a> CopiedPacket<'a> {
    #[inline(always)]
    pub fn new(data: &'a [u8; CAPTURE + CAPTURE_SLACK], len: usize) -> Self {
        CopiedPacket { data, len }
    }
}

impl Packet for CopiedPacket<'_> {
    #[inline(always)]
    fn load<T: Copy>(&self, off: usize) -> Option<T> {
        const { assert!(size_of::<T>() <= CAPTURE_SLACK) };
        if off + size_of::<T>() > self.len {
            return None;
        }
        // With len <= CAPTURE the mask changes nothing, but it sits on the very register the
        // address is computed from, which is what the verifier needs to see the bound.
        let off = off & (CAPTURE - 1);
        // SAFETY: off < CAPTURE and size_of::<T>() <= CAPTURE_SLACK.
        Some(unsafe { (self.data.as_ptr().add(off) as *const T).read_unaligned() })
    }
}
