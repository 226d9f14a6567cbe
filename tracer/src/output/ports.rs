//! What a node must allow, in the forms an operator pastes: a table, `firewall-cmd` commands,
//! a firewalld service file, or JSON. The service files and commands follow the ones the k0s
//! and k3s guides give (service `k0s-worker` with its ports, masquerade and the pod/service
//! CIDRs as zone sources on workers; single ports in the public zone for k3s).

use std::fmt::Write as _;

use serde::Serialize;

use crate::model::catalog::{Catalog, Component, Role};

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
            .map(|c| c.to_string())
            .collect()
    }
}

/// The firewalld service name for a role of a profile: `k0s-worker`, `k3s-server`.
pub fn service_name(catalog: &Catalog, role: Role) -> String {
    let p = &catalog.profile;
    let dist = if p.distribution == "any" {
        "kubernetes"
    } else {
        p.distribution.as_str()
    };
    format!("{dist}-{}", p.role_name(role))
}

pub fn render(req: &PortsRequest, format: PortsFormat) -> Result<String, String> {
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
                return Err("firewalld-xml writes one service file: ask for one --role at a time (a node with both roles enables both services)".into());
            }
            Ok(service_xml(req, req.roles[0]))
        }
    }
}

fn need_roles(req: &PortsRequest, format: &str) -> Result<(), String> {
    if req.roles.is_empty() {
        return Err(format!(
            "--format {format} needs --role (controller or worker; k3s: server or agent)"
        ));
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
        let _ = writeln!(
            s,
            "Profile {}: {}; a {} node must accept:",
            p.name,
            p.summary,
            roles_text(req)
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
        services: req
            .roles
            .iter()
            .map(|r| service_name(req.catalog, *r))
            .collect(),
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
    let name = service_name(req.catalog, role);
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

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:=+,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// What firewall-cmd adds for a port spec: `--add-port` for `8472/udp`, `--add-protocol` for
/// a bare protocol such as `vrrp`.
pub(crate) fn add_kind(spec: &str) -> &'static str {
    if spec.contains('/') {
        "port"
    } else {
        "protocol"
    }
}

fn firewall_cmd(req: &PortsRequest) -> String {
    let p = &req.catalog.profile;
    let (tool, permanent) = if req.offline {
        ("firewall-offline-cmd", "")
    } else {
        ("firewall-cmd", " --permanent")
    };
    let zone = req
        .zone()
        .map(|z| format!(" --zone={}", shell_quote(z)))
        .unwrap_or_default();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Profile {}: what a {} node must accept ({}).",
        p.name,
        roles_text(req),
        p.summary
    );
    if p.firewalld.services {
        for role in &req.roles {
            let name = service_name(req.catalog, *role);
            let _ = writeln!(
                s,
                "# The {name} service (skip --new-service if it exists already):"
            );
            let _ = writeln!(s, "{tool}{permanent} --new-service={name}");
            let _ = writeln!(s, "{tool}{permanent} --service={name} --set-short={name}");
            let desc = format!("{} ({} node)", p.firewalld.description, p.role_name(*role));
            let _ = writeln!(
                s,
                "{tool}{permanent} --service={name} --set-description={}",
                shell_quote(&desc)
            );
            for c in req.components_for(&[*role]) {
                for spec in c.port_specs() {
                    let what = add_kind(&spec);
                    let _ = writeln!(s, "{tool}{permanent} --service={name} --add-{what}={spec}");
                }
            }
        }
        for role in &req.roles {
            let _ = writeln!(
                s,
                "{tool}{permanent}{zone} --add-service={}",
                service_name(req.catalog, *role)
            );
        }
    } else {
        for c in req.components() {
            for spec in c.port_specs() {
                let what = add_kind(&spec);
                let _ = writeln!(s, "{tool}{permanent}{zone} --add-{what}={spec}");
            }
        }
    }
    if req.needs_masquerade() {
        let _ = writeln!(s, "{tool}{permanent}{zone} --add-masquerade");
    }
    for src in req.sources() {
        let _ = writeln!(s, "{tool}{permanent}{zone} --add-source={src}");
    }
    if req.offline {
        let _ = writeln!(s, "systemctl reload firewalld");
    } else {
        let _ = writeln!(s, "firewall-cmd --reload");
    }
    s
}

#[cfg(test)]
mod tests;
