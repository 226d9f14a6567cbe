//! Outputs, the last stage before the command line: what the user reads. The full-screen view
//! on a terminal, a log of what changed for pipes and files, JSON lines for scripts, Prometheus
//! metrics and the endpoint that serves them, the pcapng file of sampled drops, the firewall
//! formats `tracer ports` prints, and baselines and their comparisons. A watch session's
//! intervals (and the view's keys) come in through [`WatchOutput`].

pub mod baseline;
pub mod cluster;
pub mod findings;
pub mod flows;
pub mod json;
pub mod metrics;
pub mod pcap;
pub mod peer_lines;
pub mod ports;
pub mod schema;
pub mod text;
pub mod tui;
mod units;
pub mod words;

use std::{io, time::Duration};

use crate::{
    events::{PeerBalance, counters::Entry},
    session::{DropsView, Interval, Next},
};

/// Writes a command's output to stdout; a closed pipe (`| head`) is not an error.
pub fn print(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
        _ => Ok(()),
    }
}

/// What a watch run is looking at, printed once at the start.
#[derive(Clone, Debug)]
pub struct WatchHeader {
    pub profile: String,
    /// Why this profile (detected from..., or given with --profile).
    pub profile_reason: String,
    /// Interface, index, ingress hook.
    pub ifaces: Vec<(String, u32, String)>,
    pub interval: Duration,
    /// Program name and kernel id, for bpftool.
    pub programs: Vec<(&'static str, u32)>,
    /// Where the metrics are served (`--metrics`), with the port actually bound.
    pub metrics: Option<std::net::SocketAddr>,
}

/// The end of a run.
#[derive(Clone, Debug)]
pub struct WatchSummary<'a> {
    pub header: &'a WatchHeader,
    pub duration: Duration,
    pub entries: Vec<&'a Entry>,
    pub drops: Option<&'a DropsView>,
    /// What went to each overlay or BGP peer and came back, over the run.
    pub peers: Vec<PeerBalance>,
}

/// A way to present a watch run.
pub trait WatchOutput {
    fn header(&mut self, header: &WatchHeader) -> io::Result<()>;
    fn interval(&mut self, interval: &Interval) -> io::Result<()>;
    fn summary(&mut self, summary: &WatchSummary) -> io::Result<()>;
    /// A key pressed or the terminal resized, for an output that reads them (the view).
    fn input(&mut self, _input: tui::Input) -> io::Result<Next> {
        Ok(Next::Go)
    }
}
