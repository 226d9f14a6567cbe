//! End to end: `tracer watch` on one end of a veth pair between two fresh namespaces, exact
//! numbers of packets sent from the other end, exact counts expected back.

use std::{net::Ipv4Addr, process::Command, time::Duration};

use bytes::Bytes;
use tracer::schema::{Direction, WatchLine};
use tracer_lab::synth::{Eth, L4, VRRP_GROUP, frame, multicast_mac};

use crate::harness::{
    Counts, Tracer, bpftool_json, kernel,
    pair::{A, B, SILENT, apiserver_syns, pair, udp_to},
    send_frames, silent_apiserver,
};

#[test]
fn counts_every_class_exactly_in_both_directions() {
    let (a, b) = pair();
    let _apiserver = silent_apiserver(&a, &A, &B, SILENT);

    let mut tracer = Tracer::watch(
        &a,
        &["--iface", "va", "--profile", "generic", "--interval", "0.5"],
    );
    tracer.started();

    let mut frames = apiserver_syns(1000);
    frames.extend(udp_to(1000, 40000, 4789));
    frames.extend(udp_to(500, 41000, 8472));
    let vrrp = Eth::new(B.mac, multicast_mac(VRRP_GROUP));
    for _ in 0..100 {
        frames.push(frame(
            &vrrp,
            B.ip.into(),
            VRRP_GROUP.into(),
            &L4::Vrrp {
                vrid: 7,
                priority: 100,
                addr: Ipv4Addr::new(10, 77, 0, 100),
            },
        ));
    }
    send_frames(&b, B.name, &frames);
    std::thread::sleep(Duration::from_millis(500));

    let counts = Counts::from_summary(&tracer.stop());
    assert_eq!(counts.packets("va", "ingress", "kube-apiserver"), 1000);
    assert_eq!(counts.packets("va", "ingress", "calico-vxlan"), 1000);
    assert_eq!(counts.packets("va", "ingress", "flannel-vxlan"), 500);
    assert_eq!(counts.packets("va", "ingress", "keepalived-vrrp"), 100);
    // Replies from the 6443 server are kube-apiserver traffic too.
    assert_eq!(counts.packets("va", "egress", "kube-apiserver"), 1000);
    // Byte counts are whole frames: 14 Ethernet + 20 IPv4 + 8 UDP + 50 payload.
    assert_eq!(counts.bytes("va", "ingress", "calico-vxlan"), 1000 * 92);
    assert_eq!(counts.packets("va", "egress", "calico-vxlan"), 0);
}

#[test]
fn json_lines_are_cumulative_counters_then_a_summary() {
    let (a, b) = pair();
    let mut tracer = Tracer::watch(
        &a,
        &[
            "--iface",
            "va",
            "--profile",
            "k3s-flannel",
            "--interval",
            "0.2",
        ],
    );
    let start = tracer.started();
    assert_eq!(start.profile, "k3s-flannel");
    assert_eq!(start.interfaces[0].iface, "va");
    assert_eq!(start.interfaces[0].hook, "tc");
    let to_a = Eth::new(B.mac, A.mac);
    let batch: Vec<Bytes> = (0..30)
        .map(|i| {
            frame(
                &to_a,
                B.ip.into(),
                A.ip.into(),
                &L4::udp(30000 + i, 8472, b"x"),
            )
        })
        .collect();
    send_frames(&b, B.name, &batch);
    std::thread::sleep(Duration::from_millis(600));
    send_frames(&b, B.name, &batch);
    std::thread::sleep(Duration::from_millis(600));
    let lines = tracer.stop();
    let flannel: Vec<u64> = lines
        .iter()
        .filter_map(|l| match l {
            WatchLine::Counters(c)
                if c.class == "flannel-vxlan" && c.direction == Direction::Ingress =>
            {
                Some(c.packets)
            }
            _ => None,
        })
        .collect();
    assert_eq!(flannel.first(), Some(&30), "{lines:?}");
    assert_eq!(flannel.last(), Some(&60), "{lines:?}");
    assert!(
        flannel.windows(2).all(|w| w[0] <= w[1]),
        "counters are cumulative: {flannel:?}"
    );
    let Some(WatchLine::Summary(summary)) = lines.last() else {
        panic!("the last line is no summary: {lines:?}");
    };
    assert!(summary.duration_secs > 1.0);
}

pub(crate) fn program_exists(id: u64) -> bool {
    Command::new("bpftool")
        .args(["prog", "show", "id", &id.to_string()])
        .output()
        .unwrap()
        .status
        .success()
}

fn links_of(ids: &[u64]) -> Vec<serde_json::Value> {
    bpftool_json(&["link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["prog_id"].as_u64().is_some_and(|p| ids.contains(&p)))
        .cloned()
        .collect()
}

#[test]
fn kill_9_leaves_nothing_attached_or_loaded() {
    if !kernel::features().tcx {
        eprintln!(
            "kill_9: kernel {} has no TCX: tc programs are netlink filters a killed tracer leaves; cleanup::filters_a_killed_tracer_left_... checks what happens to them",
            kernel::features().release
        );
        return;
    }
    for attach in ["xdp", "tc"] {
        let (a, _b) = pair();
        let mut tracer = Tracer::watch(&a, &["--iface", "va", "--attach", attach]);
        let start = tracer.started();
        assert_eq!(start.interfaces[0].hook, attach);
        let ids: Vec<u64> = start.programs.values().map(|v| u64::from(*v)).collect();
        // tc ingress and egress, XDP, their inner-frame stages, and the drop probe's two stages.
        assert_eq!(ids.len(), 7, "{start:?}");
        assert!(
            ids.iter().all(|id| program_exists(*id)),
            "programs {ids:?} should be loaded while tracing"
        );
        // Ingress, egress and drop-probe links (TCX links do not show in `bpftool net`).
        assert_eq!(links_of(&ids).len(), 3, "{attach}: {:?}", links_of(&ids));
        if attach == "xdp" {
            assert!(a.ip(&["link", "show", "va"]).contains("prog/xdp"));
        }

        tracer.kill9();
        // The kernel frees programs once the last reference goes; give RCU a moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while ids.iter().any(|id| program_exists(*id)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            ids.iter().all(|id| !program_exists(*id)),
            "{attach}: programs {ids:?} still loaded after kill -9"
        );
        assert!(
            links_of(&ids).is_empty(),
            "{attach}: links remain: {:?}",
            links_of(&ids)
        );
        let link = a.ip(&["-d", "link", "show", "va"]);
        assert!(
            !link.contains("xdp"),
            "{attach}: XDP still attached: {link}"
        );
        let qdisc = a.exec(&["tc", "qdisc", "show", "dev", "va"]);
        assert!(
            !qdisc.contains("clsact"),
            "{attach}: tracer left a clsact qdisc: {qdisc}"
        );
    }
}
