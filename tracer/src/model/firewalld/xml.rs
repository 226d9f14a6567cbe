//! Zone and service XML, read with the strictness of firewalld 1.3.3's SAX readers
//! (`core/io/zone.py`, `service.py`, `policy.py:common_startElement`): an element or attribute
//! they do not know, a missing required attribute, a bad target, port, protocol or address
//! makes firewalld refuse the file (an `Err` here, with the line and column). What firewalld
//! only warns about is kept or dropped as it does, and the consequential cases are returned as
//! warnings: an ignored source or rule, and the SAX quirk where an action or `<destination>`
//! outside a rule makes firewalld skip every following element up to the end of the next rule.

use roxmltree::{Document, Node, ParsingOptions};

use super::check::{
    ValueError, add_coalesced, check_port_proto, check_protocol, check_source_address,
    normalize_port, parse_cidr,
};
use super::refusal::{Located, Position, Refusal, Warning};
use super::rich::rule_string;
use super::{PortProto, Service, Target, Zone};

/// A refusal at a node, located later against its document.
#[derive(Debug)]
pub struct Fail {
    pos: usize,
    refusal: Refusal,
}

impl Fail {
    /// A failure at `node`'s start tag.
    pub fn at(node: Node, refusal: impl Into<Refusal>) -> Fail {
        Fail {
            pos: node.range().start,
            refusal: refusal.into(),
        }
    }

    fn locate(self, doc: &Document) -> Located<Refusal> {
        Located {
            at: doc.text_pos_at(self.pos).into(),
            what: self.refusal,
        }
    }
}

/// The position of `n`'s start tag.
fn position(doc: &Document, n: Node) -> Position {
    doc.text_pos_at(n.range().start).into()
}

/// A zone file read: the zone, where it names services (to check them once all services are
/// known), and what firewalld would warn about.
#[derive(Debug)]
pub struct ZoneFile {
    /// The zone (without `file`).
    pub zone: Zone,
    /// Each `<service name=...>` with its position.
    pub service_refs: Vec<(String, Position)>,
    /// What firewalld ignores with a warning.
    pub warnings: Vec<Located<Warning>>,
}

/// A service file read, with where it includes other services.
#[derive(Debug)]
pub struct ServiceFile {
    /// The service (without `file`).
    pub service: Service,
    /// Each `<include service=...>` with its position.
    pub include_refs: Vec<(String, Position)>,
}

type Table = fn(&str) -> Option<(&'static [&'static str], &'static [&'static str])>;

/// Zone elements with their (required, optional) attributes
/// (`Zone.PARSER_REQUIRED_ELEMENT_ATTRS` and `PARSER_OPTIONAL_ELEMENT_ATTRS`).
fn zone_table(name: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    Some(match name {
        "short"
        | "description"
        | "forward"
        | "audit"
        | "accept"
        | "drop"
        | "icmp-block-inversion" => (&[], &[]),
        "zone" => (&[], &["name", "immutable", "target", "version"]),
        "service" | "icmp-block" | "icmp-type" | "interface" => (&["name"], &[]),
        "port" | "source-port" => (&["port", "protocol"], &[]),
        "forward-port" => (&["port", "protocol"], &["to-port", "to-addr"]),
        "protocol" => (&["value"], &[]),
        "mark" => (&["set"], &[]),
        "limit" => (&["value"], &[]),
        "masquerade" => (&[], &["enabled"]),
        "rule" => (&[], &["family", "priority"]),
        "source" => (&[], &["address", "mac", "invert", "family", "ipset"]),
        "destination" => (&[], &["address", "invert", "ipset"]),
        "log" => (&[], &["prefix", "level"]),
        "nflog" => (&[], &["group", "prefix", "queue-size"]),
        "reject" => (&[], &["type"]),
        "tcp-mss-clamp" => (&[], &["value"]),
        _ => return None,
    })
}

/// Service elements (`Service.PARSER_*_ELEMENT_ATTRS`). The attributes of `port`, `protocol`,
/// `source-port` and `include` are optional in the table but read unconditionally, so firewalld
/// fails on a missing one all the same; they are listed as required here.
fn service_table(name: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    Some(match name {
        "short" | "description" => (&[], &[]),
        "service" => (&[], &["name", "version"]),
        "port" | "source-port" => (&["port", "protocol"], &[]),
        "protocol" => (&["value"], &[]),
        "module" | "helper" => (&[], &["name"]),
        "destination" => (&[], &["ipv4", "ipv6"]),
        "include" => (&["service"], &[]),
        _ => return None,
    })
}

