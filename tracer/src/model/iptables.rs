//! Which iptables the cluster's components program: legacy (xtables, kernel `ip_tables`) or
//! nft (`iptables-nft`, rules in nftables tables named like iptables' own). A firewalld using
//! the other backend than kube-proxy, kube-router or Calico is a known cause of failure.
//!
//! The legacy tables come from [`super::legacy::LegacySaves`], read only when the kernel
//! already has them.

use std::{path::Path, process::Command};

use super::{
    legacy::LegacySaves,
    nft::{Family, Ruleset},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Legacy,
    Nft,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Legacy => "legacy",
            Mode::Nft => "nft",
        }
    }
}

/// Chains the cluster's components create (kube-router's `KUBE-ROUTER-...` are among `KUBE-`).
const CLUSTER_CHAIN_PREFIXES: &[&str] = &["KUBE-", "CALI-", "FLANNEL-", "cali-"];

fn is_cluster_chain(name: &str) -> bool {
    CLUSTER_CHAIN_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The legacy iptables listings of a node: `iptables-legacy-save -t TABLE` of every table
/// /proc/net/ip_tables_names lists, and the same for IPv6 (empty when no table exists).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LegacyListings {
    pub v4: String,
    pub v6: String,
}

impl LegacyListings {
    /// Lists the legacy tables that exist in the current network namespace; what could not be
    /// listed is a problem line each.
    pub fn read() -> (LegacyListings, Vec<String>) {
        let mut problems = Vec::new();
        let mut one = |names: &str, command: &str| {
            let tables = std::fs::read_to_string(names).unwrap_or_default();
            let mut text = String::new();
            for table in tables.lines().map(str::trim).filter(|t| !t.is_empty()) {
                match Command::new(command).args(["-t", table]).output() {
                    Ok(out) if out.status.success() => {
                        text.push_str(&String::from_utf8_lossy(&out.stdout));
                    }
                    Ok(out) => problems.push(format!(
                        "{command} -t {table}: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    )),
                    Err(e) => problems.push(format!("{command}: {e}")),
                }
            }
            text
        };
        let v4 = one("/proc/net/ip_tables_names", "iptables-legacy-save");
        let v6 = one("/proc/net/ip6_tables_names", "ip6tables-legacy-save");
        (LegacyListings { v4, v6 }, problems)
    }
}

/// What k0s's bundled iptables (`ROOT/var/lib/k0s/bin/iptables`) links to, if it is a link.
pub fn k0s_link(root: &Path) -> Option<String> {
    std::fs::read_link(root.join(K0S_IPTABLES))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Where k0s keeps the iptables its components run, below the node's root.
pub const K0S_IPTABLES: &str = "var/lib/k0s/bin/iptables";

/// The cluster chains of an `iptables-save` style listing, as `TABLE/CHAIN` (`PREFIX` before
/// each, for IPv6).
fn cluster_chains(listing: &str, prefix: &str) -> Vec<String> {
    let mut table = "";
    let mut out = Vec::new();
    for line in listing.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim();
        } else if let Some(c) = line
            .strip_prefix(':')
            .and_then(|l| l.split_whitespace().next())
            .filter(|c| is_cluster_chain(c))
        {
            out.push(format!("{prefix}{table}/{c}"));
        }
    }
    out
}

#[derive(Clone, Debug, Default)]
pub struct IptablesState {
    /// Cluster chains found in legacy iptables.
    pub legacy_chains: Vec<String>,
    /// Whether the legacy tables were read (away from the node they may be unknown: then
    /// `legacy_chains` is empty for want of evidence).
    pub legacy_known: bool,
    /// Cluster chains found in iptables-nft tables of the nftables ruleset.
    pub nft_chains: Vec<String>,
    /// What k0s's bundled iptables points at (xtables-legacy-multi or xtables-nft-multi).
    pub k0s_link: Option<String>,
    /// Legacy chains that can refuse a packet (a rule, or a policy other than ACCEPT), with
    /// who programs them: `filter/INPUT (2 rules)`, `filter/KUBE-FORWARD (kube-proxy...)`.
    pub legacy_active: Vec<String>,
    /// nftables tables with who owns them: `inet firewalld (firewalld)`, `ip filter
    /// (iptables-nft: kube-proxy...)`.
    pub nft_tables: Vec<String>,
}

/// Who programs a chain, by the prefix its name carries.
fn owner(chain: &str) -> Option<&'static str> {
    [
        ("KUBE-ROUTER", "kube-router"),
        ("KUBE-", "kube-proxy or kube-router"),
        ("CALI-", "Calico"),
        ("cali-", "Calico"),
        ("FLANNEL", "flannel"),
        ("DOCKER", "Docker"),
        ("f2b-", "fail2ban"),
    ]
    .iter()
    .find(|(prefix, _)| chain.starts_with(prefix))
    .map(|(_, who)| *who)
}

