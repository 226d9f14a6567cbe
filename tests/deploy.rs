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

/// kubernetes-validate from PyPI, with the Kubernetes schemas it bundles (offline), in the
/// venv `cargo xtask setup` makes.
const VALIDATOR: &str = "/var/lib/tracer-tools/venv/bin/kubernetes-validate";
/// The oldest Kubernetes the manifests are checked against, and the validator's newest.
const KUBERNETES: [&str; 2] = ["1.28.0", "1.37.0"];

fn yaml(path: &std::path::Path) -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn kubernetes_manifests_validate_against_the_schemas() {
    let dir = deploy().join("kubernetes");
    let core = ["namespace.yaml", "daemonset.yaml", "service.yaml"];
    for version in KUBERNETES {
        let said = succeeds(
            Command::new(VALIDATOR)
                .args(["--strict", "--kubernetes-version", version])
                .args(core)
                .current_dir(&dir),
            "kubernetes-validate",
        );
        for file in core {
            assert!(
                said.contains(&format!("{file} passed")),
                "{file} against {version}:\n{said}"
            );
        }
    }

    // The validator has no schema for the Prometheus Operator's kinds: their links are
    // checked here. The ServiceMonitor selects the Service by its labels and port name...
    let service = yaml(&dir.join("service.yaml"));
    let monitor = yaml(&dir.join("servicemonitor.yaml"));
    assert_eq!(monitor["kind"], "ServiceMonitor");
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        service["metadata"]["labels"]
    );
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );
    // ...and the PrometheusRule holds exactly the shipped rules.
    let rule = yaml(&dir.join("prometheus-rule.yaml"));
    assert_eq!(rule["kind"], "PrometheusRule");
    assert_eq!(
        rule["spec"],
        yaml(&deploy().join("prometheus/tracer-rules.yml")),
        "deploy/kubernetes/prometheus-rule.yaml differs from deploy/prometheus/tracer-rules.yml"
    );

    // Capabilities, not privileged; every host path read-only.
    let ds = yaml(&dir.join("daemonset.yaml"));
    let pod = &ds["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["privileged"], false);
    assert_eq!(pod["hostNetwork"], true);
    let mounts = container["volumeMounts"].as_sequence().unwrap();
    assert!(mounts.iter().all(|m| m["readOnly"] == true), "{mounts:?}");
}