fn check_attrs(n: Node, table: Table) -> Result<(), Fail> {
    let name = n.tag_name().name();
    let Some((required, optional)) = table(name) else {
        return Err(Fail::at(n, Refusal::UnexpectedElement(name.to_string())));
    };
    if let Some(missing) = required.iter().find(|a| n.attribute(**a).is_none()) {
        return Err(Fail::at(
            n,
            Refusal::MissingAttribute {
                attribute: missing,
                element: name.to_string(),
            },
        ));
    }
    if let Some(extra) = n
        .attributes()
        .find(|a| !required.contains(&a.name()) && !optional.contains(&a.name()))
    {
        return Err(Fail::at(
            n,
            Refusal::UnexpectedAttribute {
                element: name.to_string(),
                attribute: extra.name().to_string(),
            },
        ));
    }
    Ok(())
}

/// Checks `n`'s element name and attributes against the zone reader's table.
pub fn check_zone_attrs(n: Node) -> Result<(), Fail> {
    check_attrs(n, zone_table)
}

/// Parses `text` into a document, or the XML error with its position.
fn parse_doc(text: &str) -> Result<Document<'_>, Located<Refusal>> {
    let opts = ParsingOptions {
        allow_dtd: true,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(text, opts).map_err(|e| {
        let pos = e.pos();
        // roxmltree ends most messages with " at LINE:COL"; the position has its own fields.
        let msg = e.to_string();
        let suffix = format!(" at {}:{}", pos.row, pos.col);
        let msg = msg.strip_suffix(&suffix).unwrap_or(&msg).to_string();
        Located {
            at: pos.into(),
            what: Refusal::NotXml(msg),
        }
    })
}

/// A policy, ipset or direct file's document, whose root element must be `<root>`; `Err` with
/// the reason firewalld refuses it.
pub fn object_document<'a>(text: &'a str, root: &str) -> Result<Document<'a>, String> {
    let doc = Document::parse(text).map_err(|e| format!("not well-formed XML: {e}"))?;
    let found = doc.root_element().tag_name().name();
    if found != root {
        return Err(format!("root element is <{found}>, not <{root}>"));
    }
    Ok(doc)
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

fn in_rule(n: Node) -> bool {
    n.ancestors().skip(1).any(|a| a.has_tag_name("rule"))
}

/// Reads a zone file's text. `name` comes from the file name.
pub fn parse_zone(name: &str, text: &str) -> Result<ZoneFile, Located<Refusal>> {
    let doc = parse_doc(text)?;
    let loc = |f: Fail| f.locate(&doc);
    let root = doc.root_element();
    if !root.has_tag_name("zone") {
        return Err(loc(Fail::at(
            root,
            Refusal::Root {
                found: root.tag_name().name().to_string(),
                expected: "zone",
            },
        )));
    }
    let mut zone = Zone {
        name: name.to_string(),
        ..Zone::default()
    };
    let mut out = ZoneFile {
        zone: Zone::default(),
        service_refs: Vec::new(),
        warnings: Vec::new(),
    };
    // firewalld's `_rule_error`: once set outside a rule, every element is skipped until the
    // end tag of a rule clears it.
    let mut skipping = false;
    for n in root.descendants().filter(Node::is_element) {
        if in_rule(n) {
            continue;
        }
        if skipping {
            if n.has_tag_name("rule") {
                skipping = false;
            }
            continue;
        }
        check_zone_attrs(n).map_err(loc)?;
        let a = |k: &str| n.attribute(k).unwrap_or_default().to_string();
        let here = || position(&doc, n);
        let warn = |what: Warning| Located { at: here(), what };
        match n.tag_name().name() {
            "zone" => {
                if let Some(t) = n.attribute("target") {
                    zone.target = Target::parse(t)
                        .ok_or_else(|| loc(Fail::at(n, Refusal::Target(t.to_string()))))?;
                }
            }
            "service" => {
                out.service_refs.push((a("name"), here()));
                push_unique(&mut zone.services, a("name"));
            }
            "port" | "source-port" => {
                let port = normalize_port(&a("port")).map_err(|m| loc(Fail::at(n, m)))?;
                check_port_proto(&a("protocol")).map_err(|m| loc(Fail::at(n, m)))?;
                let list = if n.has_tag_name("port") {
                    &mut zone.ports
                } else {
                    &mut zone.source_ports
                };
                add_coalesced(list, &port, &a("protocol"));
            }
            "protocol" => {
                check_protocol(&a("value")).map_err(|m| loc(Fail::at(n, m)))?;
                push_unique(&mut zone.protocols, a("value"));
            }
            "icmp-block" => push_unique(&mut zone.icmp_blocks, a("name")),
            "masquerade" => zone.masquerade = true,
            "forward" => zone.forward = true,
            "icmp-block-inversion" => zone.icmp_block_inversion = true,
            "interface" => push_unique(&mut zone.interfaces, a("name")),
            "forward-port" => {
                let fp = forward_port(n).map_err(loc)?;
                push_unique(&mut zone.forward_ports, fp);
            }
            "source" => match (n.attribute("address"), n.attribute("ipset")) {
                _ if n.attribute("invert").is_some() => {
                    out.warnings.push(warn(Warning::InvertedSource));
                }
                (Some(addr), None) => {
                    check_source_address(addr).map_err(|m| loc(Fail::at(n, m)))?;
                    push_unique(&mut zone.sources, addr.to_string());
                }
                (None, Some(set)) => push_unique(&mut zone.sources, format!("ipset:{set}")),
                (Some(_), Some(_)) => out.warnings.push(warn(Warning::SourceAddressAndIpset)),
                (None, None) => out.warnings.push(warn(Warning::SourceWithoutAddress)),
            },
            "rule" => match rule_string(n).map_err(loc)? {
                Some(r) => push_unique(&mut zone.rich_rules, r),
                None => out.warnings.push(warn(Warning::InvalidRichRule)),
            },
            name @ ("accept" | "reject" | "drop" | "mark" | "limit" | "destination") => {
                skipping = true;
                out.warnings
                    .push(warn(Warning::OutsideRule(name.to_string())));
            }
            // short, description; log/nflog/audit/icmp-type/tcp-mss-clamp outside a rule are
            // ignored with a warning.
            _ => {}
        }
    }
    out.zone = zone;
    Ok(out)
}

