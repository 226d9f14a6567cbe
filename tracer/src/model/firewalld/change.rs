//! Changes to firewalld's configuration as data, and the one renderer that spells them as the
//! commands an operator pastes. The fixes of a diagnosis and `tracer ports --format
//! firewall-cmd` both say what to change with a [`Change`] and print it with a [`Tool`]:
//! `firewall-cmd --permanent` then `firewall-cmd --reload` while firewalld runs, or
//! `firewall-offline-cmd` (whose changes apply when firewalld starts) while it does not.

use std::fmt;

use super::PortProto;

/// What `firewall-cmd --reload` spells: a running firewalld applies its permanent configuration.
pub const RELOAD: &str = "firewall-cmd --reload";
/// Makes a running firewalld's runtime configuration its permanent one.
pub const RUNTIME_TO_PERMANENT: &str = "firewall-cmd --runtime-to-permanent";

/// What a zone or a service lets in: a port or range with its protocol, or a whole IP protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opening {
    /// `--add-port=4789/udp`, `--add-port=2379-2380/tcp`.
    Port(PortProto),
    /// `--add-protocol=vrrp`.
    Protocol(String),
}

impl Opening {
    /// A port spec as the catalog writes it: `8472/udp` or `2379-2380/tcp` is a port, a bare
    /// protocol such as `vrrp` is a whole protocol.
    pub fn from_spec(spec: &str) -> Opening {
        match spec.split_once('/') {
            Some((port, proto)) => Opening::Port(PortProto::new(port, proto)),
            None => Opening::Protocol(spec.to_string()),
        }
    }
}

impl fmt::Display for Opening {
    /// As the catalog writes it: `4789/udp`, `vrrp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Opening::Port(p) => write!(f, "{p}"),
            Opening::Protocol(p) => f.write_str(p),
        }
    }
}

/// What is added to a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneAddition {
    /// A port or a whole protocol.
    Open(Opening),
    /// A source address or network (`--add-source=10.244.0.0/16`).
    Source(String),
    /// An interface binding (`--add-interface=eth1`).
    Interface(String),
    /// A service (`--add-service=k0s-worker`).
    Service(String),
    /// Masquerading of traffic leaving through the zone.
    Masquerade,
    /// Forwarding between the zone's interfaces and sources.
    Forward,
    /// A rich rule, by its text (`--add-rich-rule='rule ...'`).
    RichRule(String),
    /// An ICMP type blocked (with icmp-block-inversion: let in).
    IcmpBlock(String),
    /// A policy's ingress zone (`ANY`, `HOST` or a zone).
    IngressZone(String),
    /// A policy's egress zone.
    EgressZone(String),
}

/// What is removed from a zone or a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// A rich rule, by its exact text (`--remove-rich-rule='rule ...'`).
    RichRule(String),
    /// An ICMP type no longer blocked.
    IcmpBlock(String),
    /// A source binding.
    Source(String),
}

/// Whose configuration a change touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A zone; `None` is firewalld's default zone (no `--zone`).
    Zone(Option<String>),
    /// A policy (`--policy=NAME`).
    Policy(String),
}

/// One change to firewalld's permanent configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Defines a new, empty service.
    NewService(String),
    /// Defines a new policy (target CONTINUE, priority -1).
    NewPolicy(String),
    /// Sets a service's short name.
    SetShort { service: String, short: String },
    /// Sets a service's description.
    SetDescription {
        service: String,
        description: String,
    },
    /// Opens a port or protocol in a service's definition (every zone using the service
    /// accepts it).
    OpenInService { service: String, opening: Opening },
    /// Adds to a zone; `None` is firewalld's default zone (no `--zone`).
    AddToZone {
        zone: Option<String>,
        addition: ZoneAddition,
    },
    /// Adds a port, protocol, rich rule or ICMP block to a policy.
    AddToPolicy {
        policy: String,
        addition: ZoneAddition,
    },
    /// Removes an element from a zone or a policy.
    Remove { scope: Scope, removal: Removal },
    /// Adds a direct rule (`--direct --add-rule IPV TABLE CHAIN PRIORITY ARGS`).
    AddDirectRule {
        ipv: String,
        table: String,
        chain: String,
        priority: i32,
        args: String,
    },
    /// Removes a direct rule (`--direct --remove-rule IPV TABLE CHAIN PRIORITY ARGS`).
    RemoveDirectRule {
        ipv: String,
        table: String,
        chain: String,
        priority: i32,
        args: String,
    },
}

impl Change {
    /// Adds `addition` to zone `zone`.
    pub fn zone(zone: impl Into<String>, addition: ZoneAddition) -> Change {
        Change::AddToZone {
            zone: Some(zone.into()),
            addition,
        }
    }

