//! The metrics page against its expected text, and read back by a real `promtool check
//! metrics`: names, help, types and labels as Prometheus parses them.

use std::{
    io::Write,
    process::{Command, Stdio},
};

use tracer_common::counters::SIZE_BUCKETS;

use super::*;
use crate::{
    events::{Direction, DropTotal, PeerDrop},
    findings::Severity,
    probes::DropStats,
};

fn info() -> RunInfo {
    RunInfo {
        node: "worker-1".into(),
        version: "0.1.0".into(),
        kernel: "6.18.0-test".into(),
        ifaces: vec![("eth0".into(), 2, "xdp".into())],
        pods: vec![],
    }
}

/// The scrape of a run with nothing counted yet.
fn render_info(info: &RunInfo) -> String {
    render(&Scrape {
        info,
        entries: &[],
        peers: &[],
        addresses: &[],
        drops: None,
        findings: &[],
    })
}

fn finding(severity: Severity) -> Finding {
    let mut f = Finding::new(format!("test/{}", severity.as_str()), severity, "t", "e");
    f.class = (severity == Severity::Error).then(|| "calico-vxlan".to_string());
    f
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn peer(direction: Direction, packets: u64, bytes: u64) -> PeerEntry {
    PeerEntry {
        iface: "eth0".into(),
        direction,
        class: "calico-vxlan".into(),
        peer: ip("10.0.0.2"),
        packets,
        bytes,
    }
}

fn drops() -> DropsView {
    DropsView {
        totals: vec![
            DropTotal {
                iface: "eth0".into(),
                class: "calico-vxlan".into(),
                reason: "NETFILTER_DROP".into(),
                count: 12,
            },
            DropTotal {
                iface: "-".into(),
                class: "other".into(),
                reason: "QUEUE_PURGE".into(),
                count: 4,
            },
        ],
        stats: DropStats {
            events_lost: 1,
            events_suppressed: 2,
            uncounted: 0,
            untracked: 5,
        },
        peers: vec![PeerDrop {
            peer: ip("10.0.0.2"),
            class: "calico-vxlan".into(),
            reason: "NETFILTER_DROP".into(),
            count: 3,
        }],
        ..Default::default()
    }
}

#[test]
fn exact_text_of_a_small_run() {
    let info = info();
    let entries = [
        Entry::eth0_ingress("kube-apiserver", false, 3, 264, [2, 1, 0, 0, 0, 0, 0, 0]),
        Entry::eth0_ingress("etcd", true, 5, 500, [0; SIZE_BUCKETS]),
    ];
    let drops = drops();
    let findings = [finding(Severity::Error), finding(Severity::Info)];
    let peers = [
        peer(Direction::Egress, 7, 700),
        peer(Direction::Ingress, 2, 200),
    ];
    let addresses = [ip("10.0.0.1"), ip("127.0.0.1"), ip("fd00::1")];
    let text = render(&Scrape {
        info: &info,
        entries: &entries,
        peers: &peers,
        addresses: &addresses,
        drops: Some(&drops),
        findings: &findings,
    });
    let expected = r#"# HELP tracer_build_info The tracer version and the kernel it runs on; always 1.
# TYPE tracer_build_info gauge
tracer_build_info{node="worker-1",version="0.1.0",kernel="6.18.0-test"} 1
# HELP tracer_interface_info An interface the tracer watches, with its ingress hook; always 1.
# TYPE tracer_interface_info gauge
tracer_interface_info{node="worker-1",iface="eth0",ifindex="2",hook="xdp"} 1
# HELP tracer_iface_pod_info The pod a watched veth belongs to, as the container runtime recorded it (CNI result cache); always 1.
# TYPE tracer_iface_pod_info gauge
# HELP tracer_packets_total Packets per interface, direction and traffic class.
# TYPE tracer_packets_total counter
tracer_packets_total{node="worker-1",iface="eth0",direction="ingress",class="kube-apiserver"} 3
# HELP tracer_bytes_total Bytes (whole frames) per interface, direction and traffic class.
# TYPE tracer_bytes_total counter
tracer_bytes_total{node="worker-1",iface="eth0",direction="ingress",class="kube-apiserver"} 264
# HELP tracer_overlay_packets_total Overlay (VXLAN) packets per interface and direction, by the class of the packet they carry.
# TYPE tracer_overlay_packets_total counter
tracer_overlay_packets_total{node="worker-1",iface="eth0",direction="ingress",class="etcd"} 5
# HELP tracer_overlay_bytes_total Bytes of overlay (VXLAN) packets per interface and direction, by the class of the packet they carry.
# TYPE tracer_overlay_bytes_total counter
tracer_overlay_bytes_total{node="worker-1",iface="eth0",direction="ingress",class="etcd"} 500
# HELP tracer_packet_size_bytes Sizes of the packets (whole frames) per interface, direction and traffic class.
# TYPE tracer_packet_size_bytes histogram
tracer_packet_size_bytes_bucket{node="worker-1",iface="eth0",direction="ingress",class="kube-apiserver",le="64"} 2
tracer_packet_size_bytes_bucket{node="worker-1",iface="eth0",direction="ingress",class="kube-apiserver",le="128"} 3
tracer_packet_size_bytes_bucket{node="worker-1",iface="eth0",direction="ingress",class="kube-apiserver",le="256"} 3
tracer_packet_size_bytes_bucket{node="worker-1",iface="eth0",direction="ingress",class="kube-apiserver",le="512"} 3
tracer_packet_size_bytes_bucket{node="worker-1",iface="eth0",direction="ingress",class="kube-apiserver",le="1024"} 3
tracer_packet_size_bytes_bucket{node="worker-1",iface="eth0",direction="ingress",class="kube-apiserver",le="1518"} 3
tracer_packet_size_bytes_bucket{node="worker-1",iface="eth0",direction="ingress",class="kube-apiserver",le="9018"} 3
tracer_packet_size_bytes_bucket{node="worker-1",iface="eth0",direction="ingress",class="kube-apiserver",le="+Inf"} 3
tracer_packet_size_bytes_sum{node="worker-1",iface="eth0",direction="ingress",class="kube-apiserver"} 264
tracer_packet_size_bytes_count{node="worker-1",iface="eth0",direction="ingress",class="kube-apiserver"} 3
# HELP tracer_node_address_info An address of this node (loopback left out), to map a peer address to its node; always 1.
# TYPE tracer_node_address_info gauge
tracer_node_address_info{node="worker-1",address="10.0.0.1"} 1
tracer_node_address_info{node="worker-1",address="fd00::1"} 1
# HELP tracer_overlay_peer_packets_total Packets of node-to-node classes (overlays, BGP) per interface, direction and peer: the outer destination on egress, the outer source on ingress.
# TYPE tracer_overlay_peer_packets_total counter
tracer_overlay_peer_packets_total{node="worker-1",iface="eth0",direction="egress",peer="10.0.0.2",class="calico-vxlan"} 7
tracer_overlay_peer_packets_total{node="worker-1",iface="eth0",direction="ingress",peer="10.0.0.2",class="calico-vxlan"} 2
# HELP tracer_overlay_peer_bytes_total Bytes (whole frames) of node-to-node classes per interface, direction and peer.
# TYPE tracer_overlay_peer_bytes_total counter
tracer_overlay_peer_bytes_total{node="worker-1",iface="eth0",direction="egress",peer="10.0.0.2",class="calico-vxlan"} 700
tracer_overlay_peer_bytes_total{node="worker-1",iface="eth0",direction="ingress",peer="10.0.0.2",class="calico-vxlan"} 200
# HELP tracer_drops_total Packets the kernel dropped, per interface, traffic class and kernel drop reason; housekeeping is true for sockets and queues tidying up, not traffic lost.
# TYPE tracer_drops_total counter
tracer_drops_total{node="worker-1",iface="eth0",class="calico-vxlan",reason="NETFILTER_DROP",housekeeping="false"} 12
tracer_drops_total{node="worker-1",iface="-",class="other",reason="QUEUE_PURGE",housekeeping="true"} 4
# HELP tracer_drop_events_lost_total Sampled drop events the kernel could not hand over (ring buffer full); their drops are counted.
# TYPE tracer_drop_events_lost_total counter
tracer_drop_events_lost_total{node="worker-1"} 1
# HELP tracer_drop_events_suppressed_total Drop events held back by the sampling budgets; their drops are counted.
# TYPE tracer_drop_events_suppressed_total counter
tracer_drop_events_suppressed_total{node="worker-1"} 2
# HELP tracer_drops_uncounted_total Drops the drop counter table had no room for.
# TYPE tracer_drops_uncounted_total counter
tracer_drops_uncounted_total{node="worker-1"} 0
# HELP tracer_drops_untracked_total Drops counted in tracer_drops_total whose flow the flow table had no room for.
# TYPE tracer_drops_untracked_total counter
tracer_drops_untracked_total{node="worker-1"} 5
# HELP tracer_overlay_peer_drops_total Packets of node-to-node classes to or from a peer that this node's kernel dropped, by kernel drop reason.
# TYPE tracer_overlay_peer_drops_total counter
tracer_overlay_peer_drops_total{node="worker-1",peer="10.0.0.2",class="calico-vxlan",reason="NETFILTER_DROP"} 3
# HELP tracer_findings Each finding of the latest diagnosis, by id, severity and class; always 1.
# TYPE tracer_findings gauge
tracer_findings{node="worker-1",id="test/error",severity="error",class="calico-vxlan"} 1
tracer_findings{node="worker-1",id="test/info",severity="info",class=""} 1
"#;
    assert_eq!(text, expected);
}

#[test]
fn without_drop_capture_the_drop_families_are_absent() {
    let info = info();
    let text = render_info(&info);
    assert!(!text.contains("tracer_drop"), "{text}");
    assert!(text.contains("# TYPE tracer_findings gauge\n"), "{text}");
    assert!(!text.contains("tracer_findings{"), "{text}");
}

#[test]
fn label_values_are_escaped() {
    let mut info = info();
    info.ifaces = vec![("we\\ird\"if\nx".into(), 9, "tc".into())];
    let text = render_info(&info);
    assert!(
        text.contains(r#"tracer_interface_info{node="worker-1",iface="we\\ird\"if\nx",ifindex="9",hook="tc"} 1"#),
        "{text}"
    );
}

#[test]
fn a_pod_veth_has_one_info_series_naming_its_pod() {
    let mut info = info();
    info.pods = vec![(
        "veth8445924e".into(),
        "kube-system".into(),
        "coredns-7db6d8ff4d-x2x7k".into(),
    )];
    let text = render_info(&info);
    assert!(
        text.contains("# TYPE tracer_iface_pod_info gauge\n"),
        "{text}"
    );
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("tracer_iface_pod_info{"))
        .collect();
    assert_eq!(
        series,
        [
            r#"tracer_iface_pod_info{node="worker-1",iface="veth8445924e",namespace="kube-system",pod="coredns-7db6d8ff4d-x2x7k"} 1"#
        ]
    );
}

#[test]
fn buckets_are_cumulative_and_end_at_the_count() {
    let info = info();
    let entries = [Entry::eth0_ingress(
        "other",
        false,
        15,
        9000,
        [1, 2, 3, 0, 4, 0, 0, 5],
    )];
    let text = render(&Scrape {
        info: &info,
        entries: &entries,
        peers: &[],
        addresses: &[],
        drops: None,
        findings: &[],
    });
    let buckets: Vec<(String, u64)> = text
        .lines()
        .filter(|l| l.starts_with("tracer_packet_size_bytes_bucket"))
        .map(|l| {
            let le = l.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
            let v = l.rsplit(' ').next().unwrap().parse().unwrap();
            (le.to_string(), v)
        })
        .collect();
    let expected: Vec<(String, u64)> = [
        ("64", 1),
        ("128", 3),
        ("256", 6),
        ("512", 6),
        ("1024", 10),
        ("1518", 10),
        ("9018", 10),
        ("+Inf", 15),
    ]
    .into_iter()
    .map(|(le, v)| (le.to_string(), v))
    .collect();
    assert_eq!(buckets, expected);
}

#[test]
fn buckets_read_ahead_of_the_count_never_pass_it() {
    let info = info();
    // Two packets were counted while the value was copied: after its count (10), before its
    // buckets (12).
    let entries = [Entry::eth0_ingress(
        "other",
        false,
        10,
        640,
        [12, 0, 0, 0, 0, 0, 0, 0],
    )];
    let text = render(&Scrape {
        info: &info,
        entries: &entries,
        peers: &[],
        addresses: &[],
        drops: None,
        findings: &[],
    });
    assert!(text.contains(r#"le="64"} 10"#), "{text}");
    assert!(text.contains(r#"le="+Inf"} 10"#), "{text}");
}

#[test]
fn promtool_finds_nothing_to_complain_about() {
    let mut info = info();
    info.ifaces.push(("vxlan.calico".into(), 7, "tc".into()));
    let entries = [
        Entry::eth0_ingress("kube-apiserver", false, 3, 264, [2, 1, 0, 0, 0, 0, 0, 0]),
        Entry::eth0_ingress("calico-vxlan", false, 4, 6000, [0, 0, 0, 0, 0, 4, 0, 0]),
        Entry::eth0_ingress("kube-apiserver", true, 4, 5800, [0; SIZE_BUCKETS]),
    ];
    let drops = drops();
    let findings = [finding(Severity::Warning)];
    let peers = [peer(Direction::Egress, 7, 700)];
    let addresses = [ip("10.0.0.1")];
    for drops in [Some(&drops), None] {
        let text = render(&Scrape {
            info: &info,
            entries: &entries,
            peers: &peers,
            addresses: &addresses,
            drops,
            findings: &findings,
        });
        let mut child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run promtool (Debian package prometheus; cargo xtask setup installs it)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.is_empty(),
            "promtool check metrics ({}): {said}\n{text}",
            out.status
        );
    }
}
