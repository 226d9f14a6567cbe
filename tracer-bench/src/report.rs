//! What the benchmark prints and writes: the machine it ran on, the goals with pass or miss
//! next to the measured numbers (never asserted: a miss is reported, not failed), the table
//! printed on stdout, and the whole record as `bench/results.json`.

use std::{fmt::Write, process::Command};

use serde::Serialize;

use crate::{
    cost, ifaces,
    observers::{self, MANY, Observer},
    peers, ruleset, scrapes,
    sender::Traffic,
    steady, storm, throughput,
};

/// The median of some measurements (mean of the middle two for an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        f64::midpoint(v[mid - 1], v[mid])
    }
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub kernel: String,
    pub os: String,
    pub cpu: String,
    pub cores: usize,
    pub date: String,
    pub commit: String,
    /// /proc/loadavg when the run started: other work on the machine skews every number.
    pub loadavg_start: String,
}

impl Machine {
    pub fn describe() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map_or_else(
                || "unknown".into(),
                |v| v.trim_start_matches([' ', '\t', ':']).trim().to_string(),
            );
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map_or_else(|| "unknown".into(), |v| v.trim_matches('"').to_string());
        Machine {
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            os,
            cpu,
            cores: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            date: output(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])),
            commit: output(Command::new("git").args(["rev-parse", "--short", "HEAD"])),
            loadavg_start: loadavg(),
        }
    }
}

/// The three load averages of /proc/loadavg.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn output(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".into(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_string(),
        )
}

/// A goal, its measured value, and whether it was met.
#[derive(Debug, Serialize)]
#[allow(
    clippy::struct_field_names,
    reason = "the field names are the keys of bench/results.json, kept so that runs compare"
)]
pub struct Goal {
    pub goal: String,
    pub measured: String,
    pub met: bool,
}

/// Everything one run measured.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub machine: Option<Machine>,
    /// `--quick`: short runs whose numbers are not worth keeping.
    pub quick: bool,
    pub duration_secs: f64,
    pub loadavg_end: String,
    pub cost: Option<cost::Results>,
    pub throughput: Option<throughput::Results>,
    pub peers: Option<peers::Results>,
    pub storm: Option<storm::Results>,
    pub observers: Option<observers::Results>,
    pub steady: Option<steady::Results>,
    pub ruleset: Option<ruleset::Results>,
    pub ifaces: Option<ifaces::Results>,
    pub scrapes: Option<scrapes::Results>,
    pub goals: Vec<Goal>,
}

const THROUGHPUT: f64 = 0.97;
const CPU_PERCENT: f64 = 2.0;
const DROP_RATE_ONE: f64 = 0.90;
const DROP_RATE_MANY: f64 = 0.85;

impl Report {
    /// Judges the goals the measured sections allow.
    pub fn judge(&mut self) {
        let mut goals = Vec::new();
        if let Some(c) = &self.cost {
            cost::goals(&mut goals, c);
        }
        if let Some(t) = &self.throughput {
            for c in [&t.veth, &t.vxlan] {
                goals.push(Goal {
                    goal: format!(">= 97% of untraced throughput on {}", c.path),
                    measured: format!("{:.1}%", 100.0 * c.ratio),
                    met: c.ratio >= THROUGHPUT,
                });
            }
        }
        if let Some(p) = &self.peers {
            let ours = p.ratio(throughput::Mode::Tracer(Some("tc")));
            let tcpdump = p.ratio(throughput::Mode::Tcpdump);
            if let (Some(ours), Some(tcpdump)) = (ours, tcpdump) {
                goals.push(Goal {
                    goal: "less overhead than tcpdump on the same traffic".into(),
                    measured: format!(
                        "tracer (tc) {:.1}% vs tcpdump {:.1}% of untraced",
                        100.0 * ours,
                        100.0 * tcpdump
                    ),
                    met: ours > tcpdump,
                });
            }
        }
        if let Some(s) = &self.storm {
            goals.push(Goal {
                goal: "drop storm counted exactly".into(),
                measured: format!("{} of {}", s.counted, s.datagrams),
                met: s.exact,
            });
        }
        if let Some(o) = &self.observers {
            observer_goals(&mut goals, o);
        }
        if let Some(s) = &self.scrapes {
            goals.push(Goal {
                goal: format!(
                    "every scrape under 1 s with {} slow clients open",
                    s.slow_clients
                ),
                measured: format!("slowest {:.1} ms", s.slowest_ms()),
                met: s.slowest_ms() < 1000.0,
            });
        }
        if let Some(s) = &self.steady {
            goals.push(Goal {
                goal: format!("< {CPU_PERCENT}% of a core in user space at 100k packets/s"),
                measured: format!(
                    "{:.2}% at {:.0} packets/s",
                    s.tracer_cpu_percent, s.measured_pps
                ),
                met: s.tracer_cpu_percent < CPU_PERCENT,
            });
        }
        if let Some(r) = &self.ruleset {
            goals.push(Goal {
                goal: "10,000-rule ruleset: every catalog flow evaluated well under a second"
                    .into(),
                measured: format!("{:.1} ms for {} flows", r.evaluate_all_ms, r.flows),
                met: r.evaluate_all_ms < 1000.0,
            });
        }
        self.goals = goals;
    }

