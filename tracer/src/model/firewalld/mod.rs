//! firewalld's configuration as a model, in three views: the permanent configuration read from
//! files ([`read_permanent`]: what firewalld applies at start and after `--reload`), the runtime
//! state read over D-Bus from a running firewalld ([`read_runtime`]), and the difference between
//! the two ([`drift`]: runtime changes a reload would lose, and permanent changes not applied
//! yet). The zone resolver ([`Permanent::zone_for`], [`zone_of`]: a [`ZoneBinding`]) and
//! [`Permanent::zone_accepts`] answer the two questions a diagnosis asks of a zone set: which
//! zone handles this packet and why, and what does that zone let in. [`change`] holds changes
//! to the configuration as data, and the one renderer that spells them as commands.
//!
//! Written against firewalld 1.3.3 (Debian 12): its file readers (`firewall/core/io/zone.py`,
//! `service.py`, `firewalld_conf.py`), its loader (`core/fw.py`), its nftables dispatch
//! (`core/nftables.py`) and its D-Bus server (`server/firewalld.py`), and checked against a real
//! firewalld in the lab (see `tests/lab.rs`) and by the differential harness (`tests/fwdiff`).
//! Policies, ipsets and direct rules are read from their files; [`judge`] decides which element
//! of the whole configuration decides a packet, and [`plan`] which change lets it through.
//! Helpers and user-defined ICMP types are not modelled.

mod accepts;
mod apply;
pub mod change;
mod check;
mod conf;
pub mod direct;
mod drift;
pub mod icmp;
pub mod ipset;
pub mod judge;
mod listing;
mod permanent;
pub mod plan;
pub mod policy;
mod refusal;
mod rich;
mod richcheck;
pub mod richrule;
mod runtime;
mod select;
mod xml;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use drift::drift;
pub use listing::{ZoneListing, parse_listing};
pub use permanent::{read_files, read_permanent};
pub use runtime::{RuntimeError, read_runtime, read_runtime_at};
pub use select::{Binding, ZoneBinding, ZoneSource, dispatch, zone_in_chain, zone_of};

/// The zone firewalld falls back to when `DefaultZone` is absent (`config.FALLBACK_ZONE`).
pub const FALLBACK_ZONE: &str = "public";
/// The backend firewalld uses when `FirewallBackend` is absent or invalid.
pub const FALLBACK_BACKEND: &str = "nftables";

/// `ROOT/etc/firewalld/firewalld.conf`: the two keys the model needs (the others are checked
/// as firewalld checks them, and not kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirewalldConf {
    /// `DefaultZone`, or `public` when absent. When it names no existing zone, firewalld uses
    /// `public` (or `external`, or `block`) and so does this field; a [`ReadProblem`] says so.
    pub default_zone: String,
    /// `FirewallBackend` in lower case: `nftables` (the default) or `iptables`.
    pub backend: String,
    /// The file read, or `None` when there was none (firewalld then uses its built-in defaults).
    pub file: Option<PathBuf>,
}

impl Default for FirewalldConf {
    fn default() -> Self {
        FirewalldConf {
            default_zone: FALLBACK_ZONE.to_string(),
            backend: FALLBACK_BACKEND.to_string(),
            file: None,
        }
    }
}

/// What a zone does with a packet that none of its rules accepted or rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Target {
    /// `default` (no `target` attribute): reject, but let ICMP through.
    #[default]
    Default,
    /// `ACCEPT`: everything is accepted (the stock `trusted` zone).
    Accept,
    /// `DROP`: silently dropped (the stock `drop` zone).
    Drop,
    /// `%%REJECT%%`: rejected with an ICMP error (the stock `block` zone).
    Reject,
}

impl Target {
    /// Parses a zone target as written in zone XML or returned over D-Bus. `{chain}_{zone}` is
    /// firewalld's internal spelling of `default`, and its XML reader accepts it too. Zones do
    /// not take `REJECT` (that is a policy target): `None`.
    pub fn parse(s: &str) -> Option<Target> {
        match s {
            "default" | "{chain}_{zone}" => Some(Target::Default),
            "ACCEPT" => Some(Target::Accept),
            "DROP" => Some(Target::Drop),
            "%%REJECT%%" => Some(Target::Reject),
            _ => None,
        }
    }

