//! What a user sees when something is wrong: one line on stderr, a non-zero exit.

use std::{os::unix::process::CommandExt, process::Command};

use crate::harness::{NetNs, tracer::BIN};

fn one_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr).into_owned();
    assert_eq!(
        text.trim_end().lines().count(),
        1,
        "expected one line on stderr, got:\n{text}"
    );
    text
}

#[test]
fn without_root_watch_says_so_in_one_line() {
    crate::harness::require_root();
    // A copy the unprivileged user can reach whatever the checkout's permissions.
    let dir = tempfile::Builder::new()
        .prefix("tracer-nobody")
        .tempdir()
        .unwrap();
    let bin = dir.path().join("tracer");
    std::fs::copy(BIN, &bin).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(&bin)
        .args(["watch", "--duration", "1"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let line = one_line(&out.stderr);
    assert!(line.contains("needs root"), "{line}");
    assert!(line.contains("CAP_BPF"), "{line}");
    assert!(
        !line.contains("panicked") && !line.contains("backtrace"),
        "{line}"
    );
}

#[test]
fn unknown_interface_lists_the_ones_that_exist() {
    let ns = NetNs::new("e");
    ns.ip(&[
        "link", "add", "other7", "type", "veth", "peer", "name", "other8",
    ]);
    let out = Command::new(BIN)
        .args(["--netns", &ns.name, "watch", "--iface", "nope0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let line = one_line(&out.stderr);
    assert!(line.contains("\"nope0\""), "{line}");
    assert!(line.contains("lo") && line.contains("other7"), "{line}");
}

#[test]
fn no_interface_up_is_explained() {
    let ns = NetNs::new("e");
    let out = Command::new(BIN)
        .args(["--netns", &ns.name, "watch"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(one_line(&out.stderr).contains("--iface"));
}

#[test]
fn missing_namespace_is_explained() {
    crate::harness::require_root();
    let out = Command::new(BIN)
        .args(["--netns", "trt-does-not-exist", "watch"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(one_line(&out.stderr).contains("ip netns list"));
}

/// The lab needs root, not just the capabilities `tracer watch` names: with exactly those,
/// `lab up` says so in one line instead of failing on a directory it cannot create.
#[test]
fn lab_with_only_the_tracers_capabilities_says_it_needs_root() {
    crate::harness::require_root();
    let caps = "+bpf,+net_admin,+perfmon";
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(format!("--inh-caps={caps}"))
        .arg(format!("--ambient-caps={caps}"))
        .args([
            BIN,
            "lab",
            "up",
            "--prefix",
            "trtcap",
            "--scenario",
            "k0s-calico",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let line = one_line(&out.stderr);
    assert!(line.contains("needs root"), "{line}");
    assert!(!std::path::Path::new("/var/lib/tracer-lab/trtcap").exists());
}
