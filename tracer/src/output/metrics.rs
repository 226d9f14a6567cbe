//! Watch output for Prometheus: the latest counters, drop totals and findings of a run as the
//! text exposition format 0.0.4, rendered whole on every scrape. Every series carries the
//! node's name (`node`), so series of many nodes can be joined in one Prometheus. Families
//! come in a fixed order, samples in the order the events stage keeps them, so two scrapes of
//! the same state are byte-identical.

use std::{fmt::Write, net::IpAddr};

use tracer_common::counters::SIZE_BOUNDS;

use super::DropsView;
use crate::{
    events::{PeerEntry, counters::Entry},
    findings::Finding,
};
pub use server::{BindError, DEFAULT_ADDR, Listener, MetricsServer, Publish, parse_addr};

/// The exposition format's media type, for the `Content-Type` header.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What does not change during a run.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// The node's name (`--node-name`), on every series.
    pub node: String,
    pub version: String,
    /// The running kernel's release (`uname -r`).
    pub kernel: String,
    /// Interface, index, ingress hook, as in the watch header.
    pub ifaces: Vec<(String, u32, String)>,
    /// The watched veths whose pod is known: interface, pod namespace, pod name.
    pub pods: Vec<(String, String, String)>,
}

/// Everything one scrape shows.
#[derive(Clone, Copy, Debug)]
pub struct Scrape<'a> {
    pub info: &'a RunInfo,
    /// The latest counters, cumulative since the start.
    pub entries: &'a [Entry],
    /// Node-to-node traffic per peer, cumulative.
    pub peers: &'a [PeerEntry],
    /// The node's own addresses, for rules that map a peer address to its node.
    pub addresses: &'a [IpAddr],
    /// `None` when drop capture is off: the drop families are left out rather than shown as 0.
    pub drops: Option<&'a DropsView>,
    pub findings: &'a [Finding],
}

/// The exposition text of one scrape.
pub fn render(s: &Scrape) -> String {
    let mut out = Exposition {
        text: String::with_capacity(4096),
        node: &s.info.node,
    };
    let o = &mut out;

    family(
        o,
        "tracer_build_info",
        "gauge",
        "The tracer version and the kernel it runs on; always 1.",
    );
    sample(
        o,
        "tracer_build_info",
        &[("version", &s.info.version), ("kernel", &s.info.kernel)],
        1,
    );
    family(
        o,
        "tracer_interface_info",
        "gauge",
        "An interface the tracer watches, with its ingress hook; always 1.",
    );
    for (iface, index, hook) in &s.info.ifaces {
        let index = index.to_string();
        sample(
            o,
            "tracer_interface_info",
            &[("iface", iface), ("ifindex", &index), ("hook", hook)],
            1,
        );
    }

    family(
        o,
        "tracer_iface_pod_info",
        "gauge",
        "The pod a watched veth belongs to, as the container runtime recorded it (CNI result cache); always 1.",
    );
    for (iface, namespace, pod) in &s.info.pods {
        sample(
            o,
            "tracer_iface_pod_info",
            &[("iface", iface), ("namespace", namespace), ("pod", pod)],
            1,
        );
    }

    let own: Vec<&Entry> = s.entries.iter().filter(|e| !e.inner).collect();
    let overlay: Vec<&Entry> = s.entries.iter().filter(|e| e.inner).collect();
    counter_pair(
        o,
        &own,
        "tracer_packets_total",
        "Packets per interface, direction and traffic class.",
        "tracer_bytes_total",
        "Bytes (whole frames) per interface, direction and traffic class.",
    );
    counter_pair(
        o,
        &overlay,
        "tracer_overlay_packets_total",
        "Overlay (VXLAN) packets per interface and direction, by the class of the packet they carry.",
        "tracer_overlay_bytes_total",
        "Bytes of overlay (VXLAN) packets per interface and direction, by the class of the packet they carry.",
    );
    histogram(o, &own);
    peers::addresses(o, s.addresses);
    peers::traffic(o, s.peers);

    if let Some(d) = s.drops {
        drops(o, d);
        peers::drops(o, &d.peers);
    }

    family(
        o,
        "tracer_findings",
        "gauge",
        "Each finding of the latest diagnosis, by id, severity and class; always 1.",
    );
    for f in s.findings {
        sample(
            o,
            "tracer_findings",
            &[
                ("id", &f.id),
                ("severity", f.severity.as_str()),
                ("class", f.class.as_deref().unwrap_or("")),
            ],
            1,
        );
    }
    out.text
}

