//! End to end: packets dropped by real nftables rules in a test namespace, seen by the drop
//! probe with their reason, class, flow and (for VXLAN) inner flow; drops elsewhere ignored;
//! a storm counted exactly; the pcapng read back by tshark.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, UdpSocket},
    path::Path,
    process::Command,
    time::Duration,
};

use bytes::Bytes;
use tracer::{
    model::catalog::{Catalog, class_table},
    probes::{
        AttachMode, Datapath,
        btf::{Btf, VMLINUX},
        drops::{EventBudget, current_netns, kernel_facts},
    },
    schema::{DropLine, DropTotal, Summary, WatchLine},
};
use tracer_common::drops::{
    DROP_FLOW_FILTER, DROP_FLOWS, DropHook, DropKey, FlowKey, flow_filter_index, flow_filter_term,
};
use tracer_lab::synth::{Eth, L4, checksum, frame, vxlan_payload};

use crate::harness::{NetNs, Tracer, Veth, joined, kernel, send_frames, tracer::summary};

const A: Veth = Veth {
    name: "va",
    mac: [0x02, 0, 0, 0, 1, 0x0a],
    ip: Ipv4Addr::new(10, 78, 0, 1),
};
const B: Veth = Veth {
    name: "vb",
    mac: [0x02, 0, 0, 0, 1, 0x0b],
    ip: Ipv4Addr::new(10, 78, 0, 2),
};

/// An address as a dropped flow's endpoint holds it.
fn endpoint(text: &str) -> Option<IpAddr> {
    text.parse().ok()
}

fn drop_lines(lines: &[WatchLine]) -> Vec<&DropLine> {
    lines
        .iter()
        .filter_map(|l| match l {
            WatchLine::Drop(d) => Some(d),
            _ => None,
        })
        .collect()
}

/// The last (cumulative) count of each flow, summed for the flows matching `keep`.
fn flow_total(lines: &[WatchLine], keep: impl Fn(&DropLine) -> bool) -> u64 {
    let mut last = std::collections::HashMap::new();
    for l in drop_lines(lines).into_iter().filter(|l| keep(l)) {
        // A flow is its line without the count.
        let key = DropLine {
            count: 0,
            ..l.clone()
        };
        last.insert(serde_json::to_string(&key).unwrap(), l.count);
    }
    last.values().sum()
}

/// The sum of the counts of the summary's drops that `keep` accepts.
fn summary_drops_where(summary: &Summary, keep: impl Fn(&DropTotal) -> bool) -> u64 {
    summary
        .drops
        .as_ref()
        .expect("drops in summary")
        .iter()
        .filter(|d| keep(d))
        .map(|d| d.count)
        .sum()
}

fn summary_drops(lines: &[WatchLine], iface: &str, class: &str, reason: &str) -> u64 {
    summary_drops_where(summary(lines), |d| {
        d.iface == iface && d.class == class && d.reason == reason
    })
}

/// `n` UDP frames from B to A's port 4789 (a payload without the VXLAN I flag), as B sends
/// them on its end of the pair.
fn vxlan_port_frames(n: usize) -> Vec<Bytes> {
    let to_a = Eth::new(B.mac, A.mac);
    (0..n)
        .map(|_| {
            frame(
                &to_a,
                B.ip.into(),
                A.ip.into(),
                &L4::udp(40000, 4789, &[7u8; 40]),
            )
        })
        .collect()
}

/// `frame` (Ethernet, IPv4) with four bytes of IPv4 options (no-ops) after its IP header: a
/// packet the drop probe's shortcut leaves to its full parser, with the same flow.
fn with_ip_options(frame: &Bytes) -> Bytes {
    const IP: usize = 14;
    let mut f = frame.to_vec();
    f.splice(IP + 20..IP + 20, [1u8; 4]);
    f[IP] = 0x46;
    let total = u16::from_be_bytes([f[IP + 2], f[IP + 3]]) + 4;
    f[IP + 2..IP + 4].copy_from_slice(&total.to_be_bytes());
    f[IP + 10..IP + 12].fill(0);
    let sum = checksum(&f[IP..IP + 24], 0);
    f[IP + 10..IP + 12].copy_from_slice(&sum.to_be_bytes());
    Bytes::from(f)
}

