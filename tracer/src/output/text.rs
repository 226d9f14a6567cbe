//! The watch log for people, written to a pipe, a file or a terminal that asked for text: what
//! changed, as it changes, rather than the whole table every interval. A class seen for the
//! first time, a new group of dropped flows with its cause and fix (flows that differ only in
//! an ephemeral port are one group), a new or resolved finding, and every so often a one-line
//! status that keeps the open findings in view; at the end, the summary.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt::Write as _,
    io::Write,
    time::Duration,
};

use super::{
    DropsView, Interval, WatchHeader, WatchOutput, WatchSummary,
    findings::{finding, labelled},
    flows::{FlowBook, cause_lines},
    units::si,
    words::{count, plural},
};
use crate::{
    events::{Direction, Reason, counters::Entry},
    findings::{Finding, Severity, drops::DropCause},
    probes::DropStats,
};

/// How often the status line is printed at least (or every interval, when longer).
const STATUS_EVERY: Duration = Duration::from_secs(10);

/// A counter's identity.
type ClassKey = (String, Direction, String, bool);

pub struct Text<W: Write> {
    out: W,
    status_every: Duration,
    last_status: Duration,
    classes: HashSet<ClassKey>,
    book: FlowBook,
    /// Each group of flows printed, with the cause it was printed with.
    printed: HashMap<String, Option<DropCause>>,
    /// Housekeeping (class, reason) pairs mentioned.
    housekeeping: HashSet<(String, String)>,
    reasons: HashSet<Reason>,
    /// Network drops at the last status line.
    dropped_at_status: u64,
    /// Overlay and BGP peers not answering, said once.
    unanswered: super::peer_lines::Unanswered,
    stats: DropStats,
    /// Findings reported and not resolved, by id.
    open: BTreeMap<String, Finding>,
    resolved: Vec<Finding>,
}

impl<W: Write> Text<W> {
    pub fn new(out: W) -> Self {
        Text {
            out,
            status_every: STATUS_EVERY,
            last_status: Duration::ZERO,
            classes: HashSet::new(),
            book: FlowBook::default(),
            printed: HashMap::new(),
            housekeeping: HashSet::new(),
            reasons: HashSet::new(),
            dropped_at_status: 0,
            unanswered: super::peer_lines::Unanswered::default(),
            stats: DropStats::default(),
            open: BTreeMap::new(),
            resolved: Vec::new(),
        }
    }

    fn new_classes(&mut self, at: &str, i: &Interval) -> std::io::Result<()> {
        for s in i.samples.iter().filter(|s| s.new_packets > 0) {
            let e = &s.entry;
            let key = (e.iface.clone(), e.direction, e.class.clone(), e.inner);
            if self.classes.insert(key) {
                writeln!(
                    self.out,
                    "{at} new traffic: {} {} on {}, {:.1} packets/s, {}",
                    class_label(e),
                    e.direction.as_str(),
                    e.iface,
                    s.packets_per_sec,
                    si(s.bits_per_sec, "bit/s"),
                )?;
            }
        }
        Ok(())
    }

    fn new_drops(&mut self, at: &str) -> std::io::Result<()> {
        for g in self.book.groups() {
            let first = g.first();
            if g.is_housekeeping() {
                let key = (first.class.clone(), first.reason.to_string());
                if self.housekeeping.insert(key) {
                    writeln!(
                        self.out,
                        "{at} freed by a socket tidying up (not network loss): {} {} on {}",
                        first.class, first.reason, first.iface
                    )?;
                }
                continue;
            }
            let cause = g.cause().cloned();
            match self.printed.get(&g.key) {
                None => writeln!(self.out, "{at} drops: {}", g.line())?,
                Some(before) if cause.is_some() && *before != cause => {
                    writeln!(self.out, "{at} cause of drops: {}", g.line())?;
                }
                Some(_) => continue,
            }
            if self.reasons.insert(first.reason.clone())
                && let Some(why) = first.reason.explain()
            {
                writeln!(self.out, "  {}: {why}", first.reason)?;
            }
            if let Some(c) = &cause {
                labelled(&mut self.out, "    ", &cause_lines(c))?;
            }
            self.printed.insert(g.key.clone(), cause);
        }
        Ok(())
    }

    fn findings(&mut self, at: &str, i: &Interval) -> std::io::Result<()> {
        for f in i.findings {
            write!(self.out, "{at} found: ")?;
            finding(&mut self.out, f)?;
            self.open.insert(f.id.clone(), f.clone());
        }
        for f in i.resolved {
            writeln!(
                self.out,
                "{at} resolved: {} {} (the latest diagnosis no longer finds it)",
                f.severity.as_str().to_uppercase(),
                f.title
            )?;
            self.open.remove(&f.id);
            self.resolved.push(f.clone());
        }
        Ok(())
    }

