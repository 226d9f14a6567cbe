//! The cluster's node pairs as Prometheus sees them through tracer's shipped rules
//! (`deploy/prometheus/tracer-rules.yml`): what each node sends each other node over the
//! overlay, what arrives, what the receiver drops and why, and the rules' alerts on the pairs
//! that lose traffic. When the series are absent it says which link of the chain is missing:
//! no tracer scraped, no overlay traffic counted, or the rules not loaded.

use std::collections::BTreeMap;

use super::prometheus::{Alert, PromError, Prometheus, Sample};

/// The recorded series, as the rules name them.
pub const SENT: &str = "tracer:overlay_pair_sent_packets:rate2m";
pub const RECEIVED: &str = "tracer:overlay_pair_received_packets:rate2m";
pub const PATH_LOST: &str = "tracer:overlay_pair_path_lost_packets:rate2m";
pub const DROPPED: &str = "tracer:overlay_pair_receiver_dropped_packets:rate2m";
/// The alerts, by the part of the path they blame.
pub const ALERT_PATH: &str = "TracerOverlayLostBetweenNodes";
pub const ALERT_RECEIVER: &str = "TracerOverlayDroppedOnReceiver";
/// The rules' rate window.
pub const WINDOW_SECS: u32 = 120;

/// Why the pairs could not be read: the server, or a missing link of the chain.
#[derive(Debug, thiserror::Error)]
pub enum PairsError {
    #[error(transparent)]
    Prometheus(#[from] PromError),
    #[error(
        "Prometheus at {url} has not loaded tracer's rules ({missing} is missing): add deploy/prometheus/tracer-rules.yml to its rule_files (or apply deploy/kubernetes/prometheus-rule.yaml with the Prometheus Operator)"
    )]
    NoRules { url: String, missing: &'static str },
    #[error(
        "Prometheus at {url} has no tracer_node_address_info series: it scrapes no tracer (check the DaemonSet's pods, and the ServiceMonitor or the scrape annotations)"
    )]
    NoTracers { url: String },
    #[error(
        "Prometheus at {url} has tracer's rules and scrapes {nodes}, but has no {SENT} series: no tracer counted overlay packets to another watched node in the last 2 minutes (is the overlay's underlay interface among --iface, and does the cluster carry pod traffic between nodes?)"
    )]
    NoPairs { url: String, nodes: String },
}

/// One direction of one node pair, for one overlay class.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pair {
    pub sender: String,
    pub receiver: String,
    pub class: String,
    /// Packets per second the sender sent to the receiver.
    pub sent: f64,
    /// Packets per second the receiver saw arrive; `None` when its tracer has no series.
    pub received: Option<f64>,
    /// Sent and never seen arriving, per second; `None` when the receiver is not watched.
    pub path_lost: Option<f64>,
    /// Arrived and dropped by the receiver's kernel, per second, by drop reason.
    pub dropped: BTreeMap<String, f64>,
}

/// Where an alert says the pair's packets go missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossAt {
    /// Between the two nodes: they never arrived.
    Path,
    /// On the receiver, which dropped them.
    Receiver,
}

/// A pair an alert of the rules names.
#[derive(Clone, Debug, PartialEq)]
pub struct Loss {
    pub sender: String,
    pub receiver: String,
    pub class: String,
    pub at: LossAt,
    /// The receiver's drop reason, for [`LossAt::Receiver`].
    pub reason: Option<String>,
    /// The share of the sent packets lost, 0 to 1.
    pub share: f64,
    /// `firing`, or `pending` (true for less than the rule's `for`).
    pub state: String,
    pub summary: String,
}

/// What `tracer cluster` shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterPairs {
    /// Every node whose tracer Prometheus scrapes now.
    pub nodes: Vec<String>,
    pub pairs: Vec<Pair>,
    pub losses: Vec<Loss>,
}

/// Reads the pairs and the alerts; an error names what is missing.
pub fn read(prom: &Prometheus) -> Result<ClusterPairs, PairsError> {
    let names = prom.rule_names()?;
    for wanted in [
        SENT,
        RECEIVED,
        PATH_LOST,
        DROPPED,
        ALERT_PATH,
        ALERT_RECEIVER,
    ] {
        if !names.iter().any(|n| n == wanted) {
            return Err(PairsError::NoRules {
                url: prom.url.clone(),
                missing: wanted,
            });
        }
    }
    let mut nodes: Vec<String> = prom
        .query("max by (node) (tracer_node_address_info)")?
        .into_iter()
        .filter_map(|s| s.labels.get("node").cloned())
        .collect();
    nodes.sort();
    if nodes.is_empty() {
        return Err(PairsError::NoTracers {
            url: prom.url.clone(),
        });
    }
    let mut pairs: BTreeMap<(String, String, String), Pair> = BTreeMap::new();
    for s in prom.query(SENT)? {
        let key = key(&s);
        pairs
            .entry(key.clone())
            .or_insert_with(|| Pair {
                sender: key.0,
                receiver: key.1,
                class: key.2,
                ..Pair::default()
            })
            .sent = s.value;
    }
    if pairs.is_empty() {
        return Err(PairsError::NoPairs {
            url: prom.url.clone(),
            nodes: nodes.join(", "),
        });
    }
    for s in prom.query(RECEIVED)? {
        if let Some(p) = pairs.get_mut(&key(&s)) {
            p.received = Some(s.value);
        }
    }
    for s in prom.query(PATH_LOST)? {
        if let Some(p) = pairs.get_mut(&key(&s)) {
            p.path_lost = Some(s.value);
        }
    }
    for s in prom.query(DROPPED)? {
        if let (Some(p), Some(reason)) = (pairs.get_mut(&key(&s)), s.labels.get("reason")) {
            p.dropped.insert(reason.clone(), s.value);
        }
    }
    let mut losses: Vec<Loss> = prom.alerts()?.iter().filter_map(loss).collect();
    losses.sort_by(|a, b| {
        (&a.sender, &a.receiver, &a.class, &a.reason).cmp(&(
            &b.sender,
            &b.receiver,
            &b.class,
            &b.reason,
        ))
    });
    Ok(ClusterPairs {
        nodes,
        pairs: pairs.into_values().collect(),
        losses,
    })
}

fn key(s: &Sample) -> (String, String, String) {
    let l = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
    (l("sender"), l("receiver"), l("class"))
}

/// The loss an alert of the rules reports; `None` for every other alert.
fn loss(a: &Alert) -> Option<Loss> {
    let at = match a.labels.get("alertname")?.as_str() {
        ALERT_PATH => LossAt::Path,
        ALERT_RECEIVER => LossAt::Receiver,
        _ => return None,
    };
    let l = |k: &str| a.labels.get(k).cloned().unwrap_or_default();
    Some(Loss {
        sender: l("sender"),
        receiver: l("receiver"),
        class: l("class"),
        at,
        reason: a.labels.get("reason").cloned(),
        share: a.value.parse().unwrap_or(f64::NAN),
        state: a.state.clone(),
        summary: a.annotations.get("summary").cloned().unwrap_or_default(),
    })
}
