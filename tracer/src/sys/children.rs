//! Child processes that end with the tracer. A tracer killed with SIGKILL runs no destructor,
//! so a listener it started (`dbus-monitor`) would live on, reparented, holding its network
//! namespace; the kernel's parent-death signal ends it instead. The signal follows the
//! *thread* that started the child, so only a thread that lives as long as the tracer (the
//! main thread, which runs the session's single-threaded runtime) may start such a child.

use std::io;

/// Makes the child `cmd` starts get SIGKILL when the calling thread ends.
pub fn end_with_this_thread(cmd: &mut tokio::process::Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and makes only
    // async-signal-safe calls (prctl, getppid); it allocates nothing but the error.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before the signal was asked for.
            if libc::getppid().cast_unsigned() != parent {
                return Err(io::Error::other("the tracer ended while starting it"));
            }
            Ok(())
        });
    }
}