    fn status(&mut self, at: &str, i: &Interval) -> std::io::Result<()> {
        let moving: Vec<_> = i
            .samples
            .iter()
            .filter(|s| s.new_packets > 0 && !s.entry.inner)
            .collect();
        let pps: f64 = moving.iter().map(|s| s.packets_per_sec).sum();
        let bps: f64 = moving.iter().map(|s| s.bits_per_sec).sum();
        let mut line = format!(
            "{at} status: {} moving, {:.1} packets/s, {}",
            count(moving.len() as u64, "class", "classes"),
            pps,
            si(bps, "bit/s")
        );
        if let Some(d) = i.drops {
            let dropped: u64 = d
                .totals
                .iter()
                .filter(|t| !t.reason.is_housekeeping())
                .map(|t| t.count)
                .sum();
            let _ = write!(
                line,
                "; {} dropped (+{} since the last status)",
                count(dropped, "packet", "packets"),
                dropped.saturating_sub(self.dropped_at_status)
            );
            self.dropped_at_status = dropped;
            let s = d.stats;
            if s.events_lost + s.uncounted > 0 {
                let _ = write!(
                    line,
                    "; {} lost, {} uncounted",
                    count(s.events_lost, "event", "events"),
                    count(s.uncounted, "drop", "drops")
                );
            }
        }
        line.push_str("; ");
        line.push_str(&open_text(self.open.values()));
        writeln!(self.out, "{line}")
    }
}

/// `no finding open`, or `open: 1 error (calico-vxlan 4789/udp ... is dropped)`.
fn open_text<'a>(open: impl Iterator<Item = &'a Finding>) -> String {
    let open: Vec<&Finding> = open.collect();
    if open.is_empty() {
        return "no finding open".into();
    }
    let of = |s: Severity| open.iter().filter(|f| f.severity == s).count();
    let mut parts = Vec::new();
    for (s, word) in [
        (Severity::Error, "error"),
        (Severity::Warning, "warning"),
        (Severity::Info, "note"),
    ] {
        if of(s) > 0 {
            parts.push(plural(of(s), word));
        }
    }
    let mut titles: Vec<&str> = open.iter().take(2).map(|f| f.title.as_str()).collect();
    let more = open.len().saturating_sub(titles.len());
    let more_text = format!("{more} more");
    if more > 0 {
        titles.push(&more_text);
    }
    format!("open: {} ({})", parts.join(", "), titles.join("; "))
}

/// A class as the tables show it: overlay packets by their inner class are marked.
fn class_label(e: &Entry) -> String {
    if e.inner {
        format!("{} (in VXLAN)", e.class)
    } else {
        e.class.clone()
    }
}

/// The run's first lines: profile, interfaces and hooks, the metrics address.
pub fn banner(h: &WatchHeader) -> String {
    let ifaces: Vec<String> = h
        .ifaces
        .iter()
        .map(|(n, _, hook)| format!("{n} ({hook})"))
        .collect();
    let metrics = h
        .metrics
        .map(|a| format!("metrics: http://{a}/metrics\n"))
        .unwrap_or_default();
    format!(
        "tracer watch: profile {} ({})\ninterfaces: {}\n{metrics}",
        h.profile,
        h.profile_reason,
        ifaces.join(", ")
    )
}

impl<W: Write> WatchOutput for Text<W> {
    fn header(&mut self, header: &WatchHeader) -> std::io::Result<()> {
        self.out.write_all(banner(header).as_bytes())?;
        self.status_every = header.interval.max(STATUS_EVERY);
        writeln!(
            self.out,
            "Ctrl-C to stop. Printed: what changes, a status every {:.0}s, a summary at the end.",
            self.status_every.as_secs_f64()
        )?;
        self.out.flush()
    }

    fn interval(&mut self, i: &Interval) -> std::io::Result<()> {
        let at = format!("[{:.1}s]", i.elapsed.as_secs_f64());
        self.new_classes(&at, i)?;
        if let Some(d) = i.drops {
            self.book.update(d);
            self.new_drops(&at)?;
            let s = d.stats;
            if s.events_lost > self.stats.events_lost || s.uncounted > self.stats.uncounted {
                writeln!(
                    self.out,
                    "{at} drop events: {} lost (ring buffer full), {} beyond the counter table",
                    s.events_lost, s.uncounted
                )?;
            }
            self.stats = s;
        }
        self.findings(&at, i)?;
        for c in i.ifaces {
            writeln!(self.out, "{at} {}", super::peer_lines::iface_change(c))?;
        }
        for line in self.unanswered.update(i.peers) {
            writeln!(self.out, "{at} {line}")?;
        }
        if i.elapsed.saturating_sub(self.last_status) >= self.status_every && i.stop.is_none() {
            self.last_status = i.elapsed;
            self.status(&at, i)?;
        }
        self.out.flush()
    }

