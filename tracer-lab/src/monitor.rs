//! `tracer lab monitor`: the cluster's monitoring in a lab, as on a real cluster. A tracer on
//! every node serves metrics on the node's address (its firewalld opens the port, as a node's
//! operator would), and a real Prometheus in the switch's namespace scrapes them every second
//! with tracer's shipped rules (`deploy/prometheus/tracer-rules.yml`, embedded). Both are
//! recorded as the lab's processes, so `lab down` stops them.

use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use tracer::schema::WatchLine;

use super::{
    exe, firewall_cmd, lab_dir,
    net::{nodes, switch_ns},
    node_shell, prometheus,
    state::State,
};

/// The shipped rules.
pub const RULES: &str = include_str!("../../deploy/prometheus/tracer-rules.yml");
/// Where each node's tracer serves its metrics, on the node's public address.
pub const METRICS_PORT: u16 = 9464;
/// Where Prometheus listens, in the switch's namespace.
pub const PROMETHEUS: &str = "127.0.0.1:9090";
/// How long a tracer may take to attach (programs are verified as they load).
const ATTACH: Duration = Duration::from_secs(90);

/// Starts the tracers and Prometheus; returns Prometheus's URL (in the switch's namespace).
pub fn start(prefix: &str) -> Result<String> {
    let mut st = State::load(prefix)?
        .with_context(|| format!("no lab named {prefix:?} (see `tracer lab status`)"))?;
    if st.processes.iter().any(|p| p.what == "prometheus") {
        bail!("lab {prefix:?} is monitored already");
    }
    let dir = lab_dir(prefix).join("monitor");
    fs::create_dir_all(&dir)?;
    let tracer = exe::tracer()?;
    let mut targets = Vec::new();
    let mut logs = Vec::new();
    for n in nodes() {
        let port = format!("--add-port={METRICS_PORT}/tcp");
        firewall_cmd(prefix, n.name, &["--permanent", &port])?;
        firewall_cmd(prefix, n.name, &["--reload"])?;
        let at = format!("{}:{METRICS_PORT}", n.public_ip());
        let log = dir.join(format!("tracer-{}.json", n.name));
        let shell = node_shell(prefix, n.name)?;
        let child = Command::new(&tracer)
            .args(["--netns", &shell.netns, "watch", "--output", "json"])
            .args(["--interval", "1", "--node-name", n.name, "--metrics", &at])
            .envs(shell.env)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log)?)
            .stderr(fs::File::create(
                dir.join(format!("tracer-{}.log", n.name)),
            )?)
            .spawn()
            .with_context(|| format!("starting {} on {}", tracer.display(), n.name))?;
        st.started(child.id(), n.name, "tracer")?;
        targets.push(at);
        logs.push((n.name, log));
    }
    let rules = dir.join("tracer-rules.yml");
    fs::write(&rules, RULES)?;
    let switch = switch_ns(prefix);
    let child = prometheus::spawn(&switch, &dir, PROMETHEUS, &targets, &[rules])?;
    st.started(child.id(), "switch", "prometheus")?;

    let deadline = Instant::now() + ATTACH;
    for (node, log) in &logs {
        while !attached(log) {
            if Instant::now() > deadline {
                bail!(
                    "the tracer on {node} did not attach within {} s: see {}",
                    ATTACH.as_secs(),
                    dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    while !prometheus::ready(&switch, PROMETHEUS) {
        if Instant::now() > deadline {
            bail!(
                "prometheus did not start: see {}",
                dir.join("prometheus.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(format!("http://{PROMETHEUS}"))
}

/// Whether the tracer writing `log` printed its `start` line (every program attached).
fn attached(log: &Path) -> bool {
    fs::read_to_string(log).is_ok_and(|t| {
        t.lines()
            .any(|l| matches!(serde_json::from_str(l), Ok(WatchLine::Start(_))))
    })
}
