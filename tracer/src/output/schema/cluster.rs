//! The object `tracer cluster --output json` prints.

use serde::{Deserialize, Serialize};

/// The node pairs Prometheus knows, and the pairs that lose overlay traffic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterReport {
    /// The Prometheus server read.
    pub prometheus: String,
    /// The rules' rate window.
    pub window_secs: u32,
    /// Every node whose tracer Prometheus scrapes.
    pub nodes: Vec<String>,
    pub pairs: Vec<PairRates>,
    /// The pairs the rules' alerts name, pending or firing.
    pub losing: Vec<LosingPair>,
}

/// One direction of a node pair, for one overlay class, in packets per second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairRates {
    pub sender: String,
    pub receiver: String,
    pub class: String,
    pub sent_per_sec: f64,
    /// Nullable: the receiver's tracer has no series for this pair.
    pub received_per_sec: Option<f64>,
    /// Sent and never seen arriving. Nullable: the receiver is not watched, so unknown.
    pub path_lost_per_sec: Option<f64>,
    /// Arrived and dropped by the receiver's kernel, by reason.
    pub dropped: Vec<DroppedRate>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DroppedRate {
    pub reason: String,
    pub per_sec: f64,
}

/// Where the packets of a losing pair go missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossPlace {
    /// Between the two nodes: sent, never arrived.
    Path,
    /// On the receiver: arrived, dropped by its kernel.
    Receiver,
}

/// A pair an alert names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LosingPair {
    pub sender: String,
    pub receiver: String,
    pub class: String,
    #[serde(rename = "where")]
    pub place: LossPlace,
    /// The receiver's drop reason (optional: only where it is `receiver`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The share of the sent packets lost, 0 to 1.
    pub share: f64,
    /// `pending` or `firing`.
    pub state: String,
    /// The alert's summary.
    pub summary: String,
}
