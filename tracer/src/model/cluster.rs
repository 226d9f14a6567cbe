//! k0s and k3s configuration on the node: which distribution runs here, its network provider,
//! and its pod and service CIDRs. Files are read below a root directory so tests and the lab
//! can point at their own trees.

use std::path::{Path, PathBuf};

use serde::Deserialize;

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
/// the YAML parser gives them: a value of the wrong type or a CIDR that is not one is refused
/// where it stands, never replaced by the default without a word.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The file exists but cannot be read.
    #[error("{}: {error}", file.display())]
    Read {
        file: PathBuf,
        error: std::io::Error,
    },
    /// The file is not YAML, or a setting the tracer reads holds the wrong kind of value.
    #[error("{}:{line}:{column}: {message}", file.display())]
    Yaml {
        file: PathBuf,
        line: usize,
        column: usize,
        /// serde_yaml's message, without the position it also appends.
        message: String,
    },
    /// The same, at no particular place.
    #[error("{}: {message}", file.display())]
    YamlUnlocated { file: PathBuf, message: String },
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

/// CIDRs as the distributions write them: one string, comma-separated, or a list of strings
/// (k3s takes repeatable flags as YAML lists). A prefix that does not parse is refused with
/// the YAML position of its value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Cidrs(Vec<Cidr>);

impl<'de> Deserialize<'de> for Cidrs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            One(String),
            Many(Vec<String>),
        }
        let written = Written::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a CIDR, a comma-separated list or a list of CIDRs")
        })?;
        let items = match written {
            Written::One(s) => vec![s],
            Written::Many(v) => v,
        };
        let mut out = Vec::new();
        for item in &items {
            for s in item.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                out.push(
                    s.parse().map_err(|_| {
                        serde::de::Error::custom(format_args!("{s:?} is not a CIDR"))
                    })?,
                );
            }
        }
        Ok(Cidrs(out))
    }
}

/// What the tracer reads of k0s's ClusterConfig (`spec.network`); everything else is k0s's.
#[derive(Default, Deserialize)]
#[serde(default)]
struct K0sFile {
    spec: K0sSpec,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct K0sSpec {
    network: K0sNetwork,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct K0sNetwork {
    provider: Option<String>,
    #[serde(rename = "podCIDR")]
    pod_cidr: Option<Cidrs>,
    #[serde(rename = "serviceCIDR")]
    service_cidr: Option<Cidrs>,
    dual_stack: K0sDualStack,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct K0sDualStack {
    #[serde(rename = "IPv6podCIDR")]
    pod_cidr: Option<Cidrs>,
    #[serde(rename = "IPv6serviceCIDR")]
    service_cidr: Option<Cidrs>,
}

/// What the tracer reads of k3s's config.yaml (its command-line flags as keys).
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct K3sFile {
    flannel_backend: Option<String>,
    cluster_cidr: Option<Cidrs>,
    service_cidr: Option<Cidrs>,
    flannel_iface: Option<String>,
}

pub(crate) fn parse(
    dist: Distribution,
    file: &Path,
    text: &str,
) -> Result<ClusterConfig, ClusterError> {
    let located = |error: serde_yaml::Error| match error.location() {
        Some(l) => {
            let text = error.to_string();
            let suffix = format!(" at line {} column {}", l.line(), l.column());
            ClusterError::Yaml {
                file: file.to_path_buf(),
                line: l.line(),
                column: l.column(),
                message: super::nft::bounded(
                    text.strip_suffix(&suffix).unwrap_or(&text).to_string(),
                ),
            }
        }
        None => ClusterError::YamlUnlocated {
            file: file.to_path_buf(),
            message: super::nft::bounded(error.to_string()),
        },
    };
    // An empty file holds no settings: the distribution's defaults apply.
    let empty = text.trim().is_empty();
    let or = |c: Option<Cidrs>, default: &str| {
        c.map_or_else(|| vec![default.parse().expect("a default CIDR")], |c| c.0)
    };
    Ok(match dist {
        Distribution::K0s => {
            let f: K0sFile = if empty {
                K0sFile::default()
            } else {
                serde_yaml::from_str(text).map_err(located)?
            };
            let net = f.spec.network;
            let mut pod_cidrs = or(net.pod_cidr, "10.244.0.0/16");
            let mut service_cidrs = or(net.service_cidr, "10.96.0.0/12");
            pod_cidrs.extend(net.dual_stack.pod_cidr.map(|c| c.0).unwrap_or_default());
            service_cidrs.extend(net.dual_stack.service_cidr.map(|c| c.0).unwrap_or_default());
            ClusterConfig {
                distribution: dist,
                file: file.to_path_buf(),
                provider: net.provider.unwrap_or_else(|| "kuberouter".into()),
                pod_cidrs,
                service_cidrs,
                iface: None,
            }
        }
        Distribution::K3s => {
            let f: K3sFile = if empty {
                K3sFile::default()
            } else {
                serde_yaml::from_str(text).map_err(located)?
            };
            ClusterConfig {
                distribution: dist,
                file: file.to_path_buf(),
                provider: f.flannel_backend.unwrap_or_else(|| "vxlan".into()),
                pod_cidrs: or(f.cluster_cidr, "10.42.0.0/16"),
                service_cidrs: or(f.service_cidr, "10.43.0.0/16"),
                iface: f.flannel_iface,
            }
        }
    })
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

    /// A value of the wrong type is refused at its line and column, not replaced by the
    /// default without a word; so is a CIDR that is not one.
    #[test]
    fn wrong_types_and_bad_cidrs_are_named_where_they_stand() {
        for (rel, text, place, says) in [
            (
                K0S_CONFIG,
                "spec:\n  network:\n    podCIDR: 42\n",
                "k0s.yaml:3:",
                "expected a CIDR",
            ),
            (
                K0S_CONFIG,
                "spec:\n  network:\n    provider: [calico]\n",
                "k0s.yaml:3:",
                "provider",
            ),
            (
                K0S_CONFIG,
                "spec:\n  network:\n    serviceCIDR: 10.96.0.0/33\n",
                "k0s.yaml:3:",
                "\"10.96.0.0/33\" is not a CIDR",
            ),
            (
                K0S_CONFIG,
                "spec:\n  network: calico\n",
                "k0s.yaml:2:",
                "network",
            ),
            (
                K3S_CONFIG,
                "cluster-cidr: 10.42.0.0/16,10.42.0.0/99\n",
                "config.yaml:1:",
                "\"10.42.0.0/99\" is not a CIDR",
            ),
            (
                K3S_CONFIG,
                "flannel-backend:\n  - vxlan\n",
                "config.yaml:",
                "flannel-backend",
            ),
        ] {
            let dir = tree(rel, text);
            let (cfg, problems) = read(dir.path());
            assert!(cfg.is_none(), "{text}");
            let message = problems[0].to_string();
            assert!(
                message.contains(place) && message.contains(says),
                "{text}: {message}"
            );
        }
        // A list of CIDRs, as k3s takes repeatable flags.
        let dir = tree(
            K3S_CONFIG,
            "cluster-cidr:\n  - 10.42.0.0/16\n  - 2001:cafe:42::/56\n",
        );
        assert_eq!(read(dir.path()).0.unwrap().pod_cidrs.len(), 2);
    }
}
