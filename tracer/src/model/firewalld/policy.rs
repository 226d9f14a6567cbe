//! firewalld policies (`policies/NAME.xml`, firewalld 1.3.3 `core/io/policy.py`): traffic
//! from ingress zones to egress zones (`HOST` is the node itself, `ANY` every zone), with a
//! target, a priority and the same elements a zone has. Read with the zone reader's checks of
//! ports, protocols and rich rules.

use std::fmt;

use roxmltree::Node;
use serde::Serialize;

use super::refusal::ObjectError;
use super::xml::object_document;

use super::PortProto;
use super::check::{add_coalesced, check_port_proto, check_protocol, normalize_port};
use super::rich::rule_string;

/// What a policy does with a packet none of its rules decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum PolicyTarget {
    /// `CONTINUE` (the default): on to the next policy, then the zone.
    #[default]
    Continue,
    Accept,
    Drop,
    /// `REJECT` (also written `%%REJECT%%`).
    Reject,
}

impl PolicyTarget {
    /// The spelling of policy XML and firewall-cmd.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyTarget::Continue => "CONTINUE",
            PolicyTarget::Accept => "ACCEPT",
            PolicyTarget::Drop => "DROP",
            PolicyTarget::Reject => "REJECT",
        }
    }
}

impl fmt::Display for PolicyTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// firewalld's default policy priority (`DEFAULT_POLICY_PRIORITY`).
pub const DEFAULT_POLICY_PRIORITY: i32 = -1;

/// One policy. Lists keep firewalld's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub name: String,
    pub target: PolicyTarget,
    /// Negative: before the zone's own rules; positive: after them.
    pub priority: i32,
    /// Zone names, or one of `ANY`, `HOST`.
    pub ingress_zones: Vec<String>,
    pub egress_zones: Vec<String>,
    pub services: Vec<String>,
    pub ports: Vec<PortProto>,
    pub protocols: Vec<String>,
    pub source_ports: Vec<PortProto>,
    pub icmp_blocks: Vec<String>,
    pub masquerade: bool,
    pub forward_ports: Vec<String>,
    /// Rich rules in canonical text form.
    pub rich_rules: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            name: String::new(),
            target: PolicyTarget::Continue,
            priority: DEFAULT_POLICY_PRIORITY,
            ingress_zones: Vec::new(),
            egress_zones: Vec::new(),
            services: Vec::new(),
            ports: Vec::new(),
            protocols: Vec::new(),
            source_ports: Vec::new(),
            icmp_blocks: Vec::new(),
            masquerade: false,
            forward_ports: Vec::new(),
            rich_rules: Vec::new(),
        }
    }
}

fn push_unique(list: &mut Vec<String>, s: &str) {
    if !list.iter().any(|x| x == s) {
        list.push(s.to_string());
    }
}

/// Reads a policy file's text; `name` comes from the file name. `Err` with the reason when
/// firewalld would refuse it.
pub fn parse_policy(name: &str, text: &str) -> Result<Policy, ObjectError> {
    read_policy(name, text).map_err(ObjectError)
}

/// Reads a policy file's text; `name` comes from the file name. `Err` with the reason when
/// firewalld would refuse it.
fn read_policy(name: &str, text: &str) -> Result<Policy, String> {
    let doc = object_document(text, "policy")?;
    let root = doc.root_element();
    let mut p = Policy {
        name: name.to_string(),
        ..Policy::default()
    };
    if let Some(t) = root.attribute("target") {
        p.target = match t {
            "CONTINUE" => PolicyTarget::Continue,
            "ACCEPT" => PolicyTarget::Accept,
            "DROP" => PolicyTarget::Drop,
            "REJECT" | "%%REJECT%%" => PolicyTarget::Reject,
            other => return Err(format!("invalid policy target {other:?}")),
        };
    }
    if let Some(v) = root.attribute("priority") {
        p.priority = v
            .trim()
            .parse()
            .map_err(|_| format!("priority {v:?} is not an integer"))?;
        if p.priority == 0 || !(-32768..=32767).contains(&p.priority) {
            return Err(format!(
                "priority {} is invalid (range [-32768, 32767], 0 reserved)",
                p.priority
            ));
        }
    }
    let in_rule = |n: Node| n.ancestors().skip(1).any(|a| a.has_tag_name("rule"));
    for n in root.descendants().filter(Node::is_element).skip(1) {
        if in_rule(n) {
            continue;
        }
        let a = |k: &str| n.attribute(k).unwrap_or_default();
        match n.tag_name().name() {
            "short" | "description" => {}
            "ingress-zone" => push_unique(&mut p.ingress_zones, a("name")),
            "egress-zone" => push_unique(&mut p.egress_zones, a("name")),
            "service" => push_unique(&mut p.services, a("name")),
            "port" | "source-port" => {
                let port = normalize_port(a("port")).map_err(|e| e.to_string())?;
                check_port_proto(a("protocol")).map_err(|e| e.to_string())?;
                let list = if n.has_tag_name("port") {
                    &mut p.ports
                } else {
                    &mut p.source_ports
                };
                add_coalesced(list, &port, a("protocol"));
            }
            "protocol" => {
                check_protocol(a("value")).map_err(|e| e.to_string())?;
                push_unique(&mut p.protocols, a("value"));
            }
            "icmp-block" => push_unique(&mut p.icmp_blocks, a("name")),
            "masquerade" => p.masquerade = true,
            "forward-port" => push_unique(
                &mut p.forward_ports,
                &super::xml::forward_port_str(a("port"), a("protocol"), a("to-port"), a("to-addr")),
            ),
            "rule" => {
                let r = rule_string(n).map_err(|_| "invalid rich rule".to_string())?;
                if let Some(r) = r {
                    push_unique(&mut p.rich_rules, &r);
                }
            }
            other => return Err(format!("unexpected element <{other}>")),
        }
    }
    for zones in [&p.ingress_zones, &p.egress_zones] {
        let special = zones.iter().filter(|z| *z == "ANY" || *z == "HOST").count();
        if special > 0 && zones.len() > 1 {
            return Err("a policy's zones are many regular zones, ANY, or HOST".into());
        }
    }
    if p.ingress_zones.iter().any(|z| z == "HOST") && p.egress_zones.iter().any(|z| z == "HOST") {
        return Err("HOST can be ingress or egress, not both".into());
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_reads_like_a_zone() {
        let p = parse_policy(
            "p1",
            r#"<policy target="REJECT" priority="-10"><ingress-zone name="work"/><egress-zone name="HOST"/>
            <port port="22" protocol="tcp"/><rule family="ipv4"><source address="10.9.1.9"/><port port="80" protocol="tcp"/><drop/></rule></policy>"#,
        )
        .unwrap();
        assert_eq!(p.target, PolicyTarget::Reject);
        assert_eq!(p.priority, -10);
        assert_eq!(
            (p.ingress_zones[0].as_str(), p.egress_zones[0].as_str()),
            ("work", "HOST")
        );
        assert_eq!(
            p.rich_rules,
            [r#"rule family="ipv4" source address="10.9.1.9" port port="80" protocol="tcp" drop"#]
        );
        assert!(parse_policy("x", r#"<policy priority="0"/>"#).is_err());
        let stock = parse_policy("d", "<policy/>").unwrap();
        assert_eq!((stock.target, stock.priority), (PolicyTarget::Continue, -1));
    }
}
