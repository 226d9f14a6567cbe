//! The lab's network: a switch namespace with a bridge per network, node namespaces cabled to
//! it, a pod namespace behind each worker, the provider's overlay between workers (VXLAN
//! devices with static forwarding entries, as Calico and Flannel program them), and the
//! network-level faults (MTU, rp_filter, default route, a drop on the underlay between nodes).

use std::{net::Ipv4Addr, process::Command};

use anyhow::Result;

use super::{
    scenarios::{CONTROLLER, Fault, Nics, Scenario, WORKERS},
    state::State,
};

/// The underlay (eth0) and, in segregated scenarios, the cluster network (eth1).
pub const PUBLIC_NET: [u8; 3] = [192, 168, 10];
pub const CLUSTER_NET: [u8; 3] = [192, 168, 20];
/// Address of the switch on each network: every node's default gateway.
pub const GATEWAY_HOST: u8 = 1;

// Commands in a namespace: the one implementation the tests, the lab and the bench share.
pub use tracer_netns::{exec, ip, nft, run, sysctl};

/// One node of the lab and its addresses.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: &'static str,
    /// Last octet of its addresses on every network.
    pub host: u8,
    /// 1-based number of a worker; `None` for the controller.
    pub worker: Option<u8>,
}

impl Node {
    pub fn public_ip(&self) -> Ipv4Addr {
        addr(PUBLIC_NET, self.host)
    }

    pub fn cluster_ip(&self) -> Ipv4Addr {
        addr(CLUSTER_NET, self.host)
    }

    /// Two letters naming the node's ports on the switch (`c1`, `w2`).
    fn short(&self) -> String {
        match self.worker {
            Some(n) => format!("w{n}"),
            None => "c1".into(),
        }
    }
}

fn addr(net: [u8; 3], host: u8) -> Ipv4Addr {
    Ipv4Addr::new(net[0], net[1], net[2], host)
}

/// The public network's gateway: the nodes' default route.
pub fn gateway() -> Ipv4Addr {
    addr(PUBLIC_NET, GATEWAY_HOST)
}

pub fn nodes() -> Vec<Node> {
    let mut nodes = vec![Node {
        name: CONTROLLER,
        host: 11,
        worker: None,
    }];
    for (i, w) in WORKERS.iter().enumerate() {
        nodes.push(Node {
            name: w,
            host: 21 + i as u8,
            worker: Some(i as u8 + 1),
        });
    }
    nodes
}

pub fn node(name: &str) -> Option<Node> {
    nodes().into_iter().find(|n| n.name == name)
}

pub fn node_ns(prefix: &str, node: &str) -> String {
    format!("{prefix}-{node}")
}

pub fn pod_ns(prefix: &str, node: &str) -> String {
    format!("{prefix}-pod-{node}")
}

pub fn switch_ns(prefix: &str) -> String {
    format!("{prefix}-switch")
}

/// The /16 pods come from, and the first /24 of it the nodes' pod subnets are numbered from.
pub fn pod_cidr(s: &Scenario) -> [u8; 2] {
    if s.is_k3s() { [10, 42] } else { [10, 244] }
}

/// The kubernetes service's ClusterIP.
pub fn kubernetes_service(s: &Scenario) -> Ipv4Addr {
    if s.is_k3s() {
        Ipv4Addr::new(10, 43, 0, 1)
    } else {
        Ipv4Addr::new(10, 96, 0, 1)
    }
}

/// A worker's pod subnet gateway (.1) and its pod's address (.2).
pub fn pod_addrs(s: &Scenario, worker: u8) -> (Ipv4Addr, Ipv4Addr) {
    let [a, b] = pod_cidr(s);
    (
        Ipv4Addr::new(a, b, worker, 1),
        Ipv4Addr::new(a, b, worker, 2),
    )
}

/// The address the overlay runs over: eth1 when the cluster has its own network.
pub fn overlay_underlay(s: &Scenario, n: &Node) -> (Ipv4Addr, &'static str) {
    match s.nics {
        Nics::Single => (n.public_ip(), "eth0"),
        Nics::Segregated => (n.cluster_ip(), "eth1"),
    }
}

