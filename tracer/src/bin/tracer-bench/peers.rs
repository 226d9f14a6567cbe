//! Section 3: the tracer next to its peers on the same veth traffic. Each observer — the
//! tracer with each ingress hook (tc, generic XDP, native XDP) and tcpdump writing the
//! kube-apiserver flow to /dev/null — runs right after an untraced run, round after round;
//! each is reported as the ratio of its median to the median of the untraced runs. This is
//! the evidence for `--attach auto` choosing tc on virtual devices.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::{
    report::median,
    throughput::{Config, Mode, Run, VethBed, measure},
};

/// The observers, in the order each round runs them (each after an untraced run).
pub const MODES: [Mode; 4] = [
    Mode::Tracer(Some("tc")),
    Mode::Tracer(Some("xdp-generic")),
    Mode::Tracer(Some("xdp")),
    Mode::Tcpdump,
];

#[derive(Debug, Serialize)]
pub struct Peer {
    pub peer: String,
    pub gbps: f64,
    /// Median over the untraced median.
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
    let mut runs = Vec::new();
    for round in 1..=cfg.rounds {
        for mode in MODES {
            runs.push(measure("peers", bin, &route, Mode::Off, round, cfg.secs)?);
            runs.push(measure("peers", bin, &route, mode, round, cfg.secs)?);
        }
    }
    let of = |m: Mode| -> Vec<f64> {
        runs.iter()
            .filter(|r| r.mode == m.label())
            .map(|r| r.gbps)
            .collect()
    };
    let untraced = median(&of(Mode::Off));
    let peers = MODES
        .iter()
        .map(|&m| {
            let gbps = median(&of(m));
            Peer {
                peer: m.label(),
                gbps,
                ratio: if untraced > 0.0 { gbps / untraced } else { 0.0 },
            }
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
