//! Which pod a veth belongs to, end to end: pods set up through go-cni with the CRI's labels
//! (tests/cni-pod, the real bridge, host-local and host-device plugins) in a node namespace,
//! and `tracer watch --cni-cache` reading the result cache libcni wrote. A pod's veth is named
//! by its pod in the JSON lines, the text log and Prometheus's `tracer_iface_pod_info`; a veth
//! no entry names shows its peer's namespace only; a broken cache file is named once and the
//! other entries are still used; diagnose (live and from a bundle) names the pods behind its
//! pod links.

use std::{
    process::{Command, Stdio},
    sync::mpsc::Receiver,
    time::{Duration, Instant},
};

use tracer::schema::{DiagnoseLine, IfaceChange, IfaceChangeKind, WatchLine};

use crate::{
    harness::{
        NetNs, Tracer, Veth,
        cni::{BRIDGE, CniNode},
        lines::{findings, json_lines},
        netns::veth_pair,
        tracer::{BIN, lines_of},
        unpack,
    },
    metrics::{METRICS, Prometheus, unix_now},
};

const COREDNS: (&str, &str) = ("kube-system", "coredns-7db6d8ff4d-x2x7k");
const WEB: (&str, &str) = ("default", "web-0");

/// The interface a line names `pod`'s, if it does.
fn pod_line(line: &WatchLine, pod: (&str, &str)) -> Option<IfaceChange> {
    match line {
        WatchLine::Iface(c)
            if c.pod_namespace.as_deref() == Some(pod.0)
                && c.pod_name.as_deref() == Some(pod.1) =>
        {
            Some(c.clone())
        }
        _ => None,
    }
}

