//! A diagnosis from what people paste: each file's form is detected ([`detect`]), read for
//! what it holds, and reported with what could and could not be used ([`EvidenceReport`]).
//! Rulesets pasted as text (`nft list ruleset`, any iptables listing) are read by the real
//! tools in a scratch network namespace ([`scratch`]) and read back as `nft -j` JSON, so the
//! model sees them as it sees a live ruleset; `nft -j` JSON (`--ruleset`) is read directly,
//! with `iptables-nft-save` and `ipset save` beside it explaining iptables-nft's matches.
//! Nothing of the machine doing the analysis is read: what the files lack is unknown.

mod detect;
mod firewall;
mod ip;
mod iptables;
mod listl;
mod load;
#[cfg(test)]
mod props;
mod scratch;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use detect::{Backend, Form, detect};

use self::iptables::Restore;
use super::{
    capture::{Capture, Listing},
    cluster,
    firewalld::{self, parse_listing},
    iptables::LegacyListings,
    nft::Family,
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

impl Ipt {
    fn text(&self) -> String {
        scratch::text_of(&self.restore.lines)
    }
}

/// What the files hold, sorted by what reads it.
#[derive(Default)]
struct Collected {
    c: Option<Capture>,
    reports: Vec<EvidenceReport>,
    json: Vec<(String, String)>,
    nft_text: Vec<(String, String, usize)>,
    ipt: Vec<Ipt>,
    ipsets: Vec<String>,
    zone_files: Vec<PathBuf>,
    service_files: Vec<PathBuf>,
    listing: firewalld::ZoneListing,
    /// firewalld.conf's DefaultZone and FirewallBackend.
    conf: (Option<String>, Option<String>),
}

/// Nothing used, nothing left out: a file whose use is said later.
fn later() -> (Vec<String>, Vec<String>) {
    (Vec::new(), Vec::new())
}

impl Collected {
    fn capture(&mut self) -> &mut Capture {
        self.c
            .get_or_insert_with(|| Capture::empty(NO_RUNTIME, NO_RULESET))
    }

    /// A named input that could not be used at all.
    fn unread(&mut self, problem: String) {
        let c = self.capture();
        c.problems.push(problem.clone());
        c.required_unread.push(problem);
    }

    /// Takes one file of a form.
    fn take(&mut self, path: &Path, form: Form, text: String, forced: bool) {
        let name = path.display().to_string();
        self.reports.push(EvidenceReport {
            file: name.clone(),
            form: form.name(),
            used: Vec::new(),
            unused: Vec::new(),
        });
        let at = self.reports.len() - 1;
        let (used, unused) = match form {
            Form::IpLink | Form::IpAddr => ip::links(&text, &mut self.capture().facts),
            Form::IpRoute => ip::routes(&text, &mut self.capture().facts),
            Form::Sysctl => ip::sysctls(&text, &mut self.capture().facts),
            Form::Listening => ip::listening(&text, &mut self.capture().facts),
            Form::NftJson => {
                self.capture().ruleset_named |= forced;
                self.json.push((name, text));
                later()
            }
            Form::NftText => {
                self.nft_text.push((name, text, at));
                later()
            }
            Form::IptablesSave(..) | Form::IptablesS(_) | Form::IptablesL { .. } => {
                self.iptables(name, form, &text, at);
                later()
            }
            Form::IpsetSave => {
                let sets = text.lines().filter(|l| l.starts_with("create ")).count();
                self.ipsets.push(text);
                (vec![format!("{sets} ipsets")], Vec::new())
            }
            Form::FirewallCmd => self.firewall_cmd(&name, &text),
            Form::ZoneXml => {
                self.zone_files.push(path.to_path_buf());
                (vec!["the zone".into()], Vec::new())
            }
            Form::ServiceXml => {
                self.service_files.push(path.to_path_buf());
                (vec!["the service".into()], Vec::new())
            }
            Form::FirewalldConf => {
                for l in text.lines() {
                    if let Some(z) = l.strip_prefix("DefaultZone=") {
                        self.conf.0 = Some(z.trim().to_string());
                    } else if let Some(b) = l.strip_prefix("FirewallBackend=") {
                        self.conf.1 = Some(b.trim().to_ascii_lowercase());
                    }
                }
                (vec!["DefaultZone, FirewallBackend".into()], Vec::new())
            }
            Form::Cluster(dist) => match cluster::parse(dist, path, &text) {
                Ok(cfg) => {
                    self.capture().cluster = Some(cfg);
                    (
                        vec!["the provider and the pod and service CIDRs".into()],
                        Vec::new(),
                    )
                }
                Err(e) => {
                    self.capture().problems.push(e.to_string());
                    (Vec::new(), vec!["it does not parse (see above)".into()])
                }
            },
            Form::Unknown => {
                self.unread(format!(
                    "{name}: not a form tracer reads (see `tracer diagnose --help` for the forms)"
                ));
                (
                    Vec::new(),
                    vec!["all of it: its form was not recognised".into()],
                )
            }
        };
        let r = &mut self.reports[at];
        r.used.extend(used);
        r.unused.extend(unused);
    }

    /// An iptables listing, made ready to load.
    fn iptables(&mut self, file: String, form: Form, text: &str, report: usize) {
        let (family, backend, restore) = match form {
            Form::IptablesSave(family, backend) => {
                (family, backend, iptables::from_save(&file, family, text))
            }
            Form::IptablesS(family) => (
                family,
                Backend::Unknown,
                iptables::from_s(&file, family, text),
            ),
            Form::IptablesL { family, verbose } => (
                family,
                Backend::Unknown,
                listl::from_l(&file, family, text, verbose),
            ),
            _ => return,
        };
        self.ipt.push(Ipt {
            file,
            family,
            backend,
            restore,
            report,
        });
    }

    fn firewall_cmd(&mut self, name: &str, text: &str) -> (Vec<String>, Vec<String>) {
        let l = parse_listing(text);
        let problems = l.problems.iter().map(|(n, m)| format!("{name}:{n}: {m}"));
        self.capture().problems.extend(problems);
        let zones: Vec<&str> = l.zones.keys().map(String::as_str).collect();
        let used = vec![format!("zones {}", zones.join(" "))];
        if l.default_zone.is_some() {
            self.listing.default_zone = l.default_zone;
        }
        for (k, z) in l.zones {
            self.listing.zones.entry(k).or_insert(z);
        }
        (used, Vec::new())
    }
}

/// Reads the named files.
pub fn read(named: &Named) -> (Capture, Vec<EvidenceReport>) {
    let given = [
        (named.ruleset.as_deref(), Form::NftJson),
        (
            named.iptables_save.as_deref(),
            Form::IptablesSave(Family::Ip, Backend::Nft),
        ),
        (
            named.ip6tables_save.as_deref(),
            Form::IptablesSave(Family::Ip6, Backend::Nft),
        ),
        (named.ipset_save.as_deref(), Form::IpsetSave),
    ];
    let inputs = given
        .into_iter()
        .filter_map(|(p, f)| p.map(|p| (p, Some(f))))
        .chain(named.evidence.iter().map(|p| (p.as_path(), None)));
    let mut k = Collected::default();
    for (path, forced) in inputs {
        match std::fs::read(path) {
            Ok(b) => {
                let text = String::from_utf8_lossy(&b).into_owned();
                let form = forced.unwrap_or_else(|| detect(&text));
                k.take(path, form, text, forced.is_some());
            }
            Err(e) => {
                let problem = format!("{}: {e}", path.display());
                if forced == Some(Form::NftJson) {
                    k.capture().nft = Err(problem.clone());
                }
                k.unread(problem);
            }
        }
    }
    let mut c =
        k.c.take()
            .unwrap_or_else(|| Capture::empty(NO_RUNTIME, NO_RULESET));
    rulesets(&mut c, &mut k);
    c.saved.ipset = (!k.ipsets.is_empty()).then(|| k.ipsets.join("\n"));
    firewall::firewall(&mut c, &k);
    (c, k.reports)
}

/// The ruleset from the pasted listings: `nft -j` JSON directly when it is all there is (its
/// iptables-nft-save beside it explaining xt matches), else everything loaded into a scratch
/// namespace and read back.
fn rulesets(c: &mut Capture, k: &mut Collected) {
    let ipt = std::mem::take(&mut k.ipt);
    // Legacy listings: what the legacy backend holds (its cluster chains).
    if ipt.iter().any(|i| i.backend == Backend::Legacy) {
        let of = |f: Family| {
            ipt.iter()
                .filter(|i| i.backend == Backend::Legacy && i.family == f)
                .map(Ipt::text)
                .collect::<String>()
        };
        c.legacy = Some(LegacyListings {
            v4: of(Family::Ip),
            v6: of(Family::Ip6),
        });
    }
    let nft_families: Vec<Family> = ipt
        .iter()
        .filter(|i| i.backend != Backend::Legacy)
        .map(|i| i.family)
        .collect();
    let one_json = k.json.len() == 1;
    // With one JSON listing, it holds iptables-nft's rules: their saves explain them. A legacy
    // listing is loaded into the scratch namespace only when there is no lone JSON listing and
    // no iptables-nft listing of its family; kept, its rules are evaluated beside the ruleset at
    // their hooks (`NodeView`), as the kernel runs both.
    let (kept, to_load): (Vec<Ipt>, Vec<Ipt>) = ipt.into_iter().partition(|i| {
        (one_json && i.backend != Backend::Legacy)
            || (i.backend == Backend::Legacy && (one_json || nft_families.contains(&i.family)))
    });
    c.legacy_loaded = to_load.iter().any(|i| i.backend == Backend::Legacy);
    for i in &kept {
        let r = &mut k.reports[i.report];
        if i.backend == Backend::Legacy {
            r.used
                .push("its cluster chains (which backend the cluster uses)".into());
            r.used.push(
                "its rules, evaluated at their hooks beside the nftables ruleset (x_tables runs beside nftables)"
                    .into(),
            );
            continue;
        }
        let slot = if i.family == Family::Ip6 {
            &mut c.saved.ip6tables
        } else {
            &mut c.saved.iptables
        };
        *slot = Some(i.text());
        r.used
            .push("the arguments of iptables-nft's extension matches in the nft JSON".into());
    }
    if k.nft_text.is_empty() && to_load.is_empty() {
        if let Some((name, text)) = k.json.pop() {
            c.nft = Ok(Listing::new(text, name));
        }
        return;
    }
    match scratch::Scratch::new() {
        Ok(scratch) => load::load(c, k, &scratch, to_load),
        Err(e) => {
            c.problems.push(e.clone());
            c.required_unread.push(e.clone());
            c.nft = Err(e);
        }
    }
}
