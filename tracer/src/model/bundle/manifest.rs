//! The manifest of a support bundle (`manifest.json`, the archive's first file): which tracer
//! made it, on which kernel and node root, and for every item what was collected into which
//! files, what does not exist on the node, and what could not be collected and why.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `format` of every manifest.
pub const FORMAT: &str = "tracer-bundle";
/// The version this tracer writes and reads.
pub const VERSION: u32 = 1;

/// `manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// When it was taken, RFC 3339 UTC.
    pub created_at: String,
    /// The tracer that took it.
    pub tracer_version: String,
    /// The node's kernel release (`uname -r`).
    pub kernel: String,
    /// The node's host name.
    pub hostname: String,
    /// Where the node's configuration files are (`/`, or `TRACER_NODE_ROOT`): the files below
    /// `root/` in the bundle are named below it in findings and fixes.
    pub node_root: PathBuf,
    /// Every item, collected or not.
    pub items: Vec<Item>,
}

/// What became of one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// In the bundle, in `files`.
    Collected,
    /// Does not exist on the node (no firewalld, no legacy tables...): known to be absent.
    Absent,
    /// Could not be collected: unknown, `detail` says why.
    Failed,
}

/// One item of the bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Its name, one of [`items`](super::items).
    pub name: String,
    /// What it is, in words.
    pub what: String,
    /// The command or source it was read with.
    pub source: String,
    pub status: Status,
    /// The files (or directories) holding it, relative to the bundle's top directory.
    #[serde(default)]
    pub files: Vec<String>,
    /// Why it is absent or failed; what was redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Manifest {
    /// The item of that name.
    pub fn item(&self, name: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.name == name)
    }
}