#[test]
fn nft_drops_are_counted_exactly_with_reason_flow_and_pcap() {
    let reason = kernel::drop_reason("nft_drops", "NETFILTER_DROP");
    let (a, b) = joined("d", &A, &B);
    a.nft_drop_input(4789);
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("drops.pcapng");
    let mut tracer = Tracer::watch(
        &a,
        &[
            "--iface",
            "va",
            "--profile",
            "generic",
            "--interval",
            "0.5",
            "--pcap",
            pcap.to_str().unwrap(),
        ],
    );
    tracer.started();
    let frames = vxlan_port_frames(1000);
    send_frames(&b, B.name, &frames);
    std::thread::sleep(Duration::from_millis(800));
    let lines = tracer.stop();

    assert_eq!(
        summary_drops(&lines, "va", "calico-vxlan", reason),
        1000,
        "{lines:?}"
    );
    let flows = drop_lines(&lines);
    let ours: Vec<&&DropLine> = flows.iter().filter(|l| l.class == "calico-vxlan").collect();
    assert!(!ours.is_empty(), "{lines:?}");
    for l in &ours {
        assert_eq!(l.iface, "va");
        assert_eq!(l.reason, reason);
        assert_eq!(l.flow.proto, "udp");
        assert_eq!(l.flow.src, endpoint("10.78.0.2"));
        assert_eq!(l.flow.dst, endpoint("10.78.0.1"));
        assert_eq!(l.flow.sport, 40000);
        assert_eq!(l.flow.dport, 4789);
        if kernel::features().drop_reasons {
            assert!(l.explain.as_deref().unwrap().contains("firewall rule"));
        } else {
            // Without reasons, where it happened says it: netfilter's verdict, in nf_hook_slow.
            let function = l.function.as_deref().unwrap_or_default();
            assert!(function.starts_with("nf_hook_slow"), "{l:?}");
        }
        assert!(
            l.inner.is_none(),
            "a payload without the VXLAN I flag has no inner frame"
        );
    }
    assert_eq!(ours.last().unwrap().count, 1000);

    let out = Command::new("tshark")
        .args([
            "-r",
            pcap.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.comment",
            "-e",
            "udp.dstport",
        ])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // Other drops in the namespace are in the file too (older kernels free a closing socket's
    // queue with kfree_skb: reason NOT_SPECIFIED, no interface).
    let packets: Vec<&str> = text.lines().filter(|p| p.ends_with("\t4789")).collect();
    // The default sample budget is 10 events per flow, CPU and second.
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    assert!(!packets.is_empty() && packets.len() <= 30 * cpus, "{text}");
    let comment = format!("drop reason {reason} on va");
    assert!(packets.iter().all(|p| p.contains(&comment)), "{text}");
}

#[test]
fn vxlan_drops_carry_the_inner_flow() {
    let reason = kernel::drop_reason("vxlan_drops", "NETFILTER_DROP");
    let (a, b) = joined("x", &A, &B);
    a.nft_drop_input(4789);
    let mut tracer = Tracer::watch(
        &a,
        &[
            "--iface",
            "va",
            "--profile",
            "k0s-calico",
            "--interval",
            "0.5",
        ],
    );
    tracer.started();
    let inner = frame(
        &Eth::new([0x66, 0, 0, 0, 0, 1], [0x66, 0, 0, 0, 0, 2]),
        "10.244.1.2".parse().unwrap(),
        "10.244.2.3".parse().unwrap(),
        &L4::syn(5555, 6443),
    );
    let to_a = Eth::new(B.mac, A.mac);
    let vx = frame(
        &to_a,
        B.ip.into(),
        A.ip.into(),
        &L4::Udp {
            sport: 51000,
            dport: 4789,
            payload: vxlan_payload(4096, &inner),
        },
    );
    send_frames(&b, B.name, &vec![vx; 1000]);
    std::thread::sleep(Duration::from_millis(800));
    let lines = tracer.stop();

    assert_eq!(summary_drops(&lines, "va", "calico-vxlan", reason), 1000);
    let total = flow_total(&lines, |l| {
        l.inner.as_ref().is_some_and(|i| {
            i.vni == 4096
                && i.class == "kube-apiserver"
                && i.flow.proto == "tcp"
                && i.flow.src == endpoint("10.244.1.2")
                && i.flow.dst == endpoint("10.244.2.3")
                && i.flow.sport == 5555
                && i.flow.dport == 6443
        })
    });
    assert_eq!(total, 1000, "{:?}", drop_lines(&lines));
}

