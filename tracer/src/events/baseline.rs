//! Baselines: what a node carried over a recording window, as rates per second. Packets and
//! bytes per interface, direction and class (overlay packets again by their inner class) with
//! the packet-size distribution, and drops per interface, class and kernel reason. A baseline
//! is built from two counter snapshots and two readings of the drop totals, kept as a
//! versioned JSON file, and compared with a fresh sample built the same way (`compare`).

mod clock;
mod compare;
#[cfg(test)]
mod tests;

pub use clock::{rfc3339, rfc3339_millis};
pub use compare::{Change, Comparison, Delta, Measure, Note, Side, Subject, Thresholds, compare};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tracer_common::counters::{SIZE_BOUNDS, SIZE_BUCKETS};

use super::{Direction, DropTotal, Reason, Snapshot, counters::Entry};
use tracer_nft::JsonError;

/// Marks a file as a tracer baseline, so that any other JSON is refused by name.
pub const FORMAT: &str = "tracer-baseline";
/// Bumped whenever a field changes meaning or disappears; other versions are refused rather
/// than half understood.
pub const VERSION: u32 = 1;

/// Rates of one recording window, with what they were recorded on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`] once read.
    pub version: u32,
    pub meta: Meta,
    /// Length of the window the rates were measured over.
    pub duration_secs: f64,
    /// Upper bounds of the size buckets, in bytes; the last bucket has none.
    pub size_bounds: Vec<u32>,
    /// Every (interface, direction, class) that carried packets during the window.
    pub traffic: Vec<TrafficRate>,
    /// Every (interface, class, reason) with drops during the window; absent when the
    /// recording had no drop capture (`--no-drops`), which is not the same as no drops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drops: Option<Vec<DropRate>>,
}

/// Where and with what a baseline was recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// RFC 3339, UTC.
    pub recorded_at: String,
    pub profile: String,
    /// Catalog files whose classes were added to the profile's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub catalogs: Vec<String>,
    pub interfaces: Vec<IfaceHook>,
    /// The kernel release (`uname -r`).
    pub kernel: String,
    pub tracer_version: String,
}

/// A traced interface and its ingress hook (`tc`, `xdp`, `xdp-generic`, `none`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfaceHook {
    pub iface: String,
    pub hook: String,
}

/// What identifies a traffic rate across two recordings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TrafficKey {
    pub iface: String,
    pub direction: Direction,
    pub class: String,
    pub inner: bool,
}

impl TrafficKey {
    fn new(iface: &str, direction: Direction, class: &str, inner: bool) -> Self {
        TrafficKey {
            iface: iface.to_string(),
            direction,
            class: class.to_string(),
            inner,
        }
    }
}

/// Traffic of one class on one interface and direction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrafficRate {
    pub iface: String,
    pub direction: Direction,
    pub class: String,
    /// Overlay packets counted by the class of the packet they carry.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inner: bool,
    pub packets_per_sec: f64,
    pub bytes_per_sec: f64,
    /// Fraction of the packets in each size bucket (`size_bounds`). Absent for inner rows:
    /// the datapath sizes the packets on the wire, not what they carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizes: Option<Vec<f64>>,
}

impl TrafficRate {
    pub fn key(&self) -> TrafficKey {
        TrafficKey::new(&self.iface, self.direction, &self.class, self.inner)
    }
}

/// What identifies a drop rate across two recordings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DropKey {
    pub iface: String,
    pub class: String,
    pub reason: Reason,
}

impl DropKey {
    fn new(iface: &str, class: &str, reason: &Reason) -> Self {
        DropKey {
            iface: iface.to_string(),
            class: class.to_string(),
            reason: reason.clone(),
        }
    }
}

/// Drops of one class on one interface for one kernel reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DropRate {
    pub iface: String,
    pub class: String,
    #[serde(flatten, with = "super::reasons::as_fields")]
    pub reason: Reason,
    pub per_sec: f64,
}

impl DropRate {
    pub fn key(&self) -> DropKey {
        DropKey::new(&self.iface, &self.class, &self.reason)
    }
}

