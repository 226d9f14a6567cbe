//! The text the log and the summary print about node-to-node traffic: interfaces that came
//! or went, peers whose traffic stopped coming back, and the table of what went to each peer
//! and came back. Numbers only: from one node it cannot be told which side loses the packets.

use std::{collections::HashSet, io::Write, net::IpAddr};

use crate::{
    events::PeerBalance,
    session::{IfaceChange, IfaceChangeKind},
};

/// The log line of an interface that started or stopped being watched, or whose pod became
/// known. A veth is named by its pod where the runtime recorded one, else by where its other
/// end is.
pub fn iface_change(c: &IfaceChange) -> String {
    let peer = match (
        &c.pod_namespace,
        &c.pod_name,
        c.peer_netns_id,
        c.peer_ifindex,
    ) {
        (Some(ns), Some(pod), _, _) => format!(", pod {ns}/{pod}"),
        (_, _, Some(ns), Some(i)) => format!(" (its other end: interface {i} in netns id {ns})"),
        (_, _, Some(ns), None) => format!(" (its other end in netns id {ns})"),
        _ => String::new(),
    };
    match c.change {
        IfaceChangeKind::Attached => format!(
            "{} appeared: watched ({}){peer}",
            c.iface,
            c.hook.as_deref().unwrap_or("no ingress hook")
        ),
        IfaceChangeKind::Released => format!("{} went away: its counters end here", c.iface),
        IfaceChangeKind::Pod => format!(
            "{}: pod {}/{}",
            c.iface,
            c.pod_namespace.as_deref().unwrap_or("?"),
            c.pod_name.as_deref().unwrap_or("?")
        ),
        IfaceChangeKind::Failed => format!(
            "{} appeared but cannot be watched: {}",
            c.iface,
            c.reason.as_deref().unwrap_or("unknown")
        ),
    }
}

/// The peers currently not answering, to say so once when it starts and once when it ends.
#[derive(Default)]
pub struct Unanswered {
    open: HashSet<(IpAddr, String)>,
}

impl Unanswered {
    /// The lines for the peers that stopped or started answering in this interval.
    pub fn update(&mut self, peers: &[PeerBalance]) -> Vec<String> {
        let mut lines = Vec::new();
        for p in peers {
            let key = (p.peer, p.class.clone());
            if !p.answered && self.open.insert(key.clone()) {
                lines.push(format!(
                    "peer {} ({}): {} packets went to it in the last interval and none came back \
                     ({} out, {} in since the start); the traffic is lost on the way out, on the \
                     way back or on the peer: this node cannot tell which",
                    p.peer, p.class, p.new_out, p.out_packets, p.in_packets
                ));
            } else if p.answered && p.new_in > 0 && self.open.remove(&key) {
                lines.push(format!(
                    "peer {} ({}): answers again ({} out, {} in since the start)",
                    p.peer, p.class, p.out_packets, p.in_packets
                ));
            }
        }
        lines
    }
}

/// Whether far less came back from a peer than went to it over the whole run.
pub fn lopsided(p: &PeerBalance) -> bool {
    p.out_packets >= 10 && p.in_packets.saturating_mul(2) < p.out_packets
}

/// The summary's table of peers, with a note on each whose traffic did not come back.
pub fn write_peers(out: &mut impl Write, peers: &[PeerBalance]) -> std::io::Result<()> {
    if peers.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<40} {:<20} {:>10} {:>10}",
        "OVERLAY/BGP PEER", "CLASS", "OUT PKTS", "IN PKTS"
    )?;
    for p in peers {
        writeln!(
            out,
            "{:<40} {:<20} {:>10} {:>10}",
            p.peer.to_string(),
            p.class,
            p.out_packets,
            p.in_packets
        )?;
    }
    for p in peers.iter().filter(|p| lopsided(p)) {
        writeln!(
            out,
            "Traffic to {} ({}) does not come back: {} packets out, {} in. Compare with that \
             node's counters from this one to tell a path that loses them from a peer that drops \
             them (tracer_overlay_peer_packets_total).",
            p.peer, p.class, p.out_packets, p.in_packets
        )?;
    }
    Ok(())
}
