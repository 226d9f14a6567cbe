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

/// A required input that cannot be read is exit status 1, named on stderr, and the diagnosis
/// printed as far as it goes never says "No problem found": a missing ruleset file, truncated
/// JSON, a jump to a chain the listing lacks, a base chain without a numeric priority.
#[test]
fn diagnose_never_calls_a_node_healthy_on_inputs_it_could_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let table = r#"{"table": {"family": "inet", "name": "t", "handle": 1}}"#;
    let chain = |prio: &str| {
        format!(
            r#"{{"chain": {{"family": "inet", "table": "t", "name": "in", "handle": 2, "type": "filter", "hook": "input", "prio": {prio}, "policy": "accept"}}}}"#
        )
    };
    let jump = r#"{"rule": {"family": "inet", "table": "t", "chain": "in", "handle": 3, "expr": [{"jump": {"target": "nowhere"}}]}}"#;
    let cases = [
        ("missing.json", None),
        (
            "truncated.json",
            Some(format!("{{\"nftables\": [\n  {table},\n")),
        ),
        (
            "jump.json",
            Some(format!(
                "{{\"nftables\": [{table}, {}, {jump}]}}",
                chain("0")
            )),
        ),
        (
            "priority.json",
            Some(format!(
                "{{\"nftables\": [{table}, {}]}}",
                chain("\"high\"")
            )),
        ),
    ];
    for (name, text) in cases {
        let file = dir.path().join(name);
        if let Some(text) = text {
            std::fs::write(&file, text).unwrap();
        }
        let file = file.to_str().unwrap();
        let diagnose = |output: &str| {
            Command::new(BIN)
                .args(["diagnose", "--ruleset", file, "--root"])
                .arg(dir.path())
                .args([
                    "--profile",
                    "generic",
                    "--role",
                    "worker",
                    "--output",
                    output,
                ])
                .output()
                .unwrap()
        };
        let out = diagnose("text");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{name}: {stdout}");
        assert!(!stdout.contains("No problem found"), "{name}: {stdout}");
        assert!(stdout.contains("Diagnosis incomplete"), "{name}: {stdout}");
        assert!(one_line(&out.stderr).contains(name), "{name}");
        let out = diagnose("json");
        assert_eq!(out.status.code(), Some(1), "{name}");
        let summary = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<tracer::schema::DiagnoseLine>(l).ok())
            .find_map(|l| match l {
                tracer::schema::DiagnoseLine::Summary(s) => Some(s),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name}: no summary line"));
        assert!(!summary.complete, "{name}: {summary:?}");
    }
}

/// An interval too short for a timer is refused with a sentence, not a panic (exit 101).
#[test]
fn a_zero_length_interval_is_refused_not_a_panic() {
    for tiny in ["1e-10", "5e-324"] {
        let out = Command::new(BIN)
            .args(["watch", "--interval", tiny, "--duration", "1"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{tiny}");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("at least 0.1 seconds"), "{text}");
        assert!(!text.contains("panicked"), "{text}");
    }
}

/// A catalog file named on the command line is required: missing or invalid, the firewall
/// commands are not printed without its ports (exit 1, the file and position named).
#[test]
fn a_catalog_that_cannot_be_read_stops_ports() {
    let dir = tempfile::tempdir().unwrap();
    let invalid = dir.path().join("apps.toml");
    std::fs::write(&invalid, "[[component]]\nname = \"shop\"\nports = \"x\"\n").unwrap();
    for (file, says) in [
        ("/nonexistent.toml", "/nonexistent.toml".to_string()),
        (
            invalid.to_str().unwrap(),
            format!("{}:1:1", invalid.display()),
        ),
    ] {
        let out = Command::new(BIN)
            .args(["ports", "--profile", "k3s-flannel", "--role", "server"])
            .args(["--catalog", file, "--format", "firewall-cmd"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{file}");
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(one_line(&out.stderr).contains(&says), "{file}");
    }
}

/// `--pcap` on a named pipe that nobody reads is refused at once, naming the file, instead
/// of waiting in open() for a reader past `--duration`.
#[test]
fn pcap_to_a_pipe_without_a_reader_is_refused() {
    let ns = NetNs::new("p");
    ns.ip(&["link", "add", "pa", "type", "veth", "peer", "name", "pb"]);
    ns.ip(&["link", "set", "pa", "up"]);
    ns.ip(&["link", "set", "pb", "up"]);
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("drops.pcapng");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let mut child = Command::new(BIN)
        .args([
            "--netns",
            &ns.name,
            "watch",
            "--iface",
            "pa",
            "--duration",
            "1",
        ])
        .arg("--pcap")
        .arg(&fifo)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Before the fix this waited in open() forever.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("tracer watch --pcap FIFO still waiting for a reader after 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let line = one_line(stderr.as_bytes());
    assert!(
        line.contains("drops.pcapng") && line.contains("no reader"),
        "{line}"
    );
}