#[test]
fn drops_in_other_namespaces_are_not_reported() {
    let reason = kernel::drop_reason("other_namespaces", "NETFILTER_DROP");
    let (a, b) = joined("n", &A, &B);
    // A second pair, busy dropping at the same time; its interfaces have other names.
    let c_end = Veth {
        name: "vc",
        mac: [0x02, 0, 0, 0, 2, 0x0c],
        ip: Ipv4Addr::new(10, 79, 0, 1),
    };
    let d_end = Veth {
        name: "vd",
        mac: [0x02, 0, 0, 0, 2, 0x0d],
        ip: Ipv4Addr::new(10, 79, 0, 2),
    };
    let (c, d) = joined("o", &c_end, &d_end);
    a.nft_drop_input(8472);
    c.nft_drop_input(8472);
    let mut tracer = Tracer::watch(
        &a,
        &["--iface", "va", "--profile", "generic", "--interval", "0.5"],
    );
    tracer.started();
    let mine: Vec<Bytes> = (0..300)
        .map(|_| {
            frame(
                &Eth::new(B.mac, A.mac),
                B.ip.into(),
                A.ip.into(),
                &L4::udp(1, 8472, b"m"),
            )
        })
        .collect();
    let theirs: Vec<Bytes> = (0..500)
        .map(|_| {
            frame(
                &Eth::new(d_end.mac, c_end.mac),
                d_end.ip.into(),
                c_end.ip.into(),
                &L4::udp(2, 8472, b"t"),
            )
        })
        .collect();
    std::thread::scope(|s| {
        s.spawn(|| send_frames(&d, d_end.name, &theirs));
        s.spawn(|| send_frames(&b, B.name, &mine));
    });
    std::thread::sleep(Duration::from_millis(800));
    let lines = tracer.stop();
    assert_eq!(summary_drops(&lines, "va", "flannel-vxlan", reason), 300);
    let summary = summary(&lines);
    // Without reasons every drop is NOT_SPECIFIED: count those on interfaces only.
    let all = summary_drops_where(summary, |d| d.reason == reason && d.iface != "-");
    assert_eq!(all, 300, "{summary:?}");
    assert!(
        drop_lines(&lines)
            .iter()
            .all(|l| l.flow.src != endpoint("10.79.0.2")),
        "{:?}",
        drop_lines(&lines)
    );
}

/// Peak resident memory of a process, in kB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A joined pair whose first end drops every datagram to 10.78.0.9 on the way out, in the
/// sender's own context: no queue can lose any of them. The address has a permanent neighbour
/// entry, so no ARP gets in the way.
fn dropping_on_the_way_out(tag: &str) -> (NetNs, NetNs) {
    let (a, b) = joined(tag, &A, &B);
    a.nft("table inet trs {\n chain output {\n type filter hook output priority 0;\n ip daddr 10.78.0.9 drop\n }\n}\n");
    a.ip(&[
        "neigh",
        "add",
        "10.78.0.9",
        "lladdr",
        &tracer_netns::mac_text(&B.mac),
        "dev",
        "va",
        "nud",
        "permanent",
    ]);
    (a, b)
}

#[test]
fn a_storm_of_a_million_drops_is_counted_exactly_in_bounded_memory() {
    let (a, _b) = dropping_on_the_way_out("s");
    let mut tracer = Tracer::watch(
        &a,
        &["--iface", "va", "--profile", "generic", "--interval", "0.5"],
    );
    tracer.started();
    let start = std::time::Instant::now();
    const STORM: u32 = 1_000_000;
    a.enter(|| {
        let sock = UdpSocket::bind("10.78.0.1:0").unwrap();
        for i in 0..STORM {
            // 50,000 destination ports: more flows than the kernel's flow table holds.
            let _ = sock.send_to(
                b"storm",
                (Ipv4Addr::new(10, 78, 0, 9), 1 + (i % 50_000) as u16),
            );
        }
    });
    std::thread::sleep(Duration::from_millis(1500));
    let peak = peak_rss_kb(tracer.pid());
    let lines = tracer.stop();
    let secs = start.elapsed().as_secs() + 1;
    let summary = summary(&lines);
    let dropped = summary_drops_where(summary, |d| d.reason == "NETFILTER_DROP" && d.iface == "-");
    assert_eq!(dropped, u64::from(STORM), "{summary:?}");
    let stats = summary.drop_stats.expect("drop_stats in summary");
    assert_eq!(stats.uncounted, 0, "{stats:?}");
    // The flows beyond the kernel's flow table are in the totals, and said to be.
    assert!(
        stats.untracked > 0 && stats.untracked < u64::from(STORM),
        "{stats:?}"
    );
    // Each of the 50,000 flows is within its own budget, but the default of 1000 events a
    // second in all holds: every other drop is counted and held back, the ring never
    // overflows.
    let suppressed = stats.events_suppressed;
    assert_eq!(stats.events_lost, 0, "{stats:?}");
    assert!(
        suppressed >= u64::from(STORM) - 1000 * (secs + 1),
        "{suppressed} of {STORM} held back in {secs} s: {stats:?}"
    );
    assert!(
        peak < 150 * 1024,
        "tracer peaked at {peak} kB during the storm"
    );
}