/// The API server address nodes use.
pub fn apiserver(s: &Scenario) -> Ipv4Addr {
    let c = node(CONTROLLER).expect("controller");
    overlay_underlay(s, &c).0
}

fn underlay_mtu(s: &Scenario) -> u32 {
    if s.fault == Some(Fault::OverlayMtuTooBig) {
        1450
    } else {
        1500
    }
}

/// Every namespace a lab of `prefix` creates: the switch, the nodes, the workers' pods.
pub fn namespaces(prefix: &str) -> Vec<String> {
    let mut all = vec![switch_ns(prefix)];
    for n in nodes() {
        all.push(node_ns(prefix, n.name));
        if n.worker.is_some() {
            all.push(pod_ns(prefix, n.name));
        }
    }
    all
}

fn create_ns(state: &mut State, name: &str) -> Result<()> {
    // Recorded before it exists, so a lab killed half way is still removed whole; taken off
    // the record again when it could not be created, so teardown never deletes a namespace
    // the lab did not make.
    state.will_create_namespace(name)?;
    if let Err(e) = run(Command::new("ip").args(["netns", "add", name])) {
        state.namespaces.retain(|n| n != name);
        state.save()?;
        return Err(e.into());
    }
    ip(name, &["link", "set", "lo", "up"])?;
    // IPv6 is off in the lab: its link-local chatter would only add noise to every view.
    sysctl(name, "net.ipv6.conf.all.disable_ipv6", "1")?;
    sysctl(name, "net.ipv6.conf.default.disable_ipv6", "1")?;
    Ok(())
}

/// A network of the switch: its bridge, its /24, and the suffix of the node ports on it.
type Net = (&'static str, [u8; 3], &'static str);

/// Builds every namespace, link, address and route of the scenario.
pub fn build(state: &mut State, s: &Scenario) -> Result<()> {
    let prefix = state.prefix.clone();
    let switch = switch_ns(&prefix);
    let nets: &[Net] = match s.nics {
        Nics::Single => &[("br0", PUBLIC_NET, "e0")],
        Nics::Segregated => &[("br0", PUBLIC_NET, "e0"), ("br1", CLUSTER_NET, "e1")],
    };
    build_switch(state, s, &switch, nets)?;
    for n in nodes() {
        build_node(state, s, &n, &switch, nets)?;
    }
    if s.nics == Nics::Segregated {
        // worker-2 reaches the cluster network from its public address (its node IP), so what
        // it sends arrives on worker-1's eth1 while worker-1 routes the reply out of eth0.
        let w2 = node(WORKERS[1]).expect("worker-2");
        ip(
            &node_ns(&prefix, w2.name),
            &[
                "route",
                "replace",
                &format!(
                    "{}.{}.{}.0/24",
                    CLUSTER_NET[0], CLUSTER_NET[1], CLUSTER_NET[2]
                ),
                "dev",
                "eth1",
                "src",
                &w2.public_ip().to_string(),
            ],
        )?;
    }
    for n in nodes().iter().filter(|n| n.worker.is_some()) {
        pod(state, s, n)?;
    }
    if s.overlay.vxlan().is_some() {
        vxlan(&prefix, s)?;
    }
    underlay_drop(&prefix, s)?;
    kube_proxy(&prefix, s)
}

/// [`Fault::UnderlayDrop`]: an nftables rule on the switch's bridges (in the switch's
/// namespace, outside every node) drops the overlay packets of one direction of one pair.
fn underlay_drop(prefix: &str, s: &Scenario) -> Result<()> {
    let Some(Fault::UnderlayDrop { from, to }) = s.fault else {
        return Ok(());
    };
    let (_, port) = s
        .overlay
        .vxlan()
        .ok_or_else(|| anyhow::anyhow!("{}: an underlay drop needs a VXLAN overlay", s.name))?;
    let addr_of = |name: &str| {
        node(name)
            .map(|n| overlay_underlay(s, &n).0)
            .ok_or_else(|| anyhow::anyhow!("{}: no lab node {name}", s.name))
    };
    let ruleset = format!(
        "table bridge tracer_lab_underlay {{\n chain forward {{\n  type filter hook forward priority 0;\n  ip saddr {} ip daddr {} udp dport {port} drop\n }}\n}}\n",
        addr_of(from)?,
        addr_of(to)?
    );
    tracer_netns::nft(&switch_ns(prefix), &ruleset)?;
    Ok(())
}

