//! Baselines for people and scripts: what a recording holds, and a comparison in plain words
//! ("kube-apiserver ingress on eth0: 200.0 -> 100.0 packets/s (-50%)"), regressions first,
//! as text or as one JSON object that carries the same sentences (the schema's
//! [`schema::Comparison`]).

use std::io::Write;

use super::{
    schema::{self, ChangeKind, Level},
    units::si,
};
use crate::events::{
    Direction,
    baseline::{Baseline, Change, Comparison, Delta, Measure, Note, Side, Subject},
};

/// What a comparison is about, for its header.
pub struct CompareContext<'a> {
    /// The baseline file, as given.
    pub file: &'a str,
    pub baseline: &'a Baseline,
    pub sample: &'a Baseline,
}

fn traffic_name(class: &str, inner: bool, direction: Direction, iface: &str) -> String {
    let inner = if inner { " (inside the overlay)" } else { "" };
    format!("{class}{inner} {} on {iface}", direction.as_str())
}

fn drops_name(reason: &str, class: &str, iface: &str) -> String {
    format!("{reason} drops of {class} on {iface}")
}

fn subject_name(s: &Subject) -> String {
    match s {
        Subject::Traffic(k) => traffic_name(&k.class, k.inner, k.direction, &k.iface),
        Subject::Drops(k) => drops_name(k.reason.name(), &k.class, &k.iface),
    }
}

/// `-50%`, `+100%`, or `new` for a rate the baseline did not have.
fn percent(p: Option<f64>) -> String {
    match p {
        Some(p) => format!("{p:+.0}%"),
        None => "new".to_string(),
    }
}

/// `65-128 B` for size bucket `i`.
fn bucket(bounds: &[u32], i: usize) -> String {
    match (i.checked_sub(1).and_then(|j| bounds.get(j)), bounds.get(i)) {
        (None, Some(hi)) => format!("<={hi} B"),
        (Some(lo), Some(hi)) => format!("{}-{hi} B", lo + 1),
        (Some(lo), None) => format!(">{lo} B"),
        (None, None) => "any size".to_string(),
    }
}

/// The buckets that hold at least a twentieth of the packets: `65-128 B 80%, 1025-1518 B 20%`.
fn shape(bounds: &[u32], fractions: &[f64]) -> String {
    let parts: Vec<String> = fractions
        .iter()
        .enumerate()
        .filter(|(_, f)| **f >= 0.05)
        .map(|(i, f)| format!("{} {:.0}%", bucket(bounds, i), f * 100.0))
        .collect();
    parts.join(", ")
}

/// One change as a sentence.
pub fn describe(c: &Change, bounds: &[u32]) -> String {
    let who = subject_name(&c.subject);
    let pct = percent(c.delta.percent());
    match &c.delta {
        Delta::Rate {
            measure: Measure::Packets,
            before,
            after,
        } => format!("{who}: {before:.1} -> {after:.1} packets/s ({pct})"),
        Delta::Rate {
            measure: Measure::Bytes,
            before,
            after,
        } => format!(
            "{who}: {} -> {} ({pct}) at about the same packet rate",
            si(*before, "B/s"),
            si(*after, "B/s")
        ),
        Delta::Rate {
            measure: Measure::Drops,
            before,
            after,
        } => format!("{who}: {before:.1} -> {after:.1} /s ({pct})"),
        Delta::Sizes {
            before,
            after,
            distance,
        } => format!(
            "packet sizes of {who} shifted by {:.0}% (total-variation distance): {} -> {}",
            distance * 100.0,
            shape(bounds, before),
            shape(bounds, after)
        ),
    }
}