/// Flows that go quiet and come back: the probe's flow cache (128 entries per CPU) is asked
/// for the entries of quiet flows, answers when a drop next looks at one, and gives them back;
/// more flows than it holds go to the flow table meanwhile. Through all that each flow is
/// counted exactly, none twice.
#[test]
fn flows_that_pause_and_resume_are_each_counted_exactly() {
    let (a, _b) = dropping_on_the_way_out("p");
    let mut tracer = Tracer::watch_env(
        &a,
        &[("TRACER_LOG", "debug")],
        &["--iface", "va", "--profile", "generic", "--interval", "0.2"],
    );
    tracer.started();
    const FLOWS: u16 = 300;
    const BURSTS: u64 = 3;
    let sock = a.enter(|| UdpSocket::bind("10.78.0.1:0").unwrap());
    for _ in 0..BURSTS {
        for port in 1..=FLOWS {
            for _ in 0..2 {
                let _ = sock.send_to(b"pause", (Ipv4Addr::new(10, 78, 0, 9), port));
            }
        }
        // Two intervals and more with no drop: every entry is asked back, and the next burst's
        // drops answer.
        std::thread::sleep(Duration::from_millis(700));
    }
    let (lines, log) = tracer.stop_with_log();
    assert!(
        log.contains("entries of quiet flows back from the drop probe's flow cache"),
        "no entry was taken back from the cache: {log}"
    );
    let mut last = std::collections::HashMap::new();
    for l in drop_lines(&lines) {
        if l.flow.dst == endpoint("10.78.0.9") {
            last.insert(l.flow.dport, l.count);
        }
    }
    assert_eq!(last.len(), usize::from(FLOWS), "{last:?}");
    let wrong: Vec<(&u16, &u64)> = last.iter().filter(|(_, n)| **n != 2 * BURSTS).collect();
    assert!(
        wrong.is_empty(),
        "flows not counted {} times: {wrong:?}",
        2 * BURSTS
    );
}

/// `ping` between two namespaces, the tracer watching the pinging one: ping run as root reads
/// its echo replies on a raw socket, and the kernel then frees the reply as `NO_SOCKET` in the
/// ICMP path because no ping socket took it. That is delivery, not loss: no drop reported as
/// lost, in the JSON lines or the summary.
/// The drop probe alone, loaded by the library in the calling thread's namespace as tracer
/// loads it (the generic profile, the default event budget).
fn drop_probe() -> Datapath {
    drop_probe_hooked(None)
}

/// [`drop_probe`] hooked as `hook`, or as the loader prefers (`None`).
fn drop_probe_hooked(hook: Option<DropHook>) -> Datapath {
    let btf = Btf::from_file(Path::new(VMLINUX)).expect("this kernel has BTF");
    let cpus = aya::util::nr_cpus().expect("CPUs") as u32;
    let netns = current_netns().expect("our namespace");
    let (cfg, _) = kernel_facts(&btf, netns, EventBudget::new(10, 1000, cpus)).expect("facts");
    let catalog = Catalog::builtin("generic").expect("generic profile");
    let classes = class_table(&catalog.components).expect("classes");
    let mut dp = match hook {
        None => Datapath::load(&classes, Vec::new(), 1, Some(cfg)),
        Some(hook) => Datapath::load_with_drop_hook(&classes, Vec::new(), 1, cfg, hook),
    }
    .expect("load the probe");
    dp.attach(AttachMode::Auto).expect("attach the probe");
    dp
}

