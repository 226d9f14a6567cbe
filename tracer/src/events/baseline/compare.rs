//! A fresh sample against a baseline: every rate in either, what moved by at least the
//! threshold, and which of those moves are regressions. Traffic that falls and drops that rise
//! or appear are regressions; traffic that rises and size distributions that shift are
//! reported but are not, since a node carrying more or different traffic is not by itself
//! broken, and neither are more housekeeping drops (sockets and queues tidying up, which grow
//! with connection churn). Rates below the noise floor on both sides are not compared at all.

use std::collections::{BTreeMap, BTreeSet};

use super::{Baseline, DropKey, TrafficKey, TrafficRate};

/// When a change counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Smallest change reported, in percent of the baseline's rate (for size distributions,
    /// of the total-variation distance).
    pub percent: f64,
    /// Packets or drops per second below which a rate is noise.
    pub floor: f64,
}

/// Float slack for the threshold's edge: a fall of exactly the threshold counts, even when
/// the division lands a hair short of it.
const EDGE: f64 = 1e-9;

#[derive(Clone, Debug, PartialEq)]
pub enum Subject {
    Traffic(TrafficKey),
    Drops(DropKey),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    Packets,
    Bytes,
    Drops,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Delta {
    /// Per-second rates in the baseline and in the sample.
    Rate {
        measure: Measure,
        before: f64,
        after: f64,
    },
    /// The packet-size distributions moved apart by this total-variation distance (0 to 1:
    /// the share of packets that would have to change bucket).
    Sizes {
        before: Vec<f64>,
        after: Vec<f64>,
        distance: f64,
    },
}

impl Delta {
    /// The change in percent of the baseline; `None` for a rate the baseline did not have.
    pub fn percent(&self) -> Option<f64> {
        match self {
            Delta::Rate { before, after, .. } if *before > 0.0 => {
                Some((after - before) / before * 100.0)
            }
            Delta::Rate { .. } => None,
            Delta::Sizes { distance, .. } => Some(distance * 100.0),
        }
    }
}

/// One thing that moved by at least the threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub subject: Subject,
    pub delta: Delta,
    pub regression: bool,
}

/// Which recording something is missing from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Baseline,
    Sample,
}

/// Differences between the two recordings that limit what the comparison means.
#[derive(Clone, Debug, PartialEq)]
pub enum Note {
    /// Different profiles classify the same packets differently.
    ProfileDiffers {
        baseline: String,
        sample: String,
    },
    /// Traffic of an interface traced on one side only shows as gone or new.
    InterfacesDiffer {
        only_baseline: Vec<String>,
        only_sample: Vec<String>,
    },
    /// One side was recorded without drop capture: drops are not compared.
    NoDrops(Side),
    /// The size buckets differ (another tracer version): distributions are not compared.
    SizeBucketsDiffer,
    KernelDiffers {
        baseline: String,
        sample: String,
    },
}

/// Everything that moved, regressions first, with the notes on what was not comparable.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub thresholds: Thresholds,
    pub changes: Vec<Change>,
    pub notes: Vec<Note>,
}

impl Comparison {
    pub fn regressed(&self) -> bool {
        self.changes.iter().any(|c| c.regression)
    }
}

/// Whether a rate moved by at least `percent` of `before`; any rate the baseline did not
/// have moved.
fn moved(before: f64, after: f64, percent: f64) -> bool {
    if before <= 0.0 {
        return after > 0.0;
    }
    (after - before).abs() / before * 100.0 >= percent - EDGE
}

/// Total-variation distance between two distributions over the same buckets.
fn distance(p: &[f64], q: &[f64]) -> f64 {
    p.iter().zip(q).map(|(a, b)| (a - b).abs()).sum::<f64>() / 2.0
}

