//! A diagnosis from what people paste: each file's form is detected ([`detect`]), read for
//! what it holds, and reported with what could and could not be used ([`EvidenceReport`]).
//! Rulesets pasted as text (`nft list ruleset`, any iptables listing) are read by the real
//! tools in a scratch network namespace ([`scratch`]) and read back as `nft -j` JSON, so the
//! model sees them as it sees a live ruleset; `nft -j` JSON (`--ruleset`) is read directly,
//! with `iptables-nft-save` and `ipset save` beside it explaining iptables-nft's matches.
//! Nothing of the machine doing the analysis is read: what the files lack is unknown.

mod detect;
mod ip;
mod iptables;
mod listl;
mod scratch;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use detect::{Backend, Form, detect};

use self::{iptables::Restore, scratch::Line};
use super::{
    capture::{Capture, Listing},
    cluster,
    firewalld::{self, FALLBACK_ZONE, Runtime, parse_listing},
    iptables::LegacyListings,
    nft::{Family, bounded},
    view::Unknown,
};

/// The files a diagnosis from files is given.
#[derive(Clone, Debug, Default)]
pub struct Named {
    /// `--ruleset`: `nft -j list ruleset`.
    pub ruleset: Option<PathBuf>,
    /// `--iptables-save`, `--ip6tables-save`: iptables-nft-save beside it.
    pub iptables_save: Option<PathBuf>,
    pub ip6tables_save: Option<PathBuf>,
    /// `--ipset-save`.
    pub ipset_save: Option<PathBuf>,
    /// `--evidence`: anything pasted, its form detected.
    pub evidence: Vec<PathBuf>,
}

/// What one file was taken for, and what of it was used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceReport {
    pub file: String,
    /// The form detected (or given by the option naming it): `nft list ruleset`,
    /// `iptables-nft-save`, `ip route`..., or `unknown`.
    pub form: String,
    pub used: Vec<String>,
    pub unused: Vec<String>,
}

/// Why firewalld's runtime state is unknown when nothing shows it.
const NO_RUNTIME: &str = "not in the inputs (firewall-cmd --list-all-zones shows it)";
/// Why there is no ruleset when nothing holds one.
const NO_RULESET: &str = "no ruleset in the inputs (nft list ruleset, iptables-save...)";

/// An iptables listing to load.
struct Ipt {
    file: String,
    family: Family,
    backend: Backend,
    restore: Restore,
    report: usize,
}

