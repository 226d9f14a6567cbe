//! Section 3: the tracer next to its peers on the same veth traffic. Each observer — the
//! tracer with each ingress hook (tc, generic XDP, native XDP) and tcpdump writing the
//! kube-apiserver flow to /dev/null — runs right after an untraced run, round after round;
//! each is reported with the median of its ratios to the untraced run just before it. This is
//! the evidence for `--attach auto` choosing tc on virtual devices.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::throughput::{Config, Mode, Run, VethBed, median_gbps, off_on, paired_ratio};

/// The observers, in the order each round runs them (each after an untraced run).
pub const MODES: [Mode; 4] = [
    Mode::Tracer(Some("tc")),
    Mode::Tracer(Some("xdp-generic")),
    Mode::Tracer(Some("xdp")),
    Mode::Tcpdump,
];

#[derive(Debug, Serialize)]
#[allow(
    clippy::struct_field_names,
    reason = "the field names are the keys of bench/results.json, kept so that runs compare"
)]
pub struct Peer {
    pub peer: String,
    pub gbps: f64,
    /// The median of each run over the untraced run just before it.
    pub ratio: f64,
}

#[derive(Debug, Serialize)]
pub struct Results {
    pub secs: u32,
    pub rounds: usize,
    pub untraced_gbps: f64,
    pub peers: Vec<Peer>,
    pub runs: Vec<Run>,
}

impl Results {
    pub fn ratio(&self, mode: Mode) -> Option<f64> {
        let label = mode.label();
        self.peers.iter().find(|p| p.peer == label).map(|p| p.ratio)
    }
}

pub fn run(bin: &Path, cfg: Config) -> Result<Results> {
    eprintln!(
        "[peers] veth pair: {} rounds of untraced/tc, untraced/xdp-generic, untraced/xdp, untraced/tcpdump, {} s each",
        cfg.rounds, cfg.secs
    );
    let bed = VethBed::new("pe")?;
    let route = bed.route();
    let runs = off_on("peers", bin, &route, &MODES, cfg)?;
    let untraced = median_gbps(&runs, Mode::Off);
    let peers = MODES
        .iter()
        .map(|&m| Peer {
            peer: m.label(),
            gbps: median_gbps(&runs, m),
            ratio: paired_ratio(&runs, m),
        })
        .collect();
    Ok(Results {
        secs: cfg.secs,
        rounds: cfg.rounds,
        untraced_gbps: untraced,
        peers,
        runs,
    })
}
