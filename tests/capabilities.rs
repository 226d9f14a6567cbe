//! The DaemonSet's capabilities are the ones the tracer needs: `tracer watch`, run with only
//! the capabilities deploy/kubernetes/daemonset.yaml adds (the bounding set cut to them, so
//! even root has no other), attaches, counts exactly and catches a firewall drop. (Where the
//! test runs without CAP_SYS_RESOURCE, as in some sandboxes, it runs without it: kernels from
//! 5.11 on charge BPF memory to the cgroup and do not need it.)

use std::{path::PathBuf, process::Command, time::Duration};

use bytes::Bytes;
use tracer::schema::WatchLine;
use tracer_lab::synth::{Eth, L4, frame};

use crate::harness::{
    Counts, Tracer, joined, kernel,
    pair::SILENT,
    pair::{A, B, apiserver_syns},
    send_frames, silent_apiserver,
    tracer::{BIN, summary},
};

/// The capabilities the shipped DaemonSet adds, as `setpriv` names them.
fn daemonset_caps() -> Vec<String> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/daemonset.yaml");
    let ds: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let caps = &ds["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"];
    assert_eq!(caps["drop"][0], "ALL");
    caps["add"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_lowercase())
        .collect()
}

#[test]
fn the_daemonsets_capabilities_suffice_to_count_and_catch_drops() {
    let caps = daemonset_caps();
    assert!(!caps.iter().any(|c| c == "sys_admin"), "{caps:?}");
    let reason = kernel::drop_reason("daemonset_caps", "NETFILTER_DROP");
    let (a, b) = joined("caps", &A, &B);
    let _apiserver = silent_apiserver(&a, &A, &B, SILENT);
    a.nft_drop_input(4789);

    let only: Vec<String> = caps.iter().map(|c| format!("+{c}")).collect();
    let set = format!("-all,{}", only.join(","));
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &a.name, "setpriv"])
        .arg(format!("--bounding-set={set}"))
        .arg(BIN);
    let mut tracer = Tracer::start(
        &mut cmd,
        &["--iface", "va", "--profile", "generic", "--interval", "0.5"],
    );
    tracer.started();
    let to_a = Eth::new(B.mac, A.mac);
    let mut frames: Vec<Bytes> = apiserver_syns(500);
    frames.extend((0..300).map(|_| {
        frame(
            &to_a,
            B.ip.into(),
            A.ip.into(),
            &L4::udp(40000, 4789, &[7u8; 40]),
        )
    }));
    send_frames(&b, B.name, &frames);
    std::thread::sleep(Duration::from_millis(800));
    let lines: Vec<WatchLine> = tracer.stop();

    let counts = Counts::from_summary(&lines);
    assert_eq!(counts.packets("va", "ingress", "kube-apiserver"), 500);
    let dropped: u64 = summary(&lines)
        .drops
        .as_ref()
        .expect("drop capture on with the DaemonSet's capabilities")
        .iter()
        .filter(|d| d.iface == "va" && d.reason == reason)
        .map(|d| d.count)
        .sum();
    assert_eq!(dropped, 300, "{lines:?}");
}
