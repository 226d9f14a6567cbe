//! What the permanent zone set lets in: the ports and protocols a zone accepts (its own, its
//! services' and the services those include), whether that covers a port, whether some zone
//! binds a network as a source, and which hosts rich rules single out to refuse.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::check::source_cidr;
use super::richrule::{AddrKind, RichRule, RuleAddr};
use super::{Origin, Permanent, PortProto};
use crate::model::{catalog::PortRange, net::Cidr};

impl Permanent {
    /// Whether zone `zone` lets `spec` in (a port, range or whole protocol as the catalog
    /// writes it: `4789/udp`, `2379-2380/tcp`, `vrrp`), by its own ports and protocols or its
    /// services'.
    pub fn zone_allows(&self, zone: &str, spec: &str) -> bool {
        self.zone_accepts(zone)
            .iter()
            .any(|(pp, _)| port_in(spec, &pp.to_string()))
    }

    /// Whether some zone has a source (an address or prefix, read as
    /// [`Zone::source_containing`](super::Zone::source_containing) reads it) that covers every
    /// address of `cidr`.
    pub fn has_source_covering(&self, cidr: &Cidr) -> bool {
        self.zones.values().any(|z| {
            z.sources
                .iter()
                .any(|s| source_cidr(s).is_some_and(|c| c.covers(cidr)))
        })
    }

    /// The hosts that rich rules of zones or policies refuse by their address (`source
    /// address="192.168.10.21" ... reject`): peers a diagnosis checks one by one, since a flow
    /// from any other peer does not meet those rules.
    pub fn singled_out_sources(&self) -> Vec<IpAddr> {
        let texts = self
            .zones
            .values()
            .flat_map(|z| &z.rich_rules)
            .chain(self.policies.values().flat_map(|p| &p.rich_rules));
        let mut out: Vec<IpAddr> = Vec::new();
        for t in texts {
            let Ok(r) = RichRule::parse(t) else {
                continue;
            };
            if !r.verdict().is_some_and(|a| a.refuses()) {
                continue;
            }
            if let Some(RuleAddr {
                invert: false,
                what: AddrKind::Address(a),
            }) = &r.source
                && let Some(ip) = a
                    .strip_suffix("/32")
                    .or_else(|| a.strip_suffix("/128"))
                    .unwrap_or(a)
                    .parse::<IpAddr>()
                    .ok()
                && !out.contains(&ip)
            {
                out.push(ip);
            }
        }
        out
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

/// Whether `accepted` (as [`PortProto`] prints it: `6443/tcp`, `2379-2380/tcp`, or a whole
/// protocol such as `vrrp`) lets in `spec` (a port, range or protocol in the same form).
fn port_in(spec: &str, accepted: &str) -> bool {
    let (Some((p, proto)), Some((ap, aproto))) = (spec.split_once('/'), accepted.split_once('/'))
    else {
        return spec == accepted;
    };
    match (p.parse::<PortRange>(), ap.parse::<PortRange>()) {
        (Ok(r), Ok(a)) => proto == aproto && a.contains(r.lo) && a.contains(r.hi),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::port_in;
    use crate::model::firewalld::{Permanent, PortProto, Service, Zone};

    #[test]
    fn ports_and_ranges() {
        assert!(port_in("4789/udp", "4789/udp"));
        assert!(!port_in("4789/udp", "4789/tcp"));
        assert!(port_in("10250/tcp", "10000-30000/tcp"));
        assert!(port_in("2379-2380/tcp", "2379-2380/tcp"));
        assert!(!port_in("2379-2381/tcp", "2379-2380/tcp"));
        assert!(port_in("vrrp", "vrrp"));
    }

    #[test]
    fn a_zone_with_a_whole_protocol_accepts_it() {
        let mut p = Permanent::default();
        p.zones.insert(
            "public".into(),
            Zone {
                name: "public".into(),
                ports: vec![PortProto::new("10000-30000", "tcp")],
                protocols: vec!["vrrp".into()],
                services: vec!["overlay".into()],
                ..Zone::default()
            },
        );
        p.services.insert(
            "overlay".into(),
            Service {
                name: "overlay".into(),
                ports: vec![PortProto::new("4789", "udp")],
                protocols: vec!["gre".into()],
                ..Service::default()
            },
        );
        for allowed in ["vrrp", "gre", "4789/udp", "10250/tcp"] {
            assert!(p.zone_allows("public", allowed), "{allowed}");
        }
        for refused in ["esp", "4789/tcp", "8472/udp", "9999-10000/tcp"] {
            assert!(!p.zone_allows("public", refused), "{refused}");
        }
        assert!(
            !p.zone_allows("trusted", "vrrp"),
            "an unknown zone accepts nothing"
        );
    }
}
