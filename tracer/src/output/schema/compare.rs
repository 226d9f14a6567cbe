//! The object `tracer baseline compare --output json` prints.

use serde::{Deserialize, Serialize};

use super::{Direction, Reason};

/// A comparison of a fresh sample with a recorded baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "comparison")]
pub struct Comparison {
    /// The baseline file, as given.
    pub baseline: String,
    pub recorded_at: String,
    pub baseline_secs: f64,
    pub sample_secs: f64,
    /// The sample's profile.
    pub profile: String,
    pub threshold_percent: f64,
    pub floor_per_sec: f64,
    /// Whether any change is a regression (exit status 4).
    pub regression: bool,
    pub changes: Vec<Change>,
    /// Sentences on what differs between the two recordings.
    pub notes: Vec<String>,
}

/// What a change is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Traffic,
    Drops,
}

/// What moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    PacketsPerSec,
    BytesPerSec,
    DropsPerSec,
    /// The packet-size distribution (fractions per size bucket).
    Sizes,
}

/// A rate, or a size distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Level {
    Rate(f64),
    Sizes(Vec<f64>),
}

/// One rate that moved by the threshold or more.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub regression: bool,
    pub kind: ChangeKind,
    pub iface: String,
    /// Traffic only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    pub class: String,
    /// Overlay packets counted by the class of the packet they carry.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inner: bool,
    /// Drops only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    pub measure: Measure,
    pub before: Level,
    pub after: Level,
    /// `None` (null) for a rate the baseline did not have.
    pub change_percent: Option<f64>,
    /// Total-variation distance of a size distribution's shift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance: Option<f64>,
    /// The change as a sentence.
    pub message: String,
}
