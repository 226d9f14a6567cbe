//! Which pod a veth belongs to, from the result cache libcni keeps for every attachment it set
//! up (`/var/lib/cni/results/<network>-<container id>-<ifname>`, `kind: "cniCacheV1"`): the
//! CRI of containerd (k0s, k3s) and of CRI-O sets pods up through libcni and passes the pod's
//! namespace and name as `K8S_POD_NAMESPACE` and `K8S_POD_NAME` in the CNI arguments, which
//! the cache keeps beside the plugin's result. A veth is named by its pod when exactly one pod
//! claims it: the plugin reported it as a host-side interface (no `sandbox`: bridge, ptp,
//! Calico), or else the pod's sandbox namespace is the one the veth's other end lives in. A
//! file that cannot be read as such an entry is reported, and the others are still used.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::SystemTime,
};

use serde::Deserialize;

/// The runtimes' default cache directory.
pub const DEFAULT_DIR: &str = "/var/lib/cni/results";

static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Sets the cache directory every reader of the node uses (`--cni-cache`); once, at the start.
pub fn set_dir(dir: PathBuf) {
    let _ = DIR.set(dir);
}

/// The cache directory: as set, else [`DEFAULT_DIR`].
pub fn dir() -> &'static Path {
    DIR.get_or_init(|| PathBuf::from(DEFAULT_DIR))
}

/// A pod, by its Kubernetes namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for PodRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One attachment of a pod, as its cache file records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub pod: PodRef,
    /// The pod sandbox's container id.
    pub container_id: String,
    /// Interfaces the plugin reported outside the pod (no `sandbox`): the host end of a veth,
    /// a bridge.
    pub host_ifaces: Vec<String>,
    /// The pod's network namespace (the `sandbox` of its interfaces).
    pub sandbox: Option<String>,
}

/// The fields of a cache entry read here; libcni writes more.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CacheFile {
    kind: String,
    container_id: String,
    #[serde(default)]
    cni_args: Vec<(String, String)>,
    #[serde(default)]
    result: Option<PluginResult>,
}

#[derive(Deserialize)]
struct PluginResult {
    #[serde(default)]
    interfaces: Vec<ResultIface>,
}

#[derive(Deserialize)]
struct ResultIface {
    name: String,
    #[serde(default)]
    sandbox: Option<String>,
}

/// One cache file's text as an attachment; `Ok(None)` for an attachment that is not a
/// Kubernetes pod's (no `K8S_POD_*` arguments: podman, nerdctl).
pub fn parse(text: &str) -> Result<Option<Attachment>, String> {
    let file: CacheFile =
        serde_json::from_str(text).map_err(|e| format!("not a libcni cache entry: {e}"))?;
    if file.kind != "cniCacheV1" {
        return Err(format!(
            "kind {:?}, where libcni writes \"cniCacheV1\"",
            file.kind
        ));
    }
    let arg = |k: &str| {
        file.cni_args
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let (Some(namespace), Some(name)) = (arg("K8S_POD_NAMESPACE"), arg("K8S_POD_NAME")) else {
        return Ok(None);
    };
    if namespace.is_empty() || name.is_empty() {
        return Err("empty K8S_POD_NAMESPACE or K8S_POD_NAME".into());
    }
    let interfaces = file.result.map(|r| r.interfaces).unwrap_or_default();
    Ok(Some(Attachment {
        pod: PodRef { namespace, name },
        container_id: file.container_id,
        host_ifaces: interfaces
            .iter()
            .filter(|i| i.sandbox.as_deref().is_none_or(str::is_empty))
            .map(|i| i.name.clone())
            .collect(),
        sandbox: interfaces
            .iter()
            .find_map(|i| i.sandbox.clone().filter(|s| !s.is_empty())),
    }))
}

/// A file of the cache that is not a usable entry, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadFile {
    pub path: PathBuf,
    pub why: String,
}

impl std::fmt::Display for BadFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.why)
    }
}

