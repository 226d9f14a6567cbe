//! The lab, tracer's test bed: a reproducible cluster network in network namespaces, with the
//! real components the seed documents describe (firewalld configured as the k0s and k3s guides
//! say, VXLAN devices as Calico and Flannel program them, BIRD speaking BGP as kube-router
//! does), healthy or with one injected misconfiguration; the synthetic packets ([`synth`]) the
//! tests and the bench send; and the demo's story ([`demo`]). It is the test bed of every
//! end-to-end test, of the benchmark and of `tracer demo`, and depends on the product crate,
//! never the reverse: the node binary holds none of it. `tracer lab ...` and `tracer demo` run
//! this crate's binary, `tracer-lab` ([`cli`]).
//!
//! Nothing leaves the lab's namespaces: no route, rule or daemon in the root namespace.

pub mod bird;
pub mod checks;
pub mod cli;
pub mod demo;
pub mod exe;
pub mod firewalld;
pub mod monitor;
pub mod net;
pub mod prometheus;
pub mod scenarios;
pub mod serve;
pub mod state;
pub mod synth;
mod zones;

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use tracer::schema::Finding;

use self::{
    net::{node_ns, nodes},
    scenarios::{CONTROLLER, Overlay, Scenario},
    state::{State, lab_dir, teardown},
};

/// Where a node's files live: its firewalld configuration and bus, BIRD's files, logs, and a
/// small root tree (etc/k0s or etc/rancher/k3s) for `tracer` run inside the node.
pub fn node_dir(prefix: &str, node: &str) -> PathBuf {
    lab_dir(prefix).join("nodes").join(node)
}

/// Where a worker's BIRD keeps its configuration, control socket, pid file and log.
pub fn bird_dir(prefix: &str, node: &str) -> PathBuf {
    node_dir(prefix, node).join("bird")
}

/// Fails unless running as root, saying why the lab needs it. Capabilities are not enough: the
/// lab creates network namespaces, starts firewalld, dbus-daemon and BIRD inside them as root,
/// and keeps its records in /var/lib/tracer-lab.
pub fn require_root() -> Result<()> {
    let status = fs::read_to_string("/proc/self/status")?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|u| u.split_whitespace().nth(1));
    if euid != Some("0") {
        bail!(
            "the lab needs root (capabilities are not enough): it creates network namespaces, starts firewalld, dbus-daemon and BIRD in them, and keeps its records in {}; run it with sudo",
            state::LAB_DIR
        );
    }
    Ok(())
}

/// Progress of `up`, for whoever is watching.
pub type Progress<'a> = &'a dyn Fn(&str);

/// Builds the lab of scenario `s` under `prefix`. On any failure what was built is removed.
pub fn up(prefix: &str, s: &Scenario, progress: Progress) -> Result<State> {
    state::validate_prefix(prefix)?;
    if let Some(existing) = State::load(prefix)? {
        // Left from before a reboot: its namespaces are gone, only files remain.
        if existing
            .namespaces
            .iter()
            .all(|n| !Path::new("/run/netns").join(n).exists())
        {
            teardown(prefix)?;
            return up(prefix, s, progress);
        }
        bail!(
            "a lab named {prefix:?} exists already (scenario {}); remove it with `tracer lab down --prefix {prefix}` or pick another --prefix",
            existing.scenario
        );
    }
    refuse_collisions(prefix)?;
    let mut st = State::new(prefix, s.name);
    st.save()?;
    match build(&mut st, s, progress) {
        Ok(()) => Ok(st),
        Err(e) => {
            progress("failed; removing what was built");
            let _ = teardown(prefix);
            Err(e)
        }
    }
}

/// A lab owns exactly the namespaces it records: refuses a prefix whose namespaces would have
/// the name of one that exists (another lab's, such as `a-pod-worker-1` of lab `a` for lab
/// `a-pod`, or anyone's).
fn refuse_collisions(prefix: &str) -> Result<()> {
    let taken: Vec<String> = net::namespaces(prefix)
        .into_iter()
        .filter(|n| Path::new("/run/netns").join(n).exists())
        .collect();
    let Some(first) = taken.first() else {
        return Ok(());
    };
    let owner = State::all()
        .into_iter()
        .find(|lab| lab.namespaces.contains(first))
        .map_or_else(
            || "it is not a lab's".to_string(),
            |lab| format!("it belongs to lab {:?}", lab.prefix),
        );
    bail!(
        "lab prefix {prefix:?} would create network namespaces that exist already ({}; {owner}); pick another --prefix",
        taken.join(", ")
    )
}

