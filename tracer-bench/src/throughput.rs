//! Section 2: iperf3 TCP throughput with the tracer off and on, runs interleaved (off, on,
//! off, on...) so drift on a shared machine hits both alike: the ratio is the median of each
//! traced run over the untraced run just before it, next to the medians of each kind. Over a
//! veth pair between two fresh namespaces (tracer on the receiving end), and over the lab's
//! Calico VXLAN overlay between two pods (tracer on every interface of the receiving worker).
//!
//! Also the pieces section 3 shares: the veth test bed and one measured run in a given mode.

use std::{net::Ipv4Addr, path::Path, process::Command, time::Duration};

use anyhow::{Context, Result};
use serde::Serialize;
use tracer::schema::Direction;
use tracer_lab::{
    net::{node_ns, pod_addrs, pod_ns},
    scenarios,
};

use crate::{
    iperf,
    netns::{self, NetNs, check_interrupt},
    procs::{Background, Tracer, counted},
    report::median,
};

#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub secs: u32,
    pub rounds: usize,
}

/// What observes the traffic during a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Off,
    /// The tracer with `--attach <mode>` (None: the default, auto).
    Tracer(Option<&'static str>),
    Tcpdump,
}

impl Mode {
    pub fn label(self) -> String {
        match self {
            Mode::Off => "untraced".into(),
            Mode::Tracer(Some(a)) => format!("tracer --attach {a}"),
            Mode::Tracer(None) => "tracer (--attach auto)".into(),
            Mode::Tcpdump => "tcpdump -w /dev/null 'tcp port 6443'".into(),
        }
    }
}

/// One iperf3 run.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub mode: String,
    pub round: usize,
    pub gbps: f64,
    /// For tracer runs: the hook each interface got, and the packets counted (proof it was
    /// looking at the traffic).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets_counted: Option<u64>,
    /// tcpdump's own closing statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcpdump: Option<String>,
}

/// Off against on over one path.
#[derive(Debug, Serialize)]
pub struct Comparison {
    pub path: String,
    pub untraced_gbps: f64,
    pub traced_gbps: f64,
    pub ratio: f64,
    pub runs: Vec<Run>,
}

#[derive(Debug, Serialize)]
pub struct Results {
    pub secs: u32,
    pub rounds: usize,
    pub veth: Comparison,
    pub vxlan: Comparison,
}

/// Where one run's traffic goes: client namespace, server address, and where the observer
/// sits (its namespace, and the interface, or every interface when None).
pub struct Route<'a> {
    pub client_ns: &'a str,
    pub server: Ipv4Addr,
    pub observer_ns: &'a str,
    pub iface: Option<&'a str>,
    pub profile: &'a str,
}

/// Two fresh namespaces joined by a veth pair, an iperf3 server in the second.
pub struct VethBed {
    pub client: NetNs,
    pub server: NetNs,
    _iperf: Background,
}

pub const SERVER_IF: &str = "bn1";
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

impl VethBed {
    pub fn new(tag: &str) -> Result<VethBed> {
        let (client, server) =
            netns::pair(&format!("{tag}c"), CLIENT_IP, &format!("{tag}s"), SERVER_IP)?;
        let iperf = iperf::server(server.name())?;
        Ok(VethBed {
            client,
            server,
            _iperf: iperf,
        })
    }

    pub fn route(&self) -> Route<'_> {
        Route {
            client_ns: self.client.name(),
            server: SERVER_IP,
            observer_ns: self.server.name(),
            iface: Some(SERVER_IF),
            profile: "generic",
        }
    }
}

