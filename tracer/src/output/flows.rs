//! Dropped flows as people read them, for the text log and the terminal view alike: every flow
//! of a run kept with its latest count and cause ([`FlowBook`]), flows that differ only in an
//! ephemeral port grouped into one ([`Group`]: a BGP retry from 40 source ports is one line,
//! not 40), and the one rendering of a flow and of its cause.

use std::{collections::HashMap, fmt::Write as _};

use super::{findings::evidence_lines, schema::Flow, words::plural};
use crate::{events::DropFlow, findings::drops::DropCause, session::DropsView};

/// Flows kept at most; a storm of distinct flows beyond it is counted, not kept.
const MAX_FLOWS: usize = 8192;

/// A flow and what is known about it.
#[derive(Clone, Debug)]
struct Kept {
    flow: DropFlow,
    cause: Option<DropCause>,
    /// Drops in the last interval.
    recent: u64,
}

/// Every dropped flow of a run, as of the last interval.
#[derive(Clone, Debug, Default)]
pub struct FlowBook {
    flows: HashMap<String, Kept>,
    /// Flows not kept because the book was full.
    pub not_kept: u64,
}

/// A flow's identity: everything but its count and place.
fn id(f: &DropFlow) -> String {
    let inner = f
        .inner
        .as_ref()
        .map(|i| (i.vni, &i.class, Flow::from(&i.flow)));
    format!(
        "{}|{}|{}|{}|{}|{inner:?}",
        f.iface,
        f.class,
        f.reason,
        f.reason.is_housekeeping(),
        Flow::from(&f.flow)
    )
}

impl FlowBook {
    /// Takes in the flows that moved in an interval, with the causes traced for them.
    pub fn update(&mut self, d: &DropsView) {
        for k in self.flows.values_mut() {
            k.recent = 0;
        }
        for (i, flow) in d.changed.iter().enumerate() {
            let cause = d.changed_causes.get(i).cloned().flatten();
            let full = self.flows.len() >= MAX_FLOWS;
            match self.flows.get_mut(&id(flow)) {
                Some(k) => {
                    k.recent = flow.count.saturating_sub(k.flow.count);
                    k.flow = flow.clone();
                    if cause.is_some() {
                        k.cause = cause;
                    }
                }
                None if full => self.not_kept += 1,
                None => {
                    self.flows.insert(
                        id(flow),
                        Kept {
                            flow: flow.clone(),
                            cause,
                            recent: flow.count,
                        },
                    );
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// The flows grouped by all but an ephemeral port, most drops first.
    pub fn groups(&self) -> Vec<Group<'_>> {
        let mut kept: Vec<&Kept> = self.flows.values().collect();
        // Stable output: by count, then identity.
        kept.sort_by(|a, b| {
            b.flow
                .count
                .cmp(&a.flow.count)
                .then_with(|| id(&a.flow).cmp(&id(&b.flow)))
        });
        let mut groups = group_by(&kept, Varies::Source);
        let (single, mut done): (Vec<Group>, Vec<Group>) =
            groups.drain(..).partition(|g| g.ports == 1);
        let singles: Vec<&Kept> = single.into_iter().map(|g| g.members[0]).collect();
        done.extend(
            group_by(&singles, Varies::Destination)
                .into_iter()
                .map(|mut g| {
                    if g.ports == 1 {
                        g.varies = Varies::Neither;
                    }
                    g
                }),
        );
        done.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
        done
    }
}

/// Which port of a group's flows differs from flow to flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Varies {
    Neither,
    /// Clients' ephemeral source ports towards one service port.
    Source,
    /// A service's replies to clients' ephemeral ports.
    Destination,
}

/// Dropped flows that differ only in one port.
#[derive(Clone, Debug)]
pub struct Group<'a> {
    /// Identifies the group across intervals.
    pub key: String,
    members: Vec<&'a Kept>,
    pub varies: Varies,
    /// Distinct values of the varying port.
    pub ports: usize,
    /// Drops of all members since the start.
    pub count: u64,
    /// Drops of all members in the last interval.
    pub recent: u64,
}

fn group_by<'a>(kept: &[&'a Kept], varies: Varies) -> Vec<Group<'a>> {
    let mut order: Vec<String> = Vec::new();
    let mut by_key: HashMap<String, Vec<&'a Kept>> = HashMap::new();
    for k in kept {
        let mut flow = k.flow.clone();
        match varies {
            Varies::Source => flow.flow.sport = 0,
            Varies::Destination => flow.flow.dport = 0,
            Varies::Neither => {}
        }
        if let Some(inner) = flow.inner.as_mut() {
            inner.flow.sport = 0;
        }
        let key = id(&flow);
        let members = by_key.entry(key.clone()).or_default();
        if members.is_empty() {
            order.push(key);
        }
        members.push(k);
    }
    order
        .into_iter()
        .map(|key| {
            let members = by_key.remove(&key).unwrap_or_default();
            let port = |k: &Kept| match varies {
                Varies::Destination => k.flow.flow.dport,
                _ => k.flow.flow.sport,
            };
            let mut ports: Vec<u16> = members.iter().map(|k| port(k)).collect();
            ports.sort_unstable();
            ports.dedup();
            Group {
                key,
                varies,
                ports: ports.len(),
                count: members.iter().map(|k| k.flow.count).sum(),
                recent: members.iter().map(|k| k.recent).sum(),
                members,
            }
        })
        .collect()
}

