//! What each part of plain classification costs: the hook (the empty program of that hook),
//! then tracer's classifier cut short after the interface lookup, the parse, the `gso_segs`
//! read (tc only: XDP has no segments), the class lookup, and the whole program, whose last
//! step is the counter. Built from tracer's own sources (`tracer-ebpf/src/floor.rs`), run in
//! the same rounds on the plain frame; each part is the median over rounds of its program
//! minus the one before it in the same round.

use anyhow::Result;
use serde::Serialize;
use tracer::probes::{Datapath, Program};

use super::{Config, nanos};
use crate::{netns::check_interrupt, report::median};

pub const FLOOR_XDP: &str = "floor";
pub const FLOOR_TC: &str = "floor_tc";

/// The benchmark's programs the cost section loads.
pub const PROGRAMS: [&str; 9] = [
    FLOOR_XDP,
    FLOOR_TC,
    "tc_upto_iface",
    "tc_upto_parse",
    "tc_upto_segs",
    "tc_upto_class",
    "xdp_upto_iface",
    "xdp_upto_parse",
    "xdp_upto_class",
];

/// A part: its name, then the tc and XDP programs that end with it (`None`: no such part on
/// that hook; the last step is tracer's own program).
type Step = (&'static str, Option<&'static str>, Option<&'static str>);

/// The parts in order.
const STEPS: [Step; 6] = [
    ("the hook (empty program)", Some(FLOOR_TC), Some(FLOOR_XDP)),
    (
        "interface lookup",
        Some("tc_upto_iface"),
        Some("xdp_upto_iface"),
    ),
    ("parse", Some("tc_upto_parse"), Some("xdp_upto_parse")),
    ("gso_segs read", Some("tc_upto_segs"), None),
    (
        "class lookup",
        Some("tc_upto_class"),
        Some("xdp_upto_class"),
    ),
    ("counter (tracer's program)", None, None),
];

/// One part, on each hook: the program that ends with it and what it adds to the one before.
#[derive(Debug, Serialize)]
pub struct Part {
    pub name: &'static str,
    pub tc_ns: Option<f64>,
    pub tc_adds_ns: Option<f64>,
    pub xdp_ns: Option<f64>,
    pub xdp_adds_ns: Option<f64>,
}

/// Runs each hook's chain of programs on its frame, `cfg.rounds` times.
pub fn measure(
    cfg: Config,
    datapath: &Datapath,
    bench: &Datapath,
    xdp_frame: &[u8],
    tc_frame: &[u8],
) -> Result<Vec<Part>> {
    let tc = chain(cfg, datapath, bench, Program::TcIngress, tc_frame, |s| s.1)?;
    let xdp = chain(cfg, datapath, bench, Program::XdpIngress, xdp_frame, |s| {
        s.2
    })?;
    Ok(STEPS
        .iter()
        .enumerate()
        .map(|(i, step)| Part {
            name: step.0,
            tc_ns: tc[i].map(|c| c.0),
            tc_adds_ns: tc[i].and_then(|c| c.1),
            xdp_ns: xdp[i].map(|c| c.0),
            xdp_adds_ns: xdp[i].and_then(|c| c.1),
        })
        .collect())
}

/// For each step, the median time of its program and the median of what it adds to the
/// previous step's program in the same round (`None` for the first and for absent steps).
#[allow(
    clippy::type_complexity,
    reason = "one step's pair of medians, read right away by measure"
)]
fn chain(
    cfg: Config,
    datapath: &Datapath,
    bench: &Datapath,
    full: Program,
    frame: &[u8],
    program_of: fn(&Step) -> Option<&'static str>,
) -> Result<Vec<Option<(f64, Option<f64>)>>> {
    let present: Vec<usize> = (0..STEPS.len())
        .filter(|&i| i + 1 == STEPS.len() || program_of(&STEPS[i]).is_some())
        .collect();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); STEPS.len()];
    for round in 0..cfg.rounds {
        check_interrupt()?;
        // Alternate the direction, so that no step always runs on a warmer cache.
        let mut order = present.clone();
        if round % 2 == 1 {
            order.reverse();
        }
        for &i in &order {
            let run = match program_of(&STEPS[i]) {
                Some(name) => bench.test_run_program(name, frame, cfg.repeat)?,
                None => datapath.test_run(full, frame, cfg.repeat)?,
            };
            times[i].push(nanos(run.duration) as f64);
        }
    }
    let mut out = vec![None; STEPS.len()];
    let mut previous: Option<usize> = None;
    for &i in &present {
        let adds = previous.map(|p| {
            let diffs: Vec<f64> = times[i].iter().zip(&times[p]).map(|(a, b)| a - b).collect();
            median(&diffs)
        });
        out[i] = Some((median(&times[i]), adds));
        previous = Some(i);
    }
    Ok(out)
}
