//! Events and counters, the second stage: raw counter rows from the probes become named
//! totals per (interface, direction, class), and two snapshots give the rates in between.

pub mod counters;

pub use counters::{Direction, Sample, Snapshot};
