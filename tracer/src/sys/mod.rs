//! The system calls the stages make, behind safe functions (as aya keeps its own in
//! `aya/src/sys/`): the interfaces of the current network namespace ([`netdev`]:
//! `if_nameindex` and the `SIOCGIF*`/`SIOCETHTOOL` ioctls), their addresses ([`ifaddrs`]:
//! `getifaddrs`) and their comings and goings ([`links`]: rtnetlink notifications), the
//! netlink plumbing requests share ([`netlink`]), whether the kernel has the bpf() call at all
//! ([`bpf`]), the id this namespace gives another ([`nsid`]), the clock the kernel stamps
//! events with ([`clock`]), the host name ([`host`]), waiting for the descriptors of the drop
//! events, the programs' log and the link notifications ([`readiness`]), the limit on open
//! descriptors ([`limits`]), a socket's receive buffer ([`sockets`]), the nftables ruleset's
//! generation ([`nftgen`]), listeners that end with the tracer ([`children`]), memory shared
//! with the kernel programs ([`shared`]: an mmapable array), and output files that may be
//! named pipes ([`files`]). Every `unsafe` block here says, in a `SAFETY:` comment, why it is
//! sound; no stage calls libc itself. Loading, attaching and reading the
//! kernel programs goes through aya (and the tc netlink of `probes/`).

pub mod bpf;
pub mod children;
pub mod clock;
pub mod files;
pub mod host;
pub mod ifaddrs;
pub mod limits;
pub mod links;
pub mod netdev;
pub mod netlink;
pub mod nftgen;
pub mod nsid;
pub mod readiness;
pub mod shared;
pub mod sockets;