pub fn note(n: &Note) -> String {
    match n {
        Note::ProfileDiffers { baseline, sample } => format!(
            "the baseline was recorded with profile {baseline}, this sample with {sample}: classes may not line up"
        ),
        Note::InterfacesDiffer {
            only_baseline,
            only_sample,
        } => {
            let mut parts = Vec::new();
            if !only_baseline.is_empty() {
                parts.push(format!(
                    "traced only in the baseline: {}",
                    only_baseline.join(", ")
                ));
            }
            if !only_sample.is_empty() {
                parts.push(format!("traced only now: {}", only_sample.join(", ")));
            }
            format!("interfaces differ ({})", parts.join("; "))
        }
        Note::NoDrops(Side::Baseline) => {
            "the baseline was recorded without drop capture: drops are not compared".to_string()
        }
        Note::NoDrops(Side::Sample) => {
            "this sample has no drop capture (--no-drops): drops are not compared".to_string()
        }
        Note::SizeBucketsDiffer => {
            "the size buckets differ from the baseline's: size distributions are not compared"
                .to_string()
        }
        Note::KernelDiffers { baseline, sample } => {
            format!("the kernel changed since the baseline: {baseline} -> {sample}")
        }
    }
}

pub fn text(out: &mut impl Write, ctx: &CompareContext, cmp: &Comparison) -> std::io::Result<()> {
    let b = ctx.baseline;
    writeln!(
        out,
        "tracer baseline compare: {} (recorded {}, {:.1} s, profile {}) against {:.1} s now (profile {})",
        ctx.file,
        b.meta.recorded_at,
        b.duration_secs,
        b.meta.profile,
        ctx.sample.duration_secs,
        ctx.sample.meta.profile
    )?;
    writeln!(
        out,
        "threshold {}%, noise floor {} /s",
        cmp.thresholds.percent, cmp.thresholds.floor
    )?;
    let bounds = &ctx.sample.size_bounds;
    let (bad, other): (Vec<&Change>, Vec<&Change>) = cmp.changes.iter().partition(|c| c.regression);
    for (title, list) in [
        ("Regressions:", bad.as_slice()),
        ("Other changes (not regressions):", other.as_slice()),
    ] {
        if !list.is_empty() {
            writeln!(out, "\n{title}")?;
            for c in list {
                writeln!(out, "  {}", describe(c, bounds))?;
            }
        }
    }
    if cmp.changes.is_empty() {
        writeln!(
            out,
            "\nNothing moved by {}% or more.",
            cmp.thresholds.percent
        )?;
    }
    if !cmp.notes.is_empty() {
        writeln!(out, "\nNotes:")?;
        for n in &cmp.notes {
            writeln!(out, "  {}", note(n))?;
        }
    }
    match bad.len() {
        0 => writeln!(out, "\nResult: no regression"),
        n => writeln!(out, "\nResult: REGRESSION ({n})"),
    }
}

/// One change as the schema's [`schema::Change`], its sentence included.
fn change(c: &Change, bounds: &[u32]) -> schema::Change {
    let (kind, iface, direction, class, inner, reason) = match &c.subject {
        Subject::Traffic(k) => (
            ChangeKind::Traffic,
            &k.iface,
            Some(k.direction),
            &k.class,
            k.inner,
            None,
        ),
        Subject::Drops(k) => (
            ChangeKind::Drops,
            &k.iface,
            None,
            &k.class,
            false,
            Some(k.reason.clone()),
        ),
    };
    let (measure, before, after, distance) = match &c.delta {
        Delta::Rate {
            measure,
            before,
            after,
        } => {
            let m = match measure {
                Measure::Packets => schema::Measure::PacketsPerSec,
                Measure::Bytes => schema::Measure::BytesPerSec,
                Measure::Drops => schema::Measure::DropsPerSec,
            };
            (m, Level::Rate(*before), Level::Rate(*after), None)
        }
        Delta::Sizes {
            before,
            after,
            distance,
        } => (
            schema::Measure::Sizes,
            Level::Sizes(before.clone()),
            Level::Sizes(after.clone()),
            Some(*distance),
        ),
    };
    schema::Change {
        regression: c.regression,
        kind,
        iface: iface.clone(),
        direction,
        class: class.clone(),
        inner,
        reason,
        measure,
        before,
        after,
        change_percent: c.delta.percent(),
        distance,
        message: describe(c, bounds),
    }
}

