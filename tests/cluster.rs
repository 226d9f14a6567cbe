//! `tracer cluster` against a real Prometheus: each missing link between it and the node
//! pairs gets its own message (nothing listening, the rules not loaded, no tracer scraped).
//! The pairs themselves are checked in the lab's scenarios.

use std::process::Command;

use crate::harness::{
    NetNs,
    prometheus::{PromServer, shipped_rules},
    tracer::BIN,
};

/// `tracer cluster` run in `ns`: exit code and stderr.
fn cluster(ns: &NetNs, url: &str) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(["--netns", &ns.name, "cluster", "--prometheus", url])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cluster_names_what_is_missing_between_it_and_the_pairs() {
    let ns = NetNs::new("cluster");
    ns.ip(&["link", "set", "lo", "up"]);
    let addr = "127.0.0.1:9091";

    let (code, err) = cluster(&ns, &format!("http://{addr}"));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot reach Prometheus at http://{addr}"))
            && err.contains("refused"),
        "{err}"
    );
    let (code, err) = cluster(&ns, "https://prometheus:9090");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("port-forward"), "{err}");

    let bare = PromServer::start(&ns.name, addr, &[], &[]);
    let (code, err) = cluster(&ns, &bare.url);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("has not loaded tracer's rules") && err.contains("tracer-rules.yml"),
        "{err}"
    );
    drop(bare);

    let ruled = PromServer::start(&ns.name, addr, &[], &[shipped_rules()]);
    let (code, err) = cluster(&ns, &ruled.url);
    assert_eq!(code, Some(1), "{err}\n{}", ruled.log());
    assert!(err.contains("it scrapes no tracer"), "{err}");
}