/// One iperf3 run of `secs` with `mode` observing; progress goes out under `section`.
pub fn measure(
    section: &str,
    bin: &Path,
    route: &Route,
    mode: Mode,
    round: usize,
    secs: u32,
) -> Result<Run> {
    check_interrupt()?;
    // Long enough to outlive the run; the tracer is stopped right after it anyway.
    let duration = (secs + 60).to_string();
    let mut run = Run {
        mode: mode.label(),
        round,
        gbps: 0.0,
        hooks: None,
        packets_counted: None,
        tcpdump: None,
    };
    match mode {
        Mode::Off => run.gbps = iperf::tcp(route.client_ns, route.server, secs)?,
        Mode::Tracer(attach) => {
            let mut args = vec!["--duration", &duration, "--profile", route.profile];
            if let Some(iface) = route.iface {
                args.extend(["--iface", iface]);
            }
            if let Some(a) = attach {
                args.extend(["--attach", a]);
            }
            let tracer = Tracer::watch(bin, route.observer_ns, &args)?;
            run.hooks = Some(tracer.hooks());
            run.gbps = iperf::tcp(route.client_ns, route.server, secs)?;
            let summary = tracer.stop()?;
            run.packets_counted = Some(counted(&summary, |c| {
                c.class == "kube-apiserver" && c.direction == Direction::Ingress
            }));
        }
        Mode::Tcpdump => {
            let iface = route.iface.context("tcpdump needs one interface")?;
            let mut dump = Background::spawn(
                tracer_netns::command_in(route.observer_ns, &["tcpdump"]).args([
                    "-i",
                    iface,
                    "-w",
                    "/dev/null",
                    "tcp port 6443",
                ]),
                "tcpdump",
            )?;
            // It has no ready signal we can read without racing its stderr: give it time to
            // open the socket and attach its filter.
            std::thread::sleep(Duration::from_millis(800));
            dump.check_running()?;
            run.gbps = iperf::tcp(route.client_ns, route.server, secs)?;
            let stats = dump.stop()?;
            run.tcpdump = Some(
                stats
                    .lines()
                    .filter(|l| l.contains("packets"))
                    .collect::<Vec<_>>()
                    .join("; "),
            );
        }
    }
    eprintln!(
        "[{section}]   round {round} {:<40} {:>6.2} Gbit/s{}",
        mode.label(),
        run.gbps,
        run.packets_counted
            .map(|p| format!("  ({p} packets counted)"))
            .unwrap_or_default()
    );
    // Let the sockets of the last run close before the next one.
    std::thread::sleep(Duration::from_millis(300));
    Ok(run)
}

/// The medians of the untraced runs and of the runs in `mode`, and their paired ratio.
pub fn compare(path: &str, runs: Vec<Run>, mode: Mode) -> Comparison {
    Comparison {
        path: path.into(),
        untraced_gbps: median_gbps(&runs, Mode::Off),
        traced_gbps: median_gbps(&runs, mode),
        ratio: paired_ratio(&runs, mode),
        runs,
    }
}

/// The median throughput of the runs in `mode`.
pub fn median_gbps(runs: &[Run], mode: Mode) -> f64 {
    let label = mode.label();
    median(
        &runs
            .iter()
            .filter(|r| r.mode == label)
            .map(|r| r.gbps)
            .collect::<Vec<_>>(),
    )
}

/// The median, over the runs in `mode`, of each one's throughput over that of the untraced
/// run just before it. Pairing neighbours cancels the machine's drift between rounds, which
/// on a shared VM is larger than the effect measured (a ratio of medians taken over the whole
/// section mixes fast and slow periods).
pub fn paired_ratio(runs: &[Run], mode: Mode) -> f64 {
    let (label, off) = (mode.label(), Mode::Off.label());
    let ratios: Vec<f64> = runs
        .windows(2)
        .filter(|w| w[0].mode == off && w[1].mode == label && w[0].gbps > 0.0)
        .map(|w| w[1].gbps / w[0].gbps)
        .collect();
    median(&ratios)
}

/// Interleaved rounds over one path, for `section`: in each round, every traced mode in turn,
/// each run right after an untraced one.
pub fn off_on(
    section: &str,
    bin: &Path,
    route: &Route,
    traced: &[Mode],
    cfg: Config,
) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    for round in 1..=cfg.rounds {
        for &mode in traced {
            runs.push(measure(section, bin, route, Mode::Off, round, cfg.secs)?);
            runs.push(measure(section, bin, route, mode, round, cfg.secs)?);
        }
    }
    Ok(runs)
}

