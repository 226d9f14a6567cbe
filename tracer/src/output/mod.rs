//! Outputs, the last stage: what the user reads. Text for people, JSON lines for scripts,
//! and the firewall formats `tracer ports` prints.

pub mod json;
pub mod ports;
pub mod text;
mod units;

use std::{io, time::Duration};

use crate::events::{Sample, counters::Entry};

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

/// The end of a run.
#[derive(Clone, Debug)]
pub struct WatchSummary<'a> {
    pub header: &'a WatchHeader,
    pub duration: Duration,
    pub entries: Vec<&'a Entry>,
}

/// A way to present a watch run.
pub trait WatchOutput {
    fn header(&mut self, header: &WatchHeader) -> io::Result<()>;
    fn interval(&mut self, elapsed: Duration, samples: &[Sample]) -> io::Result<()>;
    fn summary(&mut self, summary: &WatchSummary) -> io::Result<()>;
}
