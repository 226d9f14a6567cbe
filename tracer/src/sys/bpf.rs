//! The bpf() system call where aya has no call for it: whether it exists at all, and taking
//! an entry out of a hash map with its value in one step. Everything else goes through aya.

use std::os::fd::{AsRawFd, BorrowedFd};

/// Whether this kernel has the bpf() system call. `BPF_PROG_LOAD` with a null attribute fails
/// with ENOSYS without BPF, and with EFAULT, EINVAL or EPERM with it; nothing is loaded.
pub fn syscall_exists() -> bool {
    const BPF_PROG_LOAD: libc::c_long = 5;
    // SAFETY: a null attribute pointer of size 0 is never dereferenced: the kernel rejects the
    // call before reading it (or does not know the call at all). No memory of ours is touched.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, std::ptr::null::<u8>(), 0) };
    !(ret < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
}

/// `BPF_MAP_LOOKUP_AND_DELETE_ELEM` on a hash map: copies the value of `key` into `value` (for
/// a per-CPU map, one value per possible CPU, each rounded up to 8 bytes) and deletes the
/// entry, as one step, so that nothing written to it meanwhile is lost. `Ok(false)` when there
/// is no such entry. Hash maps support it from 5.14 ([`unsupported`] tells the error before).
pub fn lookup_and_delete(
    map: BorrowedFd<'_>,
    key: &[u8],
    value: &mut [u8],
) -> std::io::Result<bool> {
    const BPF_MAP_LOOKUP_AND_DELETE_ELEM: libc::c_long = 21;
    // The map-element layout of `union bpf_attr`.
    #[repr(C)]
    struct Attr {
        map_fd: u32,
        _pad: u32,
        key: u64,
        value: u64,
        flags: u64,
    }
    let attr = Attr {
        map_fd: map.as_raw_fd() as u32,
        _pad: 0,
        key: key.as_ptr() as u64,
        value: value.as_mut_ptr() as u64,
        flags: 0,
    };
    // SAFETY: `attr` is a valid attribute of the size passed; the kernel reads the map's key
    // size from `key` and writes the map's value size (the caller sizes `value` for the map)
    // into `value`, both of which live for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_LOOKUP_AND_DELETE_ELEM,
            &raw const attr,
            size_of::<Attr>(),
        )
    };
    if ret == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ENOENT) {
        return Ok(false);
    }
    Err(err)
}

/// Whether `err` says the kernel has no such operation for the map (ENOTSUPP, 524, or
/// EINVAL from kernels that know the command only for queues and stacks).
pub fn unsupported(err: &std::io::Error) -> bool {
    const ENOTSUPP: i32 = 524;
    matches!(
        err.raw_os_error(),
        Some(ENOTSUPP | libc::EOPNOTSUPP | libc::EINVAL)
    )
}
