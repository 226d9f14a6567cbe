use std::{
    io::Write,
    process::{Command, Stdio},
};

use tracer_common::counters::SIZE_BUCKETS;

use super::*;
use crate::{events::DropTotal, probes::DropStats};

fn info() -> RunInfo {
    RunInfo {
        version: "0.1.0".into(),
        kernel: "6.18.0-test".into(),
        ifaces: vec![("eth0".into(), 2, "xdp".into())],
    }
}

fn finding(severity: Severity) -> Finding {
    Finding::new("test", severity, "t", "e")
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
    let text = render(&Scrape {
        info: &info,
        entries: &entries,
        drops: Some(&drops),
        findings: &findings,
    });
    let expected = r#"# HELP tracer_build_info The tracer version and the kernel it runs on; always 1.
# TYPE tracer_build_info gauge
tracer_build_info{version="0.1.0",kernel="6.18.0-test"} 1
# HELP tracer_interface_info An interface the tracer watches, with its ingress hook; always 1.
# TYPE tracer_interface_info gauge
tracer_interface_info{iface="eth0",ifindex="2",hook="xdp"} 1
# HELP tracer_packets_total Packets per interface, direction and traffic class.
# TYPE tracer_packets_total counter
tracer_packets_total{iface="eth0",direction="ingress",class="kube-apiserver"} 3
# HELP tracer_bytes_total Bytes (whole frames) per interface, direction and traffic class.
# TYPE tracer_bytes_total counter
tracer_bytes_total{iface="eth0",direction="ingress",class="kube-apiserver"} 264
# HELP tracer_overlay_packets_total Overlay (VXLAN) packets per interface and direction, by the class of the packet they carry.
# TYPE tracer_overlay_packets_total counter
tracer_overlay_packets_total{iface="eth0",direction="ingress",class="etcd"} 5
# HELP tracer_overlay_bytes_total Bytes of overlay (VXLAN) packets per interface and direction, by the class of the packet they carry.
# TYPE tracer_overlay_bytes_total counter
tracer_overlay_bytes_total{iface="eth0",direction="ingress",class="etcd"} 500
# HELP tracer_packet_size_bytes Sizes of the packets (whole frames) per interface, direction and traffic class.
# TYPE tracer_packet_size_bytes histogram
tracer_packet_size_bytes_bucket{iface="eth0",direction="ingress",class="kube-apiserver",le="64"} 2
tracer_packet_size_bytes_bucket{iface="eth0",direction="ingress",class="kube-apiserver",le="128"} 3
tracer_packet_size_bytes_bucket{iface="eth0",direction="ingress",class="kube-apiserver",le="256"} 3
tracer_packet_size_bytes_bucket{iface="eth0",direction="ingress",class="kube-apiserver",le="512"} 3
tracer_packet_size_bytes_bucket{iface="eth0",direction="ingress",class="kube-apiserver",le="1024"} 3
tracer_packet_size_bytes_bucket{iface="eth0",direction="ingress",class="kube-apiserver",le="1518"} 3
tracer_packet_size_bytes_bucket{iface="eth0",direction="ingress",class="kube-apiserver",le="9018"} 3
tracer_packet_size_bytes_bucket{iface="eth0",direction="ingress",class="kube-apiserver",le="+Inf"} 3
tracer_packet_size_bytes_sum{iface="eth0",direction="ingress",class="kube-apiserver"} 264
tracer_packet_size_bytes_count{iface="eth0",direction="ingress",class="kube-apiserver"} 3
# HELP tracer_drops_total Packets the kernel dropped, per interface, traffic class and kernel drop reason; housekeeping is true for sockets and queues tidying up, not traffic lost.
# TYPE tracer_drops_total counter
tracer_drops_total{iface="eth0",class="calico-vxlan",reason="NETFILTER_DROP",housekeeping="false"} 12
tracer_drops_total{iface="-",class="other",reason="QUEUE_PURGE",housekeeping="true"} 4
# HELP tracer_drop_events_lost_total Sampled drop events the kernel could not hand over (ring buffer full); their drops are counted.
# TYPE tracer_drop_events_lost_total counter
tracer_drop_events_lost_total 1
# HELP tracer_drop_events_suppressed_total Drop events held back by the sampling budgets; their drops are counted.
# TYPE tracer_drop_events_suppressed_total counter
tracer_drop_events_suppressed_total 2
# HELP tracer_drops_uncounted_total Drops the drop counter table had no room for.
# TYPE tracer_drops_uncounted_total counter
tracer_drops_uncounted_total 0
# HELP tracer_drops_untracked_total Drops counted in tracer_drops_total whose flow the flow table had no room for.
# TYPE tracer_drops_untracked_total counter
tracer_drops_untracked_total 5
# HELP tracer_findings Findings about the node by severity.
# TYPE tracer_findings gauge
tracer_findings{severity="error"} 1
tracer_findings{severity="warning"} 0
tracer_findings{severity="info"} 1
"#;
    assert_eq!(text, expected);
}

#[test]
fn without_drop_capture_the_drop_families_are_absent() {
    let info = info();
    let text = render(&Scrape {
        info: &info,
        entries: &[],
        drops: None,
        findings: &[],
    });
    assert!(!text.contains("tracer_drop"), "{text}");
    assert!(text.contains("tracer_findings{severity=\"warning\"} 0\n"));
}

#[test]
fn label_values_are_escaped() {
    let mut info = info();
    info.ifaces = vec![("we\\ird\"if\nx".into(), 9, "tc".into())];
    let text = render(&Scrape {
        info: &info,
        entries: &[],
        drops: None,
        findings: &[],
    });
    assert!(
        text.contains(r#"tracer_interface_info{iface="we\\ird\"if\nx",ifindex="9",hook="tc"} 1"#),
        "{text}"
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
    for drops in [Some(&drops), None] {
        let text = render(&Scrape {
            info: &info,
            entries: &entries,
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
