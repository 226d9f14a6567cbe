//! `firewalld.conf`, read line by line as firewalld 1.3.3 does (`core/io/firewalld_conf.py`):
//! `KEY=VALUE` with blanks trimmed, `#` and `;` start comments, and a line that is not exactly
//! one `KEY=VALUE`, names an unknown key, has an empty value or repeats a key is ignored (the
//! first definition wins). Keys that are absent or invalid take firewalld's fallbacks.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::Path;

use super::{FALLBACK_BACKEND, FALLBACK_ZONE, FirewalldConf, ReadProblem};

/// The keys firewalld 1.3.3 accepts (`valid_keys`).
const VALID_KEYS: &[&str] = &[
    "DefaultZone",
    "MinimalMark",
    "CleanupOnExit",
    "CleanupModulesOnExit",
    "Lockdown",
    "IPv6_rpfilter",
    "IndividualCalls",
    "LogDenied",
    "AutomaticHelpers",
    "FirewallBackend",
    "FlushAllOnReload",
    "RFC3964_IPv4",
    "AllowZoneDrifting",
];

/// Reads `path`, then checks its default zone against the zones that exist. A missing file
/// is not a problem: firewalld runs on its defaults then.
pub fn read_conf(
    path: &Path,
    zone_exists: impl Fn(&str) -> bool,
    problems: &mut Vec<ReadProblem>,
) -> FirewalldConf {
    let mut conf = FirewalldConf::default();
    let default_zone_line = read_keys(path, &mut conf, problems);
    check_default_zone(&mut conf, default_zone_line, zone_exists, problems);
    conf
}

/// Reads the keys of `path` into `conf`; returns the line of the `DefaultZone` definition used.
fn read_keys(
    path: &Path,
    conf: &mut FirewalldConf,
    problems: &mut Vec<ReadProblem>,
) -> Option<u32> {
    let text = match std::fs::read(path) {
        Ok(bytes) => {
            conf.file = Some(path.to_path_buf());
            match String::from_utf8(bytes) {
                Ok(s) => s,
                Err(e) => {
                    // Python would raise on the undecodable line and fall back to the defaults
                    // for everything.
                    problems.push(problem(
                        path,
                        None,
                        format!("not UTF-8 ({e}); firewalld uses its defaults for every setting"),
                    ));
                    return None;
                }
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => return None,
        Err(e) => {
            problems.push(problem(
                path,
                None,
                format!("cannot read: {e}; firewalld uses its defaults for every setting"),
            ));
            return None;
        }
    };
    // Each key's value and the line that set it.
    let mut values: BTreeMap<String, (String, Option<u32>)> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = u32::try_from(i + 1).ok();
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let parts: Vec<&str> = line.split('=').map(str::trim).collect();
        let mut bad = |msg: String| problems.push(problem(path, line_no, msg));
        match parts.as_slice() {
            [key, value] => {
                if !VALID_KEYS.contains(key) {
                    bad(format!(
                        "unknown option {key:?}; firewalld ignores the line"
                    ));
                } else if value.is_empty() {
                    bad(format!("{key} has no value; firewalld ignores the line"));
                } else if values.contains_key(*key) {
                    bad(format!(
                        "{key} is set a second time; firewalld keeps the first value"
                    ));
                } else {
                    values.insert(key.to_string(), (value.to_string(), line_no));
                }
            }
            _ => bad(format!(
                "{line:?} is not a KEY=VALUE line; firewalld ignores it"
            )),
        }
    }
    let mut default_zone_line = None;
    if let Some((zone, line)) = values.remove("DefaultZone") {
        conf.default_zone = zone;
        default_zone_line = line;
    }
    if let Some((backend, line)) = values.remove("FirewallBackend") {
        let lower = backend.to_lowercase();
        if lower == "nftables" || lower == "iptables" {
            conf.backend = lower;
        } else {
            problems.push(problem(
                path,
                line,
                format!(
                    "FirewallBackend {backend:?} is neither nftables nor iptables; firewalld uses {FALLBACK_BACKEND}"
                ),
            ));
        }
    }
    default_zone_line
}

/// Once the zones are known: firewalld replaces a default zone that does not exist by
/// `public`, else `external`, else `block` (`_start_check`). `line` is where the file set it.
fn check_default_zone(
    conf: &mut FirewalldConf,
    line: Option<u32>,
    zone_exists: impl Fn(&str) -> bool,
    problems: &mut Vec<ReadProblem>,
) {
    if zone_exists(&conf.default_zone) {
        return;
    }
    let fallback = [FALLBACK_ZONE, "external", "block"]
        .into_iter()
        .find(|z| zone_exists(z))
        .unwrap_or("block");
    let file = conf
        .file
        .clone()
        .unwrap_or_else(|| Path::new("firewalld.conf").to_path_buf());
    problems.push(problem(
        &file,
        line,
        format!(
            "DefaultZone {:?} names no zone; firewalld uses {fallback:?}",
            conf.default_zone
        ),
    ));
    conf.default_zone = fallback.to_string();
}

fn problem(path: &Path, line: Option<u32>, message: String) -> ReadProblem {
    ReadProblem::new(path, line, None, message)
}
