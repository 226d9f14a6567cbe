//! Shared helpers: namespaces that remove themselves, frame senders, and a handle on a running
//! tracer. Tests panic with context instead of returning errors.

pub mod cni;
pub mod firewalld;
pub mod kernel;
pub mod lab;
pub mod lines;
pub mod netns;
pub mod pair;
pub mod prometheus;
pub mod send;
pub mod tmux;
pub mod tracer;

pub use firewalld::Scratch;
pub use lab::Lab;
pub use netns::{NetNs, Veth, joined, silent_apiserver};
pub use send::{Paced, Stream, send_frames};
pub use tracer::{Counts, Tracer};

/// `tracer --netns NS bundle -o FILE EXTRA...`; it must succeed.
pub fn bundle(ns: &NetNs, file: &std::path::Path, extra: &[&str]) {
    let out = std::process::Command::new(tracer::BIN)
        .args(["--netns", &ns.name, "bundle", "-o"])
        .arg(file)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bundle in {}: {}",
        ns.name,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Unpacks a bundle (`tracer bundle`'s archive) below `into` with tar; its top directory.
pub fn unpack(archive: &std::path::Path, into: &std::path::Path) -> std::path::PathBuf {
    let status = std::process::Command::new("tar")
        .arg("xzf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .status()
        .unwrap();
    assert!(status.success(), "tar xzf {}", archive.display());
    into.join("tracer-bundle")
}

/// Panics with a clear message unless running as root.
pub fn require_root() {
    // SAFETY: geteuid takes no arguments, touches no memory of ours and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "these tests load eBPF programs and create network namespaces: run them as root (sudo -E cargo xtask test)"
    );
}

/// `bpftool -j ARGS` as JSON. A link another test is attaching at that moment has an id that
/// cannot be opened yet (EAGAIN), and bpftool then fails the whole listing ("can't get link by
/// id (N): Resource temporarily unavailable"): a failed listing is tried again.
pub fn bpftool_json(args: &[&str]) -> serde_json::Value {
    let mut failed = String::new();
    for _ in 0..10 {
        let out = std::process::Command::new("bpftool")
            .arg("-j")
            .args(args)
            .output()
            .unwrap();
        if out.status.success() {
            return serde_json::from_slice(&out.stdout).unwrap();
        }
        // With -j, bpftool's error is JSON on stdout.
        failed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("bpftool -j {}: {failed}", args.join(" "));
}