pub fn compare(baseline: &Baseline, sample: &Baseline, t: Thresholds) -> Comparison {
    let mut changes = traffic_changes(baseline, sample, t);
    let mut notes = notes(baseline, sample);
    match (&baseline.drops, &sample.drops) {
        (Some(old), Some(new)) => {
            let keyed = |rates: &[super::DropRate]| -> BTreeMap<DropKey, f64> {
                rates.iter().map(|d| (d.key(), d.per_sec)).collect()
            };
            let (old, new) = (keyed(old), keyed(new));
            let keys: BTreeSet<&DropKey> = old.keys().chain(new.keys()).collect();
            for key in keys {
                let before = old.get(key).copied().unwrap_or(0.0);
                let after = new.get(key).copied().unwrap_or(0.0);
                if before.max(after) < t.floor || !moved(before, after, t.percent) {
                    continue;
                }
                changes.push(Change {
                    subject: Subject::Drops(key.clone()),
                    delta: Delta::Rate {
                        measure: Measure::Drops,
                        before,
                        after,
                    },
                    // Rising or appearing drops (the rate above the floor is `after`) of
                    // traffic lost rather than sockets closing.
                    regression: after > before && !key.reason.is_housekeeping(),
                });
            }
        }
        (None, _) => notes.push(Note::NoDrops(Side::Baseline)),
        (_, None) => notes.push(Note::NoDrops(Side::Sample)),
    }
    // Stable: within each group, traffic before drops and in key order.
    changes.sort_by_key(|c| !c.regression);
    Comparison {
        thresholds: t,
        changes,
        notes,
    }
}

fn traffic_changes(baseline: &Baseline, sample: &Baseline, t: Thresholds) -> Vec<Change> {
    let keyed = |b: &'_ Baseline| -> BTreeMap<TrafficKey, TrafficRate> {
        b.traffic.iter().map(|r| (r.key(), r.clone())).collect()
    };
    let (old, new) = (keyed(baseline), keyed(sample));
    let same_buckets = baseline.size_bounds == sample.size_bounds;
    let keys: BTreeSet<&TrafficKey> = old.keys().chain(new.keys()).collect();
    let mut changes = Vec::new();
    for key in keys {
        let (o, n) = (old.get(key), new.get(key));
        let rate = |r: Option<&TrafficRate>| {
            r.map_or((0.0, 0.0), |r| (r.packets_per_sec, r.bytes_per_sec))
        };
        let ((p0, b0), (p1, b1)) = (rate(o), rate(n));
        if p0.max(p1) < t.floor {
            continue;
        }
        let subject = Subject::Traffic(key.clone());
        if moved(p0, p1, t.percent) {
            changes.push(Change {
                subject: subject.clone(),
                delta: Delta::Rate {
                    measure: Measure::Packets,
                    before: p0,
                    after: p1,
                },
                // A class that falls away (or disappears): the rate above the floor is `p0`.
                regression: p1 < p0,
            });
        } else if moved(b0, b1, t.percent) {
            // Same packets, different sizes: worth a line, the size shift says more.
            changes.push(Change {
                subject: subject.clone(),
                delta: Delta::Rate {
                    measure: Measure::Bytes,
                    before: b0,
                    after: b1,
                },
                regression: false,
            });
        }
        let sizes = (
            o.and_then(|r| r.sizes.as_ref()),
            n.and_then(|r| r.sizes.as_ref()),
        );
        if let (Some(before), Some(after)) = sizes
            && same_buckets
            && p0.min(p1) >= t.floor
        {
            let d = distance(before, after);
            if d * 100.0 >= t.percent - EDGE {
                changes.push(Change {
                    subject,
                    delta: Delta::Sizes {
                        before: before.clone(),
                        after: after.clone(),
                        distance: d,
                    },
                    regression: false,
                });
            }
        }
    }
    changes
}

fn notes(baseline: &Baseline, sample: &Baseline) -> Vec<Note> {
    let mut notes = Vec::new();
    let (b, s) = (&baseline.meta, &sample.meta);
    if b.profile != s.profile {
        notes.push(Note::ProfileDiffers {
            baseline: b.profile.clone(),
            sample: s.profile.clone(),
        });
    }
    let names = |m: &super::Meta| -> BTreeSet<String> {
        m.interfaces.iter().map(|i| i.iface.clone()).collect()
    };
    let (bi, si) = (names(b), names(s));
    if bi != si {
        notes.push(Note::InterfacesDiffer {
            only_baseline: bi.difference(&si).cloned().collect(),
            only_sample: si.difference(&bi).cloned().collect(),
        });
    }
    if baseline.size_bounds != sample.size_bounds {
        notes.push(Note::SizeBucketsDiffer);
    }
    if b.kernel != s.kernel {
        notes.push(Note::KernelDiffers {
            baseline: b.kernel.clone(),
            sample: s.kernel.clone(),
        });
    }
    notes
}
