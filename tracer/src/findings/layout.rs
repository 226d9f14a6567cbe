//! Which firewalld zone takes a node's cluster traffic: the zone that the cluster interface's
//! peers are bound to (by a source covering them, the interface itself, or the default zone).
//! The distributions' guides describe two layouts, one shared NIC whose zone (public) opens
//! the cluster's ports, and a separate cluster NIC in a zone of its own (trusted); which one a
//! node uses is read from the node, never assumed. `tracer diagnose` puts its fixes in this
//! zone and `tracer ports`, run on the node, writes its commands for it, so the two agree.

use std::net::IpAddr;

use super::Inputs;
use crate::model::{
    catalog::{Catalog, Role},
    cluster::ClusterConfig,
    firewalld::{Permanent, Target},
    iptables::IptablesState,
    node::NodeFacts,
};

/// The zone of a node's cluster traffic, and how the node binds it there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterZone {
    pub zone: String,
    /// The cluster interface and its address.
    pub iface: String,
    pub addr: IpAddr,
    /// How the interface's peers land in the zone: `interface eth1`, `source 10.0.0.0/24`,
    /// `default zone`.
    pub binding: String,
    /// The zone's target accepts every packet (the guides' trusted zone).
    pub accepts_all: bool,
}

impl ClusterZone {
    /// The zone, read from the node's interfaces, cluster configuration and firewalld's
    /// permanent configuration; `None` when no interface carries cluster traffic.
    pub fn of_node(
        catalog: &Catalog,
        roles: &[Role],
        facts: &NodeFacts,
        cluster: Option<&ClusterConfig>,
        permanent: &Permanent,
    ) -> Option<ClusterZone> {
        let iptables = IptablesState::default();
        let inp = Inputs {
            catalog,
            roles,
            facts: std::borrow::Cow::Borrowed(facts),
            cluster,
            permanent: Some(permanent),
            runtime: None,
            runtime_known: true,
            ruleset: None,
            iptables: &iptables,
            iptables_cmd: None,
            guesses: None,
        };
        ClusterZone::of(&inp, permanent)
    }

    /// [`ClusterZone::of_node`] from diagnose's inputs.
    pub fn of(inp: &Inputs, permanent: &Permanent) -> Option<ClusterZone> {
        let nic = inp.cluster_addrs().into_iter().next()?;
        let bound = permanent.zone_for(&nic.iface, nic.peer());
        let accepts_all = permanent
            .zones
            .get(&bound.zone)
            .is_some_and(|z| z.target == Target::Accept);
        Some(ClusterZone {
            zone: bound.zone,
            iface: nic.iface.clone(),
            addr: nic.addr,
            binding: bound.binding.to_string(),
            accepts_all,
        })
    }
}
