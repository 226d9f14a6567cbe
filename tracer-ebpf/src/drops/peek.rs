//! Reading a dropped packet where the kernel keeps it, without copying it: the drop probe's
//! BTF tracepoint programs cast the packet's address with the kernel function
//! `bpf_rdonly_cast` (6.2+) to a struct the loader names, and load from it directly; the
//! verifier checks each load against the struct's BTF and the JIT guards it, so a bad address
//! reads 0.

use core::mem::size_of;

use tracer_common::{
    drops::{PEEK_BYTES, PEEK_CALL_INSN},
    packet::Packet,
};

use super::config;

/// `bpf_rdonly_cast(addr, peek_type)`: `addr` as a pointer to the struct the loader named
/// (`DropConfig::peek_type`), which the kernel lets the program load from directly, a fault
/// reading 0. aya cannot relocate calls of kernel functions, so the call is written out as
/// an instruction whose target the loader fills in (`PEEK_CALL_INSN`); the verifier replaces
/// it with a plain move.
#[inline(always)]
fn peek(addr: u64, peek_type: u32) -> u64 {
    let out: u64;
    // SAFETY: the call reads and writes no memory; r1 to r5 are caller-saved.
    unsafe {
        core::arch::asm!(
            ".8byte {call}",
            call = const PEEK_CALL_INSN,
            inlateout("r1") addr => _,
            inlateout("r2") u64::from(peek_type) => _,
            lateout("r0") out,
            lateout("r3") _,
            lateout("r4") _,
            lateout("r5") _,
            options(nostack, nomem, preserves_flags),
        );
    }
    out
}

/// The first bytes of a dropped packet, read where the kernel keeps them: each read is a
/// load through [`peek`], checked by the kernel against the struct's BTF and guarded by the
/// JIT, so nothing is copied.
pub struct KernelPacket {
    base: u64,
    /// At most CAPTURE.
    len: usize,
    /// `DropConfig::peek_type`, read once.
    peek_type: u32,
}

impl KernelPacket {
    #[inline(always)]
    pub fn new(base: u64, len: usize) -> Self {
        KernelPacket {
            base,
            len,
            peek_type: config!(peek_type),
        }
    }
}

impl Packet for KernelPacket {
    #[inline(always)]
    fn load<T: Copy>(&self, off: usize) -> Option<T> {
        if off + size_of::<T>() > self.len {
            return None;
        }
        // Whole words: each load is a guarded one, a few instructions each, so a header is
        // read in as few as it fits in (LLVM would load each field it uses on its own); the
        // bytes past the value are in the packet's buffer or read as 0, and unused.
        const { assert!(size_of::<T>().next_multiple_of(8) <= PEEK_BYTES as usize) };
        let p = peek(self.base + off as u64, self.peek_type) as *const u64;
        let mut words = [0u64; PEEK_BYTES as usize / 8];
        for (i, w) in words
            .iter_mut()
            .enumerate()
            .take(size_of::<T>().div_ceil(8))
        {
            // SAFETY: the kernel guards the load; see `peek`.
            *w = unsafe { core::ptr::read_volatile(p.add(i)) };
        }
        // SAFETY: `words` holds size_of::<T>() bytes at least, any bit pattern a valid T.
        Some(unsafe { words.as_ptr().cast::<T>().read_unaligned() })
    }
}
