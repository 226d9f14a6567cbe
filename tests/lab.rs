//! The lab, built for real: healthy scenarios carry every flow and configure firewalld as the
//! seed documents do; broken ones fail exactly their flows; `lab down` leaves nothing behind,
//! even after `lab up` was killed half way; labs with different prefixes coexist.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tracer_lab::state::State;

use crate::harness::{Lab, lab::text, require_root, tracer::BIN};

fn namespaces_of(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&format!("{prefix}-")))
                .collect()
        })
        .unwrap_or_default()
}

fn pids(state: &State) -> Vec<u32> {
    state.processes.iter().map(|p| p.pid).collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'))
}

/// `lab down` and the proof that nothing of the lab is left.
fn down_leaves_nothing(lab: &Lab) {
    let state = lab.state();
    let out = lab.run(&["down"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        namespaces_of(&lab.prefix).is_empty(),
        "{:?}",
        namespaces_of(&lab.prefix)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids(&state).into_iter().any(alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<u32> = pids(&state).into_iter().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "processes still running: {left:?}");
    assert!(!lab.dir().exists());
}

fn fail_lines(check: &str) -> Vec<&str> {
    check.lines().filter(|l| l.starts_with("FAIL")).collect()
}

#[test]
fn healthy_kube_router_lab_peers_over_bgp_with_the_k0s_firewall() {
    let lab = Lab::up("k0s-kube-router", "k");
    let check = lab.check();
    assert!(fail_lines(&check).is_empty(), "{check}");
    for line in [
        "ok   bgp worker-1",
        "ok   bgp worker-2",
        "ok   pod-to-pod worker-1 -> worker-2",
        "ok   kube-apiserver worker-2 -> controller-1",
    ] {
        assert!(check.contains(line), "{line}:\n{check}");
    }
    let ctl = tracer_lab::bird::socket_path(&tracer_lab::bird_dir(&lab.prefix, "worker-1"));
    let bgp = lab.exec(
        "worker-1",
        &["birdc", "-s", ctl.to_str().unwrap(), "show", "protocols"],
    );
    assert!(bgp.contains("Established"), "{bgp}");
    let routes = lab.exec("worker-1", &["ip", "route"]);
    assert!(
        routes.contains("10.244.2.0/24 via 192.168.10.22 dev eth0 proto bird"),
        "{routes}"
    );

    // The k0s guide's firewalld setup: services per role, masquerade and CIDR sources on workers.
    let worker = lab.exec("worker-1", &["firewall-cmd", "--list-all"]);
    for want in [
        "interfaces: eth0",
        "sources: 10.244.0.0/16 10.96.0.0/12",
        "services: dhcpv6-client k0s-worker ssh",
        "masquerade: yes",
    ] {
        assert!(worker.contains(want), "{want}:\n{worker}");
    }
    let service = lab.exec("worker-1", &["firewall-cmd", "--info-service=k0s-worker"]);
    assert!(service.contains("ports: 179/tcp 10250/tcp"), "{service}");
    let controller = lab.exec("controller-1", &["firewall-cmd", "--list-all"]);
    for want in [
        "services: dhcpv6-client k0s-controller ssh",
        "masquerade: no",
    ] {
        assert!(controller.contains(want), "{want}:\n{controller}");
    }
    let service = lab.exec(
        "controller-1",
        &["firewall-cmd", "--info-service=k0s-controller"],
    );
    assert!(
        service.contains("ports: 2380/tcp 6443/tcp 8132/tcp 9443/tcp"),
        "{service}"
    );
    down_leaves_nothing(&lab);
}

#[test]
fn segregated_k3s_lab_uses_trusted_and_public_zones() {
    let lab = Lab::up("k3s-segregated", "s");
    let check = lab.check();
    assert!(fail_lines(&check).is_empty(), "{check}");
    let trusted = lab.exec(
        "worker-2",
        &["firewall-cmd", "--zone=trusted", "--list-all"],
    );
    for want in [
        "target: ACCEPT",
        "interfaces: eth1",
        "sources: 10.42.0.0/16 10.43.0.0/16",
    ] {
        assert!(trusted.contains(want), "{want}:\n{trusted}");
    }
    let public = lab.exec("worker-2", &["firewall-cmd", "--zone=public", "--list-all"]);
    let ports = public
        .lines()
        .find(|l| l.trim_start().starts_with("ports:"))
        .unwrap();
    for p in [
        "80/tcp", "443/tcp", "9095/tcp", "6379/tcp", "8125/tcp", "8125/udp",
    ] {
        assert!(ports.contains(p), "{p}: {ports}");
    }
    assert!(
        !ports.contains("8472"),
        "the overlay port belongs to the trusted side: {ports}"
    );
    // `tracer ports` on the node writes for the zone its cluster NIC is in, the zone
    // diagnose's fixes use (pod_cidr_not_trusted), not the shared layout's public.
    let commands = lab.exec(
        "worker-2",
        &[
            BIN,
            "ports",
            "--profile",
            "k3s-flannel",
            "--role",
            "agent",
            "--format",
            "firewall-cmd",
        ],
    );
    for want in [
        "# Zone trusted, the zone of this node's cluster interface eth1",
        "--zone=trusted --add-source=10.42.0.0/16",
        "--zone=trusted --add-port=8472/udp",
    ] {
        assert!(commands.contains(want), "{want}:\n{commands}");
    }
    down_leaves_nothing(&lab);
}

#[test]
fn broken_labs_fail_only_their_flows_and_coexist() {
    let vxlan = Lab::up("calico-vxlan-blocked", "v");
    let konn = Lab::up("konnectivity-blocked", "c");
    // Both labs at once, each breaking only what its fault breaks.
    let check = vxlan.check();
    let failed = fail_lines(&check);
    assert!(
        !failed.is_empty() && failed.iter().all(|l| l.contains("pod-to-")),
        "{check}"
    );
    assert!(
        check.contains("ok   kube-apiserver worker-2 -> controller-1"),
        "{check}"
    );
    let check = konn.check();
    let failed = fail_lines(&check);
    assert_eq!(failed.len(), 2, "{check}");
    assert!(
        failed.iter().all(|l| l.starts_with("FAIL konnectivity")),
        "{check}"
    );
    // The fault is where the scenario says: 4789/udp missing from worker-2's service only.
    assert!(
        !vxlan
            .exec("worker-2", &["firewall-cmd", "--info-service=k0s-worker"])
            .contains("4789/udp")
    );
    assert!(
        vxlan
            .exec("worker-1", &["firewall-cmd", "--info-service=k0s-worker"])
            .contains("4789/udp")
    );
    down_leaves_nothing(&vxlan);
    down_leaves_nothing(&konn);
}

#[test]
fn lab_down_after_kill_9_of_lab_up_removes_everything() {
    require_root();
    let rules_before = text(
        &Command::new("nft")
            .args(["list", "ruleset"])
            .output()
            .unwrap()
            .stdout,
    );
    let lab = Lab::named("x");
    let mut up = Command::new(BIN)
        .args([
            "lab",
            "up",
            "--scenario",
            "k0s-calico",
            "--prefix",
            &lab.prefix,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it has started daemons, half way through.
    let state_file = lab.dir().join("state.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let started = std::fs::read_to_string(&state_file).is_ok_and(|s| s.contains("firewalld"));
        if started {
            break;
        }
        assert!(Instant::now() < deadline, "lab up never started firewalld");
        std::thread::sleep(Duration::from_millis(20));
    }
    up.kill().unwrap();
    up.wait().unwrap();
    assert!(!namespaces_of(&lab.prefix).is_empty());
    down_leaves_nothing(&lab);
    let rules_after = text(
        &Command::new("nft")
            .args(["list", "ruleset"])
            .output()
            .unwrap()
            .stdout,
    );
    assert_eq!(
        rules_before, rules_after,
        "the root namespace's ruleset changed"
    );
}

#[test]
fn the_demo_finds_the_blocked_overlay_and_cleans_up() {
    require_root();
    let out = Command::new(BIN)
        .args(["demo", "--seconds", "4"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("FAIL pod-to-pod worker-1 -> worker-2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("calico-vxlan packets arriving on eth0, reason NETFILTER_DROP"),
        "{stdout}"
    );
    assert!(stdout.contains("a firewall rule dropped it"), "{stdout}");
    assert!(
        stdout.contains("services: dhcpv6-client k0s-worker ssh"),
        "{stdout}"
    );
    // Then the diagnosis, its fix applied, and every flow working again.
    assert!(
        stdout.contains("cause: service k0s-worker of zone public lacks 4789/udp"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "worker-2$ firewall-cmd --permanent --service=k0s-worker --add-port=4789/udp"
        ),
        "{stdout}"
    );
    let after = stdout.split("6. Applying").nth(1).expect("step 6");
    assert!(
        !after.contains("FAIL") && after.contains("ok   pod-to-pod worker-1 -> worker-2"),
        "{after}"
    );
    assert!(stdout.contains("Lab removed"), "{stdout}");
    assert!(namespaces_of("demo").is_empty());
}

/// A lab owns what it recorded and nothing else. With lab `<p>o-2` up and someone's namespace
/// `<p>o-victim` running a process, `lab down --prefix <p>o` (no such lab) says there was
/// nothing to remove and leaves both alone; `lab up` of a prefix whose namespaces exist
/// already (`<p>q-switch`, made by hand) is refused, and the refusal removes nothing.
#[test]
fn labs_remove_only_what_they_recorded() {
    let other = Lab::up("k0s-calico", "o-2");
    let base = other.prefix.trim_end_matches("-2").to_string();
    let theirs = namespaces_of(&other.prefix);
    assert_eq!(theirs.len(), 6, "{theirs:?}");

    let victim = tracer_netns::NetNs::named(&format!("{base}-victim")).unwrap();
    let mut sleeper = victim
        .command(&["sleep", "600"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let down = Command::new(BIN)
        .args(["lab", "down", "--prefix", &base])
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(
        text(&down.stderr).contains("nothing to remove"),
        "{}",
        text(&down.stderr)
    );
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "the process in {} was killed",
        victim.name()
    );
    assert!(
        std::path::Path::new("/run/netns")
            .join(victim.name())
            .exists()
    );
    assert_eq!(namespaces_of(&other.prefix), theirs);
    assert!(other.state().ready);

    let squatted = format!("{}q", base.trim_end_matches('o'));
    let squatter = tracer_netns::NetNs::named(&format!("{squatted}-switch")).unwrap();
    let up = Command::new(BIN)
        .args([
            "lab",
            "up",
            "--prefix",
            &squatted,
            "--scenario",
            "k0s-calico",
        ])
        .output()
        .unwrap();
    assert!(
        !up.status.success(),
        "lab up over {} succeeded",
        squatter.name()
    );
    let why = text(&up.stderr);
    assert!(
        why.contains(squatter.name()) && why.contains("not a lab's"),
        "{why}"
    );
    assert_eq!(namespaces_of(&squatted), [squatter.name()]);
    assert!(!tracer_lab::state::lab_dir(&squatted).exists());

    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}
