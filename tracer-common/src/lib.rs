//! Everything that crosses the kernel/user boundary of `tracer`: the layout of map keys and
//! values, the class numbering, and the packet parser itself. The crate is `no_std` so the
//! eBPF programs use the very code the host tests exercise; the `user` feature adds what only
//! user space needs (`aya::Pod` impls and conversions to `std` types).
#![no_std]
// The eBPF programs run this code: the verifier needs the header readers inlined into them.
#![allow(
    clippy::inline_always,
    reason = "the BPF verifier needs the readers inlined"
)]
// `_reserved` fields are the explicit padding of repr(C) layouts shared with the kernel,
// public so that both sides can build the structs with literals.
#![allow(
    clippy::pub_underscore_fields,
    reason = "explicit padding of kernel-shared layouts"
)]

#[cfg(feature = "user")]
extern crate std;

pub mod classes;
pub mod counters;
pub mod drops;
pub mod packet;
pub mod peers;
pub mod protocols;