    /// The table printed at the end of a run (and pasted into the README).
    pub fn table(&self) -> String {
        let mut t = String::new();
        if let Some(m) = &self.machine {
            let _ = writeln!(
                t,
                "tracer benchmark, {} ({}), kernel {}, {}, {} cores, commit {}\nload average {} at the start, {} at the end\n",
                m.date, m.os, m.kernel, m.cpu, m.cores, m.commit, m.loadavg_start, self.loadavg_end
            );
        }
        if let Some(c) = &self.cost {
            cost::table(&mut t, c);
        }
        if let Some(tp) = &self.throughput {
            throughput_table(&mut t, tp);
        }
        if let Some(p) = &self.peers {
            peers_table(&mut t, p);
        }
        if let Some(s) = &self.storm {
            storm_table(&mut t, s);
        }
        if let Some(o) = &self.observers {
            observers::table(&mut t, o);
        }
        if let Some(s) = &self.steady {
            steady_table(&mut t, s);
        }
        if let Some(r) = &self.ruleset {
            ruleset_table(&mut t, r);
        }
        if let Some(i) = &self.ifaces {
            ifaces_table(&mut t, i);
        }
        if let Some(s) = &self.scrapes {
            scrapes_table(&mut t, s);
        }
        if !self.goals.is_empty() {
            t.push_str("Goals\n");
            for g in &self.goals {
                let _ = writeln!(t, "   {} {}: {}", mark(g.met), g.goal, g.measured);
            }
        }
        t
    }
}

/// The drop observers' goals: the share of the untraced drop rate the tracer keeps, at one
/// flow and at many; more than each bpftrace one-liner; every drop counted.
fn observer_goals(goals: &mut Vec<Goal>, o: &observers::Results) {
    for (flows, limit) in [(1, DROP_RATE_ONE), (MANY, DROP_RATE_MANY)] {
        let traffic = Traffic::Udp { flows };
        let Some(ours) = o.peer(Observer::Tracer, traffic) else {
            continue;
        };
        goals.push(Goal {
            goal: format!(
                ">= {:.0}% of the untraced drop rate with {}",
                100.0 * limit,
                traffic.label()
            ),
            measured: format!("{:.1}%", 100.0 * ours.ratio),
            met: ours.ratio >= limit,
        });
        let peers: Vec<&observers::Summary> = (0..crate::bpftrace::ONE_LINERS.len())
            .filter_map(|i| o.peer(Observer::Bpftrace(i), traffic))
            .collect();
        if !peers.is_empty() {
            goals.push(Goal {
                goal: format!(
                    "more of the drop rate than each bpftrace one-liner, {}",
                    traffic.label()
                ),
                measured: format!(
                    "tracer {:.1}% vs {}",
                    100.0 * ours.ratio,
                    peers
                        .iter()
                        .map(|p| format!("{:.1}%", 100.0 * p.ratio))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                met: peers.iter().all(|p| ours.ratio > p.ratio),
            });
        }
    }
    let tracer: Vec<&observers::Run> = o
        .runs
        .iter()
        .filter(|r| r.observer == Observer::Tracer.label() || r.observer.starts_with("probe"))
        .collect();
    goals.push(Goal {
        goal: "drop observers: every tracer and probe run counted every drop".into(),
        measured: format!(
            "{} of {} runs exact",
            tracer
                .iter()
                .filter(|r| r.counted == Some(r.datagrams))
                .count(),
            tracer.len()
        ),
        met: tracer.iter().all(|r| r.counted == Some(r.datagrams)),
    });
}

pub fn mark(met: bool) -> &'static str {
    if met { "pass" } else { "MISS" }
}

/// Section 2: iperf3 throughput with and without the tracer.
fn throughput_table(t: &mut String, tp: &throughput::Results) {
    let _ = writeln!(
        t,
        "2. Throughput, iperf3 TCP to 6443, {} s runs, {} interleaved rounds (medians)",
        tp.secs, tp.rounds
    );
    let _ = writeln!(
        t,
        "   {:<34} {:>10} {:>10} {:>7}",
        "path", "untraced", "traced", "ratio"
    );
    for (c, what) in [
        (&tp.veth, "veth pair (tracer --attach tc)"),
        (&tp.vxlan, "lab VXLAN overlay (tracer, auto)"),
    ] {
        let _ = writeln!(
            t,
            "   {what:<34} {:>5.2} Gb/s {:>5.2} Gb/s {:>6.1}%  {}",
            c.untraced_gbps,
            c.traced_gbps,
            100.0 * c.ratio,
            mark(c.ratio >= THROUGHPUT)
        );
    }
    let _ = writeln!(
        t,
        "   untraced, traced: medians. ratio: median of each traced run over the untraced run before it\n"
    );
}

