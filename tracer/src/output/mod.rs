//! Outputs, the last stage: what the user reads. Text for people, JSON lines for scripts,
//! Prometheus metrics, the firewall formats `tracer ports` prints, and baselines and their
//! comparisons.

pub mod baseline;
pub mod findings;
pub mod json;
pub mod metrics;
pub mod pcap;
pub mod ports;
pub mod text;
mod units;

use std::{io, time::Duration};

use crate::{
    events::{DropFlow, DropTotal, Sample, counters::Entry},
    findings::{Finding, drops::DropCause},
    probes::DropStats,
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
}

/// The drops of a run so far.
#[derive(Clone, Debug, Default)]
pub struct DropsView {
    /// Flows whose count moved in the last interval (cumulative counts).
    pub changed: Vec<DropFlow>,
    /// The probe's statistics, when they moved in the last interval.
    pub stats_changed: Option<DropStats>,
    pub totals: Vec<DropTotal>,
    /// The flows with the most network drops (socket housekeeping left out), most first.
    pub top: Vec<DropFlow>,
    pub stats: DropStats,
    /// Why the firewall dropped each flow of `changed`, where it was the firewall (same order).
    /// Filled only for the JSON output, the one that reads it.
    pub changed_causes: Vec<Option<DropCause>>,
    /// The same for `top`; filled only for the text output.
    pub top_causes: Vec<Option<DropCause>>,
}

/// One interval of a run.
#[derive(Clone, Debug)]
pub struct Interval<'a> {
    pub elapsed: Duration,
    pub samples: &'a [Sample],
    /// `None` when drop capture is off.
    pub drops: Option<&'a DropsView>,
    /// Findings of the node's diagnosis that appeared in this interval.
    pub findings: &'a [Finding],
}

/// The end of a run.
#[derive(Clone, Debug)]
pub struct WatchSummary<'a> {
    pub header: &'a WatchHeader,
    pub duration: Duration,
    pub entries: Vec<&'a Entry>,
    pub drops: Option<&'a DropsView>,
}

/// A way to present a watch run.
pub trait WatchOutput {
    fn header(&mut self, header: &WatchHeader) -> io::Result<()>;
    fn interval(&mut self, interval: &Interval) -> io::Result<()>;
    fn summary(&mut self, summary: &WatchSummary) -> io::Result<()>;
}
