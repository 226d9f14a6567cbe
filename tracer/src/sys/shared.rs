//! A BPF array created with `BPF_F_MMAPABLE`, mapped into this process: the kernel programs
//! and user space then share its memory, and user space reads it without a system call. Seen
//! from here it is a run of 64-bit words that the programs change at any time, so it is read
//! and written only through atomics.

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd},
    ptr::NonNull,
    sync::atomic::AtomicU64,
};

/// The mapping of an array map's values; unmapped when dropped. The map stays alive as long
/// as the mapping does, whatever happens to its descriptor.
pub struct SharedArray {
    ptr: NonNull<AtomicU64>,
    words: usize,
    len: usize,
}

// SAFETY: the mapping is plain shared memory, accessed only through atomics.
unsafe impl Send for SharedArray {}

impl SharedArray {
    /// Maps the values of the array map `fd`, `bytes` long (its entries times their size).
    pub fn map(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<Self> {
        // SAFETY: sysconf has no memory effects.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .ok()
            .filter(|&p| p > 0)
            .unwrap_or(4096);
        let len = bytes.div_ceil(page).max(1) * page;
        // SAFETY: a new shared mapping of a descriptor we borrow; the kernel checks that the map
        // is mmapable and `len` within it. The result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<AtomicU64>()).ok_or_else(io::Error::last_os_error)?;
        Ok(SharedArray {
            ptr,
            words: bytes / 8,
            len,
        })
    }

    /// The mapped values as words.
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: `words` 8-byte words lie within the mapping (page-aligned, so aligned), live
        // as long as `self`; AtomicU64 has u64's layout and every bit pattern is valid.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.words) }
    }
}

impl Drop for SharedArray {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, of that length, not used after this.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
