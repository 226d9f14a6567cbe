//! Section 4b as printed: the observers side by side at one flow and at many, then what each
//! part of the drop probe adds per drop.

use std::fmt::Write;

use super::{MANY, Observer, PEERS, Results, Summary, parts_plan};
use crate::sender::Traffic;

/// The section's lines, for the report's table.
pub fn table(t: &mut String, r: &Results) {
    peers(t, r);
    parts(t, r);
}

/// The observers at one flow and at many.
fn peers(t: &mut String, r: &Results) {
    let _ = writeln!(
        t,
        "4b. Drop observers: {} UDP datagrams dropped by an nft output rule, {} rounds, each run right\n    after an untraced run of the same storm (medians)",
        r.datagrams, r.rounds
    );
    let traffics = [Traffic::Udp { flows: 1 }, Traffic::Udp { flows: MANY }];
    let _ = writeln!(
        t,
        "   {:<42} {:>26} {:>26}",
        "observer",
        "1 flow",
        format!("{MANY} flows")
    );
    let cell = |s: Option<&Summary>| match s {
        Some(s) if s.observer == Observer::Untraced.label() => {
            format!("{:>8.0}/s {:>6.1}% {:>7}", s.drops_per_sec, 100.0, "")
        }
        Some(s) => format!(
            "{:>8.0}/s {:>6.1}% {:>+4.0} ns{}",
            s.drops_per_sec,
            100.0 * s.ratio,
            s.ns_per_drop,
            if s.complete { "" } else { "!" }
        ),
        None => "-".into(),
    };
    let untraced = |traffic: Traffic| {
        r.untraced
            .iter()
            .find(|s| s.traffic == traffic.label() && s.datagrams == r.datagrams)
    };
    let _ = writeln!(
        t,
        "   {:<42} {:>26} {:>26}",
        Observer::Untraced.label(),
        cell(untraced(traffics[0])),
        cell(untraced(traffics[1]))
    );
    for observer in PEERS {
        let _ = writeln!(
            t,
            "   {:<42} {:>26} {:>26}",
            observer.label(),
            cell(r.peer(observer, traffics[0])),
            cell(r.peer(observer, traffics[1]))
        );
    }
    let tracer_runs: Vec<_> = r
        .runs
        .iter()
        .filter(|run| run.observer == Observer::Tracer.label())
        .collect();
    let exact = tracer_runs
        .iter()
        .all(|run| run.counted == Some(run.datagrams));
    let _ = writeln!(
        t,
        "   %: each run's rate over the untraced run before it; ns: the time that adds per drop.\n   tracer counted every drop in {} of {} runs ({}); bpftrace's count is of every namespace;\n   ! marks an observer that missed drops.\n",
        tracer_runs
            .iter()
            .filter(|run| run.counted == Some(run.datagrams))
            .count(),
        tracer_runs.len(),
        if exact { "exact" } else { "NOT exact" }
    );
}

/// What each part of the probe adds per drop, on each kind of traffic.
fn parts(t: &mut String, r: &Results) {
    let traffics = [
        Traffic::Udp { flows: 1 },
        Traffic::Udp { flows: MANY },
        Traffic::Vxlan { flows: 1 },
    ];
    let _ = writeln!(
        t,
        "   The drop probe alone, its parts added one at a time, {} datagrams: ns added per drop\n   (in brackets: the probe's own ns per run by the kernel's run-time statistics, on for these runs only)",
        r.part_datagrams
    );
    let _ = write!(t, "   {:<42}", "probe");
    for traffic in traffics {
        let _ = write!(t, " {:>26}", traffic.label());
    }
    t.push('\n');
    let mut observers: Vec<Observer> = Vec::new();
    for (_, o) in parts_plan() {
        if !observers.contains(&o) {
            observers.push(o);
        }
    }
    for observer in observers {
        let _ = write!(t, "   {:<42}", observer.label());
        for traffic in traffics {
            let s = r
                .parts
                .iter()
                .find(|s| s.observer == observer.label() && s.traffic == traffic.label());
            let text = s.map_or_else(
                || "-".into(),
                |s| {
                    format!(
                        "{:+.0} ns{} {}",
                        s.ns_per_drop,
                        if s.complete { "" } else { "!" },
                        s.probe_ns
                            .map_or_else(|| "(-)".into(), |k| format!("({k:.0})"))
                    )
                },
            );
            let _ = write!(t, " {text:>26}");
        }
        t.push('\n');
    }
    t.push('\n');
}