/// Reads the named files.
pub fn read(named: &Named) -> (Capture, Vec<EvidenceReport>) {
    let mut c = Capture::empty(NO_RUNTIME, NO_RULESET);
    let mut reports: Vec<EvidenceReport> = Vec::new();
    let mut inputs: Vec<(&Path, Option<Form>)> = Vec::new();
    inputs.extend(named.ruleset.as_deref().map(|p| (p, Some(Form::NftJson))));
    inputs.extend(
        named
            .iptables_save
            .as_deref()
            .map(|p| (p, Some(Form::IptablesSave(Family::Ip, Backend::Nft)))),
    );
    inputs.extend(
        named
            .ip6tables_save
            .as_deref()
            .map(|p| (p, Some(Form::IptablesSave(Family::Ip6, Backend::Nft)))),
    );
    inputs.extend(
        named
            .ipset_save
            .as_deref()
            .map(|p| (p, Some(Form::IpsetSave))),
    );
    inputs.extend(named.evidence.iter().map(|p| (p.as_path(), None)));

    let mut json: Vec<(String, String)> = Vec::new();
    let mut nft_text: Vec<(String, String, usize)> = Vec::new();
    let mut ipt: Vec<Ipt> = Vec::new();
    let mut ipsets: Vec<String> = Vec::new();
    let mut zone_files = Vec::new();
    let mut service_files = Vec::new();
    let mut listing = firewalld::ZoneListing::default();
    let mut conf: (Option<String>, Option<String>) = (None, None);
    for (path, forced) in inputs {
        let name = path.display().to_string();
        let text = match std::fs::read(path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                let p = format!("{name}: {e}");
                c.problems.push(p.clone());
                c.required_unread.push(p);
                if forced == Some(Form::NftJson) {
                    c.nft = Err(format!("{name}: {e}"));
                }
                continue;
            }
        };
        let form = forced.unwrap_or_else(|| detect(&text));
        reports.push(EvidenceReport {
            file: name.clone(),
            form: form.name(),
            used: Vec::new(),
            unused: Vec::new(),
        });
        let at = reports.len() - 1;
        let r = &mut reports[at];
        let facts = &mut c.facts;
        let (used, unused) = match form {
            Form::IpLink | Form::IpAddr => ip::links(&text, facts),
            Form::IpRoute => ip::routes(&text, facts),
            Form::Sysctl => ip::sysctls(&text, facts),
            Form::Listening => ip::listening(&text, facts),
            Form::NftJson => {
                if forced.is_some() {
                    c.ruleset_named = true;
                }
                json.push((name.clone(), text));
                (Vec::new(), Vec::new())
            }
            Form::NftText => {
                nft_text.push((name.clone(), text, at));
                (Vec::new(), Vec::new())
            }
            Form::IptablesSave(family, backend) => {
                let restore = iptables::from_save(&name, family, &text);
                ipt.push(Ipt {
                    file: name.clone(),
                    family,
                    backend,
                    restore,
                    report: at,
                });
                (Vec::new(), Vec::new())
            }
            Form::IptablesS(family) => {
                let restore = iptables::from_s(&name, family, &text);
                ipt.push(Ipt {
                    file: name.clone(),
                    family,
                    backend: Backend::Unknown,
                    restore,
                    report: at,
                });
                (Vec::new(), Vec::new())
            }
            Form::IptablesL { family, verbose } => {
                let restore = listl::from_l(&name, family, &text, verbose);
                ipt.push(Ipt {
                    file: name.clone(),
                    family,
                    backend: Backend::Unknown,
                    restore,
                    report: at,
                });
                (Vec::new(), Vec::new())
            }
            Form::IpsetSave => {
                let sets = text.lines().filter(|l| l.starts_with("create ")).count();
                ipsets.push(text);
                (vec![format!("{sets} ipsets")], Vec::new())
            }
            Form::FirewallCmd => {
                let l = parse_listing(&text);
                c.problems
                    .extend(l.problems.iter().map(|(n, m)| format!("{name}:{n}: {m}")));
                let used = vec![format!(
                    "zones {}",
                    l.zones.keys().cloned().collect::<Vec<_>>().join(" ")
                )];
                listing.default_zone = listing.default_zone.take().or(l.default_zone);
                for (k, z) in l.zones {
                    listing.zones.entry(k).or_insert(z);
                }
                (used, Vec::new())
            }
            Form::ZoneXml => {
                zone_files.push(path.to_path_buf());
                (vec!["the zone".into()], Vec::new())
            }
            Form::ServiceXml => {
                service_files.push(path.to_path_buf());
                (vec!["the service".into()], Vec::new())
            }
            Form::FirewalldConf => {
                for l in text.lines() {
                    if let Some(z) = l.strip_prefix("DefaultZone=") {
                        conf.0 = Some(z.trim().to_string());
                    } else if let Some(b) = l.strip_prefix("FirewallBackend=") {
                        conf.1 = Some(b.trim().to_ascii_lowercase());
                    }
                }
                (vec!["DefaultZone, FirewallBackend".into()], Vec::new())
            }
            Form::Cluster(dist) => match cluster::parse(dist, path, &text) {
                Ok(cfg) => {
                    c.cluster = Some(cfg);
                    (
                        vec!["the provider and the pod and service CIDRs".into()],
                        Vec::new(),
                    )
                }
                Err(e) => {
                    c.problems.push(e.to_string());
                    (Vec::new(), vec!["it does not parse (see above)".into()])
                }
            },
            Form::Unknown => {
                let p = format!(
                    "{name}: not a form tracer reads (see `tracer diagnose --help` for the forms)"
                );
                c.problems.push(p.clone());
                c.required_unread.push(p);
                (
                    Vec::new(),
                    vec!["all of it: its form was not recognised".into()],
                )
            }
        };
        r.used.extend(used);
        r.unused.extend(unused);
    }
    rulesets(&mut c, &mut reports, json, nft_text, ipt, &ipsets);
    c.saved.ipset = (!ipsets.is_empty()).then(|| ipsets.join("\n"));
    firewall(&mut c, &zone_files, &service_files, listing, conf);
    (c, reports)
}