pub fn run(bin: &Path, cfg: Config) -> Result<Results> {
    eprintln!(
        "[{SECTION}] veth pair: iperf3 TCP to 6443, {} s runs, {} rounds of untraced/traced",
        cfg.secs, cfg.rounds
    );
    let veth = {
        let bed = VethBed::new("tp")?;
        let traced = Mode::Tracer(Some("tc"));
        compare(
            "veth",
            off_on(SECTION, bin, &bed.route(), &[traced], cfg)?,
            traced,
        )
    };
    eprintln!(
        "[{SECTION}] VXLAN overlay: lab k0s-calico (prefix {LAB_PREFIX}), pod behind worker-1 to pod behind worker-2"
    );
    let vxlan = {
        let lab = Lab::up(bin, LAB_PREFIX, "k0s-calico")?;
        let scenario = scenarios::find("k0s-calico").map_err(anyhow::Error::msg)?;
        let (_, server_ip) = pod_addrs(scenario, 2);
        let server_ns = pod_ns(&lab.prefix, "worker-2");
        let _iperf = iperf::server(&server_ns)?;
        let client_ns = pod_ns(&lab.prefix, "worker-1");
        let worker = node_ns(&lab.prefix, "worker-2");
        let route = Route {
            client_ns: &client_ns,
            server: server_ip,
            observer_ns: &worker,
            iface: None,
            profile: "k0s-calico",
        };
        let traced = Mode::Tracer(None);
        compare(
            "vxlan",
            off_on(SECTION, bin, &route, &[traced], cfg)?,
            traced,
        )
    };
    Ok(Results {
        secs: cfg.secs,
        rounds: cfg.rounds,
        veth,
        vxlan,
    })
}

const LAB_PREFIX: &str = "bnx";
const SECTION: &str = "throughput";

/// A lab built by `tracer lab up`, removed by `tracer lab down` when the guard drops.
struct Lab<'a> {
    bin: &'a Path,
    prefix: String,
}

impl<'a> Lab<'a> {
    fn up(bin: &'a Path, prefix: &str, scenario: &str) -> Result<Lab<'a>> {
        if tracer_lab::state::lab_dir(prefix).exists() {
            eprintln!("[{SECTION}] removing the lab {prefix} an earlier run left");
            let _ = lab_cmd(bin, "down", prefix).output();
        }
        let lab = Lab {
            bin,
            prefix: prefix.to_string(),
        };
        tracer_lab::net::run(lab_cmd(bin, "up", prefix).args(["--scenario", scenario]))?;
        Ok(lab)
    }
}

impl Drop for Lab<'_> {
    fn drop(&mut self) {
        eprintln!("[{SECTION}] tracer lab down --prefix {}", self.prefix);
        let _ = lab_cmd(self.bin, "down", &self.prefix).output();
    }
}

fn lab_cmd(bin: &Path, sub: &str, prefix: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(bin);
    cmd.args(["lab", sub, "--prefix", prefix])
        .stdin(std::process::Stdio::null())
        // A process group of its own: the Ctrl-C that stops the benchmark must not also stop
        // the `lab down` that cleans up after it.
        .process_group(0);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mode: Mode, gbps: f64) -> Run {
        Run {
            mode: mode.label(),
            round: 0,
            gbps,
            hooks: None,
            packets_counted: None,
            tcpdump: None,
        }
    }

    /// `got` equals `want` up to the rounding of the divisions that made it.
    #[track_caller]
    fn assert_close(got: f64, want: f64) {
        assert!((got - want).abs() < 1e-12, "{got} is not {want}");
    }

    #[test]
    fn each_traced_run_is_compared_with_the_untraced_run_before_it() {
        let tc = Mode::Tracer(Some("tc"));
        // The machine speeds up over the section: a ratio of medians would say 12/16, while
        // each traced run kept 90-100% of its neighbour.
        let runs = [
            run(Mode::Off, 10.0),
            run(tc, 9.0),
            run(Mode::Off, 12.0),
            run(tc, 12.0),
            run(Mode::Off, 20.0),
            run(Mode::Tcpdump, 5.0),
            run(Mode::Off, 20.0),
            run(tc, 19.0),
        ];
        assert_close(paired_ratio(&runs, tc), 0.95);
        assert_close(paired_ratio(&runs, Mode::Tcpdump), 0.25);
        assert_close(median_gbps(&runs, tc), 12.0);
        assert_close(paired_ratio(&runs, Mode::Tracer(None)), 0.0);
    }
}