/// The owners named by a table's chains, deduplicated, as `: a, b` (empty without any).
fn owners<'a>(chains: impl Iterator<Item = &'a str>) -> String {
    let mut found: Vec<&str> = chains.filter_map(owner).collect();
    found.sort_unstable();
    found.dedup();
    if found.is_empty() {
        String::new()
    } else {
        format!(": {}", found.join(", "))
    }
}

impl IptablesState {
    /// The state from the legacy listings (`None`: unknown), the nftables ruleset and k0s's
    /// iptables link.
    pub fn new(
        legacy: Option<&LegacyListings>,
        ruleset: Option<&Ruleset>,
        k0s_link: Option<String>,
    ) -> Self {
        let mut st = IptablesState {
            legacy_known: legacy.is_some(),
            k0s_link,
            ..IptablesState::default()
        };
        if let Some(l) = legacy {
            st.legacy_chains = cluster_chains(&l.v4, "");
            st.legacy_chains.extend(cluster_chains(&l.v6, "ip6 "));
        }
        if let Some(rs) = ruleset {
            for t in rs
                .tables
                .iter()
                .filter(|t| matches!(t.family, Family::Ip | Family::Ip6))
            {
                st.nft_chains.extend(
                    t.chains
                        .iter()
                        .filter(|c| is_cluster_chain(&c.name))
                        .map(|c| format!("{}/{}", t.name, c.name)),
                );
            }
        }
        if let Some(l) = legacy {
            st.legacy_active = LegacySaves::from(l).active_chains();
        }
        if let Some(rs) = ruleset {
            for t in rs
                .tables
                .iter()
                .filter(|t| t.backend == super::nft::Backend::Nftables)
            {
                let kind = if t.name == "firewalld" {
                    "firewalld".to_string()
                } else if matches!(t.family, Family::Ip | Family::Ip6)
                    && ["filter", "nat", "mangle", "raw", "security"].contains(&t.name.as_str())
                {
                    format!(
                        "iptables-nft{}",
                        owners(t.chains.iter().map(|c| c.name.as_str()))
                    )
                } else {
                    format!("nft{}", owners(t.chains.iter().map(|c| c.name.as_str())))
                };
                st.nft_tables
                    .push(format!("{} {} ({kind})", t.family, t.name));
            }
        }
        st
    }

    /// The mode the cluster uses, with the evidence; `None` when nothing shows it.
    pub fn cluster_mode(&self) -> Option<(Mode, String)> {
        if let Some(link) = &self.k0s_link {
            if link.contains("legacy") {
                return Some((Mode::Legacy, format!("k0s's iptables links to {link}")));
            }
            if link.contains("nft") {
                return Some((Mode::Nft, format!("k0s's iptables links to {link}")));
            }
        }
        match (self.legacy_chains.first(), self.nft_chains.first()) {
            (Some(l), None) => Some((
                Mode::Legacy,
                format!("cluster chains in legacy iptables ({l}...)"),
            )),
            (None, Some(n)) => Some((
                Mode::Nft,
                format!("cluster chains in iptables-nft tables ({n}...)"),
            )),
            _ => None,
        }
    }

    /// Both modes hold cluster chains: components disagree among themselves.
    pub fn split(&self) -> bool {
        !self.legacy_chains.is_empty() && !self.nft_chains.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::{cluster_chains, is_cluster_chain};

    #[test]
    fn cluster_chains_of_a_listing() {
        let listing = "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\nCOMMIT\n*filter\n:KUBE-ROUTER-INPUT - [0:0]\nCOMMIT\n";
        assert_eq!(
            cluster_chains(listing, ""),
            ["nat/KUBE-SERVICES", "filter/KUBE-ROUTER-INPUT"]
        );
    }

    #[test]
    fn cluster_chains_by_prefix() {
        for c in [
            "KUBE-SERVICES",
            "KUBE-ROUTER-INPUT",
            "CALI-INPUT",
            "cali-fw-abc",
            "FLANNEL-FWD",
        ] {
            assert!(is_cluster_chain(c), "{c}");
        }
        for c in ["INPUT", "DOCKER", "kube-services", "f2b-sshd"] {
            assert!(!is_cluster_chain(c), "{c}");
        }
    }
}
