//! iperf3 between namespaces: a server kept running for a series of runs, and clients whose
//! JSON report gives the rate the server received. Port 6443, so the traffic is a cluster class (kube-apiserver) for the tracer.

use std::{net::Ipv4Addr, time::Duration};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{netns::check_interrupt, procs::Background};

pub const PORT: u16 = 6443;

/// Starts `iperf3 -s -p 6443` in namespace `ns`.
pub fn server(ns: &str) -> Result<Background> {
    let mut server = Background::spawn(
        tracer_netns::command_in(ns, &["iperf3"]).args(["-s", "-p", &PORT.to_string()]),
        &format!("iperf3 server in {ns}"),
    )?;
    // It prints nothing we could wait for on stderr; give it a moment to listen.
    std::thread::sleep(Duration::from_millis(500));
    server.check_running()?;
    Ok(server)
}

/// One TCP run of `secs` seconds from namespace `ns` to `dst`; the rate the server received,
/// in Gbit/s.
pub fn tcp(ns: &str, dst: Ipv4Addr, secs: u32) -> Result<f64> {
    let report = client(ns, dst, &["-t", &secs.to_string()])?;
    let bps = report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .context("iperf3 report without end.sum_received")?;
    Ok(bps / 1e9)
}

/// Runs `iperf3 -c dst -p 6443 -J ARGS`, trying up to three times (a second apart) while the
/// server is not ready.
fn client(ns: &str, dst: Ipv4Addr, args: &[&str]) -> Result<Value> {
    let mut last = String::new();
    for attempt in 0..3 {
        check_interrupt()?;
        if attempt > 0 {
            std::thread::sleep(Duration::from_secs(1));
        }
        let out = tracer_netns::command_in(ns, &["iperf3"])
            .args(["-c", &dst.to_string(), "-p", &PORT.to_string(), "-J"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .context("starting iperf3")?;
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if out.status.success() && report["error"].is_null() && !report.is_null() {
            return Ok(report);
        }
        last = match report["error"].as_str() {
            Some(e) => e.to_string(),
            None => String::from_utf8_lossy(&out.stderr).trim().to_string(),
        };
        check_interrupt()?;
    }
    bail!("iperf3 client in {ns} to {dst}: {last}")
}
