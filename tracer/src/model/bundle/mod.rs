//! The support bundle: everything `diagnose` reads on a node, in one `tar.gz` that
//! `diagnose --bundle` reads anywhere ([`write`] takes one, [`Bundle::open`] reads one, archive
//! or unpacked directory). Its top directory `tracer-bundle/` holds:
//!
//! | file | what |
//! |---|---|
//! | `manifest.json` | [`Manifest`]: tracer version, kernel, node root, every item's status |
//! | `facts.json` | the node's facts ([`NodeFacts`]): interfaces, addresses, VXLAN devices, default route, sysctls, listening ports |
//! | `firewalld-runtime.json` | firewalld's runtime state over D-Bus ([`RuntimeRecord`]) |
//! | `nft-ruleset.json` | `nft -j list ruleset` |
//! | `iptables-nft-save.txt`, `ip6tables-nft-save.txt`, `ipset-save.txt` | the listings that explain iptables-nft's rules |
//! | `iptables-legacy-save.txt`, `ip6tables-legacy-save.txt` | the legacy tables that exist |
//! | `k0s-iptables-link.txt` | what k0s's iptables links to |
//! | `root/...` | firewalld's files, the cluster configuration (secrets redacted), the distributions' directories |
//! | `commands/*.txt` | `ip -d link`, `ip addr`, `ip route` as text, for people (and `--evidence`) |
//! | `watch.jsonl` | with `--watch`: `tracer watch --output json` over that time |
//!
//! Reading a bundle reads nothing of the machine doing it: what the bundle lacks is unknown.

mod manifest;
mod redact;
mod write;

use std::{
    fs,
    io::Read,
    path::{Component, Path, PathBuf},
};

use serde::{Deserialize, Serialize};

pub use manifest::{Item, Manifest, Status};
pub use redact::redact;
pub use write::{Written, write};

use super::{
    capture::{Capture, Listing, SavedListings},
    firewalld::Runtime,
    iptables::LegacyListings,
    node::NodeFacts,
};

/// The archive's top directory.
pub const TOP: &str = "tracer-bundle";

/// The items of a bundle: (name, file).
pub mod items {
    pub const FACTS: (&str, &str) = ("facts", "facts.json");
    pub const RUNTIME: (&str, &str) = ("firewalld-runtime", "firewalld-runtime.json");
    pub const NFT: (&str, &str) = ("nft-ruleset", "nft-ruleset.json");
    pub const IPTABLES_NFT: (&str, &str) = ("iptables-nft-save", "iptables-nft-save.txt");
    pub const IP6TABLES_NFT: (&str, &str) = ("ip6tables-nft-save", "ip6tables-nft-save.txt");
    pub const IPSET: (&str, &str) = ("ipset-save", "ipset-save.txt");
    pub const IPTABLES_LEGACY: (&str, &str) = ("iptables-legacy-save", "iptables-legacy-save.txt");
    pub const IP6TABLES_LEGACY: (&str, &str) =
        ("ip6tables-legacy-save", "ip6tables-legacy-save.txt");
    pub const K0S_LINK: (&str, &str) = ("k0s-iptables-link", "k0s-iptables-link.txt");
    pub const FIREWALLD: &str = "firewalld-files";
    pub const CLUSTER: &str = "cluster-config";
    pub const DIRS: &str = "distribution-dirs";
    pub const COMMANDS: &str = "commands";
    pub const WATCH: (&str, &str) = ("watch", "watch.jsonl");
    /// Where the node's files go.
    pub const ROOT: &str = "root";
}

/// `firewalld-runtime.json`: whether firewalld ran, and its state when it did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeRecord {
    pub running: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
}

/// Why a bundle cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a tracer bundle (no {TOP}/manifest.json)", .0.display())]
    NoManifest(PathBuf),
    #[error("{}: {message}", path.display())]
    Manifest { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Archive { path: PathBuf, message: String },
}

/// Limits against an archive that unpacks to far more than a node's files.
const MAX_BYTES: u64 = 1 << 30;
const MAX_ENTRIES: usize = 200_000;

/// An opened bundle: its unpacked directory and manifest.
pub struct Bundle {
    /// The directory holding `manifest.json`.
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// What `open` named it, for messages.
    pub name: String,
    /// Holds an unpacked archive while the bundle is read.
    _unpacked: Option<tempfile::TempDir>,
}

