//! Choosing the catalog a command works with: the profile given or detected, plus the user's
//! catalog files. A catalog file named on the command line is a required input: one that
//! cannot be read or is invalid stops the command with its name and position, before anything
//! is attached or printed (firewall commands printed without the application's ports would
//! build a firewall that drops them).

use std::path::PathBuf;

use anyhow::Result;

use crate::model::{
    catalog::{Catalog, DEFAULT_PROFILE, Role},
    cluster,
    detect::{self, Detected},
    ifaces,
};

/// The roles named with `--role`, in the order given; the first unknown name is an error.
pub fn parse_roles(names: &[String]) -> Result<Vec<Role>> {
    names
        .iter()
        .map(|r| r.parse::<Role>().map_err(anyhow::Error::new))
        .collect()
}

/// The catalog and a few words on why this profile.
pub struct Chosen {
    pub catalog: Catalog,
    pub reason: String,
}

/// The profile given, else the one detected on the node (below the node root, with the
/// namespace's interfaces), with the user's catalog files.
pub fn choose(profile: Option<&str>, files: &[PathBuf]) -> Result<Chosen> {
    choose_with(profile, files, || {
        let root = super::node_root();
        let (config, _) = cluster::read(&root);
        let devices: Vec<String> = ifaces::list()
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.name)
            .collect();
        let dirs = detect::distribution_dirs(&root);
        detect::profile(&root, &dirs, config.as_ref(), &devices)
    })
}

/// [`choose`], with `detect` telling the profile when none is given: for a command that has
/// already read the node (and may have read it below another root).
pub fn choose_with(
    profile: Option<&str>,
    files: &[PathBuf],
    detect: impl FnOnce() -> Detected,
) -> Result<Chosen> {
    let (name, reason) = if let Some(p) = profile {
        (p.to_string(), "given with --profile".to_string())
    } else {
        let d = detect();
        let reason = if d.profile == DEFAULT_PROFILE {
            format!("default: {}", d.reason)
        } else {
            format!("detected: {}", d.reason)
        };
        (d.profile.to_string(), reason)
    };
    let mut catalog = Catalog::builtin(&name)?;
    for file in files {
        let n = catalog.add_file(file)?;
        log::info!("{}: {n} components added", file.display());
    }
    Ok(Chosen { catalog, reason })
}
