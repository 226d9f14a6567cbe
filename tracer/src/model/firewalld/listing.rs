//! Zones as `firewall-cmd --list-all-zones`, `--list-all` and `--info-zone=NAME` print them
//! (firewalld 1.x): a header line `NAME`, `NAME (active)` or `NAME (default, active)`, then
//! two-space indented `key: value` lines, rich rules on tab-indented lines under
//! `rich rules:`. Keys this does not know (newer firewalld's `ingress-priority`...) are
//! skipped; a line that is none of these is a problem at its line.

use std::collections::BTreeMap;

use super::{PortProto, Target, Zone, check::add_coalesced};
use crate::model::nft::bounded;

/// The zones of a listing.
#[derive(Debug, Default)]
pub struct ZoneListing {
    pub zones: BTreeMap<String, Zone>,
    /// The zone marked `(default)`, when one is.
    pub default_zone: Option<String>,
    /// `(LINE, message)` for each line that could not be read.
    pub problems: Vec<(usize, String)>,
}

fn ports(value: &str) -> Vec<PortProto> {
    value
        .split_whitespace()
        .filter_map(|p| p.split_once('/'))
        .map(|(port, proto)| PortProto::new(port, proto))
        .collect()
}

/// Reads a listing.
pub fn parse_listing(text: &str) -> ZoneListing {
    let mut out = ZoneListing::default();
    let mut current: Option<Zone> = None;
    let mut in_rich = false;
    for (i, line) in text.lines().enumerate() {
        let at = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with([' ', '\t']) {
            if let Some(z) = current.take() {
                out.zones.insert(z.name.clone(), z);
            }
            let mut words = line.split_whitespace();
            let name = words.next().unwrap_or("").to_string();
            let marks = words.collect::<Vec<_>>().join(" ");
            if !marks.is_empty() && !marks.starts_with('(') {
                out.problems.push((
                    at,
                    format!("not a zone's name: {}", bounded(line.trim().to_string())),
                ));
                in_rich = false;
                continue;
            }
            if marks.contains("default") {
                out.default_zone = Some(name.clone());
            }
            current = Some(Zone {
                name,
                ..Zone::default()
            });
            in_rich = false;
            continue;
        }
        let Some(zone) = current.as_mut() else {
            out.problems.push((
                at,
                format!(
                    "not under a zone's name: {}",
                    bounded(line.trim().to_string())
                ),
            ));
            continue;
        };
        if in_rich && (line.starts_with('\t') || line.trim_start().starts_with("rule ")) {
            zone.rich_rules.push(line.trim().to_string());
            continue;
        }
        let Some((key, value)) = line.trim().split_once(':') else {
            out.problems.push((
                at,
                format!(
                    "not a `key: value` line: {}",
                    bounded(line.trim().to_string())
                ),
            ));
            continue;
        };
        let value = value.trim();
        let words = || {
            value
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        in_rich = key == "rich rules";
        match key {
            "target" => match Target::parse(value) {
                Some(t) => zone.target = t,
                None => out
                    .problems
                    .push((at, format!("unknown target {}", bounded(value.to_string())))),
            },
            "interfaces" => zone.interfaces = words(),
            "sources" => zone.sources = words(),
            "services" => zone.services = words(),
            "ports" => {
                for p in ports(value) {
                    add_coalesced(&mut zone.ports, &p.port, &p.proto);
                }
            }
            "protocols" => zone.protocols = words(),
            "forward" => zone.forward = value == "yes",
            "masquerade" => zone.masquerade = value == "yes",
            "icmp-block-inversion" => zone.icmp_block_inversion = value == "yes",
            "icmp-blocks" => zone.icmp_blocks = words(),
            "source-ports" => zone.source_ports = ports(value),
            "forward-ports" => zone.forward_ports = words(),
            _ => {}
        }
    }
    if let Some(z) = current.take() {
        out.zones.insert(z.name.clone(), z);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_as_firewall_cmd_lists_them() {
        let text = "public (default, active)\n  target: default\n  icmp-block-inversion: no\n  interfaces: eth0\n  sources: 10.244.0.0/16\n  services: dhcpv6-client k0s-worker ssh\n  ports: 4789/udp 179/tcp\n  protocols: vrrp\n  forward: yes\n  masquerade: yes\n  forward-ports: \n  source-ports: \n  icmp-blocks: \n  rich rules: \n\trule family=\"ipv4\" source address=\"10.0.0.0/8\" accept\n\ntrusted\n  target: ACCEPT\n  interfaces: \nbroken line\n";
        let l = parse_listing(text);
        assert_eq!(l.default_zone.as_deref(), Some("public"));
        let p = &l.zones["public"];
        assert_eq!(p.interfaces, ["eth0"]);
        assert_eq!(p.services, ["dhcpv6-client", "k0s-worker", "ssh"]);
        assert_eq!(p.ports.len(), 2);
        assert!(p.masquerade && p.forward);
        assert_eq!(p.rich_rules.len(), 1);
        assert_eq!(l.zones["trusted"].target, Target::Accept);
        assert!(!l.zones.contains_key("broken"));
        assert_eq!(l.problems[0].0, 20, "{:?}", l.problems);
    }
}
