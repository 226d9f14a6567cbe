//! The pods' network interfaces as the node sees them: the host end of each veth pair whose
//! other end lives in another network namespace, with that namespace's name when it has one
//! (containerd names pod namespaces `cni-...` under /run/netns) and the other end's name and
//! MTU read there. What a pod sends leaves through its own end, so the pod's MTU is that end's.
//! Read with `ip -j`, which follows the reader's network namespace. Each link is named by its
//! pod where the container runtime recorded one (libcni's result cache, [`super::cni`]).

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
    /// The pod, when exactly one entry of the runtime's CNI result cache names this link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<super::cni::PodRef>,
}

impl PodLink {
    /// The host end, with its pod when known: `veth12 (pod kube-system/coredns-x)`.
    pub fn described(&self) -> String {
        match &self.pod {
            Some(pod) => format!("{} (pod {pod})", self.host),
            None => self.host.clone(),
        }
    }
}

/// `ip ARGS -j` as JSON; `None` when it cannot be run or does not answer in JSON.
fn ip_json(args: &[&str]) -> Option<Vec<serde_json::Value>> {
    let out = Command::new("ip").args(args).output().ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

/// The veth pairs of this namespace whose other end is elsewhere, named by their pods from
/// the cache at [`super::cni::dir`].
pub fn read() -> Vec<PodLink> {
    let mut cache = super::cni::Cache::new(super::cni::dir().to_path_buf());
    super::cni::report(&cache.refresh());
    links()
        .into_iter()
        .map(|(mut link, nsid)| {
            link.pod = super::cni::pod_of(cache.attachments(), &link.host, Some(nsid), |path| {
                crate::sys::nsid::id_of(path.as_ref()).ok().flatten()
            });
            link
        })
        .collect()
}

/// The links, before their pods are looked up, with the id of the namespace each leads to.
fn links() -> Vec<(PodLink, i32)> {
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
            let link = PodLink {
                host: l["ifname"].as_str()?.to_string(),
                host_mtu: l["mtu"].as_u64()? as u32,
                netns,
                peer,
                pod: None,
            };
            Some((link, i32::try_from(nsid).ok()?))
        })
        .collect()
}
