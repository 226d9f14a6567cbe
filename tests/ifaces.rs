//! Interfaces that come and go, end to end: `tracer watch --iface 'veth*'` started in an
//! empty namespace, then 200 veth pairs created (one end in the watched namespace, the other in
//! a second one, as a CNI leaves a pod's), each carrying 100 frames. Every frame must be
//! counted on its own interface; once the pairs are deleted, the tracer must hold no slot for
//! them (its interface table and per-peer table, read with bpftool) and its memory must be back
//! where it was. Below them, the socket those interfaces are heard on, after it overflowed.

use std::{
    net::Ipv4Addr,
    process::Command,
    time::{Duration, Instant},
};

use tracer::{
    schema::{Direction, IfaceChangeKind, WatchLine},
    sys::links::{LinkEvents, Notifications},
};
use tracer_lab::synth::{Eth, L4, frame};

use crate::harness::{NetNs, Tracer, bpftool_json, netns::run, send_frames};

const PAIRS: usize = 200;
const FRAMES: u16 = 100;

/// `ip -n NS -batch FILE` with `lines`.
fn ip_batch(ns: &NetNs, lines: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("batch");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    run(Command::new("ip")
        .args(["-n", &ns.name, "-batch"])
        .arg(&file));
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// The ids of the maps of the program with kernel id `prog`, by name.
fn maps_of(prog: u32) -> Vec<(String, u64)> {
    let info = bpftool_json(&["prog", "show", "id", &prog.to_string()]);
    info["map_ids"]
        .as_array()
        .expect("map_ids")
        .iter()
        .map(|id| {
            let id = id.as_u64().unwrap();
            let map = bpftool_json(&["map", "show", "id", &id.to_string()]);
            (map["name"].as_str().unwrap_or_default().to_string(), id)
        })
        .collect()
}

/// Entries of the interface table that point at a slot, and per-peer entries: the hash
/// table's, and the cache entries claimed (a key's first word, never zero, written).
fn slots_held(maps: &[(String, u64)]) -> (usize, usize) {
    let id = |name: &str| {
        maps.iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no map {name} in {maps:?}"))
            .1
            .to_string()
    };
    // Entries of an array map whose first `bytes` bytes are not all zero.
    let nonzero = |name: &str, bytes: usize| {
        bpftool_json(&["map", "dump", "id", &id(name)])
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["value"]
                    .as_array()
                    .is_some_and(|v| v.iter().take(bytes).any(|b| b != "0x00"))
            })
            .count()
    };
    let held = nonzero("IFACES", usize::MAX);
    let claimed = nonzero("PEER_CACHE", 8);
    let peers = bpftool_json(&["map", "dump", "id", &id("PEER_COUNTERS")]);
    (held, peers.as_array().map_or(0, Vec::len) + claimed)
}

/// Waits for an `iface` line of `change` for each of the veths.
fn wait_each(tracer: &mut Tracer, change: IfaceChangeKind) {
    for i in 0..PAIRS {
        let name = format!("veth{i}");
        tracer.wait_for(&format!("{name} {change:?}"), |l| match l {
            WatchLine::Iface(c) if c.iface == name && c.change == change => Some(()),
            _ => None,
        });
    }
}

/// 100 UDP frames to the flannel VXLAN port out of each pair's pod end.
fn send_each(pods: &NetNs) {
    let eth = Eth::new([2, 0, 0, 0, 0, 2], [0xff; 6]);
    let (src, dst) = (Ipv4Addr::new(10, 99, 0, 2), Ipv4Addr::new(10, 99, 0, 1));
    for i in 0..PAIRS {
        let frames: Vec<_> = (0..FRAMES)
            .map(|n| {
                frame(
                    &eth,
                    src.into(),
                    dst.into(),
                    &L4::udp(40000 + n, 8472, &[0; 50]),
                )
            })
            .collect();
        send_frames(pods, &format!("p{i}"), &frames);
    }
}

/// The largest ingress count of each class a veth's `counters` lines showed (they are
/// cumulative).
fn ingress_of(lines: &[WatchLine], name: &str) -> Vec<(String, u64)> {
    let mut seen = std::collections::BTreeMap::new();
    for l in lines {
        if let WatchLine::Counters(c) = l
            && c.iface == name
            && c.direction == Direction::Ingress
            && !c.inner
        {
            let e: &mut u64 = seen.entry(c.class.clone()).or_default();
            *e = (*e).max(c.packets);
        }
    }
    seen.into_iter().collect()
}

