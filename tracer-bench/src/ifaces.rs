//! Section 6: many interfaces. `tracer watch --iface 'veth*'` with 1,000 veth pairs (one end in
//! the watched namespace, the other in a second one, as a CNI leaves a pod's): how long
//! attaching to all of them takes when they exist at the start, and when they appear while
//! the tracer runs (each announced by the kernel, attached on its notification); how long
//! releasing them takes when they go; the tracer's memory (RSS) before, with and after them,
//! and the kernel memory of its maps (sized for `--max-ifaces` slots).

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use serde::Serialize;
use tracer::schema::{IfaceChangeKind, WatchLine};

use crate::{
    netns::{self, NetNs},
    procs::{Tracer, rss_kib},
};

#[derive(Debug, Serialize)]
pub struct Results {
    pub interfaces: usize,
    /// `--max-ifaces`: the slots the kernel tables are sized for.
    pub slots: usize,
    /// From starting the tracer to its `start` line, the veths already there.
    pub attach_at_start_secs: f64,
    /// Creating the veths with `ip -batch`, the tracer running.
    pub create_secs: f64,
    /// From starting to create them to the tracer's last `attached` line.
    pub attach_as_created_secs: f64,
    /// From starting to delete them to the tracer's last `released` line.
    pub release_secs: f64,
    pub rss_idle_kib: u64,
    pub rss_with_kib: u64,
    /// After they went and their slots were freed.
    pub rss_after_kib: u64,
    /// Kernel memory of the tracer's maps (bpftool's `bytes_memlock`, summed).
    pub maps_kib: u64,
}

/// The tracer's arguments: every veth, sized for `slots`.
fn args(slots: &str) -> [&str; 10] {
    [
        "--iface",
        "veth*",
        "--max-ifaces",
        slots,
        "--profile",
        "generic",
        "--no-drops",
        "--no-diagnose",
        "--interval",
        "1",
    ]
}

/// `ip -n NS -batch` with `lines`, from a file named after the namespace (unique).
fn ip_batch(ns: &NetNs, lines: impl Iterator<Item = String>) -> Result<()> {
    let file = std::env::temp_dir().join(format!("{}.ip-batch", ns.name()));
    std::fs::write(&file, lines.collect::<Vec<_>>().join("\n") + "\n")?;
    let done = tracer_netns::run(
        Command::new("ip")
            .args(["-n", ns.name(), "-batch"])
            .arg(&file),
    );
    let _ = std::fs::remove_file(&file);
    done?;
    Ok(())
}

fn create(host: &NetNs, pods: &NetNs, n: usize) -> Result<()> {
    ip_batch(
        pods,
        (0..n).flat_map(|i| {
            [
                format!(
                    "link add p{i} type veth peer name veth{i} netns {}",
                    host.name()
                ),
                format!("link set p{i} up"),
            ]
        }),
    )?;
    ip_batch(host, (0..n).map(|i| format!("link set veth{i} up")))
}

fn delete(pods: &NetNs, n: usize) -> Result<()> {
    ip_batch(pods, (0..n).map(|i| format!("link del p{i}")))
}

/// The kernel memory of the maps of the program with id `prog`, in KiB.
fn maps_kib(prog: u32) -> Result<u64> {
    let bpftool = |args: &[&str]| -> Result<serde_json::Value> {
        let out = tracer_netns::run(Command::new("bpftool").arg("-j").args(args))?;
        serde_json::from_str(&out).with_context(|| format!("bpftool {args:?}"))
    };
    let info = bpftool(&["prog", "show", "id", &prog.to_string()])?;
    let mut bytes = 0;
    for id in info["map_ids"].as_array().context("map_ids")? {
        let map = bpftool(&["map", "show", "id", &id.to_string()])?;
        bytes += map["bytes_memlock"].as_u64().unwrap_or(0);
    }
    Ok(bytes / 1024)
}

fn changes(kind: IfaceChangeKind) -> impl Fn(&WatchLine) -> bool {
    move |l| matches!(l, WatchLine::Iface(c) if c.change == kind)
}

pub fn run(bin: &Path, n: usize) -> Result<Results> {
    let slots = n.next_power_of_two().max(1024);
    let slots_arg = slots.to_string();
    let host = netns::create("ifaces-host")?;
    let pods = netns::create("ifaces-pods")?;
    let patience = Duration::from_mins(2);

    // Already there when the tracer starts.
    create(&host, &pods, n)?;
    let t = Instant::now();
    let tracer = Tracer::watch(bin, host.name(), &args(&slots_arg))?;
    let attach_at_start_secs = t.elapsed().as_secs_f64();
    let prog = tracer
        .start
        .as_ref()
        .and_then(|s| s.programs.get("tc_ingress").copied())
        .context("no tc_ingress program id in the start line")?;
    let maps_kib = maps_kib(prog)?;
    tracer.stop()?;
    delete(&pods, n)?;

    // Created while it runs.
    let mut tracer = Tracer::watch(bin, host.name(), &args(&slots_arg))?;
    let rss_idle_kib = rss_kib(tracer.pid())?;
    let t = Instant::now();
    create(&host, &pods, n)?;
    let create_secs = t.elapsed().as_secs_f64();
    tracer.wait_lines(n, patience, changes(IfaceChangeKind::Attached))?;
    let attach_as_created_secs = t.elapsed().as_secs_f64();
    let rss_with_kib = rss_kib(tracer.pid())?;
    let t = Instant::now();
    delete(&pods, n)?;
    tracer.wait_lines(n, patience, changes(IfaceChangeKind::Released))?;
    let release_secs = t.elapsed().as_secs_f64();
    // The slots are freed after the interval that shows them last.
    std::thread::sleep(Duration::from_secs(2));
    let rss_after_kib = rss_kib(tracer.pid())?;
    tracer.stop()?;
    Ok(Results {
        interfaces: n,
        slots,
        attach_at_start_secs,
        create_secs,
        attach_as_created_secs,
        release_secs,
        rss_idle_kib,
        rss_with_kib,
        rss_after_kib,
        maps_kib,
    })
}
