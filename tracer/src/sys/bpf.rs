//! The bpf() system call, asked only whether it exists: everything else goes through aya.

/// Whether this kernel has the bpf() system call. `BPF_PROG_LOAD` with a null attribute fails
/// with ENOSYS without BPF, and with EFAULT, EINVAL or EPERM with it; nothing is loaded.
pub fn syscall_exists() -> bool {
    const BPF_PROG_LOAD: libc::c_long = 5;
    // SAFETY: a null attribute pointer of size 0 is never dereferenced: the kernel rejects the
    // call before reading it (or does not know the call at all). No memory of ours is touched.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, std::ptr::null::<u8>(), 0) };
    !(ret < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
}
