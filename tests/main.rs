//! tracer's integration tests, one binary: the real kernel programs under BPF_PROG_TEST_RUN,
//! and end-to-end runs of the `tracer` binary in network namespaces the tests create and
//! remove. They need root; `cargo xtask test` runs them.

mod harness;

mod backends;
mod baseline;
mod bundle;
mod capabilities;
mod cleanup;
mod cli_errors;
mod cluster;
mod cluster_lab;
mod datapath;
mod deploy;
mod diagnose;
mod docs;
mod drops;
mod evidence;
mod firewalld_runtime;
mod fixes;
mod fwdiff;
mod ifaces;
mod kernel;
mod lab;
mod metrics;
mod peers;
mod pods;
mod rich_rule;
mod view;
mod watch;
mod watch_log;