/// The switch namespace `switch` with a bridge per network, each holding the gateway address.
fn build_switch(state: &mut State, s: &Scenario, switch: &str, nets: &[Net]) -> Result<()> {
    create_ns(state, switch)?;
    for (br, net, _) in nets {
        ip(switch, &["link", "add", br, "type", "bridge"])?;
        ip(
            switch,
            &["link", "set", br, "mtu", &underlay_mtu(s).to_string(), "up"],
        )?;
        ip(
            switch,
            &[
                "addr",
                "add",
                &format!("{}/24", addr(*net, GATEWAY_HOST)),
                "dev",
                br,
            ],
        )?;
    }
    Ok(())
}

/// Node `n`'s namespace, cabled to each network of the switch, with its default route and the
/// forwarding and reverse-path settings of the scenario.
fn build_node(state: &mut State, s: &Scenario, n: &Node, switch: &str, nets: &[Net]) -> Result<()> {
    let ns = node_ns(&state.prefix, n.name);
    create_ns(state, &ns)?;
    for (i, (br, net, suffix)) in nets.iter().enumerate() {
        let dev = format!("eth{i}");
        let port = format!("{}-{suffix}", n.short());
        let mac = format!(
            "02:1a:b0:{:02x}:{:02x}:{:02x}",
            i,
            n.host,
            n.worker.unwrap_or(0)
        );
        ip(
            &ns,
            &[
                "link", "add", &dev, "address", &mac, "type", "veth", "peer", "name", &port,
                "netns", switch,
            ],
        )?;
        for (where_, link) in [(ns.as_str(), &dev), (switch, &port)] {
            ip(
                where_,
                &["link", "set", link, "mtu", &underlay_mtu(s).to_string()],
            )?;
        }
        ip(switch, &["link", "set", &port, "master", br, "up"])?;
        ip(
            &ns,
            &[
                "addr",
                "add",
                &format!("{}/24", addr(*net, n.host)),
                "dev",
                &dev,
            ],
        )?;
        ip(&ns, &["link", "set", &dev, "up"])?;
    }
    if s.fault != Some(Fault::NoDefaultRoute { node: n.name }) {
        ip(
            &ns,
            &["route", "add", "default", "via", &gateway().to_string()],
        )?;
    }
    sysctl(&ns, "net.ipv4.ip_forward", "1")?;
    // Loose reverse-path filtering is what multi-NIC nodes need; strict is the fault.
    let rp = if s.fault == Some(Fault::StrictRpFilter { node: n.name }) {
        "1"
    } else {
        "2"
    };
    for conf in ["all", "default", "eth0"]
        .into_iter()
        .chain((s.nics == Nics::Segregated).then_some("eth1"))
    {
        sysctl(&ns, &format!("net.ipv4.conf.{conf}.rp_filter"), rp)?;
    }
    Ok(())
}

/// A pod namespace behind a worker, on the provider's pod bridge.
fn pod(state: &mut State, s: &Scenario, n: &Node) -> Result<()> {
    let prefix = state.prefix.clone();
    let ns = node_ns(&prefix, n.name);
    let pns = pod_ns(&prefix, n.name);
    create_ns(state, &pns)?;
    let w = n.worker.expect("pods run on workers");
    let (gw, pod_ip) = pod_addrs(s, w);
    let bridge = s.overlay.pod_bridge();
    ip(&ns, &["link", "add", bridge, "type", "bridge"])?;
    ip(&ns, &["addr", "add", &format!("{gw}/24"), "dev", bridge])?;
    ip(&ns, &["link", "set", bridge, "up"])?;
    ip(
        &ns,
        &[
            "link", "add", "veth-pod", "type", "veth", "peer", "name", "eth0", "netns", &pns,
        ],
    )?;
    ip(&ns, &["link", "set", "veth-pod", "master", bridge, "up"])?;
    // Pods get the overlay's MTU, as the CNI plugins set it.
    let mtu = if s.overlay.vxlan().is_some() {
        "1450"
    } else {
        "1500"
    };
    ip(&pns, &["link", "set", "eth0", "mtu", mtu])?;
    ip(
        &pns,
        &["addr", "add", &format!("{pod_ip}/24"), "dev", "eth0"],
    )?;
    ip(&pns, &["link", "set", "eth0", "up"])?;
    ip(&pns, &["route", "add", "default", "via", &gw.to_string()])?;
    Ok(())
}