fn entry_labels(e: &Entry) -> [(&str, &str); 3] {
    [
        ("iface", &e.iface),
        ("direction", e.direction.as_str()),
        ("class", &e.class),
    ]
}

fn counter_pair(
    o: &mut Exposition,
    entries: &[&Entry],
    packets: &str,
    packets_help: &str,
    bytes: &str,
    bytes_help: &str,
) {
    family(o, packets, "counter", packets_help);
    for e in entries {
        sample(o, packets, &entry_labels(e), e.packets);
    }
    family(o, bytes, "counter", bytes_help);
    for e in entries {
        sample(o, bytes, &entry_labels(e), e.bytes);
    }
}

fn histogram(o: &mut Exposition, entries: &[&Entry]) {
    const NAME: &str = "tracer_packet_size_bytes";
    family(
        o,
        NAME,
        "histogram",
        "Sizes of the packets (whole frames) per interface, direction and traffic class.",
    );
    let bucket = format!("{NAME}_bucket");
    for e in entries {
        let [iface, direction, class] = entry_labels(e);
        let mut cumulative = 0u64;
        for (bound, n) in SIZE_BOUNDS.iter().zip(e.sizes) {
            cumulative += n;
            let le = bound.to_string();
            // A counter and its buckets are one map value, but the kernel copies each CPU's
            // value while that CPU may be counting: packets counted mid-copy can put the
            // buckets a little ahead of the count. A bucket above +Inf would break quantiles;
            // the next scrape catches up.
            sample(
                o,
                &bucket,
                &[iface, direction, class, ("le", &le)],
                cumulative.min(e.packets),
            );
        }
        sample(
            o,
            &bucket,
            &[iface, direction, class, ("le", "+Inf")],
            e.packets,
        );
        sample(o, &format!("{NAME}_sum"), &entry_labels(e), e.bytes);
        sample(o, &format!("{NAME}_count"), &entry_labels(e), e.packets);
    }
}

fn drops(o: &mut Exposition, d: &DropsView) {
    family(
        o,
        "tracer_drops_total",
        "counter",
        "Packets the kernel dropped, per interface, traffic class and kernel drop reason; housekeeping is true for sockets and queues tidying up, not traffic lost.",
    );
    for t in &d.totals {
        let housekeeping = if t.reason.is_housekeeping() {
            "true"
        } else {
            "false"
        };
        sample(
            o,
            "tracer_drops_total",
            &[
                ("iface", &t.iface),
                ("class", &t.class),
                ("reason", t.reason.name()),
                ("housekeeping", housekeeping),
            ],
            t.count,
        );
    }
    for (name, help, value) in [
        (
            "tracer_drop_events_lost_total",
            "Sampled drop events the kernel could not hand over (ring buffer full); their drops are counted.",
            d.stats.events_lost,
        ),
        (
            "tracer_drop_events_suppressed_total",
            "Drop events held back by the sampling budgets; their drops are counted.",
            d.stats.events_suppressed,
        ),
        (
            "tracer_drops_uncounted_total",
            "Drops the drop counter table had no room for.",
            d.stats.uncounted,
        ),
        (
            "tracer_drops_untracked_total",
            "Drops counted in tracer_drops_total whose flow the flow table had no room for.",
            d.stats.untracked,
        ),
    ] {
        family(o, name, "counter", help);
        sample(o, name, &[], value);
    }
}

fn family(o: &mut Exposition, name: &str, kind: &str, help: &str) {
    // HELP text escapes backslash and newline; ours has neither, but stays safe if edited.
    let help = help.replace('\\', r"\\").replace('\n', r"\n");
    let _ = writeln!(o.text, "# HELP {name} {help}");
    let _ = writeln!(o.text, "# TYPE {name} {kind}");
}

fn sample(o: &mut Exposition, name: &str, labels: &[(&str, &str)], value: u64) {
    let t = &mut o.text;
    t.push_str(name);
    t.push_str("{node=\"");
    escape_label(t, o.node);
    t.push('"');
    for (k, v) in labels {
        t.push(',');
        t.push_str(k);
        t.push_str("=\"");
        escape_label(t, v);
        t.push('"');
    }
    t.push('}');
    let _ = writeln!(t, " {value}");
}

/// Label values may hold anything (interface and class names come from the node and the
/// user's catalog); the format escapes exactly these three.
fn escape_label(o: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => o.push_str(r"\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str(r"\n"),
            c => o.push(c),
        }
    }
}

/// The text being rendered, and the node label every sample carries.
struct Exposition<'a> {
    text: String,
    node: &'a str,
}

mod peers;
mod server;
#[cfg(test)]
mod tests;
