//! The port catalog: for each cluster profile, the components a node runs, the protocol and
//! ports each listens on, who talks to whom, and how the distribution expects firewalld to be
//! set up. Profiles are data files embedded in the binary (`tracer/catalog/*.toml`); users add
//! application ports with files of the same form (`--catalog FILE`).

mod classes;
mod errors;
pub(crate) mod file;

use std::{fmt, path::Path, str::FromStr};

use tracer_common::protocols;

pub use classes::class_table;
pub use errors::{CatalogError, PortRangeError, Problem, ProtocolError, RoleError};

use super::net::Cidr;

/// The profiles built into the binary, in the order `tracer profiles` lists them.
const EMBEDDED: &[(&str, &str)] = &[
    ("generic", include_str!("../../../catalog/generic.toml")),
    (
        "k0s-kube-router",
        include_str!("../../../catalog/k0s-kube-router.toml"),
    ),
    (
        "k0s-calico",
        include_str!("../../../catalog/k0s-calico.toml"),
    ),
    (
        "k3s-flannel",
        include_str!("../../../catalog/k3s-flannel.toml"),
    ),
    (
        "k3s-wireguard",
        include_str!("../../../catalog/k3s-wireguard.toml"),
    ),
];

/// The profile used when none is given and none is detected.
pub const DEFAULT_PROFILE: &str = "generic";

/// The components of catalog text in the user-file format; `name` is used in errors.
pub fn parse_user_text(name: &str, text: &str) -> Result<Vec<Component>, CatalogError> {
    file::parse_user_catalog(name, text)
}

/// Names of the embedded profiles.
pub fn profile_names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(name, _)| *name)
}

/// Every embedded profile, parsed. The embedded files are checked by the unit tests, so a
/// parse failure here is a build defect.
pub fn profiles() -> Vec<Profile> {
    EMBEDDED
        .iter()
        .map(|(name, text)| {
            file::parse_profile(&format!("<built-in {name}>"), text)
                .unwrap_or_else(|e| panic!("embedded profile {name}: {e}"))
        })
        .collect()
}

/// A node role. k3s's "server" and "agent" are the same roles as k0s's "controller" and
/// "worker"; `External` stands for clients outside the cluster (kubectl, ingress users).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Controller,
    Worker,
    External,
}

impl Role {
    pub const NODE_ROLES: [Role; 2] = [Role::Controller, Role::Worker];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Controller => "controller",
            Role::Worker => "worker",
            Role::External => "external",
        }
    }
}

impl FromStr for Role {
    type Err = RoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "controller" | "server" | "control-plane" => Ok(Role::Controller),
            "worker" | "agent" => Ok(Role::Worker),
            "external" | "cli" | "client" => Ok(Role::External),
            other => Err(RoleError(other.to_string())),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transport a component uses: a protocol with ports, or a bare IP protocol (VRRP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
    /// An IP protocol without ports, by number.
    Ip(u8),
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
            Protocol::Ip(n) => n,
        }
    }

    /// The protocol of IP protocol number `n`: tcp, udp and sctp by name, any other as `Ip(n)`.
    pub fn from_number(n: u8) -> Protocol {
        match n {
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            132 => Protocol::Sctp,
            n => Protocol::Ip(n),
        }
    }

    pub fn has_ports(self) -> bool {
        !matches!(self, Protocol::Ip(_))
    }

    /// Traffic to `port` as firewalld writes it: `4789/udp`, or the protocol alone (`vrrp`)
    /// for one without ports.
    pub fn port_label(self, port: u16) -> String {
        if self.has_ports() {
            format!("{port}/{self}")
        } else {
            self.to_string()
        }
    }
}

impl FromStr for Protocol {
    type Err = ProtocolError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        if let Some(n) = protocols::number(&s) {
            return Ok(Protocol::from_number(n));
        }
        match s.parse::<u8>() {
            Ok(6 | 17 | 132) => Err(ProtocolError::PortProtocolByNumber(s)),
            Ok(n) => Ok(Protocol::Ip(n)),
            Err(_) => Err(ProtocolError::Unknown(s)),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Tcp => f.write_str("tcp"),
            Protocol::Udp => f.write_str("udp"),
            Protocol::Sctp => f.write_str("sctp"),
            Protocol::Ip(n) => match protocols::name(*n) {
                Some(name) => f.write_str(name),
                None => write!(f, "{n}"),
            },
        }
    }
}

/// An inclusive range of ports; a single port has `lo == hi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn contains(&self, port: u16) -> bool {
        (self.lo..=self.hi).contains(&port)
    }

    pub fn overlaps(&self, other: &PortRange) -> bool {
        self.lo <= other.hi && other.lo <= self.hi
    }

    pub fn width(&self) -> u32 {
        u32::from(self.hi) - u32::from(self.lo) + 1
    }
}