/// Each filter slot is the sum of the terms of the flows in the table whose key hashes to it.
fn assert_filter_matches_table(dp: &Datapath, table: &[(FlowKey, u64)]) {
    let mut want = vec![0u64; DROP_FLOW_FILTER as usize];
    for (key, _) in table {
        let head = key.head();
        let slot = &mut want[flow_filter_index(head) as usize];
        *slot = slot.wrapping_add(flow_filter_term(head));
    }
    let got = dp.flow_filter();
    let wrong = (0..want.len()).filter(|&i| got[i] != want[i]).count();
    assert_eq!(
        wrong,
        0,
        "{wrong} filter slots disagree with the table's {} flows",
        table.len()
    );
}

/// The flow table's filter (per slot of a hash, the flows the table holds: a drop whose slot
/// is 0 skips the table) agrees with the table as flows go in, when they are taken out, and
/// when the table is full; and a flow in a full table, where a drop the filter sends past the
/// table would go uncounted, keeps every drop.
#[test]
fn the_flow_filter_agrees_with_the_flow_table() {
    let (a, _b) = dropping_on_the_way_out("f");
    a.enter(|| {
        let dp = drop_probe();
        let sock = UdpSocket::bind("10.78.0.1:0").unwrap();
        let send = |ports: std::ops::RangeInclusive<u16>| {
            for port in ports {
                let _ = sock.send_to(b"filter", (Ipv4Addr::new(10, 78, 0, 9), port));
            }
        };
        // 3,000 flows, 3 drops each: past the flow cache (128 entries a CPU), within the table.
        for _ in 0..3 {
            send(1..=3000);
        }
        let table = dp.drop_flows().unwrap();
        let mut per_flow: HashMap<u16, u64> = HashMap::new();
        for (key, n) in table.iter().chain(&dp.cached_drop_flows()) {
            *per_flow.entry(key.outer.dport).or_default() += n;
        }
        assert_eq!(per_flow.len(), 3000);
        assert!(per_flow.values().all(|&n| n == 3), "{per_flow:?}");
        assert!(table.len() > 2000, "{} flows in the table", table.len());
        assert_filter_matches_table(&dp, &table);

        // Taken out of the table (as quiet flows are), they leave the filter.
        let keys: Vec<FlowKey> = table.iter().map(|(k, _)| *k).collect();
        let Some(taken) = dp.take_drop_flows(&keys).unwrap() else {
            eprintln!("this kernel cannot take flows out of the table: the rest is not tried");
            return;
        };
        assert_eq!(taken.len(), keys.len());
        assert!(dp.drop_flows().unwrap().is_empty());
        assert_filter_matches_table(&dp, &[]);

        // 20,000 new flows, twice: past the table's room. Nothing frees the cache's entries
        // here, so the new flows find them held, but for those of a CPU the first flows
        // never ran on (the sender may move): a flow's count is its table's and caches'.
        send(20_001..=40_000);
        send(20_001..=40_000);
        let table = dp.drop_flows().unwrap();
        assert_eq!(table.len(), DROP_FLOWS as usize);
        assert!(dp.drop_stats().unwrap().untracked > 0);
        assert_filter_matches_table(&dp, &table);
        let cached: HashMap<FlowKey, u64> = dp.cached_drop_flows().into_iter().collect();
        let short = table
            .iter()
            .filter(|(key, n)| n + cached.get(key).copied().unwrap_or(0) != 2)
            .count();
        assert_eq!(short, 0, "flows of a full table that miss drops");
    });
}

/// What one hook of the drop probe saw of the test's drops: the per-place counts of at least
/// 100 (the test's; the namespace's own few drops stay below) and the flows to or from
/// 10.78.0.0/24, each with its count.
type Seen = (Vec<(DropKey, u64)>, Vec<(FlowKey, u64)>);