    /// The spelling firewall-cmd and zone XML use.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Default => "default",
            Target::Accept => "ACCEPT",
            Target::Drop => "DROP",
            Target::Reject => "%%REJECT%%",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A port or port range with its protocol.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortProto {
    /// `6443` or `2379-2380`; empty when a whole protocol is meant (a service's `<protocol>`
    /// or a zone's protocol in [`Permanent::zone_accepts`]).
    pub port: String,
    /// `tcp`, `udp`, `sctp` or `dccp` (or any IP protocol when `port` is empty).
    pub proto: String,
}

impl PortProto {
    /// A port (or range) with its protocol.
    pub fn new(port: impl Into<String>, proto: impl Into<String>) -> Self {
        PortProto {
            port: port.into(),
            proto: proto.into(),
        }
    }
}

impl fmt::Display for PortProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.port.is_empty() {
            f.write_str(&self.proto)
        } else {
            write!(f, "{}/{}", self.port, self.proto)
        }
    }
}

/// One zone, permanent or runtime. Lists keep firewalld's order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Zone {
    /// The zone's name: its file name without `.xml`.
    pub name: String,
    /// What happens to packets no rule decided on.
    pub target: Target,
    /// Bound interfaces; `eth+` is a wildcard for every name starting with `eth`.
    pub interfaces: Vec<String>,
    /// Bound sources: `10.0.0.0/8`, `fd00::/8`, a MAC address, or `ipset:NAME`.
    pub sources: Vec<String>,
    /// Services accepted.
    pub services: Vec<String>,
    /// Ports accepted, coalesced as firewalld does (`80` and `80-90` become `80-90`).
    pub ports: Vec<PortProto>,
    /// Whole IP protocols accepted (`vrrp`, `gre`, `112`).
    pub protocols: Vec<String>,
    /// Source NAT of traffic forwarded out of this zone.
    pub masquerade: bool,
    /// Intra-zone forwarding (`<forward/>`).
    pub forward: bool,
    /// Rich rules in firewalld's canonical text form (`firewall-cmd --list-rich-rules`).
    pub rich_rules: Vec<String>,
    /// ICMP types blocked.
    pub icmp_blocks: Vec<String>,
    /// `<icmp-block-inversion/>`: the ICMP block list is an allow list.
    pub icmp_block_inversion: bool,
    /// Traffic accepted by its source port.
    pub source_ports: Vec<PortProto>,
    /// Port forwards as firewall-cmd prints them: `port=80:proto=tcp:toport=8080:toaddr=`.
    pub forward_ports: Vec<String>,
    /// Where the permanent definition came from (`None` for runtime zones).
    pub file: Option<PathBuf>,
}

/// One service definition.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Service {
    /// The service's name: its file name without `.xml`.
    pub name: String,
    /// Ports, as written (services are not coalesced).
    pub ports: Vec<PortProto>,
    /// Whole IP protocols (`<protocol value=.../>`, or `<port port="" protocol=.../>`).
    pub protocols: Vec<String>,
    /// Source ports.
    pub source_ports: Vec<PortProto>,
    /// Services this one includes (`<include service=.../>`); firewalld follows them
    /// recursively.
    pub includes: Vec<String>,
    /// `<destination ipv4=... ipv6=.../>`: the service's rules match only these destination
    /// addresses, by family (`ipv4`, `ipv6`); a family without one gets no rule.
    pub destinations: BTreeMap<String, String>,
    /// Where the definition came from (`None` for runtime services).
    pub file: Option<PathBuf>,
}

/// A file, or a part of one, that firewalld would refuse or correct. firewalld itself is much
/// harsher than this model, which just leaves the file out: a zone or service file it cannot
/// load makes it refuse the whole configuration, so `--reload` fails and keeps the rules in
/// force, and a start ends in state `FAILED` (stock zones only, everything accepted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadProblem {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// 1-based column, when known.
    pub column: Option<u32>,
    /// What is wrong, and what firewalld does about it.
    pub message: String,
}

impl ReadProblem {
    /// A problem at a place in `file`; the message, which may quote values of any size from
    /// the file, is cut to a few hundred bytes.
    pub fn new(
        file: &std::path::Path,
        line: Option<u32>,
        column: Option<u32>,
        message: String,
    ) -> Self {
        ReadProblem {
            file: file.to_path_buf(),
            line,
            column,
            message: super::nft::bounded(message),
        }
    }
}

