//! What a node must allow, in the forms an operator pastes: a table, `firewall-cmd` commands,
//! a firewalld service file, or JSON. The service files and commands follow the ones the k0s
//! and k3s guides give (service `k0s-worker` with its ports, masquerade and the pod/service
//! CIDRs as zone sources on workers; single ports in the public zone for k3s).

use std::fmt::Write as _;

use serde::Serialize;

use super::words::article;

use crate::model::{
    catalog::{Catalog, Component, Role},
    firewalld::change::{Change, Opening, Tool, ZoneAddition},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PortsFormat {
    Table,
    FirewallCmd,
    FirewalldXml,
    Json,
}

/// What to print the ports of.
pub struct PortsRequest<'a> {
    pub catalog: &'a Catalog,
    /// Empty: every component, for every role (table and JSON only).
    pub roles: Vec<Role>,
    pub zone: Option<String>,
    /// Which zone the commands use and why, when not given with --zone.
    pub zone_note: Option<String>,
    /// Print `firewall-offline-cmd` commands, for images where firewalld is not running.
    pub offline: bool,
    pub include_optional: bool,
}

impl PortsRequest<'_> {
    fn components(&self) -> Vec<&Component> {
        self.components_for(&self.roles)
    }

    /// The components a node of `roles` must accept (every one when `roles` is empty).
    fn components_for(&self, roles: &[Role]) -> Vec<&Component> {
        let mut out: Vec<&Component> = Vec::new();
        for c in &self.catalog.components {
            let wanted = roles.is_empty() || roles.iter().any(|r| c.to.contains(r));
            if wanted && (self.include_optional || !c.optional) && !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    fn zone(&self) -> Option<&str> {
        self.zone
            .as_deref()
            .or(self.catalog.profile.firewalld.zone.as_deref())
    }

    fn needs_masquerade(&self) -> bool {
        self.roles
            .iter()
            .any(|r| self.catalog.profile.firewalld.masquerade.contains(r))
    }

    fn sources(&self) -> Vec<String> {
        let p = &self.catalog.profile;
        if !self.roles.iter().any(|r| p.firewalld.sources.contains(r)) {
            return Vec::new();
        }
        p.pod_cidrs
            .iter()
            .chain(&p.service_cidrs)
            .map(std::string::ToString::to_string)
            .collect()
    }
}

/// A format that cannot be printed for the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortsError {
    /// The format is per role and no role was given.
    #[error("--format {0} needs --role (controller or worker; k3s: server or agent)")]
    NeedsRole(&'static str),
    /// A service file is for one role.
    #[error(
        "firewalld-xml writes one service file: ask for one --role at a time (a node with both roles enables both services)"
    )]
    OneRoleAtATime,
}

pub fn render(req: &PortsRequest, format: PortsFormat) -> Result<String, PortsError> {
    match format {
        PortsFormat::Table => Ok(table(req)),
        PortsFormat::Json => Ok(json(req)),
        PortsFormat::FirewallCmd => {
            need_roles(req, "firewall-cmd")?;
            Ok(firewall_cmd(req))
        }
        PortsFormat::FirewalldXml => {
            need_roles(req, "firewalld-xml")?;
            if req.roles.len() > 1 {
                return Err(PortsError::OneRoleAtATime);
            }
            Ok(service_xml(req, req.roles[0]))
        }
    }
}

fn need_roles(req: &PortsRequest, format: &'static str) -> Result<(), PortsError> {
    if req.roles.is_empty() {
        return Err(PortsError::NeedsRole(format));
    }
    Ok(())
}

fn roles_text(req: &PortsRequest) -> String {
    req.catalog.profile.role_names(&req.roles, "+")
}

fn table(req: &PortsRequest) -> String {
    let p = &req.catalog.profile;
    let mut s = String::new();
    if req.roles.is_empty() {
        let _ = writeln!(s, "Profile {}: {} (all roles)", p.name, p.summary);
    } else {
        let roles = roles_text(req);
        let _ = writeln!(
            s,
            "Profile {}: {}; {} {roles} node must accept:",
            p.name,
            p.summary,
            article(&roles),
        );
    }
    let _ = writeln!(
        s,
        "{:<16} {:<20} {:<28} {:<22} DESCRIPTION",
        "PORT", "COMPONENT", "FROM", "TO"
    );
    for c in req.components() {
        let roles = |rs: &[Role]| p.role_names(rs, ",");
        let desc = if c.optional {
            format!("{} (optional)", c.description)
        } else {
            c.description.clone()
        };
        for spec in c.port_specs() {
            let _ = writeln!(
                s,
                "{:<16} {:<20} {:<28} {:<22} {}",
                spec,
                c.name,
                roles(&c.from),
                roles(&c.to),
                desc
            );
        }
    }
    let sources = req.sources();
    if req.needs_masquerade() {
        let _ = writeln!(s, "The zone also needs masquerading.");
    }
    if !sources.is_empty() {
        let _ = writeln!(
            s,
            "The zone also needs the pod and service CIDRs as sources: {}",
            sources.join(" ")
        );
    }
    if let Some(note) = &req.zone_note {
        let _ = writeln!(s, "{note}");
    }
    s
}