impl Bundle {
    /// Opens an archive made by `tracer bundle`, or the directory it unpacks to (or the one
    /// holding that).
    pub fn open(path: &Path) -> Result<Bundle, BundleError> {
        let io = |source| BundleError::Io {
            path: path.to_path_buf(),
            source,
        };
        let (dir, unpacked) = if fs::metadata(path).map_err(io)?.is_dir() {
            let dir = if path.join("manifest.json").is_file() {
                path.to_path_buf()
            } else {
                path.join(TOP)
            };
            (dir, None)
        } else {
            let temp = tempfile::Builder::new()
                .prefix("tracer-bundle-")
                .tempdir()
                .map_err(io)?;
            unpack(path, temp.path())?;
            (temp.path().join(TOP), Some(temp))
        };
        let file = dir.join("manifest.json");
        if !file.is_file() {
            return Err(BundleError::NoManifest(path.to_path_buf()));
        }
        let text = fs::read_to_string(&file).map_err(|source| BundleError::Io {
            path: file.clone(),
            source,
        })?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| BundleError::Manifest {
                path: file.clone(),
                message: super::nft::bounded(e.to_string()),
            })?;
        if manifest.format != manifest::FORMAT || manifest.version != manifest::VERSION {
            return Err(BundleError::Manifest {
                path: file,
                message: super::nft::bounded(format!(
                    "format {:?} version {}: this tracer reads {} version {}",
                    manifest.format,
                    manifest.version,
                    manifest::FORMAT,
                    manifest::VERSION
                )),
            });
        }
        Ok(Bundle {
            dir,
            manifest,
            name: path.display().to_string(),
            _unpacked: unpacked,
        })
    }

    /// The node's configuration files, as unpacked.
    pub fn root(&self) -> PathBuf {
        self.dir.join(items::ROOT)
    }

    /// The text of an item's file; `Err` says why it is unknown (failed on the node, or
    /// missing from the bundle), `Ok(None)` when it is known to be absent on the node.
    fn text(&self, (name, file): (&str, &str)) -> Result<Option<String>, String> {
        let shown = format!("{}/{file}", self.name);
        match self
            .manifest
            .item(name)
            .map(|i| (i.status, i.detail.clone()))
        {
            None => Err(format!("{shown}: not in the bundle")),
            Some((Status::Failed, why)) => Err(format!(
                "{shown}: not collected on the node: {}",
                why.unwrap_or_default()
            )),
            Some((Status::Absent, _)) => Ok(None),
            Some((Status::Collected, _)) => fs::read_to_string(self.dir.join(file))
                .map(Some)
                .map_err(|e| format!("{shown}: listed in the manifest, but {e}")),
        }
    }

    /// What the bundle holds of the node, as a capture; what it lacks is unknown.
    pub fn capture(&self) -> Capture {
        let mut c = Capture::empty("", "");
        c.expect_all = true;
        let mut problems = Vec::new();
        let mut note = |e: String| {
            problems.push(e);
        };
        match self.text(items::FACTS) {
            Ok(Some(t)) => match serde_json::from_str::<NodeFacts>(&t) {
                Ok(f) => c.facts = f,
                Err(e) => note(format!("{}/{}: {e}", self.name, items::FACTS.1)),
            },
            Ok(None) => {}
            Err(e) => note(e),
        }
        c.runtime = match self.text(items::RUNTIME) {
            Ok(Some(t)) => serde_json::from_str::<RuntimeRecord>(&t)
                .map(|r| r.runtime)
                .map_err(|e| format!("{}/{}: {e}", self.name, items::RUNTIME.1)),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        c.nft = match self.text(items::NFT) {
            Ok(Some(t)) => Ok(Listing::new(t, format!("{}/{}", self.name, items::NFT.1))),
            Ok(None) => Err(format!("{}: no nftables ruleset", self.name)),
            Err(e) => Err(e),
        };
        let optional = |item| match self.text(item) {
            Ok(t) => t,
            Err(e) => {
                log::info!("{e}");
                None
            }
        };
        c.saved = SavedListings {
            iptables: optional(items::IPTABLES_NFT),
            ip6tables: optional(items::IP6TABLES_NFT),
            ipset: optional(items::IPSET),
        };
        c.legacy = match (
            self.text(items::IPTABLES_LEGACY),
            self.text(items::IP6TABLES_LEGACY),
        ) {
            (Ok(v4), Ok(v6)) => Some(LegacyListings {
                v4: v4.unwrap_or_default(),
                v6: v6.unwrap_or_default(),
            }),
            (Err(e), _) | (_, Err(e)) => {
                note(format!("the legacy iptables tables: {e}"));
                None
            }
        };
        c.k0s_link = self
            .text(items::K0S_LINK)
            .ok()
            .flatten()
            .map(|t| t.trim().to_string());
        c.problems = problems;
        c
    }
}

/// Unpacks the regular files and directories of a `tar.gz` below `into`; links, devices and
/// paths leaving it are refused.
fn unpack(archive: &Path, into: &Path) -> Result<(), BundleError> {
    let bad = |message: String| BundleError::Archive {
        path: archive.to_path_buf(),
        message: super::nft::bounded(message),
    };
    let file = fs::File::open(archive).map_err(|source| BundleError::Io {
        path: archive.to_path_buf(),
        source,
    })?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let (mut total, mut count) = (0u64, 0usize);
    for entry in tar.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(format!("not a tar.gz archive: {e}")))?;
        count += 1;
        let rel = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(bad(format!("refusing the entry {}", rel.display())));
        }
        let out = into.join(&rel);
        let kind = entry.header().entry_type();
        let io = |source| BundleError::Io {
            path: out.clone(),
            source,
        };
        if kind.is_dir() {
            fs::create_dir_all(&out).map_err(io)?;
        } else if kind.is_file() {
            total += entry.size();
            if total > MAX_BYTES || count > MAX_ENTRIES {
                return Err(bad(format!(
                    "unpacks to more than {MAX_BYTES} bytes or {MAX_ENTRIES} entries"
                )));
            }
            if let Some(parent) = out.parent() {
                fs::create_dir_all(parent).map_err(io)?;
            }
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(io)?;
            fs::write(&out, bytes).map_err(io)?;
        }
    }
    Ok(())
}
