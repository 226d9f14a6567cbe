//! Taking a bundle on the node: the capture `diagnose` would read ([`Capture::live`], with
//! every listing), firewalld's files, the cluster configuration with its secrets redacted, a
//! few commands' text for people, and optionally a watch run, written as one `tar.gz` with the
//! manifest first. It only reads the node; the archive is written to a temporary file beside
//! the target and renamed, readable by its owner only.

use std::{
    fs,
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
    process::Command,
    time::SystemTime,
};

use super::{
    BundleError, RuntimeRecord, TOP, items,
    manifest::{FORMAT, Item, Manifest, Status, VERSION},
    redact,
};
use crate::{
    events::baseline::rfc3339,
    model::{
        capture::{Capture, NFT_LIST},
        cluster::{K0S_CONFIG, K3S_CONFIG},
        detect,
        iptables::{K0S_IPTABLES, LegacyListings},
    },
};

/// Files of firewalld's directories larger than this are left out (its own are a few KiB).
const MAX_FILE: u64 = 4 << 20;

/// A bundle being assembled: its files in memory, then the archive.
struct Files {
    entries: Vec<(String, Vec<u8>)>,
    dirs: Vec<String>,
    items: Vec<Item>,
}

impl Files {
    fn item(&mut self, (name, what, source): (&str, &str, &str), status: Status) -> &mut Item {
        self.items.push(Item {
            name: name.into(),
            what: what.into(),
            source: source.into(),
            status,
            files: Vec::new(),
            detail: None,
        });
        self.items.last_mut().expect("just pushed")
    }

    fn add(&mut self, file: &str, bytes: impl Into<Vec<u8>>) {
        self.entries.push((file.to_string(), bytes.into()));
    }

    /// An item read into one file: collected with its text, absent (`Ok(None)`), or failed.
    fn one(
        &mut self,
        (name, file): (&str, &str),
        what: &str,
        source: &str,
        text: Result<Option<String>, String>,
        absent_why: &str,
    ) {
        let (status, detail) = match &text {
            Ok(Some(_)) => (Status::Collected, None),
            Ok(None) => (Status::Absent, Some(absent_why.to_string())),
            Err(e) => (Status::Failed, Some(e.clone())),
        };
        let item = self.item((name, what, source), status);
        item.detail = detail;
        if let Ok(Some(t)) = text {
            item.files.push(file.into());
            self.add(file, t);
        }
    }
}

/// What `write` produced.
pub struct Written {
    pub manifest: Manifest,
    pub bytes: u64,
}

/// Takes a bundle of the node whose configuration files are below `root` (its network
/// namespace is this process's), with `watch` seconds of `tracer watch` when asked, into `out`.
pub fn write(out: &Path, root: &Path, watch: Option<f64>) -> Result<Written, BundleError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BundleError::Io { path, source }
    };
    let capture = Capture::live(root, true).map_err(io(Path::new("the node's interfaces")))?;
    let mut f = Files {
        entries: Vec::new(),
        dirs: Vec::new(),
        items: Vec::new(),
    };
    captured(&mut f, capture);
    config_files(&mut f, root);
    commands(&mut f);
    if let Some(secs) = watch {
        watched(&mut f, secs);
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        created_at: rfc3339(SystemTime::now()),
        tracer_version: env!("CARGO_PKG_VERSION").into(),
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".into(), |s| s.trim().to_string()),
        hostname: fs::read_to_string("/proc/sys/kernel/hostname")
            .map_or_else(|_| "unknown".into(), |s| s.trim().to_string()),
        node_root: root.to_path_buf(),
        items: f.items.clone(),
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    let temp = out.with_extension("partial");
    let bytes = archive(&temp, &json, &f).map_err(io(&temp))?;
    fs::rename(&temp, out).map_err(io(out))?;
    Ok(Written { manifest, bytes })
}

