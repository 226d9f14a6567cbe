//! Reading catalog files: TOML into raw structs, then validation into the model types. Every
//! error names the file and the line and column it is about.

use serde::Deserialize;
use toml::Spanned;

use super::{
    CatalogError, Component, FirewalldStyle, Overlay, OverlayKind, PortRange, PortRangeError,
    Problem, Profile, Protocol, Role,
};
use crate::model::net::Cidr;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawProfile {
    name: String,
    summary: String,
    distribution: String,
    #[serde(default)]
    pod_cidrs: Vec<Spanned<String>>,
    #[serde(default)]
    service_cidrs: Vec<Spanned<String>>,
    firewalld: RawFirewalld,
    #[serde(default, rename = "component")]
    components: Vec<Spanned<RawComponent>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFirewalld {
    style: Spanned<String>,
    description: String,
    #[serde(default)]
    zone: Option<String>,
    #[serde(default)]
    masquerade: Vec<Spanned<String>>,
    #[serde(default)]
    sources: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUserCatalog {
    #[serde(default, rename = "component")]
    components: Vec<Spanned<RawComponent>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawComponent {
    name: Spanned<String>,
    protocol: Spanned<OneOrMany<String>>,
    #[serde(default)]
    ports: Option<Spanned<OneOrMany<PortSpec>>>,
    from: Vec<Spanned<String>>,
    to: Vec<Spanned<String>>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    optional: bool,
    #[serde(default)]
    overlay: Option<RawOverlay>,
    /// Sessions between nodes (BGP): counted per peer address.
    #[serde(default)]
    peering: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverlay {
    kind: Spanned<String>,
    device: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PortSpec {
    Number(i64),
    Text(String),
}

/// Turns byte offsets into `file:line:column` errors.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn error(&self, at: usize, problem: impl Into<Problem>) -> CatalogError {
        let before = &self.text[..at.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        CatalogError::Invalid {
            file: self.file.to_string(),
            line,
            column,
            problem: problem.into(),
        }
    }

    fn toml<T: for<'de> Deserialize<'de>>(&self) -> Result<T, CatalogError> {
        toml::from_str(self.text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            self.error(at, Problem::Toml(Box::new(e)))
        })
    }

    fn parsed<T: std::str::FromStr<Err = E>, E: Into<Problem>>(
        &self,
        value: &Spanned<String>,
    ) -> Result<T, CatalogError> {
        value
            .get_ref()
            .parse()
            .map_err(|e: E| self.error(value.span().start, e))
    }
}

pub fn parse_profile(file: &str, text: &str) -> Result<Profile, CatalogError> {
    let src = Source { file, text };
    let raw: RawProfile = src.toml()?;
    let cidrs = |list: &[Spanned<String>]| -> Result<Vec<Cidr>, CatalogError> {
        list.iter().map(|c| src.parsed::<Cidr, _>(c)).collect()
    };
    let roles = |list: &[Spanned<String>]| -> Result<Vec<Role>, CatalogError> {
        list.iter().map(|r| src.parsed::<Role, _>(r)).collect()
    };
    let fw = &raw.firewalld;
    let services = match fw.style.get_ref().as_str() {
        "services" => true,
        "ports" => false,
        other => {
            return Err(src.error(
                fw.style.span().start,
                Problem::FirewalldStyle(other.to_string()),
            ));
        }
    };
    let firewalld = FirewalldStyle {
        services,
        description: fw.description.clone(),
        zone: fw.zone.clone(),
        masquerade: roles(&fw.masquerade)?,
        sources: match &fw.sources {
            Some(list) => roles(list)?,
            None => Role::NODE_ROLES.to_vec(),
        },
    };
    let components = components(&src, raw.components, &raw.name)?;
    Ok(Profile {
        pod_cidrs: cidrs(&raw.pod_cidrs)?,
        service_cidrs: cidrs(&raw.service_cidrs)?,
        name: raw.name,
        summary: raw.summary,
        distribution: raw.distribution,
        firewalld,
        components,
    })
}

pub fn parse_user_catalog(file: &str, text: &str) -> Result<Vec<Component>, CatalogError> {
    let src = Source { file, text };
    let raw: RawUserCatalog = src.toml()?;
    if raw.components.is_empty() {
        return Err(src.error(0, Problem::NoComponents));
    }
    components(&src, raw.components, file)
}

fn components(
    src: &Source,
    raw: Vec<Spanned<RawComponent>>,
    origin: &str,
) -> Result<Vec<Component>, CatalogError> {
    raw.into_iter().map(|c| component(src, c, origin)).collect()
}

fn component(
    src: &Source,
    raw: Spanned<RawComponent>,
    origin: &str,
) -> Result<Component, CatalogError> {
    let at = raw.span().start;
    let raw = raw.into_inner();
    let name = raw.name.get_ref().trim().to_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || matches!(name.as_str(), "other" | "malformed")
    {
        return Err(src.error(raw.name.span().start, Problem::ComponentName(name)));
    }
    let proto_at = raw.protocol.span().start;
    let protocols = raw
        .protocol
        .into_inner()
        .into_vec()
        .iter()
        .map(|p| p.parse::<Protocol>().map_err(|e| src.error(proto_at, e)))
        .collect::<Result<Vec<_>, _>>()?;
    let with_ports = protocols.iter().filter(|p| p.has_ports()).count();
    let ports = match raw.ports {
        Some(spec) => {
            let ports_at = spec.span().start;
            let ports = spec
                .into_inner()
                .into_vec()
                .into_iter()
                .map(|p| match p {
                    PortSpec::Number(n) => u16::try_from(n)
                        .map_err(|_| PortRangeError::OutOfRange(n))
                        .and_then(|n| n.to_string().parse::<PortRange>()),
                    PortSpec::Text(t) => t.parse::<PortRange>(),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| src.error(ports_at, e))?;
            if with_ports == 0 {
                return Err(src.error(ports_at, Problem::PortsWithoutPortProtocol(name)));
            }
            ports
        }
        None => Vec::new(),
    };
    if with_ports > 0 && ports.is_empty() {
        return Err(src.error(at, Problem::MissingPorts(name)));
    }
    let roles = |list: &[Spanned<String>]| -> Result<Vec<Role>, CatalogError> {
        list.iter().map(|r| src.parsed::<Role, _>(r)).collect()
    };
    let from = roles(&raw.from)?;
    let to = roles(&raw.to)?;
    if to.is_empty() || to.contains(&Role::External) {
        return Err(src.error(at, Problem::NoNodeRoles(name)));
    }
    let overlay = match raw.overlay {
        Some(o) => Some(Overlay {
            kind: match o.kind.get_ref().as_str() {
                "vxlan" => OverlayKind::Vxlan,
                "wireguard" => OverlayKind::Wireguard,
                other => {
                    return Err(
                        src.error(o.kind.span().start, Problem::OverlayKind(other.to_string()))
                    );
                }
            },
            device: o.device,
        }),
        None => None,
    };
    Ok(Component {
        name,
        protocols,
        ports,
        from,
        to,
        description: raw.description,
        optional: raw.optional,
        overlay,
        peering: raw.peering,
        origin: origin.to_string(),
    })
}
