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
fn peek(addr: u64) -> u64 {
    let out: u64;
    // SAFETY: the call reads and writes no memory; r1 to r5 are caller-saved.
    unsafe {
        core::arch::asm!(
            ".8byte {call}",
            call = const PEEK_CALL_INSN,
            inlateout("r1") addr => _,
            inlateout("r2") u64::from(config!(peek_type)) => _,
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
}

impl KernelPacket {
    #[inline(always)]
    pub fn new(base: u64, len: usize) -> Self {
        KernelPacket { base, len }
    }
}

impl Packet for KernelPacket {
    #[inline(always)]
    fn load<T: Copy>(&self, off: usize) -> Option<T> {
        const { assert!(size_of::<T>() <= PEEK_BYTES as usize) };
        if off + size_of::<T>() > self.len {
            return None;
        }
        let p = peek(self.base + off as u64) as *const T;
        // SAFETY: the kernel guards the load; see `peek`.
        Some(unsafe { p.read_unaligned() })
    }
}