/// The drop totals read at the start and at the end of a window (they count since the probe
/// was loaded, so only the difference belongs to the window).
#[derive(Clone, Copy, Debug)]
pub struct DropWindow<'a> {
    pub before: &'a [DropTotal],
    pub after: &'a [DropTotal],
}

/// Why a baseline file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// Not JSON, or JSON of the wrong shape.
    #[error(transparent)]
    Json(#[from] tracer_nft::JsonError),
    #[error(
        "{origin}: not a tracer baseline (no \"format\": \"{FORMAT}\"; write one with `tracer baseline record`)"
    )]
    NotBaseline { origin: String },
    #[error(
        "{origin}: baseline format version {found}, but this tracer reads version {VERSION}; record the baseline again"
    )]
    Version { origin: String, found: String },
    /// Well-formed JSON whose values make no sense (a negative rate, the wrong number of
    /// size buckets).
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

impl Baseline {
    /// The rates between two snapshots (and drop readings) of one running datapath.
    pub fn record(
        meta: Meta,
        before: &Snapshot,
        after: &Snapshot,
        drops: Option<DropWindow>,
    ) -> Baseline {
        let secs = after.at.saturating_duration_since(before.at).as_secs_f64();
        Baseline::from_entries(meta, secs, before.entries(), after.entries(), drops)
    }

