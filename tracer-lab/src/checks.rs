//! The lab's checks: each flow a cluster of the scenario's kind needs, tried for real from the
//! namespace that sends it. Every scenario says which checks its fault must break; a healthy
//! scenario passes them all. The traffic generator replays the same flows in a loop.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use super::{
    bird,
    net::{self, Node, node_ns, nodes, pod_ns},
    scenarios::{CONTROLLER, Nics, Overlay, Scenario},
};

/// How a check tries its flow.
#[derive(Clone, Debug)]
pub enum Probe {
    /// A TCP connection from `ns` that must be answered.
    Tcp { ns: String, to: SocketAddr },
    /// Pings from `ns` (a pod); with `full_size`, as large as the pod's MTU allows, DF set.
    Ping {
        ns: String,
        to: Ipv4Addr,
        full_size: bool,
    },
    /// BIRD's BGP sessions on a worker all Established.
    Bgp { ns: String, node: String },
}

#[derive(Clone, Debug)]
pub struct Check {
    pub name: String,
    pub probe: Probe,
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    /// What the scenario says this check should do.
    pub expected_ok: bool,
}

fn tcp(name: String, ns: String, to: Ipv4Addr, port: u16) -> Check {
    Check {
        name,
        probe: Probe::Tcp {
            ns,
            to: SocketAddr::from((to, port)),
        },
    }
}

/// The address other nodes reach `n` at for cluster traffic.
fn node_addr(s: &Scenario, n: &Node) -> Ipv4Addr {
    net::overlay_underlay(s, n).0
}

/// Every check of the scenario, in a stable order.
pub fn checks(prefix: &str, s: &Scenario) -> Vec<Check> {
    let all = nodes();
    let workers: Vec<&Node> = all.iter().filter(|n| n.worker.is_some()).collect();
    let controller = all
        .iter()
        .find(|n| n.name == CONTROLLER)
        .expect("controller");
    let api = net::apiserver(s);
    let mut out = Vec::new();
    for w in &workers {
        out.push(tcp(
            format!("kube-apiserver {} -> {}", w.name, CONTROLLER),
            node_ns(prefix, w.name),
            api,
            6443,
        ));
        if s.is_k3s() {
            out.push(tcp(
                format!("spegel {} -> {}", w.name, CONTROLLER),
                node_ns(prefix, w.name),
                api,
                5001,
            ));
        } else {
            out.push(tcp(
                format!("konnectivity {} -> {}", w.name, CONTROLLER),
                node_ns(prefix, w.name),
                api,
                8132,
            ));
        }
        out.push(tcp(
            format!("kubelet {} -> {}", CONTROLLER, w.name),
            node_ns(prefix, controller.name),
            node_addr(s, w),
            10250,
        ));
    }
    if s.overlay == Overlay::KubeRouterBgp {
        for w in &workers {
            out.push(Check {
                name: format!("bgp {}", w.name),
                probe: Probe::Bgp {
                    ns: node_ns(prefix, w.name),
                    node: w.name.to_string(),
                },
            });
        }
    }
    for (a, b) in [(workers[0], workers[1]), (workers[1], workers[0])] {
        let (_, to) = net::pod_addrs(s, b.worker.expect("worker"));
        let from = pod_ns(prefix, a.name);
        out.push(Check {
            name: format!("pod-to-pod {} -> {}", a.name, b.name),
            probe: Probe::Ping {
                ns: from.clone(),
                to,
                full_size: false,
            },
        });
        if s.overlay.vxlan().is_some() {
            out.push(Check {
                name: format!("pod-to-pod-large {} -> {}", a.name, b.name),
                probe: Probe::Ping {
                    ns: from,
                    to,
                    full_size: true,
                },
            });
        }
    }
    // A pod reaching the other worker's kubelet on its pod-network address (metrics-server's path).
    let (gw2, _) = net::pod_addrs(s, workers[1].worker.expect("worker"));
    out.push(tcp(
        format!("pod-to-node {} -> {}", workers[0].name, workers[1].name),
        pod_ns(prefix, workers[0].name),
        gw2,
        10250,
    ));
    for n in &all {
        out.push(tcp(
            format!("service {}", n.name),
            node_ns(prefix, n.name),
            net::kubernetes_service(s),
            443,
        ));
    }
    if s.nics == Nics::Segregated {
        out.push(tcp(
            format!(
                "cluster-net-kubelet {} -> {}",
                workers[1].name, workers[0].name
            ),
            node_ns(prefix, workers[1].name),
            workers[0].cluster_ip(),
            10250,
        ));
    }
    out
}

/// Runs `f` on a thread inside the lab namespace `ns`.
pub fn in_netns<R: Send>(ns: &str, f: impl FnOnce() -> R + Send) -> Result<R> {
    tracer_netns::run_in(ns, f).with_context(|| format!("in {ns} (is the lab up?)"))
}

