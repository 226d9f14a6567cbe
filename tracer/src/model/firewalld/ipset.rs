//! firewalld's ipsets (`ipsets/NAME.xml`, firewalld 1.3.3 `core/io/ipset.py`): their type,
//! family and permanent entries, and whether an address is a member. A zone source
//! `ipset:NAME` and a rich rule's `source ipset="NAME"` match by membership; firewalld turns the
//! ipset into an nftables set of the same name in its table. Only the address types are
//! answered (`hash:ip`, `hash:net`); for any other type, or a set whose entries live only in
//! the runtime (`timeout`), membership is unknown.

use std::net::IpAddr;

use roxmltree::Node;
use serde::Serialize;

use super::refusal::ObjectError;
use super::xml::object_document;

use super::check::{parse_cidr, source_cidr};

/// One ipset.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct IpSet {
    pub name: String,
    /// `hash:ip`, `hash:net`, `hash:mac`, ...
    pub kind: String,
    /// `inet` (IPv4, the default) or `inet6`.
    pub family: String,
    /// `option name="timeout"`: entries are added at run time, none is permanent.
    pub timeout: bool,
    /// The permanent entries as written.
    pub entries: Vec<String>,
}

/// Whether an address is in a set, or why that cannot be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    In,
    Out,
    Unknown(String),
}

impl IpSet {
    /// Whether `ip` is a member.
    pub fn contains(&self, ip: IpAddr) -> Membership {
        if self.timeout {
            return Membership::Unknown(format!(
                "ipset {} has a timeout: its entries are added at run time",
                self.name
            ));
        }
        if !matches!(self.kind.as_str(), "hash:ip" | "hash:net") {
            return Membership::Unknown(format!(
                "ipset {} is of type {}, whose members this model does not match",
                self.name, self.kind
            ));
        }
        if ip.is_ipv6() != (self.family == "inet6") {
            return Membership::Out;
        }
        for e in &self.entries {
            if let Some((lo, hi)) = e.split_once('-') {
                match (lo.trim().parse::<IpAddr>(), hi.trim().parse::<IpAddr>()) {
                    (Ok(lo), Ok(hi)) if lo <= ip && ip <= hi => return Membership::In,
                    (Ok(_), Ok(_)) => {}
                    _ => {
                        return Membership::Unknown(format!(
                            "ipset {}: entry {e:?} is not an address range",
                            self.name
                        ));
                    }
                }
            } else if source_cidr(e).is_some_and(|c| c.contains(ip)) {
                return Membership::In;
            } else if parse_cidr(e).is_none() {
                return Membership::Unknown(format!(
                    "ipset {}: entry {e:?} is not an address",
                    self.name
                ));
            }
        }
        Membership::Out
    }
}

/// Reads a ipset file's text; `name` comes from the file name. `Err` with the reason when
/// firewalld would refuse it.
pub fn parse_ipset(name: &str, text: &str) -> Result<IpSet, ObjectError> {
    read_ipset(name, text).map_err(ObjectError)
}

/// Reads an ipset file's text; `name` comes from the file name. `Err` with the reason when
/// firewalld would refuse it.
fn read_ipset(name: &str, text: &str) -> Result<IpSet, String> {
    let doc = object_document(text, "ipset")?;
    let root = doc.root_element();
    let kind = root
        .attribute("type")
        .ok_or("missing attribute type for <ipset>")?;
    let mut set = IpSet {
        name: name.to_string(),
        kind: kind.to_string(),
        family: "inet".to_string(),
        ..IpSet::default()
    };
    for n in root.descendants().filter(Node::is_element).skip(1) {
        match n.tag_name().name() {
            "short" | "description" => {}
            "option" => match (n.attribute("name"), n.attribute("value")) {
                (Some("family"), Some(f @ ("inet" | "inet6"))) => set.family = f.to_string(),
                (Some("family"), v) => return Err(format!("invalid family {v:?}")),
                (Some("timeout"), Some(v)) if v != "0" => set.timeout = true,
                (Some(_), _) => {}
                (None, _) => return Err("<option> without name".into()),
            },
            "entry" => {
                let e = n.text().unwrap_or_default().trim().to_string();
                if !e.is_empty() && !set.entries.contains(&e) {
                    set.entries.push(e);
                }
            }
            other => return Err(format!("unexpected element <{other}>")),
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_of_address_sets() {
        let s = parse_ipset(
            "peers",
            r#"<ipset type="hash:net"><entry>10.9.2.0/24</entry><entry>10.9.3.1-10.9.3.5</entry></ipset>"#,
        )
        .unwrap();
        let m = |a: &str| s.contains(a.parse().unwrap());
        assert_eq!(m("10.9.2.77"), Membership::In);
        assert_eq!(m("10.9.3.4"), Membership::In);
        assert_eq!(m("10.9.3.6"), Membership::Out);
        assert_eq!(m("fd00::1"), Membership::Out);
        let t = parse_ipset(
            "t",
            r#"<ipset type="hash:ip"><option name="timeout" value="60"/></ipset>"#,
        )
        .unwrap();
        assert!(matches!(
            t.contains("1.2.3.4".parse().unwrap()),
            Membership::Unknown(_)
        ));
        assert!(parse_ipset("x", "<ipset/>").is_err());
    }
}
