//! A fix is the whole set of changes that makes the flow work: in the lab's overlay-MTU
//! scenario the overlay device's MTU alone leaves the pods sending more than the overlay
//! carries, and diagnose keeps saying so (naming each pod's interface) until they are set too;
//! then every flow works and the check calls the fault repaired.

use tracer::schema::{DiagnoseLine, Finding, Severity};

use crate::harness::{Lab, lab::text, tracer::BIN};

fn errors(lab: &Lab, node: &str) -> Vec<Finding> {
    let out = lab.exec_output(node, &[BIN, "diagnose", "--output", "json"]);
    text(&out.stdout)
        .lines()
        .filter_map(|l| match serde_json::from_str(l) {
            Ok(DiagnoseLine::Finding(f)) if f.severity == Severity::Error => Some(f),
            Ok(_) => None,
            Err(e) => panic!("{l}: {e}"),
        })
        .collect()
}

#[test]
fn an_overlay_mtu_fix_is_not_done_until_the_pods_are() {
    let lab = Lab::up("overlay-mtu", "fx");
    for node in ["worker-1", "worker-2"] {
        lab.exec(node, &["ip", "link", "set", "flannel.1", "mtu", "1400"]);
    }
    let check = text(&lab.run(&["check"]).stdout);
    assert!(check.contains("FAIL pod-to-pod-large"), "{check}");
    for node in ["worker-1", "worker-2"] {
        let found = errors(&lab, node);
        let mtu = found
            .iter()
            .find(|f| f.id == "mtu/flannel.1")
            .unwrap_or_else(|| {
                panic!("{node}: large pod packets fail, and no MTU error: {found:#?}")
            });
        assert!(
            mtu.title
                .starts_with("pods send more than the overlay carries"),
            "{mtu:#?}"
        );
        let pod_ns = format!("{}-pod-{node}", lab.prefix);
        let pod_fix = format!("ip -n {pod_ns} link set eth0 mtu 1400");
        assert!(mtu.fix.contains(&pod_fix), "{mtu:#?}");
        assert!(
            !mtu.fix
                .iter()
                .any(|c| c.starts_with("ip link set flannel.1")),
            "the device is set already: {mtu:#?}"
        );
        let argv: Vec<&str> = pod_fix.split_whitespace().collect();
        lab.exec(node, &argv);
        assert!(
            errors(&lab, node).is_empty(),
            "{node} after its pods were set"
        );
    }
    assert!(lab.check().contains("is repaired"));
}