fn vtep_mac(worker: u8) -> String {
    format!("02:5e:00:00:{worker:02x}:01")
}

/// VXLAN between workers with static entries: each worker's VTEP owns the .0 of its pod
/// subnet, routes every other worker's subnet via that worker's VTEP, and knows where the
/// VTEP lives (neighbour and FDB entries), as Calico's and Flannel's agents program them.
fn vxlan(prefix: &str, s: &Scenario) -> Result<()> {
    let (vni, port) = s.overlay.vxlan().expect("a VXLAN overlay");
    let dev = s.overlay.device().expect("a VXLAN device");
    let [a, b] = pod_cidr(s);
    let workers: Vec<Node> = nodes().into_iter().filter(|n| n.worker.is_some()).collect();
    for n in &workers {
        let ns = node_ns(prefix, n.name);
        let w = n.worker.expect("worker");
        let (local, underlay) = overlay_underlay(s, n);
        let mut args: Vec<String> = ["link", "add", dev, "type", "vxlan"]
            .map(String::from)
            .to_vec();
        args.extend([
            "id".into(),
            vni.to_string(),
            "dstport".into(),
            port.to_string(),
        ]);
        args.extend(["local".into(), local.to_string(), "nolearning".into()]);
        if s.fault == Some(Fault::OverlayMtuTooBig) {
            // Not bound to the NIC (the kernel would cap the MTU at the NIC's minus 50), and
            // the underlay does not fragment: the outer header says so.
            args.extend(["df".into(), "set".into()]);
        } else {
            args.extend(["dev".into(), underlay.into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ip(&ns, &args)?;
        // 1450 is right for a 1500-byte underlay; with the MTU fault the underlay is 1450 too.
        ip(
            &ns,
            &[
                "link",
                "set",
                dev,
                "address",
                &vtep_mac(w),
                "mtu",
                "1450",
                "up",
            ],
        )?;
        ip(
            &ns,
            &["addr", "add", &format!("{a}.{b}.{w}.0/32"), "dev", dev],
        )?;
        for peer in workers.iter().filter(|p| p.name != n.name) {
            let pw = peer.worker.expect("worker");
            let vtep = format!("{a}.{b}.{pw}.0");
            ip(
                &ns,
                &[
                    "route",
                    "add",
                    &format!("{a}.{b}.{pw}.0/24"),
                    "via",
                    &vtep,
                    "dev",
                    dev,
                    "onlink",
                ],
            )?;
            ip(
                &ns,
                &[
                    "neigh",
                    "add",
                    &vtep,
                    "lladdr",
                    &vtep_mac(pw),
                    "dev",
                    dev,
                    "nud",
                    "permanent",
                ],
            )?;
            let remote = overlay_underlay(s, peer).0.to_string();
            run(Command::new("bridge").args([
                "-n",
                &ns,
                "fdb",
                "append",
                &vtep_mac(pw),
                "dev",
                dev,
                "dst",
                &remote,
            ]))?;
        }
    }
    Ok(())
}

/// kube-proxy's part the lab needs: the kubernetes service's ClusterIP DNATed to the API
/// server, for traffic the node itself sends. Like kube-proxy, it relies on the route lookup
/// succeeding first, which is why a node without a default route cannot reach services.
fn kube_proxy(prefix: &str, s: &Scenario) -> Result<()> {
    let rules = format!(
        "table ip lab-kube-proxy {{\n chain output {{\n  type nat hook output priority -100;\n  ip daddr {} tcp dport 443 dnat to {}:6443\n }}\n}}\n",
        kubernetes_service(s),
        apiserver(s)
    );
    for n in nodes() {
        nft(&node_ns(prefix, n.name), &rules)?;
    }
    Ok(())
}