impl fmt::Display for ReadProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// The permanent configuration: what firewalld loads at start and on `--reload`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Permanent {
    /// firewalld.conf.
    pub conf: FirewalldConf,
    /// Zones by name. Combined zones (`etc/firewalld/zones/NAME/*.xml`) are merged into one
    /// zone `NAME`, as firewalld does when it applies them.
    pub zones: BTreeMap<String, Zone>,
    /// Services by name.
    pub services: BTreeMap<String, Service>,
    /// Policies by name (the stock ones included).
    pub policies: BTreeMap<String, policy::Policy>,
    /// ipsets by name.
    pub ipsets: BTreeMap<String, ipset::IpSet>,
    /// `direct.xml`.
    pub direct: direct::Direct,
    /// Files or parts of files that could not be used.
    pub problems: Vec<ReadProblem>,
}

/// The runtime state of a running firewalld, as it answers over D-Bus.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Runtime {
    /// firewalld's `state` property: `RUNNING`, or `FAILED` when it could not load the user
    /// configuration and runs the stock one with everything accepted.
    pub state: String,
    /// The default zone in use.
    pub default_zone: String,
    /// Every zone.
    pub zones: BTreeMap<String, Zone>,
    /// The services the zones use, and the services those include.
    pub services: BTreeMap<String, Service>,
}

/// One part of a zone, for [`Drift`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Element {
    /// The zone itself exists on one side only.
    Zone,
    /// The default zone (`Drift::zone` names it).
    DefaultZone,
    /// An interface binding.
    Interface(String),
    /// A source binding.
    Source(String),
    /// A service.
    Service(String),
    /// A port.
    Port(PortProto),
    /// A whole protocol.
    Protocol(String),
    /// A source port.
    SourcePort(PortProto),
    /// Masquerading on.
    Masquerade,
    /// Intra-zone forwarding on.
    Forward,
    /// A rich rule (canonical text).
    RichRule(String),
    /// An ICMP block.
    IcmpBlock(String),
    /// ICMP block inversion on.
    IcmpBlockInversion,
    /// A port forward (`port=..:proto=..:toport=..:toaddr=..`).
    ForwardPort(String),
    /// The zone's target.
    Target(Target),
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Element::Zone => f.write_str("zone"),
            Element::DefaultZone => f.write_str("default zone"),
            Element::Interface(s) => write!(f, "interface {s}"),
            Element::Source(s) => write!(f, "source {s}"),
            Element::Service(s) => write!(f, "service {s}"),
            Element::Port(p) => write!(f, "port {p}"),
            Element::Protocol(s) => write!(f, "protocol {s}"),
            Element::SourcePort(p) => write!(f, "source port {p}"),
            Element::Masquerade => f.write_str("masquerade"),
            Element::Forward => f.write_str("forward"),
            Element::RichRule(s) => write!(f, "rich rule {s}"),
            Element::IcmpBlock(s) => write!(f, "icmp block {s}"),
            Element::IcmpBlockInversion => f.write_str("icmp block inversion"),
            Element::ForwardPort(s) => write!(f, "forward port {s}"),
            Element::Target(t) => write!(f, "target {t}"),
        }
    }
}

/// One difference between the runtime and the permanent configuration of a zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// The zone.
    pub zone: String,
    /// What differs.
    pub element: Element,
    /// `true`: in the runtime only, so a reload or restart loses it (`firewall-cmd
    /// --add-port=...` without `--permanent`). `false`: in the permanent configuration only,
    /// so it is not in force until a reload (`--permanent` without `--reload`). A target or a
    /// default zone that differs gives two entries, one each way.
    pub runtime_only: bool,
}

/// Where [`Permanent::zone_accepts`] found an accepted port or protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Origin {
    /// The zone's own `<port>`.
    ZonePort,
    /// A port or protocol of this service, listed in the zone.
    Service(String),
    /// A port or protocol of `service`, included (maybe through several levels) by `by`,
    /// the service listed in the zone.
    Included {
        /// The service that defines the port.
        service: String,
        /// The service listed in the zone that (transitively) includes it.
        by: String,
    },
    /// The zone's own `<protocol>` (the whole protocol; the port is empty).
    Protocol,
}