/// Every hook of the drop probe this kernel takes sees the same drops alike: a BTF tracepoint
/// reading the packet in place (6.2+), one copying it, and a raw tracepoint copying the
/// `sk_buff` fields too; on the way out, where the packet has no device yet and its socket
/// gives the namespace, and on the way in, where its device does; every count exact. Every
/// kernel of the matrix takes the BTF hooks.
#[test]
fn every_drop_hook_sees_the_same_drops_alike() {
    let (a, b) = dropping_on_the_way_out("h");
    a.nft_drop_input(4789);
    // The same flow twice over: 300 frames the probe's shortcut reads, and 200 with IP
    // options, which only its full parser reads.
    let mut frames = vxlan_port_frames(300);
    frames.extend(vxlan_port_frames(200).iter().map(with_ip_options));
    // IPv4 addresses are in the first four bytes.
    let ours =
        |f: &tracer_common::drops::Flow| f.src[..3] == [10, 78, 0] || f.dst[..3] == [10, 78, 0];
    let seen = |hook: DropHook| -> Seen {
        a.enter(|| {
            let dp = drop_probe_hooked(Some(hook));
            assert_eq!(dp.drop_hook(), Some(hook));
            // A fixed source port: the same flows for both hooks.
            let sock = UdpSocket::bind("10.78.0.1:34567").unwrap();
            for _ in 0..100 {
                for port in 7000..7005 {
                    let _ = sock.send_to(b"hooks", (Ipv4Addr::new(10, 78, 0, 9), port));
                }
            }
            send_frames(&b, B.name, &frames);
            std::thread::sleep(Duration::from_millis(300));
            let mut places: Vec<(DropKey, u64)> = dp
                .drop_counters()
                .unwrap()
                .into_iter()
                .filter(|(_, n)| *n >= 100)
                .collect();
            places.sort_by_key(|(k, n)| (k.location, k.ifindex, *n));
            let mut flows: HashMap<FlowKey, u64> = HashMap::new();
            for (key, n) in dp
                .drop_flows()
                .unwrap()
                .into_iter()
                .chain(dp.cached_drop_flows())
            {
                if ours(&key.outer) {
                    *flows.entry(key).or_default() += n;
                }
            }
            let mut flows: Vec<(FlowKey, u64)> = flows.into_iter().collect();
            flows.sort_by_key(|(k, _)| (k.ifindex, k.outer.dport));
            (places, flows)
        })
    };
    let f = kernel::features();
    let peek = f.rdonly_cast.is_some() && f.drop_program(DropHook::BtfPeek).is_ok();
    if !peek {
        eprintln!(
            "kernel {}: no bpf_rdonly_cast (6.2+) or no drop reasons (5.17+): the probe cannot read packets in place",
            f.release
        );
    }
    let hooks: Vec<DropHook> = DropHook::ALL
        .into_iter()
        .filter(|&h| h != DropHook::BtfPeek || peek)
        .collect();
    let (places, flows) = seen(hooks[0]);
    for &hook in &hooks[1..] {
        let (other_places, other_flows) = seen(hook);
        assert_eq!(flows, other_flows, "{:?} against {hook:?}", hooks[0]);
        assert_eq!(places, other_places, "{:?} against {hook:?}", hooks[0]);
    }
    // Five flows out (no device: ifindex 0), one in (on va), each drop of them counted.
    let counts: Vec<(bool, u16, u64)> = flows
        .iter()
        .map(|(k, n)| (k.ifindex != 0, k.outer.dport, *n))
        .collect();
    let mut want: Vec<(bool, u16, u64)> = (7000..7005).map(|p| (false, p, 100)).collect();
    want.push((true, 4789, 500));
    assert_eq!(counts, want, "{flows:?}");
    assert_eq!(
        places.iter().map(|(_, n)| n).sum::<u64>(),
        1000,
        "{places:?}"
    );
}

#[test]
fn a_successful_ping_loses_nothing() {
    let (a, b) = crate::harness::pair::pair();
    let mut tracer = Tracer::watch(&b, &["--iface", "vb", "--interval", "0.5"]);
    tracer.started();
    let target = crate::harness::pair::A.ip.to_string();
    b.exec(&["ping", "-c", "20", "-i", "0.05", "-W", "2", &target]);
    std::thread::sleep(Duration::from_millis(800));
    let lines = tracer.stop();
    let lost: Vec<&DropLine> = drop_lines(&lines)
        .into_iter()
        .filter(|l| !l.reason.is_housekeeping())
        .collect();
    assert!(lost.is_empty(), "drops reported as lost: {lost:#?}");
    let totals = summary(&lines).drops.clone().unwrap_or_default();
    let lost_total: Vec<&DropTotal> = totals
        .iter()
        .filter(|t| !t.reason.is_housekeeping())
        .collect();
    assert!(lost_total.is_empty(), "{lost_total:#?}");
    for t in totals.iter().filter(|t| t.reason == "NO_SOCKET") {
        eprintln!(
            "ping: {} {} housekeeping drops on {}",
            t.count, t.reason, t.iface
        );
    }
    drop(a);
}