    /// The command-line arguments, shell-quoted where needed.
    fn args(&self) -> String {
        let q = shell_quote;
        match self {
            Change::NewService(s) => format!("--new-service={}", q(s)),
            Change::NewPolicy(p) => format!("--new-policy={}", q(p)),
            Change::SetShort { service, short } => {
                format!("--service={} --set-short={}", q(service), q(short))
            }
            Change::SetDescription {
                service,
                description,
            } => format!(
                "--service={} --set-description={}",
                q(service),
                q(description)
            ),
            Change::OpenInService { service, opening } => {
                format!("--service={} {}", q(service), open_arg(opening))
            }
            Change::AddToZone { zone, addition } => {
                let add = addition_arg(addition);
                match zone {
                    Some(z) => format!("--zone={} {add}", q(z)),
                    None => add,
                }
            }
            Change::AddToPolicy { policy, addition } => {
                format!("--policy={} {}", q(policy), addition_arg(addition))
            }
            Change::Remove { scope, removal } => {
                let what = match removal {
                    Removal::RichRule(r) => format!("--remove-rich-rule={}", q(r)),
                    Removal::IcmpBlock(i) => format!("--remove-icmp-block={}", q(i)),
                    Removal::Source(s) => format!("--remove-source={}", q(s)),
                };
                match scope {
                    Scope::Zone(Some(z)) => format!("--zone={} {what}", q(z)),
                    Scope::Zone(None) => what,
                    Scope::Policy(p) => format!("--policy={} {what}", q(p)),
                }
            }
            Change::AddDirectRule {
                ipv,
                table,
                chain,
                priority,
                args,
            } => format!("--direct --add-rule {ipv} {table} {chain} {priority} {args}"),
            Change::RemoveDirectRule {
                ipv,
                table,
                chain,
                priority,
                args,
            } => format!("--direct --remove-rule {ipv} {table} {chain} {priority} {args}"),
        }
    }
}

fn addition_arg(addition: &ZoneAddition) -> String {
    let q = shell_quote;
    match addition {
        ZoneAddition::Open(o) => open_arg(o),
        ZoneAddition::Source(s) => format!("--add-source={}", q(s)),
        ZoneAddition::Interface(i) => format!("--add-interface={}", q(i)),
        ZoneAddition::Service(s) => format!("--add-service={}", q(s)),
        ZoneAddition::Masquerade => "--add-masquerade".to_string(),
        ZoneAddition::Forward => "--add-forward".to_string(),
        ZoneAddition::RichRule(r) => format!("--add-rich-rule={}", q(r)),
        ZoneAddition::IcmpBlock(i) => format!("--add-icmp-block={}", q(i)),
        ZoneAddition::IngressZone(z) => format!("--add-ingress-zone={}", q(z)),
        ZoneAddition::EgressZone(z) => format!("--add-egress-zone={}", q(z)),
    }
}

fn open_arg(o: &Opening) -> String {
    match o {
        Opening::Port(_) => format!("--add-port={}", shell_quote(&o.to_string())),
        Opening::Protocol(p) => format!("--add-protocol={}", shell_quote(p)),
    }
}

/// How changes reach firewalld's configuration on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// firewalld runs: `firewall-cmd --permanent`, then a reload applies the changes.
    Online,
    /// firewalld does not run: `firewall-offline-cmd` changes the files, which apply when
    /// firewalld starts.
    Offline,
    /// firewalld runs beside rules of others in iptables' tables (kube-proxy, a CNI): each
    /// change is made in the runtime and in the permanent configuration, without a reload,
    /// because firewalld 1.x flushes every iptables table when it reloads. A change the
    /// runtime does not take (a new policy) still needs the reload: iptables' tables are
    /// saved before it and restored after it.
    Live,
}

/// What a reload costs beside rules of others in iptables' tables, and how [`Tool::Live`]
/// keeps them: saved before the reload, restored after it.
pub const RELOAD_FLUSHES: &str = "# firewalld 1.x flushes iptables' tables on a reload: the rules kube-proxy or the CNI wrote there are saved before it and restored after it";
const SAVE: [&str; 2] = [
    "iptables-nft-save > /run/tracer-reload.iptables",
    "ip6tables-nft-save > /run/tracer-reload.ip6tables",
];
const RESTORE: [&str; 2] = [
    "iptables-nft-restore < /run/tracer-reload.iptables",
    "ip6tables-nft-restore < /run/tracer-reload.ip6tables",
];

impl Change {
    /// Whether `firewall-cmd` without `--permanent` makes this change in the running firewalld.
    fn in_runtime(&self) -> bool {
        matches!(
            self,
            Change::AddToZone { .. }
                | Change::AddToPolicy { .. }
                | Change::Remove { .. }
                | Change::AddDirectRule { .. }
                | Change::RemoveDirectRule { .. }
        )
    }
}

impl Tool {
    /// The command that makes one change in the configuration the tool changes (for
    /// [`Tool::Live`], the permanent one).
    pub fn command(self, change: &Change) -> String {
        let tool = match self {
            Tool::Online | Tool::Live => "firewall-cmd --permanent",
            Tool::Offline => "firewall-offline-cmd",
        };
        format!("{tool} {}", change.args())
    }

