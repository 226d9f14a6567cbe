//! The watch table for people: per interface, direction and class, the rate over the last
//! interval and the totals since the start, then the drops with the reason the kernel gave,
//! what it means, and the flows that suffer most. On a terminal the screen is redrawn in place.

use std::{fmt::Write as _, io::Write};

use super::{
    DropsView, Interval, WatchHeader, WatchOutput, WatchSummary, findings, schema::Flow, units::si,
};
use crate::{
    events::{DropFlow, Reason},
    findings::drops::DropCause,
};

pub struct Text<W: Write> {
    out: W,
    redraw: bool,
    /// The run's banner, rendered once by `header` and repeated on every redraw.
    banner: Option<String>,
}

impl<W: Write> Text<W> {
    /// `redraw`: clear the screen before each table (for terminals).
    pub fn new(out: W, redraw: bool) -> Self {
        Text {
            out,
            redraw,
            banner: None,
        }
    }

    fn banner(h: &WatchHeader) -> String {
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

    fn drops(&mut self, d: &DropsView) -> std::io::Result<()> {
        writeln!(self.out)?;
        let (network, housekeeping): (Vec<_>, Vec<_>) =
            d.totals.iter().partition(|t| !t.reason.is_housekeeping());
        if network.is_empty() {
            writeln!(self.out, "No packet lost in this network namespace.")?;
        } else {
            writeln!(
                self.out,
                "{:<16} {:<20} {:<24} {:>10}",
                "DROPPED ON", "CLASS", "REASON", "PACKETS"
            )?;
            for t in &network {
                writeln!(
                    self.out,
                    "{:<16} {:<20} {:<24} {:>10}",
                    t.iface, t.class, t.reason, t.count
                )?;
            }
            if !d.top.is_empty() {
                writeln!(self.out, "Flows with the most drops:")?;
                for (i, flow) in d.top.iter().enumerate() {
                    writeln!(self.out, "  {}", flow_line(flow))?;
                    if let Some(c) = d.top_causes.get(i).and_then(Option::as_ref) {
                        self.cause(c)?;
                    }
                }
            }
            let mut reasons: Vec<&Reason> = network.iter().map(|t| &t.reason).collect();
            reasons.sort_unstable();
            reasons.dedup();
            for r in reasons {
                if let Some(why) = r.explain() {
                    writeln!(self.out, "  {r}: {why}")?;
                }
            }
        }
        if !housekeeping.is_empty() {
            let parts: Vec<String> = housekeeping
                .iter()
                .map(|t| format!("{} {} x{}", t.class, t.reason, t.count))
                .collect();
            writeln!(
                self.out,
                "Also freed by sockets tidying up (not network loss): {}",
                parts.join(", ")
            )?;
        }
        let s = d.stats;
        if s.events_lost + s.events_suppressed + s.uncounted > 0 {
            writeln!(
                self.out,
                "Drop events: {} lost (ring buffer full), {} held back by the sampling limits (counted above), {} drops beyond the counter table",
                s.events_lost, s.events_suppressed, s.uncounted
            )?;
        }
        if s.untracked > 0 {
            writeln!(
                self.out,
                "{} drops counted above without their flow: the flow table was full",
                s.untracked
            )?;
        }
        Ok(())
    }
}

impl<W: Write> Text<W> {
    fn cause(&mut self, c: &DropCause) -> std::io::Result<()> {
        if let Some(r) = &c.rule {
            writeln!(self.out, "    dropped by {}", findings::rule_line(r))?;
        }
        if let Some(zone) = &c.zone {
            let binding = c
                .binding
                .as_ref()
                .map(|b| format!(", chosen by {b}"))
                .unwrap_or_default();
            writeln!(self.out, "    zone {zone}{binding}")?;
        }
        if let Some(e) = &c.element {
            writeln!(self.out, "    cause: {e}")?;
        }
        for cmd in &c.fix {
            writeln!(self.out, "    fix:   {cmd}")?;
        }
        Ok(())
    }
}

/// `udp 10.0.0.2:40000 -> 10.0.0.1:4789 on eth0, NETFILTER_DROP x1000 at nft_do_chain+0x1c8`.
pub fn flow_line(f: &DropFlow) -> String {
    let mut line = format!(
        "{} on {}, {} x{}",
        Flow::from(&f.flow),
        f.iface,
        f.reason,
        f.count
    );
    if let Some(inner) = &f.inner {
        let _ = write!(
            line,
            " [vni {} {}: {}]",
            inner.vni,
            inner.class,
            Flow::from(&inner.flow)
        );
    }
    if let Some(at) = &f.location {
        let _ = write!(line, " at {at}");
    }
    line
}

/// A class as the table shows it: overlay packets by their inner class are marked.
fn class_label(e: &crate::events::counters::Entry) -> String {
    if e.inner {
        format!("{} (in VXLAN)", e.class)
    } else {
        e.class.clone()
    }
}

const HEAD: &str = "IFACE            DIR      CLASS                   PKT/S          RATE      PACKETS        BYTES";

impl<W: Write> WatchOutput for Text<W> {
    fn header(&mut self, header: &WatchHeader) -> std::io::Result<()> {
        let banner = Self::banner(header);
        self.out.write_all(banner.as_bytes())?;
        self.banner = Some(banner);
        writeln!(self.out, "Ctrl-C to stop.")?;
        self.out.flush()
    }

    fn interval(&mut self, interval: &Interval) -> std::io::Result<()> {
        if self.redraw {
            write!(self.out, "\x1b[H\x1b[2J")?;
            if let Some(b) = &self.banner {
                self.out.write_all(b.as_bytes())?;
            }
        } else {
            writeln!(self.out)?;
        }
        writeln!(self.out, "after {:.1}s", interval.elapsed.as_secs_f64())?;
        if interval.samples.is_empty() {
            writeln!(self.out, "(no packets yet)")?;
        } else {
            writeln!(self.out, "{HEAD}")?;
        }
        for s in interval.samples {
            let e = &s.entry;
            writeln!(
                self.out,
                "{:<16} {:<8} {:<20} {:>8.1} {:>13} {:>12} {:>12}",
                e.iface,
                e.direction.as_str(),
                class_label(e),
                s.packets_per_sec,
                si(s.bits_per_sec, "bit/s"),
                e.packets,
                si(e.bytes as f64, "B"),
            )?;
        }
        if let Some(d) = interval.drops {
            self.drops(d)?;
        }
        if !interval.findings.is_empty() {
            writeln!(self.out, "\nThe node's diagnosis found:")?;
            for f in interval.findings {
                writeln!(
                    self.out,
                    "  {}: {}",
                    f.severity.as_str().to_uppercase(),
                    f.title
                )?;
                if let Some(e) = &f.element {
                    writeln!(self.out, "    cause: {e}")?;
                }
                for cmd in &f.fix {
                    writeln!(self.out, "    fix:   {cmd}")?;
                }
            }
        }
        self.out.flush()
    }

    fn summary(&mut self, summary: &WatchSummary) -> std::io::Result<()> {
        let secs = summary.duration.as_secs_f64();
        writeln!(self.out)?;
        writeln!(
            self.out,
            "Summary after {secs:.1}s (profile {})",
            summary.header.profile
        )?;
        if summary.entries.is_empty() {
            writeln!(self.out, "no packets seen")?;
        } else {
            writeln!(
                self.out,
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
                self.out,
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
            self.drops(d)?;
        }
        self.out.flush()
    }
}
