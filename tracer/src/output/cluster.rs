//! `tracer cluster`'s output: the node-pair matrix of overlay traffic and the pairs that lose
//! it, in text, and the same as one JSON object ([`ClusterReport`]).

use std::{collections::BTreeMap, fmt::Write};

use crate::{
    model::pairs::{ClusterPairs, LossAt, WINDOW_SECS},
    schema::{ClusterReport, DroppedRate, LosingPair, LossPlace, PairRates},
};

/// Above this many nodes the matrix is too wide to read: the pairs are listed instead.
const MATRIX_MAX_NODES: usize = 12;

pub fn report(prometheus: &str, c: &ClusterPairs) -> ClusterReport {
    ClusterReport {
        prometheus: prometheus.to_string(),
        window_secs: WINDOW_SECS,
        nodes: c.nodes.clone(),
        pairs: c
            .pairs
            .iter()
            .map(|p| PairRates {
                sender: p.sender.clone(),
                receiver: p.receiver.clone(),
                class: p.class.clone(),
                sent_per_sec: p.sent,
                received_per_sec: p.received,
                path_lost_per_sec: p.path_lost,
                dropped: p
                    .dropped
                    .iter()
                    .map(|(reason, per_sec)| DroppedRate {
                        reason: reason.clone(),
                        per_sec: *per_sec,
                    })
                    .collect(),
            })
            .collect(),
        losing: c
            .losses
            .iter()
            .map(|l| LosingPair {
                sender: l.sender.clone(),
                receiver: l.receiver.clone(),
                class: l.class.clone(),
                place: match l.at {
                    LossAt::Path => LossPlace::Path,
                    LossAt::Receiver => LossPlace::Receiver,
                },
                reason: l.reason.clone(),
                share: l.share,
                state: l.state.clone(),
                summary: l.summary.clone(),
            })
            .collect(),
    }
}

/// One pair's cell: the rate sent, and the share lost (`?` when the receiver is not watched).
fn cell(pairs: &[&PairRates]) -> String {
    let sent: f64 = pairs.iter().map(|p| p.sent_per_sec).sum();
    let path: Option<f64> = pairs.iter().map(|p| p.path_lost_per_sec).sum();
    let dropped: f64 = pairs
        .iter()
        .flat_map(|p| &p.dropped)
        .map(|d| d.per_sec)
        .sum();
    let Some(path) = path else {
        return format!("{sent:.1}/s ?");
    };
    let lost = (path + dropped) / sent;
    if sent <= 0.0 || lost < 0.005 {
        format!("{sent:.1}/s ok")
    } else {
        format!("{sent:.1}/s {:.0}% lost", lost * 100.0)
    }
}

pub fn text(r: &ClusterReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Overlay packets between nodes, per second over {} s (Prometheus {}; {} node(s) watched)\n",
        r.window_secs,
        r.prometheus,
        r.nodes.len()
    );
    let mut by_pair: BTreeMap<(&str, &str), Vec<&PairRates>> = BTreeMap::new();
    for p in &r.pairs {
        by_pair.entry((&p.sender, &p.receiver)).or_default().push(p);
    }
    if r.nodes.len() <= MATRIX_MAX_NODES {
        matrix(&mut o, &r.nodes, &by_pair);
    } else {
        for ((sender, receiver), pairs) in &by_pair {
            let _ = writeln!(o, "  {sender} -> {receiver}: {}", cell(pairs));
        }
    }
    let _ = writeln!(
        o,
        "\n(ok: every packet arrived and was kept; ?: the receiver's tracer is not scraped, so unknown)\n"
    );
    if r.losing.is_empty() {
        let _ = writeln!(o, "No node pair loses overlay packets.");
        return o;
    }
    let _ = writeln!(o, "Pairs losing overlay packets:");
    for l in &r.losing {
        let place = match (l.place, &l.reason) {
            (LossPlace::Path, _) => {
                "never arrived: lost on the path between the two nodes".to_string()
            }
            (LossPlace::Receiver, reason) => format!(
                "dropped on the receiver {} ({})",
                l.receiver,
                reason.as_deref().unwrap_or("unknown reason")
            ),
        };
        let share = if l.share.is_finite() {
            format!("{:.0}%", l.share * 100.0)
        } else {
            "an unknown share".to_string()
        };
        let _ = writeln!(
            o,
            "  {} -> {} ({}): {share} {place} [{}]",
            l.sender, l.receiver, l.class, l.state
        );
    }
    o
}

fn matrix(o: &mut String, nodes: &[String], by_pair: &BTreeMap<(&str, &str), Vec<&PairRates>>) {
    let corner = "sender \\ receiver";
    let mut rows: Vec<Vec<String>> = vec![
        std::iter::once(corner.to_string())
            .chain(nodes.iter().cloned())
            .collect(),
    ];
    for s in nodes {
        let mut row = vec![s.clone()];
        for r in nodes {
            row.push(if s == r {
                "-".to_string()
            } else {
                by_pair
                    .get(&(s.as_str(), r.as_str()))
                    .map_or_else(|| "none".to_string(), |p| cell(p))
            });
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        let _ = writeln!(o, "  {}", line.join("   ").trim_end());
    }
}

pub fn json(r: &ClusterReport) -> serde_json::Result<String> {
    Ok(serde_json::to_string(r)? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pairs::{Loss, Pair};

    fn pair(sender: &str, receiver: &str, sent: f64, path: Option<f64>) -> Pair {
        Pair {
            sender: sender.into(),
            receiver: receiver.into(),
            class: "flannel-vxlan".into(),
            sent,
            received: path.map(|p| sent - p),
            path_lost: path,
            dropped: BTreeMap::new(),
        }
    }

    #[test]
    fn the_matrix_names_each_pair_and_the_losses_say_where() {
        let c = ClusterPairs {
            nodes: vec!["w1".into(), "w2".into(), "w3".into()],
            pairs: vec![
                pair("w1", "w2", 10.0, Some(5.0)),
                pair("w2", "w1", 10.0, Some(0.0)),
                pair("w1", "w3", 4.0, None),
            ],
            losses: vec![Loss {
                sender: "w1".into(),
                receiver: "w2".into(),
                class: "flannel-vxlan".into(),
                at: LossAt::Path,
                reason: None,
                share: 0.5,
                state: "firing".into(),
                summary: String::new(),
            }],
        };
        let r = report("http://p:9090", &c);
        let t = text(&r);
        let row = t
            .lines()
            .find(|l| l.trim_start().starts_with("w1 "))
            .unwrap();
        assert!(
            row.contains("10.0/s 50% lost") && row.contains("4.0/s ?"),
            "{t}"
        );
        let row = t
            .lines()
            .find(|l| l.trim_start().starts_with("w2 "))
            .unwrap();
        assert!(row.contains("10.0/s ok") && row.contains("none"), "{t}");
        assert!(
            t.contains("w1 -> w2 (flannel-vxlan): 50% never arrived: lost on the path between the two nodes [firing]"),
            "{t}"
        );
        let back: ClusterReport = serde_json::from_str(&json(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        assert!(json(&r).unwrap().contains(r#""where":"path""#));
    }
}