#[test]
fn two_hundred_veths_that_come_and_go_are_counted_and_released() {
    let host = NetNs::new("peers-host");
    let pods = NetNs::new("peers-pods");
    // Only the test's frames on the veths: no IPv6 neighbour or listener reports.
    for ns in [&host, &pods] {
        ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1");
        ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1");
    }
    let mut tracer = Tracer::watch(
        &host,
        &[
            "--iface",
            "veth*",
            "--profile",
            "generic",
            "--interval",
            "0.3",
            "--no-diagnose",
            "--no-drops",
        ],
    );
    let start = tracer.started();
    assert!(start.interfaces.is_empty(), "{start:?}");
    let maps = maps_of(start.programs["tc_ingress"]);
    let rss_before = rss_kib(tracer.pid());

    let mut create = Vec::new();
    for i in 0..PAIRS {
        create.push(format!(
            "link add p{i} type veth peer name veth{i} netns {}",
            host.name
        ));
        create.push(format!("link set p{i} up"));
    }
    ip_batch(&pods, &create);
    ip_batch(
        &host,
        &(0..PAIRS)
            .map(|i| format!("link set veth{i} up"))
            .collect::<Vec<_>>(),
    );
    wait_each(&mut tracer, IfaceChangeKind::Attached);
    assert_eq!(slots_held(&maps).0, PAIRS);

    send_each(&pods);
    for i in 0..PAIRS {
        let name = format!("veth{i}");
        tracer.wait_for(&format!("{FRAMES} frames on {name}"), |l| match l {
            WatchLine::Counters(c)
                if c.iface == name
                    && c.direction == Direction::Ingress
                    && c.class == "flannel-vxlan"
                    && c.packets == u64::from(FRAMES) =>
            {
                Some(())
            }
            _ => None,
        });
    }
    // One peer (the pod end's address) per veth, in the cache or the hash table.
    let (_, peers) = slots_held(&maps);
    assert!(peers >= PAIRS, "{peers} per-peer entries for {PAIRS} veths");

    ip_batch(
        &pods,
        &(0..PAIRS)
            .map(|i| format!("link del p{i}"))
            .collect::<Vec<_>>(),
    );
    wait_each(&mut tracer, IfaceChangeKind::Released);
    // The slots are freed right after the interval that showed the released interfaces last.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut held = slots_held(&maps);
    while held != (0, 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        held = slots_held(&maps);
    }
    assert_eq!(
        held,
        (0, 0),
        "interface table entries and peer entries still held"
    );
    let rss_after = rss_kib(tracer.pid());
    eprintln!("tracer RSS: {rss_before} KiB before the veths, {rss_after} KiB after they went");

    let lines = tracer.stop();
    // No frame on another veth's counters, none twice: the largest count each veth showed.
    for i in 0..PAIRS {
        let name = format!("veth{i}");
        assert_eq!(
            ingress_of(&lines, &name),
            [("flannel-vxlan".to_string(), u64::from(FRAMES))],
            "{name}"
        );
    }
    // Memory back where it was: within what the allocator keeps for reuse.
    assert!(
        rss_after <= rss_before + 2048,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
}

/// Link notifications lost to a full socket buffer: the loss is reported once the socket has
/// been emptied, and a change after that is notified again (while the queue stays full, the
/// kernel drops every new one without a word).
#[test]
fn link_notifications_are_heard_again_after_a_loss() {
    let ns = NetNs::new("links-lost");
    ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1");
    ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1");
    let events = ns.enter(|| LinkEvents::open().unwrap());
    // 3,000 interfaces at once: more notifications than the socket's buffer holds.
    ip_batch(
        &ns,
        &(0..1500)
            .map(|i| format!("link add a{i} type veth peer name b{i}"))
            .collect::<Vec<_>>(),
    );
    assert_eq!(events.read().unwrap(), Notifications::Lost);
    ip_batch(
        &ns,
        &["link add late type veth peer name late-peer".to_string()],
    );
    let Notifications::Events(got) = events.read().unwrap() else {
        panic!("a second loss");
    };
    let names: Vec<&str> = got.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["late-peer", "late"]);
}
