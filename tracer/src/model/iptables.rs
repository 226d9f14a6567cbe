//! Which iptables the cluster's components program: legacy (xtables, kernel `ip_tables`) or
//! nft (`iptables-nft`, rules in nftables tables named like iptables' own). A firewalld using
//! the other backend than kube-proxy, kube-router or Calico is a known cause of failure.
//!
//! The legacy tables come from [`super::legacy::LegacySaves`], read only when the kernel
//! already has them.

use std::path::Path;

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

#[derive(Clone, Debug, Default)]
pub struct IptablesState {
    /// Cluster chains found in legacy iptables.
    pub legacy_chains: Vec<String>,
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
    pub problems: Vec<String>,
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
    pub fn read(root: &Path, ruleset: Option<&Ruleset>, legacy: &LegacySaves) -> Self {
        let mut st = IptablesState::default();
        st.legacy_chains
            .extend(legacy.chains().into_iter().filter(|c| {
                c.split_once('/')
                    .is_some_and(|(_, name)| is_cluster_chain(name))
            }));
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
        st.legacy_active = legacy.active_chains();
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
        st.k0s_link = std::fs::read_link(root.join("var/lib/k0s/bin/iptables"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
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
    use super::is_cluster_chain;

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
