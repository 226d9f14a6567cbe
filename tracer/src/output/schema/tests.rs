//! Every line type reads back as printed: serialize, deserialize, equal; and lines as the
//! tool printed them before the schema existed come out byte for byte the same.

use serde::{Serialize, de::DeserializeOwned};

use super::*;

/// Serializes, reads back, and checks both the value and the text survive.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let text = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(&back, value, "{text}");
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
}

/// Reads a line as printed, and prints it again unchanged.
fn same_bytes<T: Serialize + DeserializeOwned>(line: &str) -> T {
    let value: T = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    assert_eq!(serde_json::to_string(&value).unwrap(), line);
    value
}

fn flow(proto: &str, src: &str, dst: &str, sport: u16, dport: u16) -> Flow {
    Flow {
        proto: proto.into(),
        src: Some(src.parse().unwrap()),
        dst: Some(dst.parse().unwrap()),
        sport,
        dport,
    }
}

fn counters(class: &str, inner: bool) -> Counters {
    Counters {
        iface: "eth0".into(),
        direction: Direction::Ingress,
        class: class.into(),
        inner,
        packets: 1000,
        bytes: 66000,
    }
}

fn finding() -> Finding {
    Finding {
        id: "flow-rejected/calico-vxlan/eth0".into(),
        severity: Severity::Error,
        title: "calico-vxlan 4789/udp from a peer on eth0 is rejected".into(),
        explain: "The node's worker role needs this traffic.".into(),
        class: Some("calico-vxlan".into()),
        port: Some("4789/udp".into()),
        iface: Some("eth0".into()),
        zone: Some("public".into()),
        binding: Some("interface eth0".into()),
        element: Some("service k0s-worker of zone public lacks 4789/udp".into()),
        rule: Some(RuleInfo {
            backend: None,
            position: None,
            saved: None,
            family: "inet".into(),
            table: "firewalld".into(),
            chain: "filter_IN_public".into(),
            handle: 72,
            text: "reject with icmpx admin-prohibited".into(),
        }),
        fix: vec!["firewall-cmd --reload".into()],
        certainty: None,
        settle: Vec::new(),
    }
}

fn drop_line() -> DropLine {
    let f = finding();
    DropLine {
        iface: "eth0".into(),
        class: "calico-vxlan".into(),
        reason: Reason::named("NETFILTER_DROP"),
        flow: flow("udp", "192.168.1.12", "192.168.1.11", 51000, 4789),
        count: 1000,
        inner: Some(Inner {
            vni: 4096,
            class: "kube-apiserver".into(),
            flow: flow("tcp", "10.244.1.2", "10.244.2.3", 5555, 6443),
        }),
        function: Some("nft_do_chain+0x3e8".into()),
        explain: Reason::named("NETFILTER_DROP")
            .explain()
            .map(str::to_string),
        cause: Some(DropCause {
            rule: f.rule,
            zone: f.zone,
            binding: f.binding,
            element: f.element,
            fix: f.fix,
        }),
    }
}

