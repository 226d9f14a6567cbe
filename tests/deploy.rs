//! What `deploy/` ships, checked by the tools that consume it: the Prometheus rules by
//! `promtool` (syntax, and the unit tests beside them), the Kubernetes manifests by a
//! schema validator.

use std::{path::PathBuf, process::Command};

/// The repository's `deploy/` folder.
fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Runs a tool and panics with its whole output unless it succeeds; returns its stdout.
fn succeeds(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{what}: cannot run {cmd:?} ({e}); cargo xtask setup installs it")
    });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn promtool_passes_the_shipped_rules_and_their_unit_tests() {
    let dir = deploy().join("prometheus");
    let checked = succeeds(
        Command::new("promtool")
            .args(["check", "rules", "tracer-rules.yml"])
            .current_dir(&dir),
        "promtool check rules",
    );
    assert!(checked.contains("SUCCESS"), "{checked}");
    succeeds(
        Command::new("promtool")
            .args(["test", "rules", "tests/tracer-rules.test.yml"])
            .current_dir(&dir),
        "promtool test rules",
    );
}
