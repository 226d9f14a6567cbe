//! Section 1 as printed, and its goals: every program against the empty program of its hook,
//! then the share of each part of plain classification.

use std::fmt::Write;

use super::Results;
use crate::report::{Goal, mark};

/// Plain classification above the empty program of the hook, per hook, and VXLAN inner-flow
/// accounting (either hook).
const TC_NS: f64 = 12.0;
const XDP_NS: f64 = 8.0;
const VXLAN_NS: f64 = 30.0;

/// The limit of a row.
fn limit(vxlan: bool, program: &str) -> f64 {
    if vxlan {
        VXLAN_NS
    } else if program.starts_with("xdp") {
        XDP_NS
    } else {
        TC_NS
    }
}

/// The worst row of each goal against its limit.
pub fn goals(goals: &mut Vec<Goal>, c: &Results) {
    for (vxlan, xdp, what) in [
        (false, false, "plain classification, tc"),
        (false, true, "plain classification, XDP"),
        (true, false, "VXLAN inner-flow accounting, tc"),
        (true, true, "VXLAN inner-flow accounting, XDP"),
    ] {
        let worst = c
            .rows
            .iter()
            .filter(|r| r.vxlan == vxlan && r.program.starts_with("xdp") == xdp)
            .max_by(|a, b| a.above_floor_ns.total_cmp(&b.above_floor_ns));
        if let Some(w) = worst {
            let limit = limit(vxlan, w.program);
            goals.push(Goal {
                goal: format!(
                    "{what}: <= {limit} ns/packet above the empty {} program",
                    if xdp { "XDP" } else { "tc" }
                ),
                measured: format!(
                    "worst {:.0} ns ({}, {})",
                    w.above_floor_ns, w.packet, w.program
                ),
                met: w.above_floor_ns <= limit,
            });
        }
    }
}

pub fn table(t: &mut String, c: &Results) {
    let _ = writeln!(
        t,
        "1. Kernel cost per packet, BPF_PROG_TEST_RUN, {} repeats x {} rounds (median ns)",
        c.repeat, c.rounds
    );
    let _ = writeln!(
        t,
        "   {:<20} {:<12} {:>6} {:>6} {:>6}  {:<5}  counted as",
        "packet", "program", "ns", "empty", "above", "goal"
    );
    for r in &c.rows {
        let _ = writeln!(
            t,
            "   {:<20} {:<12} {:>6.0} {:>6.0} {:>6.0}  {:<5}  {}",
            r.packet,
            r.program,
            r.ns,
            r.floor_ns,
            r.above_floor_ns,
            mark(r.above_floor_ns <= limit(r.vxlan, r.program)),
            r.counted_as
        );
    }
    let _ = writeln!(
        t,
        "   above = median over rounds of (program - empty program of its hook) in the same round.\n   goal: <= {TC_NS} ns above the empty tc program, <= {XDP_NS} ns above the empty XDP program,\n   <= {VXLAN_NS} ns with VXLAN inner-flow accounting.\n   {}",
        c.note
    );
    let _ = writeln!(
        t,
        "   Plain (tcp 6443), each part: the program cut short after it, and what it adds (ns)"
    );
    let _ = writeln!(
        t,
        "   {:<28} {:>6} {:>6}   {:>6} {:>6}",
        "part", "tc", "+", "XDP", "+"
    );
    let num = |v: Option<f64>, sign: bool| match (v, sign) {
        (Some(v), true) => format!("{v:+.1}"),
        (Some(v), false) => format!("{v:.1}"),
        (None, _) => "-".into(),
    };
    for p in &c.parts {
        let _ = writeln!(
            t,
            "   {:<28} {:>6} {:>6}   {:>6} {:>6}",
            p.name,
            num(p.tc_ns, false),
            num(p.tc_adds_ns, true),
            num(p.xdp_ns, false),
            num(p.xdp_adds_ns, true)
        );
    }
    t.push('\n');
}
