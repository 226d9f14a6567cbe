//! firewalld's direct configuration (`direct.xml`, firewalld 1.3.3 `core/io/direct.py`):
//! chains, rules and passthroughs in iptables syntax that firewalld hands to iptables as they
//! are. A direct rule for chain `INPUT` of table `filter` lives in chain `INPUT_direct`, which
//! firewalld jumps to from `INPUT`; rules of one chain are ordered by priority, then by the
//! order they were added. A passthrough is a whole iptables command.

use roxmltree::Node;
use serde::Serialize;

use super::refusal::ObjectError;
use super::xml::object_document;

/// One direct rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectRule {
    /// `ipv4`, `ipv6` or `eb`.
    pub ipv: String,
    pub table: String,
    /// The chain named (`INPUT`); the rule lives in `INPUT_direct` for the built-in chains.
    pub chain: String,
    pub priority: i32,
    /// The iptables arguments as written.
    pub args: String,
}

impl DirectRule {
    /// The chain the rule is in: `CHAIN_direct` for a built-in chain, else the chain itself
    /// (one the direct configuration created).
    pub fn direct_chain(&self) -> String {
        if ["INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"]
            .contains(&self.chain.as_str())
        {
            format!("{}_direct", self.chain)
        } else {
            self.chain.clone()
        }
    }
}

/// The whole direct configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Direct {
    /// (ipv, table, chain) created.
    pub chains: Vec<(String, String, String)>,
    pub rules: Vec<DirectRule>,
    /// (ipv, iptables arguments).
    pub passthroughs: Vec<(String, String)>,
}

impl Direct {
    /// The rules of `ipv`/`table` in chain `direct_chain`, in the order firewalld puts them.
    pub fn rules_in(&self, ipv: &str, table: &str, direct_chain: &str) -> Vec<&DirectRule> {
        let mut rules: Vec<&DirectRule> = self
            .rules
            .iter()
            .filter(|r| r.ipv == ipv && r.table == table && r.direct_chain() == direct_chain)
            .collect();
        rules.sort_by_key(|r| r.priority);
        rules
    }

    pub fn is_empty(&self) -> bool {
        self.chains.is_empty() && self.rules.is_empty() && self.passthroughs.is_empty()
    }
}

/// Reads `direct.xml`; `Err` with the reason when firewalld would refuse it.
pub fn parse_direct(text: &str) -> Result<Direct, ObjectError> {
    read_direct(text).map_err(ObjectError)
}

fn read_direct(text: &str) -> Result<Direct, String> {
    let doc = object_document(text, "direct")?;
    let root = doc.root_element();
    let mut d = Direct::default();
    for n in root.children().filter(Node::is_element) {
        let need = |k: &str| {
            n.attribute(k)
                .map(str::to_string)
                .ok_or_else(|| format!("missing attribute {k} for <{}>", n.tag_name().name()))
        };
        let text = n.text().unwrap_or_default().trim().to_string();
        match n.tag_name().name() {
            "chain" => d
                .chains
                .push((need("ipv")?, need("table")?, need("chain")?)),
            "rule" => {
                let priority = need("priority")?;
                d.rules.push(DirectRule {
                    ipv: need("ipv")?,
                    table: need("table")?,
                    chain: need("chain")?,
                    priority: priority
                        .trim()
                        .parse()
                        .map_err(|_| format!("priority {priority:?} is not an integer"))?,
                    args: text,
                });
            }
            "passthrough" => d.passthroughs.push((need("ipv")?, text)),
            other => return Err(format!("unexpected element <{other}>")),
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_sort_by_priority_then_order() {
        let d = parse_direct(
            r#"<direct><rule ipv="ipv4" table="filter" chain="INPUT" priority="1">-p tcp --dport 22 -j DROP</rule>
            <rule ipv="ipv4" table="filter" chain="INPUT" priority="0">-s 10.0.0.1 -j ACCEPT</rule>
            <passthrough ipv="ipv4">-I INPUT -p udp --dport 53 -j DROP</passthrough></direct>"#,
        )
        .unwrap();
        let r = d.rules_in("ipv4", "filter", "INPUT_direct");
        assert_eq!(r[0].args, "-s 10.0.0.1 -j ACCEPT");
        assert_eq!(r[1].args, "-p tcp --dport 22 -j DROP");
        assert_eq!(d.passthroughs.len(), 1);
        assert!(parse_direct("<direct><rule ipv=\"ipv4\"/></direct>").is_err());
    }
}
