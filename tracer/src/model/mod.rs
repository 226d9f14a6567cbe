//! The model of the node: the port catalog of each cluster profile, the node's interfaces,
//! addresses, routes and sysctls, the profile and role it appears to run, firewalld's permanent
//! and runtime configuration, the nftables ruleset and the iptables mode, and the pods the container runtime set up
//! (libcni's result cache). Later stages
//! (correlation, outputs) read it; it knows nothing of them.

pub mod bundle;
pub mod capture;
pub mod catalog;
pub mod cluster;
pub mod cni;
pub mod detect;
pub mod evidence;
pub mod firewalld;
pub mod ifaces;
pub mod iptables;
pub mod legacy;
pub mod net;
pub mod node;
pub mod pairs;
pub mod pods;
pub mod prometheus;
pub mod view;

/// The nftables and iptables-nft evaluator, a crate of its own.
pub use tracer_nft as nft;
