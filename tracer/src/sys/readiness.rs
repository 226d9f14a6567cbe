//! Waiting for a kernel object's descriptor to become readable inside the tokio runtime: the
//! ring buffer of sampled drops and the kernel programs' log. tokio's registration is unsafe
//! for a type that could change or close its descriptor while registered; it is offered here
//! only for the types that own theirs for as long as they live ([`OwnsFd`]).

use std::os::fd::AsRawFd;

use aya::maps::{MapData, RingBuf};
use tokio::io::{Interest, unix::AsyncFd};

/// A type that owns one descriptor, open and unchanged from its creation to its drop.
pub trait OwnsFd: AsRawFd + sealed::Sealed {}

mod sealed {
    pub trait Sealed {}
}

impl sealed::Sealed for RingBuf<MapData> {}
impl OwnsFd for RingBuf<MapData> {}
impl<T> sealed::Sealed for aya_log::EbpfLogger<T> {}
impl<T> OwnsFd for aya_log::EbpfLogger<T> {}
impl sealed::Sealed for super::links::LinkEvents {}
impl OwnsFd for super::links::LinkEvents {}

/// Registers `owner` for readability; the registration lasts as long as the returned
/// [`AsyncFd`], which owns `owner` in turn. Must run inside a tokio runtime.
pub fn readable<T: OwnsFd>(owner: T) -> std::io::Result<AsyncFd<T>> {
    // SAFETY: OwnsFd is implemented only for types that own their descriptor (a ring buffer
    // map's, the log's perf buffers) and neither close nor replace it before they are dropped;
    // the AsyncFd owns the value, so the descriptor outlives the registration.
    unsafe { AsyncFd::register_with_interest(owner, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}