    fn from_entries<'a>(
        meta: Meta,
        secs: f64,
        before: impl IntoIterator<Item = &'a Entry>,
        after: impl IntoIterator<Item = &'a Entry>,
        drops: Option<DropWindow>,
    ) -> Baseline {
        let rate = |n: u64| {
            if secs > 0.0 {
                round(n as f64 / secs, 1e3)
            } else {
                0.0
            }
        };
        let key = |e: &Entry| TrafficKey::new(&e.iface, e.direction, &e.class, e.inner);
        let start: BTreeMap<TrafficKey, &Entry> = before.into_iter().map(|e| (key(e), e)).collect();
        let mut traffic: Vec<TrafficRate> = Vec::new();
        for e in after {
            let zero = [0; SIZE_BUCKETS];
            let (p0, b0, s0) = start
                .get(&key(e))
                .map_or((0, 0, &zero), |b| (b.packets, b.bytes, &b.sizes));
            let packets = e.packets.saturating_sub(p0);
            if packets == 0 {
                continue;
            }
            let sized: Vec<u64> = e
                .sizes
                .iter()
                .zip(s0)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect();
            let total: u64 = sized.iter().sum();
            traffic.push(TrafficRate {
                iface: e.iface.clone(),
                direction: e.direction,
                class: e.class.clone(),
                inner: e.inner,
                packets_per_sec: rate(packets),
                bytes_per_sec: rate(e.bytes.saturating_sub(b0)),
                sizes: (total > 0).then(|| {
                    sized
                        .iter()
                        .map(|n| round(*n as f64 / total as f64, 1e4))
                        .collect()
                }),
            });
        }
        let drops = drops.map(|w| {
            let sum = |totals: &[DropTotal]| {
                let mut m: BTreeMap<DropKey, u64> = BTreeMap::new();
                for t in totals {
                    *m.entry(DropKey::new(&t.iface, &t.class, &t.reason))
                        .or_default() += t.count;
                }
                m
            };
            let start = sum(w.before);
            sum(w.after)
                .into_iter()
                .filter_map(|(k, n)| {
                    let n = n.saturating_sub(start.get(&k).copied().unwrap_or(0));
                    (n > 0).then(|| DropRate {
                        iface: k.iface,
                        class: k.class,
                        reason: k.reason,
                        per_sec: rate(n),
                    })
                })
                .collect()
        });
        Baseline {
            format: FORMAT.to_string(),
            version: VERSION,
            meta,
            duration_secs: round(secs, 1e3),
            size_bounds: SIZE_BOUNDS.to_vec(),
            traffic,
            drops,
        }
    }

    /// The file's text: JSON with one field, rate or drop per line, so that people can read
    /// it and `diff` two of them (serde's pretty printer would spread every size
    /// distribution over ten lines).
    pub fn to_json(&self) -> String {
        fn compact<T: Serialize + ?Sized>(v: &T) -> String {
            serde_json::to_string(v).expect("baseline fields serialize")
        }
        fn list<T: Serialize>(items: &[T]) -> String {
            if items.is_empty() {
                return "[]".to_string();
            }
            let rows: Vec<String> = items
                .iter()
                .map(|i| format!("    {}", compact(i)))
                .collect();
            format!("[\n{}\n  ]", rows.join(",\n"))
        }
        let mut fields = vec![
            ("format", compact(&self.format)),
            ("version", compact(&self.version)),
            ("meta", compact(&self.meta)),
            ("duration_secs", compact(&self.duration_secs)),
            ("size_bounds", compact(&self.size_bounds)),
            ("traffic", list(&self.traffic)),
        ];
        if let Some(drops) = &self.drops {
            fields.push(("drops", list(drops)));
        }
        let fields: Vec<String> = fields
            .into_iter()
            .map(|(k, v)| format!("  \"{k}\": {v}"))
            .collect();
        format!("{{\n{}\n}}\n", fields.join(",\n"))
    }

    /// Reads a baseline from `text`; `origin` (the file name) prefixes every error.
    pub fn from_json(text: &str, origin: &str) -> Result<Baseline, BaselineError> {
        // The format and version first, so that another version's file is refused as such
        // rather than for a field it lacks.
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| JsonError::new(origin, &e))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(BaselineError::NotBaseline {
                origin: origin.to_string(),
            });
        }
        match value.get("version") {
            Some(v) if v.as_u64() == Some(u64::from(VERSION)) => {}
            found => {
                return Err(BaselineError::Version {
                    origin: origin.to_string(),
                    found: tracer_nft::bounded(
                        found.map_or("(none)".to_string(), std::string::ToString::to_string),
                    ),
                });
            }
        }
        let baseline: Baseline =
            serde_json::from_str(text).map_err(|e| JsonError::new(origin, &e))?;
        // The message names the entry by its class, direction and interface, which are the
        // file's own strings and can be of any size.
        baseline.check().map_err(|message| BaselineError::Invalid {
            origin: origin.to_string(),
            message: tracer_nft::bounded(message),
        })?;
        Ok(baseline)
    }

    /// What serde cannot see: values that would make the comparison meaningless.
    fn check(&self) -> Result<(), String> {
        let rate_ok = |r: f64| r.is_finite() && r >= 0.0;
        if !(self.duration_secs.is_finite() && self.duration_secs > 0.0) {
            return Err(format!(
                "duration_secs must be positive, not {}",
                self.duration_secs
            ));
        }
        for (i, t) in self.traffic.iter().enumerate() {
            let at = || {
                format!(
                    "traffic[{i}] ({} {} on {})",
                    t.class,
                    t.direction.as_str(),
                    t.iface
                )
            };
            if !rate_ok(t.packets_per_sec) || !rate_ok(t.bytes_per_sec) {
                return Err(format!("{}: rates must be zero or positive", at()));
            }
            if let Some(s) = &t.sizes {
                if s.len() != self.size_bounds.len() + 1 {
                    return Err(format!(
                        "{}: {} size fractions for {} size bounds (expected {})",
                        at(),
                        s.len(),
                        self.size_bounds.len(),
                        self.size_bounds.len() + 1
                    ));
                }
                if !s.iter().all(|f| f.is_finite() && (0.0..=1.0).contains(f)) {
                    return Err(format!("{}: size fractions must lie between 0 and 1", at()));
                }
            }
        }
        for (i, d) in self.drops.iter().flatten().enumerate() {
            if !rate_ok(d.per_sec) {
                return Err(format!(
                    "drops[{i}] ({} of {} on {}): rates must be zero or positive",
                    d.reason, d.class, d.iface
                ));
            }
        }
        Ok(())
    }
}

/// Rounds to `1/scale`: rates to a thousandth, fractions to a ten-thousandth. More digits
/// would only record noise.
fn round(v: f64, scale: f64) -> f64 {
    (v * scale).round() / scale
}
