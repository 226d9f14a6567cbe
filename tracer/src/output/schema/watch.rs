//! The lines of `tracer watch --output json`, and how the watch session's values become them.

use std::{collections::BTreeMap, fmt, net::IpAddr};

use serde::{Deserialize, Serialize};

use super::{
    DropCause, DropTotal, Finding,
    tagged::{self, Tagged},
};
use crate::{
    events::{
        Direction, DropFlow, PeerBalance, Reason,
        counters::Entry,
        drops::{Endpoints, Inner as InnerFlow},
    },
    probes::DropStats as ProbeStats,
    session::IfaceChange,
};

/// One line of `tracer watch --output json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WatchLine {
    Start(Start),
    Counters(Counters),
    Drop(DropLine),
    DropStats(DropStats),
    Finding(Finding),
    /// A finding of an earlier diagnosis the latest no longer makes: the fix was applied.
    FindingResolved(Finding),
    /// An interface that started or stopped being watched (`--iface` follows them).
    Iface(IfaceChange),
    /// What went to an overlay or BGP peer and came back.
    Peer(PeerBalance),
    Summary(Summary),
}

/// A line as printed: the [`WatchLine`] with when it was printed and the node's name (read a
/// line as `Stamped` to have them, or as `WatchLine` to leave them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    /// RFC 3339, UTC, to the millisecond.
    pub ts: String,
    /// `--node-name`, else `NODE_NAME`, else the host name.
    pub node: String,
    #[serde(flatten)]
    pub line: WatchLine,
}

/// What a run watches, printed once every program is attached.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Start {
    pub profile: String,
    /// Why this profile: detected from..., or given with --profile.
    pub profile_reason: String,
    pub interval_secs: f64,
    pub interfaces: Vec<Interface>,
    /// Program name to its kernel id, for bpftool.
    pub programs: BTreeMap<String, u32>,
    /// The metrics endpoint's address, with the port bound (`--metrics`; port 0 picks one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
}

/// A watched interface and the hook its ingress program sits on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub iface: String,
    pub ifindex: u32,
    /// `tc`, `xdp`, `xdp-generic` or `none`.
    pub hook: String,
}

/// Packets and bytes of one class on one interface and direction, since the start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub iface: String,
    pub direction: Direction,
    pub class: String,
    /// Overlay packets counted by the class of the packet they carry.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inner: bool,
    pub packets: u64,
    pub bytes: u64,
}

impl Tagged for Counters {
    const TYPE: &'static str = "counters";
}

impl From<&Entry> for Counters {
    fn from(e: &Entry) -> Self {
        Counters {
            iface: e.iface.clone(),
            direction: e.direction,
            class: e.class.clone(),
            inner: e.inner,
            packets: e.packets,
            bytes: e.bytes,
        }
    }
}

/// A flow's protocol and endpoints. Its text form, `udp 10.0.0.2:40000 -> 10.0.0.1:4789`,
/// is the one every output uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// The IP protocol's name (`tcp`, `udp`, `icmp`...), or its number.
    pub proto: String,
    /// `None`: not an IP packet, or unreadable.
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub sport: u16,
    pub dport: u16,
}

impl From<&Endpoints> for Flow {
    fn from(e: &Endpoints) -> Self {
        Flow {
            proto: e.proto_name(),
            src: e.src,
            dst: e.dst,
            sport: e.sport,
            dport: e.dport,
        }
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = |a: Option<IpAddr>, port: u16| match (a, port) {
            (Some(a), 0) => a.to_string(),
            (Some(IpAddr::V6(a)), p) => format!("[{a}]:{p}"),
            (Some(a), p) => format!("{a}:{p}"),
            (None, _) => "?".to_string(),
        };
        if self.src.is_none() {
            return f.write_str("non-IP or unreadable");
        }
        write!(
            f,
            "{} {} -> {}",
            self.proto,
            addr(self.src, self.sport),
            addr(self.dst, self.dport)
        )
    }
}

/// The inner flow of a dropped VXLAN packet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inner {
    pub vni: u32,
    pub class: String,
    #[serde(flatten)]
    pub flow: Flow,
}

impl From<&InnerFlow> for Inner {
    fn from(i: &InnerFlow) -> Self {
        Inner {
            vni: i.vni,
            class: i.class.clone(),
            flow: Flow::from(&i.flow),
        }
    }
}

/// Exact drops of one flow for one reason, since the start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropLine {
    /// `-` when the packet had no device (the node's own traffic).
    pub iface: String,
    pub class: String,
    /// With `"housekeeping"`: a socket or queue tidying up, or a packet freed after it was
    /// delivered, rather than traffic lost (what the place of the drop tells included).
    #[serde(flatten, with = "crate::events::reasons::as_fields")]
    pub reason: Reason,
    #[serde(flatten)]
    pub flow: Flow,
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner: Option<Inner>,
    /// `function+0xoffset` where the kernel dropped it, once a sampled packet told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// What the reason means, for the reasons that matter to cluster traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<String>,
    /// The firewall rule, zone and element behind a NETFILTER_DROP, and the fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<DropCause>,
}

impl DropLine {
    pub fn new(f: &DropFlow, cause: Option<&DropCause>) -> Self {
        DropLine {
            iface: f.iface.clone(),
            class: f.class.clone(),
            reason: f.reason.clone(),
            flow: Flow::from(&f.flow),
            count: f.count,
            inner: f.inner.as_ref().map(Inner::from),
            function: f.location.clone(),
            explain: f.reason.explain().map(str::to_string),
            cause: cause.cloned(),
        }
    }
}

/// The drop probe's sampled events that did not make it, since the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropStats {
    /// Lost: the ring buffer was full.
    pub events_lost: u64,
    /// Held back by the sampling budget (their drops are counted).
    pub events_suppressed: u64,
    /// Drops the counter table had no room for.
    pub uncounted: u64,
    /// Drops in the totals whose flow the flow table had no room for.
    #[serde(default)]
    pub untracked: u64,
}

impl Tagged for DropStats {
    const TYPE: &'static str = "drop_stats";
}

impl From<ProbeStats> for DropStats {
    fn from(s: ProbeStats) -> Self {
        DropStats {
            events_lost: s.events_lost,
            events_suppressed: s.events_suppressed,
            uncounted: s.uncounted,
            untracked: s.untracked,
        }
    }
}

/// The end of a run: every counter and drop total.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub profile: String,
    pub duration_secs: f64,
    pub interfaces: Vec<Interface>,
    /// Each printed as a `counters` object, its `"type"` included.
    #[serde(with = "tagged::list")]
    pub counters: Vec<Counters>,
    /// Absent without drop capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drops: Option<Vec<DropTotal>>,
    /// Printed as a `drop_stats` object, its `"type"` included; absent without drop capture.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "tagged::option"
    )]
    pub drop_stats: Option<DropStats>,
    /// What went to each overlay or BGP peer and came back, over the run (optional).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerBalance>,
}
