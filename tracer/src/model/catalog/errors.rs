//! What can be wrong with a catalog: a file that does not read or parse (named with its line
//! and column), an unknown profile, and components that cannot share the class table; and the
//! errors of the value types written in catalog files (roles, protocols, port ranges).

use crate::model::net::CidrError;

/// A catalog that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A file, or a value in it, is not a valid catalog. The message quotes the value, cut to a
    /// few hundred bytes.
    #[error("{file}:{line}:{column}: {message}", message = tracer_nft::bounded(.problem.to_string()))]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        problem: Problem,
    },
    /// A file cannot be read (the cause is the error's source, printed after it).
    #[error("reading the catalog {file}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// No embedded profile has this name.
    #[error("unknown profile {name:?} (known profiles: {known})")]
    UnknownProfile { name: String, known: String },
    /// More components with distinct names than the kernel's class table holds.
    #[error("too many classes: at most {max} components with distinct names")]
    TooManyClasses { max: usize },
    /// Two components claim the same port or protocol.
    #[error(
        "{what} of component {a:?} ({a_origin}) overlaps component {b:?} ({b_origin}); give each port to one component, or nest one range inside the other"
    )]
    Overlap {
        /// The port range or protocol: `4789/udp`, `vrrp`.
        what: String,
        a: String,
        a_origin: String,
        b: String,
        b_origin: String,
    },
}

/// What is wrong at a position of a catalog file.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// Not TOML, or not the catalog's layout.
    #[error("{}", .0.message().trim_end())]
    Toml(Box<toml::de::Error>),
    #[error(transparent)]
    Role(#[from] RoleError),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error(transparent)]
    Ports(#[from] PortRangeError),
    #[error(transparent)]
    Cidr(#[from] CidrError),
    #[error("firewalld style {0:?}: use \"services\" or \"ports\"")]
    FirewalldStyle(String),
    #[error("no [[component]] entries")]
    NoComponents,
    #[error(
        "component name {0:?}: use letters, digits, '-' and '_' (\"other\" and \"malformed\" are reserved)"
    )]
    ComponentName(String),
    #[error("{0}: bare IP protocols take no ports")]
    PortsWithoutPortProtocol(String),
    #[error("{0}: tcp, udp and sctp need `ports`")]
    MissingPorts(String),
    #[error("{0}: `to` lists the node roles that run it")]
    NoNodeRoles(String),
    #[error("overlay kind {0:?}: use \"vxlan\" or \"wireguard\"")]
    OverlayKind(String),
}

/// A role name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: use controller (k3s: server), worker (k3s: agent) or external")]
pub struct RoleError(pub String);

/// A protocol a catalog cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// TCP, UDP or SCTP by number: they are written by name, with ports.
    #[error("protocol {0}: write tcp, udp or sctp, with ports")]
    PortProtocolByNumber(String),
    #[error(
        "unknown protocol {0:?}: use tcp, udp, sctp, an IP protocol name (vrrp, gre, esp, ipip...) or number"
    )]
    Unknown(String),
}

/// A port or port range that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortRangeError {
    #[error("{0:?} is not a port (1-65535) or a range such as 2379-2380")]
    Invalid(String),
    /// A TOML number outside 0-65535.
    #[error("{0} is not a port (1-65535)")]
    OutOfRange(i64),
}
