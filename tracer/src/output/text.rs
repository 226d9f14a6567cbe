//! The watch table for people: per interface, direction and class, the rate over the last
//! interval and the totals since the start. On a terminal the table is redrawn in place.

use std::{io::Write, time::Duration};

use super::{WatchHeader, WatchOutput, WatchSummary, units::si};
use crate::events::Sample;

pub struct Text<W: Write> {
    out: W,
    redraw: bool,
    header: Option<WatchHeader>,
}

impl<W: Write> Text<W> {
    /// `redraw`: clear the screen before each table (for terminals).
    pub fn new(out: W, redraw: bool) -> Self {
        Text {
            out,
            redraw,
            header: None,
        }
    }

    fn banner(&mut self, h: &WatchHeader) -> std::io::Result<()> {
        let ifaces: Vec<String> = h
            .ifaces
            .iter()
            .map(|(n, _, hook)| format!("{n} ({hook})"))
            .collect();
        writeln!(
            self.out,
            "tracer watch: profile {} ({})",
            h.profile, h.profile_reason
        )?;
        writeln!(self.out, "interfaces: {}", ifaces.join(", "))
    }
}

const HEAD: &str = "IFACE            DIR      CLASS                   PKT/S          RATE      PACKETS        BYTES";

impl<W: Write> WatchOutput for Text<W> {
    fn header(&mut self, header: &WatchHeader) -> std::io::Result<()> {
        self.header = Some(header.clone());
        self.banner(header)?;
        writeln!(self.out, "Ctrl-C to stop.")?;
        self.out.flush()
    }

    fn interval(&mut self, elapsed: Duration, samples: &[Sample]) -> std::io::Result<()> {
        if self.redraw {
            write!(self.out, "\x1b[H\x1b[2J")?;
            if let Some(h) = self.header.clone() {
                self.banner(&h)?;
            }
        } else {
            writeln!(self.out)?;
        }
        writeln!(self.out, "after {:.1}s", elapsed.as_secs_f64())?;
        if samples.is_empty() {
            writeln!(self.out, "(no packets yet)")?;
            return self.out.flush();
        }
        writeln!(self.out, "{HEAD}")?;
        for s in samples {
            let e = &s.entry;
            writeln!(
                self.out,
                "{:<16} {:<8} {:<20} {:>8.1} {:>13} {:>12} {:>12}",
                e.iface,
                e.direction.as_str(),
                e.class,
                s.packets_per_sec,
                si(s.bits_per_sec, "bit/s"),
                e.packets,
                si(e.bytes as f64, "B"),
            )?;
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
            return self.out.flush();
        }
        writeln!(
            self.out,
            "IFACE            DIR      CLASS                 PACKETS        BYTES   AVG PKT/S"
        )?;
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
                e.class,
                e.packets,
                si(e.bytes as f64, "B"),
                avg
            )?;
        }
        self.out.flush()
    }
}