#[test]
fn every_watch_line_reads_back_as_printed() {
    let stats = DropStats {
        events_lost: 1,
        events_suppressed: 2,
        uncounted: 3,
        untracked: 4,
    };
    let lines = [
        WatchLine::Start(Start {
            profile: "k0s-calico".into(),
            profile_reason: "given with --profile".into(),
            interval_secs: 0.5,
            interfaces: vec![Interface {
                iface: "eth0".into(),
                ifindex: 2,
                hook: "tc".into(),
            }],
            programs: [("tc_ingress".to_string(), 533)].into(),
            metrics: Some("127.0.0.1:40123".into()),
        }),
        WatchLine::Counters(counters("kube-apiserver", false)),
        WatchLine::Counters(counters("etcd", true)),
        WatchLine::Drop(drop_line()),
        WatchLine::Drop(DropLine {
            inner: None,
            function: None,
            explain: None,
            cause: None,
            flow: Flow {
                proto: "0".into(),
                src: None,
                dst: None,
                sport: 0,
                dport: 0,
            },
            ..drop_line()
        }),
        WatchLine::DropStats(stats),
        WatchLine::Finding(finding()),
        WatchLine::FindingResolved(finding()),
        WatchLine::Summary(Summary {
            profile: "generic".into(),
            duration_secs: 30.000_123_456,
            interfaces: Vec::new(),
            counters: vec![counters("kube-apiserver", false), counters("etcd", true)],
            drops: Some(vec![DropTotal {
                iface: "-".into(),
                class: "other".into(),
                reason: "QUEUE_PURGE".into(),
                count: 4,
            }]),
            drop_stats: Some(stats),
            peers: vec![],
        }),
        WatchLine::Summary(Summary {
            profile: "generic".into(),
            duration_secs: 1.0,
            interfaces: Vec::new(),
            counters: Vec::new(),
            drops: None,
            drop_stats: None,
            peers: vec![peer()],
        }),
        WatchLine::Iface(IfaceChange {
            change: IfaceChangeKind::Attached,
            iface: "veth1a2b".into(),
            ifindex: 41,
            hook: Some("tc".into()),
            peer_netns_id: Some(3),
            peer_ifindex: Some(2),
            pod_namespace: None,
            pod_name: None,
            reason: None,
        }),
        WatchLine::Iface(IfaceChange {
            change: IfaceChangeKind::Pod,
            iface: "veth1a2b".into(),
            ifindex: 41,
            hook: None,
            peer_netns_id: None,
            peer_ifindex: None,
            pod_namespace: Some("kube-system".into()),
            pod_name: Some("coredns-7db6d8ff4d-x2x7k".into()),
            reason: None,
        }),
        WatchLine::Peer(peer()),
    ];
    for line in &lines {
        round_trip(line);
    }
}

fn peer() -> PeerBalance {
    PeerBalance {
        peer: "10.0.0.2".parse().unwrap(),
        class: "calico-vxlan".into(),
        out_packets: 44,
        in_packets: 14,
        out_bytes: 4400,
        in_bytes: 1400,
        new_out: 5,
        new_in: 0,
        answered: false,
    }
}

