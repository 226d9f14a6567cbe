//! The real kernel programs, loaded and verified by the kernel, fed hand-built and generated
//! frames through BPF_PROG_TEST_RUN: every frame passes, and lands in exactly one counter.

use std::{collections::HashMap, net::IpAddr};

use bytes::{BufMut, Bytes, BytesMut};
use rand::{Rng, SeedableRng, rngs::StdRng};
use tracer::{
    model::catalog::{Catalog, Protocol, class_table},
    probes::{ClassTable, Datapath, Program},
};
use tracer_lab::synth::{Eth, L4, VRRP_GROUP, frame, multicast_mac, vxlan_payload};

use crate::harness::NetNs;

/// What each program returns to let the packet go on: TC_ACT_UNSPEC (TCX_NEXT) and XDP_PASS.
pub(crate) fn passes(program: Program) -> u32 {
    match program {
        Program::XdpIngress => 2,
        _ => u32::MAX,
    }
}

/// BPF_PROG_TEST_RUN builds an skb for tc programs only when the frame holds a whole IP header
/// where its ethertype says one starts (checked on 6.18: EINVAL otherwise). Such frames can
/// reach tc only from a broken driver; the test feeds them to the XDP program instead.
fn skb_test_run_accepts(f: &[u8]) -> bool {
    match u16::from_be_bytes([f[12], f[13]]) {
        0x0800 => f.len() >= 14 + 20,
        0x86dd => f.len() >= 14 + 40,
        _ => true,
    }
}

/// Runs `f` through `program`, or through XDP when the kernel cannot make an skb of it.
pub(crate) fn run(dp: &Datapath, program: Program, f: &[u8]) -> (Program, u32) {
    let program = if program != Program::XdpIngress && !skb_test_run_accepts(f) {
        Program::XdpIngress
    } else {
        program
    };
    let result = dp
        .test_run(program, f, 1)
        .unwrap_or_else(|e| panic!("{} on {f:02x?}: {e}", program.name()));
    (program, result.return_value)
}

fn direction(program: Program) -> &'static str {
    match program {
        Program::TcEgress => "egress",
        _ => "ingress",
    }
}

pub(crate) fn generic() -> (Catalog, ClassTable) {
    let catalog = Catalog::builtin("generic").unwrap();
    let classes = class_table(&catalog.components).unwrap();
    (catalog, classes)
}

/// Test runs deliver packets on loopback: watch `lo` (index 1 in a fresh namespace).
pub(crate) fn load(classes: &ClassTable) -> Datapath {
    Datapath::load_loopback(classes).expect("load the datapath")
}

/// Packets per (direction, class name).
fn counts(dp: &Datapath, classes: &ClassTable) -> HashMap<(&'static str, String), u64> {
    dp.counters()
        .unwrap()
        .into_iter()
        .map(|r| {
            let dir = if r.direction == 0 {
                "ingress"
            } else {
                "egress"
            };
            ((dir, classes.name(r.class).to_string()), r.packets)
        })
        .collect()
}