fn build(st: &mut State, s: &Scenario, progress: Progress) -> Result<()> {
    let prefix = st.prefix.clone();
    progress("namespaces, switch, links, pods and overlay");
    net::build(st, s)?;
    progress("firewalld on every node");
    start_firewalls(st, s)?;
    if s.overlay == Overlay::KubeRouterBgp {
        progress("BIRD (BGP) on the workers");
        start_bird(st, s)?;
    }
    progress("cluster services (API server, konnectivity, kubelet...)");
    start_servers(st, s)?;
    write_node_roots(&prefix, s)?;
    if s.overlay == Overlay::KubeRouterBgp && !s.breaks("bgp") {
        wait_for_bgp(&prefix)?;
    }
    st.ready = true;
    st.save()
}

fn start_firewalls(st: &mut State, s: &Scenario) -> Result<()> {
    let prefix = st.prefix.clone();
    let catalog = zones::catalog(s)?;
    let mut started = Vec::new();
    for n in nodes() {
        let dir = node_dir(&prefix, n.name);
        firewalld::prepare_node_dir(&dir)?;
        let fw = zones::node_firewall(s, &catalog, n.name);
        for (name, xml) in &fw.services {
            firewalld::write_service(&dir, name, xml)?;
        }
        for zone in &fw.zones {
            firewalld::write_zone(&dir, zone.name, &zone.xml())?;
        }
        let ns = node_ns(&prefix, n.name);
        let d = firewalld::start(&ns, &dir)
            .with_context(|| format!("starting firewalld on {}", n.name))?;
        st.started(d.dbus_pid, n.name, "dbus-daemon")?;
        st.started(d.firewalld_pid, n.name, "firewalld")?;
        started.push((ns, dir));
    }
    // All started first, then waited for: they come up in parallel.
    for (ns, dir) in &started {
        firewalld::wait_ready(ns, dir, Duration::from_secs(30))?;
    }
    Ok(())
}

fn start_bird(st: &mut State, s: &Scenario) -> Result<()> {
    let prefix = st.prefix.clone();
    let workers: Vec<net::Node> = nodes().into_iter().filter(|n| n.worker.is_some()).collect();
    let peers: Vec<std::net::Ipv4Addr> = workers.iter().map(net::Node::public_ip).collect();
    for w in &workers {
        let (gw, _) = net::pod_addrs(s, w.worker.expect("worker"));
        let o = gw.octets();
        let cidr = format!("{}.{}.{}.0/24", o[0], o[1], o[2]);
        // kube-router's default cluster AS.
        let conf = bird::config(w.public_ip(), 64512, &cidr, &peers);
        let dir = bird_dir(&prefix, w.name);
        fs::create_dir_all(&dir)?;
        let pid = bird::start(&node_ns(&prefix, w.name), &dir, &conf)?;
        st.started(pid, w.name, "bird")?;
    }
    Ok(())
}

fn wait_for_bgp(prefix: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    for w in nodes().iter().filter(|n| n.worker.is_some()) {
        let ns = node_ns(prefix, w.name);
        let dir = bird_dir(prefix, w.name);
        let state = bird::wait_ready(&ns, &dir, deadline)?;
        if let Some(problem) = state.problem() {
            bail!("BGP of {} did not come up: {problem}", w.name);
        }
    }
    Ok(())
}

/// The ports each node serves, as the cluster's components would.
fn served_ports(s: &Scenario, node: &str) -> Vec<u16> {
    match (node == CONTROLLER, s.is_k3s()) {
        (true, false) => vec![6443, 8132, 9443, 2380],
        // k3s servers run the agent too, hence the kubelet.
        (true, true) => vec![6443, 2379, 2380, 5001, 10250],
        (false, _) => vec![10250],
    }
}

