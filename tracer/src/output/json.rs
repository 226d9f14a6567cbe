//! Watch output for scripts: one JSON object per line. A `counters` line is printed for every
//! counter that moved during an interval, a `drop` line for every dropped flow whose count
//! moved (both with cumulative values), a `drop_stats` line when events were lost or held back,
//! and a final `summary` line holds every counter and drop total.

use std::{collections::BTreeMap, io::Write};

use serde::Serialize;

use super::{DropsView, Interval, WatchHeader, WatchOutput, WatchSummary, findings::Line};
use crate::{
    events::{
        Direction, DropFlow, DropTotal,
        counters::Entry,
        drops::{Endpoints, Inner},
    },
    findings::drops::DropCause,
    probes::DropStats,
};

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
    /// Overlay packets counted by the class of the packet they carry.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    inner: bool,
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
            inner: e.inner,
            packets: e.packets,
            bytes: e.bytes,
        }
    }
}

#[derive(Serialize)]
struct FlowJson {
    proto: String,
    src: Option<String>,
    dst: Option<String>,
    sport: u16,
    dport: u16,
}

impl FlowJson {
    fn of(e: &Endpoints) -> Self {
        FlowJson {
            proto: e.proto_name(),
            src: e.src.map(|a| a.to_string()),
            dst: e.dst.map(|a| a.to_string()),
            sport: e.sport,
            dport: e.dport,
        }
    }
}

#[derive(Serialize)]
struct InnerJson<'a> {
    vni: u32,
    class: &'a str,
    #[serde(flatten)]
    flow: FlowJson,
}

impl<'a> InnerJson<'a> {
    fn of(i: &'a Inner) -> Self {
        InnerJson {
            vni: i.vni,
            class: &i.class,
            flow: FlowJson::of(&i.flow),
        }
    }
}

#[derive(Serialize)]
struct Drop<'a> {
    r#type: &'static str,
    iface: &'a str,
    class: &'a str,
    reason: &'a str,
    #[serde(flatten)]
    flow: FlowJson,
    count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    inner: Option<InnerJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explain: Option<&'static str>,
    /// The firewall rule, zone and element behind a NETFILTER_DROP, and the fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<&'a DropCause>,
}

impl<'a> Drop<'a> {
    fn of(f: &'a DropFlow, cause: Option<&'a DropCause>) -> Self {
        Drop {
            r#type: "drop",
            iface: &f.iface,
            class: &f.class,
            reason: f.reason.name(),
            flow: FlowJson::of(&f.flow),
            count: f.count,
            inner: f.inner.as_ref().map(InnerJson::of),
            function: f.location.as_deref(),
            explain: f.reason.explain(),
            cause,
        }
    }
}

#[derive(Serialize)]
struct Stats {
    r#type: &'static str,
    events_lost: u64,
    events_suppressed: u64,
    uncounted: u64,
}

impl Stats {
    fn of(s: DropStats) -> Self {
        Stats {
            r#type: "drop_stats",
            events_lost: s.events_lost,
            events_suppressed: s.events_suppressed,
            uncounted: s.uncounted,
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
    programs: BTreeMap<&'static str, u32>,
}

#[derive(Serialize)]
struct Summary<'a> {
    r#type: &'static str,
    profile: &'a str,
    duration_secs: f64,
    interfaces: Vec<Iface<'a>>,
    counters: Vec<Counters<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drops: Option<&'a [DropTotal]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drop_stats: Option<Stats>,
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

    fn interval(&mut self, interval: &Interval) -> std::io::Result<()> {
        for s in interval.samples.iter().filter(|s| s.new_packets > 0) {
            self.line(&Counters::from(&s.entry))?;
        }
        if let Some(d) = interval.drops {
            for (i, f) in d.changed.iter().enumerate() {
                self.line(&Drop::of(
                    f,
                    d.changed_causes.get(i).and_then(Option::as_ref),
                ))?;
            }
            if let Some(stats) = d.stats_changed {
                self.line(&Stats::of(stats))?;
            }
        }
        for f in interval.findings {
            self.line(&Line {
                r#type: "finding",
                body: f,
            })?;
        }
        self.out.flush()
    }

    fn summary(&mut self, s: &WatchSummary) -> std::io::Result<()> {
        let drops = s.drops.map(|d: &DropsView| d.totals.as_slice());
        self.line(&Summary {
            r#type: "summary",
            profile: &s.header.profile,
            duration_secs: s.duration.as_secs_f64(),
            interfaces: ifaces(s.header),
            counters: s.entries.iter().map(|e| Counters::from(e)).collect(),
            drops,
            drop_stats: s.drops.map(|d| Stats::of(d.stats)),
        })?;
        self.out.flush()
    }
}