/// The capture's parts, each an item.
fn captured(f: &mut Files, c: Capture) {
    let facts = serde_json::to_string_pretty(&c.facts).expect("facts serialize");
    f.one(
        items::FACTS,
        "interfaces, addresses, VXLAN devices, default route, ip_forward and rp_filter, listening TCP ports",
        "getifaddrs, ioctls, /proc/sys/net, /proc/net/route, ip -d -j link, /proc/net/tcp",
        Ok(Some(facts)),
        "",
    );
    let runtime = c.runtime.map(|r| {
        let record = RuntimeRecord {
            running: r.is_some(),
            runtime: r,
        };
        Some(serde_json::to_string_pretty(&record).expect("a runtime serializes"))
    });
    f.one(
        items::RUNTIME,
        "firewalld's runtime state: zones, bindings, runtime-only changes",
        "D-Bus org.fedoraproject.FirewallD1",
        runtime,
        "",
    );
    f.one(
        items::NFT,
        "the nftables ruleset",
        NFT_LIST,
        c.nft.map(|l| Some(l.text)),
        "",
    );
    let saved = |t: Option<String>| {
        t.ok_or_else(|| {
            "the command failed or is not installed (run tracer -v bundle for why)".to_string()
        })
        .map(Some)
    };
    f.one(
        items::IPTABLES_NFT,
        "iptables-nft's IPv4 rules, with their extension matches",
        "iptables-nft-save",
        saved(c.saved.iptables),
        "",
    );
    f.one(
        items::IP6TABLES_NFT,
        "iptables-nft's IPv6 rules",
        "ip6tables-nft-save",
        saved(c.saved.ip6tables),
        "",
    );
    f.one(
        items::IPSET,
        "the ipsets",
        "ipset save",
        Ok(c.saved.ipset),
        "the kernel has no ipset loaded (not asked, so that no module is loaded)",
    );
    legacy(f, c.legacy, &c.problems);
    f.one(
        items::K0S_LINK,
        "which iptables k0s's components run",
        K0S_IPTABLES,
        Ok(c.k0s_link),
        "not a link, or no k0s",
    );
}

/// The legacy tables, each family an item: absent when no table exists, failed when one could
/// not be listed (its problem line names the command).
fn legacy(f: &mut Files, listings: Option<LegacyListings>, problems: &[String]) {
    let legacy = |t: Option<String>| -> Result<Option<String>, String> {
        match t {
            None => Err("the legacy tables could not be listed".into()),
            Some(t) if t.is_empty() => Ok(None),
            Some(t) => Ok(Some(t)),
        }
    };
    let (v4, v6) = match listings {
        Some(l) => (Some(l.v4), Some(l.v6)),
        None => (None, None),
    };
    for (item, what, source, text, names) in [
        (
            items::IPTABLES_LEGACY,
            "legacy iptables rules",
            "iptables-legacy-save -t TABLE",
            v4,
            "/proc/net/ip_tables_names",
        ),
        (
            items::IP6TABLES_LEGACY,
            "legacy ip6tables rules",
            "ip6tables-legacy-save -t TABLE",
            v6,
            "/proc/net/ip6_tables_names",
        ),
    ] {
        let mut text = legacy(text);
        let command = source.split(' ').next().unwrap_or_default();
        let failed: Vec<&str> = problems
            .iter()
            .filter(|p| p.starts_with(command))
            .map(String::as_str)
            .collect();
        if !failed.is_empty() {
            text = Err(failed.join("; "));
        }
        f.one(
            item,
            what,
            source,
            text,
            &format!(
                "no legacy table exists ({names} is empty; not listed, so that no module is loaded)"
            ),
        );
    }
}

/// firewalld's files, the cluster configuration (redacted) and the distributions' directories,
/// below `root/`.
fn config_files(f: &mut Files, root: &Path) {
    let mut fw_files = Vec::new();
    let mut skipped = Vec::new();
    for dir in ["usr/lib/firewalld", "etc/firewalld"] {
        walk(&root.join(dir), dir, 0, &mut fw_files, &mut skipped);
    }
    let status = if fw_files.is_empty() {
        Status::Absent
    } else {
        Status::Collected
    };
    let item = f.item(
        (
            items::FIREWALLD,
            "firewalld's permanent configuration",
            "/usr/lib/firewalld, /etc/firewalld (firewalld.conf, zones, services...)",
        ),
        status,
    );
    if status == Status::Collected {
        item.files = vec![
            format!("{}/usr/lib/firewalld", items::ROOT),
            format!("{}/etc/firewalld", items::ROOT),
        ];
    } else {
        item.detail = Some("neither directory exists: no firewalld".into());
    }
    if !skipped.is_empty() {
        item.detail = Some(format!("left out: {}", skipped.join(", ")));
    }
    for (rel, bytes) in fw_files {
        f.add(&format!("{}/{rel}", items::ROOT), bytes);
    }

    let mut found = false;
    for rel in [K0S_CONFIG, K3S_CONFIG] {
        let file = root.join(rel);
        let text = match fs::read(&file) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                let item = f.item(
                    (items::CLUSTER, "the cluster's configuration", rel),
                    Status::Failed,
                );
                item.detail = Some(format!("{}: {e}", file.display()));
                found = true;
                continue;
            }
        };
        let (text, keys) = redact(&text);
        let item = f.item(
            (items::CLUSTER, "the cluster's configuration", rel),
            Status::Collected,
        );
        item.files.push(format!("{}/{rel}", items::ROOT));
        if !keys.is_empty() {
            item.detail = Some(format!("redacted (line: key): {}", keys.join(", ")));
        }
        f.add(&format!("{}/{rel}", items::ROOT), text);
        found = true;
    }
    if !found {
        let item = f.item(
            (
                items::CLUSTER,
                "the cluster's configuration",
                "/etc/k0s/k0s.yaml, /etc/rancher/k3s/config.yaml",
            ),
            Status::Absent,
        );
        item.detail = Some("neither file exists".into());
    }
    let dirs = detect::distribution_dirs(root);
    let item = f.item(
        (
            items::DIRS,
            "the distributions' data directories (which one runs)",
            "/var/lib/k0s, /var/lib/rancher/k3s",
        ),
        if dirs.is_empty() {
            Status::Absent
        } else {
            Status::Collected
        },
    );
    item.files = dirs
        .iter()
        .map(|d| format!("{}/{d}", items::ROOT))
        .collect();
    let files = item.files.clone();
    f.dirs.extend(files);
}

