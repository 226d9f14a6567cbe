//! Questions asked of the permanent zone set: which zone handles a packet, and what a zone
//! accepts.
//!
//! Zone selection follows the dispatch chain firewalld 1.3.3 builds (`filter_INPUT_ZONES`,
//! `core/nftables.py`), seen in the lab as:
//!
//! ```text
//! ip saddr 10.244.1.128/25 goto filter_IN_block
//! ip saddr 10.0.0.0/8 goto filter_IN_dmz
//! ip saddr 10.244.0.0/16 goto filter_IN_public
//! ip saddr 10.244.1.0/24 goto filter_IN_trusted
//! iifname "eth9" goto filter_IN_work
//! iifname "eth0" goto filter_IN_public
//! goto filter_IN_public
//! ```
//!
//! Sources come first, **ordered by zone name, not by prefix length**: when two zones' sources
//! overlap, the zone whose name sorts first wins, however specific the other's source is
//! (10.244.1.5 goes to `public` above, not `trusted`). Then interfaces, then the default zone.
//! Interface rules are inserted at the top of the interface block, so among overlapping
//! wildcards the last one bound wins; that order is not in the files, so an exact name is
//! preferred here, then the longest wildcard.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::check::{cidr_contains, source_cidr};
use super::{Binding, Origin, Permanent, PortProto, Zone};
use crate::model::net::Cidr;

impl Zone {
    /// The first of the zone's sources, as written, that contains `ip`: an address, or a prefix
    /// with a length or (IPv4) a netmask such as `10.0.0.0/255.0.0.0`. MAC and ipset sources
    /// never match (the packet's MAC and the sets' entries are not known here).
    pub fn source_containing(&self, ip: IpAddr) -> Option<&str> {
        self.sources
            .iter()
            .map(String::as_str)
            .find(|s| cidr_contains(s, ip))
    }
}

impl Permanent {
    /// The zone firewalld would pick for traffic from `source` arriving on `iface`: a zone
    /// with a matching source wins (the first by zone name when several match), then a zone
    /// with the interface, else the default zone; with the reason (which binding). Sources
    /// that are MAC addresses or ipsets are not matched (the packet's MAC and the sets'
    /// entries are not known here).
    pub fn zone_for(&self, iface: &str, source: IpAddr) -> (String, Binding) {
        // BTreeMap order is byte order of the UTF-8 names, which is Python's code point order.
        for (name, zone) in &self.zones {
            if let Some(src) = zone.source_containing(source) {
                return (name.clone(), Binding::Source(src.to_string()));
            }
        }
        let mut best: Option<(usize, &str, &str)> = None;
        for (name, zone) in &self.zones {
            for bound in &zone.interfaces {
                let score = match bound.strip_suffix('+') {
                    None if bound == iface => usize::MAX,
                    Some(prefix) if iface.starts_with(prefix) => prefix.len(),
                    _ => continue,
                };
                if best.is_none_or(|(s, _, _)| score > s) {
                    best = Some((score, name, bound));
                }
            }
        }
        match best {
            Some((_, zone, bound)) => (zone.to_string(), Binding::Interface(bound.to_string())),
            None => (self.conf.default_zone.clone(), Binding::DefaultZone),
        }
    }

    /// Whether some zone has a source (an address or prefix, read as [`Zone::source_containing`]
    /// reads it) that covers every address of `cidr`.
    pub fn has_source_covering(&self, cidr: &Cidr) -> bool {
        self.zones.values().any(|z| {
            z.sources
                .iter()
                .any(|s| source_cidr(s).is_some_and(|c| c.covers(cidr)))
        })
    }

    /// Every port/protocol the zone accepts, with where it comes from (the zone's own port, or
    /// service X, or a service included by X). A whole protocol has an empty `port`. Services
    /// that are not defined contribute nothing (they are among [`Permanent::problems`]).
    /// Not included: what the zone's target accepts (`ACCEPT` takes everything), rich rules,
    /// and a service's `<destination>` restriction. An unknown zone accepts nothing.
    pub fn zone_accepts(&self, zone: &str) -> Vec<(PortProto, Origin)> {
        let Some(z) = self.zones.get(zone) else {
            return Vec::new();
        };
        let mut out: Vec<(PortProto, Origin)> = z
            .ports
            .iter()
            .map(|p| (p.clone(), Origin::ZonePort))
            .collect();
        out.extend(
            z.protocols
                .iter()
                .map(|p| (PortProto::new("", p.clone()), Origin::Protocol)),
        );
        for listed in &z.services {
            // Depth-first through includes, each service once per listed service (includes
            // may form cycles; firewalld follows them recursively too).
            let mut seen = BTreeSet::new();
            let mut stack = vec![listed.as_str()];
            while let Some(name) = stack.pop() {
                if !seen.insert(name) {
                    continue;
                }
                let Some(s) = self.services.get(name) else {
                    continue;
                };
                let origin = if name == listed {
                    Origin::Service(listed.clone())
                } else {
                    Origin::Included {
                        service: name.to_string(),
                        by: listed.clone(),
                    }
                };
                out.extend(s.ports.iter().map(|p| (p.clone(), origin.clone())));
                out.extend(
                    s.protocols
                        .iter()
                        .map(|p| (PortProto::new("", p.clone()), origin.clone())),
                );
                stack.extend(s.includes.iter().rev().map(String::as_str));
            }
        }
        out
    }
}
