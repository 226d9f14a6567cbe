//! The monotonic clock the kernel stamps its events with (`bpf_ktime_get_ns`).

/// CLOCK_MONOTONIC now, in nanoseconds.
pub fn monotonic_ns() -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the struct we pass, which outlives the call; the clock id
    // is a constant the kernel always has.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}
