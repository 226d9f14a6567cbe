//! Everything that crosses the kernel/user boundary of `tracer`: the layout of map keys and
//! values, the class numbering, and the packet parser itself. The crate is `no_std` so the
//! eBPF programs use the very code the host tests exercise; the `user` feature adds what only
//! user space needs (`aya::Pod` impls and conversions to `std` types).
#![no_std]

#[cfg(feature = "user")]
extern crate std;

pub mod classes;
pub mod counters;
pub mod drops;
pub mod packet;
pub mod protocols;
