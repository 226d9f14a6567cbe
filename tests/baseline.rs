//! End to end: a baseline recorded while B sends A steady kube-apiserver SYNs and flannel
//! VXLAN datagrams (which an nftables rule in A drops), then compared under the same traffic
//! (no regression), with half the kube-apiserver traffic and with twice the VXLAN drops (both
//! regressions, exit status 4, named in the JSON). Broken baseline files are refused by name.

use std::{
    path::Path,
    process::{Command, Output},
};

use tracer::{
    events::baseline::Baseline,
    schema::{Change, ChangeKind, Comparison, Direction, Measure},
};

use crate::harness::{
    NetNs, Paced, Stream,
    pair::{A, B, SILENT, apiserver_syn, pair, udp},
    silent_apiserver,
    tracer::BIN,
};

const SYNS_PER_SEC: f64 = 300.0;
const VXLAN_PER_SEC: f64 = 50.0;
/// The streams of the sender, by index.
const API: usize = 0;
const VXLAN: usize = 1;

/// Runs `tracer --netns NS baseline ARGS...` to the end.
fn baseline(ns: &NetNs, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["--netns", &ns.name, "baseline"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("starting {BIN}: {e}"))
}

/// Runs a JSON comparison against `file`; its exit status and document.
fn compare(ns: &NetNs, file: &Path) -> (i32, Comparison) {
    let out = baseline(ns, &["compare", file.to_str().unwrap(), "--output", "json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let doc: Comparison = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "compare printed no JSON ({e}), exit {}:\n{text}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().expect("exited"), doc)
}

fn regressions(doc: &Comparison) -> Vec<&Change> {
    doc.changes.iter().filter(|c| c.regression).collect()
}

fn rate(doc: &Baseline, direction: Direction, class: &str) -> f64 {
    doc.traffic
        .iter()
        .find(|t| t.iface == "va" && t.direction == direction && t.class == class)
        .unwrap_or_else(|| panic!("no {class} {direction:?} in {doc:#?}"))
        .packets_per_sec
}

fn assert_near(what: &str, got: f64, want: f64, percent: f64) {
    assert!(
        (got - want).abs() <= want * percent / 100.0,
        "{what}: {got}/s, expected {want}/s within {percent}%"
    );
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one recording compared under three kinds of traffic, each step on the one before"
)]
#[allow(
    clippy::float_cmp,
    reason = "the size fraction of SYNs all in one bucket is exactly 1.0; anything else is a bug"
)]
fn a_halved_class_and_doubled_drops_are_regressions_and_steady_traffic_is_not() {
    let (a, b) = pair();
    let _apiserver = silent_apiserver(&a, &A, &B, SILENT);
    a.nft_drop_input(8472);

    let sender = Paced::start(
        &b,
        B.name,
        vec![
            Stream {
                per_sec: SYNS_PER_SEC,
                make: Box::new(|n| apiserver_syn(20000 + (n % 40000) as u16)),
            },
            Stream {
                per_sec: VXLAN_PER_SEC,
                make: Box::new(|n| udp(40000 + (n % 20000) as u16, 8472)),
            },
        ],
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("baseline.json");
    let out = baseline(
        &a,
        &[
            "record",
            "--iface",
            "va",
            "--profile",
            "generic",
            "--duration",
            "3",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "record: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let recorded: Baseline =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(recorded.format, "tracer-baseline");
    assert_eq!(recorded.version, 1);
    assert_eq!(recorded.meta.profile, "generic");
    assert_eq!(recorded.meta.interfaces[0].iface, "va");
    assert_eq!(recorded.meta.interfaces[0].hook, "tc");
    let api_in = rate(&recorded, Direction::Ingress, "kube-apiserver");
    let api_out = rate(&recorded, Direction::Egress, "kube-apiserver");
    let vxlan_in = rate(&recorded, Direction::Ingress, "flannel-vxlan");
    let drops = recorded
        .drops
        .iter()
        .flatten()
        .find(|d| d.class == "flannel-vxlan" && d.reason == "NETFILTER_DROP")
        .unwrap_or_else(|| panic!("no flannel-vxlan drops in {recorded:#?}"))
        .per_sec;
    eprintln!(
        "recorded over {}s: kube-apiserver {api_in}/s in, {api_out}/s out; flannel-vxlan {vxlan_in}/s in, {drops}/s dropped",
        recorded.duration_secs
    );
    assert_near("kube-apiserver ingress", api_in, SYNS_PER_SEC, 5.0);
    assert_near("kube-apiserver egress", api_out, SYNS_PER_SEC, 5.0);
    assert_near("flannel-vxlan ingress", vxlan_in, VXLAN_PER_SEC, 5.0);
    assert_near("flannel-vxlan drops", drops, VXLAN_PER_SEC, 5.0);
    // A SYN is a 54-byte frame: every one in the first size bucket.
    assert_eq!(
        recorded
            .traffic
            .iter()
            .find(|t| t.direction == Direction::Ingress && t.class == "kube-apiserver")
            .unwrap()
            .sizes
            .as_ref()
            .unwrap()[0],
        1.0
    );

    // The same traffic: nothing regressed.
    let (code, doc) = compare(&a, &file);
    assert_eq!(code, 0, "{doc:#?}");
    assert!(!doc.regression, "{doc:#?}");
    assert!(regressions(&doc).is_empty(), "{doc:#?}");

    // Half the kube-apiserver traffic.
    sender.set_rate(API, SYNS_PER_SEC / 2.0);
    let (code, doc) = compare(&a, &file);
    assert_eq!(code, 4, "{doc:#?}");
    let fell = regressions(&doc)
        .into_iter()
        .find(|c| c.class == "kube-apiserver" && c.direction == Some(Direction::Ingress))
        .unwrap_or_else(|| panic!("kube-apiserver ingress should have regressed: {doc:#?}"));
    assert_eq!(fell.measure, Measure::PacketsPerSec);
    let pct = fell.change_percent.unwrap();
    assert!((-55.0..=-45.0).contains(&pct), "{fell:?}");
    let message = &fell.message;
    assert!(
        message.starts_with("kube-apiserver ingress on va: "),
        "{message}"
    );
    assert!(
        regressions(&doc)
            .iter()
            .all(|c| c.class == "kube-apiserver"),
        "only kube-apiserver moved: {doc:#?}"
    );

    // Back to normal, and twice the overlay traffic, all of it dropped.
    sender.set_rate(API, SYNS_PER_SEC);
    sender.set_rate(VXLAN, VXLAN_PER_SEC * 2.0);
    let (code, doc) = compare(&a, &file);
    assert_eq!(code, 4, "{doc:#?}");
    let bad = regressions(&doc);
    assert_eq!(bad.len(), 1, "only the drops regressed: {doc:#?}");
    assert_eq!(bad[0].kind, ChangeKind::Drops);
    assert_eq!(bad[0].class, "flannel-vxlan");
    assert_eq!(bad[0].reason, Some("NETFILTER_DROP".into()));
    let pct = bad[0].change_percent.unwrap();
    assert!((85.0..=115.0).contains(&pct), "{:?}", bad[0]);
    let message = &bad[0].message;
    assert!(
        message.starts_with("NETFILTER_DROP drops of flannel-vxlan on va: "),
        "{message}"
    );
    // More overlay traffic is reported, but is no regression.
    assert!(
        doc.changes
            .iter()
            .any(|c| c.class == "flannel-vxlan" && c.kind == ChangeKind::Traffic && !c.regression),
        "{doc:#?}"
    );
    let sent = sender.stop();
    eprintln!(
        "sent {} SYNs and {} VXLAN datagrams",
        sent[API], sent[VXLAN]
    );
}

#[test]
fn broken_baselines_are_refused_with_file_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.json");
    std::fs::write(
        &file,
        "{\n  \"format\": \"tracer-baseline\",\n  \"version\": 1,\n  \"meta\": [\n",
    )
    .unwrap();
    let name = file.to_str().unwrap();
    // The file is read before anything is attached: no namespace needed.
    let out = Command::new(BIN)
        .args(["baseline", "compare", name])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{name}:5:")), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    std::fs::write(&file, "{\"format\": \"tracer-baseline\", \"version\": 7}").unwrap();
    let out = Command::new(BIN)
        .args(["baseline", "compare", name])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(name) && err.contains("version 7"), "{err}");
}
