//! Events and counters, the second stage: raw counter rows from the probes become named
//! totals per (interface, direction, class) and per overlay peer, and two snapshots give the rates in between;
//! drop counters, flows and sampled events become named drops, their reasons typed from the
//! kernel's own names; a recording window of both
//! becomes a baseline of rates that a later window is compared with.

pub mod baseline;
pub mod counters;
pub mod drops;
pub mod peers;
pub mod reasons;

pub use counters::{Direction, Sample, Snapshot};
pub use drops::{DropChanges, DropFlow, DropSample, DropTotal, DropTracker};
pub use peers::{PeerBalance, PeerDrop, PeerEntry};
pub use reasons::{Reason, Reasons};