/// Logs each unusable file once per process, however many readers (the session, each
/// diagnosis) come across it; again only if what is wrong with it changes.
pub fn report(bad: &[BadFile]) {
    static SAID: std::sync::Mutex<BTreeMap<PathBuf, String>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut said = SAID
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for b in bad {
        if said.get(&b.path) != Some(&b.why) {
            log::warn!("CNI result cache: {b}; the other entries are still used");
            said.insert(b.path.clone(), b.why.clone());
        }
    }
}

/// What one file held when last read.
#[derive(Clone, Debug)]
struct Read {
    stamp: (Option<SystemTime>, u64),
    got: Result<Option<Attachment>, String>,
}

/// The cache directory, read again cheaply: a file is parsed again only when its time or size
/// changed.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
    files: BTreeMap<PathBuf, Read>,
}

impl Cache {
    pub fn new(dir: PathBuf) -> Cache {
        Cache {
            dir,
            files: BTreeMap::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the directory again. Returns the files newly found unusable (each once, until
    /// it changes); a missing directory (no CNI runtime on this node) is no entry and no error.
    pub fn refresh(&mut self) -> Vec<BadFile> {
        self.update().1
    }

    /// [`Cache::refresh`], also saying whether any file came, went or changed.
    pub fn update(&mut self) -> (bool, Vec<BadFile>) {
        let Ok(listing) = std::fs::read_dir(&self.dir) else {
            let changed = !self.files.is_empty();
            self.files.clear();
            return (changed, Vec::new());
        };
        let mut changed = false;
        let mut bad = Vec::new();
        let mut seen = BTreeMap::new();
        for entry in listing.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let stamp = (meta.modified().ok(), meta.len());
            let read = match self.files.remove(&path) {
                Some(r) if r.stamp == stamp => r,
                _ => {
                    changed = true;
                    let got = std::fs::read_to_string(&path)
                        .map_err(|e| format!("cannot be read: {e}"))
                        .and_then(|t| parse(&t));
                    if let Err(why) = &got {
                        bad.push(BadFile {
                            path: path.clone(),
                            why: why.clone(),
                        });
                    }
                    Read { stamp, got }
                }
            };
            seen.insert(path, read);
        }
        changed |= !self.files.is_empty();
        self.files = seen;
        (changed, bad)
    }

    /// The pods' attachments read last.
    pub fn attachments(&self) -> impl Iterator<Item = &Attachment> + Clone {
        self.files
            .values()
            .filter_map(|r| r.got.as_ref().ok().and_then(Option::as_ref))
    }
}

/// The pod a veth of this namespace belongs to, if exactly one pod claims it: by the host-side
/// name the plugin reported, else by the pod's namespace being the one the veth's other end is
/// in (`peer_netns`, its `IFLA_LINK_NETNSID`; `netns_id` gives a sandbox path's id). A pod
/// claimed by name whose sandbox is known to be elsewhere is a stale entry and does not count.
pub fn pod_of<'a>(
    attachments: impl Iterator<Item = &'a Attachment> + Clone,
    veth: &str,
    peer_netns: Option<i32>,
    netns_id: impl Fn(&str) -> Option<i32>,
) -> Option<PodRef> {
    let elsewhere = |a: &Attachment| {
        peer_netns.is_some()
            && a.sandbox
                .as_deref()
                .and_then(&netns_id)
                .is_some_and(|id| Some(id) != peer_netns)
    };
    let by_name: Vec<&PodRef> = attachments
        .clone()
        .filter(|a| a.host_ifaces.iter().any(|i| i == veth) && !elsewhere(a))
        .map(|a| &a.pod)
        .collect();
    if !by_name.is_empty() {
        return only(&by_name);
    }
    let peer = peer_netns?;
    let by_netns: Vec<&PodRef> = attachments
        .filter(|a| a.sandbox.as_deref().and_then(&netns_id) == Some(peer))
        .map(|a| &a.pod)
        .collect();
    only(&by_netns)
}

/// The one pod of a list, or none when the list names none or several.
fn only(pods: &[&PodRef]) -> Option<PodRef> {
    let first = *pods.first()?;
    pods.iter().all(|p| *p == first).then(|| first.clone())
}

#[cfg(test)]
mod tests;