/// The ruleset from the pasted listings: `nft -j` JSON directly when it is all there is (its
/// iptables-nft-save beside it explaining xt matches), else everything loaded into a scratch
/// namespace and read back.
fn rulesets(
    c: &mut Capture,
    reports: &mut [EvidenceReport],
    mut json: Vec<(String, String)>,
    nft_text: Vec<(String, String, usize)>,
    ipt: Vec<Ipt>,
    ipsets: &[String],
) {
    // Legacy listings: what the legacy backend holds (its cluster chains).
    let legacy_of = |f: Family| {
        ipt.iter()
            .filter(|i| i.backend == Backend::Legacy && i.family == f)
            .map(|i| {
                i.restore
                    .lines
                    .iter()
                    .map(|l| format!("{}\n", l.text))
                    .collect::<String>()
            })
            .collect::<String>()
    };
    if ipt.iter().any(|i| i.backend == Backend::Legacy) {
        c.legacy = Some(LegacyListings {
            v4: legacy_of(Family::Ip),
            v6: legacy_of(Family::Ip6),
        });
    }
    let nft_families: Vec<Family> = ipt
        .iter()
        .filter(|i| i.backend != Backend::Legacy)
        .map(|i| i.family)
        .collect();
    let nft_backed = |f: Family| nft_families.contains(&f);
    let (companions, to_load): (Vec<Ipt>, Vec<Ipt>) = if json.len() == 1 {
        // The JSON holds iptables-nft's rules: its saves explain them, they are not loaded.
        ipt.into_iter().partition(|i| i.backend != Backend::Legacy)
    } else {
        (Vec::new(), ipt)
    };
    for i in &companions {
        let text: String = i
            .restore
            .lines
            .iter()
            .map(|l| format!("{}\n", l.text))
            .collect();
        let slot = if i.family == Family::Ip6 {
            &mut c.saved.ip6tables
        } else {
            &mut c.saved.iptables
        };
        *slot = Some(text);
        reports[i.report]
            .used
            .push("the arguments of iptables-nft's extension matches in the nft JSON".into());
    }
    // A legacy listing is evaluated only when no other listing of its family is.
    let (legacy_only, to_load): (Vec<Ipt>, Vec<Ipt>) = to_load.into_iter().partition(|i| {
        i.backend == Backend::Legacy && nft_backed(i.family)
            || i.backend == Backend::Legacy && json.len() == 1
    });
    for i in &legacy_only {
        reports[i.report]
            .used
            .push("its cluster chains (which backend the cluster uses)".into());
        reports[i.report]
            .unused
            .push("its rules: one iptables backend is evaluated, iptables-nft's".into());
    }
    if nft_text.is_empty() && to_load.is_empty() {
        if let Some((name, text)) = json.pop() {
            c.nft = Ok(Listing::new(text, name));
        }
        return;
    }
    let scratch = match scratch::Scratch::new() {
        Ok(s) => s,
        Err(e) => {
            c.problems.push(e.clone());
            c.required_unread.push(e.clone());
            c.nft = Err(e);
            return;
        }
    };
    for text in ipsets {
        if let Err(e) = scratch.ipsets("ipset save", text) {
            c.problems.push(e);
        }
    }
    for (name, text) in &json {
        if let Err(e) = scratch.nft_json(name, text) {
            c.problems.push(e);
        }
    }
    for (name, text, at) in nft_text {
        let (blocks, problems) = blocks(&name, &text);
        c.problems.extend(problems);
        let tables: Vec<String> = blocks
            .iter()
            .filter_map(|b| b.first())
            .map(|l| l.text.trim_end_matches('{').trim().to_string())
            .collect();
        let loaded = scratch.nft_text(&name, blocks);
        reports[at].used.push(format!(
            "{} (loaded with nft into a scratch namespace, read back as JSON)",
            tables.join(", ")
        ));
        if !loaded.dropped.is_empty() {
            reports[at].unused.push(format!(
                "{} lines nft refused (named above)",
                loaded.dropped.len()
            ));
        }
        c.problems.extend(loaded.problems);
    }
    let referenced = sets_named(&to_load);
    for (set, family) in referenced {
        let defined = ipsets.iter().any(|t| {
            t.lines().any(|l| {
                l.split_whitespace().nth(1) == Some(set.as_str()) && l.starts_with("create ")
            })
        });
        if !defined {
            let kind = if family == Family::Ip6 {
                "family inet6"
            } else {
                "family inet"
            };
            let _ = scratch.ipsets("placeholder", &format!("create {set} hash:net {kind}\n"));
            c.unknown.push(Unknown {
                what: format!("the members of ipset {set}"),
                why: "rules match it, and the evidence has no `ipset save`: those rules' verdicts are unknown".into(),
                settle: vec!["ipset save".into()],
            });
        }
    }
    let mut tool = None;
    for mut i in to_load {
        let rules = i
            .restore
            .lines
            .iter()
            .filter(|l| l.text.starts_with("-A"))
            .count();
        let lines = std::mem::take(&mut i.restore.lines);
        let loaded = scratch.iptables(i.family, &i.file, lines);
        let r = &mut reports[i.report];
        r.used.push(format!(
            "{} rules (loaded with iptables-nft-restore into a scratch namespace, read back as JSON)",
            rules - loaded.dropped.iter().filter(|l| l.text.starts_with("-A")).count()
        ));
        r.unused.extend(i.restore.notes.iter().cloned());
        if !i.restore.gaps.is_empty() || !loaded.dropped.is_empty() {
            r.unused.push(format!(
                "{} lines (named above)",
                i.restore.gaps.len() + loaded.dropped.len()
            ));
        }
        c.problems.extend(i.restore.problems);
        c.problems.extend(loaded.problems);
        c.gaps.extend(i.restore.gaps);
        for d in loaded.dropped.iter().filter(|l| l.text.starts_with("-A ")) {
            let chain = d.text.split_whitespace().nth(1).unwrap_or("").to_string();
            c.gaps.push(super::view::RuleGap {
                family: i.family,
                table: String::new(),
                base_hook: iptables::builtin_hook(&chain),
                chain,
                place: format!("{}:{}", i.file, d.at.unwrap_or(0)),
                why: "iptables-nft-restore refused it".into(),
                settle: iptables::save_command(i.family).into(),
            });
        }
        tool = match (tool, i.backend) {
            (_, Backend::Nft) | (Some("iptables-nft"), _) => Some("iptables-nft"),
            (None | Some("iptables-legacy"), Backend::Legacy) => Some("iptables-legacy"),
            _ => Some("iptables"),
        };
    }
    c.iptables_cmd = tool.filter(|t| *t != "iptables-nft").map(str::to_string);
    let (listed, v4, v6) = scratch.listings();
    c.saved.iptables = v4;
    c.saved.ip6tables = v6;
    c.nft = listed.map(|text| Listing::new(text, "the pasted rules, as nft lists them"));
}