impl Group<'_> {
    /// The member with the most drops: its reason, class, place and inner flow stand for all.
    pub fn first(&self) -> &DropFlow {
        &self.members[0].flow
    }

    /// The cause of the member with the most drops that has one.
    pub fn cause(&self) -> Option<&DropCause> {
        self.members.iter().find_map(|k| k.cause.as_ref())
    }

    pub fn is_housekeeping(&self) -> bool {
        self.first().reason.is_housekeeping()
    }

    /// The endpoints, the varying port left out: `udp 10.0.0.2 -> 10.0.0.1:4789`.
    pub fn endpoints(&self) -> Flow {
        let mut flow = Flow::from(&self.first().flow);
        match self.varies {
            Varies::Source => flow.sport = 0,
            Varies::Destination => flow.dport = 0,
            Varies::Neither => {}
        }
        flow
    }

    /// Whether `needle` (lowercase) is in its interface, class or addresses.
    pub fn matches(&self, needle: &str) -> bool {
        let f = self.first();
        let addrs = [f.flow.src, f.flow.dst];
        f.iface.to_lowercase().contains(needle)
            || f.class.to_lowercase().contains(needle)
            || addrs
                .iter()
                .flatten()
                .any(|a| a.to_string().contains(needle))
    }

    /// `udp 10.0.0.2 -> 10.0.0.1:4789 from 12 source ports on eth0, NETFILTER_DROP x1200 at
    /// nft_do_chain+0x1c8 [vni 4096 kube-apiserver: tcp ...]`.
    pub fn line(&self) -> String {
        let f = self.first();
        let mut line = self.endpoints().to_string();
        match self.varies {
            Varies::Source => {
                let _ = write!(line, " from {}", plural(self.ports, "source port"));
            }
            Varies::Destination => {
                let _ = write!(line, " to {}", plural(self.ports, "destination port"));
            }
            Varies::Neither => {}
        }
        let _ = write!(line, " on {}, {} x{}", f.iface, f.reason, self.count);
        if let Some(inner) = &f.inner {
            let _ = write!(
                line,
                " [vni {} {}: {}]",
                inner.vni,
                inner.class,
                Flow::from(&inner.flow)
            );
        }
        if let Some(at) = &f.location {
            let _ = write!(line, " at {at}");
        }
        line
    }
}

/// A drop's cause as labelled lines, the same evidence a finding gives and in the same order,
/// in the text log, the summary and the view's details.
pub fn cause_lines(c: &DropCause) -> Vec<(&'static str, String)> {
    evidence_lines(
        c.zone.as_deref(),
        c.binding.as_deref(),
        c.element.as_deref(),
        c.rule.as_ref(),
        &c.fix,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Reason, drops::Endpoints};

    fn flow(sport: u16, dport: u16, count: u64) -> DropFlow {
        DropFlow {
            iface: "eth0".into(),
            class: "bgp".into(),
            reason: Reason::named("NETFILTER_DROP"),
            flow: Endpoints {
                proto: 6,
                src: Some("10.0.0.2".parse().unwrap()),
                dst: Some("10.0.0.1".parse().unwrap()),
                sport,
                dport,
            },
            inner: None,
            count,
            location: None,
        }
    }

    fn book(flows: Vec<DropFlow>) -> FlowBook {
        let mut b = FlowBook::default();
        b.update(&DropsView {
            changed: flows,
            ..DropsView::default()
        });
        b
    }

    #[test]
    fn flows_that_differ_in_an_ephemeral_port_are_one_group() {
        // A BGP retry from three source ports, and the peer's replies to two client ports.
        let b = book(vec![
            flow(40001, 179, 3),
            flow(40002, 179, 2),
            flow(40003, 179, 1),
            flow(179, 50001, 4),
            flow(179, 50002, 4),
            flow(5000, 6000, 1),
        ]);
        let groups = b.groups();
        let lines: Vec<String> = groups.iter().map(Group::line).collect();
        assert_eq!(
            lines,
            [
                "tcp 10.0.0.2:179 -> 10.0.0.1 to 2 destination ports on eth0, NETFILTER_DROP x8",
                "tcp 10.0.0.2 -> 10.0.0.1:179 from 3 source ports on eth0, NETFILTER_DROP x6",
                "tcp 10.0.0.2:5000 -> 10.0.0.1:6000 on eth0, NETFILTER_DROP x1",
            ]
        );
        assert!(groups[1].matches("10.0.0.1") && groups[1].matches("bgp"));
        assert!(!groups[1].matches("vxlan"));
    }

    #[test]
    fn counts_are_the_latest_and_recent_is_the_last_interval() {
        let mut b = book(vec![flow(40001, 179, 3)]);
        b.update(&DropsView {
            changed: vec![flow(40001, 179, 10)],
            ..DropsView::default()
        });
        let g = &b.groups()[0];
        assert_eq!((g.count, g.recent), (10, 7));
        b.update(&DropsView::default());
        assert_eq!(b.groups()[0].recent, 0);
    }
}