fn tcp_roundtrip(to: SocketAddr) -> Result<(), String> {
    let mut conn =
        TcpStream::connect_timeout(&to, Duration::from_millis(1500)).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(Duration::from_millis(1500)))
        .map_err(|e| e.to_string())?;
    conn.write_all(b"lab\n").map_err(|e| e.to_string())?;
    // Read to the server's close: a client that hangs up first leaves the server's last
    // segments to arrive at a closed socket, which the node then drops as NO_SOCKET.
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    if answer.starts_with(b"ok") {
        Ok(())
    } else {
        Err("no answer".into())
    }
}

/// The MTU of the pod's interface.
fn pod_mtu(ns: &str) -> Result<u32, String> {
    let text = net::ip(ns, &["-j", "link", "show", "eth0"]).map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    v[0]["mtu"]
        .as_u64()
        .map(|m| m as u32)
        .ok_or_else(|| "no MTU for the pod's eth0".to_string())
}

fn ping(ns: &str, to: Ipv4Addr, full_size: bool) -> Result<(), String> {
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns", "exec", ns, "ping", "-q", "-n", "-c", "2", "-i", "0.2", "-W", "1",
    ]);
    if full_size {
        // 20 bytes of IPv4 header and 8 of ICMP: the payload that fills the MTU exactly.
        let size = pod_mtu(ns)?.saturating_sub(28);
        cmd.args(["-M", "do", "-s", &size.to_string()]);
    }
    let out = cmd
        .arg(to.to_string())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&out.stdout);
        Err(text
            .lines()
            .find(|l| l.contains("packet loss"))
            .unwrap_or("no reply")
            .trim()
            .to_string())
    }
}

pub fn run_check(prefix: &str, c: &Check) -> Result<(), String> {
    match &c.probe {
        Probe::Tcp { ns, to } => in_netns(ns, || tcp_roundtrip(*to)).map_err(|e| e.to_string())?,
        Probe::Ping { ns, to, full_size } => ping(ns, *to, *full_size),
        Probe::Bgp { ns, node } => {
            let dir = super::bird_dir(prefix, node);
            // A session repaired just before (a fix applied, a firewall reloaded) is given
            // the time BIRD takes to retry.
            let state = bird::wait_ready(ns, &dir, Instant::now() + bird::REPAIR_TIME)
                .map_err(|e| e.to_string())?;
            state.problem().map_or(Ok(()), Err)
        }
    }
}

/// Runs every check once. The BGP checks go first, since pod traffic in a BGP lab rides on
/// the routes they wait for (a session repaired a moment ago is given time to come back);
/// then every other check runs at the same time (a failing one waits for its timeout).
pub fn run_all(prefix: &str, s: &Scenario) -> Vec<Outcome> {
    let checks = checks(prefix, s);
    let checks = &checks;
    let is_bgp = |c: &Check| matches!(c.probe, Probe::Bgp { .. });
    let mut results: Vec<Option<Result<(), String>>> = vec![None; checks.len()];
    for first in [true, false] {
        let batch: Vec<usize> = (0..checks.len())
            .filter(|&i| is_bgp(&checks[i]) == first)
            .collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .iter()
                .map(|&i| (i, scope.spawn(move || run_check(prefix, &checks[i]))))
                .collect();
            for (i, h) in handles {
                results[i] = Some(h.join().unwrap_or_else(|_| Err("check panicked".into())));
            }
        });
    }
    checks
        .iter()
        .zip(results)
        .map(|(c, result)| {
            let result = result.expect("every check ran");
            Outcome {
                ok: result.is_ok(),
                detail: result.err().unwrap_or_default(),
                expected_ok: !s.breaks(&c.name),
                name: c.name.clone(),
            }
        })
        .collect()
}

/// Replays the scenario's flows for `seconds`, each flow in a loop of its own so a failing
/// one (waiting for its timeout) does not hold the others back. Returns (answered, failed).
pub fn traffic(prefix: &str, s: &Scenario, seconds: f64) -> (u64, u64) {
    let checks: Vec<Check> = checks(prefix, s)
        .into_iter()
        .filter(|c| !matches!(c.probe, Probe::Bgp { .. }))
        .collect();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    std::thread::scope(|scope| {
        let handles: Vec<_> = checks
            .iter()
            .map(|c| {
                scope.spawn(move || {
                    let (mut ok, mut failed) = (0u64, 0u64);
                    while Instant::now() < deadline {
                        match run_check(prefix, c) {
                            Ok(()) => ok += 1,
                            Err(_) => failed += 1,
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    (ok, failed)
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok())
            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
    })
}
