//! Interfaces that come and go while a session runs (pod veths above all): the session follows
//! the namespace's link notifications, attaches to each new interface `--iface` matches as
//! soon as the kernel announces it, and releases the slot of each one that goes. What changed
//! is reported with the next interval ([`IfaceChange`]).

use serde::{Deserialize, Serialize};
use tokio::io::unix::AsyncFd;

use super::{Session, SessionError};
use crate::{
    model::ifaces,
    probes::Target,
    sys::links::{LinkChange, LinkEvent, LinkEvents, Notifications},
};

/// What happened to a watched (or wanted) interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IfaceChangeKind {
    /// It appeared (or was renamed to a matching name) and is watched from now on.
    Attached,
    /// It went away (or was renamed away); its counters are shown one last time.
    Released,
    /// It matched, but could not be watched (`reason` says why).
    Failed,
    /// A watched veth's pod became known (the runtime recorded it after the veth appeared).
    Pod,
}

/// An interface the session started or stopped watching.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfaceChange {
    pub change: IfaceChangeKind,
    pub iface: String,
    pub ifindex: u32,
    /// The ingress hook, once attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<String>,
    /// For a veth whose other end is in another network namespace (a pod's): the id this
    /// namespace gives that one (`ip netns list-id`), and the other end's index there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_netns_id: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_ifindex: Option<u32>,
    /// The pod the veth belongs to, as the container runtime recorded it (libcni's result
    /// cache); absent while unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Opens the link notifications before the interfaces are listed, so none that appears in
/// between is missed.
pub(super) fn subscribe() -> Result<AsyncFd<LinkEvents>, SessionError> {
    let events = LinkEvents::open().map_err(SessionError::Links)?;
    crate::sys::readiness::readable(events).map_err(SessionError::Links)
}

impl Session {
    /// Handles the link notifications waiting. Notifications lost to a full socket buffer
    /// are made up for by listing the interfaces again, once the socket has been emptied (so
    /// that a change during the listing is notified, not lost).
    pub(super) fn follow_links(&mut self) -> Result<(), SessionError> {
        let Some(fd) = self.links.as_ref() else {
            return Ok(());
        };
        let events = match fd.get_ref().read().map_err(SessionError::Links)? {
            Notifications::Events(events) => events,
            Notifications::Lost => {
                log::warn!("interface notifications overflowed; listing the interfaces again");
                return self.resync();
            }
        };
        for e in events {
            match e.change {
                LinkChange::New => self.appeared(&e)?,
                LinkChange::Removed => self.vanished(e.index)?,
            }
        }
        Ok(())
    }

    /// An interface was created or changed.
    fn appeared(&mut self, e: &LinkEvent) -> Result<(), SessionError> {
        if let Some(watched) = self.datapath.watching(e.index) {
            if watched.name == e.name {
                if let Some(peer) = e.peer_netns {
                    self.peer_known(e.index, &e.name, peer);
                }
                return Ok(());
            }
            // Renamed: watched under its new name if that matches, else no more.
            self.vanished(e.index)?;
        }
        if !self.patterns.matches(&e.name) {
            return Ok(());
        }
        let Ok(iface) = ifaces::one(&e.name, e.index) else {
            // Gone again before it could be looked at: its removal follows.
            return Ok(());
        };
        let target = Target {
            name: iface.name.clone(),
            index: iface.index,
            has_l2: iface.has_l2(),
            is_virtual: iface.is_virtual,
        };
        let mut change = IfaceChange {
            change: IfaceChangeKind::Attached,
            iface: iface.name,
            ifindex: iface.index,
            hook: None,
            peer_netns_id: e.peer_netns,
            peer_ifindex: e.peer_netns.and(e.peer_index),
            pod_namespace: None,
            pod_name: None,
            reason: None,
        };
        match self.datapath.add_target(target) {
            Ok(slot) => {
                change.hook = self.datapath.hooks()[slot].map(|h| h.as_str().to_string());
                if let (Some(pods), Some(peer)) = (self.pods.as_mut(), e.peer_netns)
                    && let Some(pod) = pods.watch(e.index, &change.iface, peer)
                {
                    change.pod_namespace = Some(pod.namespace);
                    change.pod_name = Some(pod.name);
                }
                log::info!("{}: watched from now on", change.iface);
            }
            Err(err) => {
                log::warn!("{}: cannot watch it: {err}", change.iface);
                change.change = IfaceChangeKind::Failed;
                change.reason = Some(err.to_string());
            }
        }
        self.iface_changes.push(change);
        Ok(())
    }

    /// An interface went away: its slot is released (and freed after the next interval).
    fn vanished(&mut self, ifindex: u32) -> Result<(), SessionError> {
        if let Some(pods) = self.pods.as_mut() {
            pods.forget(ifindex);
        }
        if let Some(name) = self.datapath.release(ifindex)? {
            log::info!("{name}: gone; its counters are shown once more");
            self.iface_changes.push(IfaceChange {
                change: IfaceChangeKind::Released,
                iface: name,
                ifindex,
                hook: None,
                peer_netns_id: None,
                peer_ifindex: None,
                pod_namespace: None,
                pod_name: None,
                reason: None,
            });
        }
        Ok(())
    }

    /// Compares the watched interfaces with the namespace's: releases those gone, watches the
    /// matching ones not yet watched.
    fn resync(&mut self) -> Result<(), SessionError> {
        let all = ifaces::list().map_err(SessionError::Interfaces)?;
        let watched: Vec<u32> = self
            .datapath
            .targets()
            .iter()
            .flatten()
            .map(|t| t.index)
            .collect();
        for index in watched {
            if !all.iter().any(|i| i.index == index) {
                self.vanished(index)?;
            }
        }
        let peers = crate::sys::links::dump().unwrap_or_default();
        for i in all {
            let peer = peers.iter().find(|p| p.index == i.index);
            let e = LinkEvent {
                change: LinkChange::New,
                index: i.index,
                name: i.name,
                peer_index: peer.and_then(|p| p.peer_index),
                peer_netns: peer.and_then(|p| p.peer_netns),
            };
            self.appeared(&e)?;
        }
        Ok(())
    }
}