pub fn json(out: &mut impl Write, ctx: &CompareContext, cmp: &Comparison) -> std::io::Result<()> {
    let bounds = &ctx.sample.size_bounds;
    let doc = schema::Comparison {
        baseline: ctx.file.to_string(),
        recorded_at: ctx.baseline.meta.recorded_at.clone(),
        baseline_secs: ctx.baseline.duration_secs,
        sample_secs: ctx.sample.duration_secs,
        profile: ctx.sample.meta.profile.clone(),
        threshold_percent: cmp.thresholds.percent,
        floor_per_sec: cmp.thresholds.floor,
        regression: cmp.regressed(),
        changes: cmp.changes.iter().map(|c| change(c, bounds)).collect(),
        notes: cmp.notes.iter().map(note).collect(),
    };
    serde_json::to_writer(&mut *out, &doc)?;
    writeln!(out)
}

/// What a recording holds, after `tracer baseline record` wrote it.
pub fn recorded(out: &mut impl Write, b: &Baseline, file: &str) -> std::io::Result<()> {
    let ifaces: Vec<String> = b
        .meta
        .interfaces
        .iter()
        .map(|i| format!("{} ({})", i.iface, i.hook))
        .collect();
    writeln!(
        out,
        "Recorded {:.1} s on {}, profile {}; wrote {file}",
        b.duration_secs,
        ifaces.join(", "),
        b.meta.profile
    )?;
    if b.traffic.is_empty() {
        writeln!(out, "  no traffic")?;
    }
    for t in &b.traffic {
        writeln!(
            out,
            "  {}: {:.1} packets/s, {}",
            traffic_name(&t.class, t.inner, t.direction, &t.iface),
            t.packets_per_sec,
            si(t.bytes_per_sec, "B/s")
        )?;
    }
    match &b.drops {
        None => writeln!(out, "  drops not recorded (--no-drops)")?,
        Some(d) if d.is_empty() => writeln!(out, "  no drops")?,
        Some(d) => {
            for d in d {
                writeln!(
                    out,
                    "  {}: {:.1} /s",
                    drops_name(d.reason.name(), &d.class, &d.iface),
                    d.per_sec
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::baseline::{DropKey, TrafficKey};

    const BOUNDS: [u32; 7] = [64, 128, 256, 512, 1024, 1518, 9018];

    fn rate(subject: Subject, measure: Measure, before: f64, after: f64) -> Change {
        Change {
            subject,
            delta: Delta::Rate {
                measure,
                before,
                after,
            },
            regression: after < before,
        }
    }

    fn api() -> Subject {
        Subject::Traffic(TrafficKey {
            iface: "eth0".into(),
            direction: Direction::Ingress,
            class: "kube-apiserver".into(),
            inner: false,
        })
    }

    #[test]
    fn changes_read_as_sentences() {
        let c = rate(api(), Measure::Packets, 200.0, 100.0);
        assert_eq!(
            describe(&c, &BOUNDS),
            "kube-apiserver ingress on eth0: 200.0 -> 100.0 packets/s (-50%)"
        );
        let drops = Subject::Drops(DropKey {
            iface: "eth0".into(),
            class: "calico-vxlan".into(),
            reason: "NETFILTER_DROP".into(),
        });
        let c = rate(drops.clone(), Measure::Drops, 10.0, 20.0);
        assert_eq!(
            describe(&c, &BOUNDS),
            "NETFILTER_DROP drops of calico-vxlan on eth0: 10.0 -> 20.0 /s (+100%)"
        );
        let c = rate(drops, Measure::Drops, 0.0, 3.0);
        assert!(describe(&c, &BOUNDS).ends_with("0.0 -> 3.0 /s (new)"));
        let c = Change {
            subject: api(),
            delta: Delta::Sizes {
                before: vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                after: vec![0.0, 0.5, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0],
                distance: 0.5,
            },
            regression: false,
        };
        assert_eq!(
            describe(&c, &BOUNDS),
            "packet sizes of kube-apiserver ingress on eth0 shifted by 50% (total-variation distance): 65-128 B 100% -> 65-128 B 50%, 1025-1518 B 50%"
        );
        assert_eq!(bucket(&BOUNDS, 0), "<=64 B");
        assert_eq!(bucket(&BOUNDS, 7), ">9018 B");
    }
}