/// The ipsets `-m set` rules name, with their family.
fn sets_named(ipt: &[Ipt]) -> Vec<(String, Family)> {
    let mut out: Vec<(String, Family)> = Vec::new();
    for i in ipt {
        for l in &i.restore.lines {
            let words: Vec<&str> = l.text.split_whitespace().collect();
            for w in words.windows(2).filter(|w| w[0] == "--match-set") {
                if !out.iter().any(|(n, _)| n == w[1]) {
                    out.push((w[1].to_string(), i.family));
                }
            }
        }
    }
    out
}

/// `nft list ruleset` text cut into its top-level blocks (tables), each line with its line
/// number; a block cut off at the end is closed, and said.
fn blocks(file: &str, text: &str) -> (Vec<Vec<Line>>, Vec<String>) {
    let mut blocks = Vec::new();
    let mut problems = Vec::new();
    let mut current: Vec<Line> = Vec::new();
    let mut depth = 0usize;
    for (i, l) in text.lines().enumerate() {
        let at = i + 1;
        if depth == 0 {
            let t = l.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            if !t.starts_with("table ") {
                problems.push(format!(
                    "{file}:{at}: not inside a table: {} (not used)",
                    bounded(t.to_string())
                ));
                continue;
            }
        }
        depth += l.matches('{').count();
        depth = depth.saturating_sub(l.matches('}').count());
        current.push(Line {
            text: l.to_string(),
            at: Some(at),
        });
        if depth == 0 {
            blocks.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        let first = current[0].at.unwrap_or(0);
        problems.push(format!(
            "{file}:{}: the listing ends inside the table of line {first}: truncated? What it holds up to there is used",
            text.lines().count()
        ));
        for _ in 0..depth {
            current.push(Line {
                text: "}".into(),
                at: None,
            });
        }
        blocks.push(current);
    }
    (blocks, problems)
}

/// firewalld's configuration from zone and service XML, `firewall-cmd` listings and
/// firewalld.conf.
fn firewall(
    c: &mut Capture,
    zones: &[PathBuf],
    services: &[PathBuf],
    listing: firewalld::ZoneListing,
    conf: (Option<String>, Option<String>),
) {
    let given = !zones.is_empty()
        || !services.is_empty()
        || !listing.zones.is_empty()
        || conf != (None, None);
    if !given {
        return;
    }
    let mut p = firewalld::read_files(zones, services);
    c.problems
        .extend(p.problems.iter().map(ToString::to_string));
    for (k, z) in &listing.zones {
        p.zones.entry(k.clone()).or_insert_with(|| z.clone());
    }
    let default = conf.0.clone().or(listing.default_zone.clone());
    if default.is_none() {
        c.unknown.push(Unknown {
            what: "firewalld's default zone".into(),
            why: format!("not in the inputs: taken to be {FALLBACK_ZONE}, firewalld's own default"),
            settle: vec!["firewall-cmd --get-default-zone".into()],
        });
    }
    p.conf.default_zone = default.unwrap_or_else(|| FALLBACK_ZONE.into());
    if let Some(b) = conf.1 {
        p.conf.backend = b;
    }
    let mut missing: Vec<String> = p
        .zones
        .values()
        .flat_map(|z| z.services.iter())
        .filter(|s| !p.services.contains_key(*s))
        .cloned()
        .collect();
    missing.sort();
    missing.dedup();
    if !missing.is_empty() {
        c.unknown.push(Unknown {
            what: format!("the ports of services {}", missing.join(", ")),
            why: "the zones use them and their definitions are not in the inputs: what they open is not known".into(),
            settle: missing.iter().take(4).map(|s| format!("firewall-cmd --info-service={s}")).collect(),
        });
    }
    if !listing.zones.is_empty() {
        // firewall-cmd answered: firewalld runs, with the zones it listed.
        c.runtime = Ok(Some(Runtime {
            state: "RUNNING".into(),
            default_zone: p.conf.default_zone.clone(),
            zones: listing.zones,
            services: p.services.clone(),
        }));
    }
    c.permanent = Some(p);
}