    /// What applies the changes made: a reload while firewalld runs, nothing otherwise.
    pub fn apply(self) -> Option<&'static str> {
        match self {
            Tool::Online => Some(RELOAD),
            Tool::Offline | Tool::Live => None,
        }
    }

    /// What applies the permanent configuration to a running firewalld as it is: a reload
    /// (for [`Tool::Live`], around which iptables' tables are saved and restored).
    pub fn reload(self) -> Vec<String> {
        match self {
            Tool::Live => std::iter::once(RELOAD_FLUSHES)
                .chain(SAVE)
                .chain([RELOAD])
                .chain(RESTORE)
                .map(ToString::to_string)
                .collect(),
            _ => vec![RELOAD.to_string()],
        }
    }

    /// The commands that make `changes`, then what applies them.
    pub fn commands(self, changes: &[Change]) -> Vec<String> {
        if self != Tool::Live {
            return changes
                .iter()
                .map(|c| self.command(c))
                .chain(self.apply().map(str::to_string))
                .collect();
        }
        // A policy created here exists only in the permanent configuration until a reload.
        let new_policies: Vec<&String> = changes
            .iter()
            .filter_map(|c| match c {
                Change::NewPolicy(p) => Some(p),
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        let mut reload = false;
        for c in changes {
            let fresh =
                matches!(c, Change::AddToPolicy { policy, .. } if new_policies.contains(&policy));
            if c.in_runtime() && !fresh {
                out.push(format!("firewall-cmd {}", c.args()));
            } else {
                reload = true;
            }
            out.push(self.command(c));
        }
        if reload {
            out.extend(self.reload());
        }
        out
    }
}

/// `s` as one shell word: unchanged when it holds only letters, digits and `-_./:=+,`, else in
/// single quotes.
pub fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_alphanumeric() || "-_./:=+,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_render_as_firewall_cmd_spells_them() {
        let online = Tool::Online.commands(&[
            Change::OpenInService {
                service: "k0s-worker".into(),
                opening: Opening::from_spec("4789/udp"),
            },
            Change::zone("public", ZoneAddition::Source("10.244.0.0/16".into())),
            Change::zone("public", ZoneAddition::Open(Opening::from_spec("vrrp"))),
            Change::AddToZone {
                zone: None,
                addition: ZoneAddition::Masquerade,
            },
            Change::SetDescription {
                service: "k0s-worker".into(),
                description: "k0s (worker node)".into(),
            },
        ]);
        assert_eq!(
            online,
            [
                "firewall-cmd --permanent --service=k0s-worker --add-port=4789/udp",
                "firewall-cmd --permanent --zone=public --add-source=10.244.0.0/16",
                "firewall-cmd --permanent --zone=public --add-protocol=vrrp",
                "firewall-cmd --permanent --add-masquerade",
                "firewall-cmd --permanent --service=k0s-worker --set-description='k0s (worker node)'",
                "firewall-cmd --reload",
            ]
        );
        let offline = Tool::Offline.commands(&[Change::zone("trusted", ZoneAddition::Forward)]);
        assert_eq!(
            offline,
            ["firewall-offline-cmd --zone=trusted --add-forward"]
        );
    }

    #[test]
    fn live_changes_skip_the_reload_that_flushes_iptables() {
        let rule =
            r#"rule family="ipv4" source address="10.0.0.5" port port="179" protocol="tcp" reject"#;
        let remove = Change::Remove {
            scope: Scope::Zone(Some("public".into())),
            removal: Removal::RichRule(rule.into()),
        };
        assert_eq!(
            Tool::Live.commands(std::slice::from_ref(&remove)),
            [
                format!("firewall-cmd --zone=public --remove-rich-rule='{rule}'"),
                format!("firewall-cmd --permanent --zone=public --remove-rich-rule='{rule}'"),
            ]
        );
        // A new policy exists only after a reload, and the commands say what it costs.
        let policy = [
            Change::NewPolicy("p".into()),
            Change::AddToPolicy {
                policy: "p".into(),
                addition: ZoneAddition::IngressZone("ANY".into()),
            },
        ];
        let cmds = Tool::Live.commands(&policy);
        let at = |c: &str| cmds.iter().position(|x| x == c);
        assert!(
            at(SAVE[0]) < at(RELOAD) && at(RELOAD) < at(RESTORE[0]),
            "{cmds:?}"
        );
        assert!(cmds.contains(&RELOAD_FLUSHES.to_string()), "{cmds:?}");
        assert!(
            !cmds.iter().any(|c| c.starts_with("firewall-cmd --policy")),
            "{cmds:?}"
        );
    }

    #[test]
    fn specs_are_ports_or_whole_protocols() {
        assert_eq!(
            Opening::from_spec("2379-2380/tcp"),
            Opening::Port(PortProto::new("2379-2380", "tcp"))
        );
        assert_eq!(Opening::from_spec("vrrp"), Opening::Protocol("vrrp".into()));
        assert_eq!(Opening::from_spec("8472/udp").to_string(), "8472/udp");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