fn json(req: &PortsRequest) -> String {
    #[derive(Serialize)]
    struct Entry<'a> {
        component: &'a str,
        ports: Vec<String>,
        from: Vec<&'a str>,
        to: Vec<&'a str>,
        description: &'a str,
        optional: bool,
    }
    #[derive(Serialize)]
    struct Doc<'a> {
        profile: &'a str,
        roles: Vec<&'a str>,
        services: Vec<String>,
        zone: Option<&'a str>,
        masquerade: bool,
        sources: Vec<String>,
        components: Vec<Entry<'a>>,
    }
    let p = &req.catalog.profile;
    let names = |rs: &[Role]| rs.iter().map(|r| p.role_name(*r)).collect::<Vec<_>>();
    let doc = Doc {
        profile: &p.name,
        roles: names(&req.roles),
        services: req.roles.iter().map(|r| p.service_name(*r)).collect(),
        zone: req.zone(),
        masquerade: req.needs_masquerade(),
        sources: req.sources(),
        components: req
            .components()
            .into_iter()
            .map(|c| Entry {
                component: &c.name,
                ports: c.port_specs(),
                from: names(&c.from),
                to: names(&c.to),
                description: &c.description,
                optional: c.optional,
            })
            .collect(),
    };
    serde_json::to_string_pretty(&doc).expect("plain data serializes") + "\n"
}

fn service_xml(req: &PortsRequest, role: Role) -> String {
    let p = &req.catalog.profile;
    let name = p.service_name(role);
    let mut s = String::new();
    s.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    let _ = writeln!(
        s,
        "<!-- /etc/firewalld/services/{name}.xml, from tracer profile {} -->",
        p.name
    );
    s.push_str("<service>\n");
    let _ = writeln!(s, "  <short>{}</short>", xml_escape(&name));
    let _ = writeln!(
        s,
        "  <description>{} ({} node)</description>",
        xml_escape(&p.firewalld.description),
        p.role_name(role)
    );
    for c in req.components_for(&[role]) {
        for proto in &c.protocols {
            if proto.has_ports() {
                for r in &c.ports {
                    let _ = writeln!(
                        s,
                        "  <port protocol=\"{proto}\" port=\"{r}\"/> <!-- {} -->",
                        c.name
                    );
                }
            } else {
                let _ = writeln!(s, "  <protocol value=\"{proto}\"/> <!-- {} -->", c.name);
            }
        }
    }
    s.push_str("</service>\n");
    s
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn firewall_cmd(req: &PortsRequest) -> String {
    let p = &req.catalog.profile;
    let tool = if req.offline {
        Tool::Offline
    } else {
        Tool::Online
    };
    let zone = req.zone().map(str::to_string);
    let to_zone = |addition| Change::AddToZone {
        zone: zone.clone(),
        addition,
    };
    let mut s = String::new();
    let cmd = |s: &mut String, change: Change| {
        let _ = writeln!(s, "{}", tool.command(&change));
    };
    let roles = roles_text(req);
    let _ = writeln!(
        s,
        "# Profile {}: what {} {roles} node must accept ({}).",
        p.name,
        article(&roles),
        p.summary
    );
    if let Some(note) = &req.zone_note {
        let _ = writeln!(s, "# {note}");
    }
    if p.firewalld.services {
        for role in &req.roles {
            let name = p.service_name(*role);
            let _ = writeln!(
                s,
                "# The {name} service (skip --new-service if it exists already):"
            );
            cmd(&mut s, Change::NewService(name.clone()));
            cmd(
                &mut s,
                Change::SetShort {
                    service: name.clone(),
                    short: name.clone(),
                },
            );
            cmd(
                &mut s,
                Change::SetDescription {
                    service: name.clone(),
                    description: format!(
                        "{} ({} node)",
                        p.firewalld.description,
                        p.role_name(*role)
                    ),
                },
            );
            for c in req.components_for(&[*role]) {
                for spec in c.port_specs() {
                    cmd(
                        &mut s,
                        Change::OpenInService {
                            service: name.clone(),
                            opening: Opening::from_spec(&spec),
                        },
                    );
                }
            }
        }
        for role in &req.roles {
            cmd(
                &mut s,
                to_zone(ZoneAddition::Service(p.service_name(*role))),
            );
        }
    } else {
        for c in req.components() {
            for spec in c.port_specs() {
                cmd(
                    &mut s,
                    to_zone(ZoneAddition::Open(Opening::from_spec(&spec))),
                );
            }
        }
    }
    if req.needs_masquerade() {
        cmd(&mut s, to_zone(ZoneAddition::Masquerade));
    }
    for src in req.sources() {
        cmd(&mut s, to_zone(ZoneAddition::Source(src)));
    }
    // firewall-offline-cmd's changes apply when firewalld starts; for a firewalld that runs
    // after all, reload it, and do nothing (successfully) when it does not.
    let apply = tool
        .apply()
        .unwrap_or("systemctl try-reload-or-restart firewalld");
    let _ = writeln!(s, "{apply}");
    s
}

#[cfg(test)]
mod tests;
