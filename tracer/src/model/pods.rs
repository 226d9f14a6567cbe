//! The pods' network interfaces as the node sees them: the host end of each veth pair whose
//! other end lives in another network namespace, with that namespace's name when it has one
//! (containerd names pod namespaces `cni-...` under /run/netns) and the other end's name and
//! MTU read there. What a pod sends leaves through its own end, so the pod's MTU is that end's.
//! Read with `ip -j`, which follows the reader's network namespace.

use std::process::Command;

/// A pod's link: the host end, and what is known of the pod's end.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PodLink {
    /// The host end (`vethXXXX`, `caliXXXX`).
    pub host: String,
    pub host_mtu: u32,
    /// The pod's network namespace, by the name `ip netns` knows it by; `None` when it has
    /// none (then the pod's end cannot be reached by name).
    pub netns: Option<String>,
    /// The pod's end (`eth0`) and its MTU, when its namespace has a name.
    pub peer: Option<(String, u32)>,
}

/// `ip ARGS -j` as JSON; `None` when it cannot be run or does not answer in JSON.
fn ip_json(args: &[&str]) -> Option<Vec<serde_json::Value>> {
    let out = Command::new("ip").args(args).output().ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

/// The veth pairs of this namespace whose other end is elsewhere.
pub fn read() -> Vec<PodLink> {
    let Some(veths) = ip_json(&["-j", "-d", "link", "show", "type", "veth"]) else {
        return Vec::new();
    };
    let names: Vec<(u64, String)> = ip_json(&["-j", "netns", "list-id"])
        .unwrap_or_default()
        .iter()
        .filter_map(|n| Some((n["nsid"].as_u64()?, n["name"].as_str()?.to_string())))
        .collect();
    veths
        .iter()
        .filter_map(|l| {
            let nsid = l["link_netnsid"].as_u64()?;
            let netns = names
                .iter()
                .find(|(id, _)| *id == nsid)
                .map(|(_, n)| n.clone());
            let peer = netns.as_deref().and_then(|ns| {
                let index = l["link_index"].as_u64()?;
                ip_json(&["-n", ns, "-j", "link", "show"])?
                    .iter()
                    .find(|p| p["ifindex"].as_u64() == Some(index))
                    .and_then(|p| {
                        Some((p["ifname"].as_str()?.to_string(), p["mtu"].as_u64()? as u32))
                    })
            });
            Some(PodLink {
                host: l["ifname"].as_str()?.to_string(),
                host_mtu: l["mtu"].as_u64()? as u32,
                netns,
                peer,
            })
        })
        .collect()
}