#[test]
fn every_printed_line_has_its_time_and_node() {
    let stamped = Stamped {
        ts: "2026-12-06T10:00:00.123Z".into(),
        node: "worker-1".into(),
        line: WatchLine::Peer(peer()),
    };
    let text = serde_json::to_string(&stamped).unwrap();
    assert!(
        text.starts_with(r#"{"ts":"2026-12-06T10:00:00.123Z","node":"worker-1","type":"peer","#),
        "{text}"
    );
    assert_eq!(serde_json::from_str::<Stamped>(&text).unwrap(), stamped);
    // Readers of the plain line are not disturbed by the stamp.
    assert_eq!(
        serde_json::from_str::<WatchLine>(&text).unwrap(),
        stamped.line
    );
}

#[test]
fn watch_lines_keep_their_bytes() {
    let lines = [
        r#"{"type":"start","profile":"generic","profile_reason":"default: no k0s or k3s configuration or provider device found","interval_secs":1.0,"interfaces":[{"iface":"va","ifindex":3,"hook":"tc"}],"programs":{"kfree_skb":538,"tc_egress":534,"tc_ingress":533}}"#,
        r#"{"type":"counters","iface":"eth0","direction":"ingress","class":"kube-apiserver","packets":1000,"bytes":66000}"#,
        r#"{"type":"counters","iface":"eth0","direction":"egress","class":"etcd","inner":true,"packets":5,"bytes":500}"#,
        r#"{"type":"drop","iface":"eth0","class":"calico-vxlan","reason":"NETFILTER_DROP","housekeeping":false,"proto":"udp","src":"192.168.1.12","dst":"192.168.1.11","sport":51000,"dport":4789,"count":1000,"inner":{"vni":4096,"class":"kube-apiserver","proto":"tcp","src":"10.244.1.2","dst":"10.244.2.3","sport":5555,"dport":6443},"function":"nft_do_chain+0x3e8","explain":"a firewall rule dropped it (nftables or iptables, including rules firewalld, kube-proxy or the CNI installed)"}"#,
        r#"{"type":"drop","iface":"va","class":"other","reason":"NOT_SPECIFIED","housekeeping":false,"proto":"ipv6-icmp","src":"fe80::7056:a4ff:fe49:2c41","dst":"ff02::16","sport":0,"dport":0,"count":1,"function":"ip6_mc_input+0xd4"}"#,
        r#"{"type":"drop","iface":"-","class":"other","reason":"REASON_0x10002","housekeeping":false,"proto":"0","src":null,"dst":null,"sport":0,"dport":0,"count":2}"#,
        r#"{"type":"drop_stats","events_lost":0,"events_suppressed":1996000,"uncounted":0,"untracked":0}"#,
        r#"{"type":"finding","id":"sysctl/ip_forward","severity":"error","title":"IP forwarding is off","explain":"Pod traffic is routed through the node; with net.ipv4.ip_forward=0 none of it passes.","class":null,"port":null,"iface":null,"zone":null,"binding":null,"element":"net.ipv4.ip_forward = 0","rule":null,"fix":["sysctl -w net.ipv4.ip_forward=1","echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/90-ip-forward.conf"]}"#,
        r#"{"type":"summary","profile":"generic","duration_secs":2.501943455,"interfaces":[{"iface":"va","ifindex":3,"hook":"tc"}],"counters":[{"type":"counters","iface":"va","direction":"ingress","class":"other","packets":3,"bytes":174}],"drops":[{"iface":"lo","class":"other","reason":"QDISC_DROP","housekeeping":false,"count":3}],"drop_stats":{"type":"drop_stats","events_lost":0,"events_suppressed":0,"uncounted":0,"untracked":0}}"#,
        r#"{"type":"summary","profile":"generic","duration_secs":30.0,"interfaces":[],"counters":[]}"#,
    ];
    for line in lines {
        same_bytes::<WatchLine>(line);
    }
    // A resolved finding is the finding as it was, under its own type.
    let resolved = serde_json::to_string(&WatchLine::FindingResolved(finding())).unwrap();
    let found = serde_json::to_string(&WatchLine::Finding(finding())).unwrap();
    assert_eq!(
        resolved.replacen(r#""type":"finding_resolved""#, r#""type":"finding""#, 1),
        found
    );
    // A nested object of the wrong type is refused.
    let wrong = r#"{"type":"summary","profile":"g","duration_secs":1.0,"interfaces":[],"counters":[{"type":"drop_stats","iface":"va","direction":"ingress","class":"other","packets":3,"bytes":174}]}"#;
    assert!(serde_json::from_str::<WatchLine>(wrong).is_err());
}

#[test]
fn a_pod_line_reads_as_documented() {
    let line = r#"{"type":"iface","change":"pod","iface":"veth1a2b","ifindex":41,"pod_namespace":"kube-system","pod_name":"coredns-7db6d8ff4d-x2x7k"}"#;
    let WatchLine::Iface(c) = same_bytes::<WatchLine>(line) else {
        panic!("not an iface line: {line}");
    };
    assert_eq!(c.change, IfaceChangeKind::Pod);
    assert_eq!(c.pod_namespace.as_deref(), Some("kube-system"));
    assert_eq!(c.pod_name.as_deref(), Some("coredns-7db6d8ff4d-x2x7k"));
    // An attached veth no cache entry names: its peer namespace, no pod fields.
    let line = r#"{"type":"iface","change":"attached","iface":"veth9","ifindex":9,"hook":"tc","peer_netns_id":2,"peer_ifindex":3}"#;
    let WatchLine::Iface(c) = same_bytes::<WatchLine>(line) else {
        panic!("not an iface line: {line}");
    };
    assert_eq!((c.pod_namespace, c.pod_name), (None, None));
}

#[test]
fn flows_read_the_same_everywhere() {
    let f = flow("udp", "192.168.10.21", "192.168.10.22", 45642, 4789);
    assert_eq!(
        f.to_string(),
        "udp 192.168.10.21:45642 -> 192.168.10.22:4789"
    );
    let icmp = flow("icmp", "10.244.1.0", "10.244.2.2", 0, 0);
    assert_eq!(icmp.to_string(), "icmp 10.244.1.0 -> 10.244.2.2");
    let v6 = flow("tcp", "fd00::1", "fd00::2", 40000, 6443);
    assert_eq!(v6.to_string(), "tcp [fd00::1]:40000 -> [fd00::2]:6443");
    let none = Flow {
        src: None,
        dst: None,
        ..icmp
    };
    assert_eq!(none.to_string(), "non-IP or unreadable");
}

#[test]
fn every_diagnose_line_reads_back_as_printed() {
    let lines = [
        DiagnoseLine::Problem(Problem {
            message: "/etc/firewalld/zones/broken.xml:5:1: unexpected end".into(),
        }),
        DiagnoseLine::Flow(FlowCheck {
            name: "kubelet 10250/tcp from the controller on eth0".into(),
            verdict: "accept".into(),
            rule: finding().rule,
        }),
        DiagnoseLine::Flow(FlowCheck {
            name: "etcd".into(),
            verdict: "accept (policy)".into(),
            rule: None,
        }),
        DiagnoseLine::Finding(finding()),
        DiagnoseLine::Finding(Finding {
            certainty: Some(Certainty::Likely),
            settle: vec!["ip addr show".into()],
            ..finding()
        }),
        DiagnoseLine::Evidence(EvidenceReport {
            file: "paste.txt".into(),
            form: "iptables-nft-save".into(),
            used: vec!["12 rules".into()],
            unused: vec!["2 lines (named above)".into()],
        }),
        DiagnoseLine::Unknown(Unknown {
            what: "IP forwarding".into(),
            why: "not checked: the node's sysctls not in the inputs".into(),
            settle: vec!["sysctl -a -r 'ip_forward|rp_filter'".into()],
        }),
        DiagnoseLine::Summary(DiagnoseSummary {
            profile: "k0s-calico".into(),
            roles: "worker".into(),
            errors: 1,
            warnings: 0,
            flows: 26,
            complete: true,
        }),
    ];
    for line in &lines {
        round_trip(line);
    }
    same_bytes::<DiagnoseLine>(
        r#"{"type":"summary","profile":"k0s-calico","roles":"controller+worker","errors":1,"warnings":2,"flows":26,"complete":false}"#,
    );
    same_bytes::<DiagnoseLine>(r#"{"type":"problem","message":"ruleset.json:3:1: EOF"}"#);
}

#[test]
fn the_comparison_reads_back_as_printed() {
    let traffic = Change {
        regression: true,
        kind: ChangeKind::Traffic,
        iface: "eth0".into(),
        direction: Some(Direction::Ingress),
        class: "kube-apiserver".into(),
        inner: false,
        reason: None,
        measure: Measure::PacketsPerSec,
        before: Level::Rate(299.827),
        after: Level::Rate(150.0),
        change_percent: Some(-49.97),
        distance: None,
        message: "kube-apiserver ingress on eth0: 299.8 -> 150.0 packets/s (-50%)".into(),
    };
    let cmp = Comparison {
        baseline: "baseline.json".into(),
        recorded_at: "2026-11-21T11:52:57Z".into(),
        baseline_secs: 300.001,
        sample_secs: 300.0,
        profile: "k3s-flannel".into(),
        threshold_percent: 30.0,
        floor_per_sec: 1.0,
        regression: true,
        changes: vec![
            traffic.clone(),
            Change {
                regression: false,
                inner: true,
                measure: Measure::Sizes,
                before: Level::Sizes(vec![1.0, 0.0]),
                after: Level::Sizes(vec![0.5, 0.5]),
                change_percent: None,
                distance: Some(0.5),
                ..traffic.clone()
            },
            Change {
                kind: ChangeKind::Drops,
                direction: None,
                reason: Some("NETFILTER_DROP".into()),
                measure: Measure::DropsPerSec,
                ..traffic
            },
        ],
        notes: vec!["the kernel changed since the baseline: 6.1 -> 6.18".into()],
    };
    round_trip(&cmp);
    let text = serde_json::to_string(&cmp).unwrap();
    assert!(text.starts_with(r#"{"type":"comparison","baseline":"baseline.json","#));
    same_bytes::<Comparison>(
        r#"{"type":"comparison","baseline":"/tmp/b.json","recorded_at":"2026-12-06T07:08:54Z","baseline_secs":1.501,"sample_secs":1.001,"profile":"generic","threshold_percent":30.0,"floor_per_sec":1.0,"regression":false,"changes":[{"regression":true,"kind":"drops","iface":"va","class":"flannel-vxlan","reason":"NETFILTER_DROP","measure":"drops_per_sec","before":50.0,"after":100.0,"change_percent":100.0,"message":"NETFILTER_DROP drops of flannel-vxlan on va: 50.0 -> 100.0 /s (+100%)"}],"notes":[]}"#,
    );
}