pub(crate) fn eth() -> Eth {
    Eth::new([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
}

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(crate) fn v4(l4: &L4) -> Bytes {
    frame(&eth(), ip("10.0.0.1"), ip("10.0.0.2"), l4)
}

/// An IPv4 frame with `n` bytes of NOP options.
fn with_ip_options(f: &[u8], n: usize) -> Bytes {
    let mut b = BytesMut::from(&f[..34]);
    b.put_bytes(1, n);
    b.put_slice(&f[34..]);
    b[14] = 0x40 | ((20 + n) / 4) as u8;
    let total = (b.len() - 14) as u16;
    b[16..18].copy_from_slice(&total.to_be_bytes());
    b.freeze()
}

/// An IPv6 frame whose UDP header follows a hop-by-hop and a destination-options header.
fn with_ipv6_extensions(dport: u16) -> Bytes {
    let f = frame(
        &eth(),
        ip("fd00::1"),
        ip("fd00::2"),
        &L4::udp(33000, dport, b"payload"),
    );
    let mut b = BytesMut::from(&f[..54]);
    b[20] = 0; // next header: hop-by-hop
    b.put_slice(&[60, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop -> destination options, 8 bytes
    b.put_slice(&[17, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // -> UDP, 16 bytes
    b.put_slice(&f[54..]);
    let payload = (b.len() - 54) as u16;
    b[18..20].copy_from_slice(&payload.to_be_bytes());
    b.freeze()
}

fn arp() -> Bytes {
    let mut b = BytesMut::new();
    b.put_slice(&[0xff; 6]);
    b.put_slice(&[2, 0, 0, 0, 0, 1]);
    b.put_u16(0x0806);
    b.put_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    b.put_bytes(0, 20);
    b.freeze()
}

/// Hand-built frames and the class each must count as.
#[allow(
    clippy::too_many_lines,
    reason = "one table of frames, each named, next to the class it must count as"
)]
fn cases(catalog: &Catalog) -> Vec<(String, Bytes, String)> {
    let mut cases: Vec<(String, Bytes, String)> = vec![
        (
            "ipv4 SYN to 6443".into(),
            v4(&L4::syn(40000, 6443)),
            "kube-apiserver".into(),
        ),
        (
            "ipv4 reply from 6443".into(),
            v4(&L4::Tcp {
                sport: 6443,
                dport: 40000,
                flags: 0x12,
                payload: Bytes::new(),
            }),
            "kube-apiserver".into(),
        ),
        (
            "ipv6 SYN to 6443".into(),
            frame(&eth(), ip("fd00::1"), ip("fd00::2"), &L4::syn(40000, 6443)),
            "kube-apiserver".into(),
        ),
        (
            "ipv4 options".into(),
            with_ip_options(&v4(&L4::syn(40000, 6443)), 8),
            "kube-apiserver".into(),
        ),
        (
            "ipv6 extension headers".into(),
            with_ipv6_extensions(4789),
            "calico-vxlan".into(),
        ),
        (
            "802.1Q UDP 4789".into(),
            frame(
                &eth().with_vlans(&[100]),
                ip("10.0.0.1"),
                ip("10.0.0.2"),
                &L4::udp(1234, 4789, b"x"),
            ),
            "calico-vxlan".into(),
        ),
        (
            "QinQ UDP 8472".into(),
            frame(
                &eth().with_vlans(&[100, 200]),
                ip("10.0.0.1"),
                ip("10.0.0.2"),
                &L4::udp(1234, 8472, b"x"),
            ),
            "flannel-vxlan".into(),
        ),
        (
            "VRRP".into(),
            frame(
                &Eth::new([2, 0, 0, 0, 0, 1], multicast_mac(VRRP_GROUP)),
                ip("10.0.0.1"),
                VRRP_GROUP.into(),
                &L4::Vrrp {
                    vrid: 1,
                    priority: 100,
                    addr: "10.0.0.100".parse().unwrap(),
                },
            ),
            "keepalived-vrrp".into(),
        ),
        (
            "VXLAN with an inner flow".into(),
            v4(&L4::Udp {
                sport: 50000,
                dport: 4789,
                payload: vxlan_payload(
                    4096,
                    &frame(
                        &eth(),
                        ip("10.244.1.2"),
                        ip("10.244.2.3"),
                        &L4::syn(5555, 10250),
                    ),
                ),
            }),
            "calico-vxlan".into(),
        ),
        (
            "ICMP echo".into(),
            v4(&L4::Echo { id: 1, seq: 1 }),
            "other".into(),
        ),
        ("ARP".into(), arp(), "other".into()),
        (
            "TCP to an unknown port".into(),
            v4(&L4::syn(40000, 8080)),
            "other".into(),
        ),
        (
            "TCP header cut short".into(),
            v4(&L4::syn(40000, 6443)).slice(..40),
            "malformed".into(),
        ),
        (
            "IPv4 header cut short".into(),
            v4(&L4::syn(40000, 6443)).slice(..25),
            "malformed".into(),
        ),
        (
            "VLAN tag cut short".into(),
            eth().with_vlans(&[5]).clone_frame_head(),
            "malformed".into(),
        ),
    ];
    let mut bad_version = BytesMut::from(&v4(&L4::syn(1, 6443))[..]);
    bad_version[14] = 0x55;
    cases.push((
        "IP version 5".into(),
        bad_version.freeze(),
        "malformed".into(),
    ));
    let mut fragment = BytesMut::from(&v4(&L4::udp(1, 4789, &[0; 16]))[..]);
    fragment[20..22].copy_from_slice(&0x0010u16.to_be_bytes());
    cases.push((
        "later IPv4 fragment".into(),
        fragment.freeze(),
        "other".into(),
    ));
    // One packet to the first port of every component of the generic catalog.
    for c in &catalog.components {
        for proto in &c.protocols {
            let f = match proto {
                Protocol::Tcp => v4(&L4::syn(45000, c.ports[0].lo)),
                Protocol::Udp => v4(&L4::udp(45000, c.ports[0].lo, b"x")),
                _ => continue,
            };
            cases.push((
                format!("{} {}/{proto}", c.name, c.ports[0].lo),
                f,
                c.name.clone(),
            ));
        }
    }
    cases
}

trait FrameHead {
    fn clone_frame_head(&self) -> Bytes;
}

impl FrameHead for Eth {
    /// Ethernet header whose VLAN tag ends after two of its four bytes.
    fn clone_frame_head(&self) -> Bytes {
        let mut b = BytesMut::new();
        b.put_slice(&self.dst);
        b.put_slice(&self.src);
        b.put_u16(0x8100);
        b.put_u16(self.vlans[0]);
        b.freeze()
    }
}

#[test]
fn each_program_counts_each_hand_built_frame_in_its_class() {
    let ns = NetNs::new("run");
    ns.enter(|| {
        let (catalog, classes) = generic();
        let dp = load(&classes);
        let mut expected: HashMap<(&'static str, String), u64> = HashMap::new();
        for (what, f, class) in cases(&catalog) {
            for program in Program::ALL {
                let (program, ret) = run(&dp, program, &f);
                assert_eq!(ret, passes(program), "{what} through {}", program.name());
                *expected
                    .entry((direction(program), class.clone()))
                    .or_default() += 1;
                assert_eq!(
                    counts(&dp, &classes),
                    expected,
                    "{what} through {}",
                    program.name()
                );
            }
        }
    });
}

#[test]
fn bytes_are_whole_frames() {
    let ns = NetNs::new("run");
    ns.enter(|| {
        let (_, classes) = generic();
        let dp = load(&classes);
        let f = v4(&L4::udp(1, 8472, &[0; 100]));
        for program in Program::ALL {
            dp.test_run(program, &f, 1).unwrap();
        }
        let flannel = classes.id("flannel-vxlan").unwrap();
        let rows: Vec<_> = dp
            .counters()
            .unwrap()
            .into_iter()
            .filter(|r| r.class == flannel)
            .collect();
        let bytes: u64 = rows.iter().map(|r| r.bytes).sum();
        assert_eq!(bytes, 3 * f.len() as u64);
    });
}

/// Valid frames to mutate into the random ones.
fn templates() -> Vec<Bytes> {
    vec![
        v4(&L4::syn(40000, 6443)),
        v4(&L4::udp(50000, 4789, &[0; 64])),
        frame(
            &eth(),
            ip("fd00::1"),
            ip("fd00::2"),
            &L4::udp(50000, 8472, &[0; 32]),
        ),
        frame(
            &eth().with_vlans(&[7, 8]),
            ip("10.0.0.1"),
            ip("10.0.0.2"),
            &L4::syn(1, 2379),
        ),
        with_ipv6_extensions(4789),
        with_ip_options(&v4(&L4::syn(40000, 10250)), 40),
        v4(&L4::Echo { id: 9, seq: 9 }),
        arp(),
    ]
}

#[test]
fn ten_thousand_random_and_truncated_frames_all_pass_and_add_up() {
    let ns = NetNs::new("run");
    ns.enter(|| {
        let (_, classes) = generic();
        let dp = load(&classes);
        let templates = templates();
        let mut rng = StdRng::seed_from_u64(0x7ace_7ace);
        let n = 10_000;
        for i in 0..n {
            let f: Vec<u8> = match i % 4 {
                // Noise of any length the test-run interface takes (at least an Ethernet header).
                0 => (0..rng.random_range(14..=300))
                    .map(|_| rng.random())
                    .collect(),
                // A valid frame cut anywhere after its Ethernet header.
                1 => {
                    let t = &templates[rng.random_range(0..templates.len())];
                    t[..rng.random_range(14..t.len())].to_vec()
                }
                // A valid frame with a few bytes changed.
                2 => {
                    let mut t = templates[rng.random_range(0..templates.len())].to_vec();
                    for _ in 0..rng.random_range(1..=4) {
                        let at = rng.random_range(12..t.len());
                        t[at] = rng.random();
                    }
                    t
                }
                _ => templates[rng.random_range(0..templates.len())].to_vec(),
            };
            let (program, ret) = run(&dp, Program::ALL[i % 3], &f);
            assert_eq!(
                ret,
                passes(program),
                "frame {i} ({f:02x?}) through {}",
                program.name()
            );
        }
        let counts = counts(&dp, &classes);
        let total: u64 = counts.values().sum();
        assert_eq!(total, n as u64, "{counts:?}");
        let malformed: u64 = counts
            .iter()
            .filter(|((_, c), _)| c == "malformed")
            .map(|(_, n)| n)
            .sum();
        let other: u64 = counts
            .iter()
            .filter(|((_, c), _)| c == "other")
            .map(|(_, n)| n)
            .sum();
        assert!(malformed > 1000 && other > 1000, "{counts:?}");
    });
}

/// A pod's SYN to 6443 (10.244.1.2 to 10.244.2.3) carried in VXLAN (VNI 4096) from 10.0.0.1
/// to 10.0.0.2, as Calico's overlay sends it between two nodes.
pub(crate) fn pod_syn_in_vxlan() -> Bytes {
    let inner = frame(
        &eth(),
        ip("10.244.1.2"),
        ip("10.244.2.3"),
        &L4::syn(5555, 6443),
    );
    v4(&L4::Udp {
        sport: 50000,
        dport: 4789,
        payload: vxlan_payload(4096, &inner),
    })
}

#[test]
fn overlay_packets_are_counted_by_their_inner_class_too() {
    let ns = NetNs::new("run");
    ns.enter(|| {
        let (_, classes) = generic();
        let dp = load(&classes);
        let vx = pod_syn_in_vxlan();
        // An inner frame the parser's shortcut does not read (a VLAN tag): the second stage's.
        let tagged = frame(
            &eth().with_vlans(&[100]),
            ip("10.244.1.2"),
            ip("10.244.2.3"),
            &L4::syn(5555, 10250),
        );
        let vx_tagged = v4(&L4::Udp {
            sport: 50000,
            dport: 4789,
            payload: vxlan_payload(4096, &tagged),
        });
        // Not VXLAN (no I flag): counted as calico-vxlan, nothing inner.
        let not_vx = v4(&L4::udp(50000, 4789, &[0; 40]));
        for program in Program::ALL {
            for f in [&vx, &vx_tagged] {
                let (program, ret) = run(&dp, program, f);
                assert_eq!(
                    ret,
                    passes(program),
                    "the second stage passes the packet too"
                );
            }
            run(&dp, program, &not_vx);
        }
        let inner_rows = dp.inner_counters().unwrap();
        let inner = |name: &str| -> u64 {
            let class = classes.id(name).unwrap();
            inner_rows
                .iter()
                .filter(|r| r.class == class)
                .map(|r| r.packets)
                .sum()
        };
        assert_eq!(inner("kube-apiserver"), 3, "{inner_rows:?}");
        assert_eq!(inner("kubelet"), 3, "{inner_rows:?}");
        assert_eq!(
            inner_rows.iter().map(|r| r.packets).sum::<u64>(),
            6,
            "{inner_rows:?}"
        );
        // The outer counts are unchanged by the second stage.
        let vxlan = classes.id("calico-vxlan").unwrap();
        let outer: u64 = dp
            .counters()
            .unwrap()
            .iter()
            .filter(|r| r.class == vxlan)
            .map(|r| r.packets)
            .sum();
        assert_eq!(outer, 9);
    });
}

#[test]
fn packet_sizes_land_in_their_buckets() {
    let ns = NetNs::new("run");
    ns.enter(|| {
        let (_, classes) = generic();
        let dp = load(&classes);
        // 14 + 20 + 8 + payload bytes: 60, 200 and 1400-byte frames.
        for payload in [18usize, 158, 1358] {
            dp.test_run(
                Program::XdpIngress,
                &v4(&L4::udp(1, 8472, &vec![0; payload])),
                1,
            )
            .unwrap();
        }
        let flannel = classes.id("flannel-vxlan").unwrap();
        let rows = dp.counters().unwrap();
        let row = rows.iter().find(|r| r.class == flannel).expect("a counter");
        // Buckets: <=64, <=128, <=256, <=512, <=1024, <=1518, <=9018, larger.
        assert_eq!(row.sizes, [1, 0, 1, 0, 0, 1, 0, 0]);
    });
}
