//! Watch output for scripts: one JSON object per line. A `counters` line is printed for every
//! counter that moved during an interval, with cumulative values; the final `summary` line
//! holds every counter.

use std::{io::Write, time::Duration};

use serde::Serialize;

use super::{WatchHeader, WatchOutput, WatchSummary};
use crate::events::{Direction, Sample, counters::Entry};

pub struct Json<W: Write> {
    out: W,
}

impl<W: Write> Json<W> {
    pub fn new(out: W) -> Self {
        Json { out }
    }

    fn line<T: Serialize>(&mut self, value: &T) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, value)?;
        self.out.write_all(b"\n")
    }
}

#[derive(Serialize)]
struct Counters<'a> {
    r#type: &'static str,
    iface: &'a str,
    direction: Direction,
    class: &'a str,
    packets: u64,
    bytes: u64,
}

impl<'a> Counters<'a> {
    fn from(e: &'a Entry) -> Self {
        Counters {
            r#type: "counters",
            iface: &e.iface,
            direction: e.direction,
            class: &e.class,
            packets: e.packets,
            bytes: e.bytes,
        }
    }
}

#[derive(Serialize)]
struct Iface<'a> {
    iface: &'a str,
    ifindex: u32,
    hook: &'a str,
}

#[derive(Serialize)]
struct Start<'a> {
    r#type: &'static str,
    profile: &'a str,
    profile_reason: &'a str,
    interval_secs: f64,
    interfaces: Vec<Iface<'a>>,
    programs: std::collections::BTreeMap<&'static str, u32>,
}

#[derive(Serialize)]
struct Summary<'a> {
    r#type: &'static str,
    profile: &'a str,
    duration_secs: f64,
    interfaces: Vec<Iface<'a>>,
    counters: Vec<Counters<'a>>,
}

fn ifaces(h: &WatchHeader) -> Vec<Iface<'_>> {
    h.ifaces
        .iter()
        .map(|(n, i, hook)| Iface {
            iface: n,
            ifindex: *i,
            hook,
        })
        .collect()
}

impl<W: Write> WatchOutput for Json<W> {
    fn header(&mut self, h: &WatchHeader) -> std::io::Result<()> {
        self.line(&Start {
            r#type: "start",
            profile: &h.profile,
            profile_reason: &h.profile_reason,
            interval_secs: h.interval.as_secs_f64(),
            interfaces: ifaces(h),
            programs: h.programs.iter().copied().collect(),
        })?;
        self.out.flush()
    }

    fn interval(&mut self, _elapsed: Duration, samples: &[Sample]) -> std::io::Result<()> {
        for s in samples.iter().filter(|s| s.new_packets > 0) {
            self.line(&Counters::from(&s.entry))?;
        }
        self.out.flush()
    }

    fn summary(&mut self, s: &WatchSummary) -> std::io::Result<()> {
        self.line(&Summary {
            r#type: "summary",
            profile: &s.header.profile,
            duration_secs: s.duration.as_secs_f64(),
            interfaces: ifaces(s.header),
            counters: s.entries.iter().map(|e| Counters::from(e)).collect(),
        })?;
        self.out.flush()
    }
}
