//! The permanent configuration from files, loaded in firewalld's order (`core/fw.py`): stock
//! services and zones from `ROOT/usr/lib/firewalld`, then `ROOT/etc/firewalld`, where a file
//! replaces the stock one of the same name, then `firewalld.conf`. Only `NAME.xml` files count
//! (so `firewall-cmd --permanent`'s `NAME.xml.old` backups are ignored), in sorted order.
//!
//! One difference from firewalld: a file it cannot load makes firewalld drop the whole user
//! configuration (state `FAILED`), while here that one file is left out, reported, and the rest
//! is read, so a diagnosis can still reason about what the user meant.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::check::{MAX_ZONE_NAME, check_object_name};
use super::conf::read_conf;
use super::direct::{Direct, parse_direct};
use super::ipset::parse_ipset;
use super::policy::parse_policy;
use super::refusal::{Located, Position};
use super::xml::{parse_service, parse_zone};
use super::{Permanent, ReadProblem, Service, Zone};

/// Reads ROOT/usr/lib/firewalld/{zones,services} then ROOT/etc/firewalld/{zones,services} (a
/// file in /etc replaces the one of the same name from /usr/lib, as firewalld does) and
/// ROOT/etc/firewalld/firewalld.conf, then policies and ipsets the same way and
/// ROOT/etc/firewalld/direct.xml. A file it cannot read or parse becomes a [`ReadProblem`]
/// naming the file and position; everything else is still read. Also reported: zones naming
/// services that do not exist, services including ones that do not exist, and a default zone
/// that does not exist (firewalld refuses the first two and replaces the third).
pub fn read_permanent(root: &Path) -> Permanent {
    let mut problems = Vec::new();
    let usr = root.join("usr/lib/firewalld");
    let etc = root.join("etc/firewalld");

    let mut services: BTreeMap<String, Service> = BTreeMap::new();
    let mut includes: Vec<(PathBuf, String, Position)> = Vec::new();
    for dir in [usr.join("services"), etc.join("services")] {
        for (name, path) in xml_files(&dir, &mut problems) {
            if let Err(m) = check_object_name(&name, false) {
                problems.push(at_file(&path, m));
                continue;
            }
            let Some(text) = read_text(&path, &mut problems) else {
                continue;
            };
            match parse_service(&name, &text) {
                Ok(sf) => {
                    let mut s = sf.service;
                    s.file = Some(path.clone());
                    includes.retain(|(f, _, _)| f.file_stem() != path.file_stem());
                    includes.extend(
                        sf.include_refs
                            .into_iter()
                            .map(|(n, l)| (path.clone(), n, l)),
                    );
                    services.insert(name, s);
                }
                Err(l) => problems.push(located(&path, &l)),
            }
        }
    }

    let mut zones: BTreeMap<String, Zone> = BTreeMap::new();
    let mut refs: BTreeMap<String, ZoneRefs> = BTreeMap::new();
    let mut combined: BTreeMap<String, Zone> = BTreeMap::new();
    for (dir, is_etc) in [(usr.join("zones"), false), (etc.join("zones"), true)] {
        for (name, path) in xml_files(&dir, &mut problems) {
            if let Some(zf) = read_zone(&name, &path, &mut problems) {
                refs.insert(name.clone(), zf.1);
                zones.insert(name, zf.0);
            }
        }
        if is_etc {
            for sub in subdirs(&dir, &mut problems) {
                read_combined(&sub, &mut combined, &mut refs, &mut problems);
            }
        }
    }
    // firewalld adds combined zones to the runtime after the others, replacing a namesake.
    zones.extend(combined);

    check_refs(&refs, &includes, &services, &mut problems);

    let conf = read_conf(
        &etc.join("firewalld.conf"),
        |z| zones.contains_key(z),
        &mut problems,
    );
    let policies = read_objects(
        &[usr.join("policies"), etc.join("policies")],
        &mut problems,
        parse_policy,
    );
    let ipsets = read_objects(
        &[usr.join("ipsets"), etc.join("ipsets")],
        &mut problems,
        parse_ipset,
    );
    let direct = read_direct(&etc.join("direct.xml"), &mut problems);
    Permanent {
        conf,
        zones,
        services,
        policies,
        ipsets,
        direct,
        problems,
    }
}

