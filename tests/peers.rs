//! Node-to-node traffic per peer: the kernel programs under BPF_PROG_TEST_RUN count each
//! overlay and BGP packet for its far end; and end to end, `tracer watch --metrics` in namespace A scraped
//! by a real Prometheus while B sends it VXLAN datagrams and BGP SYNs and A sends B VXLAN
//! datagrams; every series carries the node's name, the node's addresses are published, and
//! each peer's packets, bytes and drops come back exact.

use std::{
    net::UdpSocket,
    time::{Duration, Instant},
};

use tracer::{probes::Program, schema::WatchLine};
use tracer_lab::synth::{L4, frame};

use crate::{
    datapath::{eth, generic, ip, load, passes, pod_syn_in_vxlan, run, v4},
    harness::{
        NetNs, Tracer,
        pair::{A, B, bgp_syns, pair, udp_to},
        send_frames,
    },
    metrics::{METRICS, Prometheus, unix_now},
};

#[test]
#[allow(
    clippy::float_cmp,
    reason = "whole packet and byte counts, which Prometheus serves as floats that must be exact"
)]
fn prometheus_sees_each_peer_of_the_node() {
    let (a, b) = pair();
    let mut tracer = Tracer::watch_env(
        &a,
        &[("NODE_NAME", "worker-a")],
        &[
            "--iface",
            "va",
            "--profile",
            "generic",
            "--interval",
            "0.5",
            "--metrics",
            METRICS,
        ],
    );
    tracer.started();
    let prometheus = Prometheus::start(&a);

    // In: 300 VXLAN datagrams (flannel-vxlan, 8472/udp) nothing in A listens for, and 20 BGP
    // SYNs A resets. Out: 100 VXLAN datagrams from A's own socket to B.
    let mut frames = udp_to(300, 42000, 8472);
    frames.extend(bgp_syns(20, 33000));
    send_frames(&b, B.name, &frames);
    a.enter(|| {
        let socket = UdpSocket::bind((A.ip, 0)).unwrap();
        for _ in 0..100 {
            socket.send_to(&[0u8; 50], (B.ip, 8472)).unwrap();
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    prometheus.scraped_after(&a, unix_now());

    let peer = |direction: &str, class: &str, what: &str| {
        prometheus.value(
            &a,
            &format!(
                r#"tracer_overlay_peer_{what}_total{{node="worker-a",iface="va",direction="{direction}",peer="{}",class="{class}"}}"#,
                B.ip
            ),
        )
    };
    assert_eq!(peer("ingress", "flannel-vxlan", "packets"), 300.0);
    // 14 Ethernet + 20 IPv4 + 8 UDP + 50 payload.
    assert_eq!(peer("ingress", "flannel-vxlan", "bytes"), 300.0 * 92.0);
    assert_eq!(peer("egress", "flannel-vxlan", "packets"), 100.0);
    assert_eq!(peer("egress", "flannel-vxlan", "bytes"), 100.0 * 92.0);
    assert_eq!(peer("ingress", "kube-router-bgp", "packets"), 20.0);
    assert_eq!(peer("egress", "kube-router-bgp", "packets"), 20.0);
    // Those four and nothing else: no other class, and no peer but B.
    assert_eq!(
        prometheus.value(&a, "count(tracer_overlay_peer_packets_total)"),
        4.0
    );

    // The drops of each peer's traffic, exact, by reason.
    let drops = |class: &str| {
        prometheus.value(
            &a,
            &format!(
                r#"tracer_overlay_peer_drops_total{{node="worker-a",peer="{}",class="{class}",reason="NO_SOCKET"}}"#,
                B.ip
            ),
        )
    };
    assert_eq!(drops("flannel-vxlan"), 300.0);
    assert_eq!(drops("kube-router-bgp"), 20.0);

    // The node: its address, and its name on every series.
    assert_eq!(
        prometheus.value(
            &a,
            &format!(
                r#"tracer_node_address_info{{node="worker-a",address="{}"}}"#,
                A.ip
            )
        ),
        1.0
    );
    let unnamed = prometheus.query(&a, r#"{__name__=~"tracer_.+",node!="worker-a"}"#);
    assert!(unnamed.is_empty(), "series without the node: {unnamed:?}");
    // One series per finding, each naming it.
    let findings = prometheus.query(&a, "tracer_findings");
    assert!(!findings.is_empty(), "a fresh namespace has findings");
    for (labels, value) in &findings {
        assert_eq!(*value, 1.0, "{labels}");
        assert!(
            labels["id"].as_str().is_some_and(|id| !id.is_empty()),
            "{labels}"
        );
        assert!(labels["severity"].is_string(), "{labels}");
    }
    tracer.stop();
    drop(prometheus);
}

#[test]
fn each_program_counts_overlay_and_bgp_packets_for_their_far_end() {
    let ns = NetNs::new("peers-run");
    ns.enter(|| {
        let (_, classes) = generic();
        let dp = load(&classes);
        if !dp.counts_peers() {
            // Kernels whose verifier cannot take it (5.10, 6.1) count without it, and say so.
            require_peers_below_6_2();
            assert!(dp.peer_counters().unwrap().is_empty());
            return;
        }
        // 10.0.0.1 -> 10.0.0.2: VXLAN, BGP, and kube-apiserver, which is not between nodes.
        let vx = pod_syn_in_vxlan();
        let bgp = v4(&L4::syn(40000, 179));
        let api = v4(&L4::syn(40000, 6443));
        let vx6 = frame(
            &eth(),
            ip("fd00::1"),
            ip("fd00::2"),
            &L4::udp(50000, 4789, &[0; 40]),
        );
        for program in Program::ALL {
            for f in [&vx, &bgp, &api, &vx6] {
                let (program, ret) = run(&dp, program, f);
                assert_eq!(ret, passes(program));
            }
        }
        let mut rows: Vec<(String, String, String, u64)> = dp
            .peer_counters()
            .unwrap()
            .into_iter()
            .map(|r| {
                let dir = if r.direction == 0 {
                    "ingress"
                } else {
                    "egress"
                };
                (
                    dir.to_string(),
                    r.peer.to_string(),
                    classes.name(r.class).to_string(),
                    r.packets,
                )
            })
            .collect();
        rows.sort();
        let row = |d: &str, p: &str, c: &str, n| (d.to_string(), p.to_string(), c.to_string(), n);
        // Ingress (tc and XDP) counts the source, egress the destination.
        assert_eq!(
            rows,
            [
                row("egress", "10.0.0.2", "calico-vxlan", 1),
                row("egress", "10.0.0.2", "kube-router-bgp", 1),
                row("egress", "fd00::2", "calico-vxlan", 1),
                row("ingress", "10.0.0.1", "calico-vxlan", 2),
                row("ingress", "10.0.0.1", "kube-router-bgp", 2),
                row("ingress", "fd00::1", "calico-vxlan", 2),
            ]
        );
    });
}

/// Fails on a kernel where the loader tries per-peer counting (6.2 on): only the verifiers of
/// 5.10 and 6.1 are known to refuse the tc program with it, and the loader's fallback to
/// counting without it must not hide a change that takes a newer verifier past its limit.
fn require_peers_below_6_2() {
    let kernel = tracer::probes::features::get();
    eprintln!(
        "kernel {}: the datapath counts without per-peer counting",
        kernel.release
    );
    assert!(
        kernel.skips_peer_counting(),
        "kernel {}: the verifier refused the programs with per-peer counting",
        kernel.release
    );
}

/// More peers than a CPU's part of the per-peer cache holds (256), all counted on the CPU of
/// each test run: the first to come claim cache entries, the others find theirs taken and go
/// to the hash table, and some find theirs claimed by another peer after their first packet.
/// Each must come back with exactly its own packets, whichever place counted them.
#[test]
fn more_peers_than_the_cache_holds_are_each_counted_exactly() {
    const PEERS: u16 = 1000;
    const ROUNDS: u64 = 3;
    let ns = NetNs::new("peers-many");
    ns.enter(|| {
        let (_, classes) = generic();
        let dp = load(&classes);
        if !dp.counts_peers() {
            require_peers_below_6_2();
            return;
        }
        let frames: Vec<_> = (0..PEERS)
            .map(|i| {
                let [hi, lo] = i.to_be_bytes();
                frame(
                    &eth(),
                    ip(&format!("10.1.{hi}.{lo}")),
                    ip("10.0.0.2"),
                    &L4::udp(50000, 4789, &[0; 40]),
                )
            })
            .collect();
        for _ in 0..ROUNDS {
            for f in &frames {
                let (program, ret) = run(&dp, Program::TcIngress, f);
                assert_eq!(ret, passes(program));
            }
        }
        let rows = dp.peer_counters().unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for r in &rows {
            assert_eq!(
                (r.direction, classes.name(r.class), r.packets),
                (0, "calico-vxlan", ROUNDS),
                "{r:?}"
            );
            assert_eq!(r.bytes, ROUNDS * frames[0].len() as u64, "{r:?}");
            assert!(seen.insert(r.peer), "{} twice", r.peer);
        }
        assert_eq!(seen.len(), usize::from(PEERS));
    });
}

/// `n` datagrams of 50 bytes from A to B's port 8472 (flannel-vxlan), sent from A's own socket.
fn vxlan_to_b(a: &NetNs, n: usize) {
    a.enter(|| {
        let socket = UdpSocket::bind((A.ip, 0)).unwrap();
        for _ in 0..n {
            socket.send_to(&[0u8; 50], (B.ip, 8472)).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    });
}

#[test]
fn watch_names_the_peer_whose_traffic_does_not_come_back() {
    let (a, b) = pair();
    let mut tracer = Tracer::watch(
        &a,
        &[
            "--iface",
            "va",
            "--profile",
            "generic",
            "--no-diagnose",
            "--interval",
            "0.5",
        ],
    );
    tracer.started();

    // B answers each datagram (an echo on 8472): traffic to B comes back.
    let echo = tracer_netns::command_in(
        &b.name,
        &[
            "python3",
            "-c",
            "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',8472))\nwhile True:\n d,a=s.recvfrom(2048)\n s.sendto(d,a)",
        ],
    )
    .spawn()
    .expect("python3 echo in B");
    let mut echo = Guard(echo);
    let (sent, echoed) = echoed_by_b(&a);
    let answered = tracer.wait_for("an answered peer line for B", |l| match l {
        WatchLine::Peer(p) if p.peer == std::net::IpAddr::from(B.ip) && p.in_packets == echoed => {
            Some(p.clone())
        }
        _ => None,
    });
    assert!(answered.answered, "{answered:?}");
    let _ = echo.0.kill();

    // Now nothing answers: the next datagrams go out and none comes back.
    let _ = echo.0.wait();
    vxlan_to_b(&a, 50);
    let silent = tracer.wait_for("an unanswered peer line for B", |l| match l {
        WatchLine::Peer(p) if p.peer == std::net::IpAddr::from(B.ip) && !p.answered => {
            Some(p.clone())
        }
        _ => None,
    });
    assert_eq!(silent.class, "flannel-vxlan");
    assert!(silent.new_out >= 3 && silent.new_in == 0, "{silent:?}");

    let lines = tracer.stop();
    let summary = crate::harness::tracer::summary(&lines);
    let b_peer = summary
        .peers
        .iter()
        .find(|p| p.peer == std::net::IpAddr::from(B.ip))
        .expect("B in the summary's peers");
    assert_eq!((b_peer.out_packets, b_peer.in_packets), (sent + 50, echoed));
}

/// Datagrams from A to B's echo on 8472 until it answers (it may still be starting), then 50
/// more, each waited for: how many went out and how many came back.
fn echoed_by_b(a: &NetNs) -> (u64, u64) {
    a.enter(|| {
        let socket = UdpSocket::bind((A.ip, 0)).unwrap();
        socket.connect((B.ip, 8472)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let (mut sent, mut echoed) = (0u64, 0u64);
        let mut buf = [0u8; 64];
        let deadline = Instant::now() + Duration::from_secs(30);
        while echoed == 0 {
            assert!(Instant::now() < deadline, "B's echo never answered");
            socket.send(&[0u8; 50]).unwrap();
            sent += 1;
            echoed += u64::from(socket.recv(&mut buf).is_ok());
        }
        for _ in 0..50 {
            socket.send(&[0u8; 50]).unwrap();
            sent += 1;
            echoed += u64::from(socket.recv(&mut buf).is_ok());
        }
        (sent, echoed)
    })
}

/// Kills a child process when dropped, also when the test panics.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
