//! The kernel as judge: a differential harness of the tracer's firewall explanations against a
//! real firewalld. Seeded random configurations ([`cases`]) are given to a real firewalld in a
//! worker namespace ([`node`]); real packets go from peer namespaces to the node and through
//! it; what the kernel did with each (verdict and deciding rule, read from `nft monitor trace`:
//! [`kernel`]) is compared with the tracer's explanation of the same packet: verdict, deciding
//! rule, and an element consistent with that rule ([`check`]). Then the fix the tracer prints
//! for a refused packet is applied as printed: the packet must pass, and the case's other
//! packets must keep their verdicts (a fix opens no more than it should), except packets the
//! same rule refused for the same port, and packets a zone's or policy's own target or icmp-block refused
//! for a port (protocol, ICMP type) the fix opens in that zone or policy. This holds for fixes
//! of rules outside firewalld (iptables-nft, iptables-legacy, nft) too.
//!
//! `fwdiff_ci` runs in the normal test suite; `cargo xtask fwdiff --cases N` runs the long one
//! (`fwdiff_long`, ignored otherwise), and `cargo xtask fwdiff --seed N` replays one case. A
//! failing case prints its seed and the replay command.

mod cases;
mod check;
mod kernel;
mod legacy;
mod node;

use std::sync::{Arc, Mutex};

use check::Stats;

/// Runs the cases `seeds` on `workers` firewalld nodes in parallel and returns the tally.
fn run(seeds: Vec<u64>, workers: usize) -> Stats {
    crate::harness::require_root();
    let stats = Arc::new(Mutex::new(Stats::default()));
    let queue = Arc::new(Mutex::new(seeds));
    let mut handles = Vec::new();
    for w in 0..workers {
        let (stats, queue) = (Arc::clone(&stats), Arc::clone(&queue));
        handles.push(std::thread::spawn(move || {
            let mut node = node::Node::new(u8::try_from(w).expect("few workers"));
            let facts = check::Facts::read(&node);
            loop {
                let Some(seed) = queue.lock().expect("queue").pop() else {
                    break;
                };
                let mut local = Stats::default();
                check::run_case(&mut node, &facts, seed, &mut local);
                if std::env::var_os("FWDIFF_VERBOSE").is_some() {
                    eprintln!("seed {seed}: {}", local.summary());
                }
                stats.lock().expect("stats").add(local);
            }
        }));
    }
    for h in handles {
        if let Err(e) = h.join() {
            std::panic::resume_unwind(e);
        }
    }
    Arc::try_unwrap(stats)
        .expect("workers done")
        .into_inner()
        .expect("stats")
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The cases of a run: `FWDIFF_SEED` alone replays that one; else `FWDIFF_CASES`
/// configurations from `FWDIFF_FIRST` on.
fn seeds(default_cases: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var("FWDIFF_SEED") {
        return vec![s.parse().expect("FWDIFF_SEED is a number")];
    }
    let first = env_u64("FWDIFF_FIRST", 1);
    let n = env_u64("FWDIFF_CASES", default_cases);
    (first..first + n).rev().collect()
}

fn verdict(stats: &Stats) {
    eprintln!("fwdiff: {}", stats.summary());
    for f in &stats.failures {
        eprintln!("{f}");
    }
    assert!(
        stats.failures.is_empty(),
        "{} failing cases (replay one with `cargo xtask fwdiff --seed N`)",
        stats.failures.len()
    );
    assert!(stats.probes > 0, "no packet was judged");
}

#[test]
fn fwdiff_ci() {
    let stats = run(seeds(24), 2);
    verdict(&stats);
}

#[test]
#[ignore = "the long run: cargo xtask fwdiff --cases N"]
fn fwdiff_long() {
    let workers = usize::try_from(env_u64("FWDIFF_WORKERS", 2)).unwrap_or(2);
    let stats = run(seeds(300), workers);
    if let Ok(path) = std::env::var("FWDIFF_REPORT") {
        std::fs::write(&path, stats.report()).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    verdict(&stats);
}
