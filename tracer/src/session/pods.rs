//! Naming the watched veths by their pods while a session runs. Each watched veth whose other
//! end is in another namespace is looked up in libcni's result cache ([`crate::model::cni`])
//! when it appears, and, while its pod is unknown, again each interval: libcni writes the
//! entry only after the plugin created the veth, so a new pod's veth is often seen first. A
//! pod found later is reported as an [`IfaceChangeKind::Pod`] change; a cache file that cannot
//! be read is named once.

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
    path::PathBuf,
};

use super::{IfaceChange, IfaceChangeKind, Session};
use crate::model::cni::{Cache, PodRef, pod_of, report};

/// A watched veth that may belong to a pod.
#[derive(Clone, Debug)]
struct Veth {
    name: String,
    peer_netns: i32,
    pod: Option<PodRef>,
}

/// The cache and the veths being named.
pub(super) struct PodNames {
    cache: Cache,
    veths: BTreeMap<u32, Veth>,
    /// The ids of the sandboxes' namespaces, asked once per reading of the cache.
    netns_ids: RefCell<HashMap<String, Option<i32>>>,
}

impl PodNames {
    pub(super) fn new(dir: PathBuf) -> PodNames {
        let mut cache = Cache::new(dir);
        if !cache.dir().is_dir() {
            log::debug!(
                "{}: no such directory (no CNI runtime here): pods are not named",
                cache.dir().display()
            );
        }
        report(&cache.refresh());
        PodNames {
            cache,
            veths: BTreeMap::new(),
            netns_ids: RefCell::default(),
        }
    }

    /// A veth now watched: its pod when the cache already names it.
    pub(super) fn watch(&mut self, index: u32, name: &str, peer_netns: i32) -> Option<PodRef> {
        // A new veth gives its pod's namespace an id: those that had none are asked again.
        self.netns_ids.borrow_mut().retain(|_, id| id.is_some());
        let pod = self.lookup(name, peer_netns);
        self.veths.insert(
            index,
            Veth {
                name: name.to_string(),
                peer_netns,
                pod: pod.clone(),
            },
        );
        pod
    }

    /// Whether this veth is followed already, with this peer namespace.
    pub(super) fn follows(&self, index: u32, peer_netns: i32) -> bool {
        self.veths
            .get(&index)
            .is_some_and(|v| v.peer_netns == peer_netns)
    }

    /// A watched interface went away.
    pub(super) fn forget(&mut self, index: u32) {
        self.veths.remove(&index);
    }

    /// Reads the cache again if a veth still has no pod; the veths whose pod is now known.
    /// The veths are looked up again only when a cache file came, went or changed (a veth
    /// whose peer changes is looked up then, [`PodNames::watch`]).
    pub(super) fn resolve(&mut self) -> Vec<(u32, String, PodRef)> {
        if self.veths.values().all(|v| v.pod.is_some()) {
            return Vec::new();
        }
        let (changed, bad) = self.cache.update();
        report(&bad);
        if !changed {
            return Vec::new();
        }
        self.netns_ids.borrow_mut().clear();
        let mut found = Vec::new();
        let unnamed: Vec<(u32, String, i32)> = self
            .veths
            .iter()
            .filter(|(_, v)| v.pod.is_none())
            .map(|(i, v)| (*i, v.name.clone(), v.peer_netns))
            .collect();
        for (index, name, peer) in unnamed {
            if let Some(pod) = self.lookup(&name, peer) {
                if let Some(v) = self.veths.get_mut(&index) {
                    v.pod = Some(pod.clone());
                }
                found.push((index, name, pod));
            }
        }
        found
    }

    /// Every watched veth whose pod is known: interface name and pod.
    pub(super) fn known(&self) -> Vec<(String, PodRef)> {
        self.veths
            .values()
            .filter_map(|v| Some((v.name.clone(), v.pod.clone()?)))
            .collect()
    }

    fn lookup(&self, name: &str, peer_netns: i32) -> Option<PodRef> {
        pod_of(self.cache.attachments(), name, Some(peer_netns), |path| {
            *self
                .netns_ids
                .borrow_mut()
                .entry(path.to_string())
                .or_insert_with(|| crate::sys::nsid::id_of(path.as_ref()).ok().flatten())
        })
    }
}

impl Session {
    /// A watched interface's notification told where its other end is: a veth moved into
    /// this namespace by its plugin (bridge) is announced before the kernel gives its peer's
    /// namespace an id, so the id comes with a later notification.
    pub(super) fn peer_known(&mut self, ifindex: u32, iface: &str, peer_netns: i32) {
        let Some(pods) = self.pods.as_mut() else {
            return;
        };
        if pods.follows(ifindex, peer_netns) {
            return;
        }
        if let Some(pod) = pods.watch(ifindex, iface, peer_netns) {
            log::info!("{iface}: pod {pod}");
            self.iface_changes.push(IfaceChange {
                change: IfaceChangeKind::Pod,
                iface: iface.to_string(),
                ifindex,
                hook: None,
                peer_netns_id: Some(peer_netns),
                peer_ifindex: None,
                pod_namespace: Some(pod.namespace),
                pod_name: Some(pod.name),
                reason: None,
            });
        }
    }

    /// Names the veths whose pod became known since the last interval.
    pub(super) fn name_pods(&mut self) {
        let Some(pods) = self.pods.as_mut() else {
            return;
        };
        for (ifindex, iface, pod) in pods.resolve() {
            log::info!("{iface}: pod {pod}");
            self.iface_changes.push(IfaceChange {
                change: IfaceChangeKind::Pod,
                iface,
                ifindex,
                hook: None,
                peer_netns_id: None,
                peer_ifindex: None,
                pod_namespace: Some(pod.namespace),
                pod_name: Some(pod.name),
                reason: None,
            });
        }
    }

    /// The watched veths whose pod is known: interface and pod.
    pub fn pods(&self) -> Vec<(String, PodRef)> {
        self.pods.as_ref().map(PodNames::known).unwrap_or_default()
    }
}