/// `direct.xml`: none when the file is absent.
fn read_direct(file: &Path, problems: &mut Vec<ReadProblem>) -> Direct {
    match fs::read_to_string(file) {
        Ok(text) => parse_direct(&text).unwrap_or_else(|m| {
            problems.push(at_file(file, m));
            Direct::default()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Direct::default(),
        Err(e) => {
            problems.push(at_file(file, format!("cannot read: {e}")));
            Direct::default()
        }
    }
}

/// The `NAME.xml` objects of `dirs` (a later directory's file replaces an earlier one's of the
/// same name), each read by `parse`; a file it refuses is a problem and left out.
fn read_objects<T>(
    dirs: &[PathBuf],
    problems: &mut Vec<ReadProblem>,
    parse: fn(&str, &str) -> Result<T, super::refusal::ObjectError>,
) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    for dir in dirs {
        for (name, path) in xml_files(dir, problems) {
            let Some(text) = read_text(&path, problems) else {
                continue;
            };
            match parse(&name, &text) {
                Ok(obj) => {
                    out.insert(name, obj);
                }
                Err(m) => {
                    out.remove(&name);
                    problems.push(at_file(&path, m));
                }
            }
        }
    }
    out
}

/// Zones naming services that do not exist, services including ones that do not exist.
fn check_refs(
    refs: &BTreeMap<String, ZoneRefs>,
    includes: &[(PathBuf, String, Position)],
    services: &BTreeMap<String, Service>,
    problems: &mut Vec<ReadProblem>,
) {
    for (zone, zone_refs) in refs {
        for (file, svc, l) in zone_refs {
            if !services.contains_key(svc) {
                problems.push(located(
                    file,
                    &Located {
                        at: *l,
                        what: format!(
                            "zone {zone:?} uses service {svc:?}, which is not defined; firewalld refuses the configuration (INVALID_SERVICE: a reload fails and keeps the old rules, a start ends in state FAILED)"
                        ),
                    },
                ));
            }
        }
    }
    for (file, svc, l) in includes {
        if !services.contains_key(svc) {
            problems.push(located(
                file,
                &Located {
                    at: *l,
                    what: format!("includes service {svc:?}, which is not defined"),
                },
            ));
        }
    }
}

/// Zone and service files given one by one (pasted evidence), named by their file's stem:
/// read as [`read_permanent`] reads them, with firewalld's defaults for the rest (no
/// firewalld.conf). Services the zones name that are not among them are not a problem here:
/// they are unknown, and [`Permanent::services`] simply lacks them.
pub fn read_files(zones: &[PathBuf], services: &[PathBuf]) -> Permanent {
    let mut problems = Vec::new();
    let stem = |p: &Path| {
        p.file_stem()
            .and_then(|s| s.to_str())
            .map(|s| s.split('.').next().unwrap_or(s).to_string())
            .unwrap_or_default()
    };
    let mut p = Permanent::default();
    for path in services {
        let Some(text) = read_text(path, &mut problems) else {
            continue;
        };
        match parse_service(&stem(path), &text) {
            Ok(sf) => {
                let mut s = sf.service;
                s.file = Some(path.clone());
                p.services.insert(s.name.clone(), s);
            }
            Err(l) => problems.push(located(path, &l)),
        }
    }
    for path in zones {
        if let Some((z, _)) = read_zone(&stem(path), path, &mut problems) {
            p.zones.insert(z.name.clone(), z);
        }
    }
    p.problems = problems;
    p
}

type ZoneRefs = Vec<(PathBuf, String, Position)>;

fn read_zone(name: &str, path: &Path, problems: &mut Vec<ReadProblem>) -> Option<(Zone, ZoneRefs)> {
    if let Err(m) = check_object_name(name, true) {
        problems.push(at_file(path, m));
        return None;
    }
    let text = read_text(path, problems)?;
    match parse_zone(name, &text) {
        Ok(zf) => {
            let mut z = zf.zone;
            z.file = Some(path.to_path_buf());
            problems.extend(zf.warnings.into_iter().map(|w| located(path, &w)));
            let refs = zf
                .service_refs
                .into_iter()
                .map(|(s, l)| (path.to_path_buf(), s, l))
                .collect();
            Some((z, refs))
        }
        Err(l) => {
            problems.push(located(path, &l));
            None
        }
    }
}

/// `etc/firewalld/zones/NAME/*.xml`: parts of one zone `NAME`, merged as firewalld's
/// `Zone.combine` does (lists joined without duplicates, masquerade and forward or-ed). The
/// merged zone keeps the default target whatever its parts say, as in firewalld.
fn read_combined(
    dir: &Path,
    combined: &mut BTreeMap<String, Zone>,
    refs: &mut BTreeMap<String, ZoneRefs>,
    problems: &mut Vec<ReadProblem>,
) {
    let Some(base) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
        return;
    };
    if base.chars().count() > MAX_ZONE_NAME {
        problems.push(at_file(
            dir,
            format!("combined zone name {base:?} is longer than {MAX_ZONE_NAME} characters"),
        ));
        return;
    }
    for (name, path) in xml_files(dir, problems) {
        let Some((part, part_refs)) = read_zone(&name, &path, problems) else {
            continue;
        };
        refs.insert(format!("{base}/{name}"), part_refs);
        let z = combined.entry(base.clone()).or_insert_with(|| Zone {
            name: base.clone(),
            file: Some(dir.to_path_buf()),
            ..Zone::default()
        });
        fn join<T: PartialEq + Clone>(into: &mut Vec<T>, from: &[T]) {
            for x in from {
                if !into.contains(x) {
                    into.push(x.clone());
                }
            }
        }
        join(&mut z.interfaces, &part.interfaces);
        join(&mut z.sources, &part.sources);
        join(&mut z.services, &part.services);
        join(&mut z.ports, &part.ports);
        join(&mut z.protocols, &part.protocols);
        join(&mut z.icmp_blocks, &part.icmp_blocks);
        join(&mut z.forward_ports, &part.forward_ports);
        join(&mut z.source_ports, &part.source_ports);
        z.rich_rules.extend(part.rich_rules.iter().cloned());
        z.forward |= part.forward;
        z.masquerade |= part.masquerade;
        z.icmp_block_inversion |= part.icmp_block_inversion;
    }
}

