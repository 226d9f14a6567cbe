//! Section 4: a drop storm. In a fresh namespace an nftables output rule drops every datagram
//! to one address; a socket sends N of them to 50,000 ports (more flows than the kernel's flow
//! table holds). Dropped in the sender's own context, none can be lost on a queue, so the
//! tracer must report exactly N. Measured: drops per second with and without the tracer, the
//! tracer's CPU time and peak RSS during the storm, and the events it lost or held back.

use std::{
    net::{Ipv4Addr, UdpSocket},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::{
    netns::{self, NetNs, check_interrupt},
    procs::{Tracer, cpu_secs, peak_rss_kib},
};

const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 2);
/// The dropped destination: on the link, with a permanent neighbour entry (no ARP).
const DROPPED: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 9);

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
    let (a, _b) = netns::pair("stoa", LOCAL, "stob", PEER)?;
    a.nft(&format!(
        "table inet bnstorm {{\n chain output {{\n type filter hook output priority 0;\n ip daddr {DROPPED} drop\n }}\n}}\n"
    ))?;
    a.ip(&[
        "neigh",
        "add",
        &DROPPED.to_string(),
        "lladdr",
        "02:00:00:00:00:09",
        "dev",
        "bn0",
        "nud",
        "permanent",
    ])?;

    let untraced = storm(&a, datagrams)?;
    eprintln!(
        "[storm] untraced: {:.0} drops/s",
        datagrams as f64 / untraced
    );
    check_interrupt()?;

    let tracer = Tracer::watch(bin, a.name(), &["--iface", "bn0", "--profile", "generic"])?;
    let pid = tracer.pid();
    let cpu0 = cpu_secs(pid)?;
    let started = Instant::now();
    let secs = storm(&a, datagrams)?;
    // The tracer drains its sampled events and reads the counters at its next interval.
    std::thread::sleep(Duration::from_millis(1500));
    let window = started.elapsed().as_secs_f64();
    let cpu = cpu_secs(pid)? - cpu0;
    let rss = peak_rss_kib(pid)?;
    let summary = tracer.stop()?;
    let counted: u64 = summary
        .drops
        .as_ref()
        .context("no drops in the tracer's summary")?
        .iter()
        .filter(|d| d.reason.is_firewall() && d.iface == "-")
        .map(|d| d.count)
        .sum();
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

/// Sends the datagrams from inside `ns`; the seconds it took.
fn storm(ns: &NetNs, datagrams: u64) -> Result<f64> {
    ns.run_in(|| {
        let sock = UdpSocket::bind((LOCAL, 0)).context("binding the storm's socket")?;
        let started = Instant::now();
        for i in 0..datagrams {
            // EPERM for every one of them: the rule drops it on the way out.
            let _ = sock.send_to(b"storm", (DROPPED, 1 + (i % 50_000) as u16));
        }
        Ok(started.elapsed().as_secs_f64())
    })?
}
