//! k0s and k3s configuration on the node: which distribution runs here, its network provider,
//! and its pod and service CIDRs. Files are read below a root directory so tests and the lab
//! can point at their own trees.

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::net::Cidr;

pub const K0S_CONFIG: &str = "etc/k0s/k0s.yaml";
pub const K3S_CONFIG: &str = "etc/rancher/k3s/config.yaml";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    K0s,
    K3s,
}

/// What a distribution's configuration file says about the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    pub distribution: Distribution,
    pub file: PathBuf,
    /// k0s: `kuberouter`, `calico` or `custom`; k3s: the flannel backend.
    pub provider: String,
    pub pod_cidrs: Vec<Cidr>,
    pub service_cidrs: Vec<Cidr>,
    /// The interface cluster traffic uses, when configured (k3s `flannel-iface`).
    pub iface: Option<String>,
}

/// A configuration file that cannot be used. Each names the file, and the line and column when
/// the YAML parser gives them.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The file exists but cannot be read.
    #[error("{}: {error}", file.display())]
    Read {
        file: PathBuf,
        error: std::io::Error,
    },
    /// The file is not YAML.
    #[error("{}:{line}:{column}: {error}", file.display())]
    Yaml {
        file: PathBuf,
        line: usize,
        column: usize,
        error: serde_yaml::Error,
    },
    /// The file is not YAML, at no particular place.
    #[error("{}: {error}", file.display())]
    YamlUnlocated {
        file: PathBuf,
        error: serde_yaml::Error,
    },
    /// A CIDR setting holds something else.
    #[error("{}: {what} {value:?} is not a CIDR", file.display())]
    NotCidr {
        file: PathBuf,
        /// The setting: `podCIDR`, `cluster-cidr`...
        what: &'static str,
        value: String,
    },
}

/// The configuration found below `root`, and what could not be read.
pub fn read(root: &Path) -> (Option<ClusterConfig>, Vec<ClusterError>) {
    let mut problems = Vec::new();
    for (rel, dist) in [
        (K0S_CONFIG, Distribution::K0s),
        (K3S_CONFIG, Distribution::K3s),
    ] {
        let file = root.join(rel);
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => {
                problems.push(ClusterError::Read { file, error });
                continue;
            }
        };
        match parse(dist, &file, &text) {
            Ok(cfg) => return (Some(cfg), problems),
            Err(e) => problems.push(e),
        }
    }
    (None, problems)
}

fn parse(dist: Distribution, file: &Path, text: &str) -> Result<ClusterConfig, ClusterError> {
    let doc: Value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_yaml::from_str(text).map_err(|error| match error.location() {
            Some(l) => ClusterError::Yaml {
                file: file.to_path_buf(),
                line: l.line(),
                column: l.column(),
                error,
            },
            None => ClusterError::YamlUnlocated {
                file: file.to_path_buf(),
                error,
            },
        })?
    };
    let bad = |what: &'static str, value: &str| ClusterError::NotCidr {
        file: file.to_path_buf(),
        what,
        value: value.to_string(),
    };
    let cidrs = |what: &'static str, list: &str| -> Result<Vec<Cidr>, ClusterError> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|_| bad(what, s)))
            .collect()
    };
    let text_at = |path: &[&str]| -> Option<String> {
        let mut v = &doc;
        for key in path {
            v = v.get(*key)?;
        }
        v.as_str().map(str::to_string)
    };
    match dist {
        Distribution::K0s => {
            let net = |k: &str| text_at(&["spec", "network", k]);
            let mut pods = cidrs(
                "podCIDR",
                &net("podCIDR").unwrap_or_else(|| "10.244.0.0/16".into()),
            )?;
            let mut svcs = cidrs(
                "serviceCIDR",
                &net("serviceCIDR").unwrap_or_else(|| "10.96.0.0/12".into()),
            )?;
            if let Some(v6) = text_at(&["spec", "network", "dualStack", "IPv6podCIDR"]) {
                pods.extend(cidrs("IPv6podCIDR", &v6)?);
            }
            if let Some(v6) = text_at(&["spec", "network", "dualStack", "IPv6serviceCIDR"]) {
                svcs.extend(cidrs("IPv6serviceCIDR", &v6)?);
            }
            Ok(ClusterConfig {
                distribution: dist,
                file: file.to_path_buf(),
                provider: net("provider").unwrap_or_else(|| "kuberouter".into()),
                pod_cidrs: pods,
                service_cidrs: svcs,
                iface: None,
            })
        }
        Distribution::K3s => Ok(ClusterConfig {
            distribution: dist,
            file: file.to_path_buf(),
            provider: text_at(&["flannel-backend"]).unwrap_or_else(|| "vxlan".into()),
            pod_cidrs: cidrs(
                "cluster-cidr",
                &text_at(&["cluster-cidr"]).unwrap_or_else(|| "10.42.0.0/16".into()),
            )?,
            service_cidrs: cidrs(
                "service-cidr",
                &text_at(&["service-cidr"]).unwrap_or_else(|| "10.43.0.0/16".into()),
            )?,
            iface: text_at(&["flannel-iface"]),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(rel: &str, text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(rel);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
        dir
    }

    #[test]
    fn k0s_calico_with_dual_stack() {
        let dir = tree(
            K0S_CONFIG,
            "spec:\n  network:\n    provider: calico\n    podCIDR: 10.10.0.0/16\n    dualStack:\n      enabled: true\n      IPv6podCIDR: fd00::/108\n",
        );
        let (cfg, problems) = read(dir.path());
        let cfg = cfg.unwrap();
        assert!(problems.is_empty());
        assert_eq!(cfg.provider, "calico");
        assert_eq!(cfg.pod_cidrs.len(), 2);
        assert_eq!(cfg.service_cidrs[0].to_string(), "10.96.0.0/12");
    }

    #[test]
    fn k3s_defaults_and_backend() {
        let dir = tree(
            K3S_CONFIG,
            "flannel-backend: wireguard-native\ncluster-cidr: 10.42.0.0/16,2001:cafe:42::/56\n",
        );
        let cfg = read(dir.path()).0.unwrap();
        assert_eq!(cfg.distribution, Distribution::K3s);
        assert_eq!(cfg.provider, "wireguard-native");
        assert_eq!(cfg.pod_cidrs.len(), 2);
        assert_eq!(cfg.service_cidrs[0].to_string(), "10.43.0.0/16");
    }

    #[test]
    fn broken_yaml_names_file_and_line() {
        let dir = tree(K0S_CONFIG, "spec:\n  network:\n    provider: [calico\n");
        let (cfg, problems) = read(dir.path());
        assert!(cfg.is_none());
        assert!(
            problems[0].to_string().contains("k0s.yaml:"),
            "{problems:?}"
        );
    }
}
