//! The model of the node: the port catalog of each cluster profile, the node's interfaces,
//! the profile the node appears to run, and the network namespace being looked at. Later
//! stages (correlation, outputs) read it; it knows nothing of them.

pub mod catalog;
pub mod cluster;
pub mod detect;
pub mod drop_reasons;
pub mod ifaces;
pub mod net;
pub mod netns;
