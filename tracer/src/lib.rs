//! `tracer`: an eBPF packet-path tracer for Kubernetes nodes. The user side reads like the
//! path of a packet's story: kernel [`probes`] count and observe, [`events`] turns their
//! counters into named totals and rates, the [`model`] describes the node (catalog of cluster
//! ports, interfaces, profile, firewall), [`findings`] correlates them into what is wrong and
//! how to fix it, and [`output`] presents it. [`cli`] wires the stages together; [`sys`] holds
//! the model's system calls behind safe functions. The test bed (the lab, synthetic packets,
//! the demo) and the benchmark are crates of their own beside this one (`tracer-lab`,
//! `tracer-bench`), and the nftables evaluator is `tracer-nft`.

pub mod cli;
pub mod events;
pub mod findings;
pub mod model;
pub mod output;
pub mod probes;
pub mod sys;