/// Section 3: the tracer next to its peers.
fn peers_table(t: &mut String, p: &peers::Results) {
    let _ = writeln!(
        t,
        "3. Observers on the same veth traffic, {} s runs, {} rounds, each after an untraced run",
        p.secs, p.rounds
    );
    let _ = writeln!(t, "   {:<40} {:>10} {:>7}", "observer", "Gbit/s", "ratio");
    let _ = writeln!(
        t,
        "   {:<40} {:>10.2} {:>6.1}%",
        "untraced", p.untraced_gbps, 100.0
    );
    for peer in &p.peers {
        let _ = writeln!(
            t,
            "   {:<40} {:>10.2} {:>6.1}%",
            peer.peer,
            peer.gbps,
            100.0 * peer.ratio
        );
    }
    let _ = writeln!(
        t,
        "   Gbit/s: medians. ratio: median of each observed run over the untraced run before it\n"
    );
}

/// Section 4: the drop storm.
fn storm_table(t: &mut String, s: &storm::Results) {
    let _ = writeln!(
        t,
        "4. Drop storm: {} UDP datagrams dropped by an nft output rule",
        s.datagrams
    );
    let _ = writeln!(
        t,
        "   drops/s untraced {:.0}, traced {:.0} ({:.1}%); counted {} of {} ({})\n   tracer CPU {:.2} s over {:.1} s, peak RSS {} KiB; events lost {}, held back {}, uncounted {}\n",
        s.untraced_drops_per_sec,
        s.traced_drops_per_sec,
        100.0 * s.traced_drops_per_sec / s.untraced_drops_per_sec.max(1e-9),
        s.counted,
        s.datagrams,
        if s.exact { "exact" } else { "NOT exact" },
        s.tracer_cpu_secs,
        s.tracer_cpu_window_secs,
        s.tracer_peak_rss_kib,
        s.events_lost,
        s.events_suppressed,
        s.uncounted
    );
}

/// Section 5: the tracer's user-space CPU at a steady packet rate.
fn steady_table(t: &mut String, s: &steady::Results) {
    let _ = writeln!(
        t,
        "5. User-space CPU, {:.0} packets/s of 64-byte UDP for {:.0} s, 1 s interval\n   tracer {:.2}% of a core by utime+stime ({:.3}% by schedstat); idle {:.2}% ({:.3}%)\n",
        s.measured_pps,
        s.traffic_secs,
        s.tracer_cpu_percent,
        s.tracer_cpu_percent_schedstat,
        s.idle_cpu_percent,
        s.idle_cpu_percent_schedstat
    );
}

/// Section 5b: the firewall model on a large ruleset.
fn ruleset_table(t: &mut String, r: &ruleset::Results) {
    let _ = writeln!(
        t,
        "5b. Firewall model, {} rules ({} KiB of nft JSON), median of {}\n   parse {:.1} ms; {} catalog flows evaluated in {:.2} ms ({:.1} us per flow; {} accepted, {} rejected, {} unknown)\n",
        r.rules,
        r.json_bytes / 1024,
        r.rounds,
        r.parse_ms,
        r.flows,
        r.evaluate_all_ms,
        r.per_flow_us,
        r.accepted,
        r.rejected,
        r.unknown
    );
}

/// Section 6: many interfaces, at the start and as they come and go.
fn ifaces_table(t: &mut String, i: &ifaces::Results) {
    let _ = writeln!(
        t,
        "6. {} veth pairs, tracer --iface 'veth*' --max-ifaces {}\n   attach at start {:.2} s; created while running: ip took {:.2} s, all attached after {:.2} s; deleted: all released after {:.2} s\n   tracer RSS {} KiB idle, {} KiB with them, {} KiB after they went; kernel maps {} KiB\n",
        i.interfaces,
        i.slots,
        i.attach_at_start_secs,
        i.create_secs,
        i.attach_as_created_secs,
        i.release_secs,
        i.rss_idle_kib,
        i.rss_with_kib,
        i.rss_after_kib,
        i.maps_kib
    );
}

/// Section 7: scrapes beside slow clients.
fn scrapes_table(t: &mut String, s: &scrapes::Results) {
    let times: Vec<String> = s.scrape_ms.iter().map(|ms| format!("{ms:.1}")).collect();
    let _ = writeln!(
        t,
        "7. Ten scrapes of /metrics with {} slow clients open (each sends a byte per scrape, never a whole request)\n   scrape ms: {}\n",
        s.slow_clients,
        times.join(" ")
    );
}