/// Text lines of a tracer until one contains every one of `wanted`; all lines read.
fn text_until(lines: &Receiver<String>, wanted: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + crate::harness::tmux::patience();
    let mut seen: Vec<String> = Vec::new();
    while !wanted.iter().all(|w| seen.iter().any(|l| l.contains(w))) {
        assert!(Instant::now() < deadline, "no {wanted:?} in: {seen:#?}");
        if let Ok(l) = lines.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    seen
}

/// The `tracer_iface_pod_info` series after a scrape that follows now: node, iface,
/// namespace, pod; sorted.
fn pod_series(prometheus: &Prometheus, ns: &NetNs) -> Vec<(String, String, String, String)> {
    std::thread::sleep(Duration::from_secs(1));
    prometheus.scraped_after(ns, unix_now());
    let mut series: Vec<_> = prometheus
        .query(ns, "tracer_iface_pod_info")
        .iter()
        .map(|(labels, value)| {
            assert!((*value - 1.0).abs() < f64::EPSILON, "{labels}");
            let l = |k: &str| labels[k].as_str().unwrap_or_default().to_string();
            (l("node"), l("iface"), l("namespace"), l("pod"))
        })
        .collect();
    series.sort();
    series
}

/// The text log names both pods, and shows veth-bare with its peer's namespace only.
fn text_names_the_pods(lines: &Receiver<String>) {
    let coredns = format!("pod {}/{}", COREDNS.0, COREDNS.1);
    let web = format!("pod {}/{}", WEB.0, WEB.1);
    let seen = text_until(lines, &[&coredns, &web, "veth-bare appeared: watched"]);
    let bare = seen
        .iter()
        .find(|l| l.contains("veth-bare appeared"))
        .unwrap();
    assert!(bare.contains("its other end: interface"), "{bare}");
    assert!(!bare.contains("pod "), "{bare}");
}

#[test]
fn pods_set_up_while_watching_are_named_in_json_text_and_metrics() {
    let node = CniNode::new("pdw", BRIDGE);
    let cache = node.results();
    let cache = cache.to_str().unwrap();
    let (coredns_ns, web_ns, bare_ns) =
        (NetNs::new("pdw1"), NetNs::new("pdw2"), NetNs::new("pdw3"));
    // The cache directory does not exist yet (no pod on the node): not an error.
    let mut json = Tracer::watch_env(
        &node.ns,
        &[("NODE_NAME", "node-p")],
        &[
            "--iface",
            "veth*",
            "--no-drops",
            "--interval",
            "0.5",
            "--metrics",
            METRICS,
            // Every diagnosis reads the cache too: the broken file is still named once.
            "--diagnose-every",
            "1",
            "--cni-cache",
            cache,
        ],
    );
    json.started();
    let mut text = Command::new(BIN)
        .args(["--netns", &node.ns.name, "--cni-cache", cache, "watch"])
        .args(["--iface", "veth*", "--no-drops", "--interval", "0.5"])
        .args(["--output", "text"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let text_lines = lines_of(&mut text);
    text_until(&text_lines, &["tracer watch: profile"]);
    let prometheus = Prometheus::start(&node.ns);

    node.setup(&coredns_ns, "sb1", COREDNS.0, COREDNS.1);
    // A file in the cache that is not an entry: named, and the others still used.
    let broken = node.results().join("podnet-broken-eth0");
    std::fs::write(&broken, r#"{"kind":"cniCacheV1","containerId":"#).unwrap();
    node.setup(&web_ns, "sb2", WEB.0, WEB.1);
    // A pod veth no runtime recorded: its peer's namespace, no pod.
    let add = format!(
        "link add veth-bare type veth peer name eth0 netns {}",
        bare_ns.name
    );
    node.ns.ip(&add.split(' ').collect::<Vec<_>>());
    node.ns.ip(&["link", "set", "veth-bare", "up"]);

    let coredns = json.wait_for("the coredns pod's veth", |l| pod_line(l, COREDNS));
    let web = json.wait_for("the web pod's veth", |l| pod_line(l, WEB));
    assert!(coredns.iface.starts_with("veth") && web.iface.starts_with("veth"));
    assert_ne!(coredns.iface, web.iface);
    let bare = json.wait_for("veth-bare attached", |l| match l {
        WatchLine::Iface(c) if c.iface == "veth-bare" && c.change == IfaceChangeKind::Attached => {
            Some(c.clone())
        }
        _ => None,
    });
    assert!(bare.peer_netns_id.is_some(), "{bare:?}");

    // Prometheus: one info series per named veth, and none for the bare one.
    let series = pod_series(&prometheus, &node.ns);
    let mut expected = vec![
        (
            "node-p".to_string(),
            coredns.iface.clone(),
            COREDNS.0.to_string(),
            COREDNS.1.to_string(),
        ),
        (
            "node-p".to_string(),
            web.iface.clone(),
            WEB.0.to_string(),
            WEB.1.to_string(),
        ),
    ];
    expected.sort();
    assert_eq!(series, expected);

    // The text log says the same.
    text_names_the_pods(&text_lines);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(text.id() as i32, libc::SIGTERM) };
    assert!(text.wait().unwrap().success());

    let (lines, log) = json.stop_with_log();
    assert!(
        !lines.iter().any(|l| matches!(l, WatchLine::Iface(c)
            if c.iface == "veth-bare" && (c.pod_name.is_some() || c.change == IfaceChangeKind::Pod))),
        "veth-bare was given a pod: {lines:#?}"
    );
    let named = log.matches(&broken.display().to_string()).count();
    assert_eq!(named, 1, "the broken file is named once: {log}");
    assert!(log.contains("not a libcni cache entry"), "{log}");

    node.remove(&coredns_ns, "sb1", COREDNS.0, COREDNS.1);
    node.remove(&web_ns, "sb2", WEB.0, WEB.1);
    // The runtime removes its entries with the pods.
    let left: Vec<_> = std::fs::read_dir(node.results())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from("podnet-broken-eth0")]);
}

#[test]
fn a_veth_the_plugin_does_not_report_is_named_by_its_pods_namespace() {
    // host-device moves an existing device into the pod and reports only the pod's end: the
    // host end is found by the namespace its other end is in.
    let node = CniNode::new(
        "pdh",
        r#"{"cniVersion":"1.0.0","name":"hostdev","plugins":[{"type":"host-device","device":"pod-end"}]}"#,
    );
    let pod = NetNs::new("pdh1");
    node.ns.ip(&[
        "link", "add", "veth-hd", "type", "veth", "peer", "name", "pod-end",
    ]);
    node.ns.ip(&["link", "set", "veth-hd", "up"]);
    node.setup(&pod, "sb3", WEB.0, WEB.1);
    let entry = std::fs::read_to_string(node.results().join("hostdev-sb3-eth0")).unwrap();
    assert!(
        !entry.contains("veth-hd"),
        "the entry names the host end: {entry}"
    );

    // Watched from the start: named with the first interval.
    let cache = node.results();
    let mut tracer = Tracer::watch(
        &node.ns,
        &[
            "--iface",
            "veth*",
            "--no-drops",
            "--interval",
            "0.5",
            "--cni-cache",
            cache.to_str().unwrap(),
        ],
    );
    tracer.started();
    let named = tracer.wait_for("veth-hd's pod", |l| pod_line(l, WEB));
    assert_eq!(named.iface, "veth-hd");
    assert_eq!(named.change, IfaceChangeKind::Pod);
    tracer.stop();
    node.remove(&pod, "sb3", WEB.0, WEB.1);
}

const NIC: Veth = Veth {
    name: "nic0",
    mac: [0x02, 0, 0, 0, 9, 0x01],
    ip: std::net::Ipv4Addr::new(10, 90, 0, 1),
};
const PEER_NIC: Veth = Veth {
    name: "nic1",
    mac: [0x02, 0, 0, 0, 9, 0x02],
    ip: std::net::Ipv4Addr::new(10, 90, 0, 2),
};

/// The overlay-MTU finding's element, from `diagnose ARGS` (live with `ns`, else a bundle).
fn mtu_element(ns: Option<&NetNs>, cache: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(BIN);
    if let Some(ns) = ns {
        cmd.args(["--netns", &ns.name]);
    }
    let out = cmd
        .args(["--cni-cache", cache, "diagnose", "--output", "json"])
        .args(args)
        .output()
        .unwrap();
    let lines: Vec<DiagnoseLine> = json_lines(&out.stdout);
    let found = findings(&lines);
    found
        .iter()
        .find(|f| f.id == "mtu/flannel.1")
        .and_then(|f| f.element.clone())
        .unwrap_or_else(|| panic!("no mtu/flannel.1 finding: {found:#?}"))
}

#[test]
fn diagnose_names_the_pods_behind_its_pod_links_live_and_from_a_bundle() {
    let node = CniNode::new("pdd", BRIDGE);
    let far = NetNs::new("pddf");
    veth_pair(&node.ns, &NIC, &far, &PEER_NIC);
    // Flannel's device over nic0: 1450 bytes, less than the pods' 1500.
    node.ns.ip(&[
        "link",
        "add",
        "flannel.1",
        "type",
        "vxlan",
        "id",
        "1",
        "dev",
        "nic0",
        "dstport",
        "8472",
        "local",
        "10.90.0.1",
    ]);
    node.ns.ip(&["link", "set", "flannel.1", "up"]);
    let pod = NetNs::new("pdd1");
    node.setup(&pod, "sb4", WEB.0, WEB.1);
    let cache = node.results();
    let cache = cache.to_str().unwrap();
    let profile = ["--profile", "k3s-flannel", "--role", "worker"];

    let live = mtu_element(Some(&node.ns), cache, &profile);
    assert!(
        live.contains(&format!("(pod {}/{}) mtu 1500", WEB.0, WEB.1)),
        "{live}"
    );

    // A bundle keeps the pods: diagnosed away from the node, they are still named.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("node.tar.gz");
    crate::harness::bundle(&node.ns, &file, &["--cni-cache", cache]);
    let unpacked = unpack(&file, dir.path());
    let mut args = vec!["--bundle", unpacked.to_str().unwrap()];
    args.extend(profile);
    let offline = mtu_element(None, "/nonexistent", &args);
    assert!(
        offline.contains(&format!("(pod {}/{})", WEB.0, WEB.1)),
        "{offline}"
    );
    node.remove(&pod, "sb4", WEB.0, WEB.1);
}
