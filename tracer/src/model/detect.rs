//! Which profile a node runs, guessed from its k0s/k3s configuration and, failing that, from
//! the devices its network provider creates (away from the node: the devices its rules name).
//! The guess comes with the evidence for it.

use std::path::Path;

use super::{
    catalog::DEFAULT_PROFILE,
    cluster::{ClusterConfig, Distribution},
};

/// A profile name and why it was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detected {
    pub profile: &'static str,
    pub reason: String,
}

/// Device names network providers create, and the profile each implies.
const PROVIDER_DEVICES: &[(&str, &str)] = &[
    ("vxlan.calico", "k0s-calico"),
    ("flannel.1", "k3s-flannel"),
    ("flannel-wg", "k3s-wireguard"),
    ("kube-bridge", "k0s-kube-router"),
];

/// The distributions' data directories whose existence says which one runs, each with the
/// profile of its default network provider.
pub const DISTRIBUTION_DIRS: [(&str, &str); 2] = [
    ("var/lib/k0s", "k0s-kube-router"),
    ("var/lib/rancher/k3s", "k3s-flannel"),
];

/// Which of [`DISTRIBUTION_DIRS`] exist below `root`.
pub fn distribution_dirs(root: &Path) -> Vec<&'static str> {
    DISTRIBUTION_DIRS
        .iter()
        .map(|(d, _)| *d)
        .filter(|d| root.join(d).is_dir())
        .collect()
}

/// Detects the profile of the node whose files are below `root`, from its cluster
/// configuration (as `cluster::read(root)` gives it), which of the distributions' directories
/// exist there (`dirs`, from [`distribution_dirs`]) and the names of its devices (`devices`:
/// its interfaces, or the interfaces its rules name, where `cali+` stands for Calico's).
pub fn profile(
    root: &Path,
    dirs: &[&str],
    config: Option<&ClusterConfig>,
    devices: &[String],
) -> Detected {
    if let Some(cfg) = config {
        let profile = match (cfg.distribution, cfg.provider.as_str()) {
            (Distribution::K0s, "calico") => Some("k0s-calico"),
            (Distribution::K0s, "kuberouter") => Some("k0s-kube-router"),
            (Distribution::K3s, "vxlan") => Some("k3s-flannel"),
            (Distribution::K3s, "wireguard-native") => Some("k3s-wireguard"),
            _ => None,
        };
        if let Some(profile) = profile {
            return Detected {
                profile,
                reason: format!("{} sets provider {}", cfg.file.display(), cfg.provider),
            };
        }
    }
    for (dir, profile) in DISTRIBUTION_DIRS {
        if dirs.contains(&dir) {
            return Detected {
                profile,
                reason: format!(
                    "{} exists (the distribution's default provider)",
                    root.join(dir).display()
                ),
            };
        }
    }
    for (device, profile) in PROVIDER_DEVICES {
        if devices.iter().any(|d| d == device) {
            return Detected {
                profile,
                reason: format!("device {device} exists"),
            };
        }
    }
    // Calico names its pods' interfaces cali<hash>; its rules match them as `cali+`.
    if let Some(d) = devices.iter().find(|d| d.starts_with("cali")) {
        return Detected {
            profile: "k0s-calico",
            reason: format!("device {d} (Calico's pod interfaces)"),
        };
    }
    Detected {
        profile: DEFAULT_PROFILE,
        reason: "no k0s or k3s configuration or provider device found".into(),
    }
}

/// The node's roles, from the servers it runs: the API server (6443) makes a controller, the
/// kubelet (10250) a worker; a k3s server runs both.
pub fn roles(listening: &[u16]) -> (Vec<super::catalog::Role>, String) {
    use super::catalog::Role;
    let mut roles = Vec::new();
    let mut why = Vec::new();
    if listening.contains(&6443) {
        roles.push(Role::Controller);
        why.push("the API server listens on 6443");
    }
    if listening.contains(&10250) {
        roles.push(Role::Worker);
        why.push("the kubelet listens on 10250");
    }
    if roles.is_empty() {
        return (
            vec![Role::Worker],
            "assumed: neither 6443 nor 10250 listens here (use --role)".into(),
        );
    }
    (roles, format!("detected: {}", why.join(", ")))
}
