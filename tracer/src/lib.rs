//! `tracer`: an eBPF packet-path tracer for Kubernetes nodes. The user side reads like the
//! path of a packet's story, one folder per stage, each using only the stages before it:
//!
//! 0. [`sys`]: the system calls the stages make, behind safe functions;
//! 1. [`probes`]: load the kernel programs, attach them, read what they count and sample;
//! 2. [`events`]: counters become named totals and rates, drops become named drops with their
//!    typed reasons, two readings become a baseline;
//! 3. [`model`]: the node (catalog of cluster ports, interfaces, profile, firewall);
//! 4. [`findings`]: what is wrong and how to fix it, and the cause of each dropped flow
//!    (correlation while watching);
//! 5. [`session`]: one attached datapath and the one loop `watch` and `baseline` drive:
//!    intervals, drop capture, the diagnosis, Ctrl-C, SIGTERM and the deadline;
//! 6. [`output`]: text, JSON lines (their types are the [`schema`]), Prometheus metrics and
//!    their endpoint, pcapng, the firewall formats, baselines;
//! 7. [`cli`]: arguments, and the wiring of the stages for each command.
//!
//! No module imports from a later stage (a test reads the sources to check it). The test bed
//! (the lab, synthetic packets, the demo) and the benchmark are crates of their own beside
//! this one (`tracer-lab`, `tracer-bench`), and the nftables evaluator is `tracer-nft`.

pub mod cli;
pub mod events;
pub mod findings;
pub mod model;
pub mod output;
pub mod probes;
pub mod session;
pub mod sys;

/// The JSON the tool prints, as types (see [`output::schema`]).
pub use output::schema;
#[cfg(test)]
mod props;
#[cfg(test)]
mod stages;
