//! Shared helpers: namespaces that remove themselves, frame senders, and a handle on a running
//! tracer. Tests panic with context instead of returning errors.

pub mod kernel;
pub mod lab;
pub mod netns;
pub mod pair;
pub mod prometheus;
pub mod send;
pub mod tmux;
pub mod tracer;

pub use lab::Lab;
pub use netns::{NetNs, Veth, joined, silent_apiserver};
pub use send::{Paced, Stream, send_frames};
pub use tracer::{Counts, Tracer};

/// Panics with a clear message unless running as root.
pub fn require_root() {
    // SAFETY: geteuid takes no arguments, touches no memory of ours and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "these tests load eBPF programs and create network namespaces: run them as root (sudo -E cargo xtask test)"
    );
}
