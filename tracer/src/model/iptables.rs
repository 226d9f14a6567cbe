//! Which iptables the cluster's components program: legacy (xtables, kernel `ip_tables`) or
//! nft (`iptables-nft`, rules in nftables tables named like iptables' own). A firewalld using
//! the other backend than kube-proxy, kube-router or Calico is a known cause of failure.
//!
//! Legacy tables are listed only when /proc/net/ip_tables_names shows they exist: asking
//! `iptables-legacy-save` otherwise would make the kernel load ip_tables modules on the node.

use std::{path::Path, process::Command};

use super::nft::{Family, Ruleset};

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
    pub problems: Vec<String>,
}

impl IptablesState {
    pub fn read(root: &Path, ruleset: Option<&Ruleset>) -> Self {
        let mut st = IptablesState::default();
        let tables = std::fs::read_to_string("/proc/net/ip_tables_names").unwrap_or_default();
        for table in tables.lines().map(str::trim).filter(|t| !t.is_empty()) {
            match Command::new("iptables-legacy-save")
                .args(["-t", table])
                .output()
            {
                Ok(out) if out.status.success() => {
                    let text = String::from_utf8_lossy(&out.stdout);
                    st.legacy_chains.extend(
                        text.lines()
                            .filter_map(|l| l.strip_prefix(':'))
                            .filter_map(|l| l.split_whitespace().next())
                            .filter(|c| is_cluster_chain(c))
                            .map(|c| format!("{table}/{c}")),
                    );
                }
                Ok(out) => st.problems.push(format!(
                    "iptables-legacy-save -t {table}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
                Err(e) => st.problems.push(format!("iptables-legacy-save: {e}")),
            }
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
