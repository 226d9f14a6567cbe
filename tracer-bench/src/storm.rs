//! Section 4: a drop storm. In a fresh namespace an nftables output rule drops every datagram
//! to one address; a socket sends N of them to 50,000 ports (more flows than the kernel's flow
//! table holds). Dropped in the sender's own context, none can be lost on a queue, so the
//! tracer must report exactly N. Measured: drops per second with and without the tracer, the
//! tracer's CPU time and peak RSS during the storm, and the events it lost or held back.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Result;
use serde::Serialize;

use crate::{
    netns::check_interrupt,
    procs::{Tracer, cpu_secs, firewall_drops, peak_rss_kib},
    sender::{Bed, DEVICE, Traffic},
};

/// The storm's flows: more than the kernel's flow table holds.
const FLOWS: u16 = 50_000;

#[derive(Debug, Serialize)]
pub struct Results {
    pub datagrams: u64,
    /// Send rate with no tracer running (every datagram dropped by the rule).
    pub untraced_drops_per_sec: f64,
    /// Send rate with the tracer counting every drop.
    pub traced_drops_per_sec: f64,
    pub storm_secs: f64,
    /// NETFILTER_DROP drops in the tracer's summary.
    pub counted: u64,
    pub exact: bool,
    /// The tracer's user+system CPU from the storm's start until it had caught up (1.5 s
    /// after the last datagram).
    pub tracer_cpu_secs: f64,
    pub tracer_cpu_window_secs: f64,
    pub tracer_peak_rss_kib: u64,
    pub events_lost: u64,
    pub events_suppressed: u64,
    pub uncounted: u64,
}

pub fn run(bin: &Path, datagrams: u64) -> Result<Results> {
    eprintln!("[storm] {datagrams} UDP datagrams dropped by an nft output rule");
    let bed = Bed::new("stoa")?;
    let traffic = Traffic::Udp { flows: FLOWS };
    let untraced = bed.send(datagrams, traffic)?;
    eprintln!(
        "[storm] untraced: {:.0} drops/s",
        datagrams as f64 / untraced
    );
    check_interrupt()?;

    let tracer = Tracer::watch(
        bin,
        bed.ns.name(),
        &["--iface", DEVICE, "--profile", "generic"],
    )?;
    let pid = tracer.pid();
    let cpu0 = cpu_secs(pid)?;
    let started = Instant::now();
    let secs = bed.send(datagrams, traffic)?;
    // The tracer drains its sampled events and reads the counters at its next interval.
    std::thread::sleep(Duration::from_millis(1500));
    let window = started.elapsed().as_secs_f64();
    let cpu = cpu_secs(pid)? - cpu0;
    let rss = peak_rss_kib(pid)?;
    let summary = tracer.stop()?;
    let counted = firewall_drops(&summary)?;
    let stats = summary.drop_stats.unwrap_or_default();
    let results = Results {
        datagrams,
        untraced_drops_per_sec: datagrams as f64 / untraced,
        traced_drops_per_sec: datagrams as f64 / secs,
        storm_secs: secs,
        counted,
        exact: counted == datagrams,
        tracer_cpu_secs: cpu,
        tracer_cpu_window_secs: window,
        tracer_peak_rss_kib: rss,
        events_lost: stats.events_lost,
        events_suppressed: stats.events_suppressed,
        uncounted: stats.uncounted,
    };
    eprintln!(
        "[storm] traced: {:.0} drops/s, counted {counted} of {datagrams}, tracer CPU {cpu:.2} s, peak RSS {rss} KiB",
        results.traced_drops_per_sec
    );
    Ok(results)
}