/// The `NAME.xml` files of `dir`, sorted, as (NAME, path). A missing directory has none.
fn xml_files(dir: &Path, problems: &mut Vec<ReadProblem>) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = entries(dir, problems)
        .into_iter()
        .filter(|p| !p.is_dir())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.strip_suffix(".xml")?.to_string();
            Some((name, p))
        })
        .collect();
    out.sort();
    out
}

fn subdirs(dir: &Path, problems: &mut Vec<ReadProblem>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = entries(dir, problems)
        .into_iter()
        .filter(|p| p.is_dir() && p.extension().is_none_or(|e| e != "xml"))
        .collect();
    out.sort();
    out
}

fn entries(dir: &Path, problems: &mut Vec<ReadProblem>) -> Vec<PathBuf> {
    match fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            problems.push(at_file(dir, format!("cannot list directory: {e}")));
            Vec::new()
        }
    }
}

fn read_text(path: &Path, problems: &mut Vec<ReadProblem>) -> Option<String> {
    match fs::read(path) {
        Ok(b) => match String::from_utf8(b) {
            Ok(s) => Some(s),
            Err(e) => {
                problems.push(at_file(path, format!("not UTF-8: {e}")));
                None
            }
        },
        Err(e) => {
            problems.push(at_file(path, format!("cannot read: {e}")));
            None
        }
    }
}

fn at_file(path: &Path, what: impl std::fmt::Display) -> ReadProblem {
    ReadProblem::new(path, None, None, what.to_string())
}

fn located(path: &Path, l: &Located<impl std::fmt::Display>) -> ReadProblem {
    ReadProblem::new(path, Some(l.at.line), Some(l.at.column), l.what.to_string())
}