/// The regular files below `dir` (links followed, as firewalld follows them), at most a few
/// levels deep, as (path relative to the root, bytes).
fn walk(
    dir: &Path,
    rel: &str,
    depth: usize,
    out: &mut Vec<(String, Vec<u8>)>,
    skipped: &mut Vec<String>,
) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let rel = format!("{rel}/{name}");
        match fs::metadata(&path) {
            Ok(m) if m.is_dir() && depth < 4 => walk(&path, &rel, depth + 1, out, skipped),
            Ok(m) if m.is_file() && m.len() <= MAX_FILE => match fs::read(&path) {
                Ok(b) => out.push((rel, b)),
                Err(e) => skipped.push(format!("{rel} ({e})")),
            },
            Ok(m) if m.is_file() => skipped.push(format!("{rel} ({} bytes)", m.len())),
            _ => {}
        }
    }
}

/// The text of a few commands, for people (the analysis reads `facts.json`).
fn commands(f: &mut Files) {
    let mut files = Vec::new();
    let mut failed = Vec::new();
    for (file, argv) in [
        ("ip-d-link.txt", &["ip", "-d", "link", "show"][..]),
        ("ip-addr.txt", &["ip", "addr", "show"]),
        ("ip-route.txt", &["ip", "route", "show"]),
    ] {
        match Command::new(argv[0]).args(&argv[1..]).output() {
            Ok(o) if o.status.success() => {
                let name = format!("commands/{file}");
                f.add(&name, o.stdout);
                files.push(name);
            }
            Ok(o) => failed.push(format!(
                "{}: {}",
                argv.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => failed.push(format!("{}: {e}", argv.join(" "))),
        }
    }
    let item = f.item(
        (
            items::COMMANDS,
            "the node's links, addresses and routes as text, for people",
            "ip -d link show; ip addr show; ip route show",
        ),
        if files.is_empty() {
            Status::Failed
        } else {
            Status::Collected
        },
    );
    item.files = files;
    if !failed.is_empty() {
        item.detail = Some(failed.join("; "));
    }
}

/// `tracer watch --output json` for `secs` seconds, with this process's namespace and root.
fn watched(f: &mut Files, secs: f64) {
    let source = format!("tracer watch --output json --duration {secs}");
    let out = std::env::current_exe().and_then(|exe| {
        Command::new(exe)
            .args(["watch", "--output", "json", "--duration", &secs.to_string()])
            .output()
    });
    let text = match out {
        Ok(o) if o.status.success() => Ok(Some(String::from_utf8_lossy(&o.stdout).into_owned())),
        Ok(o) => Err(super::super::nft::bounded(
            String::from_utf8_lossy(&o.stderr).trim().to_string(),
        )),
        Err(e) => Err(e.to_string()),
    };
    f.one(
        items::WATCH,
        "a watch run: traffic and drops per interface and class",
        &source,
        text,
        "",
    );
}

/// Writes the archive: the manifest first, then every file, under [`TOP`].
fn archive(path: &Path, manifest: &[u8], f: &Files) -> std::io::Result<u64> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let header = |size: usize, kind: tar::EntryType| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size as u64);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_mtime(now);
        h
    };
    let mut h = header(manifest.len(), tar::EntryType::Regular);
    tar.append_data(&mut h, format!("{TOP}/manifest.json"), manifest)?;
    for dir in &f.dirs {
        let mut h = header(0, tar::EntryType::Directory);
        tar.append_data(&mut h, format!("{TOP}/{dir}/"), std::io::empty())?;
    }
    for (name, bytes) in &f.entries {
        let mut h = header(bytes.len(), tar::EntryType::Regular);
        tar.append_data(&mut h, format!("{TOP}/{name}"), bytes.as_slice())?;
    }
    let mut file = tar.into_inner()?.finish()?;
    file.flush()?;
    file.metadata().map(|m| m.len())
}