/// `port=P:proto=T:toport=Q:toaddr=A`, as firewall-cmd prints a forward port.
pub fn forward_port_str(port: &str, proto: &str, to_port: &str, to_addr: &str) -> String {
    format!("port={port}:proto={proto}:toport={to_port}:toaddr={to_addr}")
}

fn forward_port(n: Node) -> Result<String, Fail> {
    let a = |k: &str| n.attribute(k).unwrap_or_default();
    let port = normalize_port(a("port")).map_err(|m| Fail::at(n, m))?;
    check_port_proto(a("protocol")).map_err(|m| Fail::at(n, m))?;
    let to_port = if a("to-port").is_empty() {
        String::new()
    } else {
        normalize_port(a("to-port")).map_err(|m| Fail::at(n, m))?
    };
    let to_addr = a("to-addr");
    if !to_addr.is_empty() && to_addr.parse::<std::net::IpAddr>().is_err() {
        return Err(Fail::at(n, Refusal::ToAddress(to_addr.to_string())));
    }
    Ok(forward_port_str(&port, a("protocol"), &to_port, to_addr))
}

/// Reads a service file's text. `name` comes from the file name.
pub fn parse_service(name: &str, text: &str) -> Result<ServiceFile, Located<Refusal>> {
    let doc = parse_doc(text)?;
    let loc = |f: Fail| f.locate(&doc);
    let root = doc.root_element();
    if !root.has_tag_name("service") {
        return Err(loc(Fail::at(
            root,
            Refusal::Root {
                found: root.tag_name().name().to_string(),
                expected: "service",
            },
        )));
    }
    let mut s = Service {
        name: name.to_string(),
        ..Service::default()
    };
    let mut include_refs = Vec::new();
    for n in root.descendants().filter(Node::is_element) {
        check_attrs(n, service_table).map_err(loc)?;
        let a = |k: &str| n.attribute(k).unwrap_or_default().to_string();
        let fail = |r: ValueError| loc(Fail::at(n, r));
        match n.tag_name().name() {
            // Service ports are kept as written: only zone ports are normalised and coalesced.
            "port" if a("port").is_empty() => {
                check_protocol(&a("protocol")).map_err(fail)?;
                push_unique(&mut s.protocols, a("protocol"));
            }
            "port" | "source-port" => {
                normalize_port(&a("port")).map_err(fail)?;
                check_port_proto(&a("protocol")).map_err(fail)?;
                let list = if n.has_tag_name("port") {
                    &mut s.ports
                } else {
                    &mut s.source_ports
                };
                push_unique(list, PortProto::new(a("port"), a("protocol")));
            }
            "protocol" => {
                check_protocol(&a("value")).map_err(fail)?;
                push_unique(&mut s.protocols, a("value"));
            }
            "destination" => {
                for (attr, v4) in [("ipv4", true), ("ipv6", false)] {
                    if let Some(addr) = n.attribute(attr) {
                        let ok = parse_cidr(addr).is_some_and(|(ip, _)| ip.is_ipv4() == v4);
                        if !ok {
                            return Err(loc(Fail::at(
                                n,
                                Refusal::Destination {
                                    address: addr.to_string(),
                                    attribute: attr,
                                },
                            )));
                        }
                        s.destinations.insert(attr.to_string(), addr.to_string());
                    }
                }
            }
            "include" => {
                include_refs.push((a("service"), position(&doc, n)));
                push_unique(&mut s.includes, a("service"));
            }
            _ => {}
        }
    }
    Ok(ServiceFile {
        service: s,
        include_refs,
    })
}
