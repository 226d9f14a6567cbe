//! A real Prometheus server (Debian's package) inside a network namespace, scraping tracers
//! every second and evaluating rule files: the one way the lab (`lab monitor`) and the tests
//! start it. Its configuration, storage and log live in a directory of the caller's.

use std::{
    fmt::Write as _,
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result};

/// Starts Prometheus in `netns` on `addr`, scraping `targets` (job `tracer`) with `rules`
/// loaded; `dir` holds `prometheus.yml`, `data/` and `prometheus.log`. `ip netns exec` execs
/// Prometheus itself, so the child's pid is the server's.
pub fn spawn(
    netns: &str,
    dir: &Path,
    addr: &str,
    targets: &[String],
    rules: &[PathBuf],
) -> Result<Child> {
    let mut config = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n",
    );
    let files: Vec<String> = rules.iter().map(|r| format!("'{}'", r.display())).collect();
    let quoted: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let _ = write!(
        config,
        "rule_files: [{}]\nscrape_configs:\n  - job_name: tracer\n    static_configs:\n      - targets: [{}]\n",
        files.join(", "),
        quoted.join(", ")
    );
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
    let log = std::fs::File::create(dir.join("prometheus.log"))?;
    Command::new("ip")
        .args(["netns", "exec", netns, "prometheus"])
        .arg(format!("--config.file={}", path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting prometheus (Debian package prometheus; cargo xtask setup installs it)")
}

/// Whether the server on `addr` in `netns` answers `/-/ready` with 200.
pub fn ready(netns: &str, addr: &str) -> bool {
    tracer_netns::run_in(netns, || {
        let Ok(mut s) = TcpStream::connect(addr) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let mut answer = String::new();
        s.write_all(format!("GET /-/ready HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .is_ok()
            && s.read_to_string(&mut answer).is_ok()
            && answer.starts_with("HTTP/1.0 200")
    })
    .unwrap_or(false)
}

/// What the server logged.
pub fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
}