fn start_servers(st: &mut State, s: &Scenario) -> Result<()> {
    let prefix = st.prefix.clone();
    let exe = exe::lab()?;
    for n in nodes() {
        let ports: Vec<String> = served_ports(s, n.name).iter().map(u16::to_string).collect();
        let log = fs::File::create(node_dir(&prefix, n.name).join("serve.log"))?;
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new("ip")
                .args(["netns", "exec", &node_ns(&prefix, n.name)])
                .arg(&exe)
                .args(["serve", "--ports", &ports.join(",")])
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting the lab's servers")?
        };
        st.started(child.id(), n.name, "servers")?;
    }
    // Checks run right after `up`: wait until every port answers.
    for n in nodes() {
        let ns = node_ns(&prefix, n.name);
        for port in served_ports(s, n.name) {
            let deadline = Instant::now() + Duration::from_secs(10);
            let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            while !checks::in_netns(&ns, || {
                std::net::TcpStream::connect_timeout(&to, Duration::from_millis(200)).is_ok()
            })? {
                if Instant::now() > deadline {
                    bail!(
                        "the servers of {} do not listen on {port} (see {})",
                        n.name,
                        node_dir(&prefix, n.name).join("serve.log").display()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    Ok(())
}

/// The distribution's configuration file in each node's root tree, so `tracer` run inside a
/// node (`lab exec`) detects the profile as it would on a real node.
fn write_node_roots(prefix: &str, s: &Scenario) -> Result<()> {
    let (path, text) = match s.profile {
        "k0s-calico" => (
            "etc/k0s/k0s.yaml",
            "spec:\n  network:\n    provider: calico\n    podCIDR: 10.244.0.0/16\n    serviceCIDR: 10.96.0.0/12\n",
        ),
        "k0s-kube-router" => (
            "etc/k0s/k0s.yaml",
            "spec:\n  network:\n    provider: kuberouter\n    podCIDR: 10.244.0.0/16\n    serviceCIDR: 10.96.0.0/12\n",
        ),
        _ if s.nics == scenarios::Nics::Segregated => (
            "etc/rancher/k3s/config.yaml",
            // As the segregated-networks guide runs k3s: flannel on the cluster NIC.
            "flannel-backend: vxlan\nflannel-iface: eth1\ncluster-cidr: 10.42.0.0/16\nservice-cidr: 10.43.0.0/16\n",
        ),
        _ => (
            "etc/rancher/k3s/config.yaml",
            "flannel-backend: vxlan\ncluster-cidr: 10.42.0.0/16\nservice-cidr: 10.43.0.0/16\n",
        ),
    };
    for n in nodes() {
        let root = node_dir(prefix, n.name);
        let file = root.join(path);
        fs::create_dir_all(file.parent().expect("a directory"))?;
        fs::write(&file, text)?;
        // The stock firewalld definitions, where the node's own /etc/firewalld overrides them.
        let usr = root.join("usr/lib");
        fs::create_dir_all(&usr)?;
        let link = usr.join("firewalld");
        if !link.exists() {
            std::os::unix::fs::symlink("/usr/lib/firewalld", &link)?;
        }
    }
    Ok(())
}

/// The namespace and environment a command run "in" a node gets.
pub struct NodeShell {
    pub netns: String,
    pub env: Vec<(String, String)>,
}

/// Resolves a node name (`controller-1`, `worker-2`, `pod-worker-1`, `switch`) of a lab.
pub fn node_shell(prefix: &str, node: &str) -> Result<NodeShell> {
    let st = State::load(prefix)?
        .with_context(|| format!("no lab named {prefix:?} (see `tracer lab status`)"))?;
    let netns = format!("{prefix}-{node}");
    if !st.namespaces.contains(&netns) {
        let names: Vec<String> = st
            .namespaces
            .iter()
            .filter_map(|n| n.strip_prefix(&format!("{prefix}-")).map(str::to_string))
            .collect();
        bail!(
            "lab {prefix:?} has no node {node:?} (nodes: {})",
            names.join(", ")
        );
    }
    let mut env = Vec::new();
    let dir = node_dir(prefix, node);
    if dir.join("bus.sock").exists() {
        env.push((
            "DBUS_SYSTEM_BUS_ADDRESS".into(),
            firewalld::bus_address(&dir)?,
        ));
        env.push(("TRACER_NODE_ROOT".into(), dir.display().to_string()));
    }
    Ok(NodeShell { netns, env })
}

/// `firewall-cmd` on a lab node.
pub fn firewall_cmd(prefix: &str, node: &str, args: &[&str]) -> Result<String> {
    firewalld::firewall_cmd(&node_ns(prefix, node), &node_dir(prefix, node), args)
}

/// True when every recorded daemon of the lab still runs.
pub fn daemons_alive(st: &State) -> Vec<(String, String, bool)> {
    st.processes
        .iter()
        .map(|p| {
            (
                p.node.clone(),
                p.what.clone(),
                state::start_time(p.pid) == Some(p.start_time),
            )
        })
        .collect()
}

pub fn exists(prefix: &str) -> bool {
    Path::new(&lab_dir(prefix)).join("state.json").exists()
}

/// The commands of a diagnosis's fixes that change a lab node's running state, ready to run
/// in it: comments and persistence under /etc are left out (lab nodes share the host's /etc),
/// as are the dummy-interface workaround (this kernel has no dummy module) and what addresses
/// a real cluster or the host's services (`kubectl`, `systemctl`: the lab has neither of its
/// own), and the lab's gateway fills the placeholder of a default-route fix.
pub fn applicable_fixes<'a>(fixes: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let gateway = net::gateway().to_string();
    let mut out: Vec<String> = Vec::new();
    for fix in fixes {
        let cmd = fix
            .split('#')
            .next()
            .unwrap_or("")
            .trim()
            .replace("GATEWAY", &gateway);
        let elsewhere = ["kubectl ", "systemctl "]
            .iter()
            .any(|c| cmd.starts_with(c));
        if cmd.is_empty()
            || cmd.contains("/etc/")
            || cmd.contains("dummy")
            || elsewhere
            || out.contains(&cmd)
        {
            continue;
        }
        out.push(cmd);
    }
    out
}

/// The applicable fixes (see [`applicable_fixes`]) of these findings, as `tracer diagnose
/// --output json` prints them: each finding's `fix` commands.
pub fn findings_fixes<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Vec<String> {
    applicable_fixes(
        findings
            .into_iter()
            .flat_map(|f| f.fix.iter().map(String::as_str)),
    )
}

/// Runs one fix command (from [`applicable_fixes`]) with `sh -c` in a lab node, as an operator
/// would on the node; `progress` is told the command first.
pub fn apply_fix(prefix: &str, node: &str, cmd: &str, progress: Progress) -> Result<()> {
    let shell = node_shell(prefix, node)?;
    progress(&format!("{node}$ {cmd}"));
    let out = Command::new("ip")
        .args(["netns", "exec", &shell.netns, "sh", "-c", cmd])
        .envs(shell.env)
        .output()
        .with_context(|| format!("running `{cmd}` in {node}"))?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn applicable_fixes_skip_what_would_touch_the_host() {
        let fixes = [
            "firewall-cmd --permanent --zone=public --add-port=4789/udp",
            "firewall-cmd --reload",
            "# and set the provider's MTU",
            "echo 'net.ipv4.conf.all.rp_filter = 2' > /etc/sysctl.d/90-rp-filter-loose.conf",
            "ip route add default via GATEWAY dev eth0    # your gateway on eth0",
            "ip link add dummy0 type dummy && ip link set dummy0 up",
            "firewall-cmd --reload",
            "kubectl patch felixconfiguration default --type merge -p '{}'",
            "systemctl try-reload-or-restart firewalld",
        ];
        assert_eq!(
            super::applicable_fixes(fixes),
            [
                "firewall-cmd --permanent --zone=public --add-port=4789/udp",
                "firewall-cmd --reload",
                "ip route add default via 192.168.10.1 dev eth0"
            ]
        );
    }
}