impl FromStr for PortRange {
    type Err = PortRangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PortRangeError::Invalid(s.to_string());
        let (lo, hi) = match s.split_once('-') {
            Some((lo, hi)) => (lo, hi),
            None => (s, s),
        };
        let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
        let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
        if lo == 0 || lo > hi {
            return Err(bad());
        }
        Ok(PortRange { lo, hi })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// How a component's traffic is carried when it is an overlay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlay {
    pub kind: OverlayKind,
    /// The device the network provider creates (`vxlan.calico`, `flannel.1`...).
    pub device: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverlayKind {
    Vxlan,
    Wireguard,
}

impl OverlayKind {
    /// Bytes the encapsulation adds in front of an inner packet (IPv4 underlay).
    pub fn overhead(self) -> u32 {
        match self {
            // outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
            OverlayKind::Vxlan => 50,
            // outer IPv4 20 + UDP 8 + WireGuard data header 16 + authentication tag 16
            OverlayKind::Wireguard => 60,
        }
    }
}

/// One thing a node must let in: a component listening on a protocol and ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    /// Also the traffic class name.
    pub name: String,
    pub protocols: Vec<Protocol>,
    /// Empty for bare IP protocols.
    pub ports: Vec<PortRange>,
    /// Roles that open connections (or send datagrams) to the component.
    pub from: Vec<Role>,
    /// Roles that run the component and so must accept its traffic.
    pub to: Vec<Role>,
    pub description: String,
    /// Needed only in some setups (keepalived); left out of `ports` unless asked for.
    pub optional: bool,
    pub overlay: Option<Overlay>,
    /// Its traffic runs between nodes outside any overlay (BGP sessions): counted per peer
    /// address like an overlay's.
    pub peering: bool,
    /// Where the entry came from: a profile name or a user file.
    pub origin: String,
}

impl Component {
    /// `6443/tcp`, `2379-2380/tcp`, `vrrp` for each protocol/port pair, as firewalld writes them.
    pub fn port_specs(&self) -> Vec<String> {
        let mut out = Vec::new();
        for proto in &self.protocols {
            if proto.has_ports() {
                out.extend(self.ports.iter().map(|r| format!("{r}/{proto}")));
            } else {
                out.push(proto.to_string());
            }
        }
        out
    }
}

/// How the distribution's documentation sets up firewalld.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirewalldStyle {
    /// Services (`k0s-controller`, `k0s-worker`) or single ports in a zone.
    pub services: bool,
    /// Description used for generated service files.
    pub description: String,
    /// The zone the distribution's guide configures, when it names one.
    pub zone: Option<String>,
    /// Roles that need masquerading in their zone.
    pub masquerade: Vec<Role>,
    /// Roles whose zone must hold the pod and service CIDRs as sources.
    pub sources: Vec<Role>,
}

/// A cluster profile: a distribution with a network provider.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: String,
    pub summary: String,
    pub distribution: String,
    pub pod_cidrs: Vec<Cidr>,
    pub service_cidrs: Vec<Cidr>,
    pub firewalld: FirewalldStyle,
    pub components: Vec<Component>,
}

impl Profile {
    /// The name this distribution gives a role (k3s calls controllers servers).
    pub fn role_name(&self, role: Role) -> &'static str {
        match (self.distribution.as_str(), role) {
            ("k3s", Role::Controller) => "server",
            ("k3s", Role::Worker) => "agent",
            (_, role) => role.as_str(),
        }
    }

    /// The firewalld service the distribution's guide defines for a role: `k0s-worker`,
    /// `k3s-server` (`kubernetes-worker` for the generic profile).
    pub fn service_name(&self, role: Role) -> String {
        let dist = if self.distribution == "any" {
            "kubernetes"
        } else {
            self.distribution.as_str()
        };
        format!("{dist}-{}", self.role_name(role))
    }

    /// The names of several roles, as `role_name` gives them, joined with `sep`.
    pub fn role_names(&self, roles: &[Role], sep: &str) -> String {
        roles
            .iter()
            .map(|r| self.role_name(*r))
            .collect::<Vec<_>>()
            .join(sep)
    }

    /// The overlay this profile's pods use, if any.
    pub fn overlay(&self) -> Option<(&Component, &Overlay)> {
        self.components
            .iter()
            .find_map(|c| c.overlay.as_ref().map(|o| (c, o)))
    }
}

/// A profile together with the user's own entries: what a run classifies traffic by.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub profile: Profile,
    /// The profile's components followed by those of user files.
    pub components: Vec<Component>,
}

impl Catalog {
    /// Loads an embedded profile.
    pub fn builtin(profile: &str) -> Result<Catalog, CatalogError> {
        let (name, text) = EMBEDDED
            .iter()
            .find(|(name, _)| *name == profile)
            .ok_or_else(|| CatalogError::UnknownProfile {
                name: profile.to_string(),
                known: profile_names().collect::<Vec<_>>().join(", "),
            })?;
        let profile = file::parse_profile(&format!("<built-in {name}>"), text)?;
        Ok(Catalog {
            components: profile.components.clone(),
            profile,
        })
    }

    /// Adds the components of a user catalog file. On error nothing of that file is added
    /// and the catalog stays usable.
    pub fn add_file(&mut self, path: &Path) -> Result<usize, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Io {
            file: path.display().to_string(),
            source,
        })?;
        let added = file::parse_user_catalog(&path.display().to_string(), &text)?;
        let mut merged = self.components.clone();
        merged.extend(added.iter().cloned());
        // Conflicts are checked against everything already in the catalog.
        class_table(&merged)?;
        self.components = merged;
        Ok(added.len())
    }

    /// The components a node of `role` must accept traffic for, in catalog order.
    pub fn accepted_by(&self, role: Role, include_optional: bool) -> Vec<&Component> {
        self.components
            .iter()
            .filter(|c| c.to.contains(&role) && (include_optional || !c.optional))
            .collect()
    }
}

#[cfg(test)]
mod tests;