    fn summary(&mut self, summary: &WatchSummary) -> std::io::Result<()> {
        let open: Vec<Finding> = self.open.values().cloned().collect();
        write_summary(&mut self.out, summary, &self.book, &open, &self.resolved)?;
        self.out.flush()
    }
}

/// The end of a run: every counter, the drops with their grouped flows and causes, the
/// findings still open and those resolved. The terminal view prints it too, once it closed.
pub fn write_summary(
    out: &mut impl Write,
    summary: &WatchSummary,
    book: &FlowBook,
    open: &[Finding],
    resolved: &[Finding],
) -> std::io::Result<()> {
    let secs = summary.duration.as_secs_f64();
    writeln!(out)?;
    writeln!(
        out,
        "Summary after {secs:.1}s (profile {})",
        summary.header.profile
    )?;
    if summary.entries.is_empty() {
        writeln!(out, "no packets seen")?;
    } else {
        writeln!(
            out,
            "IFACE            DIR      CLASS                 PACKETS        BYTES   AVG PKT/S"
        )?;
    }
    for e in &summary.entries {
        let avg = if secs > 0.0 {
            e.packets as f64 / secs
        } else {
            0.0
        };
        writeln!(
            out,
            "{:<16} {:<8} {:<20} {:>8} {:>12} {:>11.1}",
            e.iface,
            e.direction.as_str(),
            class_label(e),
            e.packets,
            si(e.bytes as f64, "B"),
            avg
        )?;
    }
    if let Some(d) = summary.drops {
        write_drops(out, d, book)?;
        if summary.peers.iter().any(super::peer_lines::lopsided) {
            writeln!(
                out,
                "Overlay traffic may be lost between nodes, outside this one: see the peers below."
            )?;
        }
    }
    super::peer_lines::write_peers(out, &summary.peers)?;
    if !open.is_empty() {
        writeln!(out, "\nFindings still open:")?;
        for f in open {
            finding(out, f)?;
        }
    }
    if !resolved.is_empty() {
        writeln!(out, "\nResolved while watching:")?;
        for f in resolved {
            writeln!(out, "  {} {}", f.severity.as_str().to_uppercase(), f.title)?;
        }
    }
    Ok(())
}

/// The drop totals, the groups of flows with the most drops and their causes, housekeeping
/// apart, and the probe's events that did not make it.
fn write_drops(out: &mut impl Write, d: &DropsView, book: &FlowBook) -> std::io::Result<()> {
    writeln!(out)?;
    let (network, housekeeping): (Vec<_>, Vec<_>) =
        d.totals.iter().partition(|t| !t.reason.is_housekeeping());
    if network.is_empty() {
        writeln!(out, "No packet lost in this network namespace.")?;
    } else {
        writeln!(
            out,
            "{:<16} {:<20} {:<24} {:>10}",
            "DROPPED ON", "CLASS", "REASON", "PACKETS"
        )?;
        for t in &network {
            writeln!(
                out,
                "{:<16} {:<20} {:<24} {:>10}",
                t.iface, t.class, t.reason, t.count
            )?;
        }
        let groups: Vec<_> = book
            .groups()
            .into_iter()
            .filter(|g| !g.is_housekeeping())
            .collect();
        if !groups.is_empty() {
            writeln!(out, "Flows with the most drops:")?;
        }
        for g in groups.iter().take(10) {
            writeln!(out, "  {}", g.line())?;
            if let Some(c) = g.cause() {
                labelled(out, "    ", &cause_lines(c))?;
            }
        }
        if groups.len() > 10 {
            writeln!(out, "  and {} more", plural(groups.len() - 10, "group"))?;
        }
        let mut reasons: Vec<&Reason> = network.iter().map(|t| &t.reason).collect();
        reasons.sort_unstable();
        reasons.dedup();
        for r in reasons {
            if let Some(why) = r.explain() {
                writeln!(out, "  {r}: {why}")?;
            }
        }
    }
    if !housekeeping.is_empty() {
        let parts: Vec<String> = housekeeping
            .iter()
            .map(|t| format!("{} {} x{}", t.class, t.reason, t.count))
            .collect();
        writeln!(
            out,
            "Also freed by sockets tidying up (not network loss): {}",
            parts.join(", ")
        )?;
    }
    let s = d.stats;
    if s.events_lost + s.events_suppressed + s.uncounted > 0 {
        writeln!(
            out,
            "Drop events: {} lost (ring buffer full), {} held back by the sampling limits (counted above), {} beyond the counter table",
            s.events_lost, s.events_suppressed, s.uncounted
        )?;
    }
    if s.untracked > 0 {
        writeln!(
            out,
            "{} drops counted above without their flow: the flow table was full",
            s.untracked
        )?;
    }
    Ok(())
}
