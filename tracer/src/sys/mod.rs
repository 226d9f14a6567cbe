//! The system calls of the model, behind safe functions (as aya keeps its own in `aya/src/sys/`):
//! the interfaces of the current network namespace ([`netdev`]: `if_nameindex` and the
//! `SIOCGIF*`/`SIOCETHTOOL` ioctls) and their addresses ([`ifaddrs`]: `getifaddrs`). Every
//! `unsafe` block here says, in a `SAFETY:` comment, why it is sound; nothing outside this module
//! in the model, the findings or the outputs calls libc directly. The kernel probes
//! (`probes/`) keep their own aya and perf calls.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod ifaddrs;
pub mod netdev;
